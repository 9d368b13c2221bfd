//! A node: the subsystem actors of one peer, wired to each other and to a transport. The same
//! assembly runs in the simulator and over WebRTC; only the transport and the clock differ.

use crate::config::NodeConfig;
use crate::content::{ChunkId, InventoryError, ShareLink};
use crate::core::{Core, In, Outlet, Shell, Shutdown, Wiring};
use crate::discovery::{DiscoveryActor, DiscoveryCore, PeerStore, StoredPeer};
use crate::feeds::{self, store::FollowStore, store::StoredFollow, EntryKind, FeedsActor, FeedsCore, Followee};
use crate::files::{FileListener, FilesActor, FilesCore, FilesHandle, FilesWiring, OpId, FILES_FETCH_IDS};
use crate::gossip::{Faults, GossipActor, GossipCore};
use crate::identity::{Identity, Verifier};
use crate::links::{self, Gate, LinkTable, LinkView, LinksActor, LinksCore, Purpose};
use crate::observer::Observer;
use crate::recovery::messages::OwnerRef;
use crate::recovery::store::ShardStore;
use crate::recovery::{self, RecoveryActor, RecoveryCore};
use crate::replication::{ContentActor, ContentCore, ContentFaults, ContentInput, ContentListener, ContentResult};
use crate::reputation::{
    self, ReadScores, ReputationActor, ReputationCore, ReputationStore, ScoreQuery, StoredRecord, TrustView,
};
use crate::router::{Dispatch, FrameMemo, Inbox, Outbox};
use crate::routing::{RoutingTable, TableConfig, TableView};
use crate::storage::Storage;
use crate::sync::{self, store::SyncStore, RecordId, SyncActor, SyncCore};
use crate::time::Clock;
use crate::topology::{TopologyActor, TopologyCore};
use crate::transport::Transport;
use crate::types::PeerId;
use crate::wiring::{
    route_file_events, route_sync_results, ContentWiring, DiscoveryWiring, FeedListener, FeedOps, FeedsWiring,
    GossipWiring, LinksWiring, RecoveryListener, RecoveryWiring, ReputationWiring, SyncListener, SyncStatsView,
    SyncWiring, TopologyWiring,
};
use actix::{Addr, AsyncContext, Context};
use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::rc::Rc;

/// RNG stream of one subsystem of one node: every node seed gives independent, reproducible streams.
pub fn subsystem_rng(node_seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(node_seed);
    rng.set_stream(stream);
    rng
}

const STREAM_DISCOVERY: u64 = 1;
const STREAM_GOSSIP: u64 = 2;
const STREAM_LINKS: u64 = 4;
const STREAM_FILE_KEYS: u64 = 6;
const STREAM_TOPOLOGY: u64 = 7;
/// Of the ChaCha20 stream seeded by `secret_seed` (recovery seals keys and draws challenges: it
/// must be unguessable, like file keys).
const STREAM_RECOVERY: u64 = 8;
const STREAM_FEEDS: u64 = 9;
/// Publications waiting to complete before they go into the feed, at most (the oldest is
/// forgotten: its entry is not appended).
const MAX_FEED_OPS: usize = 4096;

/// A file-key seed derived from a node seed: for simulations only (a real node draws its
/// `secret_seed` from the OS: 64 bits of seed would make its file keys guessable).
pub fn derived_secret_seed(node_seed: u64) -> [u8; 32] {
    use rand::Rng;
    subsystem_rng(node_seed, STREAM_FILE_KEYS).gen()
}

/// Routing-table replacements remembered per full bucket.
const TABLE_REPLACEMENTS: usize = 4;

