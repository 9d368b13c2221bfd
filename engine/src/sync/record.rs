//! Mutable records: (owner, key) -> value. Each write is a [`Version`]: an [`Envelope`] signed by
//! its writer (the envelope's key and timestamp are the writer id and the write's time) over a
//! domain tag and a [`WriteBody`] (the record, a vector clock, the value, and for a writer other
//! than the owner the owner's signed [`Grant`]). A version carries its own proof of authorisation,
//! so any replica checks it alone, with no state.

use super::clock::{ClockError, VectorClock};
use super::{decode_body, encode_body, BodyError};
use crate::identity::{Envelope, Identity, Rejection, Verifier};
use crate::types::PeerId;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// Longest record key (guess: a path-like name, "posts/2024/…").
pub const MAX_KEY_BYTES: usize = 128;
/// Largest value (guess: a post's text or a file's link; large content goes into files).
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Largest grant envelope data (a grant is ~100 bytes).
pub const MAX_GRANT_BYTES: usize = 512;
/// Largest write envelope data: the value, a full clock (32 x 43 bytes), the key and a grant.
pub const MAX_WRITE_BYTES: usize = MAX_VALUE_BYTES + 4 * 1024;

const WRITE_KIND: &[u8] = b"swarm-sync-write-v1";
const GRANT_KIND: &[u8] = b"swarm-sync-grant-v1";

/// A record's name: its owner and a key chosen by the owner.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RecordId {
    pub owner: PeerId,
    pub key: String,
}

impl RecordId {
    pub fn new(owner: PeerId, key: impl Into<String>) -> Self {
        RecordId { owner, key: key.into() }
    }
}

/// A version's identity: SHA-256 of everything its writer signed (envelope id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VersionId(#[serde(with = "crate::serde_bytes::array32")] pub [u8; 32]);

impl std::fmt::Debug for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VersionId({})", hex::encode(&self.0[..6]))
    }
}

/// Signed by an owner: `writer` may write the owner's record `key` (every key if `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub writer: PeerId,
    pub key: Option<String>,
}

/// Signed by a writer: this value for the record, at this clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBody {
    pub owner: PeerId,
    pub key: String,
    pub clock: VectorClock,
    #[serde(with = "crate::serde_bytes")]
    pub value: Vec<u8>,
    /// The owner's grant envelope, for a writer other than the owner (none for the owner).
    pub grant: Option<Envelope>,
}

/// Why a write was refused; names the part that was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("write of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("write signature: {0}")]
    Signature(Rejection),
    #[error("{0}")]
    Body(BodyError),
    #[error("record key of {len} bytes: must be 1..={max} bytes")]
    KeyLength { len: usize, max: usize },
    #[error("value of {len} bytes exceeds the {max}-byte limit")]
    ValueTooLarge { len: usize, max: usize },
    #[error("write clock: {0}")]
    Clock(ClockError),
    #[error("write by {writer} does not count itself in its clock")]
    WriterNotInClock { writer: String },
    #[error("writer {writer} is not the owner {owner} and shows no grant")]
    NotAuthorised { writer: String, owner: String },
    #[error("the owner's own write carries a grant")]
    OwnerWithGrant,
    #[error("grant of {len} bytes exceeds the {max}-byte limit")]
    GrantTooLarge { len: usize, max: usize },
    #[error("grant signature: {0}")]
    GrantSignature(Rejection),
    #[error("grant is signed by {signer}, not by the record's owner {owner}")]
    GrantSigner { signer: String, owner: String },
    #[error("grant names writer {named}, not {writer}")]
    GrantWriter { named: String, writer: String },
    #[error("grant is for key `{granted}`, not `{key}`")]
    GrantKey { granted: String, key: String },
    #[error("the record store holds {max} records already")]
    StoreFull { max: usize },
}

/// A write whose signature, bounds and authorisation have been checked (only [`Version::open`]
/// and [`Version::sign`] make one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    envelope: Envelope,
    body: WriteBody,
    id: VersionId,
}

