//! The simulated network. One event queue ordered by (delivery time, sequence number) holds every
//! frame and handshake step in flight; a single pump task delivers them under tokio's paused clock.
//! Nodes are addressed as (slot, incarnation): a slot is reused when a crashed node is replaced,
//! and anything addressed to the old incarnation is dropped on arrival.

use crate::latency::Latency;
use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::collections::BinaryHeap;
use std::rc::Rc;
use swarm_engine::transport::EventSink;
use swarm_engine::transport::{Transport, TransportEvent};
use swarm_engine::PeerId;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A node's network address: slot and incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Addr {
    pub slot: u32,
    pub inc: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NetConfig {
    pub latency: Latency,
    /// Probability that one frame is lost.
    pub loss: f64,
    /// A dial to a dead or unreachable node fails after this long.
    pub connect_timeout_ms: u64,
}

/// Counters of what the network carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub frames_sent: u64,
    pub frames_delivered: u64,
    pub bytes_delivered: u64,
    /// Lost, partitioned, or addressed to a dead node or a closed link.
    pub frames_dropped: u64,
    pub dials: u64,
    pub dials_failed: u64,
}

enum Step {
    Frame {
        from: Addr,
        peer: PeerId,
        to: Addr,
        bytes: Bytes,
        fp: [u8; 8],
    },
    /// A dial reaches its target.
    DialArrive {
        from: Addr,
        from_peer: PeerId,
        to: Addr,
        to_peer: PeerId,
        started_us: u64,
    },
    /// The target's acceptance reaches the dialler.
    DialAccepted {
        dialer: Addr,
        peer: PeerId,
        acceptor: Addr,
    },
    DialFailed {
        dialer: Addr,
        peer: PeerId,
    },
    /// A close notice reaches the other side.
    Closed {
        from_peer: PeerId,
        to: Addr,
    },
}

struct Queued {
    at_us: u64,
    seq: u64,
    step: Step,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at_us, self.seq) == (o.at_us, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // Min-heap on (time, seq).
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.at_us, o.seq).cmp(&(self.at_us, self.seq))
    }
}

struct Slot {
    inc: u32,
    alive: bool,
    peer: PeerId,
    inbox: Option<Rc<dyn EventSink>>,
    max_connections: usize,
    side: u8,
    /// Behind a NAT: cannot accept a link dialled by another NATed node.
    nat: bool,
    /// Left out of connectivity (an adversary: the honest swarm is what must stay whole).
    unobserved: bool,
    /// This node's half of each link: remote peer -> remote address and ordering state.
    /// Looked up per frame; iterated only where order cannot matter (connectivity's union-find).
    links: FxHashMap<PeerId, Link>,
    dialing: FxHashSet<PeerId>,
    /// When this incarnation first held `join_k` links.
    joined_at_us: Option<u64>,
    born_us: u64,
}

/// One direction of a link, as the sending side holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Link {
    to: Addr,
    /// Earliest arrival time of the next frame sent on this link. Links are ordered and reliable
    /// channels (as WebRTC data channels in ordered mode are): a frame never overtakes the one
    /// before it, nor, on the accepting side, the acceptance that opens the link at the dialler.
    not_before_us: u64,
}

struct State {
    cfg: NetConfig,
    epoch: Instant,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Queued>,
    seq: u64,
    slots: Vec<Slot>,
    /// Current address of every identity ever registered (dead ones stay: dials to them time out).
    directory: FxHashMap<PeerId, Addr>,
    digest: Sha256,
    stats: NetStats,
    join_k: usize,
    join_times_us: Vec<u64>,
    /// Deadline the pump sleeps until; a push before it wakes the pump.
    pump_deadline: Option<u64>,
}

/// The network shared by all simulated nodes of one run (single-threaded).
#[derive(Clone)]
pub struct SimNet {
    state: Rc<RefCell<State>>,
    wake: Rc<Notify>,
}

