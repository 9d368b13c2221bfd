//! The recovery core a node runs: the holder side ([`HolderCore`]: shares kept for others) and the
//! owner side (this node's own backup, and recoveries started on this device) behind one
//! `handle(now, input)`. It speaks through signed records carried by `Message::Recovery`, asks the
//! connection manager for links to the holders it needs (`Purpose::Recovery`, one set, re-sent
//! when it changes), and asks for the holder's writes as effects. Time: node ms in, turned into
//! Unix ms for the records (they carry Unix times).

use super::holder::{self, HolderConfig, HolderCore};
use super::messages::{kind_of, open, Kind, OwnerRef};
use super::owner::{build_backup, revocations, Backup, BackupConfig, BackupError, BackupTracker, HolderState};
use super::session::{Answer, Asked, Session};
use super::split::SplitParams;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::identity::vault::KdfParams;
use crate::identity::{Envelope, Identity};
use crate::links::LinkView;
use crate::observer::Offence;
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

/// Recoveries running at once on one node, at most (guess: a user recovers one identity).
pub const MAX_SESSIONS: usize = 4;
/// Holders one recovery may ask, at most (the split allows 16 shares).
pub const MAX_SESSION_HOLDERS: usize = super::split::MAX_SHARES as usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecoveryConfig {
    pub holder: HolderConfig,
    /// The recovery passphrase's argon2id cost (the vault's default: OWASP's 19 MiB, 2 passes).
    pub kdf: KdfParams,
}

pub type OpId = u64;

#[derive(Debug)]
pub enum Input {
    /// A recovery record from a proved link.
    Frame {
        from: PeerId,
        envelope: Envelope,
    },
    Link(LinkEvent),
    /// Back this node's identity up with `holders` (one share each), any `threshold` of them
    /// recovering it under `passphrase`. Replaces an earlier backup (its holders no longer named
    /// are told to forget their shares).
    Backup {
        op: OpId,
        holders: Vec<PeerId>,
        threshold: u8,
        passphrase: Zeroizing<Vec<u8>>,
    },
    Status {
        op: OpId,
    },
    /// Rebuild `owner`'s identity from shares `holders` release, within `timeout_ms`.
    Recover {
        op: OpId,
        owner: OwnerRef,
        holders: Vec<PeerId>,
        passphrase: Zeroizing<Vec<u8>>,
        timeout_ms: u64,
    },
}

/// A holder's write, for the wiring to apply (the `shards` table, keyed by owner).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardOp {
    Put { owner: PeerId, record: Vec<u8> },
    Delete { owner: PeerId },
}

#[derive(Debug)]
pub enum Output {
    Effect(Effect),
    /// Exactly these peers are wanted for `Purpose::Recovery`.
    Want(Vec<PeerId>),
    Store(ShardOp),
    /// An input dropped, and why (logged).
    Dropped {
        from: PeerId,
        error: String,
    },
    Done(RecoveryEvent),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupStatus {
    /// 0 when this node has not backed up (in this run).
    pub generation: u64,
    pub threshold: u8,
    /// Last seen in Unix ms.
    pub holders: Vec<HolderState>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    #[error("{MAX_SESSIONS} recoveries are running already")]
    Busy,
    #[error("no holders named")]
    NoHolders,
    #[error("{0} holders named, at most {MAX_SESSION_HOLDERS}")]
    TooManyHolders(usize),
    #[error("this node's own key cannot be a holder")]
    SelfAsHolder,
    #[error("the recovery passphrase is empty")]
    EmptyPassphrase,
    #[error("timed out after {timeout_ms} ms: {why}")]
    TimedOut { timeout_ms: u64, why: String },
    #[error("every holder answered, and the key is not rebuilt: {0}")]
    Failed(String),
}

#[derive(Debug)]
pub enum RecoveryEvent {
    BackupStarted {
        op: OpId,
        result: Result<BackupStatus, BackupError>,
    },
    Status {
        op: OpId,
        status: BackupStatus,
    },
    Recovered {
        op: OpId,
        /// Per holder: what it gave (for the user's report).
        holders: Vec<(PeerId, Asked)>,
        result: Result<Identity, RecoverError>,
    },
}

struct OwnBackup {
    backup: Backup,
    tracker: BackupTracker,
    threshold: u8,
}

struct Running {
    session: Session,
    deadline: Millis,
    timeout_ms: u64,
}

pub struct RecoveryCore {
    me: PeerId,
    identity: Identity,
    cfg: RecoveryConfig,
    /// Unix ms of the node clock's zero.
    epoch_ms: u64,
    view: LinkView,
    rng: ChaCha20Rng,
    holder: HolderCore,
    own: Option<OwnBackup>,
    /// Revocations waiting for their holder's next link.
    revokes: BTreeMap<PeerId, Envelope>,
    sessions: BTreeMap<OpId, Running>,
    wanted: BTreeSet<PeerId>,
    out: Outputs<Output>,
}

impl RecoveryCore {
    /// `rng` must be unguessable on a real node (it makes sealing keys and challenges).
    pub fn new(identity: &Identity, cfg: RecoveryConfig, epoch_ms: u64, view: LinkView, mut rng: ChaCha20Rng) -> Self {
        let holder_rng = ChaCha20Rng::from_seed(rng.gen());
        RecoveryCore {
            me: identity.peer_id(),
            identity: identity.duplicate(),
            cfg,
            epoch_ms,
            view,
            holder: HolderCore::new(identity.duplicate(), cfg.holder, holder_rng),
            rng,
            own: None,
            revokes: BTreeMap::new(),
            sessions: BTreeMap::new(),
            wanted: BTreeSet::new(),
            out: Outputs::new(),
        }
    }

