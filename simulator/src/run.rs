//! Runs one scenario: the engine's actors for every node on an actix System over a paused-time
//! current-thread tokio runtime, connected by the simulated network, with churn, partitions and
//! periodic measurements. Same scenario and seed => same delivered-message trace (digest).

use crate::churn::{self, ChurnAction, ChurnEvent};
use crate::collect::Collector;
use crate::report::{percentile, Metrics, Report, Sample};
use crate::scenario::{ChurnSpec, ContentAdversary, Scenario};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeSet, VecDeque};
use std::rc::Rc;
use swarm_engine::files::{FileListener, FilesHandle};
use swarm_engine::gossip::{Faults, Slander};
use swarm_engine::identity::{Identity, MemoVerifier};
use swarm_engine::links::Purpose;
use swarm_engine::node::{Node, NodeParams};
use swarm_engine::replication::ContentFaults;
use swarm_engine::router::FrameMemo;
use swarm_engine::storage::memory::MemoryStorage;
use swarm_engine::time::Clock;
use swarm_engine::PeerId;
use swarm_transport_sim::{NetConfig, SimNet};
use tokio::time::Instant;

mod feeds;
mod recovery;
mod sessions;
mod summary;
mod sync;
use feeds::FeedsRun;
use recovery::RecoveryRun;
use sessions::Keep;
use summary::build_report;
use sync::{SyncObserver, SyncRun};

/// How the run reports progress while it goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Draw a progress bar (on a terminal only).
    pub progress: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start the simulation runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

// Independent RNG streams of one run, all from the scenario seed.
const STREAM_IDENTITY: u64 = 10;
const STREAM_CHURN: u64 = 11;
const STREAM_BOOTSTRAP: u64 = 12;
const STREAM_NET: u64 = 13;
const STREAM_PARTITION: u64 = 14;
const STREAM_ADVERSARY: u64 = 15;
const STREAM_CONTENT: u64 = 16;
const STREAM_NAT: u64 = 17;
const STREAM_RECOVERY: u64 = 18;
const STREAM_FEEDS: u64 = 19;
const STREAM_POSTS: u64 = 20;
const STREAM_REDISCOVER: u64 = 21;
const STREAM_SYNC: u64 = 22;
const STREAM_SYNC_TIMELINE: u64 = 23;

/// The Unix time (ms) simulated time zero stands for: 2027-01-15, any fixed instant would do.
const SIM_UNIX_EPOCH_MS: u64 = 1_800_000_000_000;

/// Bytes of signed messages the run's shared verifier remembers with their verdicts: at 10,000
/// nodes about 30,000 rumours are travelling at any time (~0.75 KB each), plus handshakes.
const VERIFIER_MEMO: usize = 32 << 20;

fn stream(seed: u64, id: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(id);
    r
}

enum Action {
    Churn(ChurnEvent),
    Sample,
    PartitionStart(f64),
    PartitionHeal,
    Publish,
    Probe,
    Backup,
    LoseDevices,
    Recover,
    Post,
    SyncWrite,
    SyncRead,
    SyncCheck,
}

/// Everything the driver tracks about the population.
struct World {
    sc: Scenario,
    net: SimNet,
    collector: Rc<Collector>,
    /// What the nodes report to: the collector, or with a sync workload an observer that takes
    /// the sync notes for the ground truth first.
    observer: Rc<dyn swarm_engine::observer::Observer>,
    clock: Clock,
    nodes: Vec<Option<Node>>,
    ids: Vec<PeerId>,
    /// Recently crashed identities still listed by the rendezvous point: (id, crashed at ms).
    listed_dead: VecDeque<(PeerId, u64)>,
    ident_rng: ChaCha8Rng,
    /// One signature verifier for the whole run: a rumour many nodes receive is verified once.
    verifier: Rc<MemoVerifier>,
    /// One decode of each gossip frame for all its receivers (a broadcast's copies share a buffer).
    frame_memo: Rc<FrameMemo>,
    boot_rng: ChaCha8Rng,
    /// Answers to nodes that ask the rendezvous point again (their own stream: a run where no
    /// node is ever isolated draws nothing from it).
    rediscover_rng: ChaCha8Rng,
    /// Times an isolated node asked the rendezvous point again.
    rediscoveries: u64,
    adv_rng: ChaCha8Rng,
    /// The sybil operator whose ids are being drawn (a new one once it has `sybil_ids`).
    sybil_group: Option<Slander>,
    /// Who is behind a NAT (its own stream: scenarios without NAT draw nothing from the others).
    nat_rng: ChaCha8Rng,
    /// Slots whose current node is NATed.
    natted: BTreeSet<usize>,
    live: usize,
    departed: usize,
    /// Nodes started over the run (the first population and every join).
    started: usize,
    /// Ops of file publications (their own range: probes' fetches use `probe << 32 | j`).
    next_file_op: u64,
    /// The recovery workload, when the scenario has one.
    recovery: Option<RecoveryRun>,
    /// Identities and stores that outlive their nodes (sessions churn, sync workload).
    keep: Option<Keep>,
    /// The sync workload, when the scenario has one.
    sync: Option<SyncRun>,
    /// The feeds workload, when the scenario has one.
    feeds: Option<FeedsRun>,
}

