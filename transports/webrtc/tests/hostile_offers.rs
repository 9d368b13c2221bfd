//! Hostile offers on loopback: an offer naming 200 ICE candidates (attacker-chosen ports) gets
//! checks sent to at most `max_remote_candidates` of them; floods of junk and valid-looking
//! offers, from one peer id and from many, are answered only within the offer budget, so the
//! node keeps its rendezvous connection and registration and still answers an honest peer.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_engine::transport::{Transport, TransportEvent};
use swarm_engine::types::PeerId;
use swarm_rendezvous::{
    ErrorCode, MultiConfig, MultiEvent, MultiRendezvous, RendezvousClient, SeedSigner, Server, ServerConfig, Signer,
};
use swarm_transport_webrtc::{Events, Signal, SignalKind, SignalPath, WebRtcConfig, WebRtcTransport};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Capture(Mutex<Vec<Signal>>);

impl SignalPath for Capture {
    fn send(&self, _to: PeerId, signal: &Signal) {
        self.0.lock().unwrap().push(signal.clone());
    }
}

fn transport(id: PeerId, cfg: WebRtcConfig, path: Arc<dyn SignalPath>) -> (WebRtcTransport, Events) {
    WebRtcTransport::new(id, cfg, path, &tokio::runtime::Handle::current()).expect("transport")
}

/// A real offer SDP: a transport dialling a peer that does not exist.
async fn real_offer() -> (String, WebRtcTransport) {
    let capture = Arc::new(Capture::default());
    let (x, _events) = transport(PeerId([0xee; 32]), WebRtcConfig::default(), capture.clone());
    x.connect(PeerId([0xef; 32]));
    let poll = async {
        loop {
            if let Some(s) = capture.0.lock().unwrap().first().cloned() {
                return s.sdp;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    (timeout(WAIT, poll).await.expect("an offer in time"), x)
}

/// Defect: ICE sent checks to every candidate of a remote offer, so one offer could aim this
/// node at 200 ports of the attacker's choosing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_with_200_candidates_gets_checks_to_at_most_the_bound() {
    let (offer, _x) = real_offer().await;
    let mut sockets = Vec::new();
    for _ in 0..200 {
        sockets.push(Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind")));
    }
    let mut sdp: String =
        offer.lines().filter(|l| !l.starts_with("a=candidate:")).map(|l| format!("{l}\r\n")).collect();
    for (i, s) in sockets.iter().enumerate() {
        let port = s.local_addr().expect("addr").port();
        sdp.push_str(&format!("a=candidate:{i} 1 udp 2130706431 127.0.0.1 {port} typ host\r\n"));
    }
    let cfg = WebRtcConfig::default();
    let limit = cfg.max_remote_candidates;
    let (b, _events) = transport(PeerId([2; 32]), cfg, Arc::new(Capture::default()));
    b.deliver_signal(PeerId([9; 32]), Signal { session: 7, kind: SignalKind::Offer, sdp });

    // Which of the 200 ports hear anything within 3 s.
    let hit = Arc::new(Mutex::new(BTreeSet::new()));
    let listeners: Vec<_> = sockets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (s, hit) = (s.clone(), hit.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 1500];
                if timeout(Duration::from_secs(3), s.recv_from(&mut buf)).await.is_ok() {
                    hit.lock().unwrap().insert(i);
                }
            })
        })
        .collect();
    for l in listeners {
        l.await.expect("listener");
    }
    let hit = hit.lock().unwrap().clone();
    assert!(!hit.is_empty(), "ICE checks reach the candidates it kept");
    assert!(hit.len() <= limit, "checks went to {} ports: {hit:?}", hit.len());
    assert!(hit.iter().all(|i| *i < limit), "the first candidates are the ones kept: {hit:?}");
    assert_eq!(b.stats().remote_candidates_dropped, 200 - limit as u64);
}

fn signer(i: u8) -> Arc<dyn Signer> {
    Arc::new(SeedSigner::from_seed(&[i; 32]))
}

