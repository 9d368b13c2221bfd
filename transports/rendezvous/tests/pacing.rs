//! The client keeps under the server's per-connection budget, which the server publishes in its
//! challenge: a burst of signals far over it is cut to what fits (the rest dropped and counted),
//! the connection stays open, and registrations still go through (requests wait for a token
//! and signals leave a reserve for them).

use std::sync::Arc;
use std::time::Duration;
use swarm_rendezvous::{
    ClientConfig, ClientError, ClientEvent, ErrorCode, RendezvousClient, SeedSigner, Server, ServerConfig, Signer,
};
use tokio::time::timeout;

fn signer(i: u8) -> Arc<dyn Signer> {
    Arc::new(SeedSigner::from_seed(&[i; 32]))
}

/// Defect: a node answering a flood of offers sent its answers as fast as they came, the
/// server's rate limit refused them and then closed the node's connection. Here the server
/// closes on the first message over its budget (5/s, burst 10).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_signals_is_paced_under_the_server_budget_and_the_connection_stays() {
    let strict = ServerConfig { rate_msgs_per_s: 5, rate_burst_msgs: 10, max_rate_violations: 0, ..Default::default() };
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), strict).await.expect("bind").spawn();
    let url = server.url();
    let (node, mut events) = RendezvousClient::connect(&url, signer(1)).await.expect("node");
    assert_eq!(node.send_budget(), (4, 8), "4/5 of what the server published");
    let (peer, mut peer_events) = RendezvousClient::connect(&url, signer(2)).await.expect("peer");
    node.register("swarm", 60).await.expect("register");
    peer.register("swarm", 60).await.expect("register");

    let sent = (0..300).filter(|i| node.signal(peer.peer(), format!("answer {i}")).is_ok()).count();
    // The bucket held 8 less the register just sent; signals leave a reserve (a quarter of the
    // burst at most) for requests.
    let reserve = ClientConfig::default().request_reserve_msgs.min(8 / 4) as usize;
    assert_eq!(sent, 8 - 1 - reserve, "signals sent of 300");
    assert_eq!(node.signals_paced(), 300 - sent as u64);
    assert!(matches!(node.signal(peer.peer(), "more"), Err(ClientError::Paced { rate_msgs_per_s: 4, burst_msgs: 8 })));
    for _ in 0..sent {
        let got = timeout(Duration::from_secs(3), peer_events.recv()).await.expect("in time").expect("open");
        assert!(matches!(got, ClientEvent::Signal { .. }), "{got:?}");
    }
    // Requests wait for tokens rather than going over: the reserve, then one per 250 ms.
    for _ in 0..12 {
        node.register("swarm", 60).await.expect("a refresh still goes through");
    }
    assert!(node.is_connected(), "never over the server's budget, so never cut off");
    if let Ok(Some(ev)) = timeout(Duration::from_millis(200), events.recv()).await {
        assert!(!matches!(ev, ClientEvent::Error { code: ErrorCode::RateLimited, .. }), "{ev:?}");
        panic!("nothing was expected on the node's event stream, got {ev:?}");
    }
    server.shutdown().await;
}
