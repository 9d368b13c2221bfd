//! The sync section of the node configuration (`[node.sync]`): bounds of the record store, of
//! anti-entropy messages and of the sync queue, each default annotated with where it comes from,
//! validated with errors that name the field.

use crate::config::{check, ConfigError};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    /// Records a replica keeps; a version of a further record is refused (not acknowledged).
    pub max_records: usize,
    /// Versions kept per record (winner, conflict log and superseded history together).
    pub max_versions_per_record: usize,
    /// A version dated further than this past the receiver's clock is refused for now (it would
    /// win every conflict until that time); the sender retries.
    pub max_clock_ahead_ms: u64,
    /// Records in one digest message (more are split over several).
    pub max_digest_entries: usize,
    /// Version ids in one `Have`, `Want` or `Ack` message.
    pub max_ids_per_message: usize,
    /// Versions in one message, and their bytes.
    pub max_versions_per_message: usize,
    pub max_message_bytes: usize,
    /// Local writes waiting for acknowledgement; a write past it is refused.
    pub max_pending_writes: usize,
    /// Distinct replicas that must acknowledge a write before it leaves the queue.
    pub ack_quorum: usize,
    /// A write waits this long before its first send, so a burst goes in one batch.
    pub batch_delay_ms: u64,
    /// A write sent to a linked replica and not acknowledged is sent again after this long.
    pub resend_after_ms: u64,
    /// Anti-entropy round: every linked replica is sent the digests of the records it shares
    /// with this node (links coming up start a round with that peer at once).
    pub anti_entropy_interval_ms: u64,
    /// A read asks the record's replicas for what they hold (links to them asked for, and a
    /// lookup of them if none is recent) and answers once `read_quorum` of them have answered,
    /// or at the latest this long after it started or its lookup answered (at once when no
    /// replica is known at all).
    pub read_wait_ms: u64,
    /// Replicas (this node counted when it is one) whose answers a read waits for; with
    /// `read_quorum + ack_quorum > rf` one of them holds every acknowledged write.
    pub read_quorum: usize,
    /// A record's replica set found by a lookup (the live peers closest to its key) is trusted
    /// this long; writing, reading or replicating the record after that looks it up again.
    /// Unreachable peers are left out of replica sets for as long.
    pub replica_lookup_ms: u64,
    /// A node that keeps a record checks its place among the record's keepers (a lookup) when
    /// the answer it holds is older than this; reads and writes want one younger than
    /// `replica_lookup_ms`.
    pub keeper_check_ms: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            max_records: 100_000,            // guess: ~100 records per user for 1,000 users a replica
            max_versions_per_record: 32,     // guess: 32 x 16 KiB values = 512 KiB a record at worst
            max_clock_ahead_ms: 10 * 60_000, // guess: clocks of devices on NTP are within seconds
            max_digest_entries: 1024,        // ~110 bytes an entry: ~110 KiB, under the 1 MiB frame
            max_ids_per_message: 4096,       // 33 bytes an id: ~135 KiB
            max_versions_per_message: 64,
            max_message_bytes: 512 * 1024, // half the 1 MiB frame limit (DESIGN 5)
            max_pending_writes: 10_000,
            ack_quorum: 2, // plan: RF 3; a majority holds the write
            batch_delay_ms: 200,
            resend_after_ms: 5_000,           // guess: a few round trips through relays
            anti_entropy_interval_ms: 30_000, // guess: a digest per shared record twice a minute
            read_wait_ms: 1_000,              // guess: three round trips on a loaded link
            read_quorum: 2,                   // rf 3 and ack_quorum 2: the sets overlap
            replica_lookup_ms: 60_000,        // guess: sessions last minutes; a lookup is a few queries
            // measured (sync-sessions-50 at 300 nodes): checking each kept record each minute made
            // ~10 lookups per node a minute, and their links held the degree at the hard cap
            keeper_check_ms: 300_000,
        }
    }
}

