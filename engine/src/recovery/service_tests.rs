//! The node's recovery core end to end in memory: an owner backs up to five holders, a new device
//! recovers by user id from any three, wrong passphrases and missing holders fail with reasons,
//! holders restored from their stored records still release, and links are asked for and given
//! back as the work needs them.

use super::*;
use crate::links::LinkTable;
use crate::recovery::holder::tests::{ident, NOW};
use crate::recovery::list::LIST_ASK_TIMEOUT_MS;
use crate::recovery::proof::tests::FAST_KDF;
use crate::routing::closest;

const PASS: &[u8] = b"correct horse battery staple";
/// Node clocks start at this Unix time (records carry Unix times).
const EPOCH: u64 = NOW;

/// Holders gone this long are replaced; the owner looks every `CHECK` ms.
const RESHARE_AFTER: Millis = 300_000;
const CHECK: Millis = 60_000;

/// A core whose link set is `links` (one table for the whole test network: every node up in it
/// counts as linked to every other).
fn core(id: &Identity, seed: u8, links: &LinkTable) -> RecoveryCore {
    core_with_regions(id, seed, links, RecoveryConfig::default().list_regions)
}

fn core_with_regions(id: &Identity, seed: u8, links: &LinkTable, list_regions: u8) -> RecoveryCore {
    links.set(id.peer_id(), true);
    let cfg = RecoveryConfig {
        kdf: FAST_KDF,
        reshare_after_ms: RESHARE_AFTER,
        check_interval_ms: CHECK,
        list_regions,
        ..RecoveryConfig::default()
    };
    RecoveryCore::new(id, cfg, EPOCH, links.view(), ChaCha20Rng::from_seed([seed; 32]))
}

/// Nodes by peer id, every pair linked (as link-up events), records delivered until quiet.
struct Net {
    links: LinkTable,
    nodes: BTreeMap<PeerId, RecoveryCore>,
    /// Peers that are down: frames to them are lost, they get no link events.
    down: BTreeSet<PeerId>,
    events: Vec<(PeerId, RecoveryEvent)>,
    wants: BTreeMap<PeerId, Vec<PeerId>>,
    stored: BTreeMap<PeerId, BTreeMap<PeerId, Vec<u8>>>,
    locks: BTreeMap<PeerId, BTreeMap<PeerId, Vec<u8>>>,
    own: BTreeMap<PeerId, Vec<u8>>,
    lists: BTreeMap<PeerId, BTreeMap<String, Vec<u8>>>,
    reports: Vec<(PeerId, Offence)>,
}

impl Net {
    fn new(links: LinkTable, cores: Vec<RecoveryCore>) -> Net {
        Net {
            links,
            nodes: cores.into_iter().map(|c| (c.me, c)).collect(),
            down: BTreeSet::new(),
            events: vec![],
            wants: BTreeMap::new(),
            stored: BTreeMap::new(),
            locks: BTreeMap::new(),
            own: BTreeMap::new(),
            lists: BTreeMap::new(),
            reports: vec![],
        }
    }

    fn input(&mut self, at: PeerId, now: Millis, input: Input) {
        self.nodes.get_mut(&at).unwrap().handle(now, input);
        self.pump(now);
    }

    fn pump(&mut self, now: Millis) {
        for _ in 0..10_000 {
            let mut frames = Vec::new();
            for (me, c) in &mut self.nodes {
                while let Some(o) = c.poll_output() {
                    match o {
                        Output::Effect(Effect::Send { to, msg: Message::Recovery(envelope) }) => {
                            frames.push((*me, to, envelope))
                        }
                        Output::Effect(Effect::Report { peer, offence }) => self.reports.push((peer, offence)),
                        Output::Effect(e) => panic!("unexpected effect {e:?}"),
                        Output::Want(w) => drop(self.wants.insert(*me, w)),
                        Output::Store(ShardOp::Put { owner, record }) => {
                            drop(self.stored.entry(*me).or_default().insert(owner, record))
                        }
                        Output::Store(ShardOp::Delete { owner }) => {
                            drop(self.stored.entry(*me).or_default().remove(&owner));
                            drop(self.locks.entry(*me).or_default().remove(&owner))
                        }
                        Output::Store(ShardOp::Lock { owner, record }) => {
                            drop(self.locks.entry(*me).or_default().insert(owner, record))
                        }
                        Output::Store(ShardOp::Own { record }) => drop(self.own.insert(*me, record)),
                        Output::Store(ShardOp::List { user_id, record }) => {
                            drop(self.lists.entry(*me).or_default().insert(user_id, record))
                        }
                        Output::Dropped { .. } => {}
                        Output::Done(ev) => self.events.push((*me, ev)),
                    }
                }
            }
            if frames.is_empty() {
                return;
            }
            for (from, to, envelope) in frames {
                if !self.down.contains(&to) {
                    self.nodes.get_mut(&to).unwrap().handle(now, Input::Frame { from, envelope });
                }
            }
        }
        panic!("recovery records never settle");
    }