impl SimNet {
    pub fn new(cfg: NetConfig, seed: u64, epoch: Instant, join_k: usize) -> Self {
        let state = State {
            cfg,
            epoch,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            slots: Vec::new(),
            directory: FxHashMap::default(),
            digest: Sha256::new(),
            stats: NetStats::default(),
            join_k,
            join_times_us: Vec::new(),
            pump_deadline: None,
        };
        SimNet { state: Rc::new(RefCell::new(state)), wake: Rc::new(Notify::new()) }
    }

    /// Register a new node (a new slot, or a new incarnation of a dead slot) and return its port.
    pub fn add_node(&self, slot: u32, peer: PeerId, max_connections: usize) -> SimPort {
        let mut s = self.state.borrow_mut();
        let now = s.now_us();
        let idx = slot as usize;
        if idx >= s.slots.len() {
            s.slots.resize_with(idx + 1, || Slot {
                inc: 0,
                alive: false,
                peer: PeerId([0; 32]),
                inbox: None,
                max_connections: 0,
                side: 0,
                nat: false,
                unobserved: false,
                links: FxHashMap::default(),
                dialing: FxHashSet::default(),
                joined_at_us: None,
                born_us: 0,
            });
        }
        let sl = &mut s.slots[idx];
        assert!(!sl.alive, "slot {slot} is occupied");
        sl.inc += 1;
        sl.alive = true;
        sl.peer = peer;
        sl.inbox = None;
        sl.max_connections = max_connections;
        sl.nat = false;
        sl.unobserved = false;
        sl.links.clear();
        sl.dialing.clear();
        sl.joined_at_us = None;
        sl.born_us = now;
        let addr = Addr { slot, inc: sl.inc };
        s.directory.insert(peer, addr);
        SimPort { net: self.clone(), me: addr, peer }
    }

    pub fn set_inbox(&self, slot: u32, inbox: Rc<dyn EventSink>) {
        self.state.borrow_mut().slots[slot as usize].inbox = Some(inbox);
    }

    /// Crash a node: it vanishes without a goodbye; peers find out through their own failure
    /// detection. Its inbox (and with it the last handles to its actors) is dropped.
    pub fn crash(&self, slot: u32) {
        let mut s = self.state.borrow_mut();
        let sl = &mut s.slots[slot as usize];
        sl.alive = false;
        sl.inbox = None;
        sl.links.clear();
        sl.dialing.clear();
    }

    /// Put a node behind a NAT (or not): two NATed nodes cannot link directly (a dial between
    /// them fails at the connect timeout, as ICE would with no path).
    pub fn set_nat(&self, slot: u32, nat: bool) {
        self.state.borrow_mut().slots[slot as usize].nat = nat;
    }

    /// Leave the node in `slot` out of connectivity (or count it again).
    pub fn set_unobserved(&self, slot: u32, unobserved: bool) {
        self.state.borrow_mut().slots[slot as usize].unobserved = unobserved;
    }

    /// Put a node on a side of a partition (0 = everyone together).
    pub fn set_side(&self, slot: u32, side: u8) {
        self.state.borrow_mut().slots[slot as usize].side = side;
    }

    pub fn stats(&self) -> NetStats {
        self.state.borrow().stats.clone()
    }

    /// SHA-256 over every delivery (time, endpoints, kind, content fingerprint), in order.
    pub fn digest(&self) -> [u8; 32] {
        self.state.borrow().digest.clone().finalize().into()
    }

    /// Join times recorded so far (microseconds from a node's start to holding `join_k` links).
    pub fn join_times_us(&self) -> Vec<u64> {
        self.state.borrow().join_times_us.clone()
    }

    /// Live nodes younger than `min_age_us` excluded, how many never reached `join_k` links.
    pub fn unjoined(&self, min_age_us: u64) -> usize {
        let s = self.state.borrow();
        let now = s.now_us();
        s.slots.iter().filter(|sl| sl.alive && sl.joined_at_us.is_none() && now - sl.born_us >= min_age_us).count()
    }