/// The owner lets `writer` write `key` (or every key); the envelope goes into the writer's writes.
pub fn grant(owner: &Identity, writer: PeerId, key: Option<String>, timestamp_ms: u64) -> Envelope {
    Envelope::seal(owner, encode_body(GRANT_KIND, &Grant { writer, key }), timestamp_ms)
}

/// A grant as text (hex of its MessagePack encoding), to hand to the writer out of band.
pub fn grant_to_text(g: &Envelope) -> String {
    // Our own plain struct always encodes; a failure here is a bug.
    hex::encode(rmp_serde::to_vec(g).expect("an envelope encodes"))
}

/// The inverse of [`grant_to_text`], for text from a user (checked later, with the write).
pub fn grant_from_text(text: &str) -> Result<Envelope, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("not hex ({e})"))?;
    if bytes.len() > 2 * MAX_GRANT_BYTES {
        return Err(format!("{} bytes, more than a grant takes", bytes.len()));
    }
    rmp_serde::from_slice(&bytes).map_err(|e| format!("does not decode ({e})"))
}

impl Version {
    /// Sign a write as `identity`. Refused with the same errors a receiver would give.
    pub fn sign(
        identity: &Identity,
        record: &RecordId,
        clock: VectorClock,
        value: Vec<u8>,
        timestamp_ms: u64,
        grant: Option<Envelope>,
    ) -> Result<Version, RecordError> {
        let body = WriteBody { owner: record.owner, key: record.key.clone(), clock, value, grant };
        let envelope = Envelope::seal(identity, encode_body(WRITE_KIND, &body), timestamp_ms);
        check_size(&envelope)?;
        check_body(&envelope.public_key, &body, &crate::identity::Ed25519Verifier)?;
        let id = VersionId(envelope.id());
        Ok(Version { envelope, body, id })
    }

    /// Check an envelope from the network or a file and take it as a version.
    pub fn open(envelope: Envelope, verifier: &dyn Verifier) -> Result<Version, RecordError> {
        check_size(&envelope)?;
        envelope.verify_with(verifier).map_err(RecordError::Signature)?;
        let body: WriteBody = decode_body(WRITE_KIND, &envelope.data).map_err(RecordError::Body)?;
        check_body(&envelope.public_key, &body, verifier)?;
        let id = VersionId(envelope.id());
        Ok(Version { envelope, body, id })
    }

    pub fn id(&self) -> VersionId {
        self.id
    }

    pub fn writer(&self) -> PeerId {
        self.envelope.public_key
    }

    /// The write's time, Unix ms by the writer's clock.
    pub fn timestamp_ms(&self) -> u64 {
        self.envelope.timestamp_ms
    }

    pub fn clock(&self) -> &VectorClock {
        &self.body.clock
    }

    pub fn value(&self) -> &[u8] {
        &self.body.value
    }

    pub fn owner(&self) -> PeerId {
        self.body.owner
    }

    pub fn key(&self) -> &str {
        &self.body.key
    }

    /// The owner's grant this write carries (none for the owner's own writes).
    pub fn grant(&self) -> Option<&Envelope> {
        self.body.grant.as_ref()
    }

