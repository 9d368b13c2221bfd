//! The recovery core a node runs: the holder side ([`HolderCore`]: shares kept for others) and the
//! owner side (this node's own backup, and recoveries started on this device) behind one
//! `handle(now, input)`. It speaks through signed records carried by `Message::Recovery`, asks the
//! connection manager for links to the holders it needs (`Purpose::Recovery`, one set, re-sent
//! when it changes), and asks for the holder's writes as effects. Time: node ms in, turned into
//! Unix ms for the records (they carry Unix times).
//!
//! The owner watches its holders: every `check_interval_ms` a holder not linked and not seen for
//! that long is asked for a link (a link up is an authenticated sighting); one unseen for
//! `reshare_after_ms` is replaced: a fresh split (new polynomial, new generation) to the live
//! holders and suggested peers, a revocation queued for the departed, the signed holder list
//! published again to the peers closest to the user id's list key ([`super::list`]).

use super::holder::{self, HolderCore};
use super::list::{list_key, Found, ListFinder, ListPublisher, ListStore, MAX_LIST_REGIONS};
use super::messages::{kind_of, open, sign, HolderList, Kind, ListReply, ListRequest, OwnerRef, MAX_LIST_CLOSER};
use super::own::{suggest_holders, OwnBackup, OwnRecord};
use super::owner::{
    build_backup, build_backup_with_key, revocations, BackupConfig, BackupError, BackupTracker, HolderState,
};
use super::session::{Answer, Asked, Session};
use super::split::SplitParams;
use crate::core::{Core, Effect, LinkEvent, Outputs};
use crate::identity::{Envelope, Identity};
use crate::links::LinkView;
use crate::observer::Offence;
use crate::reputation::TrustView;
use crate::routing::{closest, LookupConfig, TableView};
use crate::time::Millis;
use crate::types::PeerId;
use crate::wire::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet};
use zeroize::Zeroizing;

pub use super::types::*;

struct Running {
    session: Session,
    deadline: Millis,
    timeout_ms: u64,
    /// Looking for the holder list (no holders named).
    finder: Option<ListFinder>,
    /// When the current list search started, and how many searches ran.
    started: Millis,
    searches: u8,
}

/// A list search goes on at least this long while it has found nothing: a fresh node's links
/// (its first candidates) come within seconds (guess).
pub const MIN_LIST_SEARCH_MS: Millis = 10_000;
/// List searches one recovery runs at most while its time lasts. A search that ends with nothing
/// is started again (at most once per [`MIN_LIST_SEARCH_MS`]): under churn a fresh node's first
/// search can end on peers that died or joined since the list was placed, while its table fills
/// with the live ones. In the recovery scenario, 3 of 200 owners with enough holders failed so
/// before this.
pub const MAX_LIST_SEARCHES: u8 = 4;

impl Running {
    /// Still looking for the holder list at `now`.
    fn finding(&self, now: Millis) -> bool {
        self.finder.as_ref().is_some_and(|f| {
            !f.is_done() || (f.best().is_none() && now < self.started.saturating_add(MIN_LIST_SEARCH_MS))
        })
    }

    /// When a finished search that found nothing ends the session (one still waiting for
    /// answers ends with them, or at the deadline: never a timer already past).
    fn search_ends(&self) -> Option<Millis> {
        let f = self.finder.as_ref()?;
        (f.is_done() && f.best().is_none()).then(|| self.started.saturating_add(MIN_LIST_SEARCH_MS))
    }
}