pub struct NodeParams {
    /// The node's key pair; its public key is the node's peer id.
    pub identity: Rc<Identity>,
    /// How signatures are checked (the simulator shares a memoising verifier among its nodes).
    pub verifier: Rc<dyn Verifier>,
    /// Gossip frames decoded once for all the nodes that receive the same buffer (the
    /// simulator's nodes share one); `None` for real nodes.
    pub frame_memo: Option<Rc<FrameMemo>>,
    pub config: NodeConfig,
    /// Seed of this node's RNG streams (the simulator derives it from the scenario seed).
    pub seed: u64,
    /// Peers known at start (persisted registry, rendezvous answer).
    pub bootstrap: Vec<PeerId>,
    pub transport: Rc<dyn Transport>,
    pub observer: Rc<dyn Observer>,
    pub clock: Clock,
    /// The stored registry and what was read back from it (see [`PeerStore::restore`]); `None`
    /// keeps the registry in memory only (simulations).
    pub peer_store: Option<(PeerStore, Vec<StoredPeer>)>,
    /// Deliberate misbehaviour (the simulator's adversaries); `Faults::default()` for real nodes.
    pub faults: Faults,
    /// The same for the content service; `ContentFaults::default()` for real nodes.
    pub content_faults: ContentFaults,
    /// The stored reputation records and what was read back from them; `None` keeps scores in
    /// memory only (simulations).
    pub reputation_store: Option<(ReputationStore, Vec<StoredRecord>)>,
    /// Where the node's chunks live (heed for real nodes, memory in simulations); its capacity
    /// is `config.replication.capacity_bytes`.
    pub content_store: Box<dyn Storage>,
    /// Told how each bare chunk fetch and publish ended (`Node::fetch`, `Node::publish`);
    /// `None` where nobody asks for bare chunks.
    pub content_listener: Option<ContentListener>,
    /// Told how file operations go (`Node::publish_file_*`, `Node::fetch_file`).
    pub file_listener: Option<FileListener>,
    /// Seed of the RNG that makes file keys: from the OS on a real node (keys must be
    /// unguessable), derived from the scenario in simulations.
    pub secret_seed: [u8; 32],
    /// Where recovery keeps the shares held for others and this node's own backup, and what was
    /// read back at start; `None` keeps them in memory only (simulations).
    pub recovery_store: Option<(ShardStore, recovery::store::Stored)>,
    /// Told how backups, status requests and recoveries end.
    pub recovery_listener: Option<RecoveryListener>,
}

/// The sync subsystem's storage and listener (both `None` in simulations: records in memory,
/// nobody asking).
#[derive(Default)]
pub struct SyncParams {
    /// The sync tables and what was read back from them at start.
    pub store: Option<(SyncStore, sync::store::Restored)>,
    /// Told how writes, reads and conflict listings end.
    pub listener: Option<SyncListener>,
    /// The follows table and what was read back from it at start.
    pub follows: Option<(FollowStore, Vec<StoredFollow>)>,
    /// Told of follows, feed listings and entries learned.
    pub feed_listener: Option<FeedListener>,
}

/// Handles to a running node's actors.
pub struct Node {
    pub id: PeerId,
    links: Addr<LinksActor>,
    discovery: Addr<DiscoveryActor>,
    gossip: Addr<GossipActor>,
    topology: Addr<TopologyActor>,
    content: Addr<ContentActor>,
    reputation: Addr<ReputationActor>,
    files: FilesHandle,
    recovery: Addr<RecoveryActor>,
    sync: Addr<SyncActor>,
    sync_stats: SyncStatsView,
    feeds: Addr<FeedsActor>,
    /// `None` when publications do not go into the feed (`feeds.enabled` off).
    feed_ops: Option<FeedOps>,
    view: LinkView,
    trust: TrustView,
}

fn boxed<O: 'static>(w: impl Wiring<O>) -> Box<dyn Wiring<O>> {
    Box::new(w)
}

impl Node {
    /// Start the actors on the current arbiter. Returns the node and the inbox its transport must
    /// deliver events to; fails only when the content store cannot be read.
    pub fn start(p: NodeParams) -> Result<(Node, Inbox), InventoryError> {
        Node::start_with_sync(p, SyncParams::default())
    }

