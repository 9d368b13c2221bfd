//! What recovery sends, each record a signed [`Envelope`] whose data is a kind tag and the
//! record's MessagePack encoding (the tag keeps a signature over one kind from passing as another):
//!
//! ```text
//! owner  -> holder     Deposit           the share (and verifier) sealed to the holder
//! holder -> owner      Ack
//! owner  -> holder     Revoke            forget generations below N (holder dropped)
//! new key -> holder    ChallengeRequest  (or ChallengeByUser: the owner named by user id)
//! holder -> new key    Challenge         one-time nonce, salt and KDF cost
//! new key -> holder    ReleaseRequest    passphrase proof over the nonce and the new key
//! holder -> new key    Release | Refusal the share sealed to the new key, or why not
//! owner  -> storer     HolderList        who holds this generation (kept by the peers closest
//!                                        to the user id's list key, see `super::list`)
//! new key -> storer    ListRequest       the list for this user id, please
//! storer -> new key    ListReply         the owner-signed list if held, and closer peers
//! ```

use super::proof::{HolderVerifier, PassphraseParams};
use super::seal::Sealed;
use super::split::SecretShare;
use super::{decode_body, encode_body, BodyError, Bytes32};
use crate::identity::{Envelope, Identity, Rejection};
use crate::types::PeerId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Largest recovery envelope accepted (a deposit is ~1 KB with 5 shares of commitments; guess:
/// headroom for 16).
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// A record that travels signed, with its domain tag.
pub trait Record: Serialize + DeserializeOwned {
    const KIND: &'static [u8];
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("message signature: {0}")]
    Signature(Rejection),
    #[error("{0}")]
    Body(BodyError),
}

/// Sign `body` as `identity`, dated `now_ms` (Unix ms).
pub fn sign<T: Record>(identity: &Identity, body: &T, now_ms: u64) -> Envelope {
    Envelope::seal(identity, encode_body(T::KIND, body), now_ms)
}

/// Check the size and signature of `env` and decode it as a `T`; the signer is `env.public_key`.
pub fn open<T: Record>(env: &Envelope) -> Result<T, MessageError> {
    if env.data.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge { len: env.data.len(), max: MAX_MESSAGE_BYTES });
    }
    env.verify().map_err(MessageError::Signature)?;
    decode_body(T::KIND, &env.data).map_err(MessageError::Body)
}

/// Owner -> holder: keep this share. Signed by the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub holder: PeerId,
    pub generation: u64,
    pub index: u8,
    /// The recipe for K, handed to whoever asks to recover.
    pub passphrase: PassphraseParams,
    /// A [`DepositSecret`] sealed to `holder` under [`deposit_context`].
    pub sealed: Sealed,
}

impl Record for Deposit {
    const KIND: &'static [u8] = b"swarm-recovery-deposit-v1";
}

/// The sealed part of a deposit: the share, and the holder's passphrase verifier (sealed too:
/// whoever knows it can make proofs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepositSecret {
    pub share: SecretShare,
    pub verifier: HolderVerifier,
}

/// What a deposit's seal is bound to.
pub fn deposit_context(owner: &PeerId, holder: &PeerId, generation: u64, index: u8) -> Vec<u8> {
    context(b"deposit", &[owner, holder], generation, index)
}

/// What a release's seal is bound to.
pub fn release_context(owner: &PeerId, holder: &PeerId, requester: &PeerId, generation: u64, index: u8) -> Vec<u8> {
    context(b"release", &[owner, holder, requester], generation, index)
}

fn context(what: &[u8], peers: &[&PeerId], generation: u64, index: u8) -> Vec<u8> {
    let mut c = b"swarm-recovery-".to_vec();
    c.extend_from_slice(what);
    for p in peers {
        c.extend_from_slice(&p.0);
    }
    c.extend_from_slice(&generation.to_le_bytes());
    c.push(index);
    c
}

/// Holder -> owner: the deposit is stored. Signed by the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub owner: PeerId,
    pub generation: u64,
    pub index: u8,
    /// The acknowledged deposit envelope's id.
    pub deposit: Bytes32,
}

impl Record for Ack {
    const KIND: &'static [u8] = b"swarm-recovery-ack-v1";
}

/// Owner -> holder: forget any share of a generation below `below_generation`. Signed by the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    pub holder: PeerId,
    pub below_generation: u64,
}

impl Record for Revoke {
    const KIND: &'static [u8] = b"swarm-recovery-revoke-v1";
}

/// New key -> holder: I want to recover `owner`. Signed by the new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRequest {
    pub owner: PeerId,
    pub holder: PeerId,
}

impl Record for ChallengeRequest {
    const KIND: &'static [u8] = b"swarm-recovery-challenge-request-v1";
}

/// New key -> holder: I want to recover the owner whose user id is `user_id` (the user knows
/// it; the peer id is 64 hex characters nobody remembers). Answered like a [`ChallengeRequest`]
/// for that owner: the [`Challenge`] names the owner's key, which the requester checks against
/// the user id. Signed by the new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeByUser {
    pub user_id: String,
    pub holder: PeerId,
}

impl Record for ChallengeByUser {
    const KIND: &'static [u8] = b"swarm-recovery-challenge-by-user-v1";
}

/// Longest user id a [`ChallengeByUser`] may carry (ours are 16 hex characters).
pub const MAX_USER_ID_CHARS: usize = 64;

