//! `swarm status|peers|connect|put|get --api ADDR` and `swarm identity backup|recover`: the CLI
//! side of a running node's control API.

use crate::node::api::{
    ApiErrorBody, ConnectRequest, Connected, Peers, PostRequest, PostView, Published, ReputationView, Status,
    MAX_UPLOAD_BYTES,
};
use crate::node::recovery::{BackupRequest, BackupView, RecoverRequest, Recovered};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use swarm_engine::reputation::COMPONENT_NAMES;

/// Default address of a node's control API.
pub const DEFAULT_API: &str = "127.0.0.1:7700";

fn url(api: &str, path: &str) -> String {
    let base = api.trim_end_matches('/');
    if base.starts_with("http://") || base.starts_with("https://") {
        format!("{base}{path}")
    } else {
        format!("http://{base}{path}")
    }
}

fn agent() -> ureq::Agent {
    // Fetches of large files wait on the swarm: generous read timeout, quick connect.
    ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(3))
        .timeout_read(std::time::Duration::from_secs(300))
        .build()
}

/// A call's response, with API errors turned into their message.
fn call(req: ureq::Request, body: Option<Body>, api: &str) -> Result<ureq::Response> {
    let res = match body {
        None => req.call(),
        Some(Body::Json(v)) => req.send_json(v),
        Some(Body::File { file, len }) => req.set("Content-Length", &len.to_string()).send(file),
    };
    match res {
        Ok(r) => Ok(r),
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            let msg = match serde_json::from_str::<ApiErrorBody>(&text) {
                Ok(b) => b.error,
                Err(_) if text.trim().is_empty() => "no details".into(),
                Err(_) => text.trim().to_string(),
            };
            bail!("the node answered {code}: {msg}")
        }
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("no node API at {api} (is `swarm node --api {api}` running?)")))
        }
    }
}

enum Body {
    Json(serde_json::Value),
    /// Sent as it is read, with its length announced (the node requires Content-Length).
    File {
        file: std::fs::File,
        len: u64,
    },
}

fn get_json<T: serde::de::DeserializeOwned>(api: &str, path: &str) -> Result<T> {
    call(agent().get(&url(api, path)), None, api)?.into_json().context("the node's answer does not decode")
}

/// GET `path` with query parameters (encoded), its JSON answer decoded.
pub fn get_query<T: serde::de::DeserializeOwned>(api: &str, path: &str, query: &[(&str, &str)]) -> Result<T> {
    let mut req = agent().get(&url(api, path));
    for (k, v) in query {
        req = req.query(k, v);
    }
    call(req, None, api)?.into_json().context("the node's answer does not decode")
}

/// POST a JSON body to `path`, its JSON answer decoded.
pub fn post_json<T: serde::de::DeserializeOwned>(api: &str, path: &str, body: serde_json::Value) -> Result<T> {
    call(agent().post(&url(api, path)), Some(Body::Json(body)), api)?
        .into_json()
        .context("the node's answer does not decode")
}

pub fn status(api: &str, json: bool) -> Result<()> {
    let s: Status = get_json(api, "/status")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("peer id:      {}", s.peer_id);
    println!("user id:      {}", s.user_id);
    println!("connections:  {}", s.connections);
    println!("known peers:  {}", s.known_peers);
    println!("pending sync: {} (writes not yet acknowledged by their replicas)", s.pending_sync);
    if let Some(ms) = s.oldest_pending_ms {
        println!("oldest pending: {:.1} s", ms as f64 / 1000.0);
    }
    println!("sync:         {} ({} records)", if s.online { "online" } else { "offline" }, s.records);
    println!("uptime:       {} s", s.uptime_s);
    for r in &s.rendezvous {
        println!("rendezvous:   {} ({})", r.url, if r.connected { "connected" } else { "down" });
    }
    Ok(())
}

