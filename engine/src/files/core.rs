//! The files core: the publications and fetches running (each its own machine, [`Publish`] and
//! [`Fetch`]), their bounds, their deadlines, and the routing of the content actor's answers
//! to the machine that asked. Pure: storage and the content actor are reached through outputs.

use super::fetch::Fetch;
use super::publish::Publish;
use super::{FileError, FileEvent, Input, OpId, Output, FILES_FETCH_IDS};
use crate::config::FilesConfig;
use crate::content::{share_post, ChunkId, FileKey, Post};
use crate::core::{Core, Outputs};
use crate::identity::{Identity, Verifier};
use crate::replication::{ContentInput, ContentResult};
use crate::time::Millis;
use rand_chacha::ChaCha20Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// What a machine may use while it handles an input.
pub(super) struct Cx<'a> {
    pub out: &'a mut Outputs<Output>,
    pub now: Millis,
    pub unix_ms: u64,
    pub cfg: &'a FilesConfig,
    pub identity: &'a Identity,
    pub verifier: &'a dyn Verifier,
    next_fetch: &'a mut u64,
}

impl Cx<'_> {
    pub fn event(&mut self, e: FileEvent) {
        self.out.push_back(Output::Event(e));
    }

    /// A fresh id for a content fetch (in the files actor's range).
    pub fn fetch_id(&mut self) -> u64 {
        *self.next_fetch += 1;
        FILES_FETCH_IDS | *self.next_fetch
    }
}

pub struct FilesCore {
    identity: Rc<Identity>,
    verifier: Rc<dyn Verifier>,
    cfg: FilesConfig,
    unix_epoch_ms: u64,
    /// Makes file keys: seeded from the OS on a real node (keys must be unguessable), from the
    /// scenario in simulations.
    keys: ChaCha20Rng,
    publishes: BTreeMap<OpId, Publish>,
    fetches: BTreeMap<OpId, Fetch>,
    next_journal: u64,
    next_fetch: u64,
    /// Every chunk of this node's completed publications: never reclaimed for another's failure.
    published: BTreeSet<ChunkId>,
    /// Deadlines of the operations waiting on their callers, and each operation's own.
    deadlines: BTreeSet<(Millis, OpId)>,
    armed: BTreeMap<OpId, Millis>,
    out: Outputs<Output>,
}

impl FilesCore {
    /// `published`: what the store's records say this node published before (see
    /// [`super::store::open`]), which also means the journal is empty: journal ids start at 0.
    pub fn new(
        identity: Rc<Identity>,
        verifier: Rc<dyn Verifier>,
        cfg: FilesConfig,
        unix_epoch_ms: u64,
        keys: ChaCha20Rng,
        published: BTreeSet<ChunkId>,
    ) -> Self {
        FilesCore {
            identity,
            verifier,
            cfg,
            unix_epoch_ms,
            keys,
            publishes: BTreeMap::new(),
            fetches: BTreeMap::new(),
            next_journal: 0,
            next_fetch: 0,
            published,
            deadlines: BTreeSet::new(),
            armed: BTreeMap::new(),
            out: Outputs::new(),
        }
    }

    pub fn running(&self) -> (usize, usize) {
        (self.publishes.len(), self.fetches.len())
    }

    fn busy(&self, op: OpId) -> bool {
        self.publishes.contains_key(&op) || self.fetches.contains_key(&op)
    }

    /// Refuse an operation that cannot start: its one final event says why.
    fn refuse(&mut self, op: OpId, publish: bool, error: FileError) {
        let e = if publish {
            FileEvent::Published { op, result: Err(error) }
        } else {
            FileEvent::Fetched { op, result: Err(error) }
        };
        self.out.push_back(Output::Event(e));
    }