    /// [`Node::start`], with the sync subsystem's storage and listener.
    pub fn start_with_sync(p: NodeParams, sp: SyncParams) -> Result<(Node, Inbox), InventoryError> {
        let id = p.identity.peer_id();
        let cfg = p.config;
        // Orphans of publications a crashed run left unfinished are gone once this returns.
        let opened = crate::files::store::open(p.content_store, cfg.replication.capacity_bytes)?;
        // The content core keeps the index of what is held; its wiring, the store.
        let (index, chunks) = opened.inventory.into_parts();
        let gate = Rc::new(Gate::new(cfg.flood.clone()));
        let link_table = LinkTable::default();
        let view = link_table.view();
        let table =
            TableView::new(RoutingTable::new(&id, TableConfig { k: cfg.routing.k, replacements: TABLE_REPLACEMENTS }));
        let trust = TrustView::default();
        let content_core =
            ContentCore::new(id, cfg.replication.clone(), cfg.routing.clone(), index, view.clone(), table.clone())
                .with_trust(trust.clone())
                .with_faults(p.content_faults.clone());
        let rctx: Context<ReputationActor> = Context::new();
        let raddr = rctx.address();
        let outbox = Outbox::new(id, p.transport, p.observer, gate.clone(), p.clock).with_reputation(raddr.clone());
        // Contexts first, so each actor can be wired to the others' addresses before any runs.
        let lctx: Context<LinksActor> = Context::new();
        let dctx: Context<DiscoveryActor> = Context::new();
        let gctx: Context<GossipActor> = Context::new();
        let tctx: Context<TopologyActor> = Context::new();
        let cctx: Context<ContentActor> = Context::new();
        let fctx: Context<FilesActor> = Context::new();
        let vctx: Context<RecoveryActor> = Context::new();
        let sctx: Context<SyncActor> = Context::new();
        let fectx: Context<FeedsActor> = Context::new();
        let (laddr, daddr, gaddr, taddr, caddr) =
            (lctx.address(), dctx.address(), gctx.address(), tctx.address(), cctx.address());
        let dispatch = Dispatch {
            discovery: daddr.clone(),
            gossip: gaddr.clone(),
            topology: taddr.clone(),
            content: caddr.clone(),
            reputation: raddr.clone(),
            recovery: vctx.address(),
            sync: sctx.address(),
            feeds: fectx.address(),
        };
        let (reputation_core, reputation_store) = match p.reputation_store {
            Some((store, restored)) => {
                let mut core = ReputationCore::new(cfg.reputation.clone(), p.clock.unix_epoch_ms());
                core.handle(p.clock.now(), reputation::Input::Restore(restored));
                (core, Some(store))
            }
            None => (ReputationCore::new(cfg.reputation.clone(), p.clock.unix_epoch_ms()).without_persistence(), None),
        };
        let reputation = Shell::new(
            reputation_core,
            boxed(ReputationWiring {
                outbox: outbox.clone(),
                links: laddr.clone(),
                gossip: gaddr.clone(),
                trust: trust.clone(),
                store: reputation_store,
            }),
            p.clock,
        );
        let links = Shell::new(
            LinksCore::new(
                p.identity.clone(),
                p.verifier.clone(),
                cfg.links.clone(),
                cfg.auth.clone(),
                cfg.health.clone(),
                gate.clone(),
                link_table,
                subsystem_rng(p.seed, STREAM_LINKS),
            )
            .with_trust(trust.clone()),
            boxed(LinksWiring { outbox: outbox.clone(), dispatch: dispatch.clone() }),
            p.clock,
        );
        let core = DiscoveryCore::new(
            id,
            cfg.discovery.clone(),
            cfg.links.low_watermark,
            view.clone(),
            subsystem_rng(p.seed, STREAM_DISCOVERY),
            &p.bootstrap,
        )
        .with_trust(trust.clone())
        .with_poisoned_pex(p.content_faults.poison_pex);
        let awaited = core.awaited();
        let discovery = Shell::new(
            match &p.peer_store {
                Some((_, restored)) => core.with_persistence(restored),
                None => core,
            },
            boxed(DiscoveryWiring {
                outbox: outbox.clone(),
                gossip: gaddr.clone(),
                links: laddr.clone(),
                store: p.peer_store.map(|(s, _)| s),
            }),
            p.clock,
        );
        let gossip = Shell::new(
            GossipCore::new(
                p.identity.clone(),
                p.verifier.clone(),
                p.clock.unix_epoch_ms(),
                Faults {
                    flood_rumors: p.content_faults.flood_rumors,
                    slander: p.content_faults.slander.clone(),
                    ..p.faults
                },
                cfg.gossip.clone(),
                view.clone(),
                subsystem_rng(p.seed, STREAM_GOSSIP),
            )
            .with_trust(trust.clone())
            .with_awaited(awaited),
            boxed(GossipWiring { outbox: outbox.clone(), discovery: daddr.clone(), reputation: raddr.clone() }),
            p.clock,
        );
        let mut sync_core = SyncCore::new(
            p.identity.clone(),
            p.verifier.clone(),
            cfg.sync.clone(),
            cfg.replication.rf,
            p.clock.unix_epoch_ms(),
            view.clone(),
            table.clone(),
        );
        let sync_store = sp.store.map(|(store, restored)| {
            if restored.unreadable > 0 {
                tracing::warn!(entries = restored.unreadable, "stored sync entries did not decode and were left out");
            }
            sync_core.handle(p.clock.now(), sync::Input::Restore(restored));
            store
        });
        let sync_stats = SyncStatsView::default();
        let sync_wiring = SyncWiring {
            outbox: outbox.clone(),
            links: laddr.clone(),
            content: caddr.clone(),
            store: sync_store,
            stats: sync_stats.clone(),
            listener: Some(route_sync_results(fectx.address(), sp.listener)),
        };
        let mut feeds_core = FeedsCore::new(
            p.identity.clone(),
            p.verifier.clone(),
            p.clock.unix_epoch_ms(),
            cfg.feeds.clone(),
            view.clone(),
            subsystem_rng(p.seed, STREAM_FEEDS),
        );
        let own_feed = sync_core
            .replica()
            .record(&feeds::feed_record(id))
            .and_then(|r| r.winner())
            .filter(|v| v.writer() == id)
            .map(|v| v.value().to_vec());
        let (follow_store, follows) = match sp.follows {
            Some((store, rows)) => (Some(store), rows),
            None => (None, Vec::new()),
        };
        if own_feed.is_some() || !follows.is_empty() {
            feeds_core.handle(p.clock.now(), feeds::Input::Restore { follows, own: own_feed });
        }
        let feeds_wiring = FeedsWiring {
            me: id,
            outbox: outbox.clone(),
            sync: sctx.address(),
            store: follow_store,
            listener: sp.feed_listener,
            next_op: feeds::FEED_SYNC_OPS,
        };
        let feeds_actor = Shell::new(feeds_core, boxed(feeds_wiring), p.clock);
        let sync_actor = Shell::new(sync_core, boxed(sync_wiring), p.clock);
        let topology = Shell::new(
            TopologyCore::new(
                id,
                cfg.topology.clone(),
                table.clone(),
                view.clone(),
                subsystem_rng(p.seed, STREAM_TOPOLOGY),
                p.clock.now(),
            )
            .with_trust(trust.clone()),
            boxed(TopologyWiring { outbox: outbox.clone(), links: laddr.clone(), content: caddr.clone() }),
            p.clock,
        );
        // Files: whole-file operations over the content actor's chunk operations. The content
        // actor's answers to the files actor's own requests go back to it; the rest to the
        // node's content listener.
        let files = FilesHandle(fctx.address());
        let content_listener = route_content_results(files.clone(), p.content_listener);
        let files_core = FilesCore::new(
            p.identity.clone(),
            p.verifier.clone(),
            cfg.files.clone(),
            p.clock.unix_epoch_ms(),
            rand_chacha::ChaCha20Rng::from_seed(p.secret_seed),
            opened.published,
        );
        let feed_ops: Option<FeedOps> = cfg.feeds.enabled.then(FeedOps::default);
        let file_listener = match &feed_ops {
            Some(ops) => Some(route_file_events(ops.clone(), fectx.address(), p.file_listener)),
            None => p.file_listener,
        };
        let files_wiring =
            FilesWiring { content: caddr.clone(), store: opened.store, me: files.clone(), listener: file_listener };
        let files_actor = Shell::new(files_core, files_wiring, p.clock);
        let content_wiring = ContentWiring {
            outbox: outbox.clone(),
            links: laddr.clone(),
            reputation: raddr.clone(),
            topology: taddr.clone(),
            sync: sctx.address(),
            listener: Some(content_listener),
            chunks,
        };
        let content = Shell::new(content_core, Box::new(content_wiring) as Box<dyn Outlet<ContentCore>>, p.clock);
        let mut recovery_rng = rand_chacha::ChaCha20Rng::from_seed(p.secret_seed);
        recovery_rng.set_stream(STREAM_RECOVERY);
        let mut recovery_core =
            RecoveryCore::new(&p.identity, cfg.recovery, p.clock.unix_epoch_ms(), view.clone(), recovery_rng)
                .with_trust(trust.clone())
                .with_table(table.clone())
                .with_lies(p.content_faults.lie_shares);
        let recovery_store = p.recovery_store.map(|(store, stored)| {
            for e in recovery_core.restore(p.clock.now(), &stored) {
                tracing::warn!(error = %e, "a stored recovery record was not taken back");
            }
            store
        });
        let recovery_wiring = RecoveryWiring {
            outbox: outbox.clone(),
            links: laddr.clone(),
            store: recovery_store,
            listener: p.recovery_listener,
        };
        let recovery = Shell::new(recovery_core, boxed(recovery_wiring), p.clock);
        let inbox = Inbox::new(laddr, gate, dispatch, outbox, p.clock).with_memo(p.frame_memo);
        let node = Node {
            id,
            links: lctx.run(links),
            discovery: dctx.run(discovery),
            gossip: gctx.run(gossip),
            topology: tctx.run(topology),
            content: cctx.run(content),
            reputation: rctx.run(reputation),
            files,
            recovery: vctx.run(recovery),
            sync: sctx.run(sync_actor),
            sync_stats,
            feeds: fectx.run(feeds_actor),
            feed_ops,
            view,
            trust,
        };
        fctx.run(files_actor);
        Ok((node, inbox))
    }