/// `all`: every peer with a live reputation record too (`GET /peers?all=true`).
pub fn peers(api: &str, json: bool, all: bool) -> Result<()> {
    let p: Peers = if all { get_query(api, "/peers", &[("all", "true")])? } else { get_json(api, "/peers")? };
    if json {
        println!("{}", serde_json::to_string_pretty(&p)?);
        return Ok(());
    }
    for v in &p.connected {
        let dir = if v.outbound { "out" } else { "in " };
        println!("{} {dir} {:>6} s {}", v.peer_id, v.connected_s, reputation_column(&v.reputation));
    }
    println!("{} connected, {} known", p.connected.len(), p.known_peers);
    if let Some(scored) = &p.scored {
        let unlinked: Vec<_> = scored.iter().filter(|s| !s.connected).collect();
        for s in &unlinked {
            println!("{} not linked {}", s.peer_id, reputation_column(&s.reputation));
        }
        println!("{} scored, {} of them not linked", scored.len(), unlinked.len());
    }
    Ok(())
}

/// `Acceptable score=  3.21 uptime=1.10 availability=2.00`: the standing, the live score and its
/// parts, those exactly 0 left out (`no record`: the peer is neutral, never scored).
fn reputation_column(r: &ReputationView) -> String {
    let head = format!("{:<10} score={:>7.2}", r.standing, r.score);
    let Some(parts) = &r.parts else { return format!("{head} (no record)") };
    // Known parts in the score's order, then any a newer node adds.
    let known = COMPONENT_NAMES.iter().filter_map(|n| parts.get_key_value(*n));
    let newer = parts.iter().filter(|(n, _)| !COMPONENT_NAMES.contains(&n.as_str()));
    let shown: Vec<String> =
        known.chain(newer).filter(|(_, v)| **v != 0.0).map(|(n, v)| format!("{n}={v:.2}")).collect();
    if shown.is_empty() {
        format!("{head} (all parts 0)")
    } else {
        format!("{head} {}", shown.join(" "))
    }
}

pub fn connect(api: &str, peer: &str, timeout_ms: u64) -> Result<()> {
    let body = serde_json::to_value(ConnectRequest { peer_id: peer.to_string(), timeout_ms: Some(timeout_ms) })?;
    let c: Connected = call(agent().post(&url(api, "/connect")), Some(Body::Json(body)), api)?.into_json()?;
    if !c.connected {
        bail!("no link to {} within {timeout_ms} ms", c.peer_id);
    }
    println!("connected to {}", c.peer_id);
    Ok(())
}

pub fn put(api: &str, file: Option<&Path>, post: Option<String>) -> Result<()> {
    let published: Published = match (file, post) {
        (Some(f), None) => {
            let file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
            let len = file.metadata().with_context(|| format!("reading {}", f.display()))?.len();
            // Checked here: the node refuses a larger body before reading it and closes the
            // connection, which the sender would only see as a broken pipe.
            if len > MAX_UPLOAD_BYTES {
                bail!("{} is {len} bytes; a node accepts files of at most {MAX_UPLOAD_BYTES} bytes", f.display());
            }
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
            let req = agent().post(&url(api, "/publish/file")).query("name", &name);
            call(req, Some(Body::File { file, len }), api)?.into_json()?
        }
        (None, Some(text)) => {
            let body = serde_json::to_value(PostRequest { text })?;
            call(agent().post(&url(api, "/publish/post")), Some(Body::Json(body)), api)?.into_json()?
        }
        _ => bail!("give either a FILE or --post TEXT"),
    };
    eprintln!("published {} bytes in {} chunks", published.bytes, published.chunks);
    println!("{}", published.link);
    Ok(())
}

