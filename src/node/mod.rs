//! `swarm node`: one real peer. The engine's actors run on an actix thread (the same assembly the
//! simulator runs); WebRTC, the rendezvous clients and the control API run on a small multi-thread
//! tokio runtime beside it. The two sides meet only through channels and the transport handle.

pub mod api;
pub mod doc;
mod edge;
pub mod feed;
mod host;
mod net;
pub mod recovery;
mod serve;

use crate::client::DEFAULT_API;
use anyhow::{Context, Result};
use clap::Args;
use host::{Host, HostObserver, Shared};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_engine::discovery::PeerStore;
use swarm_engine::feeds::store::FollowStore;
use swarm_engine::identity::{store, vault, Ed25519Verifier, Identity};
use swarm_engine::node::{Node, NodeParams, SyncParams};
use swarm_engine::recovery::store::ShardStore;
use swarm_engine::reputation::ReputationStore;
use swarm_engine::storage::heed_store::HeedStorage;
use swarm_engine::storage::Storage;
use swarm_engine::sync::store::SyncStore;
use swarm_engine::time::Clock;
use swarm_engine::transport::Transport;
use swarm_engine::{NodeConfig, PeerId};

#[derive(Args)]
pub struct NodeArgs {
    /// Data directory: identity (DIR/identity.key), peer registry (DIR/db), chunks (DIR/content).
    #[arg(long, default_value = "swarm-data")]
    pub data: PathBuf,
    /// Rendezvous server URL, e.g. ws://127.0.0.1:7000 (repeatable; any of them may be down).
    #[arg(long = "rendezvous")]
    pub rendezvous: Vec<String>,
    /// Address of the local control API (HTTP + JSON).
    #[arg(long, default_value = DEFAULT_API)]
    pub api: SocketAddr,
    /// Address WebRTC gathers host candidates on (127.0.0.1 for loopback swarms).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_ip: IpAddr,
    /// STUN/TURN server URL for real deployments (repeatable; none by default).
    #[arg(long = "ice-server")]
    pub ice_servers: Vec<String>,
    /// Also serve a rendezvous on this address (WebSocket), so newcomers that know only this
    /// node can join through it; the node registers there too.
    #[arg(long)]
    pub rendezvous_listen: Option<SocketAddr>,
    /// Rendezvous namespace the node registers and discovers under.
    #[arg(long, default_value = "swarm")]
    pub namespace: String,
    /// A peer id to know at start besides the stored registry (repeatable).
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// File whose first line is the passphrase (else SWARM_PASSPHRASE). A new identity is
    /// created under it when DIR has none.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

fn unix_ms() -> u64 {
    // The host reads the wall clock (signing timestamps); protocol code is handed time.
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Open the node's identity, creating one if the directory has none; with the passphrase (a
/// recovered identity is sealed under it).
fn identity(a: &NodeArgs) -> Result<(Identity, zeroize::Zeroizing<String>)> {
    let pass = crate::passphrase(&a.passphrase_file)?;
    if store::key_path(&a.data).exists() {
        let id = store::load(&a.data, pass.as_bytes())
            .with_context(|| format!("opening the identity in {}", a.data.display()))?;
        return Ok((id, pass));
    }
    let id = Identity::generate(&mut rand_core::OsRng);
    let sealed = vault::seal(&id, pass.as_bytes(), vault::KdfParams::default(), &mut rand_core::OsRng)?;
    store::create(&a.data, &sealed)?;
    tracing::info!(peer = %id.peer_id(), "created a new identity");
    Ok((id, pass))
}

pub fn run(a: NodeArgs) -> Result<()> {
    std::fs::create_dir_all(&a.data).with_context(|| format!("creating {}", a.data.display()))?;
    let (id, passphrase) = identity(&a)?;
    let net_identity = id.duplicate();
    let id = Rc::new(id);
    let me = id.peer_id();
    let mut hints = Vec::new();
    for p in &a.peers {
        let p: PeerId = p.parse().with_context(|| "--peer".to_string())?;
        if p != me {
            hints.push(p);
        }
    }
    let registry: Rc<RefCell<dyn Storage>> = Rc::new(RefCell::new(crate::peers::open_registry(&a.data)?));
    let content = a.data.join("content");
    let chunks =
        HeedStorage::open(&content).with_context(|| format!("opening the chunk store in {}", content.display()))?;
    let config = NodeConfig::default();
    let peer_store = PeerStore::new(registry.clone(), unix_ms());
    let restored = peer_store.restore(config.discovery.forget_after_ms()).context("reading the peer registry")?;
    let reputation_store = ReputationStore::new(registry.clone());
    let scores = reputation_store.restore().context("reading the stored reputation records")?;
    let shard_store = ShardStore::new(registry.clone());
    let shards = shard_store.load().context("reading the recovery shares held for others")?;
    let sync_store = SyncStore::new(registry.clone());
    let synced = sync_store.load().context("reading the stored records and sync queue")?;
    let follow_store = FollowStore::new(registry.clone());
    let (follows, bad_follows) = follow_store.load().context("reading the followed users")?;
    if bad_follows > 0 {
        tracing::warn!(rows = bad_follows, "stored follows did not decode and were left out");
    }

    let net_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("swarm-net")
        .enable_all()
        .build()
        .context("starting the network runtime")?;
    let rendezvous_state = Arc::new(Mutex::new(Vec::new()));
    let net = net::start(
        &net_rt,
        net::NetOptions {
            identity: net_identity,
            rendezvous: a.rendezvous.clone(),
            rendezvous_listen: a.rendezvous_listen,
            namespace: a.namespace.clone(),
            bind_ip: a.bind_ip,
            ice_servers: a.ice_servers.clone(),
        },
        rendezvous_state.clone(),
    )?;
    let (req_tx, req_rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = net_rt
        .block_on(tokio::net::TcpListener::bind(a.api))
        .with_context(|| format!("binding the control API on {}", a.api))?;
    let api_addr = listener.local_addr()?;
    net_rt.spawn(serve::serve(listener, api::router(req_tx)));
    println!("peer id: {me}");
    println!("api: http://{api_addr}");
    if let Some(url) = &net.own_rendezvous {
        println!("rendezvous: {url}");
    }

    let system = actix::System::new();
    system.block_on(async move {
        let shared = Rc::new(Shared::default());
        let recovery = Rc::new(recovery::RecoveryWaiters::default());
        let sync = Rc::new(doc::SyncWaiters::default());
        let transport: Rc<dyn Transport> = Rc::new(net.transport.clone());
        let seed = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let bootstrap = hints.clone();
        let feeds = Rc::new(feed::FeedWaiters::default());
        let (post_tx, post_rx) = tokio::sync::mpsc::channel(feed::MAX_PENDING_POST_FETCHES);
        let sync_params = SyncParams {
            store: Some((sync_store, synced)),
            listener: Some(sync.listener()),
            follows: Some((follow_store, follows)),
            feed_listener: Some(feeds.listener(post_tx)),
        };
        let params = NodeParams {
            identity: id.clone(),
            verifier: Rc::new(Ed25519Verifier),
            frame_memo: None,
            config,
            seed,
            bootstrap,
            transport: transport.clone(),
            observer: Rc::new(HostObserver(shared.clone())),
            clock: Clock::with_epoch(tokio::time::Instant::now(), unix_ms()),
            peer_store: Some((peer_store, restored)),
            reputation_store: Some((reputation_store, scores)),
            faults: Default::default(),
            content_faults: Default::default(),
            content_store: Box::new(chunks),
            content_listener: None,
            file_listener: Some(shared.file_listener()),
            secret_seed: {
                let mut s = [0u8; 32];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut s);
                s
            },
            recovery_store: Some((shard_store, shards)),
            recovery_listener: Some(recovery.listener()),
        };
        let (node, inbox) = Node::start_with_sync(params, sync_params).context("opening the chunk store")?;
        actix::spawn(host::pump(net.events, inbox, shared.clone()));
        let host = Rc::new(Host {
            node,
            identity: id,
            shared: shared.clone(),
            started: Instant::now(),
            rendezvous: rendezvous_state,
            net: net.transport.clone(),
            recovery,
            sync,
            feeds,
            post_texts: Default::default(),
            passphrase,
            data: a.data.clone(),
        });
        actix::spawn(host::serve(req_rx, host.clone()));
        actix::spawn(feed::fetch_posts(host.clone(), post_rx));
        let learner = host.clone();
        let mut learned = net.learned;
        actix::spawn(async move {
            while let Some(peers) = learned.recv().await {
                let peers: Vec<PeerId> = peers.into_iter().filter(|p| *p != me).collect();
                if !peers.is_empty() {
                    learner.node.learn(peers);
                }
            }
        });
        wait_for_stop().await?;
        // Close every link with a goodbye, so peers do not treat us as lost and redial.
        tracing::info!("stopping: closing links");
        host.node.goodbye();
        tokio::time::sleep(Duration::from_millis(300)).await;
        host.node.stop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<(), anyhow::Error>(())
    })?;
    net_rt.shutdown_timeout(Duration::from_secs(1));
    println!("stopped");
    Ok(())
}

/// Until Ctrl-C or SIGTERM.
pub async fn wait_for_stop() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// Refuse a namespace the rendezvous would refuse, before starting anything.
pub fn check_namespace(ns: &str) -> Result<()> {
    swarm_rendezvous::Namespace::parse(ns).map(drop).with_context(|| format!("--namespace `{ns}`"))
}
