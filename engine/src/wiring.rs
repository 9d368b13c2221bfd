//! Where a node is assembled: each subsystem's outputs mapped to the transport (through the
//! [`Outbox`]) and to the other subsystems' actors. With the router's dispatch table, the only
//! place that names every subsystem, so no subsystem depends on another's actor.

use crate::core::{In, Outlet, Wiring};
use crate::discovery::{self, DiscoveryActor, PeerStore};
use crate::feeds::{self, store::FollowStore, FeedEvent};
use crate::files::{FileEvent, FileListener, FilesHandle};
use crate::gossip::{self, GossipActor};
use crate::links::{self, LinksActor, Purpose};
use crate::observer::Event;
use crate::recovery::{self, store::ShardStore, RecoveryEvent};
use crate::replication::service::{apply, Output as ContentOutput};
use crate::replication::{ContentActor, ContentCore, ContentInput, ContentListener, ContentResult};
use crate::reputation::{self, ReputationActor, ReputationStore, TrustView};
use crate::router::{Dispatch, Outbox};
use crate::storage::Storage;
use crate::sync::{self, store::SyncStore, SyncEvent, SyncStats};
use crate::topology::{self, TopologyActor};
use actix::Addr;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

pub struct LinksWiring {
    pub outbox: Outbox,
    pub dispatch: Dispatch,
}

impl Wiring<links::Output> for LinksWiring {
    fn route(&mut self, output: links::Output) {
        use links::Output;
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::Dial(p) => self.outbox.dial(p),
            Output::Disconnect(p) => self.outbox.disconnect(p),
            Output::Close(p) => self.outbox.close(p),
            Output::Link(ev) => self.dispatch.link(ev),
            Output::Deliver { from, msg } => self.dispatch.frame(from, msg),
        }
    }
}

pub struct DiscoveryWiring {
    pub outbox: Outbox,
    pub gossip: Addr<GossipActor>,
    pub links: Addr<LinksActor>,
    /// Where registry snapshots are stored (real nodes); `None` in simulations.
    pub store: Option<PeerStore>,
}

impl Wiring<discovery::Output> for DiscoveryWiring {
    fn route(&mut self, output: discovery::Output) {
        use discovery::Output;
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::Want(peer) => self.links.do_send(In(links::Input::Want { peer, purpose: Purpose::Random })),
            Output::TopPeers(peers) => self.gossip.do_send(In(gossip::Input::TopPeers(peers))),
            Output::Persist { now, entries } => {
                if let Some(store) = &self.store {
                    // A failed write (disk full...) costs this snapshot only; the next re-scan
                    // tries again, and what was stored before stays as it was.
                    if let Err(e) = store.save(now, &entries) {
                        tracing::error!(error = %e, "could not store the peer registry");
                    }
                }
            }
        }
    }
}

pub struct GossipWiring {
    pub outbox: Outbox,
    pub discovery: Addr<DiscoveryActor>,
    pub reputation: Addr<ReputationActor>,
}

impl Wiring<gossip::Output> for GossipWiring {
    fn route(&mut self, output: gossip::Output) {
        use gossip::Output;
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::RequestTopPeers(n) => self.discovery.do_send(In(discovery::Input::TopPeersRequest { n })),
            Output::Learned { peers, heard } => self.discovery.do_send(In(discovery::Input::Learned { peers, heard })),
            Output::Warned { accuser, accused } => {
                self.reputation.do_send(In(reputation::Input::Warned { accuser, accused }))
            }
        }
    }
}

pub struct TopologyWiring {
    pub outbox: Outbox,
    pub links: Addr<LinksActor>,
    pub content: Addr<ContentActor>,
}

impl Wiring<topology::Output> for TopologyWiring {
    fn route(&mut self, output: topology::Output) {
        use topology::Output;
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::SetWanted { purpose, peers } => self.links.do_send(In(links::Input::SetWanted { purpose, peers })),
            Output::Lookup { target } => self.content.do_send(In(ContentInput::Refresh { target })),
        }
    }
}

pub struct ReputationWiring {
    pub outbox: Outbox,
    pub links: Addr<LinksActor>,
    /// Carries this node's warnings (peers it graylisted on its own evidence) to the others.
    pub gossip: Addr<GossipActor>,
    /// The standings every other core reads (this wiring is their only writer).
    pub trust: TrustView,
    /// Where records are stored (real nodes); `None` in simulations.
    pub store: Option<ReputationStore>,
}

impl Wiring<reputation::Output> for ReputationWiring {
    fn route(&mut self, output: reputation::Output) {
        use reputation::Output;
        match output {
            Output::Standing { peer, standing, score } => {
                tracing::debug!(peer = %peer.short(), ?standing, score, "standing changed");
                self.trust.set(peer, standing);
                self.outbox.observe(Event::Standing { peer, standing });
                if standing.is_graylisted() {
                    self.links.do_send(In(links::Input::Distrusted { peer }));
                }
            }
            Output::Shunned { peer, shunned } => {
                self.trust.set_shunned(peer, shunned);
                self.outbox.observe(Event::Shunned { peer, shunned });
                if shunned {
                    self.links.do_send(In(links::Input::Distrusted { peer }));
                }
            }
            Output::Warn { peer, spread } => self.gossip.do_send(In(gossip::Input::Warn { peer, spread })),
            Output::Persist(batch) => {
                if let Some(store) = &self.store {
                    // A failed write costs this batch only: the records stay in memory and
                    // are written again when they next change.
                    if let Err(e) = store.apply(&batch) {
                        tracing::error!(error = %e, "could not store reputation records");
                    }
                }
            }
        }
    }
}

