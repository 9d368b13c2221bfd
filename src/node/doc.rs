//! Mutable records through the control API: `POST /doc/set` (write a record: this node's own, or
//! another owner's under the owner's grant), `GET /doc/get?key=K&owner=O` (the winning value and
//! the conflict log, merged with what a quorum of its replicas hold), `GET /doc/conflicts` (every held
//! record with conflicts) and `POST /doc/grant` (sign a grant letting a writer write this node's
//! records). The JSON shapes are shared with the CLI; answers come from the sync actor by op id.

use super::api::{ApiError, Reply};
use super::host::Host;
use super::recovery::{owner_ref, OpWaiters};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::rc::Rc;
use swarm_engine::identity::user_id;
use swarm_engine::recovery::messages::OwnerRef;
use swarm_engine::sync::record::{grant_from_text, grant_to_text, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use swarm_engine::sync::{RecordId, RecordView, SyncEvent, VersionView, WriteError};
use swarm_engine::wiring::SyncListener;
use swarm_engine::PeerId;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocSetRequest {
    pub key: String,
    pub value: String,
    /// The record's owner (user id or peer id); this node's own record when absent.
    #[serde(default)]
    pub owner: Option<String>,
    /// The owner's grant (hex, from `swarm doc grant` on the owner's node); needed for the first
    /// write to another owner's record, found in the record afterwards.
    #[serde(default)]
    pub grant: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocVersion {
    pub writer: String,
    /// The write's time, Unix ms by its writer's clock.
    pub unix_ms: u64,
    pub value: String,
    /// The vector clock: writer peer id -> count.
    pub clock: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocView {
    pub owner: String,
    pub owner_user_id: String,
    pub key: String,
    /// The winning version (none: nothing is known of the record).
    pub value: Option<DocVersion>,
    /// Versions that lost to a concurrent, later write (newest first).
    pub conflicts: Vec<DocVersion>,
    /// Versions kept (winner, conflicts and superseded history).
    pub versions: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DocConflicts {
    pub records: Vec<DocView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GrantRequest {
    /// The writer's peer id.
    pub writer: String,
    /// Only this key (every key of this node's when absent).
    #[serde(default)]
    pub key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GrantView {
    /// The signed grant, hex: give it to the writer (`swarm doc set ... --grant HEX`).
    pub grant: String,
}

#[derive(Debug, Deserialize)]
pub struct GetQuery {
    pub key: Option<String>,
    pub owner: Option<String>,
}

/// Waiters for the sync actor's answers.
pub type SyncWaiters = OpWaiters<SyncEvent>;

impl OpWaiters<SyncEvent> {
    /// The listener handed to the node: each answer to its waiter.
    pub fn listener(self: &Rc<Self>) -> SyncListener {
        let me = self.clone();
        Box::new(move |ev| {
            let op = match &ev {
                SyncEvent::Written { op, .. } | SyncEvent::Read { op, .. } | SyncEvent::Conflicts { op, .. } => *op,
            };
            me.deliver(op, ev);
        })
    }
}

fn version(v: &VersionView) -> DocVersion {
    DocVersion {
        writer: v.writer.to_string(),
        unix_ms: v.timestamp_ms,
        value: String::from_utf8_lossy(&v.value).into_owned(),
        clock: v.clock.iter().map(|(w, n)| (w.to_string(), *n)).collect(),
    }
}

fn doc(v: &RecordView) -> DocView {
    DocView {
        owner: v.record.owner.to_string(),
        owner_user_id: user_id(&v.record.owner),
        key: v.record.key.clone(),
        value: v.winner.as_ref().map(version),
        conflicts: v.conflicts.iter().map(version).collect(),
        versions: v.versions,
    }
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(format!(
            "record key `{}` is {} bytes: it must be 1 to {MAX_KEY_BYTES} bytes",
            key.chars().take(40).collect::<String>(),
            key.len()
        )));
    }
    Ok(())
}

fn write_error(e: WriteError) -> ApiError {
    let status = match &e {
        WriteError::NoGrant { .. } => StatusCode::FORBIDDEN,
        WriteError::Queue(_) => StatusCode::SERVICE_UNAVAILABLE,
        WriteError::Record(_) => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.to_string())
}

fn gone() -> ApiError {
    ApiError::internal("the node stopped")
}

impl Host {
    /// The owner a request names: this node when absent; a user id is looked up among this
    /// node and its links (a peer id needs no lookup).
    fn owner(&self, owner: Option<&str>) -> Result<PeerId, ApiError> {
        let me = self.identity.peer_id();
        let Some(text) = owner else { return Ok(me) };
        let named = owner_ref(text).map_err(|e| ApiError::bad_request(format!("owner: {}", e.message)))?;
        match named {
            OwnerRef::Peer(p) => Ok(p),
            OwnerRef::User(u) => {
                let r = OwnerRef::User(u.clone());
                std::iter::once(me).chain(self.node.links().peers()).find(|p| r.matches(p)).ok_or_else(|| {
                    ApiError::not_found(format!(
                        "owner: user id `{u}` is neither this node's nor a linked peer's; give the owner's peer id (64 hex digits)"
                    ))
                })
            }
        }
    }

    pub(super) async fn doc_set(&self, r: DocSetRequest, reply: Reply<DocView>) {
        let _ = reply.send(self.try_doc_set(r).await);
    }

    async fn try_doc_set(&self, r: DocSetRequest) -> Result<DocView, ApiError> {
        check_key(&r.key)?;
        if r.value.len() > MAX_VALUE_BYTES {
            let len = r.value.len();
            return Err(ApiError::bad_request(format!("value of {len} bytes: at most {MAX_VALUE_BYTES} bytes")));
        }
        let owner = self.owner(r.owner.as_deref())?;
        let grant = r
            .grant
            .as_deref()
            .map(|t| grant_from_text(t).map_err(|e| ApiError::bad_request(format!("grant: {e}"))))
            .transpose()?;
        let (op, rx) = self.sync.open();
        self.node.doc_write(op, RecordId::new(owner, r.key), r.value.into_bytes(), grant);
        match rx.await.map_err(|_| gone())? {
            SyncEvent::Written { result, .. } => result.map(|v| doc(&v)).map_err(write_error),
            _ => Err(ApiError::internal("the sync actor answered something else")),
        }
    }

    pub(super) async fn doc_get(&self, q: GetQuery, reply: Reply<DocView>) {
        let _ = reply.send(self.try_doc_get(q).await);
    }

    async fn try_doc_get(&self, q: GetQuery) -> Result<DocView, ApiError> {
        let key = q.key.ok_or_else(|| ApiError::bad_request("name the record: ?key=KEY"))?;
        check_key(&key)?;
        let owner = self.owner(q.owner.as_deref())?;
        let (op, rx) = self.sync.open();
        self.node.doc_read(op, RecordId::new(owner, key.clone()));
        match rx.await.map_err(|_| gone())? {
            SyncEvent::Read { view, .. } if view.winner.is_none() => Err(ApiError::not_found(format!(
                "no record `{key}` of {owner} here or on the replicas that answered",
                owner = user_id(&owner)
            ))),
            SyncEvent::Read { view, .. } => Ok(doc(&view)),
            _ => Err(ApiError::internal("the sync actor answered something else")),
        }
    }

    pub(super) async fn doc_conflicts(&self, reply: Reply<DocConflicts>) {
        let (op, rx) = self.sync.open();
        self.node.doc_conflicts(op);
        let r = match rx.await {
            Ok(SyncEvent::Conflicts { records, .. }) => Ok(DocConflicts { records: records.iter().map(doc).collect() }),
            Ok(_) => Err(ApiError::internal("the sync actor answered something else")),
            Err(_) => Err(gone()),
        };
        let _ = reply.send(r);
    }

    pub(super) fn doc_grant(&self, r: GrantRequest) -> Result<GrantView, ApiError> {
        let writer: PeerId =
            r.writer.trim().parse().map_err(|e| ApiError::bad_request(format!("writer `{}`: {e}", r.writer)))?;
        if writer == self.identity.peer_id() {
            return Err(ApiError::bad_request("the writer is this node itself: it needs no grant"));
        }
        if let Some(k) = &r.key {
            check_key(k)?;
        }
        let g = swarm_engine::sync::grant(&self.identity, writer, r.key, super::unix_ms());
        Ok(GrantView { grant: grant_to_text(&g) })
    }
}
