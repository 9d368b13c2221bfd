//! Gossip core laws: de-duplication, TTL decrement and expiry, bounded frames, no echo of own
//! rumours; warnings pushed to a fanout, handed to reputation, and sent to each new link.

use super::core::{Faults, GossipCore, Input, Output};
use crate::config::GossipConfig;
use crate::core::{Core, Effect, LinkEvent};
use crate::identity::{Ed25519Verifier, Identity, Rejection};
use crate::links::LinkTable;
use crate::observer::{Event, Offence};
use crate::types::PeerId;
use crate::wire::{Message, Rumor, RumorBody};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::rc::Rc;

/// Unix time at the test clock's zero.
const UNIX0: u64 = 1_800_000_000_000;

/// A link peer (links are authenticated elsewhere; gossip only needs distinct ids).
fn pid(i: u8) -> PeerId {
    PeerId([i; 32])
}

fn ident(i: u8) -> Rc<Identity> {
    thread_local!(static IDS: Vec<Rc<Identity>> = (0..=255u8).map(|i| Rc::new(Identity::from_secret(&[i; 32]))).collect());
    IDS.with(|ids| ids[usize::from(i)].clone())
}

/// The id of rumour origin `i` (an ed25519 key, unlike link peers).
fn origin(i: u8) -> PeerId {
    ident(i).peer_id()
}

/// A gossip core and the link table it reads (written here as the connection manager would).
struct Node {
    core: GossipCore,
    links: LinkTable,
}

impl std::ops::Deref for Node {
    type Target = GossipCore;
    fn deref(&self) -> &GossipCore {
        &self.core
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut GossipCore {
        &mut self.core
    }
}

fn core_with(cfg: GossipConfig, faults: Faults) -> Node {
    let links = LinkTable::default();
    let core = GossipCore::new(
        ident(0),
        Rc::new(Ed25519Verifier),
        UNIX0,
        faults,
        cfg,
        links.view(),
        ChaCha8Rng::seed_from_u64(7),
    );
    Node { core, links }
}

fn core(cfg: GossipConfig) -> Node {
    core_with(cfg, Faults::default())
}

fn drain(c: &mut GossipCore) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn connect(c: &mut Node, peers: &[u8]) {
    for p in peers {
        c.links.set(pid(*p), true);
        c.handle(0, Input::Link(LinkEvent::Up { peer: pid(*p), outbound: true }));
    }
}

/// Run one round (timer + discovery's answer) and return the broadcast rumours.
fn round(c: &mut GossipCore, now: u64) -> Option<(Vec<PeerId>, Vec<Rumor>)> {
    c.handle_timeout(now.max(c.next_timeout().unwrap_or(0)));
    let asked = drain(c).iter().any(|o| matches!(o, Output::RequestTopPeers(20)));
    if !asked {
        return None;
    }
    c.handle(now, Input::TopPeers(vec![pid(50), pid(51)]));
    drain(c).into_iter().find_map(|o| match o {
        Output::Effect(Effect::Broadcast { to, msg: Message::Gossip { rumors } }) => Some((to, rumors.to_vec())),
        _ => None,
    })
}

/// A rumour by origin `o`, signed at test time `at` ms.
fn rumor_at(o: u8, seq: u64, ttl: u8, at: u64) -> Rumor {
    let body = RumorBody { seq, peers: vec![pid(o.wrapping_add(100))], warnings: vec![] };
    Rumor::seal(&ident(o), &body, ttl, UNIX0 + at).unwrap()
}

fn rumor(o: u8, seq: u64, ttl: u8) -> Rumor {
    rumor_at(o, seq, ttl, 0)
}

fn events(out: &[Output]) -> Vec<Event> {
    out.iter().filter_map(|o| if let Output::Effect(Effect::Event(e)) = o { Some(e.clone()) } else { None }).collect()
}

#[test]
fn duplicate_rumour_is_delivered_once() {
    let mut c = core(GossipConfig::default());
    connect(&mut c, &[1, 2]);
    drain(&mut c);
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![rumor(9, 1, 3)].into() });
    c.handle(0, Input::Frame { from: pid(2), rumors: vec![rumor(9, 1, 3)].into() });
    let out = drain(&mut c);
    let received =
        out.iter().filter(|o| matches!(o, Output::Effect(Effect::Event(Event::RumorReceived { .. })))).count();
    assert_eq!(received, 1);
    assert_eq!(c.duplicates(), 1);
    // What was learned reaches discovery once, at the next round, sorted and de-duplicated.
    let t = c.next_timeout().unwrap();
    c.handle_timeout(t);
    let learned: Vec<Output> = drain(&mut c).into_iter().filter(|o| matches!(o, Output::Learned { .. })).collect();
    let mut expect = vec![origin(9), pid(109)];
    expect.sort();
    assert_eq!(
        learned,
        vec![Output::Learned { peers: expect, heard: vec![] }],
        "no peer on the watch list: no mention passed on"
    );
}