/// The owner a recovery names: its key, or its user id (a prefix of the key's hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerRef {
    Peer(PeerId),
    User(String),
}

impl OwnerRef {
    pub fn matches(&self, owner: &PeerId) -> bool {
        match self {
            OwnerRef::Peer(p) => p == owner,
            OwnerRef::User(u) => crate::identity::user_id(owner) == *u,
        }
    }
}

/// The kinds of record, as their tags name them (what a receiver dispatches on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Deposit,
    Ack,
    Revoke,
    ChallengeRequest,
    ChallengeByUser,
    Challenge,
    ReleaseRequest,
    Release,
    Refusal,
    HolderList,
    ListRequest,
    ListReply,
}

/// Which record `env` claims to be (by its tag: the signature is checked when it is opened).
pub fn kind_of(env: &Envelope) -> Option<Kind> {
    let d = env.data.as_slice();
    // Longest tags first: one tag may be a prefix of another.
    let mut tags: [(&[u8], Kind); 12] = [
        (Deposit::KIND, Kind::Deposit),
        (Ack::KIND, Kind::Ack),
        (Revoke::KIND, Kind::Revoke),
        (ChallengeRequest::KIND, Kind::ChallengeRequest),
        (ChallengeByUser::KIND, Kind::ChallengeByUser),
        (Challenge::KIND, Kind::Challenge),
        (ReleaseRequest::KIND, Kind::ReleaseRequest),
        (Release::KIND, Kind::Release),
        (Refusal::KIND, Kind::Refusal),
        (HolderList::KIND, Kind::HolderList),
        (ListRequest::KIND, Kind::ListRequest),
        (ListReply::KIND, Kind::ListReply),
    ];
    tags.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    tags.iter().find(|(t, _)| d.starts_with(t)).map(|(_, k)| *k)
}

/// Holder -> new key: prove the passphrase over this nonce before `expires_at_ms`. Signed by the
/// holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub owner: PeerId,
    pub requester: PeerId,
    pub nonce: Bytes32,
    pub expires_at_ms: u64,
    pub passphrase: PassphraseParams,
}

impl Record for Challenge {
    const KIND: &'static [u8] = b"swarm-recovery-challenge-v1";
}

/// New key -> holder: the proof. Signed by the new key, which is the proof's requester and the
/// envelope's timestamp its time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRequest {
    pub owner: PeerId,
    pub holder: PeerId,
    pub nonce: Bytes32,
    pub proof: Bytes32,
}

impl Record for ReleaseRequest {
    const KIND: &'static [u8] = b"swarm-recovery-release-request-v1";
}

/// Holder -> new key: the share, sealed to the new key under [`release_context`]. Signed by the
/// holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub owner: PeerId,
    pub requester: PeerId,
    pub generation: u64,
    pub index: u8,
    pub sealed: Sealed,
}

impl Record for Release {
    const KIND: &'static [u8] = b"swarm-recovery-release-v1";
}

/// Why a holder said no.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RefusalReason {
    #[error("no share held for this owner")]
    NoShare,
    #[error("no live challenge for this requester (expired, spent or never issued)")]
    NoChallenge,
    #[error("wrong passphrase proof ({attempts_left} attempts left in this window)")]
    WrongProof { attempts_left: u32 },
    #[error("too many attempts: locked until {until_ms}")]
    Locked { until_ms: u64 },
    #[error("the holder keeps no more shares")]
    Full,
    #[error("a newer generation is already held")]
    OlderGeneration,
}

/// Holder -> sender: no. Signed by the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub owner: PeerId,
    pub to: PeerId,
    pub reason: RefusalReason,
}

impl Record for Refusal {
    const KIND: &'static [u8] = b"swarm-recovery-refusal-v1";
}

/// Owner -> the peers closest to its list key: the holders of backup `generation`, in share-index
/// order, so a new device can find them from the user id alone. Signed by the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolderList {
    pub owner: PeerId,
    pub generation: u64,
    pub threshold: u8,
    pub holders: Vec<PeerId>,
}

impl Record for HolderList {
    const KIND: &'static [u8] = b"swarm-recovery-holder-list-v1";
}

/// New key -> a peer near the list key: the holder list of `user_id`, if you keep it. Signed by
/// the new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {
    pub user_id: String,
    pub storer: PeerId,
    /// Which of the list's keys the asker looks toward ([`super::list::list_key`]); absent in
    /// requests of nodes that knew one key only (region 0).
    #[serde(default)]
    pub region: u8,
}

impl Record for ListRequest {
    const KIND: &'static [u8] = b"swarm-recovery-list-request-v1";
}

/// Peers a [`ListReply`] names as closer to the list key, at most.
pub const MAX_LIST_CLOSER: usize = 8;

/// Peer -> new key: the owner-signed [`HolderList`] it keeps for `user_id` (if any), and the peers
/// it knows closest to the list key (to ask next). Signed by the answering peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListReply {
    pub user_id: String,
    pub to: PeerId,
    pub list: Option<Envelope>,
    pub closer: Vec<PeerId>,
    /// The region of the request answered (`closer` is toward its key).
    #[serde(default)]
    pub region: u8,
}

impl Record for ListReply {
    const KIND: &'static [u8] = b"swarm-recovery-list-reply-v1";
}