    /// Put back the shares a previous run stored (see [`HolderCore::restore`]).
    pub fn restore(&mut self, records: &[Vec<u8>]) -> Vec<holder::HolderError> {
        self.holder.restore(records)
    }

    pub fn holder(&self) -> &HolderCore {
        &self.holder
    }

    fn unix(&self, now: Millis) -> u64 {
        self.epoch_ms.saturating_add(now)
    }

    fn send(&mut self, to: PeerId, envelope: Envelope) {
        self.out.push_back(Output::Effect(Effect::Send { to, msg: Message::Recovery(envelope) }));
    }

    fn drain_holder(&mut self) {
        while let Some(o) = self.holder.poll_output() {
            match o {
                holder::Output::Send { to, envelope } => self.send(to, envelope),
                holder::Output::Store { owner, record } => {
                    self.out.push_back(Output::Store(ShardOp::Put { owner, record }))
                }
                holder::Output::Delete { owner } => self.out.push_back(Output::Store(ShardOp::Delete { owner })),
                holder::Output::Dropped { signer, error } => {
                    self.out.push_back(Output::Dropped { from: signer, error: error.to_string() })
                }
            }
        }
    }

    /// The holders this node needs links to: its backup's holders until they acknowledged, those
    /// with a revocation to hear, and those of running recoveries that still have to answer.
    fn update_wanted(&mut self) {
        let mut want: BTreeSet<PeerId> = self.revokes.keys().copied().collect();
        if let Some(own) = &self.own {
            want.extend(own.tracker.holders().iter().filter(|h| !h.acked).map(|h| h.holder));
        }
        for r in self.sessions.values() {
            want.extend(r.session.holders().iter().filter(|(_, a)| !a.is_final()).map(|(h, _)| *h));
        }
        if want != self.wanted {
            self.out.push_back(Output::Want(want.iter().copied().collect()));
            self.wanted = want;
        }
    }

    fn status(&self) -> BackupStatus {
        match &self.own {
            None => BackupStatus { generation: 0, threshold: 0, holders: vec![] },
            Some(o) => {
                let mut holders = o.tracker.holders();
                for h in &mut holders {
                    h.last_seen_ms = self.unix(h.last_seen_ms);
                }
                BackupStatus { generation: o.backup.generation, threshold: o.threshold, holders }
            }
        }
    }