#[test]
fn relays_decrement_ttl_and_stop_at_one() {
    let mut c = core(GossipConfig::default());
    connect(&mut c, &[1, 2]);
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![rumor(8, 1, 3), rumor(9, 1, 1)].into() });
    let (to, rumors) = round(&mut c, 0).expect("a round with connections broadcasts");
    assert_eq!(to, vec![pid(1), pid(2)]);
    assert_eq!(rumors[0].origin(), origin(0), "own rumour first");
    assert_eq!(rumors[0].ttl, 3);
    assert_eq!(rumors[0].body().unwrap().peers, vec![pid(50), pid(51)]);
    assert_eq!(rumors[0].envelope.verify(), Ok(()), "own rumour is signed");
    let relayed: Vec<(PeerId, u8)> = rumors[1..].iter().map(|r| (r.origin(), r.ttl)).collect();
    assert_eq!(relayed, vec![(origin(8), 2)], "ttl 3 relayed as 2; ttl 1 not relayed");
    assert_eq!(rumors[1].envelope, rumor(8, 1, 3).envelope, "relayed unchanged but for the ttl");
    // Relays are sent once.
    let (_, again) = round(&mut c, 60_000).unwrap();
    assert_eq!(again.len(), 1);
}

#[test]
fn no_round_without_connections_and_frames_from_strangers_ignored() {
    let mut c = core(GossipConfig::default());
    assert!(round(&mut c, 0).is_none());
    c.handle(0, Input::Frame { from: pid(3), rumors: vec![rumor(9, 1, 3)].into() });
    assert!(drain(&mut c).is_empty());
}

