//! Engine nodes on the simulated network for integration tests: an actix system over a
//! paused-time runtime, a simulated network with a constant 10 ms latency, and node parameters
//! with test defaults (memory store, no listeners, no stored registry).

#![allow(dead_code)]

use std::future::Future;
use std::rc::Rc;
use swarm_engine::identity::{Ed25519Verifier, Identity};
use swarm_engine::node::{derived_secret_seed, Node, NodeParams};
use swarm_engine::observer::TracingObserver;
use swarm_engine::storage::memory::MemoryStorage;
use swarm_engine::time::Clock;
use swarm_engine::{NodeConfig, PeerId};
use swarm_transport_sim::{Latency, NetConfig, SimNet};

/// The Unix time (ms) the tests' time zero stands for.
pub const UNIX0: u64 = 1_800_000_000_000;

/// Run `test` on an actix system over paused time, handed the network and the clock.
pub fn run<F, Fut>(test: F)
where
    F: FnOnce(SimNet, Clock) -> Fut + 'static,
    Fut: Future<Output = ()>,
{
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    actix::System::with_tokio_rt(move || rt).block_on(async move {
        let epoch = tokio::time::Instant::now();
        let cfg = NetConfig { latency: Latency::Constant { ms: 10.0 }, loss: 0.0, connect_timeout_ms: 3000 };
        let net = SimNet::new(cfg, 1, epoch, 1);
        actix::spawn(net.clone().pump());
        test(net, Clock::with_epoch(epoch, UNIX0)).await;
    });
}

/// Parameters for node `slot` (a new incarnation of it on `net`), to adjust before [`start`].
pub fn params(net: &SimNet, clock: Clock, slot: u32, id: Rc<Identity>, bootstrap: Vec<PeerId>) -> NodeParams {
    let port = net.add_node(slot, id.peer_id(), 16);
    NodeParams {
        identity: id,
        verifier: Rc::new(Ed25519Verifier),
        frame_memo: None,
        config: NodeConfig::default(),
        seed: u64::from(slot),
        bootstrap,
        transport: Rc::new(port),
        observer: Rc::new(TracingObserver),
        clock,
        peer_store: None,
        faults: Default::default(),
        content_faults: Default::default(),
        reputation_store: None,
        content_store: Box::new(MemoryStorage::new()),
        content_listener: None,
        file_listener: None,
        secret_seed: derived_secret_seed(u64::from(slot)),
        recovery_store: None,
        recovery_listener: None,
    }
}

pub fn start(net: &SimNet, slot: u32, p: NodeParams) -> Node {
    let (node, inbox) = Node::start(p).expect("the store opens");
    net.set_inbox(slot, Rc::new(inbox));
    node
}
