//! The report of a run: metrics from the collector's and the network's figures, and the notes
//! that explain them.

use super::*;

pub(super) fn build_report(
    sc: &Scenario,
    world: &World,
    samples: Vec<Sample>,
    churn_info: serde_json::Value,
) -> Report {
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
    let [floods_honest, floods_adversarial] = world.collector.floods();
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
        flood_offences_honest: floods_honest,
        flood_offences_adversarial: floods_adversarial,
        adversaries: world.collector.adversaries(),
        envelopes_honest_accepted: honest.0,
        envelopes_honest_rejected: honest.1,
        envelopes_invalid_accepted: invalid.0,
        envelopes_invalid_rejected: invalid.1,
        invalid_rejected_share: (invalid.0 + invalid.1 > 0).then(|| invalid.1 as f64 / (invalid.0 + invalid.1) as f64),
        dials_per_node_per_hour: links.dials as f64 / node_hours,
        link_lifetime_p50_s: percentile(&links.lifetimes_s, 50.0),
        links_trimmed: links.trimmed,
        neighbourhood_linked_mean: mean_of(warm.iter().filter_map(|s| s.neighbourhood_linked)),
        neighbourhood_unlinked_max: warm.iter().filter_map(|s| s.neighbourhood_unlinked).reduce(f64::max),
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
        metrics.isolation_time_all_dealers_p90_s =
            (!t.isolation_times_all_dealers_s.is_empty()).then(|| percentile(&t.isolation_times_all_dealers_s, 90.0));
        let d = |q: f64| (!t.detection_times_s.is_empty()).then(|| percentile(&t.detection_times_s, q));
        metrics.detection_time_p50_s = d(50.0);
        metrics.detection_time_p90_s = d(90.0);
        metrics.adversary_link_share_final = samples.last().and_then(|s| s.adversary_link_share);
        metrics.false_positive_share = Some(t.false_positives as f64 / honest_started as f64);
        let by_kind: Vec<String> = world
            .collector
            .adversary_links_by_kind()
            .into_iter()
            .map(|k| {
                let age = k.age_p50_s.map_or(String::new(), |a| format!(" (age p50 {a:.0} s)"));
                format!("{}: {} live, {} honest links to them{age}", k.kind, k.live, k.links)
            })
            .collect();
        notes_after.push(format!("adversaries at the end by kind: {}", by_kind.join("; ")));
    }
    let mut notes = notes_after;
    notes.push(format!(
        "connectivity_min is taken over samples at t >= {} s (warm-up excluded); connectivity = largest connected component / live nodes",
        sc.warmup_s
    ));
    if world.rediscoveries > 0 {
        notes.push(format!(
            "{} times a node that never had a link asked the rendezvous point again (checked every sample)",
            world.rediscoveries
        ));
    }
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
    super::recovery::recovery_metrics(world, &mut metrics, &mut notes);
    super::sync::sync_metrics(world, &samples, &mut metrics, &mut notes);
    super::feeds::feeds_metrics(world, &mut metrics, &mut notes);
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
    // holds the only copy and the write is not acknowledged. Adversaries' own chunks are left
    // out: the swarm cuts their authors off, and what they kept among themselves is theirs to
    // lose (the availability probes do not ask for them either).
    let completed = c.published - c.lost_unreplicated as usize;
    let lost = c.lost - c.lost_unreplicated as usize;
    let honest_completed = completed - c.adversarial_completed;
    let honest_lost = lost - c.adversarial_lost;
    m.durability = (honest_completed > 0).then(|| 1.0 - honest_lost as f64 / honest_completed as f64);
    m.fetch_latency_p50_s = (!c.latencies_s.is_empty()).then(|| percentile(&c.latencies_s, 50.0));
    m.fetch_latency_p99_s = (!c.latencies_s.is_empty()).then(|| percentile(&c.latencies_s, 99.0));
    m.relayed_share = (c.fetches_ok > 0).then(|| c.relayed as f64 / c.fetches_ok as f64);
    m.repair_bytes_per_node_per_s = Some(c.repair_bytes as f64 / node_seconds);
    m.chunks_published = Some(c.published);
    m.chunks_lost = Some(lost);
    m.publishes_cut_short = Some(c.lost_unreplicated);
    let rf = sc.node.replication.rf as i32;
    notes.push(format!(
        "content: {} chunks published, {} of them cut short (the author crashed before any other node stored a copy: not acknowledged, not counted), {} lost after ({} of them adversaries' own, not counted in durability); {} replicas stored by repair ({} bytes), {} surplus copies dropped; live copies of surviving chunks at the end: min {}, mean {:.2} (rf {rf})",
        c.published, c.lost_unreplicated, lost, c.adversarial_lost, c.repair_stores, c.repair_bytes, c.dropped, c.copies_min, c.copies_mean
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

/// The mean of some figures (None for none).
fn mean_of(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let (n, sum) = xs.fold((0usize, 0.0), |(n, sum), x| (n + 1, sum + x));
    (n > 0).then(|| sum / n as f64)
}
