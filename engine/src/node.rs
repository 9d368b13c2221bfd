//! A node: the subsystem actors of one peer, wired to each other and to a transport. The same
//! assembly runs in the simulator and over WebRTC; only the transport and the clock differ.

use crate::auth::{AuthActor, AuthCore, AuthWiring, Gate};
use crate::config::NodeConfig;
use crate::content::{ChunkId, Inventory, InventoryError};
use crate::core::{In, Shell, Shutdown};
use crate::discovery::{DiscoveryActor, DiscoveryCore, DiscoveryWiring, PeerStore, StoredPeer};
use crate::gossip::{Faults, GossipActor, GossipCore, GossipWiring};
use crate::health::{HealthActor, HealthCore, HealthWiring};
use crate::identity::{Identity, Verifier};
use crate::observer::Observer;
use crate::replication::{ContentActor, ContentCore, ContentInput, ContentListener, ContentWiring};
use crate::router::{Dispatch, Inbox, Outbox};
use crate::storage::Storage;
use crate::time::Clock;
use crate::transport::Transport;
use crate::types::PeerId;
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
const STREAM_HEALTH: u64 = 3;
const STREAM_AUTH: u64 = 4;
const STREAM_CONTENT: u64 = 5;

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
    discovery: Addr<DiscoveryActor>,
    gossip: Addr<GossipActor>,
    health: Addr<HealthActor>,
    auth: Addr<AuthActor>,
    content: Addr<ContentActor>,
}

impl Node {
    /// Start the actors on the current arbiter. Returns the node and the inbox its transport must
    /// deliver events to; fails only when the content store cannot be read.
    pub fn start(p: NodeParams) -> Result<(Node, Inbox), InventoryError> {
        let id = p.identity.peer_id();
        let inventory = Inventory::open(p.content_store, p.config.replication.capacity_bytes)?;
        let content_core = ContentCore::new(
            id,
            p.config.replication.clone(),
            p.config.routing.clone(),
            p.config.topology.clone(),
            inventory,
            subsystem_rng(p.seed, STREAM_CONTENT),
        )?;
        let gate = Rc::new(Gate::default());
        let outbox = Outbox::new(id, p.transport, p.observer, gate.clone());
        // Contexts first, so each actor can be wired to the others' addresses before any runs.
        let dctx: Context<DiscoveryActor> = Context::new();
        let gctx: Context<GossipActor> = Context::new();
        let hctx: Context<HealthActor> = Context::new();
        let actx: Context<AuthActor> = Context::new();
        let cctx: Context<ContentActor> = Context::new();
        let (daddr, gaddr, haddr) = (dctx.address(), gctx.address(), hctx.address());
        let core = DiscoveryCore::new(id, p.config.discovery, subsystem_rng(p.seed, STREAM_DISCOVERY), &p.bootstrap);
        let discovery = Shell::new(
            match &p.peer_store {
                Some((_, restored)) => core.with_persistence(restored),
                None => core,
            },
            DiscoveryWiring { outbox: outbox.clone(), gossip: gaddr.clone(), store: p.peer_store.map(|(s, _)| s) },
            p.clock,
        );
        let gossip = Shell::new(
            GossipCore::new(
                p.identity.clone(),
                p.verifier.clone(),
                p.clock.unix_epoch_ms(),
                p.faults,
                p.config.gossip,
                subsystem_rng(p.seed, STREAM_GOSSIP),
            ),
            GossipWiring { outbox: outbox.clone(), discovery: daddr.clone() },
            p.clock,
        );
        let health = Shell::new(
            HealthCore::new(p.config.health, subsystem_rng(p.seed, STREAM_HEALTH)),
            HealthWiring { outbox: outbox.clone() },
            p.clock,
        );
        let content =
            Shell::new(content_core, ContentWiring { outbox: outbox.clone(), listener: p.content_listener }, p.clock);
        let dispatch = Dispatch { discovery: daddr, gossip: gaddr, health: haddr, content: cctx.address() };
        let auth = Shell::new(
            AuthCore::new(p.identity, p.verifier, p.config.auth, subsystem_rng(p.seed, STREAM_AUTH)),
            AuthWiring { outbox: outbox.clone(), dispatch: dispatch.clone(), gate: gate.clone() },
            p.clock,
        );
        let inbox = Inbox::new(actx.address(), gate, dispatch, outbox);
        let node = Node {
            id,
            discovery: dctx.run(discovery),
            gossip: gctx.run(gossip),
            health: hctx.run(health),
            auth: actx.run(auth),
            content: cctx.run(content),
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

    /// Stop every actor (a crash: no goodbye is sent).
    pub fn stop(&self) {
        self.discovery.do_send(Shutdown);
        self.gossip.do_send(Shutdown);
        self.health.do_send(Shutdown);
        self.auth.do_send(Shutdown);
        self.content.do_send(Shutdown);
    }
}
