//! The identity's 32-byte ed25519 seed split into `shares` verifiable shares, any `threshold` of
//! which rebuild it (Feldman VSS over ristretto255, vsss-rs). Each share carries the owner-signed
//! commitments, so anyone can check one share alone; [`combine`] checks every share, names the bad
//! ones, and accepts a result only if it rebuilds the expected peer id.
//!
//! Encoding. The seed is 32 arbitrary bytes, more than the scalar field (order l ~ 2^252) holds, so
//! it is shared as two scalars, one per 16-byte half h. A bare 128-bit half would be a weak secret
//! under Feldman, whose first commitment is g^secret: a kangaroo search finds a 128-bit discrete log
//! in ~2^64 steps. So each half is padded with 123 random bits above it: the shared scalar is
//! `h + r * 2^128` with `r < 2^123`, below 2^251 < l (canonical, no reduction), with 251 bits of
//! entropy. Decoding keeps the low 16 bytes and refuses a scalar at or above 2^251 (a cheap early
//! sign of a wrong reconstruction; the public-key check is the final one).

use super::{decode_body, encode_body, BodyError, Bytes32};
use crate::identity::{user_id, Envelope, Identity, Rejection};
use crate::types::PeerId;
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use vsss_rs::curve25519::{WrappedRistretto, WrappedScalar};
use vsss_rs::{feldman, DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ReadableShareSet, ValueGroup};
use zeroize::{Zeroize, Zeroizing};

type Field = IdentifierPrimeField<WrappedScalar>;
type VShare = DefaultShare<Field, Field>;
type Commitment = ValueGroup<WrappedRistretto>;

/// Shares in a backup, at most (a bound on the commitments and the work a share's check costs).
pub const MAX_SHARES: u8 = 16;
/// A threshold of 1 would make every holder the owner.
pub const MIN_THRESHOLD: u8 = 2;
/// Plan (DESIGN 3): 5 shares.
pub const DEFAULT_SHARES: u8 = 5;
/// Plan (DESIGN 3): any 3 recover.
pub const DEFAULT_THRESHOLD: u8 = 3;

const COMMITMENTS_KIND: &[u8] = b"swarm-recovery-commitments-v1";
/// Top byte of a half's scalar: bits 248..=250 carry padding, bits 251.. stay clear (value < 2^251).
const PAD_TOP_MASK: u8 = 0x07;

/// How many shares, and how many rebuild the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitParams {
    pub shares: u8,
    pub threshold: u8,
}

impl Default for SplitParams {
    fn default() -> Self {
        SplitParams { shares: DEFAULT_SHARES, threshold: DEFAULT_THRESHOLD }
    }
}

impl SplitParams {
    pub fn validate(&self) -> Result<(), SplitError> {
        let (t, n) = (self.threshold, self.shares);
        if t < MIN_THRESHOLD {
            return Err(SplitError::ThresholdTooLow { threshold: t, min: MIN_THRESHOLD });
        }
        if n > MAX_SHARES {
            return Err(SplitError::TooManyShares { shares: n, max: MAX_SHARES });
        }
        if t > n {
            return Err(SplitError::ThresholdAboveShares { threshold: t, shares: n });
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("threshold {threshold} is below the minimum of {min}")]
    ThresholdTooLow { threshold: u8, min: u8 },
    #[error("{shares} shares exceed the maximum of {max}")]
    TooManyShares { shares: u8, max: u8 },
    #[error("threshold {threshold} exceeds the {shares} shares")]
    ThresholdAboveShares { threshold: u8, shares: u8 },
    #[error("secret sharing failed: {0}")]
    Vsss(String),
}

/// The public side of one backup generation, signed by the owner: Feldman commitments
/// `g^a_0 .. g^a_{t-1}` (compressed ristretto points) for each half of the seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentSet {
    pub owner: PeerId,
    pub generation: u64,
    pub params: SplitParams,
    pub low: Vec<Bytes32>,
    pub high: Vec<Bytes32>,
}