#[test]
fn forged_tampered_and_stale_rumours_are_rejected_and_reported() {
    let mut c = core(GossipConfig::default());
    connect(&mut c, &[1, 2]);
    drain(&mut c);
    // Origin 9's rumour with one peer swapped after signing.
    const T: u64 = 6 * 60_000;
    let mut tampered = rumor_at(9, 1, 3, T);
    let mut body = tampered.body().unwrap();
    body.peers[0] = pid(66);
    tampered.envelope.data = rmp_serde::to_vec(&body).unwrap();
    // Signed by 8 but claiming to be 9.
    let mut forged = rumor_at(8, 2, 3, T);
    forged.envelope.public_key = origin(9);
    let mut unsigned = rumor_at(9, 3, 3, T);
    unsigned.envelope.signature.clear();
    let stale = rumor_at(9, 4, 3, 0);
    let future = rumor_at(9, 5, 3, 10 * 60_000);
    c.handle(T, Input::Frame { from: pid(1), rumors: vec![tampered, forged, unsigned, stale, future].into() });
    let out = drain(&mut c);
    let reasons: Vec<Rejection> = events(&out)
        .into_iter()
        .filter_map(|e| {
            if let Event::EnvelopeRejected { reason, from, .. } = e {
                (from == pid(1)).then_some(reason)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert_eq!(reasons[..3], [Rejection::BadSignature, Rejection::BadSignature, Rejection::Unsigned]);
    assert!(matches!(reasons[3], Rejection::Stale { .. }) && matches!(reasons[4], Rejection::FromFuture { .. }));
    let reports = out.iter().filter(|o| matches!(o, Output::Effect(Effect::Report { peer, offence: Offence::InvalidEnvelope(_) }) if *peer == pid(1))).count();
    assert_eq!(reports, 5, "every rejection is reported against the sender");
    assert!(!events(&out).iter().any(|e| matches!(e, Event::RumorReceived { .. })), "nothing believed");
    assert_eq!(c.rejected(), 5);
    // A forgery does not pre-empt the real rumour with the same id.
    c.handle(T, Input::Frame { from: pid(2), rumors: vec![rumor_at(9, 1, 3, T)].into() });
    let ev = events(&drain(&mut c));
    assert!(ev.contains(&Event::RumorReceived { origin: origin(9), seq: 1, from: pid(2) }), "{ev:?}");
}

/// Copies of one signed rumour are taken once, whichever neighbour sends them; an origin that
/// signs its sequence number again (restarted from 0) is heard again, not taken for its past.
#[test]
fn copies_are_taken_once_and_a_restarted_origin_is_heard_again() {
    let mut c = core(GossipConfig::default());
    connect(&mut c, &[1, 2]);
    drain(&mut c);
    let first = rumor_at(9, 1, 3, 1_000);
    c.handle(1_000, Input::Frame { from: pid(1), rumors: vec![first.clone()].into() });
    c.handle(1_000, Input::Frame { from: pid(2), rumors: vec![first].into() });
    let received = |out: &[Output]| events(out).iter().filter(|e| matches!(e, Event::RumorReceived { .. })).count();
    assert_eq!(received(&drain(&mut c)), 1, "the second copy is a duplicate");
    assert_eq!(c.duplicates(), 1);
    // Same origin and sequence number, signed anew a little later.
    c.handle(2_000, Input::Frame { from: pid(2), rumors: vec![rumor_at(9, 1, 3, 2_000)].into() });
    assert_eq!(received(&drain(&mut c)), 1, "a new signature is a new rumour");
}

#[test]
fn a_faulty_node_sends_only_broken_signatures() {
    let mut bad = core_with(GossipConfig::default(), Faults { corrupt_signatures: true, ..Faults::default() });
    connect(&mut bad, &[1]);
    bad.handle(0, Input::Frame { from: pid(1), rumors: vec![rumor(8, 1, 3)].into() });
    let (_, rumors) = round(&mut bad, 0).unwrap();
    assert_eq!(rumors.len(), 2);
    assert!(rumors.iter().all(|r| r.envelope.verify() == Err(Rejection::BadSignature)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn frames_stay_bounded_and_never_echo(
        frames in prop::collection::vec((1u8..6, prop::collection::vec((0u8..12, 0u64..4, any::<u8>()), 0..10)), 0..40),
        max_rumors in 1usize..8,
    ) {
        let cfg = GossipConfig { max_rumors_per_frame: max_rumors, ..GossipConfig::default() };
        let mut c = core(cfg);
        connect(&mut c, &[1, 2, 3, 4, 5]);
        // A rumour (one signed envelope: origin, sequence number and time) is delivered at most
        // once while it could still be travelling (ttl + 2 rounds).
        let horizon = (u64::from(GossipConfig::default().ttl) + 2) * 60_000;
        let mut first_seen = std::collections::BTreeMap::new();
        let mut now = 0;
        for (i, (from, rs)) in frames.into_iter().enumerate() {
            let rumors: Vec<Rumor> = rs.into_iter().map(|(o, s, t)| rumor_at(o, s, t, now)).collect();
            let stamp: std::collections::BTreeMap<(PeerId, u64), u64> =
                rumors.iter().map(|r| ((r.origin(), r.body().unwrap().seq), r.envelope.timestamp_ms)).collect();
            c.handle(now, Input::Frame { from: pid(from), rumors: rumors.clone().into() });
            c.check_invariants();
            for o in drain(&mut c) {
                if let Output::Effect(Effect::Event(Event::RumorReceived { origin, seq, .. })) = o {
                    prop_assert!(origin != self::origin(0), "own rumour accepted back");
                    if let Some(t) = first_seen.insert((origin, seq, stamp[&(origin, seq)]), now) {
                        prop_assert!(now - t >= horizon, "rumour delivered twice within the horizon");
                    }
                }
            }
            if i % 5 == 4 {
                now += 60_000;
                if let Some((_, out)) = round(&mut c, now) {
                    prop_assert!(out.len() <= max_rumors.max(1));
                    c.check_invariants();
                    for r in &out[1..] {
                        prop_assert!(r.ttl >= 1 && r.ttl < GossipConfig::default().ttl, "relayed beyond our ttl policy");
                        prop_assert!(r.origin() != origin(0));
                    }
                }
            }
        }
    }
}

/// Broadcasts out of a batch of outputs: (to, rumours).
fn sends(out: &[Output]) -> Vec<(Vec<PeerId>, Vec<Rumor>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Effect(Effect::Broadcast { to, msg: Message::Gossip { rumors } }) => {
                Some((to.clone(), rumors.to_vec()))
            }
            _ => None,
        })
        .collect()
}

/// A node with links 1..=8 whose reputation graylisted `pid(60)` and `pid(61)`.
fn warning_node() -> Node {
    let trust = crate::reputation::TrustView::default();
    trust.set(pid(60), crate::reputation::Standing::Graylisted);
    trust.set(pid(61), crate::reputation::Standing::Graylisted);
    let Node { core: plain, links } = core(GossipConfig::default());
    let mut c = Node { core: plain.with_trust(trust), links };
    connect(&mut c, &[1, 2, 3, 4, 5, 6, 7, 8]);
    drain(&mut c);
    c
}

/// A new warning is pushed at once to `warning_fanout` links, carrying only the warning, with
/// the warning hop budget; one not to be spread is only kept for new links.
#[test]
fn a_new_warning_is_pushed_to_a_fanout_of_links() {
    let cfg = GossipConfig::default();
    let mut c = warning_node();
    c.handle(1_000, Input::Warn { peer: pid(60), spread: true });
    let out = sends(&drain(&mut c));
    assert_eq!(out.len(), 1);
    let (to, rumors) = &out[0];
    assert_eq!(to.len(), cfg.warning_fanout);
    let mut distinct = to.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), to.len());
    assert_eq!(rumors.len(), 1);
    assert_eq!(rumors[0].ttl, cfg.warning_hops);
    let body = rumors[0].body().unwrap();
    assert_eq!((body.peers.len(), body.warnings.clone()), (0, vec![pid(60)]));
    c.handle(2_000, Input::Warn { peer: pid(61), spread: false });
    assert!(sends(&drain(&mut c)).is_empty(), "kept for new links only");
}

/// A received warning goes to reputation with its signer as the accuser and is pushed on at
/// once (never back to the sender) with one hop less; at its last hop it stops; a copy is
/// taken once; a warning about this node itself is not handed on as one.
#[test]
fn a_received_warning_reaches_reputation_and_is_pushed_on() {
    let mut c = warning_node();
    let hops = GossipConfig::default().warning_hops;
    assert!(hops >= 2, "a warning is pushed on at least once");
    let body = RumorBody { seq: 1, peers: vec![], warnings: vec![pid(70), origin(0)] };
    // A sender asking for more hops than this node's policy gets the policy's.
    let r = Rumor::seal(&ident(9), &body, hops + 1, UNIX0).unwrap();
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![r.clone()].into() });
    let out = drain(&mut c);
    assert!(out.contains(&Output::Warned { accuser: origin(9), accused: vec![pid(70)] }));
    let pushed = sends(&out);
    assert_eq!(pushed.len(), 1);
    assert!(!pushed[0].0.contains(&pid(1)), "not back to the sender");
    assert_eq!(pushed[0].1[0].ttl, hops - 1);
    c.handle(0, Input::Frame { from: pid(2), rumors: vec![r].into() });
    assert!(drain(&mut c).iter().all(|o| !matches!(o, Output::Warned { .. })), "a copy is taken once");
    let last =
        Rumor::seal(&ident(10), &RumorBody { seq: 1, peers: vec![], warnings: vec![pid(71)] }, 1, UNIX0).unwrap();
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![last].into() });
    let out = drain(&mut c);
    assert!(out.contains(&Output::Warned { accuser: origin(10), accused: vec![pid(71)] }));
    assert!(sends(&out).is_empty(), "at its last hop");
    // Nor is it queued for the next round.
    let (_, rumors) = round(&mut c, 60_000).expect("a round");
    assert_eq!(rumors.len(), 1, "only our own rumour: {:?}", rumors.len());
}

