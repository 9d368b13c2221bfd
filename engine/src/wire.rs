//! The wire format: one MessagePack (rmp-serde) encoded [`Frame`] per transport message, carrying the
//! protocol version. Untrusted bytes are checked against [`MAX_FRAME_BYTES`] before any decoding, and
//! decoded lists are checked against their own limits after, so a peer can neither crash a node nor
//! make it hold more than one frame's worth of data.

use crate::content::{ChunkId, MAX_CHUNK_BYTES, TAG_BYTES};
use crate::identity::{Envelope, Identity};
use crate::routing::Key;
use crate::types::PeerId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

pub const PROTOCOL_VERSION: u8 = 1;
/// Hard limit of one frame, checked before decoding.
pub const MAX_FRAME_BYTES: usize = 1 << 20;
/// Most peers one PEX response may carry on the wire (whatever a sender's config says).
pub const MAX_PEX_PEERS: usize = 256;
/// Most rumours one gossip frame may carry.
pub const MAX_RUMORS: usize = 64;
/// Most peers one rumour may carry.
pub const MAX_RUMOR_PEERS: usize = 64;
/// Warnings one rumour carries at most.
pub const MAX_RUMOR_WARNINGS: usize = 32;
/// Largest signed rumour body (64 peers fit in well under half of it).
pub const MAX_RUMOR_BODY_BYTES: usize = 4096;
/// Length of an authentication challenge.
pub const NONCE_BYTES: usize = 32;
/// Length of an ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;
/// Most chunk ids one holdings announcement carries (larger inventories take several frames).
pub const MAX_HOLDINGS: usize = 4096;
/// Most peers one lookup answer carries.
pub const MAX_NODES: usize = 32;
/// Most hops a routed request takes (and so the longest path it carries).
pub const MAX_ROUTE_HOPS: usize = 16;
/// Most relays a lookup message passes through (`Relay`: a lookup reaches peers up to this many
/// links beyond the ones it asked directly, which takes an overlay of a few thousand nodes).
pub const MAX_RELAYS: usize = 3;
/// Most records one sync digest, have or want message names.
pub const MAX_SYNC_RECORDS: usize = 4096;
/// Most version ids one sync message carries (over all its records).
pub const MAX_SYNC_IDS: usize = 16_384;
/// Most versions one sync message carries.
pub const MAX_SYNC_VERSIONS: usize = 256;
/// Largest chunk payload on the wire: a full chunk with its AES-GCM tag.
pub const MAX_CHUNK_WIRE_BYTES: usize = MAX_CHUNK_BYTES + TAG_BYTES;

/// One transport message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Frame {
    pub version: u8,
    pub msg: Message,
}

