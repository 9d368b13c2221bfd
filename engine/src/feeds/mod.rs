//! Announcements and feeds (issue 14, item 3): each user's feed is the sync record (owner, `feed`)
//! listing their posts and files; new entries are announced over gossip as signed, small,
//! de-duplicated, rate-limited announcements; a node follows users (persisted), learns their new
//! entries within a bounded time and catches up by asking new links and reading feed records.
//!
//! Parts: [`entry`] (entries, the feed record, announcements, the wire message), [`follow`] (the
//! followed users and what was learned), [`limit`] (token buckets), [`config`] (`[node.feeds]`),
//! [`store`] (the `follows` table) and [`core`] (the machine a node runs).

pub mod config;
pub mod core;
pub mod entry;
pub mod follow;
pub mod limit;
pub mod store;
#[cfg(test)]
mod tests;

pub use self::core::{FeedEvent, FeedItem, FeedStats, FeedsCore, Input, Output};
pub use config::FeedsConfig;
pub use entry::{feed_record, Announcement, EntryKind, FeedEntry, FeedError, FeedMessage, FeedRecord, FEED_KEY};
pub use follow::{FollowError, Followee, Follows};

/// The feeds subsystem's actor: the generic shell around [`FeedsCore`].
pub type FeedsActor = crate::core::Shell<FeedsCore, Box<dyn crate::core::Wiring<Output>>>;

/// Op ids of the sync reads the feeds actor asks for (above every caller's own range).
pub const FEED_SYNC_OPS: u64 = 1 << 62;