    fn on_backup(&mut self, now: Millis, op: OpId, holders: Vec<PeerId>, threshold: u8, pass: &[u8]) {
        let shares = u8::try_from(holders.len()).unwrap_or(u8::MAX);
        let cfg = BackupConfig { params: SplitParams { shares, threshold }, kdf: self.cfg.kdf };
        let now_ms = self.unix(now);
        // A Unix-ms generation grows across restarts without a stored counter.
        let generation = self.own.as_ref().map_or(now_ms, |o| now_ms.max(o.backup.generation + 1));
        let backup = match build_backup(&self.identity, &holders, pass, cfg, generation, now_ms, &mut self.rng) {
            Ok(b) => b,
            Err(e) => return self.done(RecoveryEvent::BackupStarted { op, result: Err(e) }),
        };
        if let Some(old) = self.own.take() {
            let dropped: Vec<PeerId> =
                old.tracker.holders().iter().map(|h| h.holder).filter(|h| !holders.contains(h)).collect();
            self.revokes.extend(revocations(&self.identity, &dropped, generation, now_ms));
        }
        let tracker = BackupTracker::new(self.me, &backup, now);
        self.own = Some(OwnBackup { backup, tracker, threshold });
        for h in holders {
            if self.view.contains(&h) {
                self.on_up(now, h);
            }
        }
        let status = self.status();
        self.done(RecoveryEvent::BackupStarted { op, result: Ok(status) });
    }

    fn on_recover(
        &mut self,
        now: Millis,
        op: OpId,
        owner: OwnerRef,
        holders: Vec<PeerId>,
        pass: Zeroizing<Vec<u8>>,
        timeout_ms: u64,
    ) {
        let check = if self.sessions.len() >= MAX_SESSIONS {
            Err(RecoverError::Busy)
        } else if holders.is_empty() {
            Err(RecoverError::NoHolders)
        } else if holders.len() > MAX_SESSION_HOLDERS {
            Err(RecoverError::TooManyHolders(holders.len()))
        } else if holders.contains(&self.me) {
            Err(RecoverError::SelfAsHolder)
        } else if pass.is_empty() {
            Err(RecoverError::EmptyPassphrase)
        } else {
            Ok(())
        };
        if let Err(e) = check {
            return self.done(RecoveryEvent::Recovered { op, holders: vec![], result: Err(e) });
        }
        let session = Session::new(owner, self.identity.duplicate(), pass, &holders);
        let deadline = now.saturating_add(timeout_ms);
        self.sessions.insert(op, Running { session, deadline, timeout_ms });
        let unix = self.unix(now);
        for h in holders {
            if self.view.contains(&h) {
                if let Some(env) = self.sessions.get_mut(&op).and_then(|r| r.session.request(&h, unix)) {
                    self.send(h, env);
                }
            }
        }
    }

    /// A link to `peer` is up: what waited for it goes out.
    fn on_up(&mut self, now: Millis, peer: PeerId) {
        let unix = self.unix(now);
        if let Some(own) = &mut self.own {
            own.tracker.seen(&peer, now);
            if !own.tracker.is_acked(&peer) {
                if let Some((_, env)) = own.backup.deposits.iter().find(|(h, _)| *h == peer) {
                    let env = env.clone();
                    self.send(peer, env);
                }
            }
        }
        if let Some(env) = self.revokes.remove(&peer) {
            self.send(peer, env);
        }
        let mut requests = Vec::new();
        for r in self.sessions.values_mut() {
            if r.session.holders().get(&peer) == Some(&Asked::Waiting) {
                requests.extend(r.session.request(&peer, unix));
            }
        }
        for env in requests {
            self.send(peer, env);
        }
    }

    fn on_frame(&mut self, now: Millis, from: PeerId, env: Envelope) {
        let Some(kind) = kind_of(&env) else {
            return self.out.push_back(Output::Dropped { from, error: "not a recovery record".into() });
        };
        if env.public_key != from {
            // Every record is answered to its signer: only the signer's own link may carry it.
            return self
                .out
                .push_back(Output::Dropped { from, error: "record signed by another key than its sender".into() });
        }
        let unix = self.unix(now);
        let input = match kind {
            Kind::Deposit => holder::Input::Deposit(env),
            Kind::Revoke => holder::Input::Revoke(env),
            Kind::ChallengeRequest => holder::Input::ChallengeRequest(env),
            Kind::ChallengeByUser => holder::Input::ChallengeByUser(env),
            Kind::ReleaseRequest => holder::Input::ReleaseRequest(env),
            Kind::Ack => return self.on_ack(now, from, &env),
            Kind::Challenge | Kind::Release | Kind::Refusal => return self.on_answer(unix, kind, from, &env),
        };
        self.holder.handle(unix, input);
        self.drain_holder();
    }

