//! Discovery core: initial link requests, PEX answers and limits, topping up to the low
//! watermark.

use super::core::{DiscoveryCore, Input, Output};
use crate::config::DiscoveryConfig;
use crate::core::{Core, Effect, LinkEvent};
use crate::links::{DialError, LinkTable};
use crate::types::PeerId;
use crate::wire::Message;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

fn pid(i: u16) -> PeerId {
    let mut b = [0u8; 32];
    b[..2].copy_from_slice(&i.to_be_bytes());
    b[31] = 1;
    PeerId(b)
}

fn me() -> PeerId {
    PeerId([0; 32])
}

const LOW: usize = 8;

/// A discovery core and the link table it reads (written here as the connection manager would).
struct Node {
    core: DiscoveryCore,
    links: LinkTable,
}

impl std::ops::Deref for Node {
    type Target = DiscoveryCore;
    fn deref(&self) -> &DiscoveryCore {
        &self.core
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut DiscoveryCore {
        &mut self.core
    }
}

impl Node {
    /// A link event, with the link table changed first (as the manager does).
    fn link(&mut self, now: u64, ev: LinkEvent) {
        match ev {
            LinkEvent::Up { peer, .. } => self.links.set(peer, true),
            LinkEvent::Down { peer, .. } => self.links.set(peer, false),
            LinkEvent::DialFailed { .. } => {}
        }
        self.core.handle(now, Input::Link(ev));
    }
}

fn core(boot: &[PeerId]) -> Node {
    let links = LinkTable::default();
    let core =
        DiscoveryCore::new(me(), DiscoveryConfig::default(), LOW, links.view(), ChaCha8Rng::seed_from_u64(5), boot);
    Node { core, links }
}

fn drain(c: &mut DiscoveryCore) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// The random links asked of the connection manager.
fn dials(out: &[Output]) -> Vec<PeerId> {
    out.iter().filter_map(|o| if let Output::Want(p) = o { Some(*p) } else { None }).collect()
}

#[test]
fn start_dials_five_distinct_known_peers() {
    let boot: Vec<PeerId> = (1..=20).map(pid).collect();
    let mut c = core(&boot);
    c.handle_timeout(0);
    let d = dials(&drain(&mut c));
    assert_eq!(d.len(), 5);
    assert_eq!(d.iter().collect::<BTreeSet<_>>().len(), 5);
    assert!(d.iter().all(|p| boot.contains(p)));
}

#[test]
fn new_connection_triggers_pex_and_answers_are_bounded() {
    let boot: Vec<PeerId> = (1..=90).map(pid).collect();
    let mut c = core(&boot);
    c.handle_timeout(0);
    drain(&mut c);
    // Peers 2..=70 were linked a moment ago (alive as far as this node knows); 71..=90 never.
    for i in 2..=70 {
        c.link(5, LinkEvent::Up { peer: pid(i), outbound: true });
        c.link(6, LinkEvent::Down { peer: pid(i), clean: true });
    }
    c.link(10, LinkEvent::Up { peer: pid(1), outbound: true });
    let out = drain(&mut c);
    assert!(out.contains(&Output::Effect(Effect::Send { to: pid(1), msg: Message::PexRequest { max: 50 } })));
    c.handle(20, Input::PexRequest { from: pid(1), max: 500 });
    let out = drain(&mut c);
    let Some(Output::Effect(Effect::Send { to, msg: Message::PexResponse { peers } })) = out.first() else {
        panic!("expected a PEX response, got {out:?}");
    };
    assert_eq!(*to, pid(1));
    assert_eq!(peers.len(), 50, "capped at pex_max_peers");
    assert!(!peers.contains(&pid(1)), "requester not sent to itself");
    assert!(peers.iter().all(|p| (2..=70).map(pid).any(|q| q == *p)), "only peers seen alive lately: {peers:?}");
    // A request from a peer we are not connected to is ignored.
    c.handle(30, Input::PexRequest { from: pid(77), max: 10 });
    assert!(drain(&mut c).is_empty());
}

#[test]
fn pex_response_tops_up_to_target() {
    let mut c = core(&[pid(1)]);
    c.handle_timeout(0);
    assert_eq!(dials(&drain(&mut c)), vec![pid(1)]);
    c.link(10, LinkEvent::Up { peer: pid(1), outbound: true });
    drain(&mut c);
    c.handle(20, Input::PexResponse { from: pid(1), peers: (2..40).map(pid).collect() });
    let d = dials(&drain(&mut c));
    assert_eq!(d.len(), 7, "1 linked + 7 asked for = the low watermark 8");
    assert!(!d.contains(&pid(1)));
}

#[test]
fn only_real_dial_failures_count_against_a_peer() {
    let mut c = core(&[pid(1), pid(2)]);
    c.handle_timeout(0);
    drain(&mut c);
    // The manager refused for want of room: pid(1) is not to blame, pid(2) did not answer.
    c.link(10, LinkEvent::DialFailed { peer: pid(1), error: DialError::NoRoom });
    c.link(10, LinkEvent::DialFailed { peer: pid(2), error: DialError::Unreachable });
    let fails = |p| c.registry().get(&p).map_or(0, |e| e.failures);
    assert_eq!((fails(pid(1)), fails(pid(2))), (0, 1));
}

#[derive(Clone, Debug)]
enum Ev {
    Up(u16),
    Down(u16),
    Fail(u16),
    Pex(u16, Vec<u16>),
    Tick,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (1u16..60).prop_map(Ev::Up),
        (1u16..60).prop_map(Ev::Down),
        (1u16..60).prop_map(Ev::Fail),
        ((1u16..60), prop::collection::vec(0u16..200, 0..60)).prop_map(|(f, v)| Ev::Pex(f, v)),
        Just(Ev::Tick),
    ]
}

