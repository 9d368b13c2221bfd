//! One peer's record and the score read from it. Every counter decays toward zero with its own
//! half-life, applied lazily: a record is brought up to `now` when it is touched or read, so no
//! timer runs per peer. Each component is bounded by its weight and monotone in time between
//! inputs, which is what lets [`Record::next_change`] find when a standing will change without
//! stepping through time.

use crate::config::ReputationConfig;
use crate::identity::Rejection;
use crate::observer::Offence;
use crate::time::Millis;
use serde::{Deserialize, Serialize};

/// Scores lie in `[SCORE_MIN, SCORE_MAX]`; 0 is neutral (a peer never seen).
pub const SCORE_MAX: f64 = 100.0;
pub const SCORE_MIN: f64 = -SCORE_MAX;

/// The search for a standing change resolves time to this (a shorter excursion is ignored).
pub const RECHECK_RESOLUTION_MS: Millis = 1_000;

/// A change is looked for this many of the longest half-lives ahead: by then every component
/// has lost all but 2^-32 of itself.
const HORIZON_HALF_LIVES: u64 = 32;

/// What a score allows, worst first (gossipsub v1.1's thresholds, plus `Trusted` for PX).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Standing {
    /// Below `graylist_threshold`: refuse its links, ignore its frames.
    Graylisted,
    /// Below `publish_threshold`: publish nothing to it.
    NoPublish,
    /// Below `gossip_threshold`: no gossip to or from it.
    NoGossip,
    /// The ordinary band, neutral included.
    Acceptable,
    /// At or above `accept_px_threshold`: take its peer exchange, prefer it for critical data.
    Trusted,
}

impl Standing {
    pub fn of(score: f64, cfg: &ReputationConfig) -> Standing {
        if score < cfg.graylist_threshold {
            Standing::Graylisted
        } else if score < cfg.publish_threshold {
            Standing::NoPublish
        } else if score < cfg.gossip_threshold {
            Standing::NoGossip
        } else if score < cfg.accept_px_threshold {
            Standing::Acceptable
        } else {
            Standing::Trusted
        }
    }

    /// The scores `[lo, hi)` of this standing.
    fn band(self, cfg: &ReputationConfig) -> (f64, f64) {
        match self {
            Standing::Graylisted => (f64::NEG_INFINITY, cfg.graylist_threshold),
            Standing::NoPublish => (cfg.graylist_threshold, cfg.publish_threshold),
            Standing::NoGossip => (cfg.publish_threshold, cfg.gossip_threshold),
            Standing::Acceptable => (cfg.gossip_threshold, cfg.accept_px_threshold),
            Standing::Trusted => (cfg.accept_px_threshold, f64::INFINITY),
        }
    }

    pub fn may_gossip(self) -> bool {
        self >= Standing::Acceptable
    }

    pub fn may_publish(self) -> bool {
        self >= Standing::NoGossip
    }

    pub fn is_graylisted(self) -> bool {
        self == Standing::Graylisted
    }

    pub fn accepts_px(self) -> bool {
        self == Standing::Trusted
    }
}

/// How an offence is weighed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OffenceClass {
    /// Proven malice: no loss or churn produces it. Heavy, slow to decay.
    Malice,
    /// Breaks the protocol in a way a correct peer does not.
    Violation,
    /// What loss, reordering, clock skew and churn produce in honest peers too. Light, fast.
    Noise,
}

/// What a peer did wrong, as reputation weighs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OffenceKind {
    /// A signature that does not verify under the key it claims.
    BadSignature,
    /// An authentication proof that does not verify under the id connected as.
    AuthFailed,
    /// Chunk bytes that do not hash to the address asked for.
    BadChunk,
    /// A shard or record accepted earlier that failed verification later.
    FailedVerification,
    /// Frames before proving its identity, or a second challenge.
    Unauthenticated,
    /// An unsigned envelope, or one whose signed data is malformed or over its limit.
    InvalidEnvelope,
    /// More frames or requests than a limit allows.
    Flood,
    /// Peer exchange naming peers most of which nobody else mentions (dead or invented ids).
    BadPex,
    /// A frame that does not decode (truncation, a peer on another version).
    MalformedFrame,
    /// No identity proof within the handshake timeout.
    AuthTimeout,
    /// An envelope outside the time window, or one seen already (clocks, retransmits).
    StaleEnvelope,
    /// A signed warning naming this node.
    FalseWarning,
}