pub struct ContentWiring {
    pub outbox: Outbox,
    pub links: Addr<LinksActor>,
    pub reputation: Addr<ReputationActor>,
    pub topology: Addr<TopologyActor>,
    /// Told the peers found for its lookups (a record's replica set).
    pub sync: Addr<crate::sync::SyncActor>,
    pub listener: Option<ContentListener>,
    /// The store holding the chunks (the content core keeps only their index): its reads and
    /// writes are applied here and answered at once.
    pub chunks: Box<dyn Storage>,
}

impl Outlet<ContentCore> for ContentWiring {
    fn route(&mut self, output: ContentOutput) -> Option<ContentInput> {
        use ContentOutput as Output;
        match output {
            Output::Store(op) => return Some(apply(&mut self.chunks, op)),
            Output::Effect(e) => self.outbox.apply(e),
            Output::Want(peer) => self.links.do_send(In(links::Input::Want { peer, purpose: Purpose::Exchange })),
            Output::Rated { peer, outcome } => {
                self.reputation.do_send(In(reputation::Input::Request { peer, outcome }))
            }
            Output::Seen(peers) => self.topology.do_send(In(topology::Input::Seen { peers })),
            Output::Heard(peers) => self.topology.do_send(In(topology::Input::Heard { peers })),
            Output::Unresponsive(peer) => self.links.do_send(In(links::Input::Suspect { peer })),
            Output::RefreshDone => self.topology.do_send(In(topology::Input::RefreshDone)),
            Output::PeersFound { target, peers, relays } => {
                self.sync.do_send(In(sync::Input::Found { target, peers, relays }))
            }
            Output::RelayedSync { from, relays, msg } => {
                self.sync.do_send(In(sync::Input::Relayed { from, relays, msg }))
            }
            Output::Done(done) => {
                match &done {
                    ContentResult::Fetched { id, chunk, result } => {
                        tracing::debug!(id, chunk = %chunk.short(), ok = result.is_ok(), "fetch finished")
                    }
                    ContentResult::Published { chunk, result: Ok(()) } => {
                        tracing::debug!(chunk = %chunk.short(), "published")
                    }
                    ContentResult::Published { chunk, result: Err(e) } => {
                        tracing::warn!(chunk = %chunk.short(), error = %e, "publish failed")
                    }
                    ContentResult::Reclaimed { .. } => {}
                }
                if let Some(l) = &mut self.listener {
                    l(done);
                }
            }
        }
        None
    }
}

/// Told how each recovery operation (backup, status, recover) ended.
pub type RecoveryListener = Box<dyn FnMut(RecoveryEvent)>;

pub struct RecoveryWiring {
    pub outbox: Outbox,
    pub links: Addr<LinksActor>,
    /// Where the shares held for others are stored (real nodes); `None` in simulations.
    pub store: Option<ShardStore>,
    pub listener: Option<RecoveryListener>,
}

impl Wiring<recovery::Output> for RecoveryWiring {
    fn route(&mut self, output: recovery::Output) {
        use recovery::Output;
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::Want(peers) => {
                self.links.do_send(In(links::Input::SetWanted { purpose: Purpose::Recovery, peers }))
            }
            Output::Store(op) => {
                if let Some(store) = &self.store {
                    // A failed write leaves the share in memory for this run; the owner sees no
                    // difference until we restart, and re-sends an unacknowledged deposit.
                    if let Err(e) = store.apply(&op) {
                        tracing::error!(error = %e, "could not store a recovery share");
                    }
                }
            }
            Output::Dropped { from, error } => tracing::debug!(peer = %from.short(), %error, "recovery record dropped"),
            Output::Done(ev) => {
                if let Some(l) = &mut self.listener {
                    l(ev);
                }
            }
        }
    }
}

/// Told how each sync operation (write, read, conflict listing) ended.
pub type SyncListener = Box<dyn FnMut(SyncEvent)>;

/// The sync queue's figures as last reported (the wiring writes, the node's host reads).
#[derive(Clone, Default)]
pub struct SyncStatsView(std::rc::Rc<std::cell::Cell<SyncStats>>);

impl SyncStatsView {
    pub fn get(&self) -> SyncStats {
        self.0.get()
    }
}

pub struct SyncWiring {
    pub outbox: Outbox,
    pub links: Addr<LinksActor>,
    /// Runs the lookups of records' replica sets.
    pub content: Addr<crate::replication::ContentActor>,
    /// Where records and the queue are stored (real nodes); `None` in simulations.
    pub store: Option<SyncStore>,
    pub stats: SyncStatsView,
    pub listener: Option<SyncListener>,
}