proptest! {
    /// Whatever happens, discovery never asks for itself or a peer it is linked to or already
    /// asked for, keeps what it asked for within the limit, and keeps the registry bounded.
    #[test]
    fn dialling_invariants(events in prop::collection::vec(ev(), 0..200)) {
        let cfg = DiscoveryConfig::default();
        let boot: Vec<PeerId> = (1..=30).map(pid).collect();
        let mut c = core(&boot);
        let mut now = 0;
        c.handle_timeout(now);
        drain(&mut c);
        for e in events {
            now += 1_000;
            let before_dialing: BTreeSet<PeerId> = c.asked().copied().collect();
            // A rescan forgets asks older than ASK_STALE_MS and may try those peers again.
            let rescan = matches!(e, Ev::Tick);
            match e {
                Ev::Up(p) => c.link(now, LinkEvent::Up { peer: pid(p), outbound: true }),
                Ev::Down(p) => c.link(now, LinkEvent::Down { peer: pid(p), clean: false }),
                Ev::Fail(p) => c.link(now, LinkEvent::DialFailed { peer: pid(p), error: DialError::Unreachable }),
                Ev::Pex(f, v) => c.handle(now, Input::PexResponse { from: pid(f), peers: v.into_iter().map(pid).collect() }),
                Ev::Tick => { now += cfg.rescan_interval_ms; c.handle_timeout(now) }
            }
            let batch = dials(&drain(&mut c));
            prop_assert_eq!(batch.iter().collect::<BTreeSet<_>>().len(), batch.len(), "same peer twice in one batch");
            for d in batch {
                prop_assert!(d != me());
                prop_assert!(!c.links.view().contains(&d), "asked for a linked peer");
                prop_assert!(rescan || !before_dialing.contains(&d), "asked for twice");
            }
            c.check_invariants();
            prop_assert!(c.asked().count() <= cfg.max_pending_dials);
            prop_assert!(c.registry().len() <= cfg.registry_max_peers);
            prop_assert!(!c.registry().contains(&me()));
        }
    }
}

/// A peer the connection manager refused (no room, backing off, graylisted) is not asked for
/// again within `dial_retry_after_ms`: a refusal answered at once by a top-up naming the same
/// peer was a loop in which simulated time never advanced (found by the adversaries scenario).
#[test]
fn a_refused_peer_is_not_asked_for_again_at_once() {
    let mut c = core(&[pid(1)]);
    c.handle_timeout(0);
    assert_eq!(dials(&drain(&mut c)), vec![pid(1)]);
    for (i, error) in [DialError::BackingOff, DialError::NoRoom, DialError::Distrusted].into_iter().enumerate() {
        let now = 10 + i as u64;
        c.link(now, LinkEvent::DialFailed { peer: pid(1), error });
        assert!(dials(&drain(&mut c)).is_empty(), "asked again at once after {error:?}");
    }
    let retry = DiscoveryConfig::default().dial_retry_after_ms;
    let mut later = vec![];
    let mut now = retry;
    while now < 3 * retry && later.is_empty() {
        now = c.next_timeout().unwrap().max(now + 1);
        c.handle_timeout(now);
        later = dials(&drain(&mut c));
    }
    assert_eq!(later, vec![pid(1)], "asked again once the pause is over");
}