/// First op id of file publications.
const FILE_PUBLISH_OPS: u64 = 1 << 62;

impl World {
    fn live_slots(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|i| self.nodes[*i].is_some()).collect()
    }

    /// What a rendezvous point would answer a newcomer: random registered peers, including
    /// crashed ones whose registration has not expired yet. Drawn by rejection over slots and
    /// listed-dead entries (a join must not cost a pass over the whole population).
    fn rendezvous_answer(&mut self, now_ms: u64, exclude: usize) -> Vec<PeerId> {
        let mut rng = std::mem::replace(&mut self.boot_rng, stream(0, 0));
        let answer = self.rendezvous_pick(now_ms, exclude, &mut rng);
        self.boot_rng = rng;
        answer
    }

    /// A live node that has never had a link asks the rendezvous point again, as a real node's
    /// discover loop does (`src/node/net.rs`): every peer a joiner was told of can have died
    /// since (the rendezvous lists crashed nodes for `rendezvous_ttl_s`), and without this such a
    /// node stays alone for good. Checked at every sample. Only the bootstrap failure is modelled:
    /// a node that had links and lost them all (an isolated adversary, mostly) does not ask again
    /// here, though a real one would (the isolation measure does not count that yet).
    fn rediscover_isolated(&mut self, now_ms: u64) {
        for slot in self.live_slots() {
            if !self.nodes[slot].as_ref().is_some_and(|n| n.links().is_empty() && n.links().version() == 0) {
                continue;
            }
            let mut rng = std::mem::replace(&mut self.rediscover_rng, stream(0, 0));
            let peers = self.rendezvous_pick(now_ms, slot, &mut rng);
            self.rediscover_rng = rng;
            if let Some(node) = &self.nodes[slot] {
                self.rediscoveries += 1;
                node.learn(peers);
            }
        }
    }

    fn rendezvous_pick(&mut self, now_ms: u64, exclude: usize, rng: &mut ChaCha8Rng) -> Vec<PeerId> {
        let ttl_ms = self.sc.bootstrap.rendezvous_ttl_s * 1000;
        while self.listed_dead.front().is_some_and(|(_, t)| now_ms.saturating_sub(*t) > ttl_ms) {
            self.listed_dead.pop_front();
        }
        let slots = self.nodes.len();
        let candidates = self.live.saturating_sub(usize::from(self.nodes[exclude].is_some())) + self.listed_dead.len();
        let want = self.sc.bootstrap.peers.min(candidates);
        let mut picked: Vec<PeerId> = Vec::with_capacity(want);
        let mut tries = 0;
        while picked.len() < want && tries < 64 * want.max(1) {
            tries += 1;
            let i = rng.gen_range(0..slots + self.listed_dead.len());
            let id = if i < slots {
                if i == exclude || self.nodes[i].is_none() {
                    continue;
                }
                self.ids[i]
            } else {
                self.listed_dead[i - slots].0
            };
            if !picked.contains(&id) {
                picked.push(id);
            }
        }
        picked
    }

    /// A fresh ed25519 identity (from the run's seeded identity stream: ChaCha is a CSPRNG) and
    /// the seed of the new node's RNG streams. The peer id is the public key, as on a real node.
    fn new_identity(&mut self) -> (Rc<Identity>, u64) {
        let id = Identity::generate(&mut self.ident_rng);
        (Rc::new(id), self.ident_rng.gen())
    }

    /// The content misbehaviour of a node starting now, drawn from the scenario's shares (no
    /// draw at all when every share is 0, so scenarios without these adversaries keep their
    /// traces).
    fn draw_content_adversary(&mut self, id: PeerId) -> ContentFaults {
        let a = &self.sc.adversary;
        if a.content_shares().iter().all(|(_, s)| *s == 0.0) {
            return ContentFaults::default();
        }
        let u: f64 = self.adv_rng.gen();
        let Some((kind, mut faults)) = a.content_faults(u, self.clock.now()) else { return ContentFaults::default() };
        self.collector.mark_adversary(id, kind.name());
        let group = match kind {
            ContentAdversary::Slander => Some(Slander::new_group()),
            ContentAdversary::Sybil => {
                let ids = a.sybil_ids;
                let g = self.sybil_group.take().filter(|g| g.members() < ids).unwrap_or_else(Slander::new_group);
                self.sybil_group = Some(g.clone());
                Some(g)
            }
            _ => None,
        };
        if let Some(g) = &group {
            g.join(id);
        }
        faults.slander = group;
        faults
    }

    fn start_node(&mut self, slot: usize, (identity, seed): (Rc<Identity>, u64), bootstrap: Vec<PeerId>) {
        let id = identity.peer_id();
        if self.ids.len() <= slot {
            self.ids.resize(slot + 1, PeerId([0; 32]));
            self.nodes.resize_with(slot + 1, || None);
        }
        self.ids[slot] = id;
        self.started += 1;
        self.collector.register(id, slot);
        let port = self.net.add_node(slot as u32, id, self.sc.node.links.max_connections);
        let corrupt = self.adv_rng.gen_bool(self.sc.adversary.invalid_signatures);
        if corrupt {
            self.collector.mark_forger(id);
        }
        let content_faults = self.draw_content_adversary(id);
        // Connectivity is the honest swarm's: isolated adversaries are the point.
        self.net.set_unobserved(slot as u32, self.collector.is_adversary(&id));
        let mut config = self.sc.node.clone();
        // Publications go into feeds only where the scenario measures them (other traces stay).
        config.feeds.enabled = self.sc.feeds.enabled();
        let nat = self.sc.network.nat_share > 0.0 && self.nat_rng.gen_bool(self.sc.network.nat_share);
        self.net.set_nat(slot as u32, nat);
        if nat {
            self.natted.insert(slot);
            config.topology.reachable = false;
        } else {
            self.natted.remove(&slot);
        }
        let (content_store, sync_params) = self.stores_for(slot, &identity);
        let params = NodeParams {
            faults: Faults { corrupt_signatures: corrupt, ..Faults::default() },
            content_faults,
            peer_store: None,
            reputation_store: None,
            identity,
            verifier: self.verifier.clone(),
            frame_memo: Some(self.frame_memo.clone()),
            config,
            seed,
            bootstrap,
            transport: Rc::new(port),
            observer: self.observer.clone(),
            clock: self.clock,
            content_store,
            content_listener: None,
            file_listener: self.sc.content.files().then(|| {
                let c = self.collector.clone();
                Box::new(move |ev, files: &FilesHandle| c.on_file_event(ev, files)) as FileListener
            }),
            secret_seed: swarm_engine::node::derived_secret_seed(seed),
            recovery_store: None,
            recovery_listener: self.recovery.as_ref().map(|r| r.listener(id, self.clock)),
        };
        let (node, inbox) = Node::start_with_sync(params, sync_params).expect("an in-memory store always opens");
        self.net.set_inbox(slot as u32, Rc::new(inbox));
        self.nodes[slot] = Some(node);
        self.live += 1;
        self.collector.set_live(self.live);
        feeds::on_start(self, slot);
    }

    fn crash(&mut self, slot: usize, now_ms: u64) {
        if let Some(node) = self.nodes[slot].take() {
            node.stop();
            feeds::on_crash(self, node.id, now_ms);
            self.net.crash(slot as u32);
            self.collector.forget(&node.id);
            self.listed_dead.push_back((node.id, now_ms));
            self.live -= 1;
            self.departed += 1;
            self.collector.set_live(self.live);
        }
    }
}

