//! A node: the subsystem actors of one peer, wired to each other and to a transport. The same
//! assembly runs in the simulator and over WebRTC; only the transport and the clock differ.

use crate::config::NodeConfig;
use crate::content::{ChunkId, Inventory, InventoryError};
use crate::core::{In, Shell, Shutdown, Wiring};
use crate::discovery::{DiscoveryActor, DiscoveryCore, PeerStore, StoredPeer};
use crate::gossip::{Faults, GossipActor, GossipCore};
use crate::identity::{Identity, Verifier};
use crate::links::{self, Gate, LinkTable, LinkView, LinksActor, LinksCore, Purpose};
use crate::observer::Observer;
use crate::replication::{ContentActor, ContentCore, ContentInput, ContentListener};
use crate::router::{Dispatch, Inbox, Outbox};
use crate::routing::{RoutingTable, TableConfig, TableView};
use crate::storage::Storage;
use crate::time::Clock;
use crate::topology::{TopologyActor, TopologyCore};
use crate::transport::Transport;
use crate::types::PeerId;
use crate::wiring::{ContentWiring, DiscoveryWiring, GossipWiring, LinksWiring, TopologyWiring};
use actix::{Addr, AsyncContext, Context};
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
const STREAM_TOPOLOGY: u64 = 6;

/// Routing-table replacements remembered per full bucket.
const TABLE_REPLACEMENTS: usize = 4;

pub struct NodeParams {
    /// The node's key pair; its public key is the node's peer id.
    pub identity: Rc<Identity>,
    /// How signatures are checked (the simulator shares a memoising verifier among its nodes).
    pub verifier: Rc<dyn Verifier>,
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
    /// Where the node's chunks live (heed for real nodes, memory in simulations); its capacity
    /// is `config.replication.capacity_bytes`.
    pub content_store: Box<dyn Storage>,
    /// Told how each fetch and publish ended (a real node's API); `None` in simulations.
    pub content_listener: Option<ContentListener>,
}

/// Handles to a running node's actors.
pub struct Node {
    pub id: PeerId,
    links: Addr<LinksActor>,
    discovery: Addr<DiscoveryActor>,
    gossip: Addr<GossipActor>,
    topology: Addr<TopologyActor>,
    content: Addr<ContentActor>,
    view: LinkView,
}

fn boxed<O: 'static>(w: impl Wiring<O>) -> Box<dyn Wiring<O>> {
    Box::new(w)
}

impl Node {
    /// Start the actors on the current arbiter. Returns the node and the inbox its transport must
    /// deliver events to; fails only when the content store cannot be read.
    pub fn start(p: NodeParams) -> Result<(Node, Inbox), InventoryError> {
        let id = p.identity.peer_id();
        let cfg = p.config;
        let inventory = Inventory::open(p.content_store, cfg.replication.capacity_bytes)?;
        let gate = Rc::new(Gate::default());
        let link_table = LinkTable::default();
        let view = link_table.view();
        let table =
            TableView::new(RoutingTable::new(&id, TableConfig { k: cfg.routing.k, replacements: TABLE_REPLACEMENTS }));
        let content_core =
            ContentCore::new(id, cfg.replication.clone(), cfg.routing.clone(), inventory, view.clone(), table.clone())?;
        let outbox = Outbox::new(id, p.transport, p.observer, gate.clone(), p.clock);
        // Contexts first, so each actor can be wired to the others' addresses before any runs.
        let lctx: Context<LinksActor> = Context::new();
        let dctx: Context<DiscoveryActor> = Context::new();
        let gctx: Context<GossipActor> = Context::new();
        let tctx: Context<TopologyActor> = Context::new();
        let cctx: Context<ContentActor> = Context::new();
        let (laddr, daddr, gaddr, taddr, caddr) =
            (lctx.address(), dctx.address(), gctx.address(), tctx.address(), cctx.address());
        let dispatch = Dispatch {
            discovery: daddr.clone(),
            gossip: gaddr.clone(),
            topology: taddr.clone(),
            content: caddr.clone(),
        };
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
            ),
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
        );
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
                p.faults,
                cfg.gossip.clone(),
                view.clone(),
                subsystem_rng(p.seed, STREAM_GOSSIP),
            ),
            boxed(GossipWiring { outbox: outbox.clone(), discovery: daddr.clone() }),
            p.clock,
        );
        let topology = Shell::new(
            TopologyCore::new(id, cfg.topology.clone(), table, view.clone(), subsystem_rng(p.seed, STREAM_TOPOLOGY)),
            boxed(TopologyWiring { outbox: outbox.clone(), links: laddr.clone(), content: caddr.clone() }),
            p.clock,
        );
        let content = Shell::new(
            content_core,
            boxed(ContentWiring {
                outbox: outbox.clone(),
                links: laddr.clone(),
                topology: taddr.clone(),
                listener: p.content_listener,
            }),
            p.clock,
        );
        let inbox = Inbox::new(laddr, gate, dispatch, outbox, p.clock);
        let node = Node {
            id,
            links: lctx.run(links),
            discovery: dctx.run(discovery),
            gossip: gctx.run(gossip),
            topology: tctx.run(topology),
            content: cctx.run(content),
            view,
        };
        Ok((node, inbox))
    }

    /// Publish an encrypted chunk: stored here and replicated to its replica set.
    pub fn publish(&self, data: Vec<u8>) {
        self.content.do_send(In(ContentInput::Publish { data }));
    }

    /// Find and download a chunk (the outcome is reported as `Event::FetchFinished`).
    pub fn fetch(&self, id: u64, chunk: ChunkId) {
        self.content.do_send(In(ContentInput::Fetch { id, chunk }));
    }

    /// Peers learned outside the swarm (a rendezvous server's answer, an operator's hint): into
    /// the registry, dialled as discovery sees fit.
    pub fn learn(&self, peers: Vec<PeerId>) {
        self.discovery.do_send(In(crate::discovery::Input::Learned { peers }));
    }

    /// An operator wants a link to `peer` (kept, like topology's links, until the node stops).
    pub fn connect(&self, peer: PeerId) {
        self.links.do_send(In(links::Input::Want { peer, purpose: Purpose::Manual }));
    }

    /// The open links, as the connection manager keeps them.
    pub fn links(&self) -> &LinkView {
        &self.view
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
    }
}