pub fn get(api: &str, link: &str, out: Option<&PathBuf>) -> Result<()> {
    let link = link.trim();
    let res = call(agent().get(&url(api, &format!("/fetch/{link}"))), None, api)?;
    if res.content_type() == "application/json" {
        let p: PostView = res.into_json()?;
        println!("{} (by {}, unix ms {})", p.text, p.author, p.unix_ms);
        return Ok(());
    }
    // Streamed to its destination; a body cut short (a chunk not found midway) is an error, and
    // leaves no partial file under the name asked for.
    let mut body = res.into_reader();
    match out {
        Some(path) => {
            let part = path.with_extension("part");
            let copied = std::fs::File::create(&part)
                .with_context(|| format!("writing {}", part.display()))
                .and_then(|mut f| std::io::copy(&mut body, &mut f).context("reading the fetched file"));
            let n = match copied {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&part);
                    return Err(e);
                }
            };
            std::fs::rename(&part, path).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{n} bytes written to {}", path.display());
        }
        None => {
            std::io::copy(&mut body, &mut std::io::stdout().lock()).context("reading the fetched file")?;
        }
    }
    Ok(())
}

fn print_backup(v: &BackupView) {
    let acked = v.holders.iter().filter(|h| h.acked).count();
    println!("generation:   {}", v.generation);
    println!("threshold:    {} of {}", v.threshold, v.holders.len());
    println!("acknowledged: {acked}/{}", v.holders.len());
    println!("re-shares:    {}", v.reshares);
    for h in &v.holders {
        println!(
            "holder {}: {} {} (last seen unix ms {})",
            h.index,
            h.peer_id,
            if h.acked { "acked" } else { "waiting" },
            h.last_seen_ms
        );
    }
}

/// Back the node's key up with `holders`, then wait up to `wait_s` for their acknowledgements.
pub fn backup(api: &str, holders: &[String], threshold: u8, passphrase: &str, wait_s: u64) -> Result<()> {
    if holders.is_empty() {
        bail!("name the holders: --holder PEER_ID, once per share (5 by default)");
    }
    let req =
        BackupRequest { holders: holders.to_vec(), threshold: Some(threshold), passphrase: passphrase.to_string() };
    let body = serde_json::to_value(req)?;
    let mut v: BackupView =
        call(agent().post(&url(api, "/identity/backup")), Some(Body::Json(body)), api)?.into_json()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_s);
    while v.holders.iter().any(|h| !h.acked) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
        v = get_json(api, "/identity/backup")?;
    }
    print_backup(&v);
    let acked = v.holders.iter().filter(|h| h.acked).count();
    if acked < usize::from(v.threshold) {
        bail!("only {acked} holders acknowledged within {wait_s} s, {} needed to recover (the node keeps sending; see `swarm identity backup status`)", v.threshold);
    }
    if acked < v.holders.len() {
        eprintln!("warning: {} holders have not acknowledged yet (the node keeps sending)", v.holders.len() - acked);
    }
    Ok(())
}

pub fn backup_status(api: &str, json: bool) -> Result<()> {
    let v: BackupView = get_json(api, "/identity/backup")?;
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if v.generation == 0 {
        println!("no backup made by this node");
    } else {
        print_backup(&v);
    }
    Ok(())
}

pub fn recover(api: &str, user_id: &str, holders: &[String], passphrase: &str, timeout_s: u64) -> Result<()> {
    let req = RecoverRequest {
        user_id: user_id.to_string(),
        holders: holders.to_vec(),
        passphrase: passphrase.to_string(),
        timeout_ms: Some(timeout_s * 1000),
    };
    let body = serde_json::to_value(req)?;
    let r: Recovered = call(agent().post(&url(api, "/identity/recover")), Some(Body::Json(body)), api)?.into_json()?;
    for h in &r.holders {
        eprintln!("holder {}: {}", h.peer_id, h.state);
    }
    println!("peer id: {}", r.peer_id);
    println!("user id: {}", r.user_id);
    if let Some(p) = &r.previous_peer_id {
        println!("previous: {p} (kept as identity.key.previous)");
    }
    eprintln!("restart the node to run as the recovered identity; then back it up again (`swarm identity backup`) so fresh shares replace the ones just used");
    Ok(())
}