/// Run a scenario to the end and build its report.
pub fn run(sc: &Scenario, opts: RunOptions) -> Result<Report, RunError> {
    let wall = std::time::Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    let system = actix::System::with_tokio_rt(move || rt);
    let sc = sc.clone();
    let mut report = system.block_on(drive(sc, opts));
    report.wall_s = wall.elapsed().as_secs_f64();
    Ok(report)
}

fn timeline(sc: &Scenario, churn_events: Vec<ChurnEvent>, rng: &mut ChaCha8Rng) -> Vec<(u64, u8, Action)> {
    let end_ms = sc.duration_s * 1000;
    let mut t: Vec<(u64, u8, Action)> = Vec::new();
    let c = &sc.content;
    if c.enabled() {
        // Publications: a Poisson process at the population's total rate.
        let rate_per_ms = c.publishes_per_node_per_hour * sc.nodes as f64 / 3_600_000.0;
        let stop = end_ms.saturating_sub(60_000);
        let mut at = (sc.warmup_s * 1000) as f64;
        loop {
            let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
            at += -u.ln() / rate_per_ms;
            if at >= stop as f64 {
                break;
            }
            t.push((at as u64, 3, Action::Publish));
        }
        let last = end_ms.saturating_sub(sc.node.replication.fetch_timeout_ms + 5_000);
        let mut at = (sc.warmup_s + c.probe_interval_s) * 1000;
        while at <= last {
            t.push((at, 4, Action::Probe));
            at += c.probe_interval_s * 1000;
        }
        // The final probe as late as the fetches allow: availability_final.
        if t.last().is_some_and(|(a, k, _)| *k == 4 && *a < last) {
            t.push((last, 4, Action::Probe));
        }
    }
    for ev in churn_events {
        t.push((ev.at_ms, 0, Action::Churn(ev)));
    }
    let r = &sc.recovery;
    if r.enabled() {
        t.push((r.backup_at_s * 1000, 5, Action::Backup));
        t.push((r.lose_at_s * 1000, 5, Action::LoseDevices));
        t.push(((r.lose_at_s + r.recover_after_s) * 1000, 5, Action::Recover));
    }
    if sc.feeds.enabled() {
        t.extend(FeedsRun::post_times(sc, stream(sc.seed, STREAM_POSTS)).into_iter().map(|at| (at, 6, Action::Post)));
    }
    for p in &sc.partitions {
        t.push((p.at_s * 1000, 1, Action::PartitionStart(p.fraction)));
        t.push((p.heal_s * 1000, 1, Action::PartitionHeal));
    }
    let step = sc.sample_interval_s * 1000;
    let mut at = step;
    while at <= end_ms {
        t.push((at, 2, Action::Sample));
        at += step;
    }
    // Stable: equal (time, kind) keep generation order.
    t.sort_by_key(|(at, kind, _)| (*at, *kind));
    t
}

