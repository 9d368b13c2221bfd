//! The node's recovery core end to end in memory: an owner backs up to five holders, a new device
//! recovers by user id from any three, wrong passphrases and missing holders fail with reasons,
//! holders restored from their stored records still release, and links are asked for and given
//! back as the work needs them.

use super::*;
use crate::links::LinkTable;
use crate::recovery::holder::tests::{ident, NOW};
use crate::recovery::proof::tests::FAST_KDF;

const PASS: &[u8] = b"correct horse battery staple";
/// Node clocks start at this Unix time (records carry Unix times).
const EPOCH: u64 = NOW;

/// A core whose link set is `links` (one table for the whole test network: every node up in it
/// counts as linked to every other).
fn core(id: &Identity, seed: u8, links: &LinkTable) -> RecoveryCore {
    links.set(id.peer_id(), true);
    let cfg = RecoveryConfig { kdf: FAST_KDF, ..RecoveryConfig::default() };
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
                            drop(self.stored.entry(*me).or_default().remove(&owner))
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
        let records: Vec<Vec<u8>> = s.net.stored[h].values().cloned().collect();
        assert!(fresh.restore(&records).is_empty());
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
