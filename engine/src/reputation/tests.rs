//! Reputation: the laws of the score (bounded, monotone in offences and served requests, decay
//! toward neutral, persistence round trip), loss never read as malice, malice graylisting at
//! once and forgiven at the computed time, the record bound, batching, ranking, config errors.

use super::core::{Input, Output, PersistOp, ReputationCore};
use super::persist::{DecodeError, StoredRecord, VERSION};
use super::score::{
    Counts, OffenceClass, OffenceKind, Outcome, Record, Standing, RECHECK_RESOLUTION_MS, SCORE_MAX, SCORE_MIN,
};
use crate::config::{NodeConfig, ReputationConfig};
use crate::core::{Core, LinkEvent};
use crate::time::Millis;
use crate::types::PeerId;
use proptest::prelude::*;
use std::collections::BTreeMap;

const SECOND: Millis = 1_000;
const HOUR: Millis = 3_600 * SECOND;
const EPOCH: u64 = 1_700_000_000_000;

const KINDS: [OffenceKind; 10] = [
    OffenceKind::BadSignature,
    OffenceKind::AuthFailed,
    OffenceKind::BadChunk,
    OffenceKind::FailedVerification,
    OffenceKind::Unauthenticated,
    OffenceKind::InvalidEnvelope,
    OffenceKind::Flood,
    OffenceKind::MalformedFrame,
    OffenceKind::AuthTimeout,
    OffenceKind::StaleEnvelope,
];

fn cfg() -> ReputationConfig {
    ReputationConfig::default()
}

fn pid(i: u8) -> PeerId {
    PeerId([i; 32])
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Up,
    Down { clean: bool },
    Req(Outcome),
    Offence(OffenceKind),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        3 => (1u64..5_000).prop_map(|rtt_ms| Outcome::Served { rtt_ms }),
        1 => Just(Outcome::Failed),
        1 => Just(Outcome::Withheld),
    ]
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        2 => Just(Ev::Up),
        2 => any::<bool>().prop_map(|clean| Ev::Down { clean }),
        4 => outcome().prop_map(Ev::Req),
        2 => prop::sample::select(KINDS.to_vec()).prop_map(Ev::Offence),
    ]
}

/// Events with the time since the previous one (up to two hours).
fn history() -> impl Strategy<Value = Vec<(Millis, Ev)>> {
    prop::collection::vec((0..2 * HOUR, ev()), 0..60)
}

fn apply(r: &mut Record, now: Millis, e: Ev, c: &ReputationConfig) {
    match e {
        Ev::Up => r.link_up(now, c),
        Ev::Down { clean } => r.link_down(now, clean, c),
        Ev::Req(o) => r.request(now, o, c),
        Ev::Offence(k) => r.offence(now, k, c),
    }
}

fn replay(h: &[(Millis, Ev)], c: &ReputationConfig) -> (Record, Millis) {
    let mut r = Record::new(0);
    let mut now = 0;
    for &(dt, e) in h {
        now += dt;
        apply(&mut r, now, e, c);
    }
    (r, now)
}

fn input(peer: PeerId, e: Ev) -> Input {
    match e {
        Ev::Up => Input::Link(LinkEvent::Up { peer, outbound: true }),
        Ev::Down { clean } => Input::Link(LinkEvent::Down { peer, clean }),
        Ev::Req(outcome) => Input::Request { peer, outcome },
        Ev::Offence(kind) => Input::Offence { peer, kind },
    }
}

/// Fire every timeout due up to `until`, then hand `input` (if any) at `until`; outputs with the
/// time they came out.
fn drive(core: &mut ReputationCore, until: Millis, input: Option<Input>, log: &mut Vec<(Millis, Output)>) {
    while let Some(t) = core.next_timeout().filter(|&t| t <= until) {
        core.handle_timeout(t);
        core.check_invariants();
        log.extend(std::iter::from_fn(|| core.poll_output()).map(|o| (t, o)));
    }
    if let Some(i) = input {
        core.handle(until, i);
        core.check_invariants();
        log.extend(std::iter::from_fn(|| core.poll_output()).map(|o| (until, o)));
    }
}