/// A PEX answer names, beside the links, only known peers linked within `pex_fresh_ms` that
/// failed no dial since: never one only heard of, one seen long ago, or one that failed since.
#[test]
fn a_pex_answer_vouches_only_for_peers_seen_alive_lately() {
    let boot: Vec<PeerId> = (1..=10).map(pid).collect();
    let mut c = core(&boot);
    c.handle_timeout(0);
    drain(&mut c);
    let fresh = DiscoveryConfig::default().pex_fresh_ms;
    let t0 = 1_000;
    for i in [2, 3, 4] {
        c.link(t0, LinkEvent::Up { peer: pid(i), outbound: true });
        c.link(t0 + 1, LinkEvent::Down { peer: pid(i), clean: false });
    }
    // pid(4) failed a dial after it was seen.
    c.link(t0 + 2, LinkEvent::DialFailed { peer: pid(4), error: DialError::Unreachable });
    c.link(t0 + 3, LinkEvent::Up { peer: pid(1), outbound: true });
    let answer = |c: &mut Node, now| {
        c.handle(now, Input::PexRequest { from: pid(1), max: 50 });
        match drain(c).into_iter().find_map(|o| match o {
            Output::Effect(Effect::Send { msg: Message::PexResponse { peers }, .. }) => Some(peers),
            _ => None,
        }) {
            Some(mut p) => {
                p.sort();
                p
            }
            None => panic!("no answer"),
        }
    };
    assert_eq!(answer(&mut c, t0 + 10), vec![pid(2), pid(3)]);
    assert!(answer(&mut c, t0 + fresh + 10).is_empty(), "seen too long ago");
}

/// A started node linked to pid(1), pid(2) and pid(3), its outputs so far drained; pid(2) and
/// pid(3) have answered peer exchange three times with peers gossip mentions, checked by
/// `CHECK_AFTER_MS + 20`, so the node hears the swarm well enough to judge pid(1) (a node does
/// not judge before three answers of other sources are checked).
fn linked_to_three() -> Node {
    use crate::discovery::vouchers::CHECK_AFTER_MS;
    let mut c = linked_to_three_unheard();
    for (i, from) in [pid(2), pid(3), pid(2)].into_iter().enumerate() {
        let peers: Vec<PeerId> = (0..10).map(|j| pid(10_000 + 100 * i as u16 + j)).collect();
        c.handle(10 + i as u64, Input::PexResponse { from, peers: peers.clone() });
        c.handle(15, Input::Learned { peers: vec![], heard: peers });
    }
    c.handle_timeout(CHECK_AFTER_MS + 20);
    drain(&mut c);
    c
}

/// A started node linked to pid(1), pid(2) and pid(3), its outputs so far drained, no answer
/// checked yet.
fn linked_to_three_unheard() -> Node {
    let mut c = core(&[pid(1), pid(2), pid(3)]);
    c.handle_timeout(0);
    drain(&mut c);
    for i in 1..=3 {
        c.link(10, LinkEvent::Up { peer: pid(i), outbound: true });
    }
    drain(&mut c);
    c
}

/// A source whose named peers nobody else mentions is reported (`Offence::BadPex`) at the
/// answer's check; one whose named peers gossip also mentions is not; and a poisoner's own
/// answer names no peer it is linked to.
#[test]
fn a_source_naming_peers_nobody_else_mentions_is_reported_for_poisoning_pex() {
    use crate::discovery::vouchers::CHECK_AFTER_MS;
    use crate::observer::Offence;
    let reports = |out: &[Output]| -> Vec<PeerId> {
        out.iter()
            .filter_map(|o| match o {
                Output::Effect(Effect::Report { peer, offence: Offence::BadPex }) => Some(*peer),
                _ => None,
            })
            .collect()
    };
    let mut c = linked_to_three();
    let t0 = CHECK_AFTER_MS + 30;
    c.handle(t0, Input::PexResponse { from: pid(1), peers: (100..120).map(pid).collect() });
    c.handle(t0, Input::PexResponse { from: pid(2), peers: (200..220).map(pid).collect() });
    c.handle(t0, Input::PexResponse { from: pid(3), peers: (300..320).map(pid).collect() });
    c.handle(t0 + 60_000, Input::Learned { peers: vec![], heard: (200..216).chain(300..320).map(pid).collect() });
    let mut got = reports(&drain(&mut c));
    let mut now = t0 + 60_000;
    while let Some(t) = c.next_timeout().filter(|t| *t <= t0 + CHECK_AFTER_MS) {
        now = t.max(now);
        c.handle_timeout(now);
        got.extend(reports(&drain(&mut c)));
    }
    assert_eq!(got, vec![pid(1)], "the poisoner, once");

    // The poisoner's side: its answer names nothing it is linked to.
    let links = LinkTable::default();
    let mut p =
        DiscoveryCore::new(me(), DiscoveryConfig::default(), LOW, links.view(), ChaCha8Rng::seed_from_u64(5), &[])
            .with_poisoned_pex(true);
    links.set(pid(7), true);
    links.set(pid(8), true);
    p.handle(0, Input::PexRequest { from: pid(7), max: 50 });
    let out = drain(&mut p);
    let Some(Output::Effect(Effect::Send { msg: Message::PexResponse { peers }, .. })) = out.first() else {
        panic!("{out:?}")
    };
    assert_eq!(peers.len(), 50);
    assert!(!peers.contains(&pid(8)), "no live link named");
}