    fn admit(&mut self, op: OpId, publish: bool) -> bool {
        let (running, max, what) = if publish {
            (self.publishes.len(), self.cfg.max_publishes, "publications")
        } else {
            (self.fetches.len(), self.cfg.max_fetches, "fetches")
        };
        if self.busy(op) {
            self.refuse(op, publish, FileError::DuplicateOp(op));
            false
        } else if running >= max {
            self.refuse(op, publish, FileError::Busy { what, max });
            false
        } else {
            true
        }
    }

    /// The context the machines run in, borrowed apart from the machines themselves.
    fn parts(&mut self, now: Millis) -> (Cx<'_>, &mut BTreeMap<OpId, Publish>, &mut BTreeMap<OpId, Fetch>) {
        let cx = Cx {
            out: &mut self.out,
            now,
            unix_ms: self.unix_epoch_ms + now,
            cfg: &self.cfg,
            identity: &self.identity,
            verifier: &*self.verifier,
            next_fetch: &mut self.next_fetch,
        };
        (cx, &mut self.publishes, &mut self.fetches)
    }

    /// Run `f` on publication `op` with a context, then bring the core's books up to date.
    fn with_publish(&mut self, now: Millis, op: OpId, f: impl FnOnce(&mut Publish, &mut Cx)) {
        let (mut cx, publishes, _) = self.parts(now);
        let Some(p) = publishes.get_mut(&op) else { return };
        f(p, &mut cx);
        self.settle_publish(op);
    }

    fn with_fetch(&mut self, now: Millis, op: OpId, f: impl FnOnce(&mut Fetch, &mut Cx)) {
        let (mut cx, _, fetches) = self.parts(now);
        let Some(fe) = fetches.get_mut(&op) else { return };
        f(fe, &mut cx);
        let (finished, deadline) = (fe.finished, fe.deadline(cx.cfg.idle_timeout_ms));
        if finished {
            self.fetches.remove(&op);
        }
        self.arm(op, if finished { None } else { deadline });
    }

    /// After a publication handled something: send its reclaim (without what anything else
    /// references), record what it completed, forget it once it has ended.
    fn settle_publish(&mut self, op: OpId) {
        let Some(p) = self.publishes.get_mut(&op) else { return };
        if std::mem::take(&mut p.reclaim_due) {
            let id = p.journal;
            let mine = p.journalled.clone();
            let others: BTreeSet<ChunkId> = self
                .publishes
                .iter()
                .filter(|(o, _)| **o != op)
                .flat_map(|(_, q)| q.journalled.iter().chain(&q.storing))
                .copied()
                .collect();
            let chunks: Vec<ChunkId> =
                mine.into_iter().filter(|c| !self.published.contains(c) && !others.contains(c)).collect();
            self.out.push_back(Output::Content(ContentInput::Reclaim { id, chunks }));
        }
        let Some(p) = self.publishes.get_mut(&op) else { return };
        if let Some(chunks) = p.recorded.take() {
            self.published.extend(chunks);
        }
        let (finished, deadline) = (p.finished, p.deadline(self.cfg.idle_timeout_ms));
        if finished {
            self.publishes.remove(&op);
        }
        self.arm(op, if finished { None } else { deadline });
    }

    fn arm(&mut self, op: OpId, deadline: Option<Millis>) {
        if let Some(old) = self.armed.remove(&op) {
            self.deadlines.remove(&(old, op));
        }
        if let Some(d) = deadline {
            self.armed.insert(op, d);
            self.deadlines.insert((d, op));
        }
    }

    fn begin(&mut self, now: Millis, op: OpId, name: String) {
        if !self.admit(op, true) {
            return;
        }
        let journal = self.journal_id();
        match Publish::file(op, journal, &name, FileKey::generate(&mut self.keys), now) {
            Ok(p) => {
                self.publishes.insert(op, p);
                self.out.push_back(Output::Event(FileEvent::Accepted { op }));
                self.settle_publish(op);
            }
            Err(e) => self.refuse(op, true, e),
        }
    }