    /// Run `at`'s timers up to `until`.
    fn run_until(&mut self, at: PeerId, until: Millis) {
        while let Some(t) = self.nodes[&at].next_timeout().filter(|t| *t <= until) {
            self.nodes.get_mut(&at).unwrap().handle_timeout(t);
            self.pump(t);
        }
    }

    /// `peer` is off: out of the link table, frames to it lost.
    fn off(&mut self, peer: PeerId) {
        self.down.insert(peer);
        self.links.set(peer, false);
    }

    fn on(&mut self, peer: PeerId) {
        self.down.remove(&peer);
        self.links.set(peer, true);
    }

    fn reshared(&self, at: PeerId) -> Vec<(u64, Vec<PeerId>, Vec<PeerId>)> {
        self.events
            .iter()
            .filter_map(|(p, e)| match e {
                RecoveryEvent::Reshared { generation, replaced, by } if *p == at => {
                    Some((*generation, replaced.clone(), by.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn recovered(&mut self, at: PeerId) -> (Vec<(PeerId, Asked)>, Result<Identity, RecoverError>) {
        let i = self.events.iter().position(|(p, e)| *p == at && matches!(e, RecoveryEvent::Recovered { .. }));
        match self.events.remove(i.expect("a recovery result")) {
            (_, RecoveryEvent::Recovered { holders, result, .. }) => (holders, result),
            _ => unreachable!(),
        }
    }

    fn status(&mut self, at: PeerId, now: Millis) -> BackupStatus {
        self.input(at, now, Input::Status { op: 99 });
        match self.events.pop() {
            Some((p, RecoveryEvent::Status { op: 99, status })) if p == at => status,
            other => panic!("no status: {other:?}"),
        }
    }
}

struct Setup {
    net: Net,
    owner: Identity,
    holders: Vec<PeerId>,
    fresh: PeerId,
}

/// An owner (seed 1), five holders and a fresh device, all linked; the owner backed up, 3 of 5.
fn backed_up() -> Setup {
    let owner = ident(1);
    let holder_ids: Vec<Identity> = (2..7).map(ident).collect();
    let fresh = ident(9);
    let holders: Vec<PeerId> = holder_ids.iter().map(Identity::peer_id).collect();
    let links = LinkTable::default();
    let mut cores = vec![core(&owner, 1, &links), core(&fresh, 9, &links)];
    cores.extend(holder_ids.iter().enumerate().map(|(i, h)| core(h, 2 + i as u8, &links)));
    let mut net = Net::new(links, cores);
    let pass = Zeroizing::new(PASS.to_vec());
    net.input(owner.peer_id(), 10, Input::Backup { op: 1, holders: holders.clone(), threshold: 3, passphrase: pass });
    match net.events.pop() {
        Some((_, RecoveryEvent::BackupStarted { op: 1, result: Ok(st) })) => assert_eq!(st.holders.len(), 5),
        other => panic!("{other:?}"),
    }
    assert!(net.events.is_empty());
    Setup { net, fresh: fresh.peer_id(), owner, holders }
}

impl Net {
    fn recover(&mut self, at: PeerId, owner: OwnerRef, holders: &[PeerId], pass: &[u8], now: Millis) {
        let input = Input::Recover {
            op: 7,
            owner,
            holders: holders.to_vec(),
            passphrase: Zeroizing::new(pass.to_vec()),
            timeout_ms: 30_000,
        };
        self.input(at, now, input);
    }
}

#[test]
fn a_backup_is_acknowledged_and_three_holders_recover_the_identity_by_user_id() {
    let mut s = backed_up();
    let me = s.owner.peer_id();
    let status = s.net.status(me, 20);
    assert_eq!((status.threshold, status.holders.len()), (3, 5));
    assert!(status.holders.iter().all(|h| h.acked), "{status:?}");
    assert!(status.generation >= EPOCH, "generations are Unix ms");
    // Links to holders were asked for while deposits were unacknowledged, and given back after.
    assert_eq!(s.net.wants[&me], Vec::<PeerId>::new());
    for h in &s.holders {
        assert_eq!(s.net.stored[h].keys().copied().collect::<Vec<_>>(), vec![me], "each holder stored one share");
    }
    // Two holders are gone and one is not reached yet: two shares are not enough.
    s.net.down.extend([s.holders[0], s.holders[3], s.holders[4]]);
    s.net.recover(s.fresh, OwnerRef::User(s.owner.user_id()), &s.holders, PASS, 100);
    assert!(s.net.events.iter().all(|(_, e)| !matches!(e, RecoveryEvent::Recovered { .. })), "still waiting");
    assert_eq!(s.net.wants[&s.fresh].len(), 3, "links to the holders that did not answer asked for");
    // The third's link drops and comes back: asked again, its share completes the key.
    s.net.down.remove(&s.holders[4]);
    s.net.input(s.fresh, 140, Input::Link(LinkEvent::Down { peer: s.holders[4], clean: false }));
    s.net.input(s.fresh, 150, Input::Link(LinkEvent::Up { peer: s.holders[4], outbound: true }));
    let (holders, result) = s.net.recovered(s.fresh);
    assert_eq!(result.unwrap().peer_id(), me);
    assert_eq!(holders.iter().filter(|(_, a)| *a == Asked::Released).count(), 3, "{holders:?}");
    assert_eq!(s.net.wants[&s.fresh], Vec::<PeerId>::new(), "links given back once done");
}

#[test]
fn a_wrong_passphrase_gets_no_share_and_fails_with_each_holders_reason() {
    let mut s = backed_up();
    s.net.recover(s.fresh, OwnerRef::Peer(s.owner.peer_id()), &s.holders, b"not the passphrase", 100);
    let (holders, result) = s.net.recovered(s.fresh);
    assert!(matches!(result, Err(RecoverError::Failed(_))), "{result:?}");
    assert_eq!(holders.len(), 5);
    for (_, a) in &holders {
        assert!(matches!(a, Asked::Failed(why) if why.contains("wrong passphrase")), "{a:?}");
    }
    for c in s.net.nodes.values() {
        assert_eq!(c.holder().stats().released, 0);
    }
}

#[test]
fn an_unknown_user_id_fails_fast_and_too_few_holders_time_out() {
    let mut s = backed_up();
    s.net.recover(s.fresh, OwnerRef::User("0123456789abcdef".into()), &s.holders, PASS, 100);
    let (holders, result) = s.net.recovered(s.fresh);
    assert!(matches!(result, Err(RecoverError::Failed(_))), "{result:?}");
    assert!(holders.iter().all(|(_, a)| matches!(a, Asked::Failed(w) if w.contains("no share"))), "{holders:?}");
    // Three of five down: two shares never rebuild the key; the recovery ends at its deadline.
    s.net.down.extend([s.holders[0], s.holders[1], s.holders[2]]);
    s.net.recover(s.fresh, OwnerRef::User(s.owner.user_id()), &s.holders, PASS, 200);
    assert!(s.net.events.is_empty());
    let deadline = s.net.nodes[&s.fresh].next_timeout().expect("a deadline");
    assert_eq!(deadline, 200 + 30_000);
    s.net.nodes.get_mut(&s.fresh).unwrap().handle_timeout(deadline);
    s.net.pump(deadline);
    let (holders, result) = s.net.recovered(s.fresh);
    assert!(matches!(result, Err(RecoverError::TimedOut { .. })), "{result:?}");
    assert_eq!(holders.iter().filter(|(_, a)| *a == Asked::Released).count(), 2);
}

#[test]
fn holders_restored_from_their_stored_records_still_release() {
    let mut s = backed_up();
    // Every holder restarts: a new core with what it stored.
    for (i, h) in s.holders.clone().iter().enumerate() {
        let mut fresh = core(&ident(2 + i as u64), 50 + i as u8, &s.net.links);
        assert_eq!(fresh.me, *h);
        let shares: Vec<Vec<u8>> = s.net.stored[h].values().cloned().collect();
        assert!(fresh.restore(100, &super::super::store::Stored { shares, ..Default::default() }).is_empty());
        s.net.nodes.insert(*h, fresh);
    }
    s.net.recover(s.fresh, OwnerRef::Peer(s.owner.peer_id()), &s.holders, PASS, 100);
    let (_, result) = s.net.recovered(s.fresh);
    assert_eq!(result.unwrap().peer_id(), s.owner.peer_id());
}

#[test]
fn bad_requests_are_refused_before_anything_is_sent() {
    let mut s = backed_up();
    for (holders, want) in [
        // No holders and a peer id: no list to look for (a list is found by user id).
        (vec![], RecoverError::NoHolders),
        (vec![s.fresh], RecoverError::SelfAsHolder),
        (vec![s.holders[0]; MAX_SESSION_HOLDERS + 1], RecoverError::TooManyHolders(MAX_SESSION_HOLDERS + 1)),
    ] {
        s.net.recover(s.fresh, OwnerRef::Peer(s.owner.peer_id()), &holders, PASS, 100);
        assert_eq!(s.net.recovered(s.fresh).1.unwrap_err(), want);
    }
    s.net.recover(s.fresh, OwnerRef::Peer(s.owner.peer_id()), &s.holders, b"", 100);
    assert_eq!(s.net.recovered(s.fresh).1.unwrap_err(), RecoverError::EmptyPassphrase);
    // A backup with a holder named twice is refused with the reason.
    let me = s.owner.peer_id();
    let mut dup = s.holders.clone();
    dup[1] = dup[0];
    let pass = Zeroizing::new(PASS.to_vec());
    s.net.input(me, 300, Input::Backup { op: 3, holders: dup, threshold: 3, passphrase: pass });
    match s.net.events.pop() {
        Some((_, RecoveryEvent::BackupStarted { op: 3, result: Err(BackupError::DuplicateHolder(_)) })) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_new_backup_revokes_the_holders_it_drops() {
    let mut s = backed_up();
    let me = s.owner.peer_id();
    let extra = ident(20);
    s.net.nodes.insert(extra.peer_id(), core(&extra, 20, &s.net.links));
    let mut holders = s.holders.clone();
    let dropped = holders[4];
    holders[4] = extra.peer_id();
    let pass = Zeroizing::new(PASS.to_vec());
    s.net.input(me, 60, Input::Backup { op: 2, holders, threshold: 3, passphrase: pass });
    // The dropped holder hears the revocation at its next link.
    s.net.input(me, 70, Input::Link(LinkEvent::Up { peer: dropped, outbound: true }));
    assert!(s.net.stored[&dropped].is_empty(), "the dropped holder forgot its share");
    assert_eq!(s.net.stored[&extra.peer_id()].len(), 1);
    let status = s.net.status(me, 80);
    assert!(status.holders.iter().all(|h| h.acked) && status.holders.iter().any(|h| h.holder == extra.peer_id()));
}

#[test]
fn a_holder_gone_too_long_is_replaced_by_a_fresh_split_and_its_old_share_revoked() {
    let mut s = backed_up();
    let me = s.owner.peer_id();
    s.net.off(s.fresh);
    let spare = ident(20);
    s.net.nodes.insert(spare.peer_id(), core(&spare, 20, &s.net.links));
    let old = s.net.status(me, 20).generation;
    let gone = s.holders[1];
    s.net.off(gone);
    s.net.input(me, 1_000, Input::Link(LinkEvent::Down { peer: gone, clean: false }));
    // Within `reshare_after_ms` the holder may come back: it is dialled, not replaced.
    s.net.run_until(me, 1_000 + RESHARE_AFTER - CHECK);
    assert!(s.net.reshared(me).is_empty());
    assert!(s.net.wants[&me].contains(&gone), "a holder not seen for a check interval is dialled");
    s.net.run_until(me, 1_000 + RESHARE_AFTER + CHECK);
    let reshares = s.net.reshared(me);
    assert_eq!(reshares.len(), 1, "{reshares:?}");
    let (generation, replaced, by) = reshares[0].clone();
    assert_eq!((replaced, by), (vec![gone], vec![spare.peer_id()]));
    let now = 1_000 + RESHARE_AFTER + CHECK;
    let st = s.net.status(me, now);
    assert_eq!((st.generation, st.reshares), (generation, 1));
    assert!(generation > old);
    assert!(st.holders.iter().all(|h| h.acked && h.holder != gone), "{st:?}");
    for h in st.holders.iter().map(|h| h.holder) {
        assert_eq!(s.net.nodes[&h].holder().held(&me).map(|(g, _)| g), Some(generation), "new split everywhere");
    }
    // The departed holder still keeps its old share; with two new ones it rebuilds nothing (shares
    // of two generations never combine).
    s.net.on(gone);
    let device = ident(30);
    s.net.nodes.insert(device.peer_id(), core(&device, 30, &s.net.links));
    let mixed = [gone, s.holders[0], s.holders[2]];
    s.net.recover(device.peer_id(), OwnerRef::Peer(me), &mixed, PASS, now + 1);
    let (_, result) = s.net.recovered(device.peer_id());
    assert!(matches!(&result, Err(RecoverError::Failed(why)) if why.contains("2 valid shares")), "{result:?}");
    // At its next link to the owner the revocation reaches it: the old share is deleted.
    s.net.input(me, now + 2, Input::Link(LinkEvent::Up { peer: gone, outbound: true }));
    assert_eq!(s.net.nodes[&gone].holder().held(&me), None);
    assert!(s.net.stored[&gone].is_empty());
    // Any three of the new holders recover the identity.
    let three = [s.holders[0], spare.peer_id(), s.holders[4]];
    s.net.recover(device.peer_id(), OwnerRef::Peer(me), &three, PASS, now + 3);
    assert_eq!(s.net.recovered(device.peer_id()).1.unwrap().peer_id(), me);
}

#[test]
fn a_reshare_waits_for_a_peer_to_take_the_gone_holders_place() {
    let mut s = backed_up();
    let me = s.owner.peer_id();
    s.net.off(s.fresh);
    let gone = s.holders[3];
    s.net.off(gone);
    s.net.run_until(me, RESHARE_AFTER + 3 * CHECK);
    assert!(s.net.reshared(me).is_empty(), "no candidate linked: nothing to re-share to");
    let spare = ident(21);
    s.net.nodes.insert(spare.peer_id(), core(&spare, 21, &s.net.links));
    s.net.run_until(me, RESHARE_AFTER + 4 * CHECK);
    assert_eq!(s.net.reshared(me).len(), 1);
}

#[test]
fn a_new_device_finds_the_holders_from_the_published_list_by_user_id() {
    let mut s = backed_up();
    let me = s.owner.peer_id();
    let user = s.owner.user_id();
    let keepers: Vec<PeerId> = s.net.nodes.values().filter(|c| c.lists.get(&user).is_some()).map(|c| c.me).collect();
    let others: Vec<PeerId> = s.net.nodes.keys().copied().filter(|p| *p != me).collect();
    // The three peers closest to the list key keep it (and the holders, who got it with their
    // deposits).
    for p in closest(&list_key(&user, 0), others, 3).into_iter().chain(s.holders.iter().copied()) {
        assert!(keepers.contains(&p), "{} has no list", p.short());
    }
    s.net.recover(s.fresh, OwnerRef::User(user.clone()), &[], PASS, 100);
    let (holders, result) = s.net.recovered(s.fresh);
    assert_eq!(result.unwrap().peer_id(), me);
    assert_eq!(holders.iter().filter(|(_, a)| *a == Asked::Released).count(), 3, "{holders:?}");
    // An unknown user id: nobody keeps a list for it. Each search goes on for its minimum time (a
    // fresh node's links may still be coming) and is started again while the time allows; then
    // the recovery gives up before its deadline.
    s.net.recover(s.fresh, OwnerRef::User("0123456789abcdef".into()), &[], PASS, 200);
    assert!(s.net.events.is_empty());
    s.net.run_until(s.fresh, 200 + MIN_LIST_SEARCH_MS);
    assert!(s.net.events.is_empty(), "given up after one search");
    s.net.run_until(s.fresh, 200 + 30_000 - 1);
    assert_eq!(s.net.recovered(s.fresh).1.unwrap_err(), RecoverError::NoList("0123456789abcdef".into()));
}

#[test]
fn a_search_that_found_no_list_is_started_again_and_finds_the_keepers_back() {
    let mut s = backed_up();
    let user = s.owner.user_id();
    let keepers: Vec<PeerId> = s.net.nodes.values().filter(|c| c.lists.get(&user).is_some()).map(|c| c.me).collect();
    assert!(keepers.len() >= 3);
    for k in &keepers {
        s.net.off(*k);
    }
    s.net.recover(s.fresh, OwnerRef::User(user), &[], PASS, 100);
    // Every peer asked is silent: each question fails at its timeout and the first search ends
    // with nothing (the recovery waits out the search's minimum time).
    s.net.run_until(s.fresh, 100 + LIST_ASK_TIMEOUT_MS);
    assert!(s.net.events.is_empty(), "no result while the time lasts: {:?}", s.net.events);
    // The keepers are back (their links were never reported down): the next search finds them.
    for k in &keepers {
        s.net.on(*k);
    }
    s.net.run_until(s.fresh, 100 + 30_000);
    let (holders, result) = s.net.recovered(s.fresh);
    assert_eq!(result.unwrap().peer_id(), s.owner.peer_id(), "{holders:?}");
}

/// 40 peers; the owner backs up to the 5 farthest from its list key in region 0, then it and
/// the 15 peers closest to that key crash at once (the correlated loss of the recovery scenario:
/// every keeper near the key gone). A fresh device recovers by user id alone.
fn recover_after_region_zero_is_lost(list_regions: u8) -> Result<Identity, RecoverError> {
    let owner = ident(1);
    let fresh = ident(9);
    let key = list_key(&owner.user_id(), 0);
    let mut pool: Vec<(Identity, u8)> = (100..140u8).map(|i| (ident(u64::from(i)), i)).collect();
    pool.sort_by_key(|(id, _)| key.distance(&crate::routing::Key::of_peer(&id.peer_id())));
    let links = LinkTable::default();
    let mut cores = vec![core_with_regions(&owner, 1, &links, list_regions)];
    cores.push(core_with_regions(&fresh, 9, &links, list_regions));
    cores.extend(pool.iter().map(|(id, seed)| core_with_regions(id, *seed, &links, list_regions)));
    let mut net = Net::new(links, cores);
    let holders: Vec<PeerId> = pool[35..].iter().map(|(id, _)| id.peer_id()).collect();
    let pass = Zeroizing::new(PASS.to_vec());
    net.input(owner.peer_id(), 10, Input::Backup { op: 1, holders, threshold: 3, passphrase: pass });
    // The placement lookups of every region (one per look).
    net.run_until(owner.peer_id(), 10 + 3 * CHECK);
    net.events.clear();
    net.off(owner.peer_id());
    for (id, _) in &pool[..15] {
        net.off(id.peer_id());
    }
    let at = 10 + 3 * CHECK + 1;
    net.recover(fresh.peer_id(), OwnerRef::User(owner.user_id()), &[], PASS, at);
    net.run_until(fresh.peer_id(), at + 30_000);
    net.recovered(fresh.peer_id()).1
}

#[test]
fn a_list_whose_keepers_near_one_key_all_crashed_is_found_near_another() {
    // One region: every keeper crashed with the owner, the list is gone.
    let user = ident(1).user_id();
    assert_eq!(recover_after_region_zero_is_lost(1).unwrap_err(), RecoverError::NoList(user));
    // Three: a later search looks near the second key and finds it.
    assert_eq!(recover_after_region_zero_is_lost(3).unwrap().peer_id(), ident(1).peer_id());
}

#[test]
fn list_keys_of_regions_are_distinct_and_region_zero_is_the_first_published_key() {
    let user = ident(1).user_id();
    use sha2::Digest;
    let first: [u8; 32] =
        sha2::Sha256::new().chain_update(b"swarm-recovery-list-key-v1").chain_update(&user).finalize().into();
    assert_eq!(list_key(&user, 0).0, first, "keepers of earlier builds");
    let keys: BTreeSet<[u8; 32]> = (0..MAX_LIST_REGIONS).map(|r| list_key(&user, r).0).collect();
    assert_eq!(keys.len(), usize::from(MAX_LIST_REGIONS));
}

#[test]
fn the_own_backup_outlives_a_restart_and_goes_on_being_watched() {
    let mut s = backed_up();
    let me = s.owner.peer_id();
    s.net.off(s.fresh);
    // The owner restarts with a store: from now on its backup is written out.
    let mut c = core(&s.owner, 1, &s.net.links);
    assert!(c.restore(30, &super::super::store::Stored::default()).is_empty());
    s.net.nodes.insert(me, c);
    let pass = Zeroizing::new(PASS.to_vec());
    s.net.input(me, 40, Input::Backup { op: 2, holders: s.holders.clone(), threshold: 3, passphrase: pass });
    let before = s.net.status(me, 50);
    let record = s.net.own[&me].clone();
    // Restart again from the record alone.
    let mut c = core(&s.owner, 2, &s.net.links);
    let stored = super::super::store::Stored { own: Some(record), ..Default::default() };
    assert!(c.restore(60, &stored).is_empty());
    s.net.nodes.insert(me, c);
    let after = s.net.status(me, 70);
    assert_eq!((after.generation, after.threshold, after.reshares), (before.generation, 3, 0));
    assert_eq!(after.holders.iter().map(|h| (h.holder, h.acked)).collect::<Vec<_>>(), {
        before.holders.iter().map(|h| (h.holder, h.acked)).collect::<Vec<_>>()
    });
    // It goes on watching: a holder gone too long is replaced after the restart.
    let spare = ident(22);
    s.net.nodes.insert(spare.peer_id(), core(&spare, 22, &s.net.links));
    s.net.off(s.holders[0]);
    s.net.run_until(me, 70 + RESHARE_AFTER + 2 * CHECK);
    assert_eq!(s.net.reshared(me).len(), 1);
    let again = RecoveryCore::new(
        &s.owner,
        RecoveryConfig::default(),
        EPOCH,
        s.net.links.view(),
        ChaCha20Rng::from_seed([3; 32]),
    );
    let mut again = again;
    let stored = super::super::store::Stored { own: s.net.own.get(&me).cloned(), ..Default::default() };
    assert!(again.restore(0, &stored).is_empty());
    assert_eq!(again.status().reshares, 1, "the re-share was written out too");
    // A record is sealed to its owner's key: another node cannot open it.
    let mut thief = core(&ident(40), 40, &s.net.links);
    assert_eq!(thief.restore(0, &stored).len(), 1);
}

#[test]
fn a_list_search_started_before_any_link_asks_the_peers_linked_later() {
    let mut s = backed_up();
    let me = s.owner.peer_id();
    // A node with no links yet: no candidates at first.
    let device = ident(31);
    let links = LinkTable::default();
    links.set(device.peer_id(), true);
    let c = core(&device, 31, &links);
    s.net.nodes.insert(device.peer_id(), c);
    s.net.recover(device.peer_id(), OwnerRef::User(s.owner.user_id()), &[], PASS, 100);
    assert!(s.net.events.is_empty(), "still looking");
    // Its links come up one by one.
    let peers: Vec<PeerId> = s.net.nodes.keys().copied().filter(|p| *p != device.peer_id()).collect();
    for (i, p) in peers.into_iter().enumerate() {
        links.set(p, true);
        s.net.input(device.peer_id(), 200 + i as u64, Input::Link(LinkEvent::Up { peer: p, outbound: true }));
    }
    let (_, result) = s.net.recovered(device.peer_id());
    assert_eq!(result.unwrap().peer_id(), me);
}

#[test]
fn a_backup_made_before_any_link_publishes_its_list_as_links_come_up() {
    let owner = ident(1);
    let peers: Vec<Identity> = (2..9).map(ident).collect();
    let owner_links = LinkTable::default();
    let shared = LinkTable::default();
    let mut cores = vec![core(&owner, 1, &owner_links)];
    cores.extend(peers.iter().enumerate().map(|(i, p)| core(p, 2 + i as u8, &shared)));
    let mut net = Net::new(shared, cores);
    let holders: Vec<PeerId> = peers[..5].iter().map(Identity::peer_id).collect();
    let pass = Zeroizing::new(PASS.to_vec());
    net.input(owner.peer_id(), 10, Input::Backup { op: 1, holders, threshold: 3, passphrase: pass });
    assert!(net.nodes.values().all(|c| c.lists.is_empty()), "no link: nothing sent yet");
    for (i, p) in peers.iter().enumerate() {
        owner_links.set(p.peer_id(), true);
        net.input(owner.peer_id(), 20 + i as u64, Input::Link(LinkEvent::Up { peer: p.peer_id(), outbound: true }));
    }
    let keepers = net.nodes.values().filter(|c| c.lists.get(&owner.user_id()).is_some()).count();
    assert!(keepers >= 3, "the list reached {keepers} peers");
}

#[test]
fn a_list_search_waiting_on_a_silent_peer_sets_no_timer_in_the_past() {
    let mut s = backed_up();
    let device = ident(32);
    let links = LinkTable::default();
    links.set(device.peer_id(), true);
    s.net.nodes.insert(device.peer_id(), core(&device, 32, &links));
    // Its one link is to a peer that never answers.
    let silent = s.holders[0];
    s.net.down.insert(silent);
    links.set(silent, true);
    s.net.recover(device.peer_id(), OwnerRef::User(s.owner.user_id()), &[], PASS, 100);
    s.net.input(device.peer_id(), 150, Input::Link(LinkEvent::Up { peer: silent, outbound: true }));
    let mut now = 150;
    for _ in 0..100 {
        let Some(t) = s.net.nodes[&device.peer_id()].next_timeout() else { break };
        assert!(t > now, "a timer at {t} ms, not after {now} ms: the actor would spin");
        now = t;
        s.net.nodes.get_mut(&device.peer_id()).unwrap().handle_timeout(t);
        s.net.pump(t);
    }
    // The silent peer's question timed out, and no search found anyone else to ask.
    let (_, result) = s.net.recovered(device.peer_id());
    assert!(matches!(result, Err(RecoverError::NoList(_))), "{result:?}");
}

#[test]
fn a_keeper_restarted_from_its_tables_still_keeps_the_holder_list() {
    let owner = ident(1);
    let keepers: Vec<Identity> = (2..7).map(ident).collect();
    let links = LinkTable::default();
    let mut cores = vec![core(&owner, 1, &links)];
    for (i, k) in keepers.iter().enumerate() {
        // Nodes with a store (an empty one): what they keep is written out.
        let mut c = core(k, 2 + i as u8, &links);
        assert!(c.restore(0, &super::super::store::Stored::default()).is_empty());
        cores.push(c);
    }
    let mut net = Net::new(links.clone(), cores);
    let holders: Vec<PeerId> = keepers.iter().map(Identity::peer_id).collect();
    let pass = Zeroizing::new(PASS.to_vec());
    net.input(owner.peer_id(), 10, Input::Backup { op: 1, holders, threshold: 3, passphrase: pass });
    let user = owner.user_id();
    let k = keepers[0].peer_id();
    let kept = net.nodes[&k].lists.get(&user).cloned().expect("the holder keeps the list");
    let record = net.lists.get(&k).and_then(|l| l.get(&user)).cloned().expect("the list was written out");
    // Restart from the tables alone (a record that does not decode is reported, the rest kept).
    let mut c = core(&keepers[0], 40, &links);
    let stored = super::super::store::Stored {
        shares: net.stored[&k].values().cloned().collect(),
        lists: vec![record, b"not an envelope".to_vec()],
        ..Default::default()
    };
    let errors = c.restore(50, &stored);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("kept holder list"), "{errors:?}");
    assert_eq!(c.lists.get(&user), Some(&kept));
}
