//! Liveness laws and the backoff schedule.

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;

fn pid(i: u8) -> PeerId {
    PeerId([i; 32])
}

#[test]
fn default_backoff_is_5_15_45_seconds() {
    let c = crate::config::LinksConfig::default();
    let d: Vec<u64> =
        (0..4).map(|a| backoff_delay(c.reconnect_base_ms, c.reconnect_multiplier, c.reconnect_max_ms, a)).collect();
    assert_eq!(d, vec![5_000, 15_000, 45_000, 45_000]);
}

proptest! {
    #[test]
    fn backoff_is_monotone_and_capped(base in 1u64..100_000, mult in 1u32..10, max_extra in 0u64..1_000_000, attempts in 0u32..64) {
        let max = base + max_extra;
        prop_assert_eq!(backoff_delay(base, mult, max, 0), base);
        let mut prev = 0;
        for a in 0..attempts {
            let d = backoff_delay(base, mult, max, a);
            prop_assert!(d >= prev && d <= max);
            prev = d;
        }
    }

    /// Whatever the traffic, a link is expired exactly when it has been silent for the timeout
    /// (at the first tick after), and a heartbeat goes only where nothing was sent for an
    /// interval, so no link is ever silent (from our side) for two intervals.
    #[test]
    fn expiry_and_heartbeats_follow_the_stamps(heard in prop::collection::vec(0u64..400_000, 1..8), sent in prop::collection::vec(0u64..400_000, 1..8)) {
        let cfg = HealthConfig::default();
        let mut l = Liveness::new(cfg.clone(), &mut ChaCha8Rng::seed_from_u64(1));
        let now = l.next_timeout() + 400_000;
        let links: Vec<(PeerId, u64, u64)> =
            heard.iter().zip(&sent).enumerate().map(|(i, (h, s))| (pid(i as u8), *h, *s)).collect();
        let t = l.tick(now, links.clone());
        for (p, h, s) in links {
            let silent = now - h >= cfg.heartbeat_timeout_ms;
            prop_assert_eq!(t.expired.contains(&p), silent);
            prop_assert_eq!(t.beat.contains(&p), !silent && now - s >= cfg.heartbeat_interval_ms);
        }
        prop_assert!(l.next_timeout() == now + cfg.heartbeat_interval_ms);
        prop_assert_eq!(l.tick(now + 1, []), Tick::default(), "nothing before the next tick");
    }
}

/// A probe per suspect at a time, none to a peer heard within the timeout; at the deadline a
/// peer heard from since its probe is alive, one not heard is dead, one whose link went is
/// neither; a forgotten probe leaves nothing behind.
#[test]
fn probes_declare_dead_only_peers_silent_since_their_probe() {
    let cfg = HealthConfig { probe_timeout_ms: 1_000, ..HealthConfig::default() };
    let mut p = Probes::new(&cfg);
    assert!(p.suspect(5_000, pid(1), 0));
    assert!(!p.suspect(5_100, pid(1), 0), "one probe at a time");
    assert!(!p.suspect(5_000, pid(2), 4_500), "heard within the timeout");
    assert!(p.suspect(5_000, pid(2), 0));
    assert!(p.suspect(5_000, pid(3), 0));
    assert!(p.suspect(5_000, pid(4), 0));
    p.forget(&pid(4));
    p.check_invariants();
    assert_eq!(p.next_timeout(), Some(6_000));
    assert!(p.due(5_999, |_| Some(0)).is_empty());
    let heard = |q: &PeerId| match q.0[0] {
        1 => Some(0),     // silent since before its probe
        2 => Some(5_500), // answered
        _ => None,        // link gone meanwhile
    };
    assert_eq!(p.due(6_000, heard), vec![pid(1)]);
    assert_eq!(p.next_timeout(), None);
    p.check_invariants();
    assert!(p.suspect(7_100, pid(1), 0), "probed again once the last probe is over");
}