    fn on_ack(&mut self, now: Millis, from: PeerId, env: &Envelope) {
        let Some(own) = &mut self.own else {
            return self.out.push_back(Output::Dropped { from, error: "ack, and no backup is running".into() });
        };
        if let Err(e) = own.tracker.on_ack(env, now) {
            self.out.push_back(Output::Dropped { from, error: e.to_string() });
        }
    }

    fn on_answer(&mut self, unix: u64, kind: Kind, from: PeerId, env: &Envelope) {
        if kind == Kind::Refusal && self.own.is_some() {
            // A holder refusing our deposit (full, or it keeps a newer generation): logged.
            if let Ok(r) = open::<super::messages::Refusal>(env) {
                if r.owner == self.me && r.to == self.me {
                    self.out
                        .push_back(Output::Dropped { from, error: format!("our deposit was refused: {}", r.reason) });
                }
            }
        }
        let mut replies = Vec::new();
        let mut bad = false;
        for r in self.sessions.values_mut().filter(|r| r.session.asks(&from)) {
            let answer = match kind {
                Kind::Challenge => r.session.on_challenge(env, unix),
                Kind::Release => r.session.on_release(env),
                _ => r.session.on_refusal(env),
            };
            match answer {
                Answer::Reply(e) => replies.push(e),
                Answer::BadShare(_) => bad = true,
                Answer::Share | Answer::Nothing => {}
            }
        }
        for e in replies {
            self.send(from, e);
        }
        if bad {
            self.out.push_back(Output::Effect(Effect::Report { peer: from, offence: Offence::BadShare }));
        }
    }

    /// End the sessions that recovered, that every holder answered, or whose time ran out.
    fn settle(&mut self, now: Millis) {
        let ops: Vec<OpId> = self.sessions.keys().copied().collect();
        for op in ops {
            let r = &self.sessions[&op];
            let result = if let Some(rec) = r.session.try_finish() {
                Ok(rec.identity)
            } else if r.session.all_final() {
                Err(RecoverError::Failed(r.session.why_not()))
            } else if now >= r.deadline {
                Err(RecoverError::TimedOut { timeout_ms: r.timeout_ms, why: r.session.why_not() })
            } else {
                continue;
            };
            let r = self.sessions.remove(&op).expect("listed above");
            let holders = r.session.holders().iter().map(|(h, a)| (*h, a.clone())).collect();
            self.done(RecoveryEvent::Recovered { op, holders, result });
        }
    }

    fn done(&mut self, ev: RecoveryEvent) {
        self.out.push_back(Output::Done(ev));
    }
}

impl Core for RecoveryCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::Frame { from, envelope } => self.on_frame(now, from, envelope),
            Input::Link(LinkEvent::Up { peer, .. }) => self.on_up(now, peer),
            Input::Link(LinkEvent::Down { peer, .. }) => {
                for r in self.sessions.values_mut() {
                    r.session.lost(&peer);
                }
            }
            Input::Link(LinkEvent::DialFailed { .. }) => {}
            Input::Backup { op, holders, threshold, passphrase } => {
                self.on_backup(now, op, holders, threshold, &passphrase)
            }
            Input::Status { op } => {
                let status = self.status();
                self.done(RecoveryEvent::Status { op, status });
            }
            Input::Recover { op, owner, holders, passphrase, timeout_ms } => {
                self.on_recover(now, op, owner, holders, passphrase, timeout_ms)
            }
        }
        self.settle(now);
        self.update_wanted();
    }

    fn handle_timeout(&mut self, now: Millis) {
        let unix = self.unix(now);
        self.holder.handle_timeout(unix);
        self.drain_holder();
        self.settle(now);
        self.update_wanted();
    }

    fn next_timeout(&self) -> Option<Millis> {
        let holder = self.holder.next_timeout().map(|t| t.saturating_sub(self.epoch_ms));
        let session = self.sessions.values().map(|r| r.deadline).min();
        holder.into_iter().chain(session).min()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        self.holder.check_invariants();
        debug_assert!(self.sessions.len() <= MAX_SESSIONS);
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