impl Wiring<sync::Output> for SyncWiring {
    fn route(&mut self, output: sync::Output) {
        use sync::Output;
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::Want(peer) => self.links.do_send(In(links::Input::Want { peer, purpose: Purpose::Exchange })),
            Output::Lookup(target) => self.content.do_send(In(ContentInput::FindPeers { target })),
            Output::Store(ops) => {
                if let Some(store) = &self.store {
                    // A failed write leaves the change in memory for this run: replicas still get
                    // it, and a queued write lost here is sent again while this run lasts.
                    if let Err(e) = store.apply(&ops) {
                        tracing::error!(error = %e, "could not store sync records");
                    }
                }
            }
            Output::Stats(s) => {
                if s.online != self.stats.get().online {
                    tracing::info!(
                        online = s.online,
                        pending = s.pending,
                        "sync: {}",
                        if s.online { "online" } else { "offline" }
                    );
                }
                self.stats.0.set(s);
            }
            Output::Dropped { from, error } => {
                tracing::debug!(peer = ?from.map(|p| p.short()), %error, "sync input dropped")
            }
            Output::Done(ev) => {
                if let Some(l) = &mut self.listener {
                    l(ev);
                }
            }
        }
    }
}

/// Told of the feeds actor's answers (follows, listings) and of entries learned.
pub type FeedListener = Box<dyn FnMut(FeedEvent)>;

pub struct FeedsWiring {
    pub me: crate::PeerId,
    pub outbox: Outbox,
    pub sync: Addr<sync::SyncActor>,
    /// Where follows are stored (real nodes); `None` in simulations.
    pub store: Option<FollowStore>,
    pub listener: Option<FeedListener>,
    /// The next sync op id of the feeds' own reads and writes (from [`feeds::FEED_SYNC_OPS`]).
    pub next_op: u64,
}

impl Wiring<feeds::Output> for FeedsWiring {
    fn route(&mut self, output: feeds::Output) {
        use feeds::Output;
        let op = self.next_op;
        match output {
            Output::Effect(e) => self.outbox.apply(e),
            Output::WriteFeed(value) => {
                self.next_op += 1;
                let record = feeds::feed_record(self.me);
                self.sync.do_send(In(sync::Input::Write { op, record, value, grant: None }));
            }
            Output::ReadFeed(owner) => {
                self.next_op += 1;
                self.sync.do_send(In(sync::Input::Read { op, record: feeds::feed_record(owner) }));
            }
            Output::Store(ops) => {
                if let Some(store) = &self.store {
                    // A failed write leaves the follow in memory for this run.
                    if let Err(e) = store.apply(&ops) {
                        tracing::error!(error = %e, "could not store follows");
                    }
                }
            }
            Output::Dropped { from, error } => {
                tracing::debug!(peer = ?from.map(|p| p.short()), %error, "feed input dropped")
            }
            Output::Done(ev) => {
                if let Some(l) = &mut self.listener {
                    l(ev);
                }
            }
        }
    }
}

/// The sync actor's answers: those to the feeds actor's own reads and writes (op ids from
/// [`feeds::FEED_SYNC_OPS`]) go back to it, the rest to the node's sync listener.
pub fn route_sync_results(feeds: Addr<feeds::FeedsActor>, mut listener: Option<SyncListener>) -> SyncListener {
    Box::new(move |ev: SyncEvent| match ev {
        SyncEvent::Read { op, view, .. } if op >= feeds::FEED_SYNC_OPS => {
            let winner = view.winner.map(|w| (w.writer, w.value));
            feeds.do_send(In(feeds::Input::FeedRead { owner: view.record.owner, winner }));
        }
        SyncEvent::Written { op, result } if op >= feeds::FEED_SYNC_OPS => {
            if let Err(e) = result {
                tracing::warn!(error = %e, "could not write this node's feed record");
            }
        }
        ev => {
            if let Some(l) = &mut listener {
                l(ev);
            }
        }
    })
}

/// Publications under way that go into the feed once they complete: op -> (kind, name).
pub type FeedOps = Rc<RefCell<BTreeMap<crate::files::OpId, (feeds::EntryKind, String)>>>;

/// The files actor's events to the node's file listener; a completed publication the node was
/// told to put in the feed also goes to the feeds actor.
pub fn route_file_events(
    ops: FeedOps,
    feeds: Addr<feeds::FeedsActor>,
    mut listener: Option<FileListener>,
) -> FileListener {
    Box::new(move |ev: FileEvent, handle: &FilesHandle| {
        if let FileEvent::Published { op, result } = &ev {
            let taken = ops.borrow_mut().remove(op);
            if let (Some((kind, name)), Ok(file)) = (taken, result) {
                feeds.do_send(In(feeds::Input::Published { kind, name, link: file.link.to_string() }));
            }
        }
        if let Some(l) = &mut listener {
            l(ev, handle);
        }
    })
}
