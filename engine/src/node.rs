//! A node: the subsystem actors of one peer, wired to each other and to a transport. The same
//! assembly runs in the simulator and over WebRTC; only the transport and the clock differ.

use crate::config::NodeConfig;
use crate::core::{Shell, Shutdown};
use crate::discovery::{DiscoveryActor, DiscoveryCore, DiscoveryWiring};
use crate::gossip::{GossipActor, GossipCore, GossipWiring};
use crate::health::{HealthActor, HealthCore, HealthWiring};
use crate::observer::Observer;
use crate::router::{Inbox, Outbox};
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

pub struct NodeParams {
    pub id: PeerId,
    pub config: NodeConfig,
    /// Seed of this node's RNG streams (the simulator derives it from the scenario seed).
    pub seed: u64,
    /// Peers known at start (persisted registry, rendezvous answer).
    pub bootstrap: Vec<PeerId>,
    pub transport: Rc<dyn Transport>,
    pub observer: Rc<dyn Observer>,
    pub clock: Clock,
}

/// Handles to a running node's actors.
pub struct Node {
    pub id: PeerId,
    discovery: Addr<DiscoveryActor>,
    gossip: Addr<GossipActor>,
    health: Addr<HealthActor>,
}

impl Node {
    /// Start the actors on the current arbiter. Returns the node and the inbox its transport must
    /// deliver events to.
    pub fn start(p: NodeParams) -> (Node, Inbox) {
        let outbox = Outbox::new(p.id, p.transport, p.observer.clone());
        // Contexts first, so each actor can be wired to the others' addresses before any runs.
        let dctx: Context<DiscoveryActor> = Context::new();
        let gctx: Context<GossipActor> = Context::new();
        let hctx: Context<HealthActor> = Context::new();
        let (daddr, gaddr, haddr) = (dctx.address(), gctx.address(), hctx.address());
        let discovery = Shell::new(
            DiscoveryCore::new(p.id, p.config.discovery, subsystem_rng(p.seed, STREAM_DISCOVERY), &p.bootstrap),
            DiscoveryWiring { outbox: outbox.clone(), gossip: gaddr.clone() },
            p.clock,
        );
        let gossip = Shell::new(
            GossipCore::new(p.id, p.config.gossip, subsystem_rng(p.seed, STREAM_GOSSIP)),
            GossipWiring { outbox: outbox.clone(), discovery: daddr.clone() },
            p.clock,
        );
        let health = Shell::new(
            HealthCore::new(p.config.health, subsystem_rng(p.seed, STREAM_HEALTH)),
            HealthWiring { outbox },
            p.clock,
        );
        let inbox = Inbox::new(p.id, daddr.clone(), gaddr.clone(), haddr.clone(), p.observer);
        let node =
            Node { id: p.id, discovery: dctx.run(discovery), gossip: gctx.run(gossip), health: hctx.run(health) };
        (node, inbox)
    }

    /// Stop every actor (a crash: no goodbye is sent).
    pub fn stop(&self) {
        self.discovery.do_send(Shutdown);
        self.gossip.do_send(Shutdown);
        self.health.do_send(Shutdown);
    }
}
