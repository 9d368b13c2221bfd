//! MultiRendezvous over several loopback servers: one stopped mid-run, one URL never up, one
//! down at start; discovery and signal relay keep working and registrations are replayed after
//! a (re)connect, signed anew for each connection's challenge (a restarted server only accepts
//! signatures over its new nonces).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use swarm_rendezvous::{
    ClientConfig, MultiConfig, MultiEvent, MultiRendezvous, PeerId, RendezvousClient, SeedSigner, Server, ServerConfig,
    ServerHandle, Signer,
};
use tokio::sync::mpsc::Receiver;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn cfg() -> MultiConfig {
    let client = ClientConfig { connect_timeout_ms: 500, request_timeout_ms: 1_000, ..ClientConfig::default() };
    MultiConfig { client, backoff_initial_ms: 20, backoff_max_ms: 100, ..MultiConfig::default() }
}

fn signer(i: u8) -> Arc<dyn Signer> {
    Arc::new(SeedSigner::from_seed(&[i; 32]))
}

fn peer(i: u8) -> PeerId {
    signer(i).peer()
}

async fn start_at(addr: &str) -> ServerHandle {
    Server::bind(addr.parse().expect("addr"), ServerConfig::default()).await.expect("bind").spawn()
}

/// A loopback URL nothing listens on (the port was free a moment ago).
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("ws://{addr}")
}