    /// Publish a bare encrypted chunk: stored here and replicated to its replica set. It is
    /// pinned for this run only (no publication record refers to it): after a restart it is
    /// held like a replica. What must outlive a restart is published as a file or a post.
    pub fn publish(&self, data: Vec<u8>) {
        self.content.do_send(In(ContentInput::Publish { data }));
    }

    /// Find and download a chunk (the outcome is reported as `Event::FetchFinished`). `id` must
    /// be below [`FILES_FETCH_IDS`] (the files actor's range).
    pub fn fetch(&self, id: u64, chunk: ChunkId) {
        debug_assert!(id < FILES_FETCH_IDS, "fetch id {id} is in the files actor's range");
        self.content.do_send(In(ContentInput::Fetch { id, chunk }));
    }

    // ---- whole files (answered through the file listener; see `crate::files`) ----------------

    /// Start publishing a file: send its bytes with `publish_file_piece`, each after the
    /// `Accepted` that answers the previous one, then `publish_file_finish`.
    pub fn publish_file_begin(&self, op: OpId, name: String) {
        self.feed_op(op, EntryKind::File, &name);
        self.files.publish_begin(op, name);
    }

    pub fn publish_file_piece(&self, op: OpId, data: Bytes) {
        self.files.publish_piece(op, data);
    }

