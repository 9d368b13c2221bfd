//! What a feed holds and what travels: a [`FeedEntry`] (a post or a file, its name, its share
//! link, its time), the [`FeedRecord`] an owner keeps under the sync record (owner, `feed`)
//! (bounded: the oldest entries go first), and the signed [`Announcement`] of one entry that
//! gossip carries ([`FeedMessage`]). Every bound is checked on what comes in, with an error that
//! names what was wrong.

use crate::identity::{Envelope, Identity, Rejection, Verifier};
use crate::sync::record::MAX_VALUE_BYTES;
use crate::sync::{decode_body, encode_body, BodyError, RecordId};
use crate::types::PeerId;
use serde::{Deserialize, Serialize};

/// The key of every owner's feed record.
pub const FEED_KEY: &str = "feed";
/// Longest entry name (a file's name, a post's first words), bytes.
pub const MAX_NAME_BYTES: usize = 96;
/// Longest share link (`ROOT:KEY` is 129 characters).
pub const MAX_LINK_BYTES: usize = 160;
/// Entries a feed record keeps (the newest); at ~300 bytes each, well under a record's 16 KiB.
pub const MAX_FEED_ENTRIES: usize = 32;
/// Largest signed announcement data (one entry is ~300 bytes).
pub const MAX_ANNOUNCE_BYTES: usize = 1024;
/// Most announcements one feed message carries.
pub const MAX_FEED_ITEMS: usize = 32;
/// Most owners one `Ask` names.
pub const MAX_ASK_OWNERS: usize = 64;

const ANNOUNCE_KIND: &[u8] = b"swarm-feed-announce-v1";

/// The owner's feed record.
pub fn feed_record(owner: PeerId) -> RecordId {
    RecordId::new(owner, FEED_KEY)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    Post,
    File,
}

impl EntryKind {
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::Post => "post",
            EntryKind::File => "file",
        }
    }
}

/// One item of a feed. `seq` counts the owner's entries from 1, so a follower sees what it
/// missed; `published_ms` is Unix ms by the owner's clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedEntry {
    pub seq: u64,
    pub kind: EntryKind,
    pub name: String,
    /// The content's share link (`swarm get LINK` fetches it).
    pub link: String,
    pub published_ms: u64,
}

/// Why an entry, a feed record or an announcement was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("entry name of {len} bytes: at most {max}")]
    NameTooLong { len: usize, max: usize },
    #[error("entry link of {len} bytes: must be 1..={max}")]
    LinkLength { len: usize, max: usize },
    #[error("entry sequence number 0 (they count from 1)")]
    ZeroSeq,
    #[error("feed record of {len} entries: at most {max}")]
    TooManyEntries { len: usize, max: usize },
    #[error("feed record entries out of order (seq {seq} after {prev})")]
    OutOfOrder { seq: u64, prev: u64 },
    #[error("feed record does not decode: {0}")]
    Malformed(String),
    #[error("announcement of {len} bytes exceeds the {max}-byte limit")]
    AnnounceTooLarge { len: usize, max: usize },
    #[error("announcement signature: {0}")]
    Signature(Rejection),
    #[error("{0}")]
    Body(BodyError),
    #[error("announcement dated {stamped} but its entry says {published}")]
    TimeMismatch { stamped: u64, published: u64 },
}

impl FeedEntry {
    /// Trim a user's name to the bound (on a character boundary) rather than refuse it.
    pub fn trim_name(name: &str) -> String {
        let mut end = name.len().min(MAX_NAME_BYTES);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name[..end].to_string()
    }

    pub fn validate(&self) -> Result<(), FeedError> {
        if self.seq == 0 {
            return Err(FeedError::ZeroSeq);
        }
        if self.name.len() > MAX_NAME_BYTES {
            return Err(FeedError::NameTooLong { len: self.name.len(), max: MAX_NAME_BYTES });
        }
        if self.link.is_empty() || self.link.len() > MAX_LINK_BYTES {
            return Err(FeedError::LinkLength { len: self.link.len(), max: MAX_LINK_BYTES });
        }
        Ok(())
    }
}

