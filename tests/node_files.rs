//! A real node's file API (issue 11): a 64 MiB upload and download stream through with the
//! node's memory bounded (read from /proc/PID/status), and publications that do not complete
//! (the client cuts the upload short; the node is killed with SIGKILL mid-publication) leave no
//! chunk behind: reclaimed at once in the first case, at the next start in the second.
//! `SWARM_TEST_BIN=path/to/swarm` runs them against another build.

mod common;

use common::procs::*;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarm_engine::files::PublicationRecord;
use swarm_engine::storage::heed_store::HeedStorage;
use swarm_engine::storage::{Storage, Table};

const MIB: u64 = 1 << 20;
const CHUNK: u64 = 256 * 1024;

/// A line of /proc/PID/status, in kB.
fn status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn byte_at(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// `len` deterministic bytes, made as they are read (the test never holds the file).
struct Gen {
    pos: u64,
    len: u64,
}

impl Read for Gen {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len - self.pos) as usize;
        for (i, b) in buf[..n].iter_mut().enumerate() {
            *b = byte_at(self.pos + i as u64);
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout_read(Duration::from_secs(120)).build()
}

fn upload(api: &str, len: u64) -> Result<String, String> {
    let req = agent().post(&format!("{api}/publish/file")).query("name", "big.bin");
    match req.set("Content-Length", &len.to_string()).send(Gen { pos: 0, len }) {
        Ok(r) => Ok(r.into_json::<serde_json::Value>().unwrap()["link"].as_str().unwrap().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Poll `f` every 10 ms on a thread until the returned flag is set; the largest value seen.
fn sample_max(f: impl Fn() -> u64 + Send + 'static) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let mut max = 0;
        while !s.load(Ordering::Relaxed) {
            max = max.max(f());
            std::thread::sleep(Duration::from_millis(10));
        }
        max
    });
    (stop, h)
}

/// The chunks in a stopped node's store, and whether every one is referenced by a completed
/// publication (no orphan) with the journal empty.
fn stored(data: &Path) -> (usize, usize, usize) {
    let s = HeedStorage::open(&data.join("content")).unwrap();
    let chunks = s.value_lens(Table::Chunks).unwrap().len();
    let referenced: usize = PublicationRecord::all(&s).unwrap().iter().map(|(_, r)| 1 + r.chunks.len()).sum();
    (chunks, referenced, s.scan(Table::PublishJournal).unwrap().len())
}

/// The node answers its API. (`pending_sync` no longer counts API requests in flight since issue
/// 14: it counts record writes waiting for replicas, and a lone node's feed record write after a
/// completed publication waits there for good.)
fn idle(node: &NodeProc) {
    wait_until("the API answers", Duration::from_secs(60), || match node.status()["peer_id"].as_str() {
        Some(_) => Ok(()),
        None => Err("no peer id in the status".into()),
    });
}

/// A node on its own (no rendezvous: nothing to link to), its data directory, and its logs.
fn lone_node(t: &tempfile::TempDir, logs: &Path, name: &str) -> (NodeProc, std::path::PathBuf) {
    let data = t.path().join("data");
    let node = start_node(name, NodeOpts::new(data.clone(), &[]), logs);
    idle(&node); // answered once the node has opened its store
    (node, data)
}

/// A lone node that published a 3 MiB file, and its store file with the size it has now.
fn node_with_a_file(t: &tempfile::TempDir, logs: &Path) -> (NodeProc, std::path::PathBuf, std::path::PathBuf, u64) {
    let (node, data) = lone_node(t, logs, "n0");
    upload(&node.api, 3 * MIB).expect("a small file first");
    let db = data.join("content/db/data.mdb");
    let base = std::fs::metadata(&db).unwrap().len();
    (node, data, db, base)
}

#[test]
fn a_64_mib_upload_and_download_stream_with_bounded_memory() {
    let t = tempfile::tempdir().unwrap();
    let logs = Logs::new(t.path().join("logs"));
    let (node, _) = lone_node(&t, &logs.dir, "n0");
    let pid = node.proc.pid();
    let (hwm0, anon0) = (status_kb(pid, "VmHWM:"), status_kb(pid, "RssAnon:"));

    // Up: the node holds a few chunks of it at a time, not the file.
    let size = 64 * MIB;
    let (stop, sampler) = sample_max(move || status_kb(pid, "RssAnon:"));
    let started = Instant::now();
    let link = upload(&node.api, size).expect("upload");
    let up_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (anon_up, hwm) = (sampler.join().unwrap(), status_kb(pid, "VmHWM:"));
    eprintln!("upload of 64 MiB: {up_s:.1} s, VmHWM {hwm0} -> {hwm} kB, RssAnon {anon0} -> max {anon_up} kB");
    assert!(hwm < hwm0 + 32 * 1024, "peak RSS grew by {} kB over a 64 MiB upload", hwm - hwm0);
    assert!(anon_up < anon0 + 32 * 1024, "anonymous RSS grew by {} kB over a 64 MiB upload", anon_up - anon0);

    // Down, streamed: anonymous memory stays bounded (reading the chunks maps store pages,
    // which count as file-backed RSS, not as memory the node holds).
    let (stop, sampler) = sample_max(move || status_kb(pid, "RssAnon:"));
    let started = Instant::now();
    let res = agent().get(&format!("{}/fetch/{link}", node.api)).call().expect("download");
    assert_eq!(res.header("Content-Length"), Some(size.to_string().as_str()), "size from the manifest");
    let mut body = res.into_reader();
    let (mut pos, mut buf) = (0u64, vec![0u8; 64 * 1024]);
    loop {
        let n = body.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().enumerate().all(|(i, b)| *b == byte_at(pos + i as u64)), "bytes differ near {pos}");
        pos += n as u64;
    }
    stop.store(true, Ordering::Relaxed);
    let anon = sampler.join().unwrap();
    eprintln!("download of 64 MiB: {:.1} s, RssAnon {anon0} -> max {anon} kB", started.elapsed().as_secs_f64());
    assert_eq!(pos, size);
    assert!(anon < anon0 + 32 * 1024, "anonymous RSS grew by {} kB over a 64 MiB download", anon - anon0);
}

/// Streaming stores an upload as it comes: one the client cuts short after 8 of 32 MiB has
/// chunks stored already, and they are reclaimed while the node runs.
#[test]
fn an_upload_cut_short_by_the_client_leaves_no_chunks() {
    let t = tempfile::tempdir().unwrap();
    let logs = Logs::new(t.path().join("logs"));
    let (mut node, data, db, base) = node_with_a_file(&t, &logs.dir);
    let addr = node.api.trim_start_matches("http://").to_string();
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    let head =
        format!("POST /publish/file?name=cut.bin HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n", 32 * MIB);
    tcp.write_all(head.as_bytes()).unwrap();
    std::io::copy(&mut Gen { pos: 0, len: 8 * MIB }, &mut tcp).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let grown = std::fs::metadata(&db).unwrap().len().saturating_sub(base);
    assert!(grown >= 4 * MIB, "chunks of the upload are stored as it comes ({grown} bytes so far)");
    drop(tcp);
    idle(&node);
    std::thread::sleep(Duration::from_secs(1));
    assert!(node.proc.terminate(Duration::from_secs(10)).success());
    let (chunks, referenced, journal) = stored(&data);
    assert_eq!(journal, 0, "the cut-short publication was reclaimed while the node ran");
    assert_eq!(chunks, referenced, "{} chunks nothing references", chunks.saturating_sub(referenced));
    assert_eq!(chunks as u64, 3 * MIB / CHUNK + 1, "the small file and its root");
}

/// SIGKILL while a publication is being stored (the store file growing): at the next start the
/// chunks of the unfinished publication are gone, and only completed publications' are left.
#[test]
fn chunks_of_a_publication_cut_short_by_sigkill_are_gone_after_a_restart() {
    let t = tempfile::tempdir().unwrap();
    let logs = Logs::new(t.path().join("logs"));
    let (mut node, data, db, base) = node_with_a_file(&t, &logs.dir);
    let api = node.api.clone();
    let uploader = std::thread::spawn(move || upload(&api, 64 * MIB));
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(&db).unwrap().len() < base + 16 * MIB {
        assert!(Instant::now() < deadline, "the store never grew");
        std::thread::sleep(Duration::from_millis(5));
    }
    node.proc.kill9();
    let _ = uploader.join();
    let (chunks, _, _) = stored(&data);
    assert!(chunks as u64 > 3 * MIB / CHUNK + 1, "the kill came while chunks were being stored");
    let (mut node, _) = lone_node(&t, &logs.dir, "n0-again");
    assert!(node.proc.terminate(Duration::from_secs(10)).success());
    let (chunks, referenced, journal) = stored(&data);
    assert_eq!(journal, 0);
    assert_eq!(chunks, referenced, "{} orphan chunks survived the restart", chunks.saturating_sub(referenced));
}