/// Every protocol message between peers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// Discovery: "send me up to `max` peers you know".
    PexRequest { max: u16 },
    /// Discovery: answer to a PEX request.
    PexResponse { peers: Vec<PeerId> },
    /// Gossip: a batch of rumours (own announcement and relays).
    Gossip { rumors: Rumors },
    /// Health: liveness beacon, one per heartbeat interval per connection.
    Heartbeat { seq: u64 },
    /// The sender is closing this link on purpose (the last frame on it): not a failure, so
    /// nobody tries to reconnect.
    Bye,
    /// The sender protects this link (or no longer does): a link either side protects is never
    /// trimmed, so neither end closes what the other would only dial again.
    Keep { keep: bool },
    /// Authentication, first frame on every link: a fresh challenge for the peer to sign.
    Hello {
        #[serde(with = "crate::serde_bytes")]
        nonce: Vec<u8>,
    },
    /// Authentication: the signature over the peer's challenge (see `auth`).
    Proof {
        #[serde(with = "crate::serde_bytes")]
        signature: Vec<u8>,
    },
    /// Replication: chunks the sender holds now and no longer holds (changes, or everything
    /// when a link comes up), and whether it has room for more.
    Holdings { held: Vec<ChunkId>, released: Vec<ChunkId>, full: bool },
    /// Replication: "you belong to the replica set of this chunk, which I hold".
    Offer { chunk: ChunkId },
    /// Content: "send me this chunk".
    GetChunk { chunk: ChunkId },
    /// Content: "get this chunk from `from` (a peer you are linked to) for me"; answered with
    /// `ChunkData` or `NoChunk` like `GetChunk`. Spares the asker a dial to a busy holder.
    GetVia { from: PeerId, chunk: ChunkId },
    /// Content: a chunk, checked by the receiver against its address.
    ChunkData {
        chunk: ChunkId,
        #[serde(with = "crate::serde_bytes")]
        data: Vec<u8>,
    },
    /// Content: the sender does not hold the chunk asked for.
    NoChunk { chunk: ChunkId },
    /// Routing: a lookup question or answer, to a linked peer.
    Lookup(LookupMsg),
    /// Routing: a message passed along a chain of links (a lookup reaching a peer through the
    /// ones that told of it, and its answer coming back; see [`Relayed`]). `ahead`: the peers still to go, the
    /// destination last, each linked to the one before; `behind`: the relays passed so far, the
    /// origin first, the sender not included. A receiver with `ahead` empty is the destination:
    /// the message is from `behind[0]` (or the sender, with no relay), and the answer goes back
    /// along `behind` reversed. The two together never name more than [`MAX_RELAYS`] peers.
    Relay { ahead: Vec<PeerId>, behind: Vec<PeerId>, msg: Relayed },
    /// Content routing: "find `chunk` for `path[0]`". Passed hop by hop over links, each hop to
    /// the link closest to the chunk (or to a linked holder), until a holder answers; `path` is
    /// every hop so far, origin first, the sender last. Answered by `RouteBack`.
    Route { id: u64, chunk: ChunkId, path: Vec<PeerId> },
    /// The answer to a `Route`, travelling back along its path: `path` holds the hops still to
    /// go, the receiver last (it pops itself and passes the answer on; the origin, popping the
    /// last, takes it). With `found`, `data` is the chunk (checked against its id at every hop);
    /// without, the route ended with no holder (and `data` is empty). `hops`: the peers the
    /// request passed through before the one that answered.
    RouteBack {
        id: u64,
        chunk: ChunkId,
        path: Vec<PeerId>,
        hops: u8,
        found: bool,
        #[serde(with = "crate::serde_bytes")]
        data: Vec<u8>,
    },
    /// Recovery: one signed record (deposit, ack, revoke, challenge request, challenge, release
    /// request, release or refusal; its kind is the tag its signed data starts with). See
    /// `recovery::messages`.
    Recovery(Envelope),
    /// Sync: anti-entropy between a record's replicas, and a sync queue's writes and their
    /// acknowledgements. See `sync::replica`.
    Sync(crate::sync::SyncMessage),
    /// Feeds: signed announcements of new posts and files, and a follower's question for the
    /// latest ones of the owners it follows. See `feeds::entry`.
    Feed(crate::feeds::FeedMessage),
    /// Health: "are you there?", sent to a peer that left a question unanswered. Answered at
    /// once with a `Heartbeat` of the same `seq` (any frame back counts as alive).
    Probe { seq: u64 },
}

/// What a `Relay` carries: a lookup message, or a sync reconciliation message (a reader's
/// exchange with a record's replicas when no link reaches them). Writes and acknowledgements
/// never travel through relays: a relay could forge the acknowledgement of a write it dropped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Relayed {
    Lookup(LookupMsg),
    Sync(crate::sync::SyncMessage),
}

impl Message {
    /// The `Relay` frame that takes `msg` to `to` along `route` (the relays, the first linked to
    /// us, the last linked to `to`; empty when `to` is linked), and the peer to send it to.
    pub fn relay(route: &[PeerId], to: PeerId, msg: Relayed) -> (PeerId, Message) {
        let Some((&first, rest)) = route.split_first() else {
            return (to, Message::Relay { ahead: Vec::new(), behind: Vec::new(), msg });
        };
        let mut ahead = rest.to_vec();
        ahead.push(to);
        (first, Message::Relay { ahead, behind: Vec::new(), msg })
    }
}

