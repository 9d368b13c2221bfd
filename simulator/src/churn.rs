//! Churn schedules (DESIGN.md section 7), generated up front from the scenario's seed: turnover
//! with heavy-tailed (Weibull) sessions calibrated to an exact departure count, mass failure at an
//! instant, and shrink without replacement.

use crate::scenario::ChurnSpec;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChurnAction {
    /// The node in `slot` crashes (no goodbye).
    Crash { slot: usize },
    /// A new node (new identity) starts in `slot`.
    Join { slot: usize },
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

/// Sessions drawn per slot at most (bounds the work whatever the shape and scale).
pub const MAX_SESSIONS_PER_SLOT: usize = 256;

pub fn schedule(spec: &ChurnSpec, nodes: usize, duration_s: u64, rng: &mut ChaCha8Rng) -> Vec<ChurnEvent> {
    schedule_with_calibration(spec, nodes, duration_s, rng).0
}

/// The schedule and a description of it for the report.
pub fn schedule_with_calibration(
    spec: &ChurnSpec,
    nodes: usize,
    duration_s: u64,
    rng: &mut ChaCha8Rng,
) -> (Vec<ChurnEvent>, serde_json::Value) {
    let end_ms = duration_s * 1000;
    let count = |percent: f64| ((percent / 100.0) * nodes as f64).round() as usize;
    let mut events = Vec::new();
    let info = match *spec {
        ChurnSpec::None => json!({ "model": "none" }),
        ChurnSpec::MassFailure { percent, at_s } => {
            let victims = rand::seq::index::sample(rng, nodes, count(percent).min(nodes)).into_vec();
            let mut victims = victims;
            victims.sort_unstable();
            for slot in &victims {
                events.push(ChurnEvent { at_ms: at_s * 1000, action: ChurnAction::Crash { slot: *slot } });
            }
            json!({ "model": "mass_failure", "percent": percent, "at_s": at_s, "crashed": victims.len() })
        }
        ChurnSpec::Shrink { percent, window_s, start_s } => {
            let victims = rand::seq::index::sample(rng, nodes, count(percent).min(nodes)).into_vec();
            for slot in victims {
                let at_ms = start_s * 1000 + rng.gen_range(0..window_s * 1000);
                if at_ms < end_ms {
                    events.push(ChurnEvent { at_ms, action: ChurnAction::Crash { slot } });
                }
            }
            json!({ "model": "shrink", "percent": percent, "window_s": window_s, "start_s": start_s, "crashed": events.len() })
        }
        ChurnSpec::Turnover { percent, window_s, start_s, weibull_shape } => {
            let draws = SessionDraws::new(nodes, weibull_shape, rng);
            let cal = draws.calibrate(count(percent), weibull_shape, window_s);
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

/// Unit-scale Weibull session lengths per slot: a session of scale `s` lasts `s * unit`, so the
/// departure count is monotone in `s` and one set of draws serves every candidate scale.
struct SessionDraws {
    units: Vec<Vec<f64>>,
}

impl SessionDraws {
    fn new(nodes: usize, shape: f64, rng: &mut ChaCha8Rng) -> Self {
        let units = (0..nodes)
            .map(|_| {
                (0..MAX_SESSIONS_PER_SLOT)
                    .map(|_| {
                        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
                        (-u.ln()).powf(1.0 / shape)
                    })
                    .collect()
            })
            .collect();
        SessionDraws { units }
    }

    /// Departures within [start, start + window) at scale `scale_s` (sessions counted from start).
    fn departures(&self, scale_s: f64, window_s: u64) -> usize {
        let w = window_s as f64;
        self.units
            .iter()
            .map(|slot| {
                let mut t = 0.0;
                slot.iter()
                    .take_while(|u| {
                        t += scale_s * *u;
                        t < w
                    })
                    .count()
            })
            .sum()
    }

    /// Bisect (on a log scale) for the scale whose departure count is closest to `target`.
    fn calibrate(&self, target: usize, shape: f64, window_s: u64) -> TurnoverCalibration {
        let (mut lo, mut hi) = (1e-3f64, 1e12f64); // count(lo) >= target >= count(hi)
        for _ in 0..200 {
            let mid = (lo * hi).sqrt();
            if self.departures(mid, window_s) >= target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (clo, chi) = (self.departures(lo, window_s), self.departures(hi, window_s));
        let (scale_s, departures) = if clo.abs_diff(target) <= chi.abs_diff(target) { (lo, clo) } else { (hi, chi) };
        TurnoverCalibration { scale_s, shape, departures, target }
    }

    fn emit(&self, scale_s: f64, start_s: u64, end_ms: u64, events: &mut Vec<ChurnEvent>) {
        let start_ms = start_s as f64 * 1000.0;
        for (slot, units) in self.units.iter().enumerate() {
            let mut t_ms = start_ms;
            for u in units {
                t_ms += scale_s * u * 1000.0;
                // Floor, like the calibration's strict `t < window`: a departure never slips past the end.
                let at_ms = t_ms.floor() as u64;
                if at_ms >= end_ms {
                    break;
                }
                events.push(ChurnEvent { at_ms, action: ChurnAction::Crash { slot } });
                events.push(ChurnEvent { at_ms, action: ChurnAction::Join { slot } });
            }
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
                    ChurnAction::Join { .. } => usize::MAX,
                }).collect();
                prop_assert_eq!(ev.len(), want);
                prop_assert_eq!(slots.len(), want, "distinct crash slots, no joins");
                prop_assert!(slots.iter().all(|s| *s < nodes));
                prop_assert!(ev.iter().all(|e| (100_000..600_000).contains(&e.at_ms)));
            }
        }
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