impl OffenceKind {
    pub fn class(self) -> OffenceClass {
        use OffenceKind::*;
        match self {
            // A poisoned peer exchange answer is judged on many peers at once (most of at least
            // 8 named peers mentioned nowhere else within minutes), which an honest answer of
            // live peers does not come near: weighed as proof. A signed warning naming this
            // node is proof to it that the signer slanders (or took churn for malice).
            BadSignature | AuthFailed | BadChunk | FailedVerification | BadPex | FalseWarning => OffenceClass::Malice,
            Unauthenticated | InvalidEnvelope | Flood => OffenceClass::Violation,
            MalformedFrame | AuthTimeout | StaleEnvelope => OffenceClass::Noise,
        }
    }
}

impl From<Offence> for OffenceKind {
    fn from(o: Offence) -> Self {
        match o {
            Offence::BadFrame => OffenceKind::MalformedFrame,
            Offence::AuthFailed => OffenceKind::AuthFailed,
            Offence::AuthTimeout => OffenceKind::AuthTimeout,
            Offence::Unauthenticated => OffenceKind::Unauthenticated,
            Offence::BadChunk => OffenceKind::BadChunk,
            Offence::BadShare => OffenceKind::FailedVerification,
            Offence::BadPex => OffenceKind::BadPex,
            Offence::Flood => OffenceKind::Flood,
            Offence::FalseWarning => OffenceKind::FalseWarning,
            Offence::InvalidEnvelope(r) => match r {
                Rejection::BadSignature => OffenceKind::BadSignature,
                Rejection::Unsigned | Rejection::TooLarge { .. } | Rejection::Malformed => OffenceKind::InvalidEnvelope,
                Rejection::Stale { .. } | Rejection::FromFuture { .. } | Rejection::Replay => {
                    OffenceKind::StaleEnvelope
                }
            },
        }
    }
}

/// How a request to a peer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, after `rtt_ms`.
    Served { rtt_ms: u64 },
    /// Timed out or failed (loss causes these: they weigh in a ratio, not as an offence).
    Failed,
    /// Refused, or answered "not here", for data the peer should hold.
    Withheld,
}

/// The components of a score, each already weighted; their sum, clamped, is the score.
/// Each is monotone in time between two inputs. The last, [`HEARSAY`], is what other nodes
/// said; the others are this node's own evidence.
pub type Components = [f64; 9];

/// The index of the hearsay component in [`Components`].
pub const HEARSAY: usize = 8;

/// What each of the [`Components`] is called, in their order (`swarm peers` and the node's API
/// name the parts of a score by these).
pub const COMPONENT_NAMES: [&str; 9] =
    ["uptime", "churn", "availability", "deficit", "responsiveness", "malice", "violation", "noise", "hearsay"];

/// The decaying counts of a record (stored as they are).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub linked_ms: f64,
    /// Links lost (not closed on purpose).
    pub churn: f64,
    pub served: f64,
    pub failed: f64,
    pub withheld: f64,
    pub rtt_ewma_ms: Option<f64>,
    /// RTT samples, decayed: the confidence in `rtt_ewma_ms`.
    pub rtt_samples: f64,
    pub malice: f64,
    pub violation: f64,
    pub noise: f64,
    /// Distinct credible peers that warned of this one (each counted once per
    /// `hearsay_half_life_ms`; see [`Record::warned`]).
    #[serde(default)]
    pub warned: f64,
    /// Of `malice`, the warnings naming this node that the peer signed (decayed with it): a
    /// verdict this node keeps to itself (see [`Record::own_verdict`]).
    #[serde(default)]
    pub slandered: f64,
}