async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let poll = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(WAIT, poll).await.unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// Next signal on the merged stream, skipping connection events.
async fn next_signal(rx: &mut Receiver<MultiEvent>) -> (PeerId, String) {
    loop {
        match timeout(WAIT, rx.recv()).await.expect("signal in time").expect("stream open") {
            MultiEvent::Signal { from, payload, .. } => return (from, payload),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_stopped_server_and_a_url_that_was_never_up() {
    let a = start_at("127.0.0.1:0").await;
    let b = start_at("127.0.0.1:0").await;
    let urls = vec![a.url(), b.url(), dead_url().await];
    let (p1, mut p1_events) = MultiRendezvous::start(urls.clone(), signer(1), cfg());
    let (p2, mut p2_events) = MultiRendezvous::start(urls.clone(), signer(2), cfg());
    eventually("both connected to a and b", || async { p1.connected().len() == 2 && p2.connected().len() == 2 }).await;
    assert_eq!(p1.register("swarm", 60).await.expect("register"), 2);
    assert_eq!(p2.register("swarm", 60).await.expect("register"), 2);
    assert_eq!(p1.discover_all("swarm", 10).await, vec![peer(2)]);

    b.shutdown().await;
    eventually("b seen as down", || async { p1.connected() == vec![urls[0].clone()] && p2.connected().len() == 1 })
        .await;
    assert_eq!(p1.discover_all("swarm", 10).await, vec![peer(2)]);
    assert_eq!(p2.discover_all("swarm", 10).await, vec![peer(1)]);
    assert_eq!(p1.signal(peer(2), "offer"), 1);
    assert_eq!(next_signal(&mut p2_events).await, (peer(1), "offer".to_owned()));
    assert_eq!(p2.signal(peer(1), "answer"), 1);
    assert_eq!(next_signal(&mut p1_events).await, (peer(2), "answer".to_owned()));
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_at_start_gets_the_registrations_once_it_comes_up_and_after_a_restart() {
    let url = dead_url().await;
    let addr = url.trim_start_matches("ws://").to_owned();
    let (p1, mut events) = MultiRendezvous::start(vec![url.clone()], signer(1), cfg());
    assert_eq!(p1.register("swarm", 60).await.expect("remembered"), 0, "nothing connected yet");
    assert!(p1.discover_all("swarm", 10).await.is_empty());

    for round in 0..2 {
        let server = start_at(&addr).await;
        loop {
            match timeout(WAIT, events.recv()).await.expect("connected in time").expect("open") {
                MultiEvent::Connected { url: u } => break assert_eq!(u, url),
                _ => continue,
            }
        }
        let (observer, _e) = RendezvousClient::connect(&url, signer(9)).await.expect("observer");
        eventually("p1 re-registered", || async {
            observer.discover("swarm", 10, None).await.map(|(p, _)| p == vec![peer(1)]).unwrap_or(false)
        })
        .await;
        server.shutdown().await;
        let down = loop {
            match timeout(WAIT, events.recv()).await.expect("disconnect in time").expect("open") {
                MultiEvent::Disconnected { url: u } => break u,
                _ => continue,
            }
        };
        assert_eq!(down, url, "round {round}");
    }
}

#[tokio::test]
async fn dropping_the_handle_closes_its_connections() {
    let server = start_at("127.0.0.1:0").await;
    let (p1, _events) = MultiRendezvous::start(vec![server.url()], signer(1), cfg());
    p1.register("swarm", 60).await.expect("register");
    let (observer, _e) = RendezvousClient::connect(&server.url(), signer(9)).await.expect("observer");
    eventually("p1 registered", || async { observer.discover("swarm", 10, None).await.expect("d").0.len() == 1 }).await;
    drop(p1);
    eventually("p1's registration gone with its connection", || async {
        observer.discover("swarm", 10, None).await.expect("d").0.is_empty()
    })
    .await;
    server.shutdown().await;
}

async fn start_with(cfg: ServerConfig) -> ServerHandle {
    Server::bind("127.0.0.1:0".parse().expect("addr"), cfg).await.expect("bind").spawn()
}

/// Checks every 200 ms for `for_ms` that `observer` finds exactly `who` under `ns`.
async fn stays_listed(observer: &RendezvousClient, ns: &str, who: PeerId, for_ms: u64, mut each: impl FnMut()) {
    for step in 0..for_ms / 200 {
        each();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (listed, _) = observer.discover(ns, 10, None).await.expect("discover");
        assert_eq!(listed, vec![who], "listed at {} ms", (step + 1) * 200);
    }
}

/// Defect: the refresh timer was created anew on every loop turn, so each incoming signal or
/// error restarted it; a node hearing anything more often than its refresh interval never
/// refreshed and expired while connected. TTL 2 s here (refresh every second), a signal every
/// 200 ms, watched for 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_are_refreshed_on_schedule_while_signals_keep_arriving() {
    let server = start_with(ServerConfig { min_ttl_s: 1, ..ServerConfig::default() }).await;
    let url = server.url();
    let (p1, _p1_events) = MultiRendezvous::start(vec![url.clone()], signer(1), cfg());
    eventually("p1 connected", || async { p1.connected().len() == 1 }).await;
    assert_eq!(p1.register("swarm", 2).await.expect("register"), 1);
    let (noisy, _noisy_events) = RendezvousClient::connect(&url, signer(2)).await.expect("noisy");
    noisy.register("other", 60).await.expect("noisy registers");
    let (observer, _e) = RendezvousClient::connect(&url, signer(9)).await.expect("observer");
    stays_listed(&observer, "swarm", peer(1), 5_000, || noisy.signal(peer(1), "junk").expect("signal")).await;
    server.shutdown().await;
}

/// The server clamps the TTL (here to 2 s): refreshes follow the TTL granted, not the one asked
/// (300 s, which would refresh only after 150 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_follow_the_ttl_the_server_granted() {
    let server = start_with(ServerConfig { min_ttl_s: 1, max_ttl_s: 2, ..ServerConfig::default() }).await;
    let url = server.url();
    let (p1, _p1_events) = MultiRendezvous::start(vec![url.clone()], signer(1), cfg());
    eventually("p1 connected", || async { p1.connected().len() == 1 }).await;
    assert_eq!(p1.register("swarm", 300).await.expect("register"), 1);
    let (observer, _e) = RendezvousClient::connect(&url, signer(9)).await.expect("observer");
    stays_listed(&observer, "swarm", peer(1), 5_000, || {}).await;
    server.shutdown().await;
}

/// A registration the server refused (here: full) is tried again soon, not half a TTL (30 s)
/// later: a refresh that failed once (rate limited, timed out) would otherwise let it lapse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_registration_is_retried_soon() {
    let server = start_with(ServerConfig { max_registrations_total: 1, ..ServerConfig::default() }).await;
    let url = server.url();
    let (squatter, _s) = RendezvousClient::connect(&url, signer(2)).await.expect("squatter");
    squatter.register("swarm", 60).await.expect("the one slot");
    let (p1, _p1_events) = MultiRendezvous::start(vec![url.clone()], signer(1), cfg());
    eventually("p1 connected", || async { p1.connected().len() == 1 }).await;
    assert_eq!(p1.register("swarm", 60).await.expect("remembered"), 0, "the server is full");
    squatter.unregister("swarm").expect("unregister");
    let (observer, _e) = RendezvousClient::connect(&url, signer(9)).await.expect("observer");
    eventually("p1 registered once there is room", || async {
        observer.discover("swarm", 10, None).await.map(|(p, _)| p == vec![peer(1)]).unwrap_or(false)
    })
    .await;
    server.shutdown().await;
}