/// One holder's part of the seed: its index (1..=shares), one scalar per half, and the
/// owner-signed [`CommitmentSet`] it can be checked against. The scalars are wiped on drop.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretShare {
    pub index: u8,
    pub(crate) low: Bytes32,
    pub(crate) high: Bytes32,
    /// An [`Envelope`] by the owner whose data is the encoded [`CommitmentSet`].
    pub commitments: Envelope,
}

impl Drop for SecretShare {
    fn drop(&mut self) {
        self.low.0.zeroize();
        self.high.0.zeroize();
    }
}

impl std::fmt::Debug for SecretShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretShare(#{} of {})", self.index, self.commitments.public_key.short())
    }
}

/// What is wrong with one share, checked alone.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShareFault {
    #[error("commitments are signed by {got}, not by the owner")]
    WrongOwner { got: String },
    #[error("commitments signature: {0}")]
    Signature(Rejection),
    #[error("commitments: {0}")]
    Body(BodyError),
    #[error("commitments are unusable: {0}")]
    BadCommitments(String),
    #[error("index {index} is outside 1..={shares}")]
    IndexOutOfRange { index: u8, shares: u8 },
    #[error("the {half} value is not a canonical scalar")]
    NonCanonical { half: &'static str },
    #[error("the {half} value does not match the owner's commitments (a wrong or altered share)")]
    Mismatch { half: &'static str },
    #[error("a second share with the same index")]
    DuplicateIndex,
    #[error("share of generation {generation}, not the one recovered from")]
    OtherGeneration { generation: u64 },
}

/// A share that was set aside, by index.
pub type Rejected = (u8, ShareFault);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CombineError {
    #[error("no share checks out ({} rejected)", rejected.len())]
    NoValidShares { rejected: Vec<Rejected> },
    #[error("{valid} valid shares of one generation, {needed} needed ({} rejected)", rejected.len())]
    TooFewShares { valid: usize, needed: u8, rejected: Vec<Rejected> },
    #[error("the rebuilt {half} half does not match its commitment (wrong reconstruction)")]
    Inconsistent { half: &'static str },
    #[error("the rebuilt {half} half is not an encoded seed half (wrong reconstruction)")]
    NotASeed { half: &'static str },
    #[error("the rebuilt key is {got}, not the expected {expected}")]
    WrongKey { expected: String, got: String },
}

/// The recovered identity, and which shares served.
#[derive(Debug)]
pub struct Recovered {
    pub identity: Identity,
    pub generation: u64,
    /// Indices of the shares used.
    pub used: Vec<u8>,
    /// Shares set aside, and why.
    pub rejected: Vec<Rejected>,
}

fn encode_half(half: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> Scalar {
    let mut b = Zeroizing::new([0u8; 32]);
    b[..16].copy_from_slice(half);
    rng.fill_bytes(&mut b[16..]);
    b[31] &= PAD_TOP_MASK;
    Option::from(Scalar::from_canonical_bytes(*b)).expect("a value below 2^251 is canonical")
}

fn decode_half(s: &Scalar, half: &'static str) -> Result<Zeroizing<[u8; 16]>, CombineError> {
    let b = Zeroizing::new(s.to_bytes());
    if b[31] & !PAD_TOP_MASK != 0 {
        return Err(CombineError::NotASeed { half });
    }
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&b[..16]);
    Ok(out)
}

fn feldman_split(
    secret: Scalar,
    p: SplitParams,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Vec<VShare>, Vec<Bytes32>), SplitError> {
    let secret = IdentifierPrimeField(WrappedScalar(secret));
    let (shares, verifiers) =
        feldman::split_secret::<VShare, Commitment>(p.threshold.into(), p.shares.into(), &secret, None, &mut *rng)
            .map_err(|e| SplitError::Vsss(e.to_string()))?;
    // verifiers[0] is the generator (the basepoint, which every check rebuilds rather than reads).
    let commitments = verifiers[1..].iter().map(|v| Bytes32(v.0 .0.compress().to_bytes())).collect();
    Ok((shares, commitments))
}

fn scalar_bytes(s: &VShare) -> Bytes32 {
    Bytes32(s.value.0 .0.to_bytes())
}

/// Split `identity`'s seed into `params.shares` shares for backup `generation`, with commitments
/// signed at `now_ms` (Unix ms). Share `i` is for index `i` (1-based).
pub fn split(
    identity: &Identity,
    params: SplitParams,
    generation: u64,
    now_ms: u64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<SecretShare>, SplitError> {
    params.validate()?;
    let seed = identity.secret();
    let (low, low_c) = feldman_split(encode_half(&seed[..16], rng), params, rng)?;
    let (high, high_c) = feldman_split(encode_half(&seed[16..], rng), params, rng)?;
    let set = CommitmentSet { owner: identity.peer_id(), generation, params, low: low_c, high: high_c };
    let commitments = Envelope::seal(identity, encode_body(COMMITMENTS_KIND, &set), now_ms);
    let shares: Vec<SecretShare> = low
        .iter()
        .zip(&high)
        .zip(1..=params.shares)
        .map(|((l, h), index)| {
            debug_assert!(l.identifier == h.identifier && l.identifier.0 .0 == Scalar::from(index));
            SecretShare { index, low: scalar_bytes(l), high: scalar_bytes(h), commitments: commitments.clone() }
        })
        .collect();
    debug_assert_eq!(shares.len(), usize::from(params.shares));
    Ok(shares)
}

/// The owner's commitments in a share, checked: signed by `owner`, well formed.
pub fn open_commitments(commitments: &Envelope, owner: &PeerId) -> Result<CommitmentSet, ShareFault> {
    if commitments.public_key != *owner {
        return Err(ShareFault::WrongOwner { got: commitments.public_key.short() });
    }
    commitments.verify().map_err(ShareFault::Signature)?;
    let set: CommitmentSet = decode_body(COMMITMENTS_KIND, &commitments.data).map_err(ShareFault::Body)?;
    if set.owner != *owner {
        return Err(ShareFault::WrongOwner { got: set.owner.short() });
    }
    set.params.validate().map_err(|e| ShareFault::BadCommitments(e.to_string()))?;
    let t = usize::from(set.params.threshold);
    if set.low.len() != t || set.high.len() != t {
        return Err(ShareFault::BadCommitments(format!(
            "{} and {} commitments for threshold {t}",
            set.low.len(),
            set.high.len()
        )));
    }
    Ok(set)
}

fn points(c: &[Bytes32]) -> Result<Vec<Commitment>, ShareFault> {
    let mut v = vec![ValueGroup(WrappedRistretto(RISTRETTO_BASEPOINT_POINT))];
    for (i, b) in c.iter().enumerate() {
        let p = CompressedRistretto(b.0)
            .decompress()
            .ok_or_else(|| ShareFault::BadCommitments(format!("commitment {i} is not a ristretto point")))?;
        v.push(ValueGroup(WrappedRistretto(p)));
    }
    Ok(v)
}

fn to_vshare(index: u8, value: &Bytes32, half: &'static str) -> Result<VShare, ShareFault> {
    let v: Option<Scalar> = Scalar::from_canonical_bytes(value.0).into();
    let v = v.ok_or(ShareFault::NonCanonical { half })?;
    Ok(DefaultShare {
        identifier: IdentifierPrimeField(WrappedScalar(Scalar::from(index))),
        value: IdentifierPrimeField(WrappedScalar(v)),
    })
}

/// Check one share alone against its owner-signed commitments; the commitments on success.
pub fn verify_share(share: &SecretShare, owner: &PeerId) -> Result<CommitmentSet, ShareFault> {
    let set = open_commitments(&share.commitments, owner)?;
    if share.index == 0 || share.index > set.params.shares {
        return Err(ShareFault::IndexOutOfRange { index: share.index, shares: set.params.shares });
    }
    for (half, value, c) in [("low", &share.low, &set.low), ("high", &share.high, &set.high)] {
        let s = to_vshare(share.index, value, half)?;
        FeldmanVerifierSet::<VShare, Commitment>::verify_share(&points(c)?, &s)
            .map_err(|_| ShareFault::Mismatch { half })?;
    }
    Ok(set)
}

/// Shares checked against one commitment set, one per index.
type Group<'a> = (CommitmentSet, BTreeMap<u8, &'a SecretShare>);

/// Rebuild the identity of `owner` from any `threshold` valid shares of one generation. Every share
/// is checked first and the bad ones are named; the newest generation with enough valid shares is
/// used; the result must have `owner` as its public key.
pub fn combine(owner: &PeerId, shares: &[SecretShare]) -> Result<Recovered, CombineError> {
    let mut rejected = Vec::new();
    // (generation, commitments id) -> the set and its valid shares, one per index.
    let mut groups: BTreeMap<(u64, [u8; 32]), Group> = BTreeMap::new();
    for s in shares {
        match verify_share(s, owner) {
            Err(f) => rejected.push((s.index, f)),
            Ok(set) => {
                let (_, by_index) =
                    groups.entry((set.generation, s.commitments.id())).or_insert((set, BTreeMap::new()));
                if by_index.insert(s.index, s).is_some() {
                    rejected.push((s.index, ShareFault::DuplicateIndex));
                }
            }
        }
    }
    let chosen = groups.iter().rev().find(|(_, (set, by))| by.len() >= usize::from(set.params.threshold));
    let Some((&key, _)) = chosen else {
        let best = groups.values().max_by_key(|(set, by)| (by.len(), set.generation));
        return Err(match best {
            None => CombineError::NoValidShares { rejected },
            Some((set, by)) => CombineError::TooFewShares { valid: by.len(), needed: set.params.threshold, rejected },
        });
    };
    let (set, by_index) = groups.remove(&key).expect("chosen from this map");
    for (_, (other, by)) in groups {
        rejected.extend(by.keys().map(|&i| (i, ShareFault::OtherGeneration { generation: other.generation })));
    }
    let used: Vec<&SecretShare> = by_index.into_values().collect();
    let identity = rebuild(owner, &set, &used)?;
    Ok(Recovered { identity, generation: set.generation, used: used.iter().map(|s| s.index).collect(), rejected })
}

/// Interpolate both halves from `shares` (already checked against `set`) and check the result:
/// each half against its first commitment, the encoding, then the public key. Counts are not
/// checked here, so a test can show that too few shares are caught by these checks as well.
fn rebuild(owner: &PeerId, set: &CommitmentSet, shares: &[&SecretShare]) -> Result<Identity, CombineError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    for (half, c0, range) in [("low", &set.low[0], 0..16), ("high", &set.high[0], 16..32)] {
        let vs: Vec<VShare> = shares
            .iter()
            .map(|s| to_vshare(s.index, if half == "low" { &s.low } else { &s.high }, half))
            .collect::<Result<_, _>>()
            .map_err(|_| CombineError::Inconsistent { half })?;
        let secret = vs.combine().map_err(|_| CombineError::Inconsistent { half })?.0 .0;
        if (RISTRETTO_BASEPOINT_POINT * secret).compress().to_bytes() != c0.0 {
            return Err(CombineError::Inconsistent { half });
        }
        seed[range].copy_from_slice(decode_half(&secret, half)?.as_ref());
    }
    let identity = Identity::from_secret(&seed);
    if identity.peer_id() != *owner {
        return Err(CombineError::WrongKey { expected: user_id(owner), got: identity.user_id() });
    }
    Ok(identity)
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;
