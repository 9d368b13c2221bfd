//! The reputation section of the node configuration (`[node.reputation]`): weights, half-lives
//! and thresholds, each default annotated with where it comes from, validated with errors that
//! name the field.

use crate::config::{check, ConfigError};
use serde::{Deserialize, Serialize};

/// Reputation: how a node scores its peers (see [`crate::reputation`]). Scores lie in
/// [-100, 100]; 0 is neutral (a peer never seen). Weights are the most a component adds or takes;
/// a half-life is how fast that component forgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReputationConfig {
    /// Peers with a record at once; when full, the record closest to neutral and least
    /// recently seen is forgotten (a graylisted one only when no other is left).
    pub max_peers_scored: usize,
    /// Most credit for time linked (a peer linked for ever tends to it).
    pub uptime_weight: f64,
    /// Time linked that earns half of `uptime_weight`.
    pub uptime_credit_ms: u64,
    pub uptime_half_life_ms: u64,
    /// Most taken for links lost (not closed on purpose) beyond `churn_allowance`.
    pub churn_weight: f64,
    /// Lost links (decayed count) that cost nothing: churn and loss drop links of honest peers.
    pub churn_allowance: f64,
    pub churn_half_life_ms: u64,
    /// Most given (all served) or taken (all failed) for the requests a peer answered.
    pub availability_weight: f64,
    /// Neutral pseudo-requests in the served/asked ratio, so one answer is not a verdict.
    pub availability_prior: f64,
    /// A request the peer refused although it should hold the data counts as this many failed.
    pub withheld_weight: f64,
    pub availability_half_life_ms: u64,
    /// Most taken from a peer that serves none of what it is asked, with confidence; nothing
    /// while it serves at least half (see [`crate::reputation::Record::deficit`]).
    pub deficit_weight: f64,
    /// Requests (decayed) that earn half of the deficit's confidence.
    pub deficit_confidence: f64,
    /// Most credit for answering fast: full credit at or under `rtt_target_ms`.
    pub responsiveness_weight: f64,
    pub rtt_target_ms: u64,
    /// An answer slower than this counts as a failed request (the asker hedged or gave up).
    pub late_after_ms: u64,
    /// Weight of a new sample in the RTT moving average.
    pub rtt_ewma_alpha: f64,
    /// RTT samples (decayed count) that earn half of the responsiveness credit.
    pub rtt_confidence: f64,
    /// Taken per proven malicious act (a signature that does not verify under the claimed key, a
    /// chunk failing its hash, a shard or record failing verification): loss cannot cause these.
    pub malice_weight: f64,
    pub malice_half_life_ms: u64,
    /// Taken per protocol violation a correct peer does not commit (frames before proving its
    /// identity, unsigned envelopes, floods beyond a limit).
    pub violation_weight: f64,
    pub violation_half_life_ms: u64,
    /// Events loss and churn cause in honest peers too (malformed frames, handshake timeouts,
    /// stale or replayed envelopes): `noise_weight * excess^2` over `noise_allowance`.
    pub noise_weight: f64,
    pub noise_allowance: f64,
    pub noise_half_life_ms: u64,
    /// Most taken for warnings from other nodes (each graylisted the peer on its own
    /// evidence): `hearsay_weight * min(1, warned / hearsay_quorum)^3`.
    pub hearsay_weight: f64,
    /// Distinct accusers (within a half-life) that take the whole `hearsay_weight`.
    pub hearsay_quorum: f64,
    pub hearsay_half_life_ms: u64,
    /// Requests a peer served (decayed, more than it failed) that make this node ignore
    /// warnings about it.
    pub hearsay_exempt_served: f64,
    /// Below this score no gossip is sent to or taken from the peer (negative).
    pub gossip_threshold: f64,
    /// Below this score nothing is published to the peer (<= gossip_threshold).
    pub publish_threshold: f64,
    /// Below this score links are refused and frames ignored (<= publish_threshold).
    pub graylist_threshold: f64,
    /// At or above this score peer exchange from the peer is taken and it is preferred for
    /// critical data (positive).
    pub accept_px_threshold: f64,
    /// Changed records are handed out for storage at most once per this long.
    pub persist_interval_ms: u64,
    /// Records in one storage batch.
    pub max_persist_batch: usize,
    /// Peer selection ([`crate::reputation::ReputationCore::rank`]) adds these to the score:
    /// the last RTT against the target, and the served ratio, both without decay.
    pub rank_rtt_weight: f64,
    pub rank_availability_weight: f64,
}

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;