    fn post(&mut self, now: Millis, op: OpId, text: String) {
        if !self.admit(op, true) {
            return;
        }
        let unix_ms = self.unix_epoch_ms + now;
        let root = match share_post(&self.identity, &Post { text, reply_to: None }, unix_ms) {
            Ok(r) => r,
            Err(e) => return self.refuse(op, true, FileError::Content(e)),
        };
        let journal = self.journal_id();
        let (mut cx, publishes, _) = self.parts(now);
        let p = Publish::post(op, journal, root, unix_ms, &mut cx);
        publishes.insert(op, p);
        self.settle_publish(op);
    }

    fn journal_id(&mut self) -> u64 {
        self.next_journal += 1;
        self.next_journal
    }

    fn fetch(&mut self, now: Millis, op: OpId, link: crate::content::ShareLink) {
        if !self.admit(op, false) {
            return;
        }
        let (mut cx, _, fetches) = self.parts(now);
        let f = Fetch::start(op, link, &mut cx);
        fetches.insert(op, f);
        self.with_fetch(now, op, |_, _| {});
    }

    fn on_content(&mut self, now: Millis, r: ContentResult) {
        match r {
            ContentResult::Published { chunk, result } => {
                // At most `max_publishes` to look through.
                let op = self.publishes.iter().find(|(_, p)| p.storing.contains(&chunk)).map(|(o, _)| *o);
                if let Some(op) = op {
                    self.with_publish(now, op, |p, cx| {
                        p.on_published(&chunk, &result, cx);
                    });
                }
            }
            ContentResult::Fetched { id, result, .. } => {
                let op = self.fetches.iter().find(|(_, f)| f.asked(id)).map(|(o, _)| *o);
                if let Some(op) = op {
                    self.with_fetch(now, op, |f, cx| f.on_fetched(id, result, cx));
                }
            }
            ContentResult::Reclaimed { id, result } => {
                let op = self.publishes.iter().find(|(_, p)| p.journal == id).map(|(o, _)| *o);
                if let Some(op) = op {
                    self.with_publish(now, op, |p, cx| p.on_reclaimed(&result, cx));
                }
            }
        }
    }
}

impl Core for FilesCore {
    type Input = Input;
    type Output = Output;

    fn handle(&mut self, now: Millis, input: Input) {
        match input {
            Input::PublishBegin { op, name } => self.begin(now, op, name),
            Input::PublishPiece { op, data } => self.with_publish(now, op, |p, cx| p.piece(data, cx)),
            Input::PublishFinish { op } => self.with_publish(now, op, |p, cx| p.finish(cx)),
            Input::PublishPost { op, text } => self.post(now, op, text),
            Input::Fetch { op, link } => self.fetch(now, op, link),
            Input::Consumed { op } => self.with_fetch(now, op, |f, cx| f.consumed(cx)),
            Input::Abort { op } => {
                self.with_publish(now, op, |p, cx| p.fail(FileError::Aborted, cx));
                self.with_fetch(now, op, |f, cx| f.end(Err(FileError::Aborted), cx));
            }
            Input::Content(r) => self.on_content(now, r),
            Input::Written { op, write, result } => self.with_publish(now, op, |p, cx| p.on_written(write, result, cx)),
        }
    }

    fn handle_timeout(&mut self, now: Millis) {
        let ms = self.cfg.idle_timeout_ms;
        while let Some(&(at, op)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.armed.remove(&op);
            self.with_publish(now, op, |p, cx| p.fail(FileError::Idle { ms }, cx));
            self.with_fetch(now, op, |f, cx| f.end(Err(FileError::Idle { ms }), cx));
        }
    }

    fn next_timeout(&self) -> Option<Millis> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn check_invariants(&self) {
        debug_assert!(self.publishes.len() <= self.cfg.max_publishes, "too many publications");
        debug_assert!(self.fetches.len() <= self.cfg.max_fetches, "too many fetches");
        debug_assert!(self.deadlines.len() == self.armed.len());
        debug_assert!(
            self.fetches.values().all(|f| f.in_window() <= self.cfg.fetch_window_chunks),
            "a fetch holds more than its window"
        );
    }
}
