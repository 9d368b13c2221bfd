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
use swarm_engine::gossip::Faults;
use swarm_engine::identity::{Identity, MemoVerifier};
use swarm_engine::links::Purpose;
use swarm_engine::node::{Node, NodeParams};
use swarm_engine::replication::ContentFaults;
use swarm_engine::storage::memory::MemoryStorage;
use swarm_engine::time::Clock;
use swarm_engine::PeerId;
use swarm_transport_sim::{NetConfig, SimNet};
use tokio::time::Instant;

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
}

/// Everything the driver tracks about the population.
struct World {
    sc: Scenario,
    net: SimNet,
    collector: Rc<Collector>,
    clock: Clock,
    nodes: Vec<Option<Node>>,
    ids: Vec<PeerId>,
    /// Recently crashed identities still listed by the rendezvous point: (id, crashed at ms).
    listed_dead: VecDeque<(PeerId, u64)>,
    ident_rng: ChaCha8Rng,
    /// One signature verifier for the whole run: a rumour many nodes receive is verified once.
    verifier: Rc<MemoVerifier>,
    boot_rng: ChaCha8Rng,
    adv_rng: ChaCha8Rng,
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
            let i = self.boot_rng.gen_range(0..slots + self.listed_dead.len());
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
        let shares = self.sc.adversary.content_shares();
        if shares.iter().all(|(_, s)| *s == 0.0) {
            return ContentFaults::default();
        }
        let mut u: f64 = self.adv_rng.gen();
        let Some(kind) = shares.into_iter().find_map(|(k, s)| {
            u -= s;
            (u < 0.0).then_some(k)
        }) else {
            return ContentFaults::default();
        };
        self.collector.mark_adversary(id, kind.name());
        let a = &self.sc.adversary;
        let now = self.clock.now();
        match kind {
            ContentAdversary::Withhold => ContentFaults { withhold: true, ..ContentFaults::default() },
            ContentAdversary::Corrupt => ContentFaults { corrupt: true, ..ContentFaults::default() },
            ContentAdversary::Slow => ContentFaults { slow_ms: a.slow_ms, ..ContentFaults::default() },
            ContentAdversary::Covert => ContentFaults {
                withhold: true,
                corrupt: true,
                from_ms: now + a.covert_after_s * 1000,
                ..ContentFaults::default()
            },
        }
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
        let nat = self.sc.network.nat_share > 0.0 && self.nat_rng.gen_bool(self.sc.network.nat_share);
        self.net.set_nat(slot as u32, nat);
        if nat {
            self.natted.insert(slot);
            config.topology.reachable = false;
        } else {
            self.natted.remove(&slot);
        }
        let params = NodeParams {
            faults: Faults { corrupt_signatures: corrupt },
            content_faults,
            peer_store: None,
            reputation_store: None,
            identity,
            verifier: self.verifier.clone(),
            config,
            seed,
            bootstrap,
            transport: Rc::new(port),
            observer: self.collector.clone(),
            clock: self.clock,
            content_store: Box::new(MemoryStorage::new()),
            content_listener: None,
            file_listener: self.sc.content.files().then(|| {
                let c = self.collector.clone();
                Box::new(move |ev, files: &FilesHandle| c.on_file_event(ev, files)) as FileListener
            }),
            secret_seed: swarm_engine::node::derived_secret_seed(seed),
            recovery_store: None,
            recovery_listener: None,
        };
        let (node, inbox) = Node::start(params).expect("an empty in-memory store always opens");
        self.net.set_inbox(slot as u32, Rc::new(inbox));
        self.nodes[slot] = Some(node);
        self.live += 1;
        self.collector.set_live(self.live);
    }

    fn crash(&mut self, slot: usize, now_ms: u64) {
        if let Some(node) = self.nodes[slot].take() {
            node.stop();
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
    let mut world = World {
        net: net.clone(),
        collector: Rc::new(Collector::new(epoch)),
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
        boot_rng: stream(sc.seed, STREAM_BOOTSTRAP),
        adv_rng: stream(sc.seed, STREAM_ADVERSARY),
        nat_rng: stream(sc.seed, STREAM_NAT),
        natted: BTreeSet::new(),
        live: 0,
        departed: 0,
        started: 0,
        next_file_op: FILE_PUBLISH_OPS,
        sc: sc.clone(),
    };
    // The starting population: identities first, so each node can be told about some others
    // (as a rendezvous point everyone registered with would).
    let identities: Vec<(Rc<Identity>, u64)> = (0..sc.nodes).map(|_| world.new_identity()).collect();
    for (slot, ident) in identities.iter().enumerate() {
        let others = identities.len() - 1;
        let n = sc.bootstrap.peers.min(others);
        let boot: Vec<PeerId> = rand::seq::index::sample(&mut world.boot_rng, others, n)
            .into_iter()
            .map(|i| identities[if i >= slot { i + 1 } else { i }].0.peer_id())
            .collect();
        world.start_node(slot, ident.clone(), boot);
    }
    let progress = crate::progress::Progress::new(opts.progress, sc.duration_s);
    let mut part_rng = stream(sc.seed, STREAM_PARTITION);
    let mut content_rng = stream(sc.seed, STREAM_CONTENT);
    let mut samples: Vec<Sample> = Vec::new();
    for (at_ms, _, action) in timeline(&sc, churn_events, &mut content_rng) {
        tokio::time::sleep_until(epoch + std::time::Duration::from_millis(at_ms)).await;
        match action {
            Action::Churn(ev) => match ev.action {
                ChurnAction::Crash { slot } => world.crash(slot, at_ms),
                ChurnAction::Join { slot } => {
                    let boot = world.rendezvous_answer(at_ms, slot);
                    let ident = world.new_identity();
                    world.start_node(slot, ident, boot);
                }
            },
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
            Action::PartitionHeal => {
                for slot in 0..world.nodes.len() {
                    net.set_side(slot as u32, 0);
                }
            }
            Action::Sample => {
                let (live, largest, mean_degree) = net.connectivity();
                let live_slots = world.live_slots();
                samples.push(Sample {
                    t_s: at_ms as f64 / 1000.0,
                    live,
                    connectivity: if live == 0 { 0.0 } else { largest as f64 / live as f64 },
                    mean_degree,
                    known_peers_mean: world.collector.known_peers_mean(&live_slots),
                    departed: world.departed,
                    adversary_link_share: world.collector.adversary_link_share(),
                });
                progress.set(at_ms / 1000, &samples);
            }
        }
    }
    progress.finish();
    for node in world.nodes.iter().flatten() {
        node.stop();
    }
    build_report(&sc, &world, samples, churn_info)
}

fn build_report(sc: &Scenario, world: &World, samples: Vec<Sample>, churn_info: serde_json::Value) -> Report {
    let net = &world.net;
    let stats = net.stats();
    let warm: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= sc.warmup_s as f64).collect();
    let connectivity_min = warm.iter().map(|s| s.connectivity).fold(f64::INFINITY, f64::min);
    let connectivity_min = if connectivity_min.is_finite() { connectivity_min } else { 0.0 };
    let connectivity_final = samples.last().map_or(0.0, |s| s.connectivity);
    let mut joins: Vec<f64> = net.join_times_us().iter().map(|us| *us as f64 / 1e6).collect();
    joins.sort_by(f64::total_cmp);
    let live_mean = if samples.is_empty() {
        sc.nodes as f64
    } else {
        samples.iter().map(|s| s.live as f64).sum::<f64>() / samples.len() as f64
    };
    let node_seconds = (live_mean * sc.duration_s as f64).max(1.0);
    let coverage_until = (sc.duration_s * 1000).saturating_sub(4 * sc.node.gossip.interval_ms);
    let (authenticated, offences) = world.collector.auth_counts();
    let links = world.collector.link_summary(sc.duration_s * 1000);
    let node_hours = node_seconds / 3600.0;
    let [honest, invalid] = world.collector.envelopes();
    let metrics = Metrics {
        connectivity_min,
        connectivity_final,
        join_time_p50_s: percentile(&joins, 50.0),
        join_time_p99_s: percentile(&joins, 99.0),
        joins_completed: joins.len(),
        // Nodes alive for at least a minute that never held join_k connections.
        joins_incomplete: net.unjoined(60_000_000),
        msgs_per_node_per_s: stats.frames_delivered as f64 / node_seconds,
        bytes_per_node_per_s: stats.bytes_delivered as f64 / node_seconds,
        known_peers_mean: warm.last().map_or(0.0, |s| s.known_peers_mean),
        gossip_coverage: world.collector.gossip_coverage(coverage_until),
        frames_dropped: stats.frames_dropped,
        bad_frames: world.collector.bad_frames(),
        links_authenticated: authenticated,
        offences,
        adversaries: world.collector.adversaries(),
        envelopes_honest_accepted: honest.0,
        envelopes_honest_rejected: honest.1,
        envelopes_invalid_accepted: invalid.0,
        envelopes_invalid_rejected: invalid.1,
        invalid_rejected_share: (invalid.0 + invalid.1 > 0).then(|| invalid.1 as f64 / (invalid.0 + invalid.1) as f64),
        dials_per_node_per_hour: links.dials as f64 / node_hours,
        link_lifetime_p50_s: percentile(&links.lifetimes_s, 50.0),
        links_trimmed: links.trimmed,
        ..Metrics::default()
    };
    let mut metrics = metrics;
    let mut notes_after = Vec::new();
    if metrics.adversaries > 0 {
        let t = world.collector.trust_summary();
        let honest_started = world.started.saturating_sub(metrics.adversaries).max(1);
        metrics.adversaries_dealt = Some(t.dealt);
        metrics.adversaries_isolated = Some(t.isolated);
        let p = |q: f64| (!t.isolation_times_s.is_empty()).then(|| percentile(&t.isolation_times_s, q));
        metrics.isolation_time_p50_s = p(50.0);
        metrics.isolation_time_p90_s = p(90.0);
        let d = |q: f64| (!t.detection_times_s.is_empty()).then(|| percentile(&t.detection_times_s, q));
        metrics.detection_time_p50_s = d(50.0);
        metrics.detection_time_p90_s = d(90.0);
        metrics.adversary_link_share_final = samples.last().and_then(|s| s.adversary_link_share);
        metrics.false_positive_share = Some(t.false_positives as f64 / honest_started as f64);
        let by_kind: Vec<String> = world
            .collector
            .adversary_links_by_kind()
            .into_iter()
            .map(|(k, n, l)| format!("{k}: {n} live, {l} honest links to them"))
            .collect();
        notes_after.push(format!("adversaries at the end by kind: {}", by_kind.join("; ")));
    }
    let mut notes = notes_after;
    notes.push(format!(
        "connectivity_min is taken over samples at t >= {} s (warm-up excluded); connectivity = largest connected component / live nodes",
        sc.warmup_s
    ));
    notes.push(format!(
        "gossip reach is bounded by TTL {} and {} rumours per frame; coverage = mean share of live nodes reached per rumour",
        sc.node.gossip.ttl, sc.node.gossip.max_rumors_per_frame
    ));
    let by_purpose: Vec<String> =
        links.dials_by_purpose.iter().filter(|(_, n)| *n > 0).map(|(p, n)| format!("{p} {n}")).collect();
    notes.push(format!(
        "links: {} dials ({}), {} failed; {} trimmed above the high watermark, {} inbound refused at the hard cap, {} expired by heartbeat timeout, {} reconnects given up; lifetime p50 {:.0} s, p90 {:.0} s",
        links.dials,
        by_purpose.join(", "),
        links.dial_failures,
        links.trimmed,
        links.refused,
        world.collector.expired(),
        world.collector.reconnect_gave_up(),
        percentile(&links.lifetimes_s, 50.0),
        percentile(&links.lifetimes_s, 90.0),
    ));
    // Which thread verified what, and what the memo answered, depends on thread timing: the
    // split is logged; the report keeps only the count of checks (one per check, whoever answered).
    let v = world.verifier.stats();
    tracing::info!(
        verified = v.verified,
        verified_ahead = v.verified_ahead,
        ahead_dropped = v.ahead_dropped,
        remembered = v.remembered,
        "signature checks: ed25519 on the run's thread, ahead on the second core, answered from the memo"
    );
    notes.push(format!(
        "signatures: {} checks, each answered by ed25519 or by the run's shared memo (same key, signature and message; verified ahead on a second core where the signer announced it)",
        v.verified + v.remembered
    ));
    if let ChurnSpec::MassFailure { percent, .. } = sc.churn {
        notes.push(format!("mass failure: {percent}% of nodes crashed at one instant, not replaced"));
    }
    if sc.network.nat_share > 0.0 {
        nat_metrics(sc, world, &mut metrics, &mut notes);
    }
    if sc.content.enabled() {
        content_metrics(sc, world, node_seconds, &mut metrics, &mut notes);
    }
    Report {
        scenario: sc.name.clone(),
        seed: sc.seed,
        digest: hex::encode(net.digest()),
        nodes: sc.nodes,
        simulated_s: sc.duration_s as f64,
        wall_s: 0.0,
        messages: stats.frames_delivered,
        bytes: stats.bytes_delivered,
        churn: churn_info,
        notes,
        metrics,
        samples,
    }
}