    /// Connectivity of the overlay: (live nodes, size of the largest connected component, mean
    /// degree). A link counts when both ends are alive, both hold it, and no partition cuts it.
    pub fn connectivity(&self) -> (usize, usize, f64) {
        self.state.borrow().connectivity()
    }

    /// Deliver queued steps as their time comes; never returns (spawn it, drop it with the runtime).
    pub async fn pump(self) {
        loop {
            let next = {
                let mut s = self.state.borrow_mut();
                let now = s.now_us();
                while s.queue.peek().is_some_and(|q| q.at_us <= now) {
                    if let Some(q) = s.queue.pop() {
                        s.deliver(q);
                    }
                }
                let next = s.queue.peek().map(|q| q.at_us);
                s.pump_deadline = next;
                next
            };
            match next {
                Some(at) => {
                    let when = self.state.borrow().epoch + std::time::Duration::from_micros(at);
                    tokio::select! {
                        biased;
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep_until(when) => {}
                    }
                }
                None => self.wake.notified().await,
            }
        }
    }
}

impl State {
    fn now_us(&self) -> u64 {
        Instant::now().saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// Queue a step; returns whether the pump must wake (the step is due before its deadline).
    fn push(&mut self, at_us: u64, step: Step) -> bool {
        self.seq += 1;
        self.queue.push(Queued { at_us, seq: self.seq, step });
        self.pump_deadline.is_none_or(|d| at_us < d)
    }

    fn latency_us(&mut self) -> u64 {
        let lat = self.cfg.latency.clone();
        lat.sample_us(&mut self.rng).max(1)
    }

    /// The live slot at `addr`, if that incarnation is still the one running there.
    fn live(&self, addr: Addr) -> Option<&Slot> {
        self.slots.get(addr.slot as usize).filter(|s| s.alive && s.inc == addr.inc)
    }

    fn live_mut(&mut self, addr: Addr) -> Option<&mut Slot> {
        self.slots.get_mut(addr.slot as usize).filter(|s| s.alive && s.inc == addr.inc)
    }

    fn record(&mut self, at_us: u64, kind: u8, from: Addr, to: Addr, fp: &[u8; 8]) {
        let mut rec = [0u8; 8 + 1 + 16 + 8];
        rec[..8].copy_from_slice(&at_us.to_le_bytes());
        rec[8] = kind;
        rec[9..13].copy_from_slice(&from.slot.to_le_bytes());
        rec[13..17].copy_from_slice(&from.inc.to_le_bytes());
        rec[17..21].copy_from_slice(&to.slot.to_le_bytes());
        rec[21..25].copy_from_slice(&to.inc.to_le_bytes());
        rec[25..].copy_from_slice(fp);
        self.digest.update(rec);
    }

    fn event(&self, to: Addr, ev: TransportEvent) {
        if let Some(inbox) = self.live(to).and_then(|s| s.inbox.as_ref()) {
            inbox.deliver(ev);
        }
    }

    fn note_link_added(&mut self, addr: Addr) {
        let now = self.now_us();
        let k = self.join_k;
        if let Some(sl) = self.live_mut(addr) {
            if sl.joined_at_us.is_none() && sl.links.len() >= k {
                sl.joined_at_us = Some(now);
                let t = now - sl.born_us;
                self.join_times_us.push(t);
            }
        }
    }

    fn deliver(&mut self, q: Queued) {
        let now = q.at_us;
        match q.step {
            Step::Frame { from, peer, to, bytes, fp } => {
                // Delivered only on a link the receiver still holds to that very incarnation.
                let ok = self.live(to).is_some_and(|s| s.links.get(&peer).is_some_and(|l| l.to == from));
                if !ok {
                    self.stats.frames_dropped += 1;
                    return;
                }
                self.record(now, 0, from, to, &fp);
                self.stats.frames_delivered += 1;
                self.stats.bytes_delivered += bytes.len() as u64;
                self.event(to, TransportEvent::Frame { peer, bytes });
            }
            Step::DialArrive { from, from_peer, to, to_peer, started_us } => {
                let timeout_us = self.cfg.connect_timeout_ms * 1000;
                let dialer_nat = self.live(from).is_some_and(|d| d.nat);
                let dialer_alive = self.live(from).is_some();
                let Some(target) = self.live(to).filter(|t| !(t.nat && dialer_nat)) else {
                    // Nobody answers (dead, or both behind NATs): the dialler gives up at its
                    // connect timeout.
                    let at = (started_us + timeout_us).max(now);
                    self.push(at, Step::DialFailed { dialer: from, peer: to_peer });
                    return;
                };
                let target_peer = target.peer;
                let full = target.links.len() >= target.max_connections;
                let already = target.links.contains_key(&from_peer);
                let lat = self.latency_us();
                if !dialer_alive {
                    return;
                }
                if full && !already {
                    self.push(now + lat, Step::DialFailed { dialer: from, peer: target_peer });
                    return;
                }
                self.record(now, 1, from, to, &[0; 8]);
                if !already {
                    if let Some(sl) = self.live_mut(to) {
                        sl.links.insert(from_peer, Link { to: from, not_before_us: now + lat });
                        sl.dialing.remove(&from_peer);
                    }
                    self.note_link_added(to);
                    self.event(to, TransportEvent::Connected { peer: from_peer, outbound: false });
                }
                self.push(now + lat, Step::DialAccepted { dialer: from, peer: target_peer, acceptor: to });
            }
            Step::DialAccepted { dialer, peer, acceptor } => {
                let Some(sl) = self.live_mut(dialer) else {
                    return;
                };
                sl.dialing.remove(&peer);
                if sl.links.contains_key(&peer) {
                    return; // both dialled each other: the link exists already
                }
                sl.links.insert(peer, Link { to: acceptor, not_before_us: 0 });
                self.record(now, 2, acceptor, dialer, &[0; 8]);
                self.note_link_added(dialer);
                self.event(dialer, TransportEvent::Connected { peer, outbound: true });
            }
            Step::DialFailed { dialer, peer } => {
                let Some(sl) = self.live_mut(dialer) else {
                    return;
                };
                sl.dialing.remove(&peer);
                if sl.links.contains_key(&peer) {
                    return;
                }
                self.stats.dials_failed += 1;
                self.record(now, 3, dialer, dialer, &[0; 8]);
                self.event(dialer, TransportEvent::DialFailed { peer });
            }
            Step::Closed { from_peer, to } => {
                let Some(sl) = self.live_mut(to) else { return };
                if sl.links.remove(&from_peer).is_some() {
                    self.record(now, 4, to, to, &[0; 8]);
                    self.event(to, TransportEvent::Disconnected { peer: from_peer });
                }
            }
        }
    }

    /// (observed live nodes, largest connected component among them, their mean degree).
    fn connectivity(&self) -> (usize, usize, f64) {
        let n = self.slots.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        let mut live = 0usize;
        let mut degree_sum = 0usize;
        for (i, sl) in self.slots.iter().enumerate() {
            if !sl.alive || sl.unobserved {
                continue;
            }
            live += 1;
            for link in sl.links.values() {
                let addr = &link.to;
                let Some(other) = self.live(*addr) else {
                    continue;
                };
                // A link counts only if it can carry a frame: held at both ends, not cut, and
                // (with adversaries) between observed nodes.
                if !other.links.contains_key(&sl.peer) || other.side != sl.side || other.unobserved {
                    continue;
                }
                degree_sum += 1;
                let (a, b) = (find(&mut parent, i), find(&mut parent, addr.slot as usize));
                if a != b {
                    parent[a] = b;
                }
            }
        }
        let mut size = vec![0usize; n];
        let mut largest = 0;
        for i in 0..n {
            if self.slots[i].alive && !self.slots[i].unobserved {
                let r = find(&mut parent, i);
                size[r] += 1;
                largest = largest.max(size[r]);
            }
        }
        let mean_degree = if live == 0 { 0.0 } else { degree_sum as f64 / live as f64 };
        (live, largest, mean_degree)
    }
}

/// One node's handle on the network: the [`Transport`] its actors use.
pub struct SimPort {
    net: SimNet,
    me: Addr,
    peer: PeerId,
}

impl SimPort {
    fn fingerprint(bytes: &[u8]) -> [u8; 8] {
        let h = Sha256::digest(bytes);
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&h[..8]);
        fp
    }