impl Default for ReputationConfig {
    fn default() -> Self {
        ReputationConfig {
            max_peers_scored: 4096, // guess: 40x the registry; a record is ~150 bytes
            uptime_weight: 10.0,    // guess: the positive components add up to at most 25
            uptime_credit_ms: HOUR_MS,
            uptime_half_life_ms: 24 * HOUR_MS, // guess: yesterday's uptime still counts
            churn_weight: 5.0,
            churn_allowance: 3.0, // guess: a few lost links an hour are churn, not a fault
            churn_half_life_ms: HOUR_MS,
            availability_weight: 10.0,
            availability_prior: 4.0,
            withheld_weight: 4.0, // an announced holder saying "not here" is a lie but for a race
            availability_half_life_ms: 6 * HOUR_MS,
            // Four requests withheld in a row by a new peer take it past the graylist threshold
            // (squared deficit 0.44 x confidence 0.67 x 150, plus the availability component's
            // -7), about eight timed out in a row too; a peer that served before needs more.
            deficit_weight: 150.0,
            deficit_confidence: 2.0,
            responsiveness_weight: 5.0,
            rtt_target_ms: 200,   // plan: chunk fetch < 2 s over several hops
            late_after_ms: 2_000, // plan: a chunk within 2 s
            rtt_ewma_alpha: 0.2,
            rtt_confidence: 4.0,
            // One proven act takes any peer (at most +25) below the graylist threshold, as
            // gossipsub v1.1 weighs invalid messages (P4) far above every positive component.
            malice_weight: 100.0,
            malice_half_life_ms: 6 * HOUR_MS, // guess: graylisted ~6 h, acceptable after ~20 h
            violation_weight: 10.0,           // guess: five violations within an hour graylist
            violation_half_life_ms: HOUR_MS,
            // gossipsub v1.1 behaviour penalty (P7): squared excess over a threshold, so what loss
            // causes now and then costs nothing and a steady stream costs fast.
            // Loss at 2% of a frame a second of two kinds averages ~17 (sd ~3) decayed events
            // over a 5 min half-life: the allowance sits 4 sd above, and a burst of ~42 (30 + 12)
            // graylists a peer at its best.
            noise_weight: 0.5,
            noise_allowance: 30.0,
            noise_half_life_ms: 5 * MINUTE_MS,
            // Hearsay alone never graylists: two accusers put a peer this node has no evidence
            // of at -48, below the publish threshold and shunned (no link, no replica, see
            // `links`), and any failure of it here then graylists it (a late answer costs 4); one
            // accuser (an honest node's rare mistake) costs 6. Accusers must be in good standing
            // here, and a peer that serves this node well is exempt. A quorum of 3 was tried: the
            // third accuser of a slow peer often came tens of minutes later (200-node runs).
            hearsay_weight: 48.0,
            hearsay_quorum: 2.0,
            hearsay_half_life_ms: 2 * HOUR_MS, // guess: warnings repeat while they hold
            hearsay_exempt_served: 2.0,
            // gossipsub v1.1 thresholds in the ratio deployments use (Filecoin: -500 / -1000 /
            // -2500, accept PX 1000), scaled to our [-100, 100] range.
            gossip_threshold: -10.0,
            publish_threshold: -20.0,
            graylist_threshold: -50.0,
            accept_px_threshold: 15.0,      // needs uptime and served requests, not one of them
            persist_interval_ms: MINUTE_MS, // guess: with discovery's re-scan cadence
            max_persist_batch: 256,
            rank_rtt_weight: 5.0,
            rank_availability_weight: 5.0,
        }
    }
}