    pub fn publish_file_finish(&self, op: OpId) {
        self.files.publish_finish(op);
    }

    /// Give up a publication (what it stored is reclaimed) or a fetch.
    pub fn file_abort(&self, op: OpId) {
        if let Some(ops) = &self.feed_ops {
            ops.borrow_mut().remove(&op);
        }
        self.files.abort(op);
    }

    /// Publish a signed post (one public root chunk, recorded like a file).
    pub fn publish_post(&self, op: OpId, text: String) {
        self.feed_op(op, EntryKind::Post, &text);
        self.files.publish_post(op, text);
    }

    /// Remember that publication `op` goes into the feed once it completes.
    fn feed_op(&self, op: OpId, kind: EntryKind, name: &str) {
        if let Some(ops) = &self.feed_ops {
            let mut ops = ops.borrow_mut();
            ops.insert(op, (kind, feeds::FeedEntry::trim_name(name)));
            while ops.len() > MAX_FEED_OPS {
                ops.pop_first();
            }
        }
    }

    // ---- feeds (answered through the feed listener; see `crate::feeds`) ---------------------

    /// Follow `user`: its new posts and files are learned from announcements and its feed record.
    pub fn follow(&self, op: u64, user: Followee) {
        self.feeds.do_send(In(feeds::Input::Follow { op, user }));
    }

    pub fn unfollow(&self, op: u64, user: Followee) {
        self.feeds.do_send(In(feeds::Input::Unfollow { op, user }));
    }

    /// Entries of followed users, newest first, at most `limit`.
    pub fn feed(&self, op: u64, limit: usize) {
        self.feeds.do_send(In(feeds::Input::List { op, limit }));
    }

    /// Put an entry into this node's feed and announce it (what a completed publication does).
    pub fn feed_append(&self, kind: EntryKind, name: String, link: String) {
        self.feeds.do_send(In(feeds::Input::Published { kind, name, link }));
    }

    /// Fetch what a link names; a file's pieces come in order, each to be answered with
    /// `fetch_file_consumed` once taken.
    pub fn fetch_file(&self, op: OpId, link: ShareLink) {
        self.files.fetch(op, link);
    }

    pub fn fetch_file_consumed(&self, op: OpId) {
        self.files.consumed(op);
    }

    // ---- recovery (answered through the recovery listener; see `crate::recovery`) ---------

    /// Back this node's identity up: one share to each holder, any `threshold` recover it.
    pub fn backup(&self, op: u64, holders: Vec<PeerId>, threshold: u8, passphrase: zeroize::Zeroizing<Vec<u8>>) {
        self.recovery.do_send(In(recovery::Input::Backup { op, holders, threshold, passphrase }));
    }

