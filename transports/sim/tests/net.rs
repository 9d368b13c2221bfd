//! The simulated network on its own: handshakes, delivery, crashes, incarnations, partitions, loss.

use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use swarm_engine::transport::{EventSink, Transport, TransportEvent};
use swarm_engine::PeerId;
use swarm_transport_sim::{Latency, NetConfig, SimNet, SimPort};
use tokio::time::{sleep, Instant};

#[derive(Default)]
struct Recorder(RefCell<Vec<(u64, TransportEvent)>>, Option<Instant>);

impl EventSink for Recorder {
    fn deliver(&self, event: TransportEvent) {
        let t = self.1.map_or(0, |e| Instant::now().duration_since(e).as_millis() as u64);
        self.0.borrow_mut().push((t, event));
    }
}

impl Recorder {
    fn take(&self) -> Vec<(u64, TransportEvent)> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

fn pid(i: u8) -> PeerId {
    PeerId([i; 32])
}

struct Fixture {
    net: SimNet,
    ports: Vec<SimPort>,
    recs: Vec<Rc<Recorder>>,
}

fn fixture(n: u8, loss: f64, max_conn: usize) -> Fixture {
    let epoch = Instant::now();
    let cfg = NetConfig { latency: Latency::Constant { ms: 10.0 }, loss, connect_timeout_ms: 3000 };
    let net = SimNet::new(cfg, 1, epoch, 1);
    tokio::task::spawn_local(net.clone().pump());
    let mut ports = vec![];
    let mut recs = vec![];
    for i in 0..n {
        ports.push(net.add_node(u32::from(i), pid(i), max_conn));
        let rec = Rc::new(Recorder(RefCell::new(vec![]), Some(epoch)));
        net.set_inbox(u32::from(i), rec.clone());
        recs.push(rec);
    }
    Fixture { net, ports, recs }
}

fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f);
}

#[test]
fn handshake_then_frames_both_ways() {
    run(async {
        let f = fixture(2, 0.0, 8);
        f.ports[0].connect(pid(1));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(f.recs[1].take(), vec![(10, TransportEvent::Connected { peer: pid(0), outbound: false })]);
        assert_eq!(f.recs[0].take(), vec![(20, TransportEvent::Connected { peer: pid(1), outbound: true })]);
        f.ports[0].send(pid(1), Bytes::from_static(b"hi"));
        f.ports[1].send(pid(0), Bytes::from_static(b"yo"));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(
            f.recs[1].take(),
            vec![(110, TransportEvent::Frame { peer: pid(0), bytes: Bytes::from_static(b"hi") })]
        );
        assert_eq!(
            f.recs[0].take(),
            vec![(110, TransportEvent::Frame { peer: pid(1), bytes: Bytes::from_static(b"yo") })]
        );
        assert_eq!(f.net.connectivity(), (2, 2, 1.0));
    });
}

#[test]
fn dial_to_crashed_node_times_out_and_frames_to_it_vanish() {
    run(async {
        let f = fixture(3, 0.0, 8);
        f.ports[0].connect(pid(1));
        sleep(Duration::from_millis(100)).await;
        f.recs[0].take();
        f.net.crash(1);
        f.ports[0].send(pid(1), Bytes::from_static(b"lost"));
        f.ports[2].connect(pid(1));
        sleep(Duration::from_secs(5)).await;
        assert!(f.recs[0].take().is_empty(), "a crash sends no goodbye");
        assert_eq!(f.recs[2].take(), vec![(3100, TransportEvent::DialFailed { peer: pid(1) })]);
        assert_eq!(f.net.stats().frames_dropped, 1);
        assert_eq!(f.net.connectivity().0, 2);
    });
}

#[test]
fn frame_in_flight_never_reaches_the_next_incarnation() {
    run(async {
        let f = fixture(2, 0.0, 8);
        f.ports[0].connect(pid(1));
        sleep(Duration::from_millis(100)).await;
        f.ports[0].send(pid(1), Bytes::from_static(b"for the old one"));
        f.net.crash(1);
        let _new = f.net.add_node(1, pid(9), 8);
        let rec = Rc::new(Recorder::default());
        f.net.set_inbox(1, rec.clone());
        sleep(Duration::from_millis(100)).await;
        assert!(rec.take().is_empty());
        assert_eq!(f.net.stats().frames_dropped, 1);
    });
}

#[test]
fn close_is_seen_by_both_sides_and_full_nodes_refuse() {
    run(async {
        let f = fixture(3, 0.0, 1);
        f.ports[0].connect(pid(1));
        sleep(Duration::from_millis(100)).await;
        f.ports[2].connect(pid(1));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(f.recs[2].take(), vec![(120, TransportEvent::DialFailed { peer: pid(1) })], "node 1 is full");
        f.recs[0].take();
        f.recs[1].take();
        f.ports[0].disconnect(pid(1));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(f.recs[0].take(), vec![(200, TransportEvent::Disconnected { peer: pid(1) })]);
        assert_eq!(f.recs[1].take(), vec![(210, TransportEvent::Disconnected { peer: pid(0) })]);
    });
}

