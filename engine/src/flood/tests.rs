use super::*;
use crate::identity::Identity;
use crate::wire::{NodeInfo, Rumor, RumorBody};
use proptest::prelude::*;

const SECOND: Millis = 1_000;
const MINUTE: Millis = 60 * SECOND;

fn rumor(secret: u8, seq: u64) -> Rumor {
    let body = RumorBody { seq, peers: Vec::new(), warnings: Vec::new() };
    Rumor::seal(&Identity::from_secret(&[secret; 32]), &body, 3, 1_000).expect("a small body")
}

fn requests(n: u32) -> Charge {
    Charge { rumors: 0, requests: n }
}

fn rumors(n: u32) -> Charge {
    Charge { rumors: n, requests: 0 }
}

/// Feed `(time, charge)` in order; the verdicts.
fn feed(cfg: &FloodConfig, frames: impl IntoIterator<Item = (Millis, Charge)>) -> Vec<Admit> {
    let mut b = Budget::new(cfg, 0);
    frames.into_iter().map(|(t, c)| b.admit(cfg, t, c)).collect()
}

#[test]
fn charges_own_rumours_and_requests_only() {
    let peer = Identity::from_secret(&[1; 32]).peer_id();
    let other = PeerId([9; 32]);
    let gossip = Message::Gossip { rumors: vec![rumor(1, 1), rumor(2, 1), rumor(1, 2), rumor(3, 1)].into() };
    assert_eq!(Charge::of(&peer, &gossip), rumors(2), "the peer's own two, not the two it relays");
    let find = LookupMsg::FindNode { query: 1, target: [0; 32] };
    let answer =
        LookupMsg::Nodes { query: 1, peers: vec![NodeInfo { peer: other, full: false, holds: false, contact: false }] };
    let chunk = crate::content::ChunkId([5; 32]);
    for msg in [
        Message::Lookup(find.clone()),
        Message::Relay { ahead: vec![other], behind: Vec::new(), msg: Relayed::Lookup(find.clone()) },
        Message::Relay { ahead: Vec::new(), behind: vec![other], msg: Relayed::Lookup(find) },
        Message::Route { id: 1, chunk, path: vec![other, peer] },
        Message::GetChunk { chunk },
        Message::GetVia { from: other, chunk },
        Message::PexRequest { max: 50 },
    ] {
        assert_eq!(Charge::of(&peer, &msg), requests(1), "{msg:?}");
    }
    for msg in [
        Message::Lookup(answer.clone()),
        Message::Relay { ahead: Vec::new(), behind: Vec::new(), msg: Relayed::Lookup(answer) },
        Message::NoChunk { chunk },
        Message::Heartbeat { seq: 1 },
        Message::PexResponse { peers: vec![other] },
        Message::Holdings { held: vec![chunk], released: Vec::new(), full: false },
    ] {
        assert!(Charge::of(&peer, &msg).is_free(), "{msg:?}");
    }
}

#[test]
fn a_bucket_refills_at_its_rate_up_to_its_burst() {
    let rate = Rate { burst: 10, per_min: 6 };
    let mut b = TokenBucket::full(rate, 0);
    b.take(10);
    assert!(!b.has(1));
    b.refill(9_999, rate);
    assert!(!b.has(1), "one token every 10 s, not before");
    b.refill(10_000, rate);
    assert!(b.has(1) && !b.has(2));
    b.refill(10 * MINUTE, rate);
    assert_eq!(b.tokens(), 10, "never past the burst");
    // Time handed out of order refills nothing.
    b.take(10);
    b.refill(5 * MINUTE, rate);
    assert_eq!(b.tokens(), 0);
}

/// `n` frames of `charge` spread evenly over `[from, from + over)`.
fn spread(n: u64, from: Millis, over: Millis, charge: Charge) -> impl Iterator<Item = (Millis, Charge)> {
    (0..n).map(move |i| (from + i * over / n, charge))
}

/// The load measured on the busiest link (see `config.rs`), replayed for two hours, never
/// trips the default budgets: every five minutes 249 questions in one second, 318 within ten,
/// 369 within the minute, 1,041 within the five (more than measured in every window from 1 s
/// to 10 min); an announcement a minute, three warnings within a second every five minutes.
#[test]
fn honest_peaks_pass_the_default_budgets() {
    let cfg = FloodConfig::default();
    let mut frames = Vec::new();
    for round in 0..24u64 {
        let t0 = round * 5 * MINUTE;
        frames.extend(spread(249, t0, SECOND, requests(1)));
        frames.extend(spread(69, t0 + SECOND, 9 * SECOND, requests(1)));
        frames.extend(spread(51, t0 + 10 * SECOND, 50 * SECOND, requests(1)));
        frames.extend(spread(672, t0 + MINUTE, 4 * MINUTE, requests(1)));
    }
    assert!(feed(&cfg, frames).iter().all(|a| *a == Admit::Pass), "the request peak tripped the budget");
    let mut frames = Vec::new();
    for minute in 0..120u64 {
        let t0 = minute * MINUTE;
        frames.push((t0, rumors(1)));
        if minute % 5 == 0 {
            frames.extend((0..3).map(|i| (t0 + 10 + i * 100, rumors(1))));
        }
    }
    assert!(feed(&cfg, frames).iter().all(|a| *a == Admit::Pass), "the rumour peak tripped the budget");
}