fn standings(log: &[(Millis, Output)]) -> Vec<(Millis, PeerId, Standing)> {
    log.iter()
        .filter_map(|(t, o)| match o {
            Output::Standing { peer, standing, .. } => Some((*t, *peer, *standing)),
            _ => None,
        })
        .collect()
}

/// A peer at its best: linked a day, a thousand fast answers.
fn model_peer(c: &ReputationConfig) -> (Record, Millis) {
    let mut r = Record::new(0);
    r.link_up(0, c);
    for i in 1..=1_000 {
        r.request(i * 60 * SECOND, Outcome::Served { rtt_ms: 50 }, c);
    }
    (r, 1_000 * 60 * SECOND)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_score_is_bounded_for_any_history(h in history(), later in 0..100 * HOUR) {
        let c = cfg();
        let mut r = Record::new(0);
        let mut now = 0;
        for (dt, e) in h {
            now += dt;
            apply(&mut r, now, e, &c);
            let s = r.score(now, &c);
            prop_assert!((SCORE_MIN..=SCORE_MAX).contains(&s), "{s}");
            let p = r.components(&c);
            prop_assert!(p[0] >= 0.0 && p[0] <= c.uptime_weight);
            prop_assert!(p[1] <= 0.0 && p[1] >= -c.churn_weight);
            prop_assert!(p[2].abs() <= c.availability_weight);
            prop_assert!(p[3] <= 0.0 && p[3] >= -c.deficit_weight);
            prop_assert!(p[4] >= 0.0 && p[4] <= c.responsiveness_weight);
        }
        let s = r.score(now + later, &c);
        prop_assert!((SCORE_MIN..=SCORE_MAX).contains(&s), "{s}");
    }

    #[test]
    fn an_offence_never_raises_the_score(h in history(), kind in prop::sample::select(KINDS.to_vec()), later in 0..50 * HOUR) {
        let c = cfg();
        let (before, now) = replay(&h, &c);
        let mut after = before.clone();
        after.offence(now, kind, &c);
        prop_assert!(after.score(now, &c) <= before.score(now, &c));
        prop_assert!(after.score(now + later, &c) <= before.score(now + later, &c));
        if kind.class() == OffenceClass::Malice && before.score(now, &c) > SCORE_MIN + c.malice_weight {
            prop_assert!(after.score(now, &c) <= before.score(now, &c) - c.malice_weight + 1e-9);
        }
    }

    /// Served in time with an RTT no worse than the average so far: never lowers the score. Any
    /// RTT within `late_after_ms`: never lowers the served ratio.
    #[test]
    fn a_served_request_never_lowers_the_score(h in history(), rtt in 1u64..=2_000, later in 0..50 * HOUR) {
        let c = cfg();
        let (before, now) = replay(&h, &c);
        let rtt_ms = before.counts.rtt_ewma_ms.map_or(rtt, |e| rtt.min(e.floor() as u64));
        let mut after = before.clone();
        after.request(now, Outcome::Served { rtt_ms }, &c);
        prop_assert!(after.score(now, &c) >= before.score(now, &c) - 1e-9);
        prop_assert!(after.score(now + later, &c) >= before.score(now + later, &c) - 1e-9);
        let mut any = before.clone();
        any.request(now, Outcome::Served { rtt_ms: rtt }, &c);
        prop_assert!(any.at(now, &c).availability(&c) >= before.at(now, &c).availability(&c));
    }

    /// With no input (and no open link) credit and penalties each shrink; a record holding only
    /// one of them moves straight toward 0; every record ends at neutral. (A record holding both
    /// may rise while its fast-decaying loss penalties fade faster than its uptime credit: that
    /// is the forgiveness the half-lives are for.)
    #[test]
    fn with_no_input_the_score_decays_toward_neutral(h in history(), a in 0..24 * HOUR, b in 0..24 * HOUR) {
        let c = cfg();
        let (mut r, now) = replay(&h, &c);
        r.link_down(now, true, &c);
        let (t1, t2) = (now + a.min(b), now + a.max(b));
        let (p1, p2) = (r.at(t1, &c).components(&c), r.at(t2, &c).components(&c));
        let credit = |p: &[f64]| p.iter().filter(|x| **x > 0.0).sum::<f64>();
        let debit = |p: &[f64]| p.iter().filter(|x| **x < 0.0).sum::<f64>();
        prop_assert!(credit(&p2) <= credit(&p1) + 1e-9);
        prop_assert!(debit(&p2) >= debit(&p1) - 1e-9);
        for (x, y) in p1.iter().zip(&p2) {
            prop_assert!(y.abs() <= x.abs() + 1e-9 && x * y >= 0.0, "a component grew or changed sign");
        }
        if credit(&p1) == 0.0 || debit(&p1) == 0.0 {
            prop_assert!(r.score(t2, &c).abs() <= r.score(t1, &c).abs() + 1e-9);
        }
        prop_assert!(r.score(now + 40 * 24 * 6 * HOUR, &c).abs() < 1e-3);
    }

    /// Stored at `now`, read back by a node with another epoch at the same instant or later:
    /// the same score as the record left alone (once its link is closed).
    #[test]
    fn persistence_round_trip_preserves_the_score(h in history(), restart in 0..30 * 24 * HOUR, t2 in 0..HOUR) {
        let c = cfg();
        let (r, now) = replay(&h, &c);
        let stored = StoredRecord::new(pid(1), &r, now, EPOCH, &c);
        let decoded = StoredRecord::decode(&stored.encode()).unwrap();
        prop_assert_eq!(&decoded, &stored);
        // Another node clock, whose zero is `restart` after the store.
        let epoch2 = EPOCH + now + restart;
        let back = decoded.to_record(0, epoch2, &c);
        let mut closed = r.clone();
        closed.link_down(now, true, &c);
        prop_assert!((back.score(0, &c) - closed.score(now + restart, &c)).abs() < 1e-6);
        prop_assert!((back.score(t2, &c) - closed.score(now + restart + t2, &c)).abs() < 1e-6);
        prop_assert_eq!(back.sessions, r.sessions);
        // At the instant of storing, an open link makes no difference yet.
        prop_assert!((decoded.to_record(0, EPOCH + now, &c).score(0, &c) - r.score(now, &c)).abs() < 1e-6);
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = StoredRecord::decode(&bytes);
    }

    /// The search finds the first change: the standing holds at every sampled instant before,
    /// and differs at the instant found.
    #[test]
    fn next_change_is_the_first_change(h in history(), linked in any::<bool>()) {
        let c = cfg();
        let (mut r, now) = replay(&h, &c);
        if !linked {
            r.link_down(now, false, &c);
        }
        let here = r.standing(now, &c);
        let until = r.next_change(now, &c);
        if let Some(t) = until {
            prop_assert!(t > now);
            prop_assert_ne!(r.standing(t, &c), here);
        }
        let end = until.unwrap_or(now + 200 * HOUR).saturating_sub(RECHECK_RESOLUTION_MS);
        for i in 0..=64 {
            let t = now + (end.saturating_sub(now)) * i / 64;
            prop_assert_eq!(r.standing(t, &c), here, "changed at {} before {:?}", t, until);
        }
    }

    /// At most `max_peers_scored` records; a graylisted one is forgotten only when every other
    /// is graylisted too.
    #[test]
    fn the_record_bound_holds_and_spares_graylisted_peers(
        events in prop::collection::vec((0u8..24, 0..10 * 60 * SECOND, ev()), 1..200),
    ) {
        let c = ReputationConfig { max_peers_scored: 6, ..cfg() };
        let mut core = ReputationCore::new(c.clone(), EPOCH);
        let mut log = Vec::new();
        let mut now = 0;
        for (i, dt, e) in events {
            now += dt;
            drive(&mut core, now, None, &mut log);
            let before: BTreeMap<PeerId, Standing> = core.peers().map(|p| (*p, core.standing(p, now))).collect();
            // A standing change is acted on within RECHECK_RESOLUTION_MS: a peer graylisted that
            // long ago may still rank as graylisted.
            let lately = now.saturating_sub(RECHECK_RESOLUTION_MS);
            let gray_lately: BTreeMap<PeerId, bool> =
                core.peers().map(|p| (*p, core.standing(p, lately).is_graylisted())).collect();
            drive(&mut core, now, Some(input(pid(i), e)), &mut log);
            prop_assert!(core.len() <= c.max_peers_scored);
            for (gone, s) in before.iter().filter(|(p, _)| core.record(p).is_none()) {
                let others_all_gray =
                    before.iter().filter(|(p, _)| *p != gone).all(|(p, s)| s.is_graylisted() || gray_lately[p]);
                prop_assert!(!s.is_graylisted() || others_all_gray, "evicted graylisted {:?} before {:?}", gone, before);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Loss at up to 2%: requests every second that time out at that rate; malformed frames
    /// and stale envelopes each at that rate of a frame a second; a lost link every 20 minutes.
    /// Over twelve hours the peer stays Acceptable or better at up to 1%, and is never even
    /// kept from publication at up to 2%.
    #[test]
    fn loss_alone_never_graylists_a_serving_peer(loss_permille in 0u32..=20, seed in any::<u64>()) {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let c = cfg();
        let mut core = ReputationCore::new(c.clone(), EPOCH);
        let p = pid(7);
        let mut log = Vec::new();
        drive(&mut core, 0, Some(input(p, Ev::Up)), &mut log);
        let hit = |rng: &mut rand_chacha::ChaCha8Rng| rng.gen_range(0..1000) < loss_permille;
        for s in 1..12 * 3_600u64 {
            let now = s * SECOND;
            let outcome = if hit(&mut rng) { Outcome::Failed } else { Outcome::Served { rtt_ms: 80 } };
            drive(&mut core, now, Some(Input::Request { peer: p, outcome }), &mut log);
            if hit(&mut rng) {
                drive(&mut core, now, Some(input(p, Ev::Offence(OffenceKind::MalformedFrame))), &mut log);
            }
            if hit(&mut rng) {
                drive(&mut core, now, Some(input(p, Ev::Offence(OffenceKind::StaleEnvelope))), &mut log);
            }
            if s % 1_200 == 0 {
                drive(&mut core, now, Some(input(p, Ev::Down { clean: false })), &mut log);
                drive(&mut core, now + 1, Some(input(p, Ev::Up)), &mut log);
            }
        }
        let floor = if loss_permille <= 10 { Standing::Acceptable } else { Standing::NoGossip };
        let worst = standings(&log).iter().map(|&(_, _, s)| s).min();
        prop_assert!(worst.is_none_or(|w| w >= floor), "{:?} at {} permille", worst, loss_permille);
    }
}

#[test]
fn one_proven_malicious_act_graylists_at_once() {
    let c = cfg();
    for kind in KINDS.into_iter().filter(|k| k.class() == OffenceClass::Malice) {
        let (best, now) = model_peer(&c);
        assert!(best.standing(now, &c) == Standing::Trusted, "{}", best.score(now, &c));
        let mut r = best.clone();
        r.offence(now, kind, &c);
        assert_eq!(r.standing(now, &c), Standing::Graylisted, "{kind:?}: {}", r.score(now, &c));
        // Through the core: the change comes out with the input that caused it.
        let mut core = ReputationCore::new(c.clone(), EPOCH);
        let mut log = Vec::new();
        drive(&mut core, 0, Some(input(pid(1), Ev::Up)), &mut log);
        drive(&mut core, 10 * SECOND, Some(input(pid(1), Ev::Offence(kind))), &mut log);
        assert_eq!(standings(&log), vec![(10 * SECOND, pid(1), Standing::Graylisted)]);
    }
}

#[test]
fn a_graylisted_peer_comes_back_when_its_penalty_has_decayed() {
    let c = cfg();
    let mut core = ReputationCore::new(c.clone(), EPOCH);
    let mut log = Vec::new();
    let (p, t0) = (pid(3), 5 * SECOND);
    drive(&mut core, t0, Some(input(p, Ev::Offence(OffenceKind::BadChunk))), &mut log);
    // Only the malice penalty: -100 * 2^(-t/h) crosses -50 at one half-life, -20 at log2(5)
    // and -10 at log2(10) half-lives.
    let h = c.malice_half_life_ms as f64;
    let at = |level: f64| t0 + (h * (c.malice_weight / level).log2()).ceil() as Millis;
    drive(&mut core, 100 * 24 * HOUR, None, &mut log);
    let seen = standings(&log);
    let want = [
        (t0, Standing::Graylisted),
        (at(50.0), Standing::NoPublish),
        (at(20.0), Standing::NoGossip),
        (at(10.0), Standing::Acceptable),
    ];
    assert_eq!(seen.len(), want.len(), "{seen:?}");
    for (&(t, peer, s), &(wt, ws)) in seen.iter().zip(&want) {
        assert_eq!((peer, s), (p, ws));
        assert!((wt - 1..=wt + RECHECK_RESOLUTION_MS).contains(&t), "{s:?} at {t}, expected {wt}");
    }
    assert_eq!(core.standing(&p, at(10.0) + RECHECK_RESOLUTION_MS), Standing::Acceptable);
    assert_eq!(core.next_timeout(), None, "nothing left to recheck or store");
}

#[test]
fn records_are_stored_in_batches_at_most_once_per_interval() {
    let c = ReputationConfig { max_persist_batch: 4, max_peers_scored: 8, ..cfg() };
    let mut core = ReputationCore::new(c.clone(), EPOCH);
    let mut log = Vec::new();
    for i in 0..10u8 {
        drive(&mut core, u64::from(i) * SECOND, Some(input(pid(i), Ev::Req(Outcome::Failed))), &mut log);
    }
    assert!(log.iter().all(|(_, o)| !matches!(o, Output::Persist(_))), "nothing stored before the interval");
    drive(&mut core, 10 * c.persist_interval_ms, None, &mut log);
    let batches: Vec<(Millis, Vec<PersistOp>)> = log
        .iter()
        .filter_map(|(t, o)| match o {
            Output::Persist(ops) => Some((*t, ops.clone())),
            _ => None,
        })
        .collect();
    let times: Vec<Millis> = batches.iter().map(|(t, _)| *t).collect();
    let i = c.persist_interval_ms;
    assert_eq!(times, vec![i, 2 * i, 3 * i]);
    assert!(batches.iter().all(|(_, ops)| ops.len() <= 4));
    // Ten peers met, eight kept: two deleted (the first two, least recently seen), eight stored.
    let ops: Vec<PersistOp> = batches.into_iter().flat_map(|(_, ops)| ops).collect();
    let deleted: Vec<PeerId> =
        ops.iter().filter_map(|o| if let PersistOp::Delete { peer } = o { Some(*peer) } else { None }).collect();
    assert_eq!(deleted, vec![pid(0), pid(1)]);
    let mut restored = ReputationCore::new(c.clone(), EPOCH + HOUR);
    let stored: Vec<StoredRecord> = ops
        .iter()
        .filter_map(|o| {
            if let PersistOp::Put { bytes, .. } = o {
                Some(StoredRecord::decode(bytes).unwrap())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(stored.len(), 8);
    restored.handle(0, Input::Restore(stored));
    for i in 2..10u8 {
        let (a, b) = (core.score(&pid(i), HOUR), restored.score(&pid(i), 0));
        assert!(a < 0.0 && (a - b).abs() < 1e-9, "peer {i}: {a} vs {b}");
    }
}

#[test]
fn a_restored_graylisted_peer_is_reported_and_stays_graylisted() {
    let c = cfg();
    let mut r = Record::new(0);
    r.offence(0, OffenceKind::BadSignature, &c);
    let stored = StoredRecord::new(pid(9), &r, 0, EPOCH, &c);
    let mut core = ReputationCore::new(c.clone(), EPOCH + HOUR);
    let mut log = Vec::new();
    drive(&mut core, 0, Some(Input::Restore(vec![stored])), &mut log);
    assert_eq!(standings(&log), vec![(0, pid(9), Standing::Graylisted)]);
    drive(&mut core, 2 * c.persist_interval_ms, None, &mut log);
    assert!(log.iter().all(|(_, o)| !matches!(o, Output::Persist(_))), "restored as stored: nothing to write");
    let back = c.malice_half_life_ms - HOUR;
    assert!(core.next_timeout().is_some_and(|t| (back - 1..=back + RECHECK_RESOLUTION_MS).contains(&t)));
}

#[test]
fn rank_prefers_good_peers_then_unknown_then_bad_with_ties_by_id() {
    let c = cfg();
    let mut core = ReputationCore::new(c, EPOCH);
    let (fast, slow, bad) = (pid(5), pid(6), pid(7));
    for i in 0..20 {
        core.handle(i * SECOND, Input::Request { peer: fast, outcome: Outcome::Served { rtt_ms: 40 } });
        core.handle(i * SECOND, Input::Request { peer: slow, outcome: Outcome::Served { rtt_ms: 1_500 } });
    }
    core.handle(30 * SECOND, Input::Offence { peer: bad, kind: OffenceKind::Flood });
    let ranked = core.rank(&[bad, pid(2), slow, pid(1), fast], 40 * SECOND);
    assert_eq!(ranked, vec![fast, slow, pid(1), pid(2), bad]);
}

#[test]
fn stored_garbage_is_named() {
    assert!(matches!(StoredRecord::decode(b"\xc1 not msgpack"), Err(DecodeError::Malformed(_))));
    let c = cfg();
    let good = StoredRecord::new(pid(1), &Record::new(0), 0, EPOCH, &c);
    let newer = StoredRecord { version: VERSION + 1, ..good.clone() };
    assert_eq!(StoredRecord::decode(&newer.encode()), Err(DecodeError::Version { found: VERSION + 1 }));
    let negative = StoredRecord { counts: Counts { malice: -1.0, ..good.counts.clone() }, ..good.clone() };
    let err = StoredRecord::decode(&negative.encode()).unwrap_err();
    assert_eq!(err, DecodeError::Field { field: "malice", value: -1.0 });
    assert!(err.to_string().contains("malice"), "{err}");
    let nan = StoredRecord { counts: Counts { rtt_ewma_ms: Some(f64::NAN), ..good.counts.clone() }, ..good.clone() };
    assert!(matches!(StoredRecord::decode(&nan.encode()), Err(DecodeError::Field { field: "rtt_ewma_ms", .. })));
    let bytes = good.encode();
    assert!(matches!(StoredRecord::decode(&bytes[..bytes.len() - 3]), Err(DecodeError::Malformed(_))));
}

#[test]
fn config_errors_name_the_field() {
    let err = |f: fn(&mut ReputationConfig)| {
        let mut n = NodeConfig::default();
        f(&mut n.reputation);
        n.validate().unwrap_err().field
    };
    NodeConfig::default().validate().unwrap();
    assert_eq!(err(|r| r.max_peers_scored = 0), "reputation.max_peers_scored");
    assert_eq!(err(|r| r.gossip_threshold = 1.0), "reputation.gossip_threshold");
    assert_eq!(err(|r| r.publish_threshold = -5.0), "reputation.publish_threshold");
    assert_eq!(err(|r| r.graylist_threshold = -15.0), "reputation.graylist_threshold");
    assert_eq!(err(|r| r.graylist_threshold = -100.0), "reputation.graylist_threshold");
    assert_eq!(err(|r| r.accept_px_threshold = 0.0), "reputation.accept_px_threshold");
    assert_eq!(err(|r| r.malice_weight = f64::NAN), "reputation.malice_weight");
    assert_eq!(err(|r| r.noise_weight = -1.0), "reputation.noise_weight");
    assert_eq!(err(|r| r.availability_prior = 0.0), "reputation.availability_prior");
    assert_eq!(err(|r| r.noise_half_life_ms = 10), "reputation.noise_half_life_ms");
    assert_eq!(err(|r| r.rtt_ewma_alpha = 1.5), "reputation.rtt_ewma_alpha");
    assert_eq!(err(|r| r.max_persist_batch = 0), "reputation.max_persist_batch");
    let e: Result<NodeConfig, _> = toml::from_str("[reputation]\ngraylist = -50.0\n");
    assert!(e.unwrap_err().to_string().contains("graylist"));
    let n: NodeConfig = toml::from_str("[reputation]\ngraylist_threshold = -80.0\n").unwrap();
    assert_eq!((n.reputation.graylist_threshold, n.reputation.gossip_threshold), (-80.0, -10.0));
}

#[test]
fn a_flood_of_malformed_frames_graylists_where_a_trickle_does_not() {
    let c = cfg();
    let (mut r, now) = model_peer(&c);
    let n = c.noise_allowance as u64;
    for i in 0..n {
        r.offence(now + i * SECOND, OffenceKind::MalformedFrame, &c);
    }
    assert_eq!(r.standing(now + n * SECOND, &c), Standing::Trusted, "within the allowance: no cost");
    for i in n..2 * n {
        r.offence(now + i * SECOND, OffenceKind::MalformedFrame, &c);
    }
    let end = now + 2 * n * SECOND;
    assert_eq!(r.standing(end, &c), Standing::Graylisted, "{}", r.score(end, &c));
    let back = r.next_change(end, &c).unwrap();
    assert!(back < end + 2 * c.noise_half_life_ms, "noise is forgiven within minutes");
}

/// A withholder is caught on its own lies: a new peer that answers "not here" four times for
/// chunks it announced is graylisted; one that serves at least half of what it is asked pays no
/// deficit at all, however many requests fail.
#[test]
fn withholding_graylists_where_loss_does_not() {
    let c = cfg();
    let mut r = Record::new(0);
    r.link_up(0, &c);
    let mut now = 0;
    let mut caught = None;
    for i in 1..=10 {
        now += 20 * SECOND;
        r.request(now, Outcome::Withheld, &c);
        if caught.is_none() && r.standing(now, &c) == Standing::Graylisted {
            caught = Some(i);
        }
    }
    assert!(caught.is_some_and(|n| n <= 4), "graylisted after {caught:?} withheld answers");
    let mut half = Record::new(0);
    half.link_up(0, &c);
    for i in 1..=1_000 {
        let outcome = if i % 2 == 1 { Outcome::Served { rtt_ms: 80 } } else { Outcome::Failed };
        half.request(i * SECOND, outcome, &c);
        let a = half.availability(&c);
        assert!(half.deficit(a, &c) < 1e-6, "a peer serving half pays no deficit (request {i})");
        assert!(half.standing(i * SECOND, &c) >= Standing::NoGossip, "{}", half.score(i * SECOND, &c));
    }
}

/// An answer past `late_after_ms` counts as a failed request: a peer that always answers late
/// ends below the publish threshold, one that answers just in time does not.
#[test]
fn late_answers_count_as_failures() {
    let c = cfg();
    let (mut late, mut in_time) = (Record::new(0), Record::new(0));
    late.link_up(0, &c);
    in_time.link_up(0, &c);
    for i in 1..=30 {
        late.request(i * 20 * SECOND, Outcome::Served { rtt_ms: c.late_after_ms + 1 }, &c);
        in_time.request(i * 20 * SECOND, Outcome::Served { rtt_ms: c.late_after_ms }, &c);
    }
    let now = 30 * 20 * SECOND;
    assert_eq!((late.counts.served, in_time.counts.failed), (0.0, 0.0));
    assert!(late.standing(now, &c) <= Standing::NoPublish, "late: {}", late.score(now, &c));
    assert!(in_time.standing(now, &c) >= Standing::Acceptable, "in time: {}", in_time.score(now, &c));
}