/// Peer -> the relays that reach it from this node (the first linked to us, the last linked to
/// the peer), as lookups learn them: the `ahead` of a `Relay` to it, less the peer itself.
pub type RelayRoutes = std::collections::BTreeMap<PeerId, Vec<PeerId>>;

/// The two messages of an iterative lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LookupMsg {
    /// "Which peers do you know closest to `target`?"
    FindNode {
        query: u64,
        #[serde(with = "crate::serde_bytes::array32")]
        target: [u8; 32],
    },
    /// The answer: the closest peers among the answerer and its links, each with what the
    /// answerer knows of it (whether it is full, whether it holds the chunk `target` names).
    Nodes { query: u64, peers: Vec<NodeInfo> },
}

impl LookupMsg {
    pub fn find(query: u64, target: Key) -> Self {
        LookupMsg::FindNode { query, target: target.0 }
    }
}

/// One peer in a lookup answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub peer: PeerId,
    pub full: bool,
    pub holds: bool,
    /// From the answerer's routing table, not one of its links: dial it (no relay through the
    /// answerer). Named only where the answerer's links leave the target's region uncovered.
    #[serde(default)]
    pub contact: bool,
}

/// A peer announcement travelling the overlay: a signed [`Envelope`] (the origin's key, a
/// timestamp, and a [`RumorBody`] as its data) plus the hop budget `ttl`, which relays lower and
/// which is therefore outside the signature. Identified by (origin, seq), de-duplicated by every
/// receiver, relayed while `ttl` > 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rumor {
    pub ttl: u8,
    pub envelope: Envelope,
}

/// The rumours of one gossip frame, behind one shared pointer: a frame decoded once can be handed
/// to every receiver of a broadcast without copying it ([`crate::router::FrameMemo`]), and a
/// message clone (encoding clones it) copies no rumour. Their signed bodies are decoded once for
/// all the holders too ([`Rumors::body`]): nothing can change a rumour behind the shared pointer,
/// so a decode made by one holder is the one every other would make. On the wire, a list as a
/// `Vec` is.
#[derive(Clone, Debug)]
pub struct Rumors {
    rumors: Arc<[Rumor]>,
    bodies: Arc<[OnceLock<Result<RumorBody, WireError>>]>,
}

impl Rumors {
    /// What `self[i].body()` gives, decoded at the first asking by any holder. Panics if `i` is
    /// out of range, as `self[i]` does.
    pub fn body(&self, i: usize) -> Result<&RumorBody, &WireError> {
        self.bodies[i].get_or_init(|| self.rumors[i].body()).as_ref()
    }
}

impl PartialEq for Rumors {
    fn eq(&self, other: &Self) -> bool {
        self.rumors == other.rumors
    }
}

impl Eq for Rumors {}

impl Default for Rumors {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl std::ops::Deref for Rumors {
    type Target = [Rumor];
    fn deref(&self) -> &[Rumor] {
        &self.rumors
    }
}

impl From<Vec<Rumor>> for Rumors {
    fn from(v: Vec<Rumor>) -> Self {
        let bodies = v.iter().map(|_| OnceLock::new()).collect();
        Rumors { rumors: v.into(), bodies }
    }
}

impl Serialize for Rumors {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.rumors.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Rumors {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Rumor>::deserialize(d).map(Rumors::from)
    }
}

/// What the origin of a rumour signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RumorBody {
    pub seq: u64,
    pub peers: Vec<PeerId>,
    /// Peers the origin graylisted on its own evidence (see `reputation`): others take this as
    /// hearsay, never as a verdict. Absent in rumours of nodes before it (decodes as empty).
    #[serde(default)]
    pub warnings: Vec<PeerId>,
}

impl Rumor {
    pub fn seal(identity: &Identity, body: &RumorBody, ttl: u8, unix_ms: u64) -> Result<Rumor, WireError> {
        let data = rmp_serde::to_vec(body).map_err(|e| WireError::Encode(e.to_string()))?;
        Ok(Rumor { ttl, envelope: Envelope::seal(identity, data, unix_ms) })
    }

