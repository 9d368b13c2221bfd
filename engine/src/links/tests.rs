//! Connection manager laws: dials come only from wants (one per peer, bounded), watermarks and the
//! hard cap hold, only links neither side protects are trimmed (never young ones), a lost
//! protected link is reconnected with backoff and a clean close is not, silent links expire.

use super::core::{Input, LinksCore, Output};
use super::{CloseReason, DialError, Gate, LinkTable, Purpose};
use crate::auth::transcript;
use crate::config::{AuthConfig, HealthConfig, LinksConfig};
use crate::core::{Core, Effect, LinkEvent};
use crate::identity::{Ed25519Verifier, Identity};
use crate::observer::{Event, LinkChange};
use crate::types::PeerId;
use crate::wire::Message;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::rc::Rc;

fn ident(i: u8) -> Rc<Identity> {
    thread_local!(static IDS: Vec<Rc<Identity>> = (0..=255u8).map(|i| Rc::new(Identity::from_secret(&[i; 32]))).collect());
    IDS.with(|ids| ids[usize::from(i)].clone())
}

fn pid(i: u8) -> PeerId {
    ident(i).peer_id()
}

/// A manager and what it shares with the router.
struct M {
    core: LinksCore,
    gate: Rc<Gate>,
    out: Vec<Output>,
}

fn manager(cfg: LinksConfig) -> M {
    let gate = Rc::new(Gate::default());
    let core = LinksCore::new(
        ident(0),
        Rc::new(Ed25519Verifier),
        cfg,
        AuthConfig::default(),
        HealthConfig::default(),
        gate.clone(),
        LinkTable::default(),
        ChaCha8Rng::seed_from_u64(1),
    );
    M { core, gate, out: vec![] }
}

impl M {
    fn input(&mut self, now: u64, i: Input) {
        self.core.handle(now, i);
        self.core.check_invariants();
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(o) = self.core.poll_output() {
            self.out.push(o);
        }
    }

    fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.out)
    }

    fn want(&mut self, now: u64, peer: u8, purpose: Purpose) {
        self.input(now, Input::Want { peer: pid(peer), purpose });
    }

    /// The transport opened a link to `peer`; its side of the handshake is played here, so the
    /// link is proved (and `Up` reported) when this returns.
    fn open(&mut self, now: u64, peer: u8, outbound: bool) {
        let p = pid(peer);
        let generation = self.gate.open(p, now);
        self.input(now, Input::Connected { peer: p, outbound, generation });
        let nonce = self.out.iter().rev().find_map(|o| match o {
            Output::Effect(Effect::Send { to, msg: Message::Hello { nonce } }) if *to == p => Some(nonce.clone()),
            _ => None,
        });
        let Some(nonce) = nonce else { return };
        let signature = ident(peer).sign(&transcript(&nonce, &p, &pid(0))).to_vec();
        self.input(now, Input::Proof { from: p, signature });
    }

    /// The transport reports the link gone (as it does after our own disconnect or close).
    fn close(&mut self, now: u64, peer: u8, clean: bool) {
        let p = pid(peer);
        let was_clean = self.gate.close(&p);
        self.input(now, Input::Disconnected { peer: p, clean: clean || was_clean });
    }

    fn run_until(&mut self, until: u64) {
        while let Some(t) = self.core.next_timeout().filter(|t| *t <= until) {
            self.core.handle_timeout(t);
            self.core.check_invariants();
            self.drain();
        }
    }

    fn linked(&self) -> BTreeSet<PeerId> {
        self.core.view().peers().into_iter().collect()
    }
}

fn dials(out: &[Output]) -> Vec<PeerId> {
    out.iter().filter_map(|o| if let Output::Dial(p) = o { Some(*p) } else { None }).collect()
}

fn closes(out: &[Output]) -> Vec<PeerId> {
    out.iter().filter_map(|o| if let Output::Close(p) = o { Some(*p) } else { None }).collect()
}

fn ups(out: &[Output]) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| if let Output::Link(LinkEvent::Up { peer, .. }) = o { Some(*peer) } else { None })
        .collect()
}