pub struct RecoveryCore {
    me: PeerId,
    identity: Identity,
    cfg: RecoveryConfig,
    /// Unix ms of the node clock's zero.
    epoch_ms: u64,
    view: LinkView,
    trust: TrustView,
    table: Option<TableView>,
    rng: ChaCha20Rng,
    holder: HolderCore,
    own: Option<OwnBackup>,
    /// Revocations waiting for their holder's next link; `true`: a link is wanted for it (a
    /// holder the user dropped; a departed one is not dialled, it hears at its next link).
    revokes: BTreeMap<PeerId, (Envelope, bool)>,
    /// The next look at the holders (while there is a backup).
    next_check: Option<Millis>,
    lists: ListStore,
    publisher: ListPublisher,
    /// The owner's lookup for where its list belongs (the peers closest to its list key).
    placing: Option<ListFinder>,
    /// The region the next placement lookup looks in.
    place_region: u8,
    /// The own backup is written out (`ShardOp::Own`) when it changed.
    persist: bool,
    dirty: bool,
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
            trust: TrustView::default(),
            table: None,
            holder: HolderCore::new(identity.duplicate(), cfg.holder, holder_rng),
            rng,
            own: None,
            revokes: BTreeMap::new(),
            next_check: None,
            lists: ListStore::new(cfg.max_lists_held),
            publisher: ListPublisher::default(),
            placing: None,
            place_region: 0,
            persist: false,
            dirty: false,
            sessions: BTreeMap::new(),
            wanted: BTreeSet::new(),
            out: Outputs::new(),
        }
    }

    /// Standings, for suggesting holders (neutral for everyone without).
    pub fn with_trust(mut self, trust: TrustView) -> Self {
        self.trust = trust;
        self
    }

    /// A lying holder (the simulator's adversary): every share it releases is wrong.
    pub fn with_lies(mut self, lie: bool) -> Self {
        self.holder.set_lies(lie);
        self
    }

    /// The routing table, for the peers closest to a holder list's key.
    pub fn with_table(mut self, table: TableView) -> Self {
        self.table = Some(table);
        self
    }

    /// Put back what a previous run stored: the shares held for others (see
    /// [`HolderCore::restore`]), their rate-limit states, and this node's own backup, which it
    /// goes on watching. From then on the own backup is written out whenever it changes
    /// (`ShardOp::Own`). Returns what could not be taken back, and why.
    pub fn restore(&mut self, now: Millis, stored: &super::store::Stored) -> Vec<String> {
        self.persist = true;
        let mut errors: Vec<String> = self.holder.restore(&stored.shares).iter().map(|e| e.to_string()).collect();
        errors.extend(self.holder.restore_locks(&stored.locks).iter().map(|e| e.to_string()));
        for bytes in &stored.lists {
            let kept = rmp_serde::from_slice::<Envelope>(bytes).map_err(|e| e.to_string());
            if let Err(e) = kept.and_then(|env| self.lists.put(env).map_err(|e| e.to_string())) {
                errors.push(format!("kept holder list: {e}"));
            }
        }
        if let Some(bytes) = &stored.own {
            match OwnRecord::restore(&self.identity, bytes, self.epoch_ms) {
                Ok((own, revokes)) => {
                    self.revokes = revokes.into_iter().map(|(p, e)| (p, (e, false))).collect();
                    self.own = Some(own);
                    self.next_check = Some(now);
                    self.publish_list(now, true);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        errors
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
                holder::Output::Store(op) => self.out.push_back(Output::Store(op)),
                holder::Output::Dropped { signer, error } => {
                    self.out.push_back(Output::Dropped { from: signer, error: error.to_string() })
                }
            }
        }
    }

    /// The holders this node needs links to: its backup's holders until they acknowledged, those
    /// with a revocation to hear, and those of running recoveries that still have to answer.
    /// Also: holders not seen for a check interval (to see them), the peers the holder list is
    /// due at, and those a list search asked.
    fn update_wanted(&mut self, now: Millis) {
        let mut want: BTreeSet<PeerId> = self.revokes.iter().filter(|(_, (_, w))| *w).map(|(p, _)| *p).collect();
        if let Some(own) = &self.own {
            let stale = |h: &HolderState| now.saturating_sub(h.last_seen_ms) >= self.cfg.check_interval_ms;
            want.extend(own.tracker.holders().iter().filter(|h| !h.acked || stale(h)).map(|h| h.holder));
        }
        want.extend(self.publisher.due().iter().copied());
        for r in self.sessions.values() {
            want.extend(r.session.holders().iter().filter(|(_, a)| !a.is_final()).map(|(h, _)| *h));
            want.extend(r.finder.iter().flat_map(|f| f.waiting().copied()));
        }
        want.extend(self.placing.iter().flat_map(|f| f.waiting().copied()));
        if want != self.wanted {
            self.out.push_back(Output::Want(want.iter().copied().collect()));
            self.wanted = want;
        }
    }

    fn status(&self) -> BackupStatus {
        match &self.own {
            None => BackupStatus { generation: 0, threshold: 0, reshares: 0, holders: vec![] },
            Some(o) => {
                let mut holders = o.tracker.holders();
                for h in &mut holders {
                    h.last_seen_ms = self.unix(h.last_seen_ms);
                }
                BackupStatus { generation: o.backup.generation, threshold: o.threshold, reshares: o.reshares, holders }
            }
        }
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
        } else if holders.is_empty() && !matches!(owner, OwnerRef::User(_)) {
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
        let finder = match (&owner, holders.is_empty()) {
            (OwnerRef::User(u), true) => Some(self.list_finder(u, 0)),
            _ => None,
        };
        let session = Session::new(owner, self.identity.duplicate(), pass, &holders);
        let deadline = now.saturating_add(timeout_ms);
        self.sessions.insert(op, Running { session, deadline, timeout_ms, finder, started: now, searches: 1 });
        self.pump_finders(now);
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
            self.dirty |= own.tracker.holders().iter().any(|h| h.holder == peer);
            if !own.tracker.is_acked(&peer) {
                if let Some((_, env)) = own.backup.deposits.iter().find(|(h, _)| *h == peer) {
                    let env = env.clone();
                    self.send(peer, env);
                    // The holders keep the list too: a recovery that found an older list asks
                    // the holders it names, and the ones kept since know the newer one.
                    if let Some(list) = self.publisher.current().cloned() {
                        self.send(peer, list);
                    }
                }
            }
        }
        if let Some((env, _)) = self.revokes.remove(&peer) {
            self.send(peer, env);
            self.dirty = true;
        }
        if let Some(env) = self.publisher.on_up(&peer) {
            self.send(peer, env);
        }
        let mut requests = Vec::new();
        for r in self.sessions.values_mut() {
            if r.session.holders().get(&peer) == Some(&Asked::Waiting) {
                requests.extend(r.session.request(&peer, unix));
            }
        }
        for f in finders(&mut self.sessions, &mut self.placing) {
            if f.on_up(peer) {
                requests.push(sign(&self.identity, &f.request(peer), unix));
            }
        }
        for env in requests {
            self.send(peer, env);
        }
        self.pump_finders(now);
        if self.own.is_some() {
            // The closest set to our list key may have changed (a backup made before any link).
            self.publish_list(now, false);
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
            Kind::HolderList => return self.keep_list(from, env),
            Kind::ListRequest => return self.on_list_request(unix, from, &env),
            Kind::ListReply => return self.on_list_reply(now, from, &env),
            Kind::Challenge | Kind::Release | Kind::Refusal => return self.on_answer(unix, kind, from, &env),
        };
        self.holder.handle(unix, input);
        self.drain_holder();
    }

    /// Keep an owner's holder list for it (newest generation wins), on disk too.
    fn keep_list(&mut self, from: PeerId, env: Envelope) {
        let record = rmp_serde::to_vec(&env).expect("envelopes encode");
        match self.lists.put(env) {
            Ok(user_id) => {
                tracing::debug!(me = %self.me.short(), %user_id, from = %from.short(), "holder list kept");
                if self.persist {
                    self.out.push_back(Output::Store(ShardOp::List { user_id, record }));
                }
            }
            Err(e) => self.out.push_back(Output::Dropped { from, error: e.to_string() }),
        }
    }

    fn on_ack(&mut self, now: Millis, from: PeerId, env: &Envelope) {
        let Some(own) = &mut self.own else {
            return self.out.push_back(Output::Dropped { from, error: "ack, and no backup is running".into() });
        };
        match own.tracker.on_ack(env, now) {
            Ok(_) => self.dirty = true,
            Err(e) => self.out.push_back(Output::Dropped { from, error: e.to_string() }),
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
            } else if r.finding(now) {
                if now < r.deadline {
                    continue;
                }
                Err(RecoverError::TimedOut {
                    timeout_ms: r.timeout_ms,
                    why: "still looking for the holder list".into(),
                })
            } else if r.finder.as_ref().is_some_and(|f| f.best().is_none())
                && r.searches < MAX_LIST_SEARCHES
                && now.saturating_add(MIN_LIST_SEARCH_MS) < r.deadline
            {
                self.search_again(now, op);
                continue;
            } else if r.finder.as_ref().is_some_and(|f| f.best().is_none()) {
                Err(RecoverError::NoList(r.finder.as_ref().map(|f| f.user_id().to_string()).unwrap_or_default()))
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

    /// After every input: sessions settled, links asked for, the own backup written if changed.
    fn finish(&mut self, now: Millis) {
        self.settle(now);
        self.update_wanted(now);
        if self.dirty && self.persist {
            if let Some(own) = &self.own {
                let revokes = self.revokes.iter().map(|(p, (e, _))| (*p, e.clone())).collect();
                let record = OwnRecord::of(&self.identity, own, revokes, self.epoch_ms, &mut self.rng).encode();
                self.out.push_back(Output::Store(ShardOp::Own { record }));
            }
        }
        self.dirty = false;
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
                if let Some(own) = &mut self.own {
                    // Alive until now.
                    own.tracker.seen(&peer, now);
                }
                for r in self.sessions.values_mut() {
                    r.session.lost(&peer);
                }
                self.list_peer_lost(now, &peer);
            }
            Input::Link(LinkEvent::DialFailed { peer, .. }) => self.list_peer_lost(now, &peer),
            Input::Backup { op, holders, threshold, passphrase } => {
                self.on_backup(now, op, holders, threshold, &passphrase)
            }
            Input::BackupSuggested { op, shares, threshold, passphrase } => {
                self.on_backup_suggested(now, op, shares, threshold, &passphrase)
            }
            Input::Status { op } => {
                let status = self.status();
                self.done(RecoveryEvent::Status { op, status });
            }
            Input::Recover { op, owner, holders, passphrase, timeout_ms } => {
                self.on_recover(now, op, owner, holders, passphrase, timeout_ms)
            }
        }
        self.finish(now);
    }

    fn handle_timeout(&mut self, now: Millis) {
        let unix = self.unix(now);
        self.holder.handle_timeout(unix);
        self.drain_holder();
        if self.next_check.is_some_and(|t| t <= now) {
            self.check(now);
        }
        self.expire_list_asks(now);
        self.finish(now);
    }

    fn next_timeout(&self) -> Option<Millis> {
        let holder = self.holder.next_timeout().map(|t| t.saturating_sub(self.epoch_ms));
        let session = self.sessions.values().flat_map(|r| [Some(r.deadline), r.search_ends()]).flatten().min();
        holder.into_iter().chain(session).chain(self.next_check).chain(self.next_list_expiry()).min()
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        self.holder.check_invariants();
        debug_assert!(self.sessions.len() <= MAX_SESSIONS);
    }
}

#[path = "service_owner.rs"]
mod owner_side;
#[path = "service_search.rs"]
mod search;
use search::finders;

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