    pub fn record(&self) -> RecordId {
        RecordId::new(self.body.owner, self.body.key.clone())
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// Encoded size of the signed data (what bounds a batch).
    pub fn size_bytes(&self) -> usize {
        self.envelope.data.len() + 64 + 32 + 8
    }

    /// The last-writer-wins order: later timestamp, then larger writer id, then larger version
    /// id (two different writes by one writer at one millisecond still compare).
    pub fn lww_cmp(&self, other: &Version) -> Ordering {
        (self.timestamp_ms(), self.writer(), self.id).cmp(&(other.timestamp_ms(), other.writer(), other.id))
    }
}

fn check_size(envelope: &Envelope) -> Result<(), RecordError> {
    if envelope.data.len() > MAX_WRITE_BYTES {
        return Err(RecordError::TooLarge { len: envelope.data.len(), max: MAX_WRITE_BYTES });
    }
    Ok(())
}

fn check_body(writer: &PeerId, body: &WriteBody, verifier: &dyn Verifier) -> Result<(), RecordError> {
    if body.key.is_empty() || body.key.len() > MAX_KEY_BYTES {
        return Err(RecordError::KeyLength { len: body.key.len(), max: MAX_KEY_BYTES });
    }
    if body.value.len() > MAX_VALUE_BYTES {
        return Err(RecordError::ValueTooLarge { len: body.value.len(), max: MAX_VALUE_BYTES });
    }
    body.clock.validate().map_err(RecordError::Clock)?;
    if body.clock.get(writer) == 0 {
        return Err(RecordError::WriterNotInClock { writer: writer.short() });
    }
    match (&body.grant, *writer == body.owner) {
        (None, true) => Ok(()),
        (Some(_), true) => Err(RecordError::OwnerWithGrant),
        (None, false) => Err(RecordError::NotAuthorised { writer: writer.short(), owner: body.owner.short() }),
        (Some(g), false) => check_grant(g, writer, body, verifier),
    }
}

fn check_grant(g: &Envelope, writer: &PeerId, body: &WriteBody, verifier: &dyn Verifier) -> Result<(), RecordError> {
    if g.data.len() > MAX_GRANT_BYTES {
        return Err(RecordError::GrantTooLarge { len: g.data.len(), max: MAX_GRANT_BYTES });
    }
    if g.public_key != body.owner {
        return Err(RecordError::GrantSigner { signer: g.public_key.short(), owner: body.owner.short() });
    }
    g.verify_with(verifier).map_err(RecordError::GrantSignature)?;
    let grant: Grant = decode_body(GRANT_KIND, &g.data).map_err(RecordError::Body)?;
    if grant.writer != *writer {
        return Err(RecordError::GrantWriter { named: grant.writer.short(), writer: writer.short() });
    }
    match grant.key {
        Some(k) if k != body.key => Err(RecordError::GrantKey { granted: k, key: body.key.clone() }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Ed25519Verifier;
    use rand::SeedableRng;

    fn id(seed: u64) -> Identity {
        Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    fn clock_of(w: &Identity) -> VectorClock {
        VectorClock::from_entries([(w.peer_id(), 1)]).unwrap()
    }

    const T: u64 = 1_700_000_000_000;

    #[test]
    fn owner_write_opens_and_round_trips() {
        let owner = id(1);
        let rec = RecordId::new(owner.peer_id(), "post/1");
        let v = Version::sign(&owner, &rec, clock_of(&owner), b"hello".to_vec(), T, None).unwrap();
        let bytes = rmp_serde::to_vec(v.envelope()).unwrap();
        let env: Envelope = rmp_serde::from_slice(&bytes).unwrap();
        let back = Version::open(env, &Ed25519Verifier).unwrap();
        assert_eq!(back, v);
        assert_eq!(
            (back.writer(), back.timestamp_ms(), back.value(), back.record()),
            (owner.peer_id(), T, &b"hello"[..], rec)
        );
    }

    #[test]
    fn granted_writer_is_accepted_and_others_are_refused() {
        let (owner, writer, stranger) = (id(1), id(2), id(3));
        let rec = RecordId::new(owner.peer_id(), "doc");
        let g = grant(&owner, writer.peer_id(), Some("doc".into()), T);
        let v = Version::sign(&writer, &rec, clock_of(&writer), b"x".to_vec(), T, Some(g.clone())).unwrap();
        assert!(Version::open(v.envelope().clone(), &Ed25519Verifier).is_ok());
        // Without a grant, with someone else's grant, for another key, signed by a non-owner.
        let e = Version::sign(&stranger, &rec, clock_of(&stranger), vec![], T, None).unwrap_err();
        assert!(matches!(e, RecordError::NotAuthorised { .. }));
        let e = Version::sign(&stranger, &rec, clock_of(&stranger), vec![], T, Some(g)).unwrap_err();
        assert!(matches!(e, RecordError::GrantWriter { .. }));
        let other = RecordId::new(owner.peer_id(), "other");
        let g = grant(&owner, writer.peer_id(), Some("doc".into()), T);
        assert_eq!(grant_from_text(&grant_to_text(&g)), Ok(g.clone()), "a grant survives its text form");
        let e = Version::sign(&writer, &other, clock_of(&writer), vec![], T, Some(g)).unwrap_err();
        assert!(matches!(e, RecordError::GrantKey { .. }));
        assert!(grant_from_text("zz").unwrap_err().contains("not hex"));
        assert!(grant_from_text("c1").unwrap_err().contains("does not decode"));
        let forged = grant(&stranger, writer.peer_id(), None, T);
        let e = Version::sign(&writer, &rec, clock_of(&writer), vec![], T, Some(forged)).unwrap_err();
        assert!(matches!(e, RecordError::GrantSigner { .. }));
        // A grant for every key covers any key.
        let all = grant(&owner, writer.peer_id(), None, T);
        assert!(Version::sign(&writer, &other, clock_of(&writer), vec![], T, Some(all)).is_ok());
    }

    #[test]
    fn tampering_and_bounds_are_refused_with_the_reason() {
        let owner = id(1);
        let rec = RecordId::new(owner.peer_id(), "k");
        let v = Version::sign(&owner, &rec, clock_of(&owner), b"v".to_vec(), T, None).unwrap();
        let mut env = v.envelope().clone();
        let last = env.data.len() - 1;
        env.data[last] ^= 1;
        assert_eq!(Version::open(env, &Ed25519Verifier), Err(RecordError::Signature(Rejection::BadSignature)));
        let mut env = v.envelope().clone();
        env.timestamp_ms += 1;
        assert!(matches!(Version::open(env, &Ed25519Verifier), Err(RecordError::Signature(_))));
        // Signed garbage and signed records of another kind are named as such.
        let garbage = Envelope::seal(&owner, b"swarm-sync-write-v1\xc1".to_vec(), T);
        assert!(matches!(
            Version::open(garbage, &Ed25519Verifier),
            Err(RecordError::Body(BodyError::Malformed { .. }))
        ));
        let g = grant(&owner, owner.peer_id(), None, T);
        assert!(matches!(Version::open(g, &Ed25519Verifier), Err(RecordError::Body(BodyError::WrongKind { .. }))));
        let big = vec![0; MAX_VALUE_BYTES + 1];
        let e = Version::sign(&owner, &rec, clock_of(&owner), big, T, None).unwrap_err();
        assert!(matches!(e, RecordError::ValueTooLarge { .. }));
        let huge = Envelope::seal(&owner, vec![0; MAX_WRITE_BYTES + 1], T);
        assert!(matches!(Version::open(huge, &Ed25519Verifier), Err(RecordError::TooLarge { .. })));
        let long = RecordId::new(owner.peer_id(), "k".repeat(MAX_KEY_BYTES + 1));
        let e = Version::sign(&owner, &long, clock_of(&owner), vec![], T, None).unwrap_err();
        assert!(matches!(e, RecordError::KeyLength { .. }));
        let e = Version::sign(&owner, &rec, VectorClock::new(), vec![], T, None).unwrap_err();
        assert!(matches!(e, RecordError::WriterNotInClock { .. }));
    }

    #[test]
    fn lww_order_is_timestamp_then_writer() {
        let (a, b) = (id(1), id(2));
        let rec = RecordId::new(a.peer_id(), "k");
        let g = grant(&a, b.peer_id(), None, T);
        let va = Version::sign(&a, &rec, clock_of(&a), vec![1], T + 5, None).unwrap();
        let vb = Version::sign(&b, &rec, clock_of(&b), vec![2], T, Some(g.clone())).unwrap();
        assert_eq!(va.lww_cmp(&vb), Ordering::Greater);
        let vb_same_ms = Version::sign(&b, &rec, clock_of(&b), vec![2], T + 5, Some(g)).unwrap();
        assert_eq!(va.lww_cmp(&vb_same_ms), a.peer_id().cmp(&b.peer_id()));
    }
}
