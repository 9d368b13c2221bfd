//! The real server on 127.0.0.1:0 with real WebSocket clients: discovery, signal relay both ways,
//! and every refusal (unknown peer, too large, rate limit, too many registrations, peer mismatch,
//! bad signature: a hijack of a registered peer id over the wire).

use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use swarm_rendezvous::auth::{sign_register, Nonce};
use swarm_rendezvous::{
    ClientConfig, ClientError, ClientEvent, ErrorCode, PeerId, RendezvousClient, SeedSigner, Server, ServerConfig,
    ServerHandle, ServerMsg, Signer,
};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(3);

async fn start(cfg: ServerConfig) -> ServerHandle {
    Server::bind("127.0.0.1:0".parse().expect("addr"), cfg).await.expect("bind").spawn()
}

fn key(i: u8) -> SeedSigner {
    SeedSigner::from_seed(&[i; 32])
}

fn signer(i: u8) -> Arc<dyn Signer> {
    Arc::new(key(i))
}

fn peer(i: u8) -> PeerId {
    key(i).peer()
}

type RawWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A bare WebSocket to the server, past the challenge (returned).
async fn raw(url: &str) -> (RawWs, Nonce) {
    past_challenge(tokio_tungstenite::connect_async(url).await.expect("connect").0).await
}

/// Like `raw`, with a small kernel receive buffer: the server's writes to it stall as soon as
/// it stops reading.
async fn raw_small_window(url: &str) -> (RawWs, Nonce) {
    let addr: std::net::SocketAddr = url.trim_start_matches("ws://").parse().expect("addr");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(addr).await.expect("connect");
    let plain = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    past_challenge(tokio_tungstenite::client_async(url, plain).await.expect("upgrade").0).await
}

async fn past_challenge(mut ws: RawWs) -> (RawWs, Nonce) {
    let nonce = match next_msg(&mut ws).await {
        Some(ServerMsg::Challenge { nonce, .. }) => nonce,
        other => panic!("expected the challenge first, got {other:?}"),
    };
    let mut bytes: Nonce = Default::default();
    hex::decode_to_slice(&nonce, &mut bytes).expect("64 hex chars");
    (ws, bytes)
}