/// What a node knows of one peer. Counts are decayed to `stamp`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub stamp: Millis,
    /// Last input about the peer.
    pub last_seen: Millis,
    /// A link to the peer is open (its time accrues to `linked_ms`).
    pub linked: bool,
    /// Links opened, ever (not decayed).
    pub sessions: u64,
    pub counts: Counts,
}

/// `2^(-dt / half_life)`.
fn factor(dt_ms: Millis, half_life_ms: u64) -> f64 {
    (-(dt_ms as f64) / half_life_ms.max(1) as f64).exp2()
}

fn clamp(score: f64) -> f64 {
    score.clamp(SCORE_MIN, SCORE_MAX)
}

impl Record {
    pub fn new(now: Millis) -> Self {
        Record { stamp: now, last_seen: now, ..Record::default() }
    }

    /// Decay every counter from `stamp` to `now` (a `now` before `stamp` changes nothing).
    pub fn advance(&mut self, now: Millis, cfg: &ReputationConfig) {
        let dt = now.saturating_sub(self.stamp);
        if dt == 0 {
            return;
        }
        let up = factor(dt, cfg.uptime_half_life_ms);
        // Time linked decays like the rest; an open link adds the integral of the decayed time
        // since the stamp: tau * (1 - up), tau the mean life.
        let tau = cfg.uptime_half_life_ms as f64 / std::f64::consts::LN_2;
        self.counts.linked_ms = self.counts.linked_ms * up + if self.linked { tau * (1.0 - up) } else { 0.0 };
        self.counts.churn *= factor(dt, cfg.churn_half_life_ms);
        let av = factor(dt, cfg.availability_half_life_ms);
        self.counts.served *= av;
        self.counts.failed *= av;
        self.counts.withheld *= av;
        self.counts.rtt_samples *= av;
        self.counts.malice *= factor(dt, cfg.malice_half_life_ms);
        self.counts.slandered *= factor(dt, cfg.malice_half_life_ms);
        self.counts.violation *= factor(dt, cfg.violation_half_life_ms);
        self.counts.noise *= factor(dt, cfg.noise_half_life_ms);
        self.counts.warned *= factor(dt, cfg.hearsay_half_life_ms);
        self.stamp = now;
    }

    /// This record as it will be at `now` with no input.
    pub fn at(&self, now: Millis, cfg: &ReputationConfig) -> Record {
        let mut r = self.clone();
        r.advance(now, cfg);
        r
    }

    pub fn link_up(&mut self, now: Millis, cfg: &ReputationConfig) {
        self.advance(now, cfg);
        if !self.linked {
            self.linked = true;
            self.sessions += 1;
        }
    }

    /// `clean`: closed on purpose by either side (no churn counted).
    pub fn link_down(&mut self, now: Millis, clean: bool, cfg: &ReputationConfig) {
        self.advance(now, cfg);
        if self.linked && !clean {
            self.counts.churn += 1.0;
        }
        self.linked = false;
    }

    pub fn request(&mut self, now: Millis, outcome: Outcome, cfg: &ReputationConfig) {
        self.advance(now, cfg);
        match outcome {
            Outcome::Served { rtt_ms } => {
                // An answer past `late_after_ms` came after the asker had to look elsewhere:
                // it counts as failed (and still as an RTT sample).
                if rtt_ms > cfg.late_after_ms {
                    self.counts.failed += 1.0;
                } else {
                    self.counts.served += 1.0;
                }
                let rtt = rtt_ms as f64;
                let a = cfg.rtt_ewma_alpha;
                self.counts.rtt_ewma_ms = Some(self.counts.rtt_ewma_ms.map_or(rtt, |e| a * rtt + (1.0 - a) * e));
                self.counts.rtt_samples += 1.0;
            }
            Outcome::Failed => self.counts.failed += 1.0,
            Outcome::Withheld => self.counts.withheld += 1.0,
        }
    }

    pub fn offence(&mut self, now: Millis, kind: OffenceKind, cfg: &ReputationConfig) {
        self.advance(now, cfg);
        if kind == OffenceKind::FalseWarning {
            self.counts.slandered += 1.0;
        }
        match kind.class() {
            OffenceClass::Malice => self.counts.malice += 1.0,
            OffenceClass::Violation => self.counts.violation += 1.0,
            OffenceClass::Noise => self.counts.noise += 1.0,
        }
    }