/// An owner's feed: its newest entries, oldest first, sequence numbers increasing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedRecord {
    pub entries: Vec<FeedEntry>,
}

impl FeedRecord {
    /// The sequence number the next entry takes.
    pub fn next_seq(&self) -> u64 {
        self.entries.last().map_or(1, |e| e.seq + 1)
    }

    /// Append a new entry (numbered here), dropping the oldest past the bound.
    pub fn append(&mut self, kind: EntryKind, name: &str, link: String, published_ms: u64) -> FeedEntry {
        let entry = FeedEntry { seq: self.next_seq(), kind, name: FeedEntry::trim_name(name), link, published_ms };
        self.entries.push(entry.clone());
        if self.entries.len() > MAX_FEED_ENTRIES {
            let extra = self.entries.len() - MAX_FEED_ENTRIES;
            self.entries.drain(..extra);
        }
        debug_assert!(self.validate().is_ok(), "a feed record we built breaks its own bounds");
        entry
    }

    pub fn encode(&self) -> Vec<u8> {
        // Our own plain struct always encodes; a failure here is a bug.
        let out = rmp_serde::to_vec(self).expect("a feed record encodes");
        debug_assert!(out.len() <= MAX_VALUE_BYTES, "a bounded feed record fits a record value");
        out
    }

    /// A record value from a replica (checked: bounds and order).
    pub fn decode(value: &[u8]) -> Result<FeedRecord, FeedError> {
        let r: FeedRecord = rmp_serde::from_slice(value).map_err(|e| FeedError::Malformed(e.to_string()))?;
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), FeedError> {
        if self.entries.len() > MAX_FEED_ENTRIES {
            return Err(FeedError::TooManyEntries { len: self.entries.len(), max: MAX_FEED_ENTRIES });
        }
        let mut prev = 0;
        for e in &self.entries {
            e.validate()?;
            if e.seq <= prev {
                return Err(FeedError::OutOfOrder { seq: e.seq, prev });
            }
            prev = e.seq;
        }
        Ok(())
    }
}

/// A checked announcement: the owner's signed envelope over one entry (only [`Announcement::seal`]
/// and [`Announcement::open`] make one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    envelope: Envelope,
    entry: FeedEntry,
}

impl Announcement {
    /// Sign `entry` as its owner; the envelope's time is the entry's.
    pub fn seal(owner: &Identity, entry: FeedEntry) -> Announcement {
        let envelope = Envelope::seal(owner, encode_body(ANNOUNCE_KIND, &entry), entry.published_ms);
        Announcement { envelope, entry }
    }

    /// Check an envelope from the network: size, signature, kind, entry bounds.
    pub fn open(envelope: Envelope, verifier: &dyn Verifier) -> Result<Announcement, FeedError> {
        let len = envelope.data.len();
        if len > MAX_ANNOUNCE_BYTES {
            return Err(FeedError::AnnounceTooLarge { len, max: MAX_ANNOUNCE_BYTES });
        }
        envelope.verify_with(verifier).map_err(FeedError::Signature)?;
        let entry: FeedEntry = decode_body(ANNOUNCE_KIND, &envelope.data).map_err(FeedError::Body)?;
        entry.validate()?;
        if entry.published_ms != envelope.timestamp_ms {
            return Err(FeedError::TimeMismatch { stamped: envelope.timestamp_ms, published: entry.published_ms });
        }
        Ok(Announcement { envelope, entry })
    }

    pub fn owner(&self) -> PeerId {
        self.envelope.public_key
    }

    pub fn entry(&self) -> &FeedEntry {
        &self.entry
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Its id in seen caches: (owner, seq).
    pub fn id(&self) -> (PeerId, u64) {
        (self.owner(), self.entry.seq)
    }
}

/// The feeds' wire message (`Message::Feed`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedMessage {
    /// Signed announcements; the receiver may pass new ones on `hops` more times (0: keep them).
    Announce { hops: u8, items: Vec<Envelope> },
    /// "What have you heard of these owners?" (sent when a link comes up by a node that follows
    /// them); answered with the announcements held, `hops` 0.
    Ask { owners: Vec<PeerId> },
}