/// The JSON of a `register` of `peer_hex` with `sig`.
fn register_json(peer_hex: &str, sig: Option<&str>, id: u64) -> String {
    let sig = sig.map(|s| format!(r#","sig":"{s}""#)).unwrap_or_default();
    format!(r#"{{"type":"register","ns":"swarm","peer":"{peer_hex}","ttl_s":60{sig},"id":{id}}}"#)
}

/// Next JSON message, or None when the server closed the connection.
async fn next_msg(ws: &mut RawWs) -> Option<ServerMsg> {
    loop {
        match timeout(WAIT, ws.next()).await.expect("server answered in time") {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).expect("server JSON")),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

async fn send(ws: &mut RawWs, json: &str) {
    ws.send(Message::text(json.to_owned())).await.expect("send");
}

fn code_of(msg: Option<ServerMsg>) -> ErrorCode {
    match msg {
        Some(ServerMsg::Error { code, .. }) => code,
        other => panic!("expected an error, got {other:?}"),
    }
}

async fn next_event(rx: &mut tokio::sync::mpsc::Receiver<ClientEvent>) -> ClientEvent {
    timeout(WAIT, rx.recv()).await.expect("event in time").expect("event stream open")
}

#[tokio::test]
async fn two_clients_discover_each_other_and_relay_signals_both_ways() {
    let server = start(ServerConfig::default()).await;
    let (a, mut a_events) = RendezvousClient::connect(&server.url(), signer(1)).await.expect("a connects");
    let (b, mut b_events) = RendezvousClient::connect(&server.url(), signer(2)).await.expect("b connects");
    assert_eq!(a.register("swarm", 60).await, Ok(60));
    assert_eq!(b.register("swarm", 5).await, Ok(10), "ttl clamped to min_ttl_s");
    let (peers, cookie) = a.discover("swarm", 10, None).await.expect("discover");
    assert_eq!(peers, vec![peer(2)]);
    assert_eq!(b.discover("swarm", 10, None).await.expect("discover").0, vec![peer(1)]);
    assert!(a.discover("swarm", 10, Some(&cookie)).await.expect("next page").0.is_empty());

    a.signal(peer(2), "offer-sdp").expect("queued");
    assert_eq!(next_event(&mut b_events).await, ClientEvent::Signal { from: peer(1), payload: "offer-sdp".into() });
    b.signal(peer(1), "answer-sdp").expect("queued");
    assert_eq!(next_event(&mut a_events).await, ClientEvent::Signal { from: peer(2), payload: "answer-sdp".into() });
    assert!(a.ping().await.is_ok());

    // A closed connection's registrations go with it.
    drop(b);
    assert_eq!(next_event(&mut b_events).await, ClientEvent::Disconnected);
    let gone = async {
        while !a.discover("swarm", 10, None).await.expect("discover").0.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(WAIT, gone).await.expect("b's registration removed after its connection closed");
    a.unregister("swarm").expect("queued");
    server.shutdown().await;
    assert_eq!(next_event(&mut a_events).await, ClientEvent::Disconnected);
    assert_eq!(a.register("swarm", 60).await, Err(ClientError::Disconnected));
}

#[tokio::test]
async fn signal_to_an_unknown_peer_comes_back_as_an_error_event() {
    let server = start(ServerConfig::default()).await;
    let (a, mut events) = RendezvousClient::connect(&server.url(), signer(1)).await.expect("connect");
    a.register("swarm", 60).await.expect("register");
    a.signal(peer(9), "offer").expect("queued");
    match next_event(&mut events).await {
        ClientEvent::Error { code: ErrorCode::UnknownPeer, message } => assert!(message.contains(&peer(9).to_hex())),
        other => panic!("expected unknown_peer, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_message_gets_too_large_then_close() {
    let cfg = ServerConfig { max_message_bytes: 1024, max_signal_payload_bytes: 512, ..ServerConfig::default() };
    let server = start(cfg).await;
    let (mut ws, _) = raw(&server.url()).await;
    send(&mut ws, r#"{"type":"ping","id":1}"#).await;
    assert_eq!(next_msg(&mut ws).await, Some(ServerMsg::Pong { id: Some(1) }));
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2000));
    send(&mut ws, &big).await;
    assert_eq!(code_of(next_msg(&mut ws).await), ErrorCode::TooLarge);
    assert_eq!(next_msg(&mut ws).await, None, "connection closed after too_large");
    server.shutdown().await;
}

#[tokio::test]
async fn flooding_is_rate_limited_and_then_disconnected() {
    let cfg =
        ServerConfig { rate_msgs_per_s: 5, rate_burst_msgs: 10, max_rate_violations: 5, ..ServerConfig::default() };
    let server = start(cfg).await;
    let (mut ws, _) = raw(&server.url()).await;
    for _ in 0..30 {
        send(&mut ws, r#"{"type":"ping"}"#).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    while let Some(msg) = next_msg(&mut ws).await {
        match msg {
            ServerMsg::Pong { .. } => pongs += 1,
            ServerMsg::Error { code: ErrorCode::RateLimited, .. } => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((10..=11).contains(&pongs), "burst of 10 served (plus refill), got {pongs}");
    assert_eq!(limited, 6, "5 tolerated violations, the 6th closes");
    server.shutdown().await;
}

#[tokio::test]
async fn too_many_registrations_for_one_peer() {
    let server = start(ServerConfig::default()).await;
    let (a, _events) = RendezvousClient::connect(&server.url(), signer(1)).await.expect("connect");
    for i in 0..8 {
        a.register(&format!("ns{i}"), 60).await.expect("within max_registrations_per_peer");
    }
    match a.register("ns8", 60).await {
        Err(ClientError::Server { code: ErrorCode::TooManyRegistrations, .. }) => {}
        other => panic!("expected too_many_registrations, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn identity_rules_and_bad_input_over_the_wire() {
    let server = start(ServerConfig::default()).await;
    let (mut ws, nonce) = raw(&server.url()).await;
    let p1 = peer(1).to_hex();
    let p2 = peer(2).to_hex();
    send(&mut ws, &format!(r#"{{"type":"signal","to":"{p2}","payload":"x","id":1}}"#)).await;
    assert_eq!(code_of(next_msg(&mut ws).await), ErrorCode::NotRegistered);
    send(&mut ws, &register_json(&p1, None, 2)).await;
    assert_eq!(code_of(next_msg(&mut ws).await), ErrorCode::BadSignature);
    send(&mut ws, &register_json(&p1, Some(&sign_register(&key(1), &nonce, "swarm")), 2)).await;
    assert_eq!(next_msg(&mut ws).await, Some(ServerMsg::Registered { ns: "swarm".into(), ttl_s: 60, id: Some(2) }));
    send(&mut ws, &register_json(&p2, Some(&sign_register(&key(2), &nonce, "swarm")), 3)).await;
    assert_eq!(code_of(next_msg(&mut ws).await), ErrorCode::PeerMismatch);
    for (bad, code) in [
        ("not json", ErrorCode::BadMessage),
        (r#"{"type":"teleport"}"#, ErrorCode::BadMessage),
        (r#"{"type":"register","ns":"swarm","ttl_s":60}"#, ErrorCode::BadMessage),
        (r#"{"type":"register","ns":"swarm","peer":"ABC","ttl_s":60}"#, ErrorCode::BadPeerId),
        (r#"{"type":"register","ns":"swarm","peer":"ABC","ttl_s":60,"sig":7}"#, ErrorCode::BadMessage),
        (r#"{"type":"discover","ns":"Bad NS","limit":5}"#, ErrorCode::BadNamespace),
        (r#"{"type":"discover","ns":"swarm","cookie":"zz"}"#, ErrorCode::BadCookie),
    ] {
        send(&mut ws, bad).await;
        assert_eq!(code_of(next_msg(&mut ws).await), code, "{bad}");
    }
    ws.send(Message::binary(vec![1, 2, 3])).await.expect("send");
    assert_eq!(code_of(next_msg(&mut ws).await), ErrorCode::BadMessage);
    server.shutdown().await;
}

#[tokio::test]
async fn a_newer_connection_takes_over_the_peer_route() {
    let server = start(ServerConfig::default()).await;
    let (old, _old_events) = RendezvousClient::connect(&server.url(), signer(1)).await.expect("connect");
    let (new, mut new_events) = RendezvousClient::connect(&server.url(), signer(1)).await.expect("connect");
    let (other, _other_events) = RendezvousClient::connect(&server.url(), signer(2)).await.expect("connect");
    old.register("swarm", 60).await.expect("register");
    new.register("swarm", 60).await.expect("register");
    other.register("swarm", 60).await.expect("register");
    other.signal(peer(1), "hello").expect("queued");
    assert_eq!(next_event(&mut new_events).await, ClientEvent::Signal { from: peer(2), payload: "hello".into() });
    // The old connection leaving does not take the peer's registration with it.
    drop(old);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(other.discover("swarm", 10, None).await.expect("discover").0, vec![peer(1)]);
    server.shutdown().await;
}

#[test]
fn client_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let server = start(ServerConfig::default()).await;
        let (c, _events) = RendezvousClient::connect(&server.url(), signer(1)).await.expect("connect");
        is_send(&c.register("swarm", 60));
        is_send(&c.discover("swarm", 1, None));
        is_send(&c.ping());
        is_send(&c);
        server.shutdown().await;
    });
}

#[tokio::test]
async fn a_hijack_of_a_registered_peer_id_fails_over_the_wire() {
    let server = start(ServerConfig::default()).await;
    // The owner, on a bare socket so that the test sees its exact register message.
    let (mut owner, owner_nonce) = raw(&server.url()).await;
    let owners_sig = sign_register(&key(1), &owner_nonce, "swarm");
    let owners_register = register_json(&peer(1).to_hex(), Some(&owners_sig), 1);
    send(&mut owner, &owners_register).await;
    assert!(matches!(next_msg(&mut owner).await, Some(ServerMsg::Registered { .. })));

    let (mut attacker, attacker_nonce) = raw(&server.url()).await;
    assert_ne!(attacker_nonce, owner_nonce, "a fresh challenge per connection");
    let own_key_sig = sign_register(&key(2), &attacker_nonce, "swarm");
    for attempt in [
        register_json(&peer(1).to_hex(), None, 1),
        owners_register.clone(),
        register_json(&peer(1).to_hex(), Some(&own_key_sig), 1),
    ] {
        send(&mut attacker, &attempt).await;
        assert_eq!(code_of(next_msg(&mut attacker).await), ErrorCode::BadSignature, "{attempt}");
    }

    let (caller, _events) = RendezvousClient::connect(&server.url(), signer(3)).await.expect("connect");
    caller.register("swarm", 60).await.expect("register");
    caller.signal(peer(1), "offer").expect("queued");
    assert_eq!(next_msg(&mut owner).await, Some(ServerMsg::Signal { from: peer(3).to_hex(), payload: "offer".into() }));
    // Nothing reached the attacker: its next message is the answer to its ping.
    send(&mut attacker, r#"{"type":"ping","id":9}"#).await;
    assert_eq!(next_msg(&mut attacker).await, Some(ServerMsg::Pong { id: Some(9) }));
    // And its connection closing removes nothing of the owner's.
    drop(attacker);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(caller.discover("swarm", 10, None).await.expect("discover").0, vec![peer(1)]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_that_sends_no_challenge_is_refused_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let silent = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("upgrade");
        // Holds the connection open without a word.
        while ws.next().await.is_some() {}
    });
    let cfg = ClientConfig { challenge_timeout_ms: 200, ..ClientConfig::default() };
    match RendezvousClient::connect_with(&url, signer(1), cfg).await {
        Err(ClientError::ChallengeTimeout { timeout_ms: 200, .. }) => {}
        Err(e) => panic!("expected a challenge timeout, got {e}"),
        Ok(_) => panic!("expected a challenge timeout, got a client"),
    }
    silent.abort();
}

/// Defect: the server disconnected a client whose outbound queue filled, also when what filled
/// it were signals other peers sent it: a flood of offers to a node cut the node off its
/// rendezvous. Relayed signals to a full queue are now dropped; the connection stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signals_to_a_slow_reader_are_dropped_and_its_connection_kept() {
    let server = start(ServerConfig { max_outbound_queue_msgs: 16, ..ServerConfig::default() }).await;
    let url = server.url();
    let (mut victim, nonce) = raw_small_window(&url).await;
    send(&mut victim, &register_json(&peer(1).to_hex(), Some(&sign_register(&key(1), &nonce, "swarm")), 1)).await;
    assert!(matches!(next_msg(&mut victim).await, Some(ServerMsg::Registered { .. })));
    // 300 signals of 30 KB (9 MB) from five peers while the victim reads nothing.
    let payload = "o".repeat(30_000);
    let mut attackers = Vec::new();
    for a in 2..7 {
        let (c, events) = RendezvousClient::connect(&url, signer(a)).await.expect("attacker");
        c.register("junk", 60).await.expect("register");
        for _ in 0..60 {
            c.signal(peer(1), payload.clone()).expect("within the attacker's own budget");
        }
        attackers.push((c, events));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    send(&mut victim, r#"{"type":"ping","id":99}"#).await;
    let mut signals = 0;
    loop {
        match next_msg(&mut victim).await {
            Some(ServerMsg::Signal { .. }) => signals += 1,
            Some(ServerMsg::Pong { id: Some(99) }) => break,
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!("the victim was disconnected after {signals} signals"),
        }
    }
    assert!((16..300).contains(&signals), "{signals} signals delivered, the rest dropped");
    server.shutdown().await;
}