    /// Another node warned that it graylisted this peer on its own evidence (the core counts each
    /// accuser once per half-life).
    pub fn warned(&mut self, now: Millis, cfg: &ReputationConfig) {
        self.advance(now, cfg);
        self.counts.warned += 1.0;
    }

    /// Whether this node's own evidence says the peer serves well: warnings about it are then
    /// not taken (first-hand beats hearsay, so a few slanderers cannot cut a peer off from the
    /// nodes it serves).
    pub fn serves_well(&self, cfg: &ReputationConfig) -> bool {
        self.counts.served >= cfg.hearsay_exempt_served && self.availability(cfg) > 0.0
    }

    /// The hearsay share in [0, 1]: `(warned / quorum)^3`, capped at 1. At a quorum of 2 one
    /// accuser costs 1/8 of the weight, a quorum all of it.
    pub fn hearsay(&self, cfg: &ReputationConfig) -> f64 {
        let q = cfg.hearsay_quorum.max(1.0);
        let x = (self.counts.warned / q).min(1.0);
        x * x * x
    }

    /// The score on this node's own evidence only (the hearsay component left out): a node
    /// warns others of a peer only on this, so hearsay never feeds itself.
    pub fn first_hand_score(&self, now: Millis, cfg: &ReputationConfig) -> f64 {
        clamp(self.at(now, cfg).first_hand_sum(cfg))
    }

    /// The components but hearsay, summed, unclamped, at the record's stamp.
    fn first_hand_sum(&self, cfg: &ReputationConfig) -> f64 {
        let c = self.components(cfg);
        c.iter().sum::<f64>() - c[HEARSAY]
    }

    /// The score on this node's own evidence that others may hear of: the first-hand score
    /// without the warnings this peer signed against this node. Those graylist it here, but
    /// are not passed on: every adversary takes the warnings about itself for slander, and its
    /// counter-warnings would turn the swarm against the honest peers that warned of it.
    pub fn own_verdict(&self, now: Millis, cfg: &ReputationConfig) -> f64 {
        let r = self.at(now, cfg);
        clamp(r.first_hand_sum(cfg) + cfg.malice_weight * r.counts.slandered)
    }

    /// Served against asked, in [-1, 1], pulled toward 0 by a neutral prior (one answer is not a
    /// verdict). Not decayed as a ratio: its counts share a half-life, so decay only lets the
    /// prior pull it toward 0.
    pub fn availability(&self, cfg: &ReputationConfig) -> f64 {
        let bad = self.counts.failed + cfg.withheld_weight * self.counts.withheld;
        (self.counts.served - bad) / (self.counts.served + bad + cfg.availability_prior)
    }

    /// How far a peer that fails more requests than it serves falls short, squared and
    /// weighted by how many requests that verdict rests on, in [0, 1]: 0 for any peer that
    /// serves at least half of what it is asked (loss up to 50% costs nothing here), near 1 for
    /// one that withholds or stalls everything (gossipsub v1.1's delivery deficit, P3).
    /// Decays toward 0 with the availability counts (both factors shrink as they do).
    pub fn deficit(&self, availability: f64, cfg: &ReputationConfig) -> f64 {
        let short = (-availability).max(0.0);
        let asked = self.counts.served + self.counts.failed + self.counts.withheld;
        short * short * asked / (asked + cfg.deficit_confidence)
    }

    /// The RTT average against the target, in [0, 1] (1 at or under it); 0 with no sample.
    pub fn rtt_quality(&self, cfg: &ReputationConfig) -> f64 {
        let target = cfg.rtt_target_ms.max(1) as f64;
        self.counts.rtt_ewma_ms.map_or(0.0, |e| target / e.max(target))
    }

