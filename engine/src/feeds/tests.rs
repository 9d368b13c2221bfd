//! Feed core laws: entries bounded and numbered, announcements checked (a forgery is refused and
//! its sender reported), de-duplicated, relayed within hops and rates, learned only by followers,
//! caught up by `Ask` and by reading the feed record; follows stored.

use super::core::{FeedEvent, FeedsCore, Input, Output};
use super::entry::*;
use super::follow::{FollowError, Followee};
use super::FeedsConfig;
use crate::core::{Core, Effect, LinkEvent};
use crate::identity::{Ed25519Verifier, Envelope, Identity, Rejection};
use crate::links::LinkTable;
use crate::observer::Offence;
use crate::storage::{Op, Table};
use crate::types::PeerId;
use crate::wire::Message;
use rand::SeedableRng;
use std::rc::Rc;

const UNIX0: u64 = 1_800_000_000_000;

fn ident(i: u8) -> Rc<Identity> {
    Rc::new(Identity::from_secret(&[i; 32]))
}

fn pid(i: u8) -> PeerId {
    ident(i).peer_id()
}

struct Node {
    core: FeedsCore,
    links: LinkTable,
}

fn node(i: u8, links: &[u8], cfg: FeedsConfig) -> Node {
    let table = LinkTable::default();
    for l in links {
        table.set(pid(*l), true);
    }
    let rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(i));
    let core = FeedsCore::new(ident(i), Rc::new(Ed25519Verifier), UNIX0, cfg, table.view(), rng);
    Node { core, links: table }
}

fn drain(c: &mut FeedsCore) -> Vec<Output> {
    c.check_invariants();
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// The announce messages among outputs: (recipients, hops, items).
fn announces(outs: &[Output]) -> Vec<(Vec<PeerId>, u8, Vec<Envelope>)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Effect(Effect::Broadcast { to, msg: Message::Feed(FeedMessage::Announce { hops, items }) }) => {
                Some((to.clone(), *hops, items.clone()))
            }
            Output::Effect(Effect::Send { to, msg: Message::Feed(FeedMessage::Announce { hops, items }) }) => {
                Some((vec![*to], *hops, items.clone()))
            }
            _ => None,
        })
        .collect()
}

fn learned(outs: &[Output]) -> Vec<(PeerId, u64)> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Done(FeedEvent::Learned(i)) => Some((i.owner, i.entry.seq)),
            _ => None,
        })
        .collect()
}

fn publish(n: &mut Node, now: u64, name: &str) -> Vec<Output> {
    let link = format!("{:064x}", now);
    n.core.handle(now, Input::Published { kind: EntryKind::Post, name: name.into(), link });
    drain(&mut n.core)
}

fn follow(n: &mut Node, who: u8) -> Vec<Output> {
    n.core.handle(0, Input::Follow { op: 1, user: Followee::of(pid(who)) });
    drain(&mut n.core)
}

#[test]
fn feed_record_is_bounded_numbered_and_checked() {
    let mut r = FeedRecord::default();
    for i in 0..(MAX_FEED_ENTRIES as u64 + 10) {
        r.append(EntryKind::File, &"n".repeat(300), format!("link{i}"), i);
    }
    assert_eq!(r.entries.len(), MAX_FEED_ENTRIES);
    assert_eq!(r.entries.first().map(|e| e.seq), Some(11), "the oldest went first");
    assert_eq!(r.next_seq(), MAX_FEED_ENTRIES as u64 + 11);
    assert!(r.entries.iter().all(|e| e.name.len() == MAX_NAME_BYTES), "names trimmed to the bound");
    let bytes = r.encode();
    assert!(bytes.len() <= crate::sync::record::MAX_VALUE_BYTES);
    assert_eq!(FeedRecord::decode(&bytes).unwrap(), r);
    let mut bad = r.clone();
    bad.entries.swap(0, 1);
    assert!(matches!(FeedRecord::decode(&bad.encode()), Err(FeedError::OutOfOrder { .. })));
    assert!(matches!(FeedRecord::decode(b"\xc1"), Err(FeedError::Malformed(_))));
    // Names are trimmed on a character boundary.
    assert_eq!(FeedEntry::trim_name(&"é".repeat(100)).len(), MAX_NAME_BYTES);
}

