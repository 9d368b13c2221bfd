//! The `swarm` command line: run simulator scenarios and benchmarks, run a real node over WebRTC
//! and talk to its control API, run a rendezvous server, manage a node's identity and registry.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use swarm_simulator::report::Report;
use swarm_simulator::run::{run, RunOptions};
use swarm_simulator::scenario;

mod client;
mod doc;
mod feed;
mod node;
mod peers;

/// mimalloc instead of the system allocator: a simulated run makes and drops millions of small
/// buffers (frames, messages, actor envelopes) across the state of 1,000 nodes, and glibc's
/// malloc and free were ~6% of churn-50's run thread; with mimalloc the whole run took 8-25% less
/// CPU in same-hour pairs (BENCHMARKS, issue 12), at ~12-22% more peak memory. Allocation order
/// is invisible to the simulation, so traces are unchanged.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "swarm", version, about = "Simulation-first peer-to-peer swarm engine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a scenario file in the deterministic simulator.
    Sim(SimArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCmd),
    /// A node's key pair: create, show, export, import.
    Identity(IdentityArgs),
    /// Run a node over WebRTC with a local control API (stops cleanly on Ctrl-C / SIGTERM).
    Node(node::NodeArgs),
    /// Run a rendezvous server: peers register, discover each other and exchange offers.
    Rendezvous(RendezvousArgs),
    /// A running node's status (peer id, connections, known peers, pending sync writes).
    Status(ApiArgs),
    /// A running node's links with each peer's live score and its parts (without a subcommand),
    /// or the persisted registry of a data directory.
    Peers {
        #[command(subcommand)]
        cmd: Option<peers::PeersCmd>,
        /// The node's data directory (its peer registry is DIR/db).
        #[arg(long, global = true, default_value = "swarm-data")]
        data: PathBuf,
        /// Control API of a running node (without a subcommand).
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Without a subcommand: also every peer the node holds a reputation record of, linked or not.
        #[arg(long)]
        all: bool,
    },
    /// Ask a running node to connect to a peer id, waiting for the link.
    Connect {
        peer_id: String,
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
    /// Publish a file (prints its link ROOT:KEY) or a post (--post TEXT, prints ROOT).
    Put {
        file: Option<PathBuf>,
        #[arg(long, conflicts_with = "file")]
        post: Option<String>,
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
    },
    /// Fetch a link from the swarm: a file to --out (or stdout), a post printed.
    Get {
        link: String,
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
    },
    /// Mutable records: set, get (value and conflicts), list conflicts, grant a writer.
    #[command(subcommand)]
    Doc(doc::DocCmd),
    /// Follow a user (user id: 16 hex digits, or peer id: 64): their new posts and files show
    /// in `swarm feed`.
    Follow {
        user_id: String,
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
    },
    /// Stop following a user.
    Unfollow {
        user_id: String,
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
    },
    /// Posts and files of followed users, newest first, with when this node learned them.
    Feed {
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// (internal) test helpers.
    #[command(hide = true, subcommand)]
    Debug(DebugCmd),
}

#[derive(Args)]
struct ApiArgs {
    /// Control API of the node, e.g. 127.0.0.1:7700.
    #[arg(long, default_value = client::DEFAULT_API)]
    api: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RendezvousArgs {
    /// Address to listen on (WebSocket), e.g. 127.0.0.1:7000.
    #[arg(long)]
    listen: std::net::SocketAddr,
}

#[derive(Subcommand)]
enum DebugCmd {
    /// Commit peer records one by one, printing each index after its commit.
    Fill {
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        records: u64,
    },
}

#[derive(Args)]
struct IdentityArgs {
    #[command(subcommand)]
    cmd: IdentityCmd,
    /// The node's data directory (the identity is DIR/identity.key).
    #[arg(long, global = true, default_value = "swarm-data")]
    data: PathBuf,
    /// File whose first line is the passphrase (else the SWARM_PASSPHRASE environment variable).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum IdentityCmd {
    /// Create a new key pair, sealed under the passphrase (refuses to replace one).
    New,
    /// Print the peer id and user id (no passphrase needed).
    Show,
    /// Copy the sealed key file to FILE after checking the passphrase opens it.
    Export {
        #[arg(long)]
        to: PathBuf,
    },
    /// Adopt a sealed key file; it must open with the passphrase before anything is written.
    Import {
        #[arg(long)]
        from: PathBuf,
        /// Replace an existing identity (kept as identity.key.previous).
        #[arg(long)]
        force: bool,
    },
    /// Split a running node's key among trusted peers (`backup status`: who acknowledged).
    Backup(BackupArgs),
    /// Rebuild an identity from its holders' shares on a (fresh) running node; it becomes the
    /// node's identity (the old one kept as identity.key.previous) at the node's next start.
    Recover {
        /// The user id (16 hex digits) or the peer id of the identity to recover.
        #[arg(long)]
        user_id: String,
        /// File whose first line is the recovery passphrase chosen at backup time.
        #[arg(long)]
        recovery_passphrase_file: PathBuf,
        /// A peer holding a share (repeatable; at least the threshold of them). Without any,
        /// the holders come from the owner's published holder list (found by user id).
        #[arg(long = "holder")]
        holders: Vec<String>,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=240))]
        timeout_s: u64,
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
    },
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
struct BackupArgs {
    #[command(subcommand)]
    cmd: Option<BackupCmd>,
    /// A trusted peer to hold one share (repeat: one per share, 5 by default).
    #[arg(long = "holder")]
    holders: Vec<String>,
    /// Shares that recover the key.
    #[arg(long, default_value_t = 3)]
    threshold: u8,
    /// File whose first line is the recovery passphrase (asked for again to recover).
    #[arg(long)]
    recovery_passphrase_file: Option<PathBuf>,
    /// Wait up to this many seconds for the holders' acknowledgements.
    #[arg(long, default_value_t = 30)]
    wait_s: u64,
    #[arg(long, default_value = client::DEFAULT_API)]
    api: String,
}