impl ReputationConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let p = self;
        check(p.max_peers_scored >= 1, "reputation.max_peers_scored", "must be at least 1")?;
        for (field, w) in [
            ("reputation.uptime_weight", p.uptime_weight),
            ("reputation.churn_weight", p.churn_weight),
            ("reputation.churn_allowance", p.churn_allowance),
            ("reputation.availability_weight", p.availability_weight),
            ("reputation.withheld_weight", p.withheld_weight),
            ("reputation.deficit_weight", p.deficit_weight),
            ("reputation.responsiveness_weight", p.responsiveness_weight),
            ("reputation.malice_weight", p.malice_weight),
            ("reputation.violation_weight", p.violation_weight),
            ("reputation.noise_weight", p.noise_weight),
            ("reputation.noise_allowance", p.noise_allowance),
            ("reputation.rank_rtt_weight", p.rank_rtt_weight),
            ("reputation.rank_availability_weight", p.rank_availability_weight),
            ("reputation.hearsay_weight", p.hearsay_weight),
            ("reputation.hearsay_exempt_served", p.hearsay_exempt_served),
        ] {
            check(w.is_finite() && w >= 0.0, field, format!("must be a finite number >= 0 (got {w})"))?;
        }
        for (field, v) in [
            ("reputation.availability_prior", p.availability_prior),
            ("reputation.rtt_confidence", p.rtt_confidence),
            ("reputation.deficit_confidence", p.deficit_confidence),
            ("reputation.hearsay_quorum", p.hearsay_quorum),
        ] {
            check(v.is_finite() && v > 0.0, field, format!("must be a finite number > 0 (got {v})"))?;
        }
        for (field, ms) in [
            ("reputation.uptime_credit_ms", p.uptime_credit_ms),
            ("reputation.uptime_half_life_ms", p.uptime_half_life_ms),
            ("reputation.churn_half_life_ms", p.churn_half_life_ms),
            ("reputation.availability_half_life_ms", p.availability_half_life_ms),
            ("reputation.malice_half_life_ms", p.malice_half_life_ms),
            ("reputation.violation_half_life_ms", p.violation_half_life_ms),
            ("reputation.noise_half_life_ms", p.noise_half_life_ms),
            ("reputation.hearsay_half_life_ms", p.hearsay_half_life_ms),
        ] {
            check(ms >= 1_000, field, "must be at least 1000 ms")?;
        }
        check(p.rtt_target_ms >= 1, "reputation.rtt_target_ms", "must be positive")?;
        check(
            p.late_after_ms >= p.rtt_target_ms,
            "reputation.late_after_ms",
            format!("must be at least rtt_target_ms ({})", p.rtt_target_ms),
        )?;
        check(
            p.rtt_ewma_alpha > 0.0 && p.rtt_ewma_alpha <= 1.0,
            "reputation.rtt_ewma_alpha",
            format!("must be within (0, 1] (got {})", p.rtt_ewma_alpha),
        )?;
        let bound = crate::reputation::SCORE_MAX;
        check(
            p.gossip_threshold < 0.0 && p.gossip_threshold > -bound,
            "reputation.gossip_threshold",
            format!("must be negative and above -{bound} (got {})", p.gossip_threshold),
        )?;
        check(
            p.publish_threshold <= p.gossip_threshold && p.publish_threshold > -bound,
            "reputation.publish_threshold",
            format!("must be within (-{bound}, gossip_threshold ({})]", p.gossip_threshold),
        )?;
        check(
            p.graylist_threshold <= p.publish_threshold && p.graylist_threshold > -bound,
            "reputation.graylist_threshold",
            format!("must be within (-{bound}, publish_threshold ({})]", p.publish_threshold),
        )?;
        check(
            p.accept_px_threshold > 0.0 && p.accept_px_threshold <= bound,
            "reputation.accept_px_threshold",
            format!("must be within (0, {bound}] (got {})", p.accept_px_threshold),
        )?;
        check(p.persist_interval_ms >= 100, "reputation.persist_interval_ms", "must be at least 100 ms")?;
        check(p.max_persist_batch >= 1, "reputation.max_persist_batch", "must be at least 1")?;
        Ok(())
    }
}
