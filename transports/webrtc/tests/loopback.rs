//! Two or three transports in one process on 127.0.0.1, signaling through an in-memory hub that
//! can be switched off (to prove mesh signaling). Every wait is bounded.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swarm_engine::transport::{Transport, TransportEvent};
use swarm_engine::types::PeerId;
use swarm_transport_webrtc::{Events, Signal, SignalPath, WebRtcConfig, WebRtcTransport};

use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Hub {
    nodes: Mutex<HashMap<PeerId, WebRtcTransport>>,
    down: AtomicBool,
    /// Peers the hub carries nothing to (as if not registered there).
    unreachable: Mutex<Vec<PeerId>>,
}

struct HubPath {
    me: PeerId,
    hub: Arc<Hub>,
}

impl SignalPath for HubPath {
    fn send(&self, to: PeerId, signal: &Signal) {
        if self.hub.down.load(Ordering::SeqCst) || self.hub.unreachable.lock().unwrap().contains(&to) {
            return;
        }
        let target = self.hub.nodes.lock().unwrap().get(&to).cloned();
        if let Some(t) = target {
            t.deliver_signal(self.me, signal.clone());
        }
    }
}

struct Node {
    t: WebRtcTransport,
    ev: Events,
    id: PeerId,
}

fn cfg() -> WebRtcConfig {
    WebRtcConfig { dial_timeout_ms: 5_000, ..WebRtcConfig::default() }
}

fn node(hub: &Arc<Hub>, byte: u8, cfg: WebRtcConfig) -> Node {
    let id = PeerId([byte; 32]);
    let path = Arc::new(HubPath { me: id, hub: hub.clone() });
    let (t, ev) = WebRtcTransport::new(id, cfg, path, &tokio::runtime::Handle::current()).unwrap();
    hub.nodes.lock().unwrap().insert(id, t.clone());
    Node { t, ev, id }
}

async fn next(n: &mut Node) -> TransportEvent {
    timeout(WAIT, n.ev.recv()).await.expect("event in time").expect("event channel open")
}

async fn connected(n: &mut Node, peer: PeerId) -> bool {
    match next(n).await {
        TransportEvent::Connected { peer: p, outbound } if p == peer => outbound,
        other => panic!("expected Connected from {peer:?}, got {other:?}"),
    }
}

async fn frame(n: &mut Node, peer: PeerId) -> Bytes {
    match next(n).await {
        TransportEvent::Frame { peer: p, bytes } if p == peer => bytes,
        other => panic!("expected a frame from {peer:?}, got {other:?}"),
    }
}

/// Nothing more arrives within `d`.
async fn quiet(n: &mut Node, d: Duration) {
    if let Ok(Some(ev)) = timeout(d, n.ev.recv()).await {
        panic!("unexpected event {ev:?}");
    }
}