/// Attacker `n` of many.
fn numbered(n: u16) -> Arc<dyn Signer> {
    let mut seed = [0xa7; 32];
    seed[..2].copy_from_slice(&n.to_be_bytes());
    Arc::new(SeedSigner::from_seed(&seed))
}

fn id(i: u8) -> PeerId {
    PeerId(signer(i).peer().0)
}

/// Offers and answers through every connected rendezvous server, as `swarm node` wires it.
struct RendezvousPath(Arc<MultiRendezvous>);

impl SignalPath for RendezvousPath {
    fn send(&self, to: PeerId, signal: &Signal) {
        self.0.signal(swarm_rendezvous::PeerId(to.0), &signal.to_json());
    }
}

/// A node as `swarm node` wires one: a transport whose signals go through the rendezvous
/// servers, and what arrives from them goes to the transport. Counts the node's losses of its
/// server and the rate-limit errors it gets.
struct Node {
    t: WebRtcTransport,
    events: Events,
    multi: Arc<MultiRendezvous>,
    disconnects: Arc<AtomicU64>,
    rate_limited: Arc<AtomicU64>,
}

async fn node(url: &str, who: u8, cfg: WebRtcConfig) -> Node {
    let (multi, mut rdv) = MultiRendezvous::start(vec![url.to_owned()], signer(who), MultiConfig::default());
    let multi = Arc::new(multi);
    let connected = async {
        while multi.connected().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    timeout(WAIT, connected).await.expect("connected to the rendezvous");
    assert_eq!(multi.register("swarm", 60).await.expect("register"), 1);
    let (t, events) = transport(id(who), cfg, Arc::new(RendezvousPath(multi.clone())));
    let (disconnects, rate_limited) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (tt, d, r) = (t.clone(), disconnects.clone(), rate_limited.clone());
    tokio::spawn(async move {
        while let Some(ev) = rdv.recv().await {
            match ev {
                MultiEvent::Signal { from, payload, .. } => {
                    if let Ok(s) = Signal::from_json(payload.as_bytes(), 64 * 1024) {
                        tt.deliver_signal(PeerId(from.0), s);
                    }
                }
                MultiEvent::Disconnected { .. } => drop(d.fetch_add(1, Ordering::SeqCst)),
                MultiEvent::Error { code: ErrorCode::RateLimited, .. } => drop(r.fetch_add(1, Ordering::SeqCst)),
                _ => {}
            }
        }
    });
    Node { t, events, multi, disconnects, rate_limited }
}

/// `n` offers to `to` from the attacker on `client`, `valid` of them with a real SDP.
fn offers(client: &RendezvousClient, to: PeerId, sdp: &str, n: u64, valid: u64, first_session: u64) -> usize {
    (0..n)
        .filter(|i| {
            let sdp = if *i < valid { sdp.to_owned() } else { format!("junk {i}") };
            let s = Signal { session: first_session + i, kind: SignalKind::Offer, sdp };
            client.signal(swarm_rendezvous::PeerId(to.0), s.to_json()).is_ok()
        })
        .count()
}

/// Defect: 300 junk offers were all answered; the answers went out through the node's own
/// rendezvous connection, tripped the server's per-connection rate limit and the server closed
/// the node's connection (its registration went with it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_flood_is_answered_within_the_budget_and_the_node_keeps_its_rendezvous() {
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"), ServerConfig::default()).await.expect("bind");
    let server = server.spawn();
    let url = server.url();
    // Answers that never open give their slot back after 3 s.
    let cfg = WebRtcConfig { dial_timeout_ms: 3_000, ..WebRtcConfig::default() };
    let mut n = node(&url, 1, cfg.clone()).await;
    let (sdp, _x) = real_offer().await;

    // One id, 300 offers (over 5 connections, each within its own budget), 2 of 3 valid-looking,
    // 1 of 3 junk SDP.
    let mut one_id = Vec::new();
    for _ in 0..5 {
        let (c, e) = RendezvousClient::connect(&url, signer(50)).await.expect("attacker");
        c.register("junk", 60).await.expect("attacker registers");
        one_id.push((c, e));
    }
    let start = Instant::now();
    let sent: usize =
        one_id.iter().enumerate().map(|(k, (c, _))| offers(c, n.t.local_peer(), &sdp, 60, 40, k as u64 * 1000)).sum();
    assert_eq!(sent, 300, "the attacker's own budget let every offer out");
    let settle = async {
        while n.t.stats().signals_in < 300 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(WAIT, settle).await.unwrap_or_else(|_| panic!("300 offers arrive: {:?}", n.t.stats()));
    let s = n.t.stats();
    assert!(s.offers_answered <= u64::from(cfg.peer_offer_burst), "one peer's answers: {s:?}");
    assert_eq!(s.signals_refused, 100, "junk SDP is refused before costing anything: {s:?}");
    assert_eq!(s.offers_answered + s.offers_refused, 200, "{s:?}");

    // Many ids: 300 attackers, one valid-looking offer each (what the live probe sent).
    let mut many = Vec::new();
    for who in 0..300u16 {
        let (c, e) = RendezvousClient::connect(&url, numbered(who)).await.expect("attacker");
        c.register("junk", 60).await.expect("attacker registers");
        many.push((c, e));
    }
    let before = n.t.stats();
    let sent: usize = many.iter().map(|(c, _)| offers(c, n.t.local_peer(), &sdp, 1, 1, 0)).sum();
    assert_eq!(sent, 300);
    let settle = async {
        while n.t.stats().signals_in < 600 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(WAIT, settle).await.unwrap_or_else(|_| panic!("600 offers arrive: {:?}", n.t.stats()));
    let s = n.t.stats();
    let elapsed_s = start.elapsed().as_secs() + 1;
    let budget = u64::from(cfg.offer_burst) + u64::from(cfg.offer_rate_per_sec) * elapsed_s;
    assert!(s.offers_answered <= budget, "answered {} in {elapsed_s} s, budget {budget}: {s:?}", s.offers_answered);
    assert!(s.offers_answered - before.offers_answered <= cfg.max_pending_answers as u64, "{s:?}");

    // The node kept its server: never cut off, never over its budget there, still listed.
    assert_eq!(n.disconnects.load(Ordering::SeqCst), 0, "the node lost its rendezvous");
    assert_eq!(n.rate_limited.load(Ordering::SeqCst), 0, "the node went over the server's rate");
    let (observer, _e) = RendezvousClient::connect(&url, signer(9)).await.expect("observer");
    let listed = observer.discover("swarm", 10, None).await.expect("discover").0;
    assert_eq!(listed, vec![signer(1).peer()], "the node is still registered");

    // Once the junk answers have timed out, an honest peer's offer is answered.
    tokio::time::sleep(Duration::from_millis(cfg.dial_timeout_ms + 500)).await;
    let mut honest = node(&url, 2, cfg).await;
    honest.t.connect(n.t.local_peer());
    let opened = async {
        loop {
            match honest.events.recv().await {
                Some(TransportEvent::Connected { peer, .. }) => return peer,
                Some(TransportEvent::DialFailed { peer }) => panic!("dial to {peer:?} failed: {:?}", n.t.stats()),
                Some(_) => continue,
                None => panic!("transport stopped"),
            }
        }
    };
    assert_eq!(timeout(WAIT, opened).await.expect("connected in time"), n.t.local_peer());
    let inbound = async {
        loop {
            if let Some(TransportEvent::Connected { peer, outbound: false }) = n.events.recv().await {
                return peer;
            }
        }
    };
    assert_eq!(timeout(WAIT, inbound).await.expect("the node saw it"), honest.t.local_peer());
    assert_eq!(n.multi.connected(), vec![url.clone()]);
    assert_eq!(n.disconnects.load(Ordering::SeqCst), 0);
    drop(one_id);
    drop(many);
    server.shutdown().await;
}