    /// The origin's key, as the envelope claims it (verified separately).
    pub fn origin(&self) -> PeerId {
        self.envelope.public_key
    }

    /// Decode the signed body, with its own limit.
    pub fn body(&self) -> Result<RumorBody, WireError> {
        let body: RumorBody = rmp_serde::from_slice(&self.envelope.data)
            .map_err(|e| WireError::Malformed(format!("rumour body: {e}")))?;
        limit("rumor", body.peers.len(), MAX_RUMOR_PEERS)?;
        limit("rumor warnings", body.warnings.len(), MAX_RUMOR_WARNINGS)?;
        Ok(body)
    }
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("empty frame")]
    Empty,
    #[error("protocol version {got} not supported (this node speaks {supported})")]
    Version { got: u8, supported: u8 },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("{what} has {len} entries, limit {max}")]
    Limit { what: &'static str, len: usize, max: usize },
    #[error("could not encode frame: {0}")]
    Encode(String),
}

/// Encode a message into one frame.
pub fn encode(msg: &Message) -> Result<Bytes, WireError> {
    let frame = Frame { version: PROTOCOL_VERSION, msg: msg.clone() };
    let bytes = rmp_serde::to_vec(&frame).map_err(|e| WireError::Encode(e.to_string()))?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge { len: bytes.len(), max: MAX_FRAME_BYTES });
    }
    Ok(Bytes::from(bytes))
}

/// Decode untrusted bytes: size first, then version, then the message and its list limits.
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge { len: bytes.len(), max: MAX_FRAME_BYTES });
    }
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    let frame: Frame = match rmp_serde::from_slice(bytes) {
        Ok(f) => f,
        Err(e) => {
            // A frame from another protocol version may not decode at all: say so when we can.
            if let Ok((got, _)) = rmp_serde::from_slice::<(u8, serde::de::IgnoredAny)>(bytes) {
                if got != PROTOCOL_VERSION {
                    return Err(WireError::Version { got, supported: PROTOCOL_VERSION });
                }
            }
            return Err(WireError::Malformed(e.to_string()));
        }
    };
    if frame.version != PROTOCOL_VERSION {
        return Err(WireError::Version { got: frame.version, supported: PROTOCOL_VERSION });
    }
    check_limits(&frame.msg)?;
    Ok(frame.msg)
}

fn limit(what: &'static str, len: usize, max: usize) -> Result<(), WireError> {
    if len > max {
        Err(WireError::Limit { what, len, max })
    } else {
        Ok(())
    }
}

fn check_limits(msg: &Message) -> Result<(), WireError> {
    match msg {
        Message::PexResponse { peers } => limit("pex response", peers.len(), MAX_PEX_PEERS),
        Message::Gossip { rumors } => {
            limit("gossip frame", rumors.len(), MAX_RUMORS)?;
            rumors.iter().try_for_each(|r| {
                limit("rumor body", r.envelope.data.len(), MAX_RUMOR_BODY_BYTES)?;
                limit("rumor signature", r.envelope.signature.len(), SIGNATURE_BYTES)
            })
        }
        Message::Hello { nonce } => limit("hello nonce", nonce.len(), NONCE_BYTES),
        Message::Proof { signature } => limit("proof signature", signature.len(), SIGNATURE_BYTES),
        Message::Holdings { held, released, .. } => {
            limit("holdings", held.len(), MAX_HOLDINGS)?;
            limit("holdings released", released.len(), MAX_HOLDINGS)
        }
        Message::ChunkData { data, .. } => limit("chunk bytes", data.len(), MAX_CHUNK_WIRE_BYTES),
        Message::Route { path, .. } => limit("route path", path.len(), MAX_ROUTE_HOPS),
        Message::RouteBack { path, data, .. } => {
            limit("route path", path.len(), MAX_ROUTE_HOPS)?;
            limit("chunk bytes", data.len(), MAX_CHUNK_WIRE_BYTES)
        }
        Message::Lookup(m) => check_lookup(m),
        Message::Relay { ahead, behind, msg } => {
            limit("relay path", ahead.len() + behind.len(), MAX_RELAYS)?;
            match msg {
                Relayed::Lookup(m) => check_lookup(m),
                Relayed::Sync(m) => check_sync(m),
            }
        }
        Message::Recovery(env) => {
            limit("recovery record", env.data.len(), crate::recovery::messages::MAX_MESSAGE_BYTES)?;
            limit("recovery signature", env.signature.len(), SIGNATURE_BYTES)
        }
        Message::Sync(m) => check_sync(m),
        Message::Feed(m) => check_feed(m),
        Message::PexRequest { .. }
        | Message::Heartbeat { .. }
        | Message::Probe { .. }
        | Message::Bye
        | Message::Keep { .. }
        | Message::Offer { .. }
        | Message::GetChunk { .. }
        | Message::GetVia { .. }
        | Message::NoChunk { .. } => Ok(()),
    }
}