async fn link(a: &mut Node, b: &mut Node) {
    a.t.connect(b.id);
    assert!(connected(a, b.id).await, "the dialler reports outbound");
    assert!(!connected(b, a.id).await, "the answerer reports inbound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_flow_both_ways_and_large_frames_reassemble() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()));
    link(&mut a, &mut b).await;
    a.t.send(b.id, Bytes::from_static(b"hello b"));
    b.t.send(a.id, Bytes::from_static(b"hello a"));
    assert_eq!(frame(&mut b, a.id).await, Bytes::from_static(b"hello b"));
    assert_eq!(frame(&mut a, b.id).await, Bytes::from_static(b"hello a"));
    let big: Bytes = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>().into();
    a.t.send(b.id, big.clone());
    a.t.send(b.id, Bytes::new());
    assert_eq!(frame(&mut b, a.id).await, big, "1 MiB frame intact");
    assert_eq!(frame(&mut b, a.id).await, Bytes::new(), "empty frame after it, in order");
    let s = b.t.stats();
    assert_eq!((s.frames_in, s.bytes_in), (3, 7 + 1024 * 1024));
    assert_eq!(a.t.stats().frames_out, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_is_seen_once_by_each_side() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()));
    link(&mut a, &mut b).await;
    a.t.connect(b.id); // already connected: ignored
    a.t.disconnect(b.id);
    assert_eq!(next(&mut a).await, TransportEvent::Disconnected { peer: b.id });
    assert_eq!(next(&mut b).await, TransportEvent::Disconnected { peer: a.id });
    quiet(&mut a, Duration::from_millis(500)).await;
    quiet(&mut b, Duration::from_millis(500)).await;
    // And they can link again.
    link(&mut b, &mut a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_to_a_silent_peer_fails_after_the_timeout() {
    let hub = Arc::new(Hub::default());
    let mut a = node(&hub, 1, WebRtcConfig { dial_timeout_ms: 400, ..cfg() });
    let ghost = PeerId([9; 32]);
    let start = std::time::Instant::now();
    a.t.connect(ghost);
    a.t.connect(ghost); // dialling: ignored
    assert_eq!(next(&mut a).await, TransportEvent::DialFailed { peer: ghost });
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(3), "{took:?}");
    quiet(&mut a, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glare_resolves_to_one_connection() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()));
    a.t.connect(b.id);
    b.t.connect(a.id);
    // Both asked to dial, so both report outbound; each sees exactly one Connected.
    assert!(connected(&mut a, b.id).await);
    assert!(connected(&mut b, a.id).await);
    a.t.send(b.id, Bytes::from_static(b"x"));
    assert_eq!(frame(&mut b, a.id).await, Bytes::from_static(b"x"));
    quiet(&mut a, Duration::from_millis(700)).await;
    quiet(&mut b, Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_travel_through_the_mesh_when_the_server_is_down() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b, mut c) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()), node(&hub, 3, cfg()));
    link(&mut a, &mut b).await;
    link(&mut b, &mut c).await;
    hub.down.store(true, Ordering::SeqCst);
    a.t.connect(c.id);
    assert!(connected(&mut a, c.id).await);
    assert!(!connected(&mut c, a.id).await);
    c.t.send(a.id, Bytes::from_static(b"via mesh"));
    assert_eq!(frame(&mut a, c.id).await, Bytes::from_static(b"via mesh"));
    let relay = b.t.stats();
    assert!(relay.relayed >= 2, "offer and answer relayed by b: {relay:?}");
    assert!(a.t.stats().relays_sent >= 1 && c.t.stats().relays_sent >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_reassembly_closes_the_link() {
    let hub = Arc::new(Hub::default());
    let mut a = node(&hub, 1, cfg());
    let mut b = node(&hub, 2, WebRtcConfig { max_frame_bytes: 300 * 1024, ..cfg() });
    link(&mut a, &mut b).await;
    a.t.send(b.id, Bytes::from(vec![7u8; 1024 * 1024]));
    assert_eq!(next(&mut b).await, TransportEvent::Disconnected { peer: a.id });
    assert_eq!(next(&mut a).await, TransportEvent::Disconnected { peer: b.id });
    assert_eq!(b.t.stats().protocol_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gets_its_pong() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()));
    let mut pongs = a.t.take_pongs().unwrap();
    assert!(a.t.take_pongs().is_none());
    link(&mut a, &mut b).await;
    a.t.ping(b.id, Bytes::from_static(b"echo me"));
    let (from, body) = timeout(WAIT, pongs.recv()).await.unwrap().unwrap();
    assert_eq!((from, body), (b.id, Bytes::from_static(b"echo me")));
    assert_eq!(b.t.stats().pings_in, 1);
    quiet(&mut b, Duration::from_millis(100)).await; // pings are not frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_replaces_its_old_connection() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()));
    link(&mut b, &mut a).await;
    // b restarts without a goodbye: a new transport under the same id dials a.
    let mut b2 = node(&hub, 2, cfg());
    b2.t.connect(a.id);
    assert!(connected(&mut b2, a.id).await);
    assert_eq!(next(&mut a).await, TransportEvent::Disconnected { peer: b.id });
    assert!(!connected(&mut a, b.id).await);
    a.t.send(b.id, Bytes::from_static(b"new"));
    assert_eq!(frame(&mut b2, a.id).await, Bytes::from_static(b"new"));
    assert_eq!(next(&mut b).await, TransportEvent::Disconnected { peer: a.id }, "the old b sees its link go");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_instead_of_growing() {
    let hub = Arc::new(Hub::default());
    let small = WebRtcConfig { max_queued_bytes: 1024 * 1024, send_buffer_limit_bytes: 256 * 1024, ..cfg() };
    let (mut a, mut b) = (node(&hub, 1, small), node(&hub, 2, cfg()));
    link(&mut a, &mut b).await;
    let frames = 64u8;
    for i in 0..frames {
        a.t.send(b.id, Bytes::from(vec![i; 200 * 1024]));
    }
    // Counters settle once the driver has seen every send.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = a.t.stats();
    assert!(s.frames_dropped > 0, "64 x 200 KiB cannot fit a 1 MiB queue: {s:?}");
    assert_eq!(s.frames_out + s.frames_dropped, frames as u64);
    let mut last = None;
    for _ in 0..s.frames_out {
        let f = frame(&mut b, a.id).await;
        assert_eq!(f.len(), 200 * 1024);
        assert!(last < Some(f[0]), "frames arrive in order, whole");
        last = Some(f[0]);
    }
    quiet(&mut b, Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_many_reaches_every_peer() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b, mut c) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()), node(&hub, 3, cfg()));
    link(&mut a, &mut b).await;
    link(&mut a, &mut c).await;
    a.t.send_many(&[b.id, c.id], Bytes::from_static(b"all"));
    assert_eq!(frame(&mut b, a.id).await, Bytes::from_static(b"all"));
    assert_eq!(frame(&mut c, a.id).await, Bytes::from_static(b"all"));
}