fn failed(out: &[Output]) -> Vec<(PeerId, DialError)> {
    out.iter()
        .filter_map(|o| {
            if let Output::Link(LinkEvent::DialFailed { peer, error }) = o {
                Some((*peer, *error))
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn wants_dial_once_per_peer_and_links_open_after_the_handshake() {
    let mut m = manager(LinksConfig::default());
    m.want(0, 1, Purpose::Random);
    m.want(0, 1, Purpose::Neighbourhood);
    m.want(0, 2, Purpose::Exchange);
    assert_eq!(dials(&m.take()), vec![pid(1), pid(2)], "one dial per peer, whatever the purposes");
    m.open(10, 1, true);
    let out = m.take();
    assert_eq!(ups(&out), vec![pid(1)]);
    assert!(
        out.contains(&Output::Effect(Effect::Send { to: pid(1), msg: Message::Keep { keep: true } })),
        "a protected link is announced as kept: {out:?}"
    );
    let info = m.core.view().get(&pid(1)).unwrap();
    assert!(info.purposes.has(Purpose::Random) && info.purposes.has(Purpose::Neighbourhood));
    // Wanting a linked peer again dials nothing.
    m.want(20, 1, Purpose::Bucket);
    assert!(dials(&m.take()).is_empty());
}

#[test]
fn dials_in_flight_are_bounded_and_the_rest_wait_their_turn() {
    let cfg = LinksConfig { max_pending_dials: 2, ..LinksConfig::default() };
    let mut m = manager(cfg);
    for p in 1..=5 {
        m.want(0, p, Purpose::Bucket);
    }
    assert_eq!(dials(&m.take()), vec![pid(1), pid(2)]);
    m.open(5, 1, true);
    assert_eq!(dials(&m.take()), vec![pid(3)], "a slot freed: the next waiting want is dialled");
    m.input(6, Input::TransportDialFailed { peer: pid(2) });
    assert_eq!(dials(&m.take()), vec![pid(4)]);
}

#[test]
fn random_links_stop_at_the_high_watermark_protected_ones_at_the_hard_cap() {
    let cfg = LinksConfig { high_watermark: 3, trim_to: 2, max_connections: 4, ..LinksConfig::default() };
    let mut m = manager(cfg);
    for p in 1..=3 {
        m.want(0, p, Purpose::Neighbourhood);
        m.open(0, p, true);
    }
    m.take();
    m.want(1, 10, Purpose::Random);
    assert_eq!(failed(&m.take()), vec![(pid(10), DialError::NoRoom)], "random: not above the high watermark");
    assert!(!m.core.wanted(&pid(10)).has(Purpose::Random), "a refused one-shot want is dropped");
    m.want(1, 11, Purpose::Neighbourhood);
    assert_eq!(dials(&m.take()), vec![pid(11)], "protected: up to the hard cap");
    m.want(1, 12, Purpose::Bucket);
    assert_eq!(failed(&m.take()), vec![(pid(12), DialError::NoRoom)], "nothing beyond the hard cap");
}

#[test]
fn inbound_links_at_the_hard_cap_are_refused_before_any_handshake() {
    let cfg = LinksConfig { high_watermark: 2, trim_to: 1, max_connections: 2, ..LinksConfig::default() };
    let mut m = manager(cfg);
    m.open(0, 1, false);
    m.open(0, 2, false);
    m.take();
    let g = m.gate.open(pid(3), 0);
    m.input(0, Input::Connected { peer: pid(3), outbound: false, generation: g });
    let out = m.take();
    assert!(out.contains(&Output::Disconnect(pid(3))), "{out:?}");
    assert!(
        !out.iter().any(|o| matches!(o, Output::Effect(Effect::Send { msg: Message::Hello { .. }, .. }))),
        "no challenge (no signature work) for a refused link"
    );
    assert!(out.contains(&Output::Effect(Effect::Event(Event::Link(LinkChange::Refused { peer: pid(3) })))));
    assert_eq!(m.core.stats().refused, 1);
}

#[test]
fn trimming_closes_only_old_links_nobody_protects_down_to_trim_to() {
    let cfg = LinksConfig { high_watermark: 5, trim_to: 4, max_connections: 10, ..LinksConfig::default() };
    let age = cfg.min_link_age_ms;
    let mut m = manager(cfg);
    // 1: protected here; 2: protected by the peer; 3, 4: nobody's; 5: random (worth more).
    m.want(0, 1, Purpose::Neighbourhood);
    for p in 1..=5 {
        m.open(0, p, p == 1);
    }
    m.input(0, Input::Keep { from: pid(2), keep: true });
    m.want(0, 5, Purpose::Random);
    m.take();
    // A sixth, young link takes the node above the high watermark: the old unprotected ones go,
    // the random one last, the young one not at all.
    m.open(age, 6, false);
    let trimmed: BTreeSet<PeerId> = closes(&m.take()).into_iter().collect();
    assert_eq!(trimmed, [pid(3), pid(4)].into_iter().collect(), "6 links above 5, down to 4: 3 and 4 go");
    for p in [3, 4] {
        m.close(age, p, true);
    }
    let out = m.take();
    assert!(out.contains(&Output::Effect(Effect::Event(Event::Link(LinkChange::Closed {
        peer: pid(3),
        reason: CloseReason::Trimmed,
        age_ms: age
    })))));
    assert_eq!(m.core.stats().trimmed, 2);
    assert_eq!(m.linked(), [1, 2, 5, 6].into_iter().map(pid).collect());
}

#[test]
fn a_lost_protected_link_is_reconnected_with_backoff_then_given_up() {
    let cfg = LinksConfig::default();
    let mut m = manager(cfg.clone());
    m.want(0, 1, Purpose::Neighbourhood);
    m.open(0, 1, true);
    m.take();
    m.close(1_000, 1, false);
    let mut attempts = vec![];
    let mut gave_up = false;
    let mut now = 1_000;
    while now < 3_600_000 {
        m.run_until(now);
        for o in m.take() {
            match o {
                Output::Dial(p) if p == pid(1) => {
                    attempts.push(now);
                    m.input(now, Input::TransportDialFailed { peer: p });
                }
                Output::Effect(Effect::Event(Event::ReconnectGaveUp { peer })) if peer == pid(1) => gave_up = true,
                _ => {}
            }
        }
        if gave_up {
            break;
        }
        now += 100;
    }
    let gaps: Vec<u64> = attempts.iter().scan(1_000, |prev, t| Some(t - std::mem::replace(prev, *t))).collect();
    // The loss counts as the first failure: 5 s, then 15 s, then the attempts are spent.
    assert_eq!(gaps, vec![5_000, 15_000], "reconnects at {attempts:?}");
    assert!(gave_up);
    let stop = *attempts.last().unwrap();
    m.run_until(stop + cfg.give_up_ms - 1);
    assert!(dials(&m.take()).is_empty(), "left alone for give_up_ms");
    m.run_until(stop + cfg.give_up_ms + 1_000);
    assert_eq!(dials(&m.take()), vec![pid(1)], "still wanted: tried again after the pause");
}

#[test]
fn a_clean_close_or_a_lost_unprotected_link_is_not_reconnected() {
    let mut m = manager(LinksConfig::default());
    m.want(0, 1, Purpose::Neighbourhood);
    m.open(0, 1, true);
    m.want(0, 2, Purpose::Random);
    m.open(0, 2, true);
    m.open(0, 3, false);
    m.take();
    m.close(1_000, 1, true);
    m.close(1_000, 2, false);
    m.close(1_000, 3, false);
    m.run_until(200_000);
    assert!(dials(&m.take()).is_empty());
    assert!(m.core.wanted(&pid(2)).is_empty(), "a random want ends with its link");
}

#[test]
fn silent_links_expire_and_heartbeats_go_only_to_idle_links() {
    let h = HealthConfig::default();
    let mut m = manager(LinksConfig::default());
    m.open(0, 1, true);
    m.open(0, 2, true);
    m.take();
    let mut beats = 0;
    let mut dropped = None;
    let mut now = 0;
    while now <= 200_000 {
        now += 1_000;
        // Peer 2 talks every second, and we send to it too; peer 1 is silent both ways.
        m.gate.heard(&pid(2), now);
        m.gate.sent(&pid(2), now);
        m.run_until(now);
        for o in m.take() {
            match o {
                Output::Effect(Effect::Broadcast { to, msg: Message::Heartbeat { .. } }) => {
                    assert!(!to.contains(&pid(2)), "no heartbeat on a busy link");
                    beats += usize::from(to.contains(&pid(1)));
                }
                Output::Disconnect(p) => {
                    assert_eq!(p, pid(1));
                    dropped.get_or_insert(now);
                }
                _ => {}
            }
        }
    }
    let at = dropped.expect("the silent link is dropped");
    assert!(at >= h.heartbeat_timeout_ms && at < h.heartbeat_timeout_ms + h.heartbeat_interval_ms, "at {at}");
    assert!(beats >= 2, "the idle link got heartbeats while it lasted ({beats})");
    assert_eq!(m.core.stats().expired, 1);
}

/// A peer some core found unresponsive is probed, and its link dropped `probe_timeout_ms` later if
/// nothing came back, long before the heartbeat timeout; a peer that answers keeps its link; a
/// peer heard from lately is not probed at all; a probe from a peer is answered at once.
#[test]
fn a_suspected_peer_is_probed_and_dropped_only_if_silent() {
    let h = HealthConfig::default();
    let mut m = manager(LinksConfig::default());
    for p in 1..=3 {
        m.open(0, p, true);
    }
    m.take();
    let probes = |out: &[Output]| -> Vec<PeerId> {
        out.iter()
            .filter_map(|o| match o {
                Output::Effect(Effect::Send { to, msg: Message::Probe { .. } }) => Some(*to),
                _ => None,
            })
            .collect()
    };
    // Peer 3 was heard from just now: no probe.
    m.gate.heard(&pid(3), 9_500);
    for p in 1..=3 {
        m.input(10_000, Input::Suspect { peer: pid(p) });
    }
    m.input(10_100, Input::Suspect { peer: pid(1) });
    assert_eq!(probes(&m.take()), vec![pid(1), pid(2)], "one probe each, none to a peer just heard");
    // Peer 2 answers (any frame); peer 1 stays silent.
    m.gate.heard(&pid(2), 10_080);
    m.run_until(10_000 + h.probe_timeout_ms - 1);
    assert!(closes_or_drops(&m.take()).is_empty(), "nothing dropped before the probe's time is up");
    m.run_until(10_000 + h.probe_timeout_ms);
    assert_eq!(closes_or_drops(&m.take()), vec![pid(1)], "the silent peer's link is dropped");
    assert!(10_000 + h.probe_timeout_ms < h.heartbeat_timeout_ms);
    assert_eq!(m.core.stats().expired, 1);
    // A probe from a peer gets a heartbeat back.
    m.input(20_000, Input::Probe { from: pid(2), seq: 7 });
    assert!(m.take().iter().any(
        |o| matches!(o, Output::Effect(Effect::Send { to, msg: Message::Heartbeat { seq: 7 } }) if *to == pid(2))
    ));
}

fn closes_or_drops(out: &[Output]) -> Vec<PeerId> {
    out.iter()
        .filter_map(|o| match o {
            Output::Disconnect(p) | Output::Close(p) => Some(*p),
            _ => None,
        })
        .collect()
}

/// An outbound link the manager never dialled (a transport's reconnect of its own) is held to
/// the hard cap like an inbound one: the case the policy proptest found (12 links under a cap
/// of 8 + 3 dials in flight).
#[test]
fn outbound_links_we_did_not_dial_respect_the_hard_cap() {
    let cfg = LinksConfig {
        high_watermark: 6,
        trim_to: 4,
        max_connections: 8,
        max_pending_dials: 3,
        ..LinksConfig::default()
    };
    let mut m = manager(cfg.clone());
    for p in 1..=12 {
        m.open(0, p, false);
    }
    assert_eq!(m.linked().len(), cfg.max_connections, "inbound refused at the cap");
    for p in 13..=16 {
        m.open(0, p, true);
    }
    assert_eq!(m.linked().len(), cfg.max_connections, "undialled outbound refused at the cap too");
    assert!(m.take().iter().any(|o| matches!(o, Output::Disconnect(p) if *p == pid(13))));
}

#[derive(Clone, Debug)]
enum Ev {
    Want(u8, u8),
    Release(u8, u8),
    Open(u8, bool),
    Close(u8, bool),
    Fail(u8),
    Keep(u8, bool),
    Set(u8, Vec<u8>),
    Time(u32),
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (1u8..20, 0u8..Purpose::ALL.len() as u8).prop_map(|(p, u)| Ev::Want(p, u)),
        (1u8..20, 0u8..Purpose::ALL.len() as u8).prop_map(|(p, u)| Ev::Release(p, u)),
        (1u8..20, any::<bool>()).prop_map(|(p, o)| Ev::Open(p, o)),
        (1u8..20, any::<bool>()).prop_map(|(p, c)| Ev::Close(p, c)),
        (1u8..20).prop_map(Ev::Fail),
        (1u8..20, any::<bool>()).prop_map(|(p, k)| Ev::Keep(p, k)),
        (0u8..Purpose::ALL.len() as u8, prop::collection::vec(1u8..20, 0..8)).prop_map(|(u, v)| Ev::Set(u, v)),
        (0u32..200_000).prop_map(Ev::Time),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever the transport and the other cores do, the manager never dials a peer it is
    /// linked to or already dialling, never has more dials in flight than allowed, trims only
    /// links neither side protects and that are old enough, and its invariants hold.
    #[test]
    fn the_policy_holds_under_any_events(events in prop::collection::vec(ev(), 1..120)) {
        let cfg = LinksConfig { high_watermark: 6, trim_to: 4, max_connections: 8, max_pending_dials: 3, ..LinksConfig::default() };
        let mut m = manager(cfg.clone());
        let mut now = 0u64;
        let mut dialing: BTreeSet<PeerId> = BTreeSet::new();
        for e in events {
            match e {
                Ev::Want(p, u) => m.want(now, p, Purpose::ALL[usize::from(u)]),
                Ev::Release(p, u) => m.input(now, Input::Release { peer: pid(p), purpose: Purpose::ALL[usize::from(u)] }),
                Ev::Open(p, o) => if !m.linked().contains(&pid(p)) { m.open(now, p, o) },
                Ev::Close(p, c) => if m.linked().contains(&pid(p)) { m.close(now, p, c) },
                Ev::Fail(p) => m.input(now, Input::TransportDialFailed { peer: pid(p) }),
                Ev::Keep(p, k) => m.input(now, Input::Keep { from: pid(p), keep: k }),
                Ev::Set(u, v) => m.input(now, Input::SetWanted { purpose: Purpose::ALL[usize::from(u)], peers: v.into_iter().map(pid).collect() }),
                Ev::Time(dt) => { now += u64::from(dt); m.run_until(now) }
            }
            let linked = m.linked();
            for o in m.take() {
                match o {
                    Output::Dial(p) => {
                        prop_assert!(!linked.contains(&p), "dialled a linked peer");
                        prop_assert!(dialing.insert(p), "dialled a peer already being dialled");
                    }
                    // A dial ends with the link, or with its failure (its timeout included).
                    Output::Link(LinkEvent::DialFailed { peer, .. } | LinkEvent::Up { peer, .. }) => {
                        dialing.remove(&peer);
                    }
                    Output::Close(p) => {
                        if let Some(info) = m.core.view().get(&p) {
                            let trim_ok = !info.purposes.protects() && !info.remote_keeps && now - info.opened_at >= cfg.min_link_age_ms;
                            prop_assert!(trim_ok, "closed a protected or young link: {:?}", info);
                        }
                    }
                    _ => {}
                }
            }
            dialing.retain(|p| m.core.is_dialing(p));
            prop_assert!(dialing.len() <= cfg.max_pending_dials);
        }
    }
}

/// A distrusted peer (graylisted, or shunned: below the publish threshold on a quorum of other
/// nodes' warnings) loses its link (closed with a goodbye), is not dialled for any purpose and its
/// inbound links are refused before any handshake, until its standing recovers. A peer below the
/// publish threshold on this node's evidence alone keeps its link.
#[test]
fn a_distrusted_peer_is_closed_refused_and_not_dialled() {
    use crate::reputation::{Standing, TrustView};
    for (standing, shunned) in [(Standing::Graylisted, false), (Standing::NoPublish, true)] {
        let trust = TrustView::default();
        let mut m = manager(LinksConfig::default());
        m.core = std::mem::replace(&mut m.core, manager(LinksConfig::default()).core).with_trust(trust.clone());
        m.want(0, 1, Purpose::Neighbourhood);
        m.open(10, 1, true);
        assert!(m.linked().contains(&pid(1)));
        m.take();
        trust.set(pid(1), standing);
        trust.set_shunned(pid(1), shunned);
        m.input(20, Input::Distrusted { peer: pid(1) });
        assert_eq!(closes(&m.take()), vec![pid(1)], "its link is closed ({standing:?})");
        m.close(30, 1, true);
        m.run_until(10 * 60_000);
        assert!(dials(&m.take()).is_empty(), "a protected want does not redial a {standing:?} peer");
        m.want(700_000, 1, Purpose::Manual);
        assert_eq!(failed(&m.take()), vec![(pid(1), DialError::Distrusted)]);
        let generation = m.gate.open(pid(1), 710_000);
        m.input(710_000, Input::Connected { peer: pid(1), outbound: false, generation });
        let out = m.take();
        assert!(out.iter().any(|o| matches!(o, Output::Disconnect(p) if *p == pid(1))), "inbound refused: {out:?}");
        assert!(!m.linked().contains(&pid(1)));
        trust.set(pid(1), Standing::NoPublish);
        trust.set_shunned(pid(1), false);
        m.want(720_000, 1, Purpose::Manual);
        assert_eq!(dials(&m.take()), vec![pid(1)], "dialled again once only our own evidence is against it");
    }
}

/// A peer graylisted while its handshake ran is dropped as soon as the link opens, and its
/// close is reported as such (not as a lost link).
#[test]
fn a_peer_graylisted_during_its_handshake_is_dropped_with_that_reason() {
    use crate::reputation::{Standing, TrustView};
    let trust = TrustView::default();
    let mut m = manager(LinksConfig::default());
    m.core = std::mem::replace(&mut m.core, manager(LinksConfig::default()).core).with_trust(trust.clone());
    m.want(0, 1, Purpose::Random);
    m.take();
    let p = pid(1);
    let generation = m.gate.open(p, 10);
    m.input(10, Input::Connected { peer: p, outbound: true, generation });
    let nonce = m
        .take()
        .into_iter()
        .find_map(|o| match o {
            Output::Effect(Effect::Send { msg: Message::Hello { nonce }, .. }) => Some(nonce),
            _ => None,
        })
        .expect("a challenge is sent");
    trust.set(p, Standing::Graylisted);
    let signature = ident(1).sign(&transcript(&nonce, &p, &pid(0))).to_vec();
    m.input(11, Input::Proof { from: p, signature });
    let out = m.take();
    assert!(out.iter().any(|o| matches!(o, Output::Disconnect(p) if *p == pid(1))), "{out:?}");
    m.close(20, 1, false);
    let closed: Vec<CloseReason> = m
        .take()
        .iter()
        .filter_map(|o| match o {
            Output::Effect(Effect::Event(Event::Link(LinkChange::Closed { reason, .. }))) => Some(*reason),
            _ => None,
        })
        .collect();
    assert_eq!(closed, vec![CloseReason::Distrusted]);
}