#[test]
fn a_flood_is_reported_once_per_window() {
    let cfg = FloodConfig::default();
    // 100 questions a second (ten times the refill) for 100 s: the budget runs out after 6.7 s.
    let verdicts = feed(&cfg, spread(10_000, 0, 100 * SECOND, requests(1)));
    let passed = verdicts.iter().filter(|a| **a == Admit::Pass).count();
    // The burst, then the refill: 600 + 10 a second.
    assert!((600 + 990..=600 + 1_000).contains(&passed), "{passed} passed");
    let reports: Vec<Millis> =
        verdicts.iter().enumerate().filter(|(_, a)| **a == Admit::Report).map(|(i, _)| i as Millis * 10).collect();
    assert_eq!(reports.len(), 4, "one report per 30 s window: {reports:?}");
    assert!(reports.windows(2).all(|w| w[1] - w[0] >= cfg.report_interval_ms), "{reports:?}");
    // One class over budget silences the other's report within the window too.
    let mut b = Budget::new(&cfg, 0);
    assert_eq!(b.admit(&cfg, 0, rumors(cfg.max_rumors_burst + 1)), Admit::Report);
    assert_eq!(b.admit(&cfg, 1, requests(cfg.max_requests_burst + 1)), Admit::Drop);
    assert_eq!(b.admit(&cfg, cfg.report_interval_ms, requests(cfg.max_requests_burst + 1)), Admit::Report);
}

#[test]
fn a_frame_over_budget_is_dropped_whole_and_takes_nothing() {
    let cfg = FloodConfig { max_rumors_burst: 5, ..FloodConfig::default() };
    let mut b = Budget::new(&cfg, 0);
    assert_eq!(b.admit(&cfg, 0, rumors(3)), Admit::Pass);
    assert_eq!(b.admit(&cfg, 0, rumors(3)), Admit::Report);
    assert_eq!(b.tokens(), (2, 600), "the dropped frame took nothing");
    assert_eq!(b.admit(&cfg, 0, rumors(2)), Admit::Pass);
    assert_eq!(b.admit(&cfg, 0, Charge::default()), Admit::Pass, "free frames always pass");
    assert_eq!(b.tokens(), (0, 600));
}

#[test]
fn errors_name_the_field() {
    let bad = [
        (FloodConfig { max_rumors_burst: 0, ..FloodConfig::default() }, "flood.max_rumors_burst"),
        (FloodConfig { rumors_per_min: 0, ..FloodConfig::default() }, "flood.rumors_per_min"),
        (FloodConfig { max_requests_burst: 0, ..FloodConfig::default() }, "flood.max_requests_burst"),
        (FloodConfig { requests_per_min: 0, ..FloodConfig::default() }, "flood.requests_per_min"),
        (FloodConfig { report_interval_ms: 999, ..FloodConfig::default() }, "flood.report_interval_ms"),
    ];
    for (cfg, field) in bad {
        let node = crate::NodeConfig { flood: cfg, ..crate::NodeConfig::default() };
        assert_eq!(node.validate().unwrap_err().field, field);
    }
    FloodConfig::default().validate().unwrap();
}

proptest! {
    /// Whatever arrives, what passes within any span from the start is at most the burst plus
    /// the refill over the span (the bucket's law), and the verdicts depend on nothing else.
    #[test]
    fn what_passes_never_exceeds_burst_plus_refill(
        frames in prop::collection::vec((0u64..5_000, 0u32..8), 1..400),
        burst in 1u32..50,
        per_min in 1u32..600,
    ) {
        let cfg = FloodConfig { max_requests_burst: burst, requests_per_min: per_min, ..FloodConfig::default() };
        let mut t = 0;
        let timed: Vec<(Millis, Charge)> = frames.iter().map(|(gap, n)| { t += gap; (t, requests(*n)) }).collect();
        let verdicts = feed(&cfg, timed.clone());
        prop_assert_eq!(&verdicts, &feed(&cfg, timed.clone()));
        let mut passed: u64 = 0;
        for ((at, c), v) in timed.iter().zip(&verdicts) {
            if *v == Admit::Pass {
                passed += u64::from(c.requests);
            }
            prop_assert!(passed * 60_000 <= u64::from(burst) * 60_000 + at * u64::from(per_min));
        }
    }

    /// A sender that never asks for more than the refill brings in between is never dropped.
    #[test]
    fn a_sender_within_the_rate_is_never_dropped(
        gaps in prop::collection::vec(0u64..20_000, 1..300),
        per_min in 1u32..600,
    ) {
        let cfg = FloodConfig { max_requests_burst: 1, requests_per_min: per_min, ..FloodConfig::default() };
        let spacing = 60_000u64.div_ceil(u64::from(per_min));
        let mut t = 0;
        let timed: Vec<(Millis, Charge)> = gaps.iter().map(|g| { t += spacing + g; (t, requests(1)) }).collect();
        prop_assert!(feed(&cfg, timed).iter().all(|a| *a == Admit::Pass));
    }
}