#[test]
fn partition_drops_frames_and_blocks_dials() {
    run(async {
        let f = fixture(3, 0.0, 8);
        f.ports[0].connect(pid(1));
        sleep(Duration::from_millis(100)).await;
        assert_eq!(f.net.connectivity(), (3, 2, 2.0 / 3.0));
        f.net.set_side(1, 1);
        assert_eq!(f.net.connectivity(), (3, 1, 0.0), "a cut link carries nothing and does not count");
        f.ports[0].send(pid(1), Bytes::from_static(b"x"));
        f.ports[2].connect(pid(1));
        sleep(Duration::from_secs(4)).await;
        assert_eq!(f.net.stats().frames_dropped, 1);
        assert!(f.recs[2].take().iter().any(|(_, e)| *e == TransportEvent::DialFailed { peer: pid(1) }));
    });
}

#[test]
fn loss_rate_is_close_to_configured() {
    run(async {
        let f = fixture(2, 0.2, 8);
        f.ports[0].connect(pid(1));
        sleep(Duration::from_millis(100)).await;
        for _ in 0..5000 {
            f.ports[0].send(pid(1), Bytes::from_static(b"x"));
        }
        sleep(Duration::from_millis(100)).await;
        let s = f.net.stats();
        assert_eq!(s.frames_sent, 5000);
        let lost = s.frames_dropped as f64 / 5000.0;
        assert!((0.17..0.23).contains(&lost), "loss {lost}");
    });
}

/// Links are ordered channels: with jittery latency, frames still arrive in the order sent, and a
/// frame the acceptor sends the moment it sees the link never reaches the dialler before the link.
#[test]
fn frames_keep_their_order_and_never_overtake_the_acceptance() {
    run(async {
        let epoch = Instant::now();
        let cfg =
            NetConfig { latency: Latency::Uniform { min_ms: 1.0, max_ms: 80.0 }, loss: 0.0, connect_timeout_ms: 3000 };
        let net = SimNet::new(cfg, 7, epoch, 1);
        tokio::task::spawn_local(net.clone().pump());
        let ports: Vec<SimPort> = (0..2).map(|i| net.add_node(i, pid(i as u8), 8)).collect();
        let recs: Vec<Rc<Recorder>> = (0..2)
            .map(|i| {
                let rec = Rc::new(Recorder(RefCell::new(vec![]), Some(epoch)));
                net.set_inbox(i, rec.clone());
                rec
            })
            .collect();
        ports[0].connect(pid(1));
        for _ in 0..200 {
            if !recs[1].0.borrow().is_empty() {
                break;
            }
            sleep(Duration::from_micros(100)).await;
        }
        assert!(matches!(recs[1].take()[..], [(_, TransportEvent::Connected { outbound: false, .. })]));
        for i in 0..50u8 {
            ports[1].send(pid(0), Bytes::from(vec![i]));
            ports[0].send(pid(1), Bytes::from(vec![i]));
            sleep(Duration::from_micros(300)).await;
        }
        sleep(Duration::from_secs(1)).await;
        let got = recs[0].take();
        assert!(matches!(got[0].1, TransportEvent::Connected { outbound: true, .. }), "{got:?}");
        let order = |evs: &[(u64, TransportEvent)]| -> Vec<u8> {
            evs.iter()
                .filter_map(|(_, e)| if let TransportEvent::Frame { bytes, .. } = e { Some(bytes[0]) } else { None })
                .collect()
        };
        // The dialler's first frames were sent before it held the link: those are dropped by the
        // sender; every frame the acceptor sent arrives, in order.
        assert_eq!(order(&got[1..]), (0..50).collect::<Vec<u8>>());
        let at_acceptor = order(&recs[1].take());
        assert!(at_acceptor.windows(2).all(|w| w[0] < w[1]) && !at_acceptor.is_empty(), "{at_acceptor:?}");
    });
}

#[test]
fn two_nated_nodes_cannot_link_but_either_links_to_a_public_one() {
    run(async {
        let f = fixture(3, 0.0, 8);
        f.net.set_nat(0, true);
        f.net.set_nat(1, true);
        f.ports[0].connect(pid(1));
        f.ports[1].connect(pid(2));
        f.ports[2].connect(pid(0));
        sleep(Duration::from_secs(5)).await;
        assert_eq!(
            f.recs[0].take(),
            vec![
                (10, TransportEvent::Connected { peer: pid(2), outbound: false }),
                (3000, TransportEvent::DialFailed { peer: pid(1) }),
            ]
        );
        assert_eq!(f.recs[1].take(), vec![(20, TransportEvent::Connected { peer: pid(2), outbound: true })]);
        assert_eq!(f.net.connectivity(), (3, 3, 4.0 / 3.0));
    });
}