/// Who serves the NATed nodes at the end: the peers their supernode links end at.
fn nat_metrics(sc: &Scenario, world: &World, m: &mut Metrics, notes: &mut Vec<String>) {
    let live = world.live_slots();
    let natted: Vec<&Node> =
        live.iter().filter(|s| world.natted.contains(s)).filter_map(|s| world.nodes[*s].as_ref()).collect();
    let mut served: BTreeSet<PeerId> = BTreeSet::new();
    let mut with_supernode = 0;
    for node in &natted {
        let links = node.links().borrow();
        let mine: Vec<PeerId> =
            links.iter().filter(|(_, l)| l.purposes.has(Purpose::Supernode)).map(|(p, _)| *p).collect();
        with_supernode += usize::from(!mine.is_empty());
        served.extend(mine);
    }
    m.supernodes = Some(served.len());
    notes.push(format!(
        "NAT: {} of {} live nodes NATed at the end (nat_share {}); {} of them hold a supernode link, to {} distinct supernodes ({:.1}% of live nodes; elected share {})",
        natted.len(),
        live.len(),
        sc.network.nat_share,
        with_supernode,
        served.len(),
        100.0 * served.len() as f64 / live.len().max(1) as f64,
        sc.node.topology.supernode_share,
    ));
}

/// The content figures: availability from the probes' fetches, durability from the ground truth
/// of who held what, repair traffic from the replicas stored.
fn content_metrics(sc: &Scenario, world: &World, node_seconds: f64, m: &mut Metrics, notes: &mut Vec<String>) {
    let c = world.collector.content_summary();
    let answered: Vec<f64> = c.probes.iter().flatten().copied().collect();
    m.availability_min = answered.iter().copied().reduce(f64::min);
    m.availability_final = answered.last().copied();
    // A publication counts once it completed (a second copy stored): before that the author
    // holds the only copy and the write is not acknowledged.
    let completed = c.published - c.lost_unreplicated as usize;
    let lost = c.lost - c.lost_unreplicated as usize;
    m.durability = (completed > 0).then(|| 1.0 - lost as f64 / completed as f64);
    m.fetch_latency_p50_s = (!c.latencies_s.is_empty()).then(|| percentile(&c.latencies_s, 50.0));
    m.fetch_latency_p99_s = (!c.latencies_s.is_empty()).then(|| percentile(&c.latencies_s, 99.0));
    m.relayed_share = (c.fetches_ok > 0).then(|| c.relayed as f64 / c.fetches_ok as f64);
    m.repair_bytes_per_node_per_s = Some(c.repair_bytes as f64 / node_seconds);
    m.chunks_published = Some(c.published);
    m.chunks_lost = Some(lost);
    m.publishes_cut_short = Some(c.lost_unreplicated);
    let rf = sc.node.replication.rf as i32;
    notes.push(format!(
        "content: {} chunks published, {} of them cut short (the author crashed before any other node stored a copy: not acknowledged, not counted), {} lost after; {} replicas stored by repair ({} bytes), {} surplus copies dropped; live copies of surviving chunks at the end: min {}, mean {:.2} (rf {rf})",
        c.published, c.lost_unreplicated, lost, c.repair_stores, c.repair_bytes, c.dropped, c.copies_min, c.copies_mean
    ));
    notes.push(format!(
        "availability: {} probes of up to {} fetches each, every {} s, of chunks published at least {} s before (publication completed), each from a random live node; {} fetches ok, {} failed (fetches whose node crashed are not counted)",
        c.probes.len(),
        sc.content.probe_fetches,
        sc.content.probe_interval_s,
        sc.content.probe_min_age_s,
        c.fetches_ok,
        c.fetches_failed
    ));
    let misses: Vec<String> = c
        .probe_counts
        .iter()
        .filter(|(_, _, failed)| *failed > 0)
        .map(|(at, ok, failed)| format!("t={at:.0} s {failed} of {}", ok + failed))
        .collect();
    if !misses.is_empty() {
        notes.push(format!("probes with failed fetches: {}", misses.join(", ")));
    }
    if sc.content.files() {
        let f = world.collector.files_summary();
        m.files_published = Some(f.published);
        m.file_publishes_failed = Some(f.publishes_failed);
        m.file_fetches_ok = Some(f.fetches_ok);
        m.file_fetches_failed = Some(f.fetches_failed);
        m.file_fetch_latency_p50_s = (!f.latencies_s.is_empty()).then(|| percentile(&f.latencies_s, 50.0));
        m.file_fetch_latency_p99_s = (!f.latencies_s.is_empty()).then(|| percentile(&f.latencies_s, 99.0));
        notes.push(format!(
            "files: {} published whole ({}..={} bytes, {} publications failed); probes fetched up to {} files each, whole, each from a random live node: {} ok, {} failed (fetches whose node crashed are not counted)",
            f.published, sc.content.file_bytes_min, sc.content.file_bytes_max, f.publishes_failed, sc.content.probe_files, f.fetches_ok, f.fetches_failed
        ));
    }
    if let ChurnSpec::MassFailure { percent, .. } = sc.churn {
        let lost_share = (percent / 100.0).powi(rf);
        m.durability_bound_no_repair = Some(1.0 - lost_share);
        notes.push(format!(
            "bound: with rf {rf} and {percent}% of nodes crashing at once, a chunk whose {rf} copies sit on random nodes loses all of them with probability {:.4}; durability without repair would be {:.4}; measured {}",
            lost_share,
            1.0 - lost_share,
            m.durability.map_or("n/a".into(), |d| format!("{d:.4}"))
        ));
    }
}