#[test]
fn announcements_open_and_forgeries_are_refused_with_the_reason() {
    let owner = ident(1);
    let entry = FeedEntry { seq: 1, kind: EntryKind::Post, name: "hi".into(), link: "ab".into(), published_ms: UNIX0 };
    let a = Announcement::seal(&owner, entry.clone());
    let back = Announcement::open(a.envelope().clone(), &Ed25519Verifier).unwrap();
    assert_eq!((back.owner(), back.entry()), (owner.peer_id(), &entry));
    // Tampered data, another key claimed, a broken signature.
    let mut env = a.envelope().clone();
    let last = env.data.len() - 1;
    env.data[last] ^= 1;
    assert_eq!(Announcement::open(env, &Ed25519Verifier), Err(FeedError::Signature(Rejection::BadSignature)));
    let mut env = a.envelope().clone();
    env.public_key = pid(2);
    assert_eq!(Announcement::open(env, &Ed25519Verifier), Err(FeedError::Signature(Rejection::BadSignature)));
    let mut env = a.envelope().clone();
    env.signature.truncate(10);
    assert_eq!(Announcement::open(env, &Ed25519Verifier), Err(FeedError::Signature(Rejection::Unsigned)));
    // Signed, but not an announcement; too large; an entry out of bounds; a time mismatch.
    let other = Envelope::seal(&owner, b"swarm-sync-write-v1".to_vec(), UNIX0);
    assert!(matches!(Announcement::open(other, &Ed25519Verifier), Err(FeedError::Body(_))));
    let big = Envelope::seal(&owner, vec![0; MAX_ANNOUNCE_BYTES + 1], UNIX0);
    assert!(matches!(Announcement::open(big, &Ed25519Verifier), Err(FeedError::AnnounceTooLarge { .. })));
    let empty_link = Announcement::seal(&owner, FeedEntry { link: String::new(), ..entry.clone() });
    let e = Announcement::open(empty_link.envelope().clone(), &Ed25519Verifier).unwrap_err();
    assert!(matches!(e, FeedError::LinkLength { .. }));
    let mut env = a.envelope().clone();
    env.timestamp_ms += 1;
    env.signature = owner.sign(&[]).to_vec(); // any other signature: refused before the time check
    assert!(Announcement::open(env, &Ed25519Verifier).is_err());
}

#[test]
fn a_post_is_written_announced_learned_by_followers_and_relayed_once() {
    let mut a = node(1, &[2], FeedsConfig::default());
    let mut b = node(2, &[1, 3, 4], FeedsConfig::default());
    let mut c = node(3, &[2], FeedsConfig::default());
    follow(&mut b, 1);
    let outs = publish(&mut a, 1000, "hello");
    assert!(outs.iter().any(|o| matches!(o, Output::WriteFeed(_))), "the feed record is written");
    let sent = announces(&outs);
    assert_eq!(sent.len(), 1);
    let (to, hops, items) = sent[0].clone();
    assert_eq!((to, hops), (vec![pid(2)], FeedsConfig::default().max_hops));
    // B follows A: learns the post, and passes it on (not back to A) with one hop less.
    b.core.handle(1100, Input::Frame { from: pid(1), msg: FeedMessage::Announce { hops, items: items.clone() } });
    let outs = drain(&mut b.core);
    assert_eq!(learned(&outs), vec![(pid(1), 1)]);
    let relayed = announces(&outs);
    assert_eq!(relayed.len(), 1);
    let mut to = relayed[0].0.clone();
    to.sort();
    let mut want = vec![pid(3), pid(4)];
    want.sort();
    assert_eq!(to, want);
    assert_eq!(relayed[0].1, hops - 1);
    // A second copy is a duplicate: nothing learned or relayed again.
    b.core.handle(1200, Input::Frame { from: pid(1), msg: FeedMessage::Announce { hops, items: items.clone() } });
    assert!(drain(&mut b.core).is_empty());
    assert_eq!(b.core.stats().duplicates, 1);
    // C does not follow A: it keeps it (for `Ask`s) and relays, learns nothing; hops 0 stops.
    c.core.handle(1300, Input::Frame { from: pid(2), msg: FeedMessage::Announce { hops: 0, items } });
    let outs = drain(&mut c.core);
    assert!(learned(&outs).is_empty() && announces(&outs).is_empty());
    // Listed newest first, with when it was learned.
    b.core.handle(1400, Input::List { op: 7, limit: 10 });
    let outs = drain(&mut b.core);
    let Some(Output::Done(FeedEvent::Feed { op: 7, items, follows })) = outs.first() else { panic!("{outs:?}") };
    assert_eq!(follows.len(), 1);
    assert_eq!((items.len(), items[0].entry.name.as_str(), items[0].learned_ms), (1, "hello", UNIX0 + 1100));
}