    /// The same with `shares` holders suggested among linked peers (by standing, then uptime).
    pub fn backup_suggested(&self, op: u64, shares: u8, threshold: u8, passphrase: zeroize::Zeroizing<Vec<u8>>) {
        self.recovery.do_send(In(recovery::Input::BackupSuggested { op, shares, threshold, passphrase }));
    }

    pub fn backup_status(&self, op: u64) {
        self.recovery.do_send(In(recovery::Input::Status { op }));
    }

    /// Rebuild `owner`'s identity from the shares `holders` release to this node.
    pub fn recover(
        &self,
        op: u64,
        owner: OwnerRef,
        holders: Vec<PeerId>,
        passphrase: zeroize::Zeroizing<Vec<u8>>,
        timeout_ms: u64,
    ) {
        self.recovery.do_send(In(recovery::Input::Recover { op, owner, holders, passphrase, timeout_ms }));
    }

    // ---- mutable records (answered through the sync listener; see `crate::sync`) ------------

    /// Write `value` to `record` as this node (`grant`: the owner's, for a record of another).
    pub fn doc_write(&self, op: u64, record: RecordId, value: Vec<u8>, grant: Option<crate::identity::Envelope>) {
        self.sync.do_send(In(sync::Input::Write { op, record, value, grant }));
    }

    /// Read `record` as this node and a quorum of its replicas hold it.
    pub fn doc_read(&self, op: u64, record: RecordId) {
        self.sync.do_send(In(sync::Input::Read { op, record }));
    }

    /// Every held record with conflicts.
    pub fn doc_conflicts(&self, op: u64) {
        self.sync.do_send(In(sync::Input::Conflicts { op }));
    }

    /// The sync queue's figures (pending writes, the oldest one's time, online).
    pub fn sync_stats(&self) -> sync::SyncStats {
        self.sync_stats.get()
    }

    /// Peers learned outside the swarm (a rendezvous server's answer, an operator's hint): into
    /// the registry, dialled as discovery sees fit.
    pub fn learn(&self, peers: Vec<PeerId>) {
        self.discovery.do_send(In(crate::discovery::Input::Learned { peers, heard: Vec::new() }));
    }

    /// An operator wants a link to `peer` (kept, like topology's links, until the node stops).
    pub fn connect(&self, peer: PeerId) {
        self.links.do_send(In(links::Input::Want { peer, purpose: Purpose::Manual }));
    }

    /// The open links, as the connection manager keeps them.
    pub fn links(&self) -> &LinkView {
        &self.view
    }

    /// Standings other than neutral, as reputation reports them.
    pub fn trust(&self) -> &TrustView {
        &self.trust
    }

    /// Live scores and their parts, read by the reputation actor at the node's clock (for the
    /// operator; the node decides by the standings of [`Node::trust`]). Fails once the node stopped.
    pub fn scores(&self, query: ScoreQuery) -> actix::dev::Request<ReputationActor, ReadScores> {
        self.reputation.send(ReadScores(query))
    }

    /// Close every link with a goodbye (a clean stop: peers do not treat us as lost).
    pub fn goodbye(&self) {
        self.links.do_send(In(links::Input::Shutdown));
    }

    /// Stop every actor (a crash: no goodbye is sent).
    pub fn stop(&self) {
        self.links.do_send(Shutdown);
        self.discovery.do_send(Shutdown);
        self.gossip.do_send(Shutdown);
        self.topology.do_send(Shutdown);
        self.content.do_send(Shutdown);
        self.reputation.do_send(Shutdown);
        self.files.0.do_send(Shutdown);
        self.recovery.do_send(Shutdown);
        self.sync.do_send(Shutdown);
        self.feeds.do_send(Shutdown);
    }
}

/// The content actor's results: publishes and reclaims to the files actor (it matches them to
/// its own by chunk and id), fetches in the files actor's id range to it alone, and everything
/// but reclaims to the node's own content listener.
fn route_content_results(files: FilesHandle, mut listener: Option<ContentListener>) -> ContentListener {
    Box::new(move |r: ContentResult| match r {
        ContentResult::Fetched { id, .. } if id >= FILES_FETCH_IDS => files.content_result(r),
        ContentResult::Reclaimed { .. } => files.content_result(r),
        ContentResult::Fetched { .. } => {
            if let Some(l) = &mut listener {
                l(r);
            }
        }
        ContentResult::Published { .. } => {
            if let Some(l) = &mut listener {
                l(r.clone());
            }
            files.content_result(r);
        }
    })
}
