//! The feeds section of the node configuration (`[node.feeds]`): how far announcements travel,
//! how fast an owner or a link may push them, how much a node remembers, and how often followed
//! feeds are read back. Defaults annotated with where they come from; errors name the field.

use crate::config::{check, ConfigError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedsConfig {
    /// Completed publications (posts, files) go into this node's feed and are announced. The
    /// simulator turns it off unless a scenario has a `[feeds]` section.
    pub enabled: bool,
    /// Hops an announcement travels from its owner (relays after the first link).
    pub max_hops: u8,
    /// Links a relay passes a new announcement to (all of them when it has fewer); the owner
    /// sends to every link.
    pub fanout: usize,
    /// An announcement older than this (by its signed time) is kept and learned, not relayed.
    pub relay_max_age_ms: u64,
    /// An announcement dated further ahead than this is refused.
    pub max_clock_ahead_ms: u64,
    /// Announcements relayed per owner: a burst, then so many an hour.
    pub owner_burst: u32,
    pub owner_per_hour: u32,
    /// Feed messages taken per link: a burst, then so many an hour (the rest are dropped).
    pub link_burst: u32,
    pub link_per_hour: u32,
    /// Owners and links the rate limits track (the least recently seen is forgotten).
    pub max_tracked: usize,
    /// Announcement ids remembered as seen.
    pub max_seen: usize,
    /// Owners whose latest announcements are kept to answer `Ask`s, and how many each.
    pub max_cached_owners: usize,
    pub cached_per_owner: usize,
    /// Users a node follows.
    pub max_follows: usize,
    /// Entries kept per followed user.
    pub max_learned_per_owner: usize,
    /// Followed feeds are read back (sync read of their record) this often, and on a return.
    pub poll_interval_ms: u64,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        FeedsConfig {
            enabled: true,
            max_hops: 8,                     // guess: overlay diameter at 10k nodes is ~5
            fanout: 8,                       // push gossip misses ~e^-8 of nodes; a poll catches the rest
            relay_max_age_ms: 10 * 60_000,   // guess: a live announcement spreads in seconds
            max_clock_ahead_ms: 10 * 60_000, // as sync.max_clock_ahead_ms
            owner_burst: 20,
            owner_per_hour: 120, // guess: a busy author posts every 30 s at most
            link_burst: 200,
            link_per_hour: 36_000, // ten a second a link
            max_tracked: 4096,
            max_seen: 65_536, // ~50 bytes each: ~3 MiB
            max_cached_owners: 1024,
            cached_per_owner: 4, // ~400 bytes each: ~1.6 MiB at most
            max_follows: 1024,
            max_learned_per_owner: 32, // a feed record's entries
            poll_interval_ms: 5 * 60_000,
        }
    }
}

impl FeedsConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let s = self;
        check(s.max_hops >= 1, "feeds.max_hops", "must be at least 1")?;
        check(s.fanout >= 1, "feeds.fanout", "must be at least 1")?;
        check(s.owner_per_hour >= 1 && s.owner_burst >= 1, "feeds.owner_per_hour", "rate and burst must be >= 1")?;
        check(s.link_per_hour >= 1 && s.link_burst >= 1, "feeds.link_per_hour", "rate and burst must be >= 1")?;
        check(s.max_tracked >= 1, "feeds.max_tracked", "must be at least 1")?;
        check(s.max_seen >= 16, "feeds.max_seen", "must be at least 16")?;
        check(s.cached_per_owner >= 1, "feeds.cached_per_owner", "must be at least 1")?;
        check(s.max_learned_per_owner >= 1, "feeds.max_learned_per_owner", "must be at least 1")?;
        check(s.poll_interval_ms >= 1_000, "feeds.poll_interval_ms", "must be at least 1000 ms")?;
        Ok(())
    }
}