async fn drive(sc: Scenario, opts: RunOptions) -> Report {
    let epoch = Instant::now();
    let clock = Clock::with_epoch(epoch, SIM_UNIX_EPOCH_MS);
    let net_cfg = NetConfig {
        latency: sc.network.latency.clone(),
        loss: sc.network.loss,
        connect_timeout_ms: sc.network.connect_timeout_ms,
    };
    let net = SimNet::new(net_cfg, stream(sc.seed, STREAM_NET).gen(), epoch, sc.join_k);
    actix::spawn(net.clone().pump());
    let (churn_events, churn_info) =
        churn::schedule_with_calibration(&sc.churn, sc.nodes, sc.duration_s, &mut stream(sc.seed, STREAM_CHURN));
    let collector = Rc::new(Collector::new(epoch));
    let sync_truth = sc.sync.enabled().then(|| Rc::new(std::cell::RefCell::new(crate::sync::SyncTruth::default())));
    let observer: Rc<dyn swarm_engine::observer::Observer> = match &sync_truth {
        Some(truth) => Rc::new(SyncObserver { collector: collector.clone(), truth: truth.clone(), clock }),
        None => collector.clone(),
    };
    let returning = matches!(sc.churn, ChurnSpec::Sessions { .. }) || sc.sync.enabled();
    let mut world = World {
        net: net.clone(),
        collector,
        observer,
        clock,
        nodes: Vec::new(),
        ids: Vec::new(),
        listed_dead: VecDeque::new(),
        ident_rng: stream(sc.seed, STREAM_IDENTITY),
        // Checks the signatures nodes make on a second core while the run goes on; a machine
        // that cannot start the thread runs without it (same verdicts, one core).
        verifier: Rc::new(
            MemoVerifier::with_lookahead(VERIFIER_MEMO).unwrap_or_else(|_| MemoVerifier::new(VERIFIER_MEMO)),
        ),
        frame_memo: Rc::default(),
        boot_rng: stream(sc.seed, STREAM_BOOTSTRAP),
        rediscover_rng: stream(sc.seed, STREAM_REDISCOVER),
        rediscoveries: 0,
        adv_rng: stream(sc.seed, STREAM_ADVERSARY),
        sybil_group: None,
        nat_rng: stream(sc.seed, STREAM_NAT),
        natted: BTreeSet::new(),
        live: 0,
        departed: 0,
        started: 0,
        next_file_op: FILE_PUBLISH_OPS,
        recovery: sc.recovery.enabled().then(|| RecoveryRun::new(&sc, &churn_events, stream(sc.seed, STREAM_RECOVERY))),
        keep: returning.then(Keep::default),
        sync: None,
        feeds: sc.feeds.enabled().then(|| FeedsRun::new(&sc, &churn_events, stream(sc.seed, STREAM_FEEDS))),
        sc: sc.clone(),
    };
    // The starting population: identities first, so each node can be told about some others
    // (as a rendezvous point everyone registered with would).
    let identities: Vec<(Rc<Identity>, u64)> = (0..sc.nodes).map(|_| world.new_identity()).collect();
    if let Some(truth) = sync_truth {
        let owners: Vec<Rc<Identity>> = identities.iter().map(|(i, _)| i.clone()).collect();
        world.sync = Some(SyncRun::new(&sc, &owners, truth, stream(sc.seed, STREAM_SYNC)));
    }
    for (slot, ident) in identities.iter().enumerate() {
        let others = identities.len() - 1;
        let n = sc.bootstrap.peers.min(others);
        let boot: Vec<PeerId> = rand::seq::index::sample(&mut world.boot_rng, others, n)
            .into_iter()
            .map(|i| identities[if i >= slot { i + 1 } else { i }].0.peer_id())
            .collect();
        world.start_node(slot, ident.clone(), boot);
    }
    feeds::ready(&mut world);
    let progress = crate::progress::Progress::new(opts.progress, sc.duration_s);
    let mut part_rng = stream(sc.seed, STREAM_PARTITION);
    let mut content_rng = stream(sc.seed, STREAM_CONTENT);
    let mut samples: Vec<Sample> = Vec::new();
    let mut plan = timeline(&sc, churn_events, &mut content_rng);
    plan.extend(sync::actions(&sc, &mut stream(sc.seed, STREAM_SYNC_TIMELINE)));
    // Stable: without a sync workload nothing moves.
    plan.sort_by_key(|(at, kind, _)| (*at, *kind));
    for (at_ms, _, action) in plan {
        tokio::time::sleep_until(epoch + std::time::Duration::from_millis(at_ms)).await;
        match action {
            Action::Churn(ev) => match ev.action {
                ChurnAction::Crash { slot } => world.crash(slot, at_ms),
                ChurnAction::Join { slot } => {
                    let boot = world.rendezvous_answer(at_ms, slot);
                    let ident = world.new_identity();
                    world.start_node(slot, ident, boot);
                }
                ChurnAction::Offline { slot } => world.go_offline(slot, at_ms),
                ChurnAction::Online { slot } => world.come_back(slot, at_ms),
            },
            Action::SyncWrite => sync::write(&mut world, at_ms),
            Action::SyncRead => sync::read(&mut world, at_ms),
            Action::SyncCheck => sync::check(&mut world, at_ms),
            Action::PartitionStart(fraction) => {
                let mut live = world.live_slots();
                live.shuffle(&mut part_rng);
                let cut = ((live.len() as f64) * fraction).round() as usize;
                for slot in &live[..cut] {
                    net.set_side(*slot as u32, 1);
                }
            }
            Action::Publish => {
                let live = world.live_slots();
                if live.is_empty() {
                    continue;
                }
                let slot = live[content_rng.gen_range(0..live.len())];
                if sc.content.files() {
                    let len = content_rng.gen_range(sc.content.file_bytes_min..=sc.content.file_bytes_max);
                    let mut data = vec![0u8; len];
                    content_rng.fill(&mut data[..]);
                    let op = world.next_file_op;
                    world.next_file_op += 1;
                    // One piece: the files actor cuts it a window of chunks at a time.
                    if let Some(node) = &world.nodes[slot] {
                        node.publish_file_begin(op, format!("file-{op}"));
                        node.publish_file_piece(op, data.into());
                        node.publish_file_finish(op);
                    }
                    continue;
                }
                let len = content_rng.gen_range(sc.content.chunk_bytes_min..=sc.content.chunk_bytes_max);
                // Random bytes stand for ciphertext (which is indistinguishable from them).
                let mut data = vec![0u8; len];
                content_rng.fill(&mut data[..]);
                if let Some(node) = &world.nodes[slot] {
                    node.publish(data);
                }
            }
            Action::Probe => {
                // Honest fetchers only: an isolated adversary failing its own fetches is the
                // point, not a loss of availability.
                let mut live = world.live_slots();
                live.retain(|slot| !world.collector.is_adversary(&world.ids[*slot]));
                let min_age_ms = sc.content.probe_min_age_s * 1000;
                let published = world.collector.probe_candidates(at_ms.saturating_sub(min_age_ms));
                if live.is_empty() || published.is_empty() {
                    continue;
                }
                let probe = world.collector.open_probe(at_ms);
                let n = sc.content.probe_fetches.min(published.len());
                for (j, i) in rand::seq::index::sample(&mut content_rng, published.len(), n).into_iter().enumerate() {
                    let slot = live[content_rng.gen_range(0..live.len())];
                    if let Some(node) = &world.nodes[slot] {
                        node.fetch(probe << 32 | j as u64, published[i]);
                    }
                }
                if sc.content.files() {
                    let files = world.collector.file_candidates(at_ms.saturating_sub(min_age_ms));
                    let n = sc.content.probe_files.min(files.len());
                    for (j, i) in rand::seq::index::sample(&mut content_rng, files.len(), n).into_iter().enumerate() {
                        let slot = live[content_rng.gen_range(0..live.len())];
                        let op = probe << 32 | j as u64;
                        if let Some(node) = &world.nodes[slot] {
                            world.collector.file_fetch_started(op, at_ms);
                            node.fetch_file(op, files[i].clone());
                        }
                    }
                }
            }
            Action::Backup => recovery::backup(&mut world),
            Action::LoseDevices => recovery::lose_devices(&mut world, at_ms),
            Action::Recover => recovery::recover(&mut world, at_ms),
            Action::Post => feeds::post(&mut world, at_ms),
            Action::PartitionHeal => {
                for slot in 0..world.nodes.len() {
                    net.set_side(slot as u32, 0);
                }
            }
            Action::Sample => {
                let (live, largest, mean_degree) = net.connectivity();
                let live_slots = world.live_slots();
                let hood = world.collector.neighbourhood_linked(sc.node.replication.rf);
                samples.push(Sample {
                    t_s: at_ms as f64 / 1000.0,
                    live,
                    connectivity: if live == 0 { 0.0 } else { largest as f64 / live as f64 },
                    mean_degree,
                    known_peers_mean: world.collector.known_peers_mean(&live_slots),
                    departed: world.departed,
                    adversary_link_share: world.collector.adversary_link_share(),
                    sync_pending: world.sync_pending(),
                    neighbourhood_linked: hood.map(|h| h.0),
                    neighbourhood_unlinked: hood.map(|h| h.1),
                });
                progress.set(at_ms / 1000, &samples);
                world.rediscover_isolated(at_ms);
            }
        }
    }
    progress.finish();
    sync::check(&mut world, sc.duration_s * 1000);
    for node in world.nodes.iter().flatten() {
        node.stop();
    }
    build_report(&sc, &world, samples, churn_info)
}