fn check_lookup(m: &LookupMsg) -> Result<(), WireError> {
    match m {
        LookupMsg::Nodes { peers, .. } => limit("lookup answer", peers.len(), MAX_NODES),
        LookupMsg::FindNode { .. } => Ok(()),
    }
}

fn check_sync(m: &crate::sync::SyncMessage) -> Result<(), WireError> {
    use crate::sync::SyncMessage as S;
    match m {
        S::Digest { records } => limit("sync digest", records.len(), MAX_SYNC_RECORDS),
        S::Have { records } | S::Want { records } | S::Ask { records } => {
            limit("sync records", records.len(), MAX_SYNC_RECORDS)?;
            limit("sync ids", records.iter().map(|(_, ids)| ids.len()).sum(), MAX_SYNC_IDS)
        }
        S::Versions { envelopes } | S::Push { envelopes } => check_versions(envelopes),
        S::Ack { ids } => limit("sync ids", ids.len(), MAX_SYNC_IDS),
        S::Answer { records, envelopes } => {
            limit("sync records", records.len(), MAX_SYNC_RECORDS)?;
            check_versions(envelopes)
        }
    }
}

fn check_versions(envelopes: &[Envelope]) -> Result<(), WireError> {
    limit("sync versions", envelopes.len(), MAX_SYNC_VERSIONS)?;
    envelopes.iter().try_for_each(|e| limit("sync signature", e.signature.len(), SIGNATURE_BYTES))
}

