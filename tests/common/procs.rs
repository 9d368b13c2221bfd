//! Real processes for end-to-end tests: `swarm rendezvous` and `swarm node` children on loopback
//! (or inside network namespaces), their announced addresses read from stdout, their control
//! APIs polled with bounded waits. Children are killed when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const PASSPHRASE: &str = "test passphrase";

/// The `swarm` binary under test: this build's, or another one named by `SWARM_TEST_BIN` (to
/// run the end-to-end tests against an older build).
pub fn bin() -> std::ffi::OsString {
    std::env::var_os("SWARM_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_swarm").into())
}

pub fn swarm() -> Command {
    let mut c = Command::new(bin());
    c.env("SWARM_PASSPHRASE", PASSPHRASE);
    c
}

/// A child process whose stdout lines are collected on a thread.
pub struct Proc {
    pub name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    /// Start `cmd` (stdout piped, stderr to a log file under `logs`).
    pub fn spawn(name: &str, mut cmd: Command, logs: &Path) -> Proc {
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        cmd.stdout(Stdio::piped()).stderr(Stdio::from(log)).stdin(Stdio::null());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc { name: name.to_string(), child, lines, seen: Vec::new() }
    }

    /// The rest of the first stdout line starting with `prefix`, waiting up to `within`.
    pub fn line(&mut self, prefix: &str, within: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.starts_with(prefix)) {
            return l[prefix.len()..].trim().to_string();
        }
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return rest.trim().to_string();
                    }
                }
                Err(_) => break,
            }
        }
        panic!("{}: no `{prefix}` line within {within:?}; stdout so far: {:?}", self.name, self.seen)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit (within `within`).
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "{} did not stop within {within:?} of SIGTERM", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A rendezvous server on `ip`, port chosen by the OS; returns it and its ws:// URL.
pub fn rendezvous(ip: &str, logs: &Path, wrap: Option<&[&str]>) -> (Proc, String) {
    let mut cmd = wrapped(wrap);
    cmd.args(["rendezvous", "--listen", &format!("{ip}:0")]);
    let mut p = Proc::spawn("rendezvous", cmd, logs);
    let url = p.line("rendezvous:", Duration::from_secs(30));
    (p, url)
}

/// `swarm` itself, or `swarm` run through a wrapper such as `ip netns exec NS`.
pub fn wrapped(wrap: Option<&[&str]>) -> Command {
    match wrap {
        None => swarm(),
        Some(w) => {
            let mut c = Command::new(w[0]);
            c.args(&w[1..]).arg(bin()).env("SWARM_PASSPHRASE", PASSPHRASE);
            c
        }
    }
}

/// A running `swarm node` and what it announced.
pub struct NodeProc {
    pub proc: Proc,
    pub api: String,
    pub peer_id: String,
    pub data: PathBuf,
    pub wrap: Option<Vec<String>>,
}

pub struct NodeOpts<'a> {
    pub data: PathBuf,
    pub rendezvous: Vec<String>,
    pub peers: Vec<String>,
    pub bind_ip: &'a str,
    /// Serve a rendezvous of its own on this address (newcomers may join through it).
    pub rendezvous_listen: Option<String>,
    pub wrap: Option<&'a [&'a str]>,
}

impl<'a> NodeOpts<'a> {
    pub fn new(data: PathBuf, rendezvous: &[String]) -> Self {
        NodeOpts {
            data,
            rendezvous: rendezvous.to_vec(),
            peers: vec![],
            bind_ip: "127.0.0.1",
            rendezvous_listen: None,
            wrap: None,
        }
    }
}

pub fn start_node(name: &str, o: NodeOpts, logs: &Path) -> NodeProc {
    let mut cmd = wrapped(o.wrap);
    cmd.args(["node", "--api", "127.0.0.1:0", "--bind-ip", o.bind_ip, "--data"]).arg(&o.data);
    for r in &o.rendezvous {
        cmd.args(["--rendezvous", r]);
    }
    for p in &o.peers {
        cmd.args(["--peer", p]);
    }
    if let Some(l) = &o.rendezvous_listen {
        cmd.args(["--rendezvous-listen", l]);
    }
    let mut proc = Proc::spawn(name, cmd, logs);
    let peer_id = proc.line("peer id:", Duration::from_secs(60));
    let api = proc.line("api:", Duration::from_secs(30));
    NodeProc { proc, api, peer_id, data: o.data, wrap: o.wrap.map(|w| w.iter().map(|s| s.to_string()).collect()) }
}

impl NodeProc {
    /// Run a CLI command against this node's API (through its wrapper, if any).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let wrap: Option<Vec<&str>> = self.wrap.as_ref().map(|w| w.iter().map(String::as_str).collect());
        let mut c = wrapped(wrap.as_deref());
        c.args(args).args(["--api", &self.api]);
        c.output().unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        let out = self.cli(&["status", "--json"]);
        assert!(out.status.success(), "status of {}: {}", self.proc.name, String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn connections(&self) -> usize {
        self.status()["connections"].as_u64().unwrap() as usize
    }

    /// Peer ids of the open links.
    pub fn linked(&self) -> Vec<String> {
        let out = self.cli(&["peers", "--json"]);
        assert!(out.status.success(), "peers of {}: {}", self.proc.name, String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let connected = v["connected"].as_array().unwrap();
        // Every linked peer has a standing, and none of these honest test peers is graylisted.
        for p in connected {
            let standing = p["standing"].as_str().unwrap_or_else(|| panic!("no standing in {p}"));
            assert!(["Trusted", "Acceptable"].contains(&standing), "{} sees {p} as {standing}", self.proc.name);
        }
        connected.iter().map(|p| p["peer_id"].as_str().unwrap().to_string()).collect()
    }
}

/// Where the children's stderr logs go; if the test panics (or SWARM_TEST_LOGS is set), their
/// last lines are printed.
pub struct Logs {
    pub dir: PathBuf,
}

impl Logs {
    pub fn new(dir: PathBuf) -> Logs {
        std::fs::create_dir_all(&dir).unwrap();
        Logs { dir }
    }
}

impl Drop for Logs {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("SWARM_TEST_LOGS").is_none() {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" rtc") && !l.contains("webrtc::")).collect();
            eprintln!("==== {} ({} lines, webrtc internals left out)", f.display(), lines.len());
            let keep = if std::env::var_os("SWARM_TEST_LOGS").is_some() { 400 } else { 40 };
            for l in &lines[lines.len().saturating_sub(keep)..] {
                eprintln!("{l}");
            }
        }
    }
}

/// Poll `cond` every 250 ms until it holds or `within` passes; the failure names `what`.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    let deadline = start + within;
    loop {
        match cond() {
            Ok(()) => return eprintln!("{what}: after {:.1} s", start.elapsed().as_secs_f64()),
            Err(e) if Instant::now() >= deadline => panic!("{what}: not within {within:?}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// A command's stdout, asserting it succeeded (its stderr in the failure).
pub fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A command's stderr, asserting it failed.
pub fn failed(out: &std::process::Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} should fail: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}