/// Each new link is sent one rumour with all of this node's warnings still in force (a peer no
/// longer graylisted here is left out); without warnings, nothing.
#[test]
fn a_new_link_hears_every_warning_in_force() {
    let mut c = warning_node();
    c.handle(0, Input::Link(LinkEvent::Up { peer: pid(20), outbound: false }));
    assert!(sends(&drain(&mut c)).is_empty(), "no warnings yet");
    c.handle(1_000, Input::Warn { peer: pid(60), spread: false });
    c.handle(1_000, Input::Warn { peer: pid(61), spread: false });
    c.handle(1_000, Input::Warn { peer: pid(62), spread: false }); // not graylisted (any more)
    drain(&mut c);
    c.links.set(pid(21), true);
    c.handle(2_000, Input::Link(LinkEvent::Up { peer: pid(21), outbound: false }));
    let out = sends(&drain(&mut c));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, vec![pid(21)]);
    assert_eq!(out[0].1[0].ttl, 1, "not forwarded");
    assert_eq!(out[0].1[0].body().unwrap().warnings, vec![pid(60), pid(61)]);
}

/// A warning naming this node reports its signer (not the link that relayed it) for it; one
/// that does not name this node reports nobody.
#[test]
fn a_warning_naming_this_node_reports_its_signer() {
    let mut c = warning_node();
    let hops = GossipConfig::default().warning_hops;
    let naming = RumorBody { seq: 1, peers: vec![], warnings: vec![pid(70), origin(0)] };
    let r = Rumor::seal(&ident(9), &naming, hops, UNIX0).unwrap();
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![r].into() });
    let reports: Vec<Output> =
        drain(&mut c).into_iter().filter(|o| matches!(o, Output::Effect(Effect::Report { .. }))).collect();
    assert_eq!(reports, vec![Output::Effect(Effect::Report { peer: origin(9), offence: Offence::FalseWarning })]);
    let other = RumorBody { seq: 1, peers: vec![], warnings: vec![pid(71)] };
    let r = Rumor::seal(&ident(10), &other, hops, UNIX0).unwrap();
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![r].into() });
    assert!(drain(&mut c).iter().all(|o| !matches!(o, Output::Effect(Effect::Report { .. }))));
}