#[derive(Default)]
struct Capture(Mutex<Vec<Signal>>);

impl SignalPath for Capture {
    fn send(&self, _to: PeerId, signal: &Signal) {
        self.0.lock().unwrap().push(signal.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_forged_in_an_open_peers_name_leaves_the_link_alone() {
    let hub = Arc::new(Hub::default());
    let quick = WebRtcConfig { dial_timeout_ms: 800, ..cfg() };
    let (mut a, mut b) = (node(&hub, 1, quick.clone()), node(&hub, 2, quick));
    link(&mut a, &mut b).await;
    // A real offer, made by a third party dialling nobody.
    let capture = Arc::new(Capture::default());
    let (x, _xev) =
        WebRtcTransport::new(PeerId([7; 32]), cfg(), capture.clone(), &tokio::runtime::Handle::current()).unwrap();
    x.connect(PeerId([8; 32]));
    let offer = loop {
        if let Some(s) = capture.0.lock().unwrap().first().cloned() {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    a.t.deliver_signal(b.id, offer);
    // The would-be replacement never opens and times out; the link and its events are untouched.
    quiet(&mut a, Duration::from_millis(1500)).await;
    quiet(&mut b, Duration::from_millis(10)).await;
    a.t.send(b.id, Bytes::from_static(b"still here"));
    assert_eq!(frame(&mut b, a.id).await, Bytes::from_static(b"still here"));
}

/// A node that does not take its events holds up the sender, loses nothing, and gets every
/// frame in order once it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_pushes_back_instead_of_buffering_without_bound() {
    let hub = Arc::new(Hub::default());
    let small = WebRtcConfig { max_frame_bytes: 64 * 1024, max_undelivered_bytes: 128 * 1024, ..cfg() };
    let (mut a, mut b) = (node(&hub, 1, cfg()), node(&hub, 2, small));
    link(&mut a, &mut b).await;
    const FRAMES: u32 = 256;
    let body = |i: u32| -> Bytes { (0..32 * 1024u32).map(|j| (i ^ j) as u8).collect::<Vec<_>>().into() };
    for i in 0..FRAMES {
        a.t.send(b.id, body(i));
    }
    // b reads nothing for a while: at most 128 KiB of frames (4 of 32 KiB) wait for it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = b.t.stats().frames_in;
    assert!(held <= 4, "{held} frames handed over past the 128 KiB bound");
    assert!(a.t.stats().frames_out == u64::from(FRAMES), "the sender queued them all");
    for i in 0..FRAMES {
        assert_eq!(frame(&mut b, a.id).await, body(i), "frame {i} intact and in order");
    }
    assert_eq!(b.t.stats().frames_in, u64::from(FRAMES));
    assert_eq!(a.t.stats().frames_dropped, 0);
}

/// A node that dials before it has any link (a restart, with the target known only from its
/// registry): the offer goes through the mesh as soon as a first link opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_offer_is_relayed_through_a_link_that_opens_later() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b, mut c) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()), node(&hub, 3, cfg()));
    link(&mut b, &mut c).await;
    hub.unreachable.lock().unwrap().push(c.id);
    a.t.connect(c.id); // no path to c: the server cannot reach it and a has no links
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.t.connect(b.id);
    assert!(connected(&mut a, b.id).await);
    assert!(!connected(&mut b, a.id).await);
    assert!(connected(&mut a, c.id).await, "the dial to c completed through b");
    assert!(!connected(&mut c, a.id).await);
    assert!(b.t.stats().relayed >= 2, "b carried the offer and the answer: {:?}", b.t.stats());
}

/// Glare where the winning offer was lost (its target was not reachable yet): the winner sends
/// it again on seeing the loser's offer, instead of both waiting for their dial timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glare_whose_winning_offer_was_lost_still_connects_before_the_timeouts() {
    let hub = Arc::new(Hub::default());
    let (mut a, mut b) = (node(&hub, 1, cfg()), node(&hub, 2, cfg()));
    hub.unreachable.lock().unwrap().push(b.id);
    a.t.connect(b.id); // lost: b cannot be reached yet
    tokio::time::sleep(Duration::from_millis(300)).await;
    hub.unreachable.lock().unwrap().clear();
    b.t.connect(a.id); // a's id is lower: a's offer wins the glare
    let quick = Duration::from_millis(cfg().dial_timeout_ms / 2);
    let up = |ev: Option<TransportEvent>, peer: PeerId| matches!(ev, Some(TransportEvent::Connected { peer: p, .. }) if p == peer);
    assert!(up(timeout(quick, a.ev.recv()).await.expect("a linked before the dial timeout"), b.id));
    assert!(up(timeout(quick, b.ev.recv()).await.expect("b linked before the dial timeout"), a.id));
}

/// The answer to a relayed offer goes back through the peer that relayed it (linked to the
/// dialler), even when the answerer has closer links in the XOR metric that are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_returns_through_the_peer_that_relayed_the_offer() {
    let hub = Arc::new(Hub::default());
    let mut a = node(&hub, 0x01, cfg());
    let mut b = node(&hub, 0xF0, cfg());
    let mut c = node(&hub, 0x80, cfg());
    // c's other links are all XOR-closer to a than b is, and none of them is linked to a.
    let mut others: Vec<Node> = [0x02u8, 0x03, 0x04].iter().map(|&x| node(&hub, x, cfg())).collect();
    link(&mut a, &mut b).await;
    link(&mut b, &mut c).await;
    for o in others.iter_mut() {
        link(o, &mut c).await;
    }
    hub.down.store(true, Ordering::SeqCst);
    a.t.connect(c.id);
    assert!(connected(&mut a, c.id).await, "the answer came back through b");
    assert!(!connected(&mut c, a.id).await);
    assert!(b.t.stats().relayed >= 2, "{:?}", b.t.stats());
}