#[test]
fn a_forged_announcement_is_refused_reported_and_never_learned() {
    let mut b = node(2, &[9], FeedsConfig::default());
    follow(&mut b, 1);
    let entry = FeedEntry { seq: 1, kind: EntryKind::Post, name: "x".into(), link: "ab".into(), published_ms: UNIX0 };
    // Signed by 9, claiming to be 1.
    let mut env = Announcement::seal(&ident(9), entry).envelope().clone();
    env.public_key = pid(1);
    b.core.handle(10, Input::Frame { from: pid(9), msg: FeedMessage::Announce { hops: 3, items: vec![env] } });
    let outs = drain(&mut b.core);
    assert!(learned(&outs).is_empty() && announces(&outs).is_empty());
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Effect(Effect::Report { peer, offence: Offence::InvalidEnvelope(Rejection::BadSignature) }) if *peer == pid(9)
    )));
    assert_eq!(b.core.stats().rejected, 1);
    // A frame from a peer that is not linked is ignored altogether.
    b.core.handle(10, Input::Frame { from: pid(8), msg: FeedMessage::Ask { owners: vec![pid(1)] } });
    assert!(drain(&mut b.core).is_empty());
}

#[test]
fn a_flood_is_cut_to_the_rates_and_memory_stays_bounded() {
    let cfg = FeedsConfig { owner_burst: 5, link_burst: 50, cached_per_owner: 3, ..FeedsConfig::default() };
    let mut a = node(1, &[2], cfg.clone());
    let mut b = node(2, &[1, 3], cfg.clone());
    let mut frames = Vec::new();
    for i in 0..100 {
        let outs = publish(&mut a, 1000 + i, "spam");
        frames.extend(announces(&outs));
    }
    let mut relays = 0;
    for (_, hops, items) in frames {
        b.core.handle(2000, Input::Frame { from: pid(1), msg: FeedMessage::Announce { hops, items } });
        relays += announces(&drain(&mut b.core)).len();
    }
    assert_eq!(relays, 5, "an owner's burst, then nothing within the hour");
    assert_eq!(b.core.stats().rate_limited, 45 + 50, "owner limit on taken frames, link limit on the rest");
    // B answers an Ask with its latest 3 of A's.
    b.core.handle(2100, Input::Frame { from: pid(3), msg: FeedMessage::Ask { owners: vec![pid(1)] } });
    let _ = drain(&mut b.core); // over the link rate: B takes no more from 3 just now
    let mut b = node(2, &[1, 3], cfg);
    let items: Vec<Envelope> = (1..=10)
        .map(|s| {
            let e =
                FeedEntry { seq: s, kind: EntryKind::File, name: "f".into(), link: "l".into(), published_ms: UNIX0 };
            Announcement::seal(&ident(1), e).envelope().clone()
        })
        .collect();
    b.core.handle(0, Input::Frame { from: pid(1), msg: FeedMessage::Announce { hops: 0, items } });
    let _ = drain(&mut b.core);
    b.core.handle(1, Input::Frame { from: pid(3), msg: FeedMessage::Ask { owners: vec![pid(1), pid(5)] } });
    let answer = announces(&drain(&mut b.core));
    assert_eq!(answer.len(), 1);
    let seqs: Vec<u64> =
        answer[0].2.iter().map(|e| Announcement::open(e.clone(), &Ed25519Verifier).unwrap().entry().seq).collect();
    assert_eq!((answer[0].0.clone(), answer[0].1, seqs), (vec![pid(3)], 0, vec![10, 9, 8]));
}