/// The warnings in a batch of sends, in order.
fn warned_in(out: &[(Vec<PeerId>, Vec<Rumor>)]) -> Vec<PeerId> {
    out.iter().flat_map(|(_, rs)| rs.iter().flat_map(|r| r.body().unwrap().warnings)).collect()
}

/// The simulator's slanderer: it warns every link of each peer it links to, never of its
/// group's own ids; at its next round it warns of the peers the other ids of its group linked
/// to; and it keeps those warnings for new links though nobody is graylisted.
#[test]
fn a_slanderer_warns_of_every_peer_its_group_links_to() {
    let group = super::Slander::new_group();
    group.join(origin(0));
    group.join(pid(5));
    let mut c = core_with(GossipConfig::default(), Faults { slander: Some(group.clone()), ..Faults::default() });
    connect(&mut c, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let out = sends(&drain(&mut c));
    let warned = warned_in(&out);
    for p in [1, 2, 3, 4, 6, 7, 8] {
        assert!(warned.contains(&pid(p)), "warned of {p}: {warned:?}");
    }
    assert!(!warned.contains(&pid(5)), "never of its own group");
    let (to, _) = out.iter().find(|(_, rs)| rs[0].body().unwrap().warnings == vec![pid(8)]).unwrap();
    assert_eq!(to.len(), 8, "every link, past the fanout of {}", GossipConfig::default().warning_fanout);
    // Another id of the group links to 9 (and to 5, one of its own); this one warns of 9 at
    // its next round.
    assert!(group.linked(pid(9), 10_000));
    assert!(!group.linked(pid(5), 10_000));
    let next = c.next_timeout().unwrap().max(60_000);
    c.handle_timeout(next);
    c.handle(next, Input::TopPeers(vec![]));
    assert_eq!(warned_in(&sends(&drain(&mut c))), vec![pid(9)]);
    c.links.set(pid(10), true);
    c.handle(next + 1, Input::Link(LinkEvent::Up { peer: pid(10), outbound: false }));
    let to_new: Vec<(Vec<PeerId>, Vec<Rumor>)> =
        sends(&drain(&mut c)).into_iter().filter(|(to, _)| to == &vec![pid(10)]).collect();
    let all: Vec<PeerId> = [1, 2, 3, 4, 6, 7, 8, 9, 10].into_iter().map(pid).collect();
    assert_eq!(warned_in(&to_new), all, "kept, not pruned");
}
