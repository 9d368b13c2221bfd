//! Account recovery through the control API: `POST /identity/backup` (split this node's key
//! among holders), `GET /identity/backup` (who acknowledged, when each was last seen) and
//! `POST /identity/recover` (rebuild an identity from its holders' shares and store it as this
//! node's identity, sealed under the node's passphrase; it runs as that identity after a
//! restart). The JSON shapes are shared with the CLI; the host side matches each request to
//! the recovery actor's answer by operation id.

use super::api::{ApiError, Reply};
use super::host::Host;
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use swarm_engine::identity::{store, user_id, vault};
use swarm_engine::recovery::messages::OwnerRef;
use swarm_engine::recovery::service::{BackupStatus, MAX_SESSION_HOLDERS};
use swarm_engine::recovery::session::Asked;
use swarm_engine::recovery::RecoveryEvent;
use swarm_engine::wiring::RecoveryListener;
use swarm_engine::PeerId;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

/// Longest recovery passphrase accepted (bytes).
pub const MAX_PASSPHRASE_BYTES: usize = 1024;
/// Default and longest time a recovery waits for its holders.
pub const DEFAULT_RECOVER_TIMEOUT_MS: u64 = 60_000;
pub const MAX_RECOVER_TIMEOUT_MS: u64 = 240_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupRequest {
    pub holders: Vec<String>,
    #[serde(default)]
    pub threshold: Option<u8>,
    pub passphrase: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HolderView {
    pub peer_id: String,
    pub index: u8,
    pub acked: bool,
    /// Unix ms.
    pub last_seen_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BackupView {
    /// 0: no backup made by this node since it started.
    pub generation: u64,
    pub threshold: u8,
    /// Re-shares since the backup was made (holders gone too long were replaced).
    #[serde(default)]
    pub reshares: u64,
    pub holders: Vec<HolderView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RecoverRequest {
    /// The user id (16 hex digits) or the peer id (64) of the identity to recover.
    pub user_id: String,
    pub holders: Vec<String>,
    pub passphrase: String,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HolderAnswer {
    pub peer_id: String,
    /// `released`, or what went wrong with this holder.
    pub state: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Recovered {
    pub peer_id: String,
    pub user_id: String,
    /// The identity the node ran as, kept as `identity.key.previous`.
    pub previous_peer_id: Option<String>,
    pub holders: Vec<HolderAnswer>,
}

/// Waiters for an actor's answers, by operation id (recovery's and sync's).
pub struct OpWaiters<E> {
    next: Cell<u64>,
    waiting: RefCell<BTreeMap<u64, oneshot::Sender<E>>>,
}

impl<E> Default for OpWaiters<E> {
    fn default() -> Self {
        OpWaiters { next: Cell::new(0), waiting: RefCell::new(BTreeMap::new()) }
    }
}

impl<E> OpWaiters<E> {
    pub(super) fn open(&self) -> (u64, oneshot::Receiver<E>) {
        let op = self.next.get();
        self.next.set(op + 1);
        let (tx, rx) = oneshot::channel();
        self.waiting.borrow_mut().insert(op, tx);
        (op, rx)
    }

    /// Hand an answer to the waiter of `op` (gone waiters are skipped).
    pub(super) fn deliver(&self, op: u64, ev: E) {
        if let Some(tx) = self.waiting.borrow_mut().remove(&op) {
            let _ = tx.send(ev);
        }
    }
}

/// Waiters for the recovery actor's answers.
pub type RecoveryWaiters = OpWaiters<RecoveryEvent>;

impl OpWaiters<RecoveryEvent> {
    /// The listener handed to the node: each answer to its waiter.
    pub fn listener(self: &Rc<Self>) -> RecoveryListener {
        let me = self.clone();
        Box::new(move |ev| {
            let op = match &ev {
                RecoveryEvent::BackupStarted { op, .. }
                | RecoveryEvent::Status { op, .. }
                | RecoveryEvent::Recovered { op, .. } => *op,
                RecoveryEvent::Reshared { generation, replaced, .. } => {
                    tracing::info!(generation, replaced = replaced.len(), "backup re-shared: holders were gone");
                    return;
                }
            };
            me.deliver(op, ev);
        })
    }
}

fn gone() -> ApiError {
    ApiError::internal("the node stopped")
}

/// Holder peer ids, each checked, with the one that is wrong named.
fn parse_holders(holders: &[String], me: &PeerId) -> Result<Vec<PeerId>, ApiError> {
    if holders.len() > MAX_SESSION_HOLDERS {
        return Err(ApiError::bad_request(format!("{} holders named, at most {MAX_SESSION_HOLDERS}", holders.len())));
    }
    holders
        .iter()
        .map(|h| {
            let p: PeerId = h.trim().parse().map_err(|e| ApiError::bad_request(format!("holder `{h}`: {e}")))?;
            if p == *me {
                return Err(ApiError::bad_request(format!("holder `{h}` is this node itself")));
            }
            Ok(p)
        })
        .collect()
}

fn passphrase(p: String) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let p = Zeroizing::new(p.into_bytes());
    if p.is_empty() {
        return Err(ApiError::bad_request("the recovery passphrase is empty"));
    }
    if p.len() > MAX_PASSPHRASE_BYTES {
        return Err(ApiError::bad_request(format!("the recovery passphrase is over {MAX_PASSPHRASE_BYTES} bytes")));
    }
    Ok(p)
}

/// A user id (16 hex digits) or a peer id (64).
pub(super) fn owner_ref(s: &str) -> Result<OwnerRef, ApiError> {
    let s = s.trim();
    let hex = s.chars().all(|c| c.is_ascii_hexdigit());
    match s.len() {
        16 if hex => Ok(OwnerRef::User(s.to_ascii_lowercase())),
        64 if hex => s.parse().map(OwnerRef::Peer).map_err(|e| ApiError::bad_request(format!("user id `{s}`: {e}"))),
        _ => Err(ApiError::bad_request(format!(
            "user id `{s}` is neither a user id (16 hex digits) nor a peer id (64 hex digits)"
        ))),
    }
}

fn view(s: BackupStatus) -> BackupView {
    BackupView {
        generation: s.generation,
        threshold: s.threshold,
        reshares: s.reshares,
        holders: s
            .holders
            .into_iter()
            .map(|h| HolderView {
                peer_id: h.holder.to_string(),
                index: h.index,
                acked: h.acked,
                last_seen_ms: h.last_seen_ms,
            })
            .collect(),
    }
}

fn state(a: &Asked) -> String {
    match a {
        Asked::Waiting => "not reached".into(),
        Asked::Requested => "asked, no challenge".into(),
        Asked::Proved => "proof sent, no answer".into(),
        Asked::Released => "released".into(),
        Asked::Failed(why) => why.clone(),
    }
}

impl Host {
    pub(super) async fn backup(&self, r: BackupRequest, reply: Reply<BackupView>) {
        let _ = reply.send(self.try_backup(r).await);
    }

    async fn try_backup(&self, r: BackupRequest) -> Result<BackupView, ApiError> {
        let holders = parse_holders(&r.holders, &self.identity.peer_id())?;
        let pass = passphrase(r.passphrase)?;
        let threshold = r.threshold.unwrap_or(swarm_engine::recovery::split::DEFAULT_THRESHOLD);
        self.node.learn(holders.clone());
        let (op, rx) = self.recovery.open();
        self.node.backup(op, holders, threshold, pass);
        match rx.await.map_err(|_| gone())? {
            RecoveryEvent::BackupStarted { result: Ok(s), .. } => Ok(view(s)),
            RecoveryEvent::BackupStarted { result: Err(e), .. } => Err(ApiError::bad_request(e.to_string())),
            _ => Err(ApiError::internal("the recovery actor answered something else")),
        }
    }

    pub(super) async fn backup_status(&self, reply: Reply<BackupView>) {
        let (op, rx) = self.recovery.open();
        self.node.backup_status(op);
        let r = match rx.await {
            Ok(RecoveryEvent::Status { status, .. }) => Ok(view(status)),
            Ok(_) => Err(ApiError::internal("the recovery actor answered something else")),
            Err(_) => Err(gone()),
        };
        let _ = reply.send(r);
    }

    pub(super) async fn recover(&self, r: RecoverRequest, reply: Reply<Recovered>) {
        let _ = reply.send(self.try_recover(r).await);
    }

    async fn try_recover(&self, r: RecoverRequest) -> Result<Recovered, ApiError> {
        let owner = owner_ref(&r.user_id)?;
        let holders = parse_holders(&r.holders, &self.identity.peer_id())?;
        if holders.is_empty() && !matches!(owner, OwnerRef::User(_)) {
            return Err(ApiError::bad_request(
                "name the holders (--holder PEER_ID), or give the user id: its published holder list names them",
            ));
        }
        let pass = passphrase(r.passphrase)?;
        let timeout_ms = r.timeout_ms.unwrap_or(DEFAULT_RECOVER_TIMEOUT_MS).min(MAX_RECOVER_TIMEOUT_MS);
        // The holders may not be known to the registry: learn them so links can be made.
        self.node.learn(holders.clone());
        let (op, rx) = self.recovery.open();
        self.node.recover(op, owner, holders, pass, timeout_ms);
        let (holders, result) = match rx.await.map_err(|_| gone())? {
            RecoveryEvent::Recovered { holders, result, .. } => (holders, result),
            _ => return Err(ApiError::internal("the recovery actor answered something else")),
        };
        let answers: Vec<HolderAnswer> =
            holders.iter().map(|(h, a)| HolderAnswer { peer_id: h.to_string(), state: state(a) }).collect();
        let identity = result.map_err(|e| {
            let detail: Vec<String> = answers.iter().map(|a| format!("{}: {}", &a.peer_id[..16], a.state)).collect();
            ApiError::unprocessable(format!("{e} [{}]", detail.join("; ")))
        })?;
        // Sealed under the node's own passphrase, so the next start opens it as it opens any.
        let sealed =
            vault::seal(&identity, self.passphrase.as_bytes(), vault::KdfParams::default(), &mut rand_core::OsRng)
                .map_err(|e| ApiError::internal(format!("sealing the recovered identity: {e}")))?;
        let previous = store::replace(&self.data, &sealed)
            .map_err(|e| ApiError::internal(format!("storing the recovered identity: {e}")))?;
        let peer = identity.peer_id();
        tracing::info!(peer = %peer, "identity recovered and stored; it takes effect at the next start");
        Ok(Recovered {
            peer_id: peer.to_string(),
            user_id: user_id(&peer),
            previous_peer_id: previous.map(|p| p.to_string()),
            holders: answers,
        })
    }
}
