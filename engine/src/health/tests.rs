//! Health core: backoff schedule laws, failure detection, reconnect attempts and give-up.

use super::core::{backoff_delay, HealthCore, Input};
use crate::config::HealthConfig;
use crate::core::{Core, Effect, LinkEvent};
use crate::observer::Event;
use crate::types::PeerId;
use crate::wire::Message;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn pid(i: u8) -> PeerId {
    PeerId([i; 32])
}

fn drain(c: &mut HealthCore) -> Vec<Effect> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// Advance to `until`, firing every timeout on the way; returns all effects with their times.
fn run_until(c: &mut HealthCore, until: u64) -> Vec<(u64, Effect)> {
    let mut out = Vec::new();
    while let Some(t) = c.next_timeout().filter(|t| *t <= until) {
        c.handle_timeout(t);
        out.extend(drain(c).into_iter().map(|e| (t, e)));
    }
    out
}

#[test]
fn default_backoff_is_5_15_45_seconds() {
    let cfg = HealthConfig::default();
    let d: Vec<u64> = (0..4).map(|a| backoff_delay(&cfg, a)).collect();
    assert_eq!(d, vec![5_000, 15_000, 45_000, 45_000]);
}

proptest! {
    #[test]
    fn backoff_is_monotone_and_capped(base in 1u64..100_000, mult in 1u32..10, max_extra in 0u64..1_000_000, attempts in 0u32..64) {
        let cfg = HealthConfig { reconnect_base_ms: base, reconnect_multiplier: mult, reconnect_max_ms: base + max_extra, ..HealthConfig::default() };
        prop_assert_eq!(backoff_delay(&cfg, 0), base);
        let mut prev = 0;
        for a in 0..attempts {
            let d = backoff_delay(&cfg, a);
            prop_assert!(d >= prev && d <= cfg.reconnect_max_ms);
            prev = d;
        }
    }
}

#[test]
fn silent_peer_expires_then_reconnects_three_times_and_gives_up() {
    let cfg = HealthConfig::default();
    let mut c = HealthCore::new(cfg.clone(), ChaCha8Rng::seed_from_u64(1));
    c.handle(0, Input::Link(LinkEvent::Up { peer: pid(1), outbound: true }));
    // Run the core's timers for a long while, failing every reconnect dial at once.
    let (mut expired_at, mut dials, mut gave_up) = (None, vec![], false);
    while let Some(t) = c.next_timeout().filter(|t| *t <= 1_000_000) {
        c.handle_timeout(t);
        c.check_invariants();
        for e in drain(&mut c) {
            match e {
                Effect::Disconnect(p) if p == pid(1) => expired_at = Some(t),
                Effect::Dial(p) if p == pid(1) => {
                    dials.push(t);
                    c.handle(t, Input::Link(LinkEvent::DialFailed { peer: pid(1) }));
                    gave_up |= drain(&mut c).contains(&Effect::Event(Event::ReconnectGaveUp { peer: pid(1) }));
                }
                _ => {}
            }
        }
    }
    let expired_at = expired_at.expect("silent peer must be disconnected");
    assert!(
        expired_at >= cfg.heartbeat_timeout_ms && expired_at < cfg.heartbeat_timeout_ms + cfg.heartbeat_interval_ms
    );
    let gaps: Vec<u64> = dials.iter().scan(expired_at, |prev, t| Some(t - std::mem::replace(prev, *t))).collect();
    assert_eq!(gaps, vec![5_000, 15_000, 45_000], "three attempts with exponential backoff");
    assert!(gave_up);
}

#[test]
fn heartbeats_keep_a_connection_alive() {
    let cfg = HealthConfig::default();
    let mut c = HealthCore::new(cfg, ChaCha8Rng::seed_from_u64(2));
    c.handle(0, Input::Link(LinkEvent::Up { peer: pid(1), outbound: false }));
    let mut beats = 0;
    for step in 1..=20u64 {
        let now = step * 20_000;
        c.handle(now, Input::Heartbeat { from: pid(1), seq: step });
        for (_, e) in run_until(&mut c, now) {
            assert_ne!(e, Effect::Disconnect(pid(1)));
            if matches!(e, Effect::Broadcast { msg: Message::Heartbeat { .. }, .. }) {
                beats += 1;
            }
        }
    }
    assert!(c.connections() == 1);
    assert!((12..=14).contains(&beats), "one heartbeat per 30 s over 400 s, got {beats}");
}

#[test]
fn a_link_closed_on_purpose_is_not_reconnected() {
    let mut c = HealthCore::new(HealthConfig::default(), ChaCha8Rng::seed_from_u64(3));
    c.handle(0, Input::Link(LinkEvent::Up { peer: pid(1), outbound: true }));
    c.handle(0, Input::Link(LinkEvent::Up { peer: pid(2), outbound: true }));
    c.handle(1_000, Input::Link(LinkEvent::Down { peer: pid(1), clean: true }));
    c.handle(1_000, Input::Link(LinkEvent::Down { peer: pid(2), clean: false }));
    let eff = run_until(&mut c, 120_000);
    let dials: Vec<&Effect> = eff.iter().map(|(_, e)| e).filter(|e| matches!(e, Effect::Dial(_))).collect();
    assert!(dials.iter().all(|e| **e == Effect::Dial(pid(2))), "only the lost link is redialled: {dials:?}");
    assert!(!dials.is_empty(), "the lost link is redialled");
    assert_eq!(c.reconnecting().collect::<Vec<_>>(), vec![&pid(2)]);
}

#[test]
fn reconnect_succeeds_and_is_cleared() {
    let mut c = HealthCore::new(HealthConfig::default(), ChaCha8Rng::seed_from_u64(3));
    c.handle(0, Input::Link(LinkEvent::Up { peer: pid(1), outbound: true }));
    c.handle(1_000, Input::Link(LinkEvent::Down { peer: pid(1), clean: false }));
    let eff = run_until(&mut c, 6_000);
    assert!(eff.iter().any(|(t, e)| *t == 6_000 && *e == Effect::Dial(pid(1))));
    c.handle(6_100, Input::Link(LinkEvent::Up { peer: pid(1), outbound: true }));
    assert_eq!(c.reconnecting().count(), 0);
    assert_eq!(c.connections(), 1);
}
