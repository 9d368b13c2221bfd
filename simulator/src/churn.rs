//! Churn schedules (DESIGN.md section 7), generated up front from the scenario's seed: turnover
//! with heavy-tailed (Weibull) sessions calibrated to an exact departure count, mass failure at an
//! instant, and shrink without replacement.

use crate::scenario::ChurnSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChurnAction {
    /// The node in `slot` crashes (no goodbye).
    Crash { slot: usize },
    /// A new node (new identity) starts in `slot`.
    Join { slot: usize },
    /// The node in `slot` goes offline (to the others, a crash) and keeps its identity and store.
    Offline { slot: usize },
    /// The node of `slot` comes back with the identity and store it left with.
    Online { slot: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChurnEvent {
    pub at_ms: u64,
    pub action: ChurnAction,
}

/// Result of fitting the Weibull scale to the requested turnover.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TurnoverCalibration {
    pub scale_s: f64,
    pub shape: f64,
    /// Departures inside the window with that scale.
    pub departures: usize,
    /// round(percent * nodes / 100).
    pub target: usize,
}

/// Sessions drawn per slot at most: bounds the work and memory whatever the shape and scale (a
/// slot past its cap simply keeps its last node to the end).
pub const MAX_SESSIONS_PER_SLOT: usize = 256;
/// Range the calibration searches, as ln(scale in seconds): 1 ms up to ~1e304 s.
const MIN_LN_SCALE: f64 = -6.907_755_278_982_137;
const MAX_LN_SCALE: f64 = 700.0;

/// The churn events of a run, sorted by time (simultaneous events keep generation order).
pub fn schedule(spec: &ChurnSpec, nodes: usize, duration_s: u64, rng: &mut ChaCha8Rng) -> Vec<ChurnEvent> {
    schedule_with_calibration(spec, nodes, duration_s, rng).0
}

/// The schedule and a description of it for the report (for turnover: the fitted Weibull scale,
/// the target and the departures achieved in the window, from [`TurnoverCalibration`]).
pub fn schedule_with_calibration(
    spec: &ChurnSpec,
    nodes: usize,
    duration_s: u64,
    rng: &mut ChaCha8Rng,
) -> (Vec<ChurnEvent>, serde_json::Value) {
    let end_ms = duration_s.saturating_mul(1000);
    let count = |percent: f64| (((percent / 100.0) * nodes as f64).round() as usize).min(nodes);
    let mut events = Vec::new();
    let info = match *spec {
        ChurnSpec::None => json!({ "model": "none" }),
        ChurnSpec::Sessions { offline_share, mean_online_s, weibull_shape, start_s } => {
            let p = crate::sessions::SessionsParams { offline_share, mean_online_s, weibull_shape, start_s };
            let (ev, info) = crate::sessions::schedule(&p, nodes, end_ms, rng);
            events = ev;
            info
        }
        ChurnSpec::MassFailure { percent, at_s } => {
            let mut victims = rand::seq::index::sample(rng, nodes, count(percent)).into_vec();
            victims.sort_unstable();
            let at_ms = at_s.saturating_mul(1000);
            if at_ms < end_ms {
                events.extend(victims.iter().map(|&slot| ChurnEvent { at_ms, action: ChurnAction::Crash { slot } }));
            }
            json!({ "model": "mass_failure", "percent": percent, "at_s": at_s, "crashed": events.len() })
        }
        ChurnSpec::Shrink { percent, window_s, start_s } => {
            let start_ms = start_s.saturating_mul(1000);
            let window_ms = window_s.saturating_mul(1000).max(1);
            for slot in rand::seq::index::sample(rng, nodes, count(percent)) {
                let at_ms = start_ms.saturating_add(rng.gen_range(0..window_ms));
                if at_ms < end_ms {
                    events.push(ChurnEvent { at_ms, action: ChurnAction::Crash { slot } });
                }
            }
            json!({ "model": "shrink", "percent": percent, "window_s": window_s, "start_s": start_s, "crashed": events.len() })
        }
        ChurnSpec::Turnover { percent, window_s, start_s, weibull_shape } => {
            let mut draws = SessionDraws::new(nodes, weibull_shape, rng);
            let cal = draws.calibrate(count(percent), window_s);
            draws.emit(cal.scale_s, start_s, end_ms, &mut events);
            let crashes = events.iter().filter(|e| matches!(e.action, ChurnAction::Crash { .. })).count();
            json!({
                "model": "turnover", "percent": percent, "window_s": window_s, "start_s": start_s,
                "weibull_shape": weibull_shape, "weibull_scale_s": cal.scale_s,
                "target_departures_in_window": cal.target, "departures_in_window": cal.departures,
                "departures_total": crashes,
            })
        }
    };
    // Stable sort: simultaneous events keep generation order (a crash before its replacement).
    events.sort_by_key(|e| e.at_ms);
    (events, info)
}

/// Unit-scale Weibull session lengths per slot, drawn lazily. Slot `i` reads stream `i` of one
/// ChaCha key, so its k-th session is the same whichever scales the calibration tries: a session
/// of scale `s` lasts `s * unit`, and the departure count is monotone in `s`.
struct SessionDraws {
    key: [u8; 32],
    shape: f64,
    /// Running sums of the unit sessions (departure k of a slot is at `scale * cum[k]`).
    cum: Vec<Vec<f64>>,
}

impl SessionDraws {
    fn new(nodes: usize, shape: f64, rng: &mut ChaCha8Rng) -> Self {
        SessionDraws { key: rng.gen(), shape, cum: vec![Vec::new(); nodes] }
    }

    /// End of session `k` of `slot` at unit scale, or `None` past the per-slot cap.
    fn unit_end(&mut self, slot: usize, k: usize) -> Option<f64> {
        if k >= MAX_SESSIONS_PER_SLOT {
            return None;
        }
        if k >= self.cum[slot].len() {
            // Redraw from the stream's start: the prefix comes out identical, and doubling keeps
            // the total work linear in the sessions a slot ever needs.
            let len = (k + 1).next_power_of_two().clamp(4, MAX_SESSIONS_PER_SLOT);
            let mut r = ChaCha8Rng::from_seed(self.key);
            r.set_stream(slot as u64);
            let mut total = 0.0;
            self.cum[slot] = (0..len)
                .map(|_| {
                    let u: f64 = r.gen_range(f64::MIN_POSITIVE..1.0);
                    total += (-u.ln()).powf(1.0 / self.shape);
                    total
                })
                .collect();
        }
        Some(self.cum[slot][k])
    }

    /// Calls `f` with each departure of `slot`, in ms after the start, while it is below `limit_ms`.
    /// Calibration and emission both go through here, so they agree to the millisecond.
    fn walk(&mut self, slot: usize, scale_s: f64, limit_ms: u64, mut f: impl FnMut(u64)) {
        let mut k = 0;
        while let Some(end) = self.unit_end(slot, k) {
            let off_ms = (scale_s * end * 1000.0).floor();
            // NaN (a 0 * inf from an unvalidated shape) ends the slot like a time past the limit.
            if off_ms.is_nan() || off_ms >= limit_ms as f64 {
                break;
            }
            f(off_ms as u64);
            k += 1;
        }
    }

    fn departures(&mut self, scale_s: f64, window_ms: u64) -> usize {
        let mut n = 0;
        for slot in 0..self.cum.len() {
            self.walk(slot, scale_s, window_ms, |_| n += 1);
        }
        n
    }

    fn count_at(&mut self, ln_scale: f64, window_ms: u64) -> usize {
        self.departures(ln_scale.exp(), window_ms)
    }

    /// The scale whose departure count within the window is closest to `target`. It starts from
    /// a first-session estimate, steps out by factors of two until the target is bracketed, then
    /// bisects on ln(scale). Stepping out (rather than a fixed wide bracket) keeps every probe near
    /// the answer, so no probe at a tiny scale makes every slot draw its whole session cap.
    fn calibrate(&mut self, target: usize, window_s: u64) -> TurnoverCalibration {
        let window_ms = window_s.saturating_mul(1000);
        let nodes = self.cum.len();
        // P(a first session ends within W) = 1 - exp(-(W / scale)^shape), solved for the share.
        let share = if nodes == 0 { 0.5 } else { (target as f64 / nodes as f64).clamp(0.01, 0.99) };
        let guess = (window_s.max(1) as f64).ln() - (-(1.0 - share).ln()).ln() / self.shape;
        let guess = if guess.is_finite() { guess.clamp(MIN_LN_SCALE, MAX_LN_SCALE) } else { 0.0 };
        let c = self.count_at(guess, window_ms);
        // Invariant once bracketed: count(lo) > target > count(hi) (lo = smaller scale).
        let (mut lo, mut c_lo, mut hi, mut c_hi) = (guess, c, guess, c);
        if c > target {
            let mut step = std::f64::consts::LN_2;
            loop {
                if lo >= MAX_LN_SCALE {
                    return self.result(lo, c_lo, target); // even the largest scale departs too often
                }
                let ln = (lo + step).min(MAX_LN_SCALE);
                let c = self.count_at(ln, window_ms);
                if c <= target {
                    (hi, c_hi) = (ln, c);
                    break;
                }
                (lo, c_lo) = (ln, c);
                // Larger scales mean fewer sessions to draw, so big strides upward cost nothing.
                step *= 2.0;
            }
        } else if c < target {
            loop {
                if hi <= MIN_LN_SCALE {
                    return self.result(hi, c_hi, target); // the session cap binds
                }
                let ln = (hi - std::f64::consts::LN_2).max(MIN_LN_SCALE);
                let c = self.count_at(ln, window_ms);
                if c >= target {
                    (lo, c_lo) = (ln, c);
                    break;
                }
                (hi, c_hi) = (ln, c);
            }
        }
        while c_lo != target && c_hi != target && hi - lo > 1e-12 {
            let mid = 0.5 * (lo + hi);
            if mid <= lo || mid >= hi {
                break;
            }
            let c = self.count_at(mid, window_ms);
            if c > target {
                (lo, c_lo) = (mid, c);
            } else {
                (hi, c_hi) = (mid, c);
            }
        }
        // Several sessions can end at the same scale (a step of more than one): take the nearer side.
        if c_hi.abs_diff(target) <= c_lo.abs_diff(target) {
            self.result(hi, c_hi, target)
        } else {
            self.result(lo, c_lo, target)
        }
    }

    fn result(&self, ln_scale: f64, departures: usize, target: usize) -> TurnoverCalibration {
        TurnoverCalibration { scale_s: ln_scale.exp(), shape: self.shape, departures, target }
    }

    /// Every slot's renewals from `start_s` on, until `end_ms`: crash, and a new node at once.
    fn emit(&mut self, scale_s: f64, start_s: u64, end_ms: u64, events: &mut Vec<ChurnEvent>) {
        let start_ms = start_s.saturating_mul(1000);
        let limit_ms = end_ms.saturating_sub(start_ms);
        for slot in 0..self.cum.len() {
            self.walk(slot, scale_s, limit_ms, |off_ms| {
                let at_ms = start_ms + off_ms;
                events.push(ChurnEvent { at_ms, action: ChurnAction::Crash { slot } });
                events.push(ChurnEvent { at_ms, action: ChurnAction::Join { slot } });
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use std::collections::BTreeMap;

    fn turnover(percent: f64, window_s: u64, start_s: u64, shape: f64) -> ChurnSpec {
        ChurnSpec::Turnover { percent, window_s, start_s, weibull_shape: shape }
    }

    /// Per slot, crashes and joins alternate, each join at the instant of its crash.
    fn check_alternation(events: &[ChurnEvent]) -> Result<(), TestCaseError> {
        let mut last: BTreeMap<usize, ChurnEvent> = BTreeMap::new();
        for e in events {
            match e.action {
                ChurnAction::Crash { slot } => {
                    if let Some(prev) = last.get(&slot) {
                        prop_assert!(matches!(prev.action, ChurnAction::Join { .. }), "slot {slot} crashed twice");
                    }
                    last.insert(slot, *e);
                }
                ChurnAction::Join { slot } => {
                    let prev = last.get(&slot);
                    prop_assert!(
                        prev.is_some_and(|p| matches!(p.action, ChurnAction::Crash { .. }) && p.at_ms == e.at_ms),
                        "join in slot {slot} without a crash at the same instant"
                    );
                    last.insert(slot, *e);
                }
                other => prop_assert!(false, "turnover never takes a node offline: {:?}", other),
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn turnover_hits_its_target_and_is_well_formed(
            nodes in 10usize..600, percent in 0.0f64..100.0, window_s in 60u64..7200,
            shape in 0.3f64..3.0, seed in any::<u64>(), start_s in 0u64..120,
        ) {
            let duration_s = start_s + window_s;
            let spec = turnover(percent, window_s, start_s, shape);
            let (a, info) = schedule_with_calibration(&spec, nodes, duration_s, &mut ChaCha8Rng::seed_from_u64(seed));
            let b = schedule(&spec, nodes, duration_s, &mut ChaCha8Rng::seed_from_u64(seed));
            prop_assert_eq!(&a, &b, "same seed, same schedule");
            prop_assert!(a.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            prop_assert!(a.iter().all(|e| e.at_ms < duration_s * 1000 && e.at_ms >= start_s * 1000));
            let target = ((percent / 100.0) * nodes as f64).round() as usize;
            let crashes = a.iter().filter(|e| matches!(e.action, ChurnAction::Crash { .. })).count();
            let tolerance = (nodes / 100).max(1);
            prop_assert!(crashes.abs_diff(target) <= tolerance, "{} crashes for target {} ({})", crashes, target, info);
            check_alternation(&a)?;
        }

        #[test]
        fn mass_failure_and_shrink_crash_exact_distinct_slots(
            nodes in 2usize..2000, percent in 0.0f64..100.0, seed in any::<u64>(),
        ) {
            let want = ((percent / 100.0) * nodes as f64).round() as usize;
            for spec in [
                ChurnSpec::MassFailure { percent, at_s: 100 },
                ChurnSpec::Shrink { percent, window_s: 500, start_s: 100 },
            ] {
                let ev = schedule(&spec, nodes, 600, &mut ChaCha8Rng::seed_from_u64(seed));
                let slots: std::collections::BTreeSet<usize> = ev.iter().map(|e| match e.action {
                    ChurnAction::Crash { slot } => slot,
                    _ => usize::MAX,
                }).collect();
                prop_assert_eq!(ev.len(), want);
                prop_assert_eq!(slots.len(), want, "distinct crash slots, no joins");
                prop_assert!(slots.iter().all(|s| *s < nodes));
                prop_assert!(ev.iter().all(|e| (100_000..600_000).contains(&e.at_ms)));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Churn goes on past the window until the end of the run; the departures inside the
        /// window still match the calibration to the event, and no slot exceeds its session cap.
        #[test]
        fn turnover_past_the_window_keeps_the_calibrated_count(
            nodes in 2usize..400, percent in 0.0f64..=100.0, window_s in 1u64..3600,
            extra_s in 0u64..3600, shape in 0.05f64..10.0, seed in any::<u64>(), start_s in 0u64..600,
        ) {
            let duration_s = start_s + window_s + extra_s;
            let spec = turnover(percent, window_s, start_s, shape);
            let (ev, info) = schedule_with_calibration(&spec, nodes, duration_s, &mut ChaCha8Rng::seed_from_u64(seed));
            let window = start_s * 1000..(start_s + window_s) * 1000;
            let in_window = ev
                .iter()
                .filter(|e| matches!(e.action, ChurnAction::Crash { .. }) && window.contains(&e.at_ms))
                .count();
            prop_assert_eq!(info["departures_in_window"].as_u64(), Some(in_window as u64), "{}", info);
            prop_assert!(ev.iter().all(|e| e.at_ms < duration_s * 1000));
            let mut per_slot: BTreeMap<usize, usize> = BTreeMap::new();
            for e in &ev {
                if let ChurnAction::Crash { slot } = e.action {
                    *per_slot.entry(slot).or_default() += 1;
                }
            }
            prop_assert!(per_slot.values().all(|n| *n <= MAX_SESSIONS_PER_SLOT));
            check_alternation(&ev)?;
        }
    }

    /// A slot's k-th session is the same whatever order the calibration asked for sessions in,
    /// so the schedule does not depend on the path of the search.
    #[test]
    fn session_draws_do_not_depend_on_the_order_they_are_asked_for() {
        let mut a = SessionDraws::new(3, 0.5, &mut ChaCha8Rng::seed_from_u64(9));
        let mut b = SessionDraws::new(3, 0.5, &mut ChaCha8Rng::seed_from_u64(9));
        let far = a.unit_end(1, 200);
        let near: Vec<Option<f64>> = (0..=200).map(|k| b.unit_end(1, k)).collect();
        assert_eq!(far, near[200]);
        assert_eq!(a.unit_end(1, 3), near[3]);
        assert!(near.windows(2).all(|w| w[0] < w[1]), "session ends increase");
        assert_eq!(a.unit_end(1, MAX_SESSIONS_PER_SLOT), None);
        assert_ne!(a.unit_end(0, 0), a.unit_end(2, 0), "slots draw from distinct streams");
    }

    /// A heavy tail with a small target needs an enormous scale; the search must still reach it.
    #[test]
    fn tiny_shape_and_small_target_is_calibrated() {
        let spec = turnover(1.0, 3600, 0, 0.05);
        let (ev, info) = schedule_with_calibration(&spec, 1000, 3600, &mut ChaCha8Rng::seed_from_u64(4));
        assert_eq!(info["departures_in_window"], 10, "{info}");
        assert_eq!(ev.len(), 20);
    }

    #[test]
    fn fifty_percent_hourly_turnover_on_a_thousand_nodes() {
        let spec = turnover(50.0, 3600, 60, 0.5);
        let (ev, info) = schedule_with_calibration(&spec, 1000, 3660, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(info["departures_in_window"], 500, "{info}");
        assert_eq!(ev.len(), 1000);
        // Heavy tail: with shape 0.5 many departures are newcomers leaving again, so fewer than
        // 500 distinct slots are hit.
        let slots: std::collections::BTreeSet<usize> = ev
            .iter()
            .filter_map(|e| if let ChurnAction::Crash { slot } = e.action { Some(slot) } else { None })
            .collect();
        assert!(slots.len() < 500, "{} distinct slots", slots.len());
    }

    #[test]
    fn no_churn_is_empty() {
        assert!(schedule(&ChurnSpec::None, 100, 600, &mut ChaCha8Rng::seed_from_u64(1)).is_empty());
    }
}