    fn send_fp(&self, peer: PeerId, bytes: Bytes, fp: [u8; 8]) -> bool {
        let mut s = self.net.state.borrow_mut();
        let Some(me) = s.live(self.me) else {
            return false;
        };
        let my_side = me.side;
        let Some(link) = me.links.get(&peer).copied() else {
            return false;
        };
        let to = link.to;
        s.stats.frames_sent += 1;
        let loss = s.cfg.loss;
        let lost = loss > 0.0 && s.rng.gen_bool(loss.min(1.0));
        let cut = s.slots.get(to.slot as usize).is_some_and(|t| t.side != my_side);
        if lost || cut {
            s.stats.frames_dropped += 1;
            return false;
        }
        let at = (s.now_us() + s.latency_us()).max(link.not_before_us);
        if let Some(l) = s.live_mut(self.me).and_then(|me| me.links.get_mut(&peer)) {
            l.not_before_us = at;
        }
        s.push(at, Step::Frame { from: self.me, peer: self.peer, to, bytes, fp })
    }
}

impl Transport for SimPort {
    fn connect(&self, peer: PeerId) {
        let wake = {
            let mut s = self.net.state.borrow_mut();
            let now = s.now_us();
            let Some(me) = s.live(self.me) else { return };
            if peer == self.peer || me.links.contains_key(&peer) || me.dialing.contains(&peer) {
                return;
            }
            let my_side = me.side;
            s.stats.dials += 1;
            if let Some(sl) = s.live_mut(self.me) {
                sl.dialing.insert(peer);
            }
            let timeout = now + s.cfg.connect_timeout_ms * 1000;
            match s.directory.get(&peer).copied() {
                Some(to) if s.slots[to.slot as usize].side == my_side => {
                    let at = now + s.latency_us();
                    s.push(
                        at,
                        Step::DialArrive { from: self.me, from_peer: self.peer, to, to_peer: peer, started_us: now },
                    )
                }
                _ => s.push(timeout, Step::DialFailed { dialer: self.me, peer }),
            }
        };
        if wake {
            self.net.wake.notify_one();
        }
    }

    fn disconnect(&self, peer: PeerId) {
        let wake = {
            let mut s = self.net.state.borrow_mut();
            let Some(me) = s.live_mut(self.me) else {
                return;
            };
            let Some(link) = me.links.remove(&peer) else {
                return;
            };
            let to = link.to;
            // The close notice travels the link too: it does not overtake frames sent before it.
            let at = (s.now_us() + s.latency_us()).max(link.not_before_us);
            let wake = s.push(at, Step::Closed { from_peer: self.peer, to });
            s.event(self.me, TransportEvent::Disconnected { peer });
            wake
        };
        if wake {
            self.net.wake.notify_one();
        }
    }

    fn send(&self, peer: PeerId, frame: Bytes) {
        let fp = Self::fingerprint(&frame);
        if self.send_fp(peer, frame, fp) {
            self.net.wake.notify_one();
        }
    }

    fn send_many(&self, peers: &[PeerId], frame: Bytes) {
        let fp = Self::fingerprint(&frame);
        let mut wake = false;
        for p in peers {
            wake |= self.send_fp(*p, frame.clone(), fp);
        }
        if wake {
            self.net.wake.notify_one();
        }
    }
}
