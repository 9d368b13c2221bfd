//! The scenario's adversaries (`[adversary]`): which nodes misbehave and how, drawn at every
//! start and join, and what that means for a node's content service.

use serde::{Deserialize, Serialize};
use swarm_engine::replication::ContentFaults;

/// Misbehaving peers mixed into the population.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdversarySpec {
    /// Share of nodes (starting and joining, each drawn independently) that send every signed
    /// envelope with a broken signature: their own rumours and the ones they relay.
    pub invalid_signatures: f64,
    /// Shares of nodes whose content service misbehaves (one kind per node, drawn at every
    /// start and join, apart from `invalid_signatures`): they accept and announce replicas but
    /// answer every request "not here"...
    pub withhold: f64,
    /// ...serve bytes that fail their hash...
    pub corrupt: f64,
    /// ...answer every request `slow_ms` late...
    pub slow: f64,
    /// ...or behave for `covert_after_s`, then withhold and corrupt.
    pub covert: f64,
    /// Share of nodes whose recovery holder releases wrong shares (their content service is
    /// honest): a lying holder, which the recovering device must catch and report.
    pub lying_holder: f64,
    /// Share of nodes that answer peer exchange with dead or invented ids (their content
    /// service is honest).
    pub pex_poison: f64,
    /// Share of flooders: nodes that send `flood_rumors` more rumours of their own every gossip
    /// round and `flood_lookups` lookup questions to every link every 5 s (their content service
    /// is honest).
    pub flood: f64,
    /// Share of lone slanderers: honest in all else, they warn of every peer they link to, as
    /// if they had graylisted it.
    pub slander: f64,
    /// Share of sybil ids: one operator runs `sybil_ids` of them (the ids drawn one after the
    /// other make a group), honest in all else; they never accuse one another, and each warns of
    /// every peer any of them linked to.
    pub sybil: f64,
    pub sybil_ids: usize,
    pub slow_ms: u64,
    pub covert_after_s: u64,
    pub flood_rumors: usize,
    pub flood_lookups: usize,
}

impl Default for AdversarySpec {
    fn default() -> Self {
        AdversarySpec {
            invalid_signatures: 0.0,
            withhold: 0.0,
            corrupt: 0.0,
            slow: 0.0,
            covert: 0.0,
            lying_holder: 0.0,
            pex_poison: 0.0,
            flood: 0.0,
            slander: 0.0,
            sybil: 0.0,
            sybil_ids: 4,        // guess: a few hosts' worth of ids per operator
            slow_ms: 3_000,      // past `reputation.late_after_ms`, within a request's timeout
            covert_after_s: 900, // long enough to earn a good score first
            // A flooder's own rumours, 31 a minute, are past the default budget of 20 at once
            // (`node.flood`) and 8x the most one link was measured to carry in a minute (4); its
            // questions, 20 a second on each link, twice the budget's rate and 3x the busiest
            // link's peak over a minute (369).
            flood_rumors: 30,
            flood_lookups: 100,
        }
    }
}

/// The content misbehaviour of an adversary, by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContentAdversary {
    Withhold,
    Corrupt,
    Slow,
    Covert,
    LyingHolder,
    PexPoison,
    Flood,
    Slander,
    Sybil,
}

impl ContentAdversary {
    pub fn name(self) -> &'static str {
        match self {
            ContentAdversary::Withhold => "withhold",
            ContentAdversary::Corrupt => "corrupt",
            ContentAdversary::Slow => "slow",
            ContentAdversary::Covert => "covert",
            ContentAdversary::LyingHolder => "lying_holder",
            ContentAdversary::PexPoison => "pex_poison",
            ContentAdversary::Flood => "flood",
            ContentAdversary::Slander => "slander",
            ContentAdversary::Sybil => "sybil",
        }
    }
}

impl AdversarySpec {
    /// The content kinds with their shares, in a fixed order (the draw is made in it).
    pub fn content_shares(&self) -> [(ContentAdversary, f64); 9] {
        [
            (ContentAdversary::Withhold, self.withhold),
            (ContentAdversary::Corrupt, self.corrupt),
            (ContentAdversary::Slow, self.slow),
            (ContentAdversary::Covert, self.covert),
            (ContentAdversary::LyingHolder, self.lying_holder),
            (ContentAdversary::PexPoison, self.pex_poison),
            (ContentAdversary::Flood, self.flood),
            (ContentAdversary::Slander, self.slander),
            (ContentAdversary::Sybil, self.sybil),
        ]
    }
}

impl AdversarySpec {
    /// The content faults of a node starting at `now_ms` for a uniform draw `u` in [0, 1)
    /// (none when `u` falls past every share). A slanderer's group is the caller's to attach.
    pub fn content_faults(&self, u: f64, now_ms: u64) -> Option<(ContentAdversary, ContentFaults)> {
        let mut u = u;
        let kind = self.content_shares().into_iter().find_map(|(k, s)| {
            u -= s;
            (u < 0.0).then_some(k)
        })?;
        let faults = match kind {
            ContentAdversary::Withhold => ContentFaults { withhold: true, ..ContentFaults::default() },
            ContentAdversary::Corrupt => ContentFaults { corrupt: true, ..ContentFaults::default() },
            ContentAdversary::Slow => ContentFaults { slow_ms: self.slow_ms, ..ContentFaults::default() },
            ContentAdversary::Covert => ContentFaults {
                withhold: true,
                corrupt: true,
                from_ms: now_ms + self.covert_after_s * 1000,
                ..ContentFaults::default()
            },
            ContentAdversary::LyingHolder => ContentFaults { lie_shares: true, ..ContentFaults::default() },
            ContentAdversary::PexPoison => ContentFaults { poison_pex: true, ..ContentFaults::default() },
            ContentAdversary::Flood => ContentFaults {
                flood_rumors: self.flood_rumors,
                flood_lookups: self.flood_lookups,
                ..ContentFaults::default()
            },
            ContentAdversary::Slander | ContentAdversary::Sybil => ContentFaults::default(),
        };
        Some((kind, faults))
    }
}