/// A source whose answer is suspect (much of it unmentioned, not most) is asked again, while
/// it is linked; its third suspect answer in a row is reported.
#[test]
fn a_suspect_source_is_asked_again_and_reported_at_its_third_suspect_answer() {
    use crate::discovery::vouchers::{CHECK_AFTER_MS, MAX_SUSPECT_ANSWERS};
    use crate::observer::Offence;
    let mut c = linked_to_three();
    let (mut now, mut asked_again, mut reported) = (CHECK_AFTER_MS + 30, 0, 0);
    for round in 0..MAX_SUSPECT_ANSWERS {
        // 20 named, half mentioned by gossip; pid(2) and pid(3) answer cleanly (this node hears).
        let named: Vec<PeerId> = (0..60).map(|i| pid(1_000 + u16::from(round) * 60 + i)).collect();
        c.handle(now, Input::PexResponse { from: pid(1), peers: named[..20].to_vec() });
        c.handle(now, Input::PexResponse { from: pid(2), peers: named[20..40].to_vec() });
        c.handle(now, Input::PexResponse { from: pid(3), peers: named[40..].to_vec() });
        c.handle(now + 1, Input::Learned { peers: vec![], heard: named[10..].to_vec() });
        now += CHECK_AFTER_MS;
        c.handle_timeout(now);
        for o in drain(&mut c) {
            match o {
                Output::Effect(Effect::Send { to, msg: Message::PexRequest { .. } }) if to == pid(1) => {
                    asked_again += 1
                }
                Output::Effect(Effect::Report { peer, offence: Offence::BadPex }) if peer == pid(1) => reported += 1,
                _ => {}
            }
        }
    }
    assert_eq!((asked_again, reported), (MAX_SUSPECT_ANSWERS - 1, 1));

    // A suspect no longer linked is not asked.
    c.handle(now, Input::PexResponse { from: pid(1), peers: (3_000..3_020).map(pid).collect() });
    c.link(now + 1, LinkEvent::Down { peer: pid(1), clean: false });
    c.handle(now + 2, Input::Learned { peers: vec![], heard: (3_010..3_020).map(pid).collect() });
    c.handle_timeout(now + CHECK_AFTER_MS);
    let out = drain(&mut c);
    assert!(
        !out.iter().any(|o| matches!(o, Output::Effect(Effect::Send { msg: Message::PexRequest { .. }, .. }))),
        "{out:?}"
    );
}

/// A node that hears too little of the swarm to judge (the other sources' answers are half
/// unmentioned too) reports nobody, but asks the source again; once it hears, it reports.
#[test]
fn a_node_that_hears_too_little_asks_again_instead_of_reporting() {
    use crate::discovery::vouchers::CHECK_AFTER_MS;
    use crate::observer::Offence;
    let mut c = linked_to_three_unheard();
    // Answers of pid(2) and pid(3) from `t` on, `heard` of every 20 named mentioned by gossip.
    let mut next = 1_000u16;
    let mut others = |c: &mut Node, t: u64, answers: u16, heard: usize| {
        for i in 0..answers {
            let peers: Vec<PeerId> = (next..next + 20).map(pid).collect();
            next += 20;
            let from = if i % 2 == 0 { pid(2) } else { pid(3) };
            c.handle(t + u64::from(i), Input::PexResponse { from, peers: peers.clone() });
            c.handle(t + 50, Input::Learned { peers: vec![], heard: peers[..heard].to_vec() });
        }
    };
    // Runs the checks due by `until`: (reports of pid(1), requests sent to pid(1)).
    let run = |c: &mut Node, until: u64| {
        let (mut reported, mut asked) = (0, 0);
        while let Some(t) = c.next_timeout().filter(|t| *t <= until) {
            c.handle_timeout(t);
            for o in drain(c) {
                match o {
                    Output::Effect(Effect::Report { peer, offence: Offence::BadPex }) if peer == pid(1) => {
                        reported += 1
                    }
                    Output::Effect(Effect::Send { to, msg: Message::PexRequest { .. } }) if to == pid(1) => asked += 1,
                    _ => {}
                }
            }
        }
        (reported, asked)
    };
    others(&mut c, 20, 4, 10);
    c.handle(100, Input::PexResponse { from: pid(1), peers: (500..520).map(pid).collect() });
    assert_eq!(run(&mut c, 100 + CHECK_AFTER_MS), (0, 1), "deaf: not judged, asked again");

    let t = 200 + CHECK_AFTER_MS;
    others(&mut c, t, 6, 20);
    c.handle(t + 100, Input::PexResponse { from: pid(1), peers: (600..620).map(pid).collect() });
    assert_eq!(run(&mut c, t + 100 + CHECK_AFTER_MS), (1, 0), "hears again: reported");
}