#[test]
fn follows_are_stored_checked_and_caught_up_from_links_and_the_record() {
    let mut b = node(2, &[3], FeedsConfig::default());
    let outs = follow(&mut b, 1);
    let key = ident(1).user_id().into_bytes();
    assert!(outs.iter().any(|o| matches!(o, Output::Store(ops) if matches!(&ops[0], Op::Put { table: Table::Follows, key: k, .. } if *k == key))));
    assert!(outs.iter().any(|o| matches!(o, Output::ReadFeed(p) if *p == pid(1))), "reads the record at once");
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Effect(Effect::Broadcast { msg: Message::Feed(FeedMessage::Ask { .. }), .. }))));
    // The record read back: entries learned; a record another writer wrote is not believed.
    let mut r = FeedRecord::default();
    r.append(EntryKind::Post, "one", "l1".into(), UNIX0);
    r.append(EntryKind::File, "two", "l2".into(), UNIX0 + 5);
    b.core.handle(10, Input::FeedRead { owner: pid(1), winner: Some((pid(1), r.encode())) });
    assert_eq!(learned(&drain(&mut b.core)), vec![(pid(1), 1), (pid(1), 2)]);
    r.append(EntryKind::Post, "three", "l3".into(), UNIX0 + 9);
    b.core.handle(11, Input::FeedRead { owner: pid(1), winner: Some((pid(4), r.encode())) });
    assert!(learned(&drain(&mut b.core)).is_empty());
    // A new link is asked for what it holds of the followed users.
    b.links.set(pid(5), true);
    b.core.handle(12, Input::Link(LinkEvent::Up { peer: pid(5), outbound: true }));
    assert!(drain(&mut b.core).iter().any(|o| matches!(
        o,
        Output::Effect(Effect::Send { to, msg: Message::Feed(FeedMessage::Ask { owners }) }) if *to == pid(5) && *owners == vec![pid(1)]
    )));
    // Errors name what was wrong.
    assert_eq!(Followee::parse("xyz"), Err(FollowError::Malformed("xyz".into())));
    assert!(Followee::parse("0123456789abcdeg").is_err());
    assert_eq!(Followee::parse(&ident(1).user_id()).unwrap().peer, None);
    b.core.handle(13, Input::Follow { op: 2, user: Followee::of(pid(2)) });
    assert!(matches!(
        drain(&mut b.core)[0],
        Output::Done(FeedEvent::Followed { result: Err(FollowError::Myself(_)), .. })
    ));
    b.core.handle(14, Input::Unfollow { op: 3, user: Followee::of(pid(7)) });
    assert!(matches!(
        drain(&mut b.core)[0],
        Output::Done(FeedEvent::Unfollowed { result: Err(FollowError::NotFollowing(_)), .. })
    ));
    b.core.handle(15, Input::Unfollow { op: 4, user: Followee::of(pid(1)) });
    assert!(drain(&mut b.core)
        .iter()
        .any(|o| matches!(o, Output::Store(ops) if matches!(ops[0], Op::Delete { table: Table::Follows, .. }))));
    // A follow by user id learns the peer id from the first signed announcement.
    let mut c = node(3, &[1], FeedsConfig::default());
    c.core.handle(0, Input::Follow { op: 1, user: Followee::parse(&ident(1).user_id()).unwrap() });
    let _ = drain(&mut c.core);
    let e = FeedEntry { seq: 1, kind: EntryKind::Post, name: "p".into(), link: "l".into(), published_ms: UNIX0 };
    let env = Announcement::seal(&ident(1), e).envelope().clone();
    c.core.handle(1, Input::Frame { from: pid(1), msg: FeedMessage::Announce { hops: 1, items: vec![env] } });
    let outs = drain(&mut c.core);
    assert_eq!(learned(&outs), vec![(pid(1), 1)]);
    assert!(outs.iter().any(|o| matches!(o, Output::Store(_))), "the learned peer id is stored");
}

#[test]
fn own_entries_are_restored_and_announced_after_start() {
    let mut r = FeedRecord::default();
    r.append(EntryKind::Post, "old", "l".into(), UNIX0);
    let mut a = node(1, &[], FeedsConfig::default());
    a.core.handle(0, Input::Restore { follows: vec![], own: Some(r.encode()) });
    assert!(drain(&mut a.core).is_empty());
    assert_eq!(a.core.next_timeout(), None, "idle: no timer");
    a.links.set(pid(2), true);
    a.core.handle(5, Input::Link(LinkEvent::Up { peer: pid(2), outbound: true }));
    let _ = drain(&mut a.core);
    let t = a.core.next_timeout().expect("the start announcement is due");
    a.core.handle_timeout(t);
    let sent = announces(&drain(&mut a.core));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2.len(), 1);
    // The next entry continues the numbering.
    let outs = publish(&mut a, t + 1, "new");
    assert!(outs.iter().any(|o| matches!(o, Output::Done(FeedEvent::Appended(e)) if e.seq == 2)));
}