    /// The weighted components of the score at the record's stamp.
    pub fn components(&self, cfg: &ReputationConfig) -> Components {
        let credit = cfg.uptime_credit_ms.max(1) as f64;
        let uptime = self.counts.linked_ms / (self.counts.linked_ms + credit);
        let excess = (self.counts.churn - cfg.churn_allowance).max(0.0);
        let churn = excess / (excess + cfg.churn_allowance.max(1.0));
        let confidence = self.counts.rtt_samples / (self.counts.rtt_samples + cfg.rtt_confidence);
        let noise = (self.counts.noise - cfg.noise_allowance).max(0.0);
        let availability = self.availability(cfg);
        [
            cfg.uptime_weight * uptime,
            -cfg.churn_weight * churn,
            cfg.availability_weight * availability,
            -cfg.deficit_weight * self.deficit(availability, cfg),
            cfg.responsiveness_weight * confidence * self.rtt_quality(cfg),
            -cfg.malice_weight * self.counts.malice,
            -cfg.violation_weight * self.counts.violation,
            -cfg.noise_weight * noise * noise,
            -cfg.hearsay_weight * self.hearsay(cfg),
        ]
    }

    /// The score at `now`, in `[SCORE_MIN, SCORE_MAX]`.
    pub fn score(&self, now: Millis, cfg: &ReputationConfig) -> f64 {
        clamp(self.at(now, cfg).components(cfg).iter().sum())
    }

    pub fn standing(&self, now: Millis, cfg: &ReputationConfig) -> Standing {
        Standing::of(self.score(now, cfg), cfg)
    }

    /// The weight by which peers are ranked for selection: the score, plus the last RTT
    /// against the target and the served ratio, neither decayed.
    pub fn selection_weight(&self, now: Millis, cfg: &ReputationConfig) -> f64 {
        let r = self.at(now, cfg);
        r.score(now, cfg)
            + cfg.rank_rtt_weight * r.rtt_quality(cfg)
            + cfg.rank_availability_weight * r.availability(cfg)
    }

    /// When, with no input after `now`, the standing will first differ from the one at `now`
    /// (to within [`RECHECK_RESOLUTION_MS`]); `None` if never within the horizon. Every
    /// component is monotone in time between inputs, so over `[t1, t2]` the score lies between
    /// the sum of the components' smaller ends and the sum of their larger ends: halves whose
    /// bounds stay inside the band are skipped, the rest are split.
    pub fn next_change(&self, now: Millis, cfg: &ReputationConfig) -> Option<Millis> {
        let longest = [
            cfg.uptime_half_life_ms,
            cfg.churn_half_life_ms,
            cfg.availability_half_life_ms,
            cfg.malice_half_life_ms,
            cfg.violation_half_life_ms,
            cfg.noise_half_life_ms,
            cfg.hearsay_half_life_ms,
        ]
        .into_iter()
        .max()
        .unwrap_or(1);
        let start = self.at(now, cfg);
        let here = Standing::of(clamp(start.components(cfg).iter().sum()), cfg);
        let band = here.band(cfg);
        let end = now.saturating_add(longest.saturating_mul(HORIZON_HALF_LIVES));
        let search = Search { rec: &start, cfg, here, band };
        search.first_exit(now, start.components(cfg), end, start.at(end, cfg).components(cfg))
    }
}

struct Search<'a> {
    rec: &'a Record,
    cfg: &'a ReputationConfig,
    here: Standing,
    band: (f64, f64),
}

impl Search<'_> {
    fn first_exit(&self, t1: Millis, c1: Components, t2: Millis, c2: Components) -> Option<Millis> {
        let (mut lo, mut hi) = (0.0, 0.0);
        for (a, b) in c1.iter().zip(&c2) {
            lo += a.min(*b);
            hi += a.max(*b);
        }
        if clamp(lo) >= self.band.0 && clamp(hi) < self.band.1 {
            return None;
        }
        if t2 - t1 <= RECHECK_RESOLUTION_MS {
            let there = Standing::of(clamp(c2.iter().sum()), self.cfg);
            return (there != self.here).then_some(t2);
        }
        let mid = t1 + (t2 - t1) / 2;
        let cm = self.rec.at(mid, self.cfg).components(self.cfg);
        self.first_exit(t1, c1, mid, cm).or_else(|| self.first_exit(mid, cm, t2, c2))
    }
}