#[derive(Subcommand)]
enum BackupCmd {
    /// The backup's holders: acknowledged or not, when each was last seen.
    Status {
        #[arg(long, default_value = client::DEFAULT_API)]
        api: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct SimArgs {
    /// Scenario file (TOML), e.g. scenarios/churn-50.toml.
    scenario: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Directory for report.json and connectivity.svg.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Do not draw a progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Simulator throughput and peak memory on a churn scenario at several sizes.
    Sim(BenchSimArgs),
    /// (internal) one benchmark run in this process; prints its measurements as JSON.
    #[command(hide = true)]
    SimOne(BenchOneArgs),
    /// Cost of the signatures every node pays: sign, verify, memoised verify, a whole handshake.
    Crypto(BenchCryptoArgs),
    /// WebRTC on loopback: connection setup, small-message RTT, 256 KiB frame throughput, beside
    /// plain TCP on loopback as the ceiling.
    Webrtc(BenchWebrtcArgs),
}

#[derive(Args)]
struct BenchWebrtcArgs {
    /// Connection setups timed (connect until both sides report the link).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
    setups: u64,
    /// Sequential ping/pong round trips.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    round_trips: u64,
    /// MiB sent one way in the throughput run.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=16_384))]
    mib: u64,
    /// Frame size in KiB for the throughput run.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=8192))]
    frame_kib: u64,
    /// ICE connectivity-check interval in ms (the transport's default: 10).
    #[arg(long)]
    ice_check_ms: Option<u64>,
    /// SCTP MTU in bytes (default: the crate's 1191, safe on any path).
    #[arg(long)]
    sctp_mtu: Option<u32>,
    /// Skip the TCP baseline.
    #[arg(long)]
    no_tcp: bool,
}

#[derive(Args)]
struct BenchCryptoArgs {
    /// Operations timed per figure.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    iterations: u32,
}

#[derive(Args)]
struct BenchSimArgs {
    /// Scenario providing everything but the population size.
    #[arg(long, default_value = "scenarios/churn-50.toml")]
    scenario: PathBuf,
    /// Population sizes to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    nodes: Vec<usize>,
    /// Override the simulated duration (seconds).
    #[arg(long)]
    duration_s: Option<u64>,
}

#[derive(Args)]
struct BenchOneArgs {
    #[arg(long)]
    scenario: PathBuf,
    #[arg(long)]
    nodes: usize,
    #[arg(long)]
    duration_s: Option<u64>,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().cmd {
        Cmd::Sim(a) => sim(a),
        Cmd::Bench(BenchCmd::Sim(a)) => bench_sim(a),
        Cmd::Bench(BenchCmd::SimOne(a)) => bench_one(a),
        Cmd::Bench(BenchCmd::Crypto(a)) => bench_crypto(a),
        Cmd::Bench(BenchCmd::Webrtc(a)) => bench_webrtc(a),
        Cmd::Identity(a) => identity(a),
        Cmd::Node(a) => node::check_namespace(&a.namespace).and_then(|()| node::run(a)),
        Cmd::Rendezvous(a) => rendezvous(a),
        Cmd::Status(a) => client::status(&a.api, a.json),
        Cmd::Peers { cmd: None, api, json, all, .. } => client::peers(&api, json, all),
        Cmd::Peers { cmd: Some(cmd), data, .. } => peers::run(&data, cmd),
        Cmd::Connect { peer_id, api, timeout_ms } => client::connect(&api, &peer_id, timeout_ms),
        Cmd::Put { file, post, api } => client::put(&api, file.as_deref(), post),
        Cmd::Get { link, out, api } => client::get(&api, &link, out.as_ref()),
        Cmd::Doc(cmd) => doc::run(cmd),
        Cmd::Follow { user_id, api } => feed::follow(&api, user_id, true),
        Cmd::Unfollow { user_id, api } => feed::follow(&api, user_id, false),
        Cmd::Feed { api, limit, json } => feed::feed(&api, limit, json),
        Cmd::Debug(DebugCmd::Fill { data, records }) => peers::fill(&data, records),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn sim(a: SimArgs) -> Result<()> {
    let mut sc = scenario::load(&a.scenario)?;
    if let Some(seed) = a.seed {
        sc.seed = seed;
    }
    let report = run(&sc, RunOptions { progress: !a.quiet })?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating output directory {}", a.out.display()))?;
    let json = report.write_json(&a.out).with_context(|| format!("writing report into {}", a.out.display()))?;
    let svg = report.write_svg(&a.out).map_err(|e| anyhow::anyhow!("writing plot into {}: {e}", a.out.display()))?;
    println!("{}", report.table());
    println!("report: {}\nplot:   {}", json.display(), svg.display());
    Ok(())
}

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn bench_one(a: BenchOneArgs) -> Result<()> {
    let mut sc = scenario::load(&a.scenario)?;
    sc.nodes = a.nodes;
    if let Some(d) = a.duration_s {
        sc.duration_s = d;
    }
    sc.validate().map_err(|(field, reason)| anyhow::anyhow!("{}: `{field}` {reason}", a.scenario.display()))?;
    let report: Report = run(&sc, RunOptions { progress: false })?;
    let out = serde_json::json!({
        "nodes": sc.nodes,
        "simulated_s": report.simulated_s,
        "wall_s": report.wall_s,
        "messages": report.messages,
        "msgs_per_wall_s": report.messages as f64 / report.wall_s.max(1e-9),
        "peak_rss_bytes": peak_rss_bytes(),
        "connectivity_min": report.metrics.connectivity_min,
        "digest": report.digest,
    });
    println!("{out}");
    Ok(())
}

fn bench_sim(a: BenchSimArgs) -> Result<()> {
    let exe = std::env::current_exe().context("locating the swarm binary")?;
    println!(
        "{:>8} {:>12} {:>10} {:>12} {:>14} {:>12} {:>10}",
        "nodes", "simulated_s", "wall_s", "messages", "msgs/wall_s", "peak_MiB", "conn_min"
    );
    for n in a.nodes {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["bench", "sim-one", "--scenario"]).arg(&a.scenario).args(["--nodes", &n.to_string()]);
        if let Some(d) = a.duration_s {
            cmd.args(["--duration-s", &d.to_string()]);
        }
        let out = cmd.output().context("running a benchmark child process")?;
        if !out.status.success() {
            bail!("benchmark with {n} nodes failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading benchmark output")?;
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:>8} {:>12.0} {:>10.2} {:>12.0} {:>14.0} {:>12.1} {:>10.4}",
            n,
            f("simulated_s"),
            f("wall_s"),
            f("messages"),
            f("msgs_per_wall_s"),
            f("peak_rss_bytes") / (1024.0 * 1024.0),
            f("connectivity_min")
        );
    }
    Ok(())
}

/// Mean microseconds per call of `f` over `n` calls.
fn time_us(n: u32, mut f: impl FnMut(u32)) -> f64 {
    let t = std::time::Instant::now();
    for i in 0..n {
        f(i);
    }
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn bench_crypto(a: BenchCryptoArgs) -> Result<()> {
    use swarm_engine::auth::transcript;
    use swarm_engine::identity::{Ed25519Verifier, Envelope, Identity, MemoVerifier, Verifier};
    let n = a.iterations;
    let (alice, bob) = (Identity::from_secret(&[1; 32]), Identity::from_secret(&[2; 32]));
    // A rumour-sized message (20 peer ids and framing): what gossip signs every round.
    let msg = |i: u32| {
        let mut m = vec![7u8; 700];
        m[..4].copy_from_slice(&i.to_le_bytes());
        m
    };
    let sigs: Vec<[u8; 64]> = (0..n).map(|i| alice.sign(&msg(i))).collect();
    let msgs: Vec<Vec<u8>> = (0..n).map(msg).collect();
    let mut ok = 0u32;
    let sign = time_us(n, |i| ok += u32::from(alice.sign(&msgs[i as usize])[0] != 0));
    let verify = time_us(n, |i| {
        ok += u32::from(Ed25519Verifier.verify(&alice.peer_id(), &msgs[i as usize], &sigs[i as usize]).is_ok())
    });
    let memo = MemoVerifier::new(64 << 20);
    let _ = memo.verify(&alice.peer_id(), &msgs[0], &sigs[0]);
    let memo_hit = time_us(n, |_| ok += u32::from(memo.verify(&alice.peer_id(), &msgs[0], &sigs[0]).is_ok()));
    let seal =
        time_us(n, |i| ok += u32::from(!Envelope::seal(&alice, msgs[i as usize].clone(), 1).signature.is_empty()));
    // One side's share of a link handshake: sign the peer's challenge, verify the peer's proof.
    let nonces: Vec<[u8; 32]> = (0..n).map(|i| [(i % 251) as u8; 32]).collect();
    let proofs: Vec<[u8; 64]> =
        nonces.iter().map(|c| bob.sign(&transcript(c, &bob.peer_id(), &alice.peer_id()))).collect();
    let handshake = time_us(n, |i| {
        let c = &nonces[i as usize];
        let mine = alice.sign(&transcript(c, &alice.peer_id(), &bob.peer_id()));
        let theirs = Ed25519Verifier.verify(
            &bob.peer_id(),
            &transcript(c, &bob.peer_id(), &alice.peer_id()),
            &proofs[i as usize],
        );
        ok += u32::from(mine[0] != 0 || theirs.is_ok());
    });
    if ok == 0 {
        bail!("no operation succeeded");
    }
    println!("{:<44} {:>10}", "operation (700-byte message)", "us / op");
    for (name, us) in [
        ("ed25519 sign", sign),
        ("ed25519 verify (strict)", verify),
        ("memoised verify, hit (simulator)", memo_hit),
        ("envelope seal", seal),
        ("handshake, one side (sign + verify)", handshake),
    ] {
        println!("{name:<44} {us:>10.2}");
    }
    Ok(())
}

fn bench_webrtc(a: BenchWebrtcArgs) -> Result<()> {
    let mut o = swarm_transport_webrtc::bench::BenchOptions {
        setups: a.setups as usize,
        round_trips: a.round_trips as usize,
        throughput_bytes: (a.mib as usize) << 20,
        frame_bytes: (a.frame_kib as usize) << 10,
        tcp: !a.no_tcp,
        ..Default::default()
    };
    if let Some(ms) = a.ice_check_ms {
        o.config.ice_check_interval_ms = ms;
    }
    o.config.sctp_mtu_bytes = a.sctp_mtu.or(o.config.sctp_mtu_bytes);
    println!("{}", swarm_transport_webrtc::bench::run(o)?);
    Ok(())
}

fn rendezvous(a: RendezvousArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let server = swarm_rendezvous::Server::bind(a.listen, swarm_rendezvous::ServerConfig::default())
            .await
            .with_context(|| format!("binding the rendezvous server on {}", a.listen))?;
        println!("rendezvous: {}", server.url());
        let handle = server.spawn();
        node::wait_for_stop().await?;
        handle.shutdown().await;
        Ok(())
    })
}

pub(crate) fn passphrase(file: &Option<PathBuf>) -> Result<zeroize::Zeroizing<String>> {
    let raw = match file {
        Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading passphrase file {}", f.display()))?,
        None => std::env::var("SWARM_PASSPHRASE")
            .map_err(|_| anyhow::anyhow!("a passphrase is needed: --passphrase-file FILE or SWARM_PASSPHRASE"))?,
    };
    let line = raw.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(zeroize::Zeroizing::new(line))
}

fn identity(a: IdentityArgs) -> Result<()> {
    use swarm_engine::identity::{keys::user_id, store, vault, Identity};
    let print = |peer: &swarm_engine::PeerId| println!("peer id: {peer}\nuser id: {}", user_id(peer));
    match a.cmd {
        IdentityCmd::New => {
            let pass = passphrase(&a.passphrase_file)?;
            let id = Identity::generate(&mut rand_core::OsRng);
            let sealed = vault::seal(&id, pass.as_bytes(), vault::KdfParams::default(), &mut rand_core::OsRng)?;
            store::create(&a.data, &sealed)?;
            print(&id.peer_id());
            println!("stored:  {}", store::key_path(&a.data).display());
        }
        IdentityCmd::Show => print(&store::public_key(&a.data)?),
        IdentityCmd::Export { to } => {
            let pass = passphrase(&a.passphrase_file)?;
            let peer = store::export(&a.data, pass.as_bytes(), &to)?;
            print(&peer);
            println!("exported: {}", to.display());
        }
        IdentityCmd::Backup(BackupArgs { cmd: Some(BackupCmd::Status { api, json }), .. }) => {
            client::backup_status(&api, json)?
        }
        IdentityCmd::Backup(b) => {
            let Some(file) = &b.recovery_passphrase_file else {
                bail!("a backup needs --recovery-passphrase-file FILE (the passphrase that will recover it)")
            };
            let pass = passphrase(&Some(file.clone()))?;
            client::backup(&b.api, &b.holders, b.threshold, &pass, b.wait_s)?
        }
        IdentityCmd::Recover { user_id, recovery_passphrase_file, holders, timeout_s, api } => {
            let pass = passphrase(&Some(recovery_passphrase_file))?;
            client::recover(&api, &user_id, &holders, &pass, timeout_s)?
        }
        IdentityCmd::Import { from, force } => {
            let pass = passphrase(&a.passphrase_file)?;
            let peer = store::import(&a.data, &from, pass.as_bytes(), force)?;
            print(&peer);
            println!("stored:  {}", store::key_path(&a.data).display());
        }
    }
    Ok(())
}
