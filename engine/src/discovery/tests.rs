//! Discovery core: initial dials, PEX answers and limits, topping up to the target degree.

use super::core::{DiscoveryCore, Input, Output};
use crate::config::DiscoveryConfig;
use crate::core::{Core, Effect, LinkEvent};
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

fn core(boot: &[PeerId]) -> DiscoveryCore {
    DiscoveryCore::new(me(), DiscoveryConfig::default(), ChaCha8Rng::seed_from_u64(5), boot)
}

fn drain(c: &mut DiscoveryCore) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn dials(out: &[Output]) -> Vec<PeerId> {
    out.iter().filter_map(|o| if let Output::Effect(Effect::Dial(p)) = o { Some(*p) } else { None }).collect()
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
    c.handle(10, Input::Link(LinkEvent::Up { peer: pid(1), outbound: true }));
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
    // A request from a peer we are not connected to is ignored.
    c.handle(30, Input::PexRequest { from: pid(77), max: 10 });
    assert!(drain(&mut c).is_empty());
}

#[test]
fn pex_response_tops_up_to_target() {
    let mut c = core(&[pid(1)]);
    c.handle_timeout(0);
    assert_eq!(dials(&drain(&mut c)), vec![pid(1)]);
    c.handle(10, Input::Link(LinkEvent::Up { peer: pid(1), outbound: true }));
    drain(&mut c);
    c.handle(20, Input::PexResponse { from: pid(1), peers: (2..40).map(pid).collect() });
    let d = dials(&drain(&mut c));
    assert_eq!(d.len(), 7, "1 connected + 7 dialling = target 8");
    assert!(!d.contains(&pid(1)));
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
    /// Whatever happens, discovery never dials itself or a peer it is connected to or already
    /// dialling, keeps dials in flight within the limit, and keeps the registry bounded.
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
            let before_dialing: BTreeSet<PeerId> = c.dialing().copied().collect();
            // A rescan forgets dials older than DIAL_STALE_MS and may try those peers again.
            let rescan = matches!(e, Ev::Tick);
            match e {
                Ev::Up(p) => c.handle(now, Input::Link(LinkEvent::Up { peer: pid(p), outbound: true })),
                Ev::Down(p) => c.handle(now, Input::Link(LinkEvent::Down { peer: pid(p), clean: false })),
                Ev::Fail(p) => c.handle(now, Input::Link(LinkEvent::DialFailed { peer: pid(p) })),
                Ev::Pex(f, v) => c.handle(now, Input::PexResponse { from: pid(f), peers: v.into_iter().map(pid).collect() }),
                Ev::Tick => { now += cfg.rescan_interval_ms; c.handle_timeout(now) }
            }
            let batch = dials(&drain(&mut c));
            prop_assert_eq!(batch.iter().collect::<BTreeSet<_>>().len(), batch.len(), "same peer twice in one batch");
            for d in batch {
                prop_assert!(d != me());
                prop_assert!(!c.connected().contains(&d), "dialled a connected peer");
                prop_assert!(rescan || !before_dialing.contains(&d), "dialled twice");
            }
            c.check_invariants();
            prop_assert!(c.dialing().count() <= cfg.max_pending_dials);
            prop_assert!(c.registry().len() <= cfg.registry_max_peers);
            prop_assert!(!c.registry().contains(&me()));
        }
    }
}