fn check_feed(m: &crate::feeds::FeedMessage) -> Result<(), WireError> {
    use crate::feeds::entry::{FeedMessage as F, MAX_ANNOUNCE_BYTES, MAX_ASK_OWNERS, MAX_FEED_ITEMS};
    match m {
        F::Announce { items, .. } => {
            limit("feed announcements", items.len(), MAX_FEED_ITEMS)?;
            items.iter().try_for_each(|e| {
                limit("feed announcement", e.data.len(), MAX_ANNOUNCE_BYTES)?;
                limit("feed signature", e.signature.len(), SIGNATURE_BYTES)
            })
        }
        F::Ask { owners } => limit("feed ask", owners.len(), MAX_ASK_OWNERS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer() -> impl Strategy<Value = PeerId> {
        any::<[u8; 32]>().prop_map(PeerId)
    }

    fn chunk() -> impl Strategy<Value = ChunkId> {
        any::<[u8; 32]>().prop_map(ChunkId)
    }

    fn lookup_msg() -> impl Strategy<Value = LookupMsg> {
        let info = (peer(), any::<bool>(), any::<bool>(), any::<bool>())
            .prop_map(|(peer, full, holds, contact)| NodeInfo { peer, full, holds, contact });
        prop_oneof![
            (any::<u64>(), any::<[u8; 32]>()).prop_map(|(query, target)| LookupMsg::FindNode { query, target }),
            (any::<u64>(), prop::collection::vec(info, 0..MAX_NODES))
                .prop_map(|(query, peers)| LookupMsg::Nodes { query, peers }),
        ]
    }

    fn rumor() -> impl Strategy<Value = Rumor> {
        (any::<[u8; 32]>(), any::<u64>(), any::<u8>(), prop::collection::vec(peer(), 0..MAX_RUMOR_PEERS), any::<u64>())
            .prop_map(|(secret, seq, ttl, peers, ts)| {
                Rumor::seal(&Identity::from_secret(&secret), &RumorBody { seq, peers, warnings: vec![] }, ttl, ts)
                    .unwrap()
            })
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            any::<u16>().prop_map(|max| Message::PexRequest { max }),
            prop::collection::vec(peer(), 0..MAX_PEX_PEERS).prop_map(|peers| Message::PexResponse { peers }),
            prop::collection::vec(rumor(), 0..8).prop_map(|rumors| Message::Gossip { rumors: rumors.into() }),
            any::<u64>().prop_map(|seq| Message::Heartbeat { seq }),
            any::<u64>().prop_map(|seq| Message::Probe { seq }),
            Just(Message::Bye),
            any::<bool>().prop_map(|keep| Message::Keep { keep }),
            prop::collection::vec(any::<u8>(), 0..=NONCE_BYTES).prop_map(|nonce| Message::Hello { nonce }),
            prop::collection::vec(any::<u8>(), 0..=SIGNATURE_BYTES).prop_map(|signature| Message::Proof { signature }),
            (prop::collection::vec(chunk(), 0..64), prop::collection::vec(chunk(), 0..64), any::<bool>())
                .prop_map(|(held, released, full)| Message::Holdings { held, released, full }),
            chunk().prop_map(|chunk| Message::Offer { chunk }),
            chunk().prop_map(|chunk| Message::GetChunk { chunk }),
            (peer(), chunk()).prop_map(|(from, chunk)| Message::GetVia { from, chunk }),
            chunk().prop_map(|chunk| Message::NoChunk { chunk }),
            (chunk(), prop::collection::vec(any::<u8>(), 0..2048))
                .prop_map(|(chunk, data)| Message::ChunkData { chunk, data }),
            lookup_msg().prop_map(Message::Lookup),
            (any::<[u8; 32]>(), prop::collection::vec(any::<u8>(), 0..512), any::<u64>()).prop_map(
                |(secret, data, ts)| Message::Recovery(Envelope::seal(&Identity::from_secret(&secret), data, ts))
            ),
            (prop::collection::vec(peer(), 0..=2), prop::collection::vec(peer(), 0..=1), lookup_msg())
                .prop_map(|(ahead, behind, msg)| Message::Relay { ahead, behind, msg: Relayed::Lookup(msg) }),
            (any::<u64>(), chunk(), prop::collection::vec(peer(), 0..MAX_ROUTE_HOPS))
                .prop_map(|(id, chunk, path)| Message::Route { id, chunk, path }),
            (
                any::<u64>(),
                chunk(),
                prop::collection::vec(peer(), 0..MAX_ROUTE_HOPS),
                (any::<u8>(), any::<bool>()),
                prop::collection::vec(any::<u8>(), 0..2048),
            )
                .prop_map(|(id, chunk, path, (hops, found), data)| Message::RouteBack {
                    id,
                    chunk,
                    path,
                    hops,
                    found,
                    data
                }),
            sync_msg().prop_map(Message::Sync),
            feed_msg().prop_map(Message::Feed),
        ]
    }

    fn feed_msg() -> impl Strategy<Value = crate::feeds::FeedMessage> {
        use crate::feeds::FeedMessage as F;
        let env = (any::<[u8; 32]>(), prop::collection::vec(any::<u8>(), 0..512), any::<u64>())
            .prop_map(|(secret, data, ts)| Envelope::seal(&Identity::from_secret(&secret), data, ts));
        prop_oneof![
            (any::<u8>(), prop::collection::vec(env, 0..4)).prop_map(|(hops, items)| F::Announce { hops, items }),
            prop::collection::vec(peer(), 0..8).prop_map(|owners| F::Ask { owners }),
        ]
    }

    fn sync_msg() -> impl Strategy<Value = crate::sync::SyncMessage> {
        use crate::sync::replica::Digest32;
        use crate::sync::{RecordId, SyncMessage as S, VersionId};
        let record = || (peer(), "[a-z/]{1,24}").prop_map(|(owner, key)| RecordId::new(owner, key));
        let id = || any::<[u8; 32]>().prop_map(VersionId);
        let lists = || prop::collection::vec((record(), prop::collection::vec(id(), 0..4)), 0..8);
        let env = (any::<[u8; 32]>(), prop::collection::vec(any::<u8>(), 0..256), any::<u64>())
            .prop_map(|(secret, data, ts)| Envelope::seal(&Identity::from_secret(&secret), data, ts));
        prop_oneof![
            prop::collection::vec((record(), any::<[u8; 32]>().prop_map(Digest32)), 0..8)
                .prop_map(|records| S::Digest { records }),
            lists().prop_map(|records| S::Have { records }),
            lists().prop_map(|records| S::Want { records }),
            prop::collection::vec(env.clone(), 0..4).prop_map(|envelopes| S::Versions { envelopes }),
            prop::collection::vec(env.clone(), 0..4).prop_map(|envelopes| S::Push { envelopes }),
            prop::collection::vec(id(), 0..16).prop_map(|ids| S::Ack { ids }),
            lists().prop_map(|records| S::Ask { records }),
            (
                prop::collection::vec((record(), any::<[u8; 32]>().prop_map(Digest32)), 0..4),
                prop::collection::vec(env, 0..4)
            )
                .prop_map(|(records, envelopes)| S::Answer { records, envelopes }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip(msg in message()) {
            let bytes = encode(&msg).unwrap();
            prop_assert!(bytes.len() <= MAX_FRAME_BYTES);
            prop_assert_eq!(decode(&bytes).unwrap(), msg);
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn truncated_frames_are_rejected(msg in message(), cut in 1usize..64) {
            let bytes = encode(&msg).unwrap();
            let keep = bytes.len().saturating_sub(cut);
            prop_assert!(decode(&bytes[..keep]).is_err());
        }

        #[test]
        fn flipped_bytes_never_panic(msg in message(), pos in any::<usize>(), val in any::<u8>()) {
            let mut bytes = encode(&msg).unwrap().to_vec();
            let i = pos % bytes.len();
            bytes[i] = val;
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn rumour_body_round_trips_and_its_limit_holds() {
        let id = Identity::from_secret(&[3; 32]);
        let body = RumorBody { seq: 9, peers: vec![PeerId([1; 32]); MAX_RUMOR_PEERS], warnings: vec![] };
        let r = Rumor::seal(&id, &body, 3, 1_000).unwrap();
        assert!(r.envelope.data.len() <= MAX_RUMOR_BODY_BYTES);
        assert_eq!(r.body().unwrap(), body);
        assert_eq!(r.origin(), id.peer_id());
        let over = Rumor::seal(
            &id,
            &RumorBody { seq: 9, peers: vec![PeerId([1; 32]); MAX_RUMOR_PEERS + 1], warnings: vec![] },
            3,
            0,
        );
        assert!(matches!(over.unwrap().body(), Err(WireError::Limit { what: "rumor", .. })));
    }

    #[test]
    fn shared_rumours_decode_each_body_once_for_all_holders() {
        let id = Identity::from_secret(&[3; 32]);
        let body = RumorBody { seq: 4, peers: vec![PeerId([5; 32])], warnings: Vec::new() };
        let good = Rumor::seal(&id, &body, 3, 1_000).unwrap();
        let mut bad = good.clone();
        bad.envelope.data = vec![0xc1];
        let rumors = Rumors::from(vec![good.clone(), bad.clone()]);
        let holder = rumors.clone();
        assert_eq!(rumors.body(0), good.body().as_ref());
        assert_eq!(rumors.body(1), bad.body().as_ref());
        assert!(rumors.body(1).is_err());
        // The other holder gets the very decode the first made.
        assert!(std::ptr::eq(holder.body(0).unwrap(), rumors.body(0).unwrap()));
        // Bodies decoded or not, the rumours are what they compare and encode as.
        assert_eq!(holder, Rumors::from(vec![good.clone(), bad.clone()]));
        assert_eq!(rmp_serde::to_vec(&holder).unwrap(), rmp_serde::to_vec(&vec![good, bad]).unwrap());
    }

    #[test]
    fn oversized_frame_rejected_before_decoding() {
        let bytes = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(decode(&bytes), Err(WireError::TooLarge { len: MAX_FRAME_BYTES + 1, max: MAX_FRAME_BYTES }));
    }

    #[test]
    fn other_version_is_named() {
        let frame = Frame { version: 9, msg: Message::Heartbeat { seq: 1 } };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert_eq!(decode(&bytes), Err(WireError::Version { got: 9, supported: PROTOCOL_VERSION }));
    }

    #[test]
    fn list_limits_enforced_after_decoding() {
        let peers = vec![PeerId([7; 32]); MAX_PEX_PEERS + 1];
        let frame = Frame { version: PROTOCOL_VERSION, msg: Message::PexResponse { peers } };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Limit { what: "pex response", .. })));
    }

    #[test]
    fn chunk_payload_and_holdings_limits_hold() {
        let data = vec![0u8; MAX_CHUNK_WIRE_BYTES + 1];
        let frame = Frame { version: PROTOCOL_VERSION, msg: Message::ChunkData { chunk: ChunkId([1; 32]), data } };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Limit { what: "chunk bytes", .. })));
        let full = Message::ChunkData { chunk: ChunkId([1; 32]), data: vec![7; MAX_CHUNK_WIRE_BYTES] };
        assert_eq!(decode(&encode(&full).unwrap()).unwrap(), full);
        let held = vec![ChunkId([2; 32]); MAX_HOLDINGS + 1];
        let frame = Frame { version: PROTOCOL_VERSION, msg: Message::Holdings { held, released: vec![], full: false } };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Limit { what: "holdings", .. })));
        let most = Message::Holdings { held: vec![ChunkId([2; 32]); MAX_HOLDINGS], released: vec![], full: true };
        assert!(encode(&most).is_ok(), "a full holdings frame fits the frame limit");
    }

    #[test]
    fn sync_limits_hold() {
        use crate::sync::{SyncMessage, VersionId};
        let ids = vec![VersionId([3; 32]); MAX_SYNC_IDS + 1];
        let frame = Frame { version: PROTOCOL_VERSION, msg: Message::Sync(SyncMessage::Ack { ids }) };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Limit { what: "sync ids", .. })));
        let most = Message::Sync(SyncMessage::Ack { ids: vec![VersionId([3; 32]); MAX_SYNC_IDS] });
        assert_eq!(decode(&encode(&most).unwrap()).unwrap(), most, "a full ack fits the frame limit");
    }

    #[test]
    fn feed_limits_hold() {
        use crate::feeds::entry::{FeedMessage, MAX_ASK_OWNERS};
        let owners = vec![PeerId([4; 32]); MAX_ASK_OWNERS + 1];
        let frame = Frame { version: PROTOCOL_VERSION, msg: Message::Feed(FeedMessage::Ask { owners }) };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Limit { what: "feed ask", .. })));
        let big =
            Envelope { data: vec![0; 2048], signature: vec![0; 64], public_key: PeerId([1; 32]), timestamp_ms: 0 };
        let frame = Frame {
            version: PROTOCOL_VERSION,
            msg: Message::Feed(FeedMessage::Announce { hops: 1, items: vec![big] }),
        };
        let bytes = rmp_serde::to_vec(&frame).unwrap();
        assert!(matches!(decode(&bytes), Err(WireError::Limit { what: "feed announcement", .. })));
    }

    #[test]
    fn huge_declared_length_does_not_allocate_it() {
        // A PexResponse claiming 2^32-1 peers in a 20-byte frame: must fail fast, not allocate.
        let mut bytes = rmp_serde::to_vec(&Frame { version: 1, msg: Message::PexResponse { peers: vec![] } }).unwrap();
        let n = bytes.len();
        bytes[n - 1] = 0xdd; // array32 marker replacing the empty fixarray
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(decode(&bytes).is_err());
    }
}