impl SyncConfig {
    /// `rf`: the replication factor (a quorum above it could never be reached).
    pub(crate) fn validate(&self, rf: usize) -> Result<(), ConfigError> {
        let s = self;
        check(s.max_records >= 1, "sync.max_records", "must be at least 1")?;
        check(s.max_versions_per_record >= 1, "sync.max_versions_per_record", "must be at least 1")?;
        check(s.max_digest_entries >= 1, "sync.max_digest_entries", "must be at least 1")?;
        check(
            s.max_ids_per_message >= s.max_versions_per_record,
            "sync.max_ids_per_message",
            format!("must be >= max_versions_per_record ({})", s.max_versions_per_record),
        )?;
        check(s.max_versions_per_message >= 1, "sync.max_versions_per_message", "must be at least 1")?;
        let one = super::record::MAX_WRITE_BYTES + 1024;
        check(s.max_message_bytes >= one, "sync.max_message_bytes", format!("must fit one full write ({one} bytes)"))?;
        check(s.max_pending_writes >= 1, "sync.max_pending_writes", "must be at least 1")?;
        check(
            (1..=rf).contains(&s.ack_quorum),
            "sync.ack_quorum",
            format!("must be within 1..=replication.rf ({rf})"),
        )?;
        check(
            (1..=rf).contains(&s.read_quorum),
            "sync.read_quorum",
            format!("must be within 1..=replication.rf ({rf})"),
        )?;
        check(s.resend_after_ms >= 100, "sync.resend_after_ms", "must be at least 100 ms")?;
        check(s.batch_delay_ms < s.resend_after_ms, "sync.batch_delay_ms", "must be below resend_after_ms")?;
        check(s.anti_entropy_interval_ms >= 1_000, "sync.anti_entropy_interval_ms", "must be at least 1000 ms")?;
        check(s.read_wait_ms <= 60_000, "sync.read_wait_ms", "must be at most 60000 ms")?;
        check(s.replica_lookup_ms >= 1_000, "sync.replica_lookup_ms", "must be at least 1000 ms")?;
        check(
            s.keeper_check_ms >= s.replica_lookup_ms,
            "sync.keeper_check_ms",
            format!("must be at least replica_lookup_ms ({})", s.replica_lookup_ms),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::NodeConfig;

    #[test]
    fn defaults_validate_and_errors_name_the_field() {
        let mut c = NodeConfig::default();
        c.validate().unwrap();
        c.sync.ack_quorum = c.replication.rf + 1;
        assert_eq!(c.validate().unwrap_err().field, "sync.ack_quorum");
        c.sync.ack_quorum = 0;
        assert_eq!(c.validate().unwrap_err().field, "sync.ack_quorum");
        let mut c = NodeConfig::default();
        c.sync.read_quorum = 0;
        assert_eq!(c.validate().unwrap_err().field, "sync.read_quorum");
        c.sync.read_quorum = c.replication.rf + 1;
        assert_eq!(c.validate().unwrap_err().field, "sync.read_quorum");
        let mut c = NodeConfig::default();
        c.sync.max_message_bytes = 1000;
        assert_eq!(c.validate().unwrap_err().field, "sync.max_message_bytes");
        let mut c = NodeConfig::default();
        c.sync.batch_delay_ms = c.sync.resend_after_ms;
        assert_eq!(c.validate().unwrap_err().field, "sync.batch_delay_ms");
        let mut c = NodeConfig::default();
        c.sync.anti_entropy_interval_ms = 10;
        assert_eq!(c.validate().unwrap_err().field, "sync.anti_entropy_interval_ms");
        let e: Result<NodeConfig, _> = toml::from_str("[sync]\nack_quorum_count = 2\n");
        assert!(e.unwrap_err().to_string().contains("ack_quorum_count"));
        let c: NodeConfig = toml::from_str("[sync]\nack_quorum = 3\n").unwrap();
        assert_eq!(c.sync.ack_quorum, 3);
    }
}
