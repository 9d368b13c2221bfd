//! `swarm peers`: the persisted peer registry of a node directory (heed), and the internal
//! writer used by the crash test.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::io::Write;
use std::path::{Path, PathBuf};
use swarm_engine::identity::user_id;
use swarm_engine::storage::heed_store::HeedStorage;
use swarm_engine::storage::records::{PeerRecord, PeerTable};
use swarm_engine::PeerId;

#[derive(Subcommand)]
pub enum PeersCmd {
    /// Remember a peer (by its 64-hex-character peer id), e.g. to seed a new node.
    Add {
        peer_id: String,
        /// Where to reach it (repeatable), e.g. a rendezvous URL.
        #[arg(long = "addr")]
        addrs: Vec<String>,
    },
    /// List remembered peers.
    List,
    /// Forget peers not seen for more than DAYS days.
    Prune {
        #[arg(long)]
        days: u64,
    },
}

fn now_ms() -> u64 {
    // The CLI edge may read the wall clock; protocol code never does.
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A peer first heard of now, with no dial history yet.
fn fresh_record(peer: PeerId, addresses: Vec<String>) -> PeerRecord {
    PeerRecord {
        peer_id: peer,
        user_id: user_id(&peer),
        last_seen_ms: now_ms(),
        addresses,
        reliability: 0.5,
        successes: 0,
        failures: 0,
    }
}

/// Where a node keeps its peer registry in its data directory `data` (a heed store of its own,
/// beside the chunk store in `data/content`). The node and `swarm peers` both open it here.
fn registry_dir(data: &Path) -> PathBuf {
    data.join("db")
}

/// Open the registry of the node directory `data`, creating it if it has none.
pub fn open_registry(data: &Path) -> Result<HeedStorage> {
    let dir = registry_dir(data);
    HeedStorage::open(&dir).with_context(|| format!("opening the peer registry in {}", dir.display()))
}

/// Open the registry of `data` only if it exists: reading commands never create one.
fn open_existing(data: &Path) -> Result<HeedStorage> {
    let dir = registry_dir(data);
    if !HeedStorage::exists(&dir) {
        bail!(
            "no peer registry in {} (is {} a node's data directory? give it with --data DIR)",
            dir.display(),
            data.display()
        );
    }
    open_registry(data)
}

pub fn run(data: &Path, cmd: PeersCmd) -> Result<()> {
    match cmd {
        PeersCmd::Add { peer_id, addrs } => {
            let peer: PeerId = peer_id.parse()?;
            let mut s = open_registry(data)?;
            PeerTable::save(&mut s, &fresh_record(peer, addrs))?;
            println!("added {peer}");
        }
        PeersCmd::List => {
            let s = open_existing(data)?;
            let scores = stored_scores(&s)?;
            for r in PeerTable::all(&s)? {
                let score =
                    scores.get(&r.peer_id).map_or_else(|| "score=- (never dealt with)".to_string(), String::clone);
                println!(
                    "{} {} last_seen_ms={} {} {}",
                    r.peer_id,
                    r.user_id,
                    r.last_seen_ms,
                    score,
                    r.addresses.join(",")
                );
            }
        }
        PeersCmd::Prune { days } => {
            let mut s = open_existing(data)?;
            let removed = PeerTable::prune(&mut s, now_ms(), days.saturating_mul(86_400_000))?;
            println!("pruned {removed}");
        }
    }
    Ok(())
}

/// Each scored peer's reputation as of now, from the stored records: the score, its standing
/// and its parts (default weights: a node's own `[reputation]` overrides are not in its
/// directory).
fn stored_scores(s: &HeedStorage) -> Result<std::collections::BTreeMap<PeerId, String>> {
    use swarm_engine::reputation::{Standing, StoredRecord, COMPONENT_NAMES};
    use swarm_engine::storage::{Storage, Table};
    let cfg = swarm_engine::NodeConfig::default().reputation;
    let mut out = std::collections::BTreeMap::new();
    for (key, value) in s.scan(Table::Reputation)? {
        let stored = StoredRecord::decode(&value)
            .with_context(|| format!("reputation record {} in the peer registry", hex::encode(&key)))?;
        let r = stored.to_record(0, now_ms(), &cfg);
        let score = r.score(0, &cfg);
        let parts: Vec<String> = COMPONENT_NAMES
            .iter()
            .zip(r.components(&cfg))
            .map(|(n, v)| format!("{n}={:.1}", if v == 0.0 { 0.0 } else { v }))
            .collect();
        let standing = Standing::of(score, &cfg);
        out.insert(stored.peer, format!("score={score:.1} standing={standing:?} [{}]", parts.join(" ")));
    }
    Ok(out)
}

/// Write `records` peers one committed batch at a time, printing each index once its commit has
/// returned (the crash test kills this process and checks every printed index survived).
pub fn fill(data: &Path, records: u64) -> Result<()> {
    if records == 0 {
        bail!("--records must be at least 1");
    }
    let mut s = open_registry(data)?;
    let mut out = std::io::stdout().lock();
    for i in 0..records {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_be_bytes());
        PeerTable::save(&mut s, &fresh_record(PeerId(id), vec![format!("fill-{i}")]))?;
        writeln!(out, "{i}")?;
        out.flush()?;
    }
    Ok(())
}
