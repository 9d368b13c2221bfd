//! A hostile probe of a live `swarm node`'s control API: malformed, oversized, unframed,
//! truncated and stalled requests, wrong methods and routes, floods of connections and requests,
//! names no header can carry, and links that reach odd roots. After each class of input the node
//! still answers /status, and its peak resident memory stays under [`MAX_NODE_MIB`].

mod common;

use common::http::*;
use common::procs::*;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};
use swarm_engine::content::{self, ChunkId, FileKey, Inventory, Role, MAX_CHUNK_BYTES};
use swarm_engine::identity::Identity;
use swarm_engine::storage::heed_store::HeedStorage;

/// Peak resident memory a node may reach under this probe (it idles at a few tens of MiB; the
/// largest body sent is 300 MB and must never be held).
const MAX_NODE_MIB: u64 = 128;
/// The API's upload limit, as the node states it in its errors.
const MAX_UPLOAD_BYTES: u64 = 256 * 1024 * 1024;
/// The API's connection bound, and the slack for the node's other descriptors coming and going.
const MAX_API_CONNECTIONS: usize = 64;
const FD_SLACK: usize = 8;

/// A node under probe; dropped in field order (the node before its logs are printed).
struct Probe {
    node: NodeProc,
    addr: String,
    _logs: Logs,
    t: tempfile::TempDir,
}

fn probe(name: &str) -> Probe {
    probe_seeded(name, &[])
}

/// A node whose chunk store holds `chunks` before it starts (content others published).
fn probe_seeded(name: &str, chunks: &[(ChunkId, Vec<u8>)]) -> Probe {
    let t = tempfile::tempdir().unwrap();
    let logs = Logs::new(t.path().join("logs"));
    let data = t.path().join("node");
    if !chunks.is_empty() {
        seed(&data, chunks);
    }
    let node = start_node(name, NodeOpts::new(data, &[]), &logs.dir);
    let addr = host_port(&node.api);
    Probe { node, addr, _logs: logs, t }
}

fn seed(data: &Path, chunks: &[(ChunkId, Vec<u8>)]) {
    let mut inv = Inventory::open(HeedStorage::open(&data.join("content")).unwrap(), 1 << 30).unwrap();
    for (id, bytes) in chunks {
        inv.put_chunk(id, bytes, Role::Replica).unwrap();
    }
}

impl Probe {
    fn pid(&self) -> u32 {
        self.node.proc.pid()
    }

    /// The node still answers /status with its own id, and has stayed within its memory bound.
    fn still_serving(&self, after: &str) {
        let a = call(&self.addr, "GET", "/status", &[], b"");
        assert_eq!(a.status, 200, "/status after {after}: {a:?}");
        assert_eq!(a.json()["peer_id"], self.node.peer_id.as_str(), "after {after}");
        let (rss, hwm) = (proc_kib(self.pid(), "VmRSS") / 1024, proc_kib(self.pid(), "VmHWM") / 1024);
        eprintln!("after {after}: RSS {rss} MiB, peak {hwm} MiB");
        assert!(hwm < MAX_NODE_MIB, "after {after}: the node's peak RSS reached {hwm} MiB");
    }

    fn publish(&self, name: &str, data: &[u8]) -> String {
        let a = call(&self.addr, "POST", &format!("/publish/file?name={name}"), &[], data);
        assert_eq!(a.status, 200, "publish {name}: {a:?}");
        a.json()["link"].as_str().unwrap().to_string()
    }
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

/// A request (method, path, headers, body) and its answer: the status, and words its error says.
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a [u8], u16, &'a str);

#[test]
fn every_error_is_json_naming_what_was_wrong() {
    let p = probe("errors");
    let root = "ab".repeat(32);
    let cases: Vec<Case> = vec![
        ("GET", "/nope".into(), vec![], b"", 404, "no route GET /nope"),
        ("GET", "/".into(), vec![], b"", 404, "GET /status"),
        ("POST", "/status".into(), vec![], b"", 405, "POST is not allowed on /status"),
        ("GET", "/connect".into(), vec![], b"", 405, "GET is not allowed on /connect"),
        ("DELETE", format!("/fetch/{root}"), vec![], b"", 405, "DELETE"),
        ("POST", "/connect".into(), vec![], b"{}", 415, "Content-Type: application/json"),
        ("POST", "/connect".into(), vec![("Content-Type", "text/plain")], b"{}", 415, "Content-Type"),
        ("POST", "/connect".into(), vec![JSON], b"{\"peer_id\":", 400, "parse the request body as JSON"),
        ("POST", "/connect".into(), vec![JSON], b"\xff\xfe", 400, "JSON"),
        ("POST", "/connect".into(), vec![JSON], b"{\"peer_id\":5}", 422, "peer_id: invalid type"),
        ("POST", "/connect".into(), vec![JSON], b"[]", 422, "expected struct ConnectRequest"),
        ("POST", "/connect".into(), vec![JSON], b"{}", 422, "missing field `peer_id`"),
        ("POST", "/connect".into(), vec![JSON], b"{\"peer_id\":\"zz\"}", 400, "not 64 hexadecimal"),
        ("POST", "/publish/post".into(), vec![JSON], b"{\"text\":null}", 422, "text"),
        ("POST", "/publish/file?name=a&name=b".into(), vec![], b"x", 400, "duplicate field `name`"),
        ("POST", "/publish/file?name=".into(), vec![], b"x", 400, "empty"),
        ("GET", "/fetch/zz".into(), vec![], b"", 400, "root chunk id"),
        ("GET", format!("/fetch/{root}:00"), vec![], b"", 400, "file key"),
    ];
    for (method, path, headers, body, status, says) in cases {
        let a = call(&p.addr, method, &path, &headers, body);
        let error = a.error(status);
        assert!(error.contains(says), "{method} {path}: `{error}` does not say `{says}`");
        if status == 405 {
            assert!(a.header("allow").is_some(), "{method} {path}: no Allow header: {a:?}");
        }
    }
    // Requests that are not HTTP at all, or end half-way: the node drops them and goes on.
    for junk in [
        &b"\x00\x01\x02 garbage\r\n\r\n"[..],
        b"GET /sta",
        b"POST /connect HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"pe",
    ] {
        let mut s = connect(&p.addr);
        s.write_all(junk).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(5)), "{junk:?}: the connection stays open");
    }
    p.still_serving("malformed requests");
}

/// Send a 300 MB body as fast as the node takes it, with or without Content-Length; the answer,
/// if the node's close did not reset the connection first.
fn push_300_mb(addr: &str, path: &str, headers: &[(&str, &str)], framed: bool) -> Option<Answer> {
    const TOTAL: usize = 300_000_000;
    let mut s = connect(addr);
    let len = TOTAL.to_string();
    let mut head: Vec<(&str, &str)> = headers.to_vec();
    head.push(if framed { ("Content-Length", &len) } else { ("Transfer-Encoding", "chunked") });
    s.write_all(&request("POST", path, &head, b"")).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let piece = vec![b'z'; 1 << 20];
        let frame_head = format!("{:x}\r\n", piece.len());
        let mut sent = 0;
        while sent < TOTAL {
            let r = if framed {
                w.write_all(&piece)
            } else {
                w.write_all(frame_head.as_bytes())
                    .and_then(|()| w.write_all(&piece))
                    .and_then(|()| w.write_all(b"\r\n"))
            };
            if r.is_err() {
                break;
            }
            sent += piece.len();
        }
        sent
    });
    let answer = read_answer(&mut s, Duration::from_secs(20));
    drop(s);
    let sent = writer.join().unwrap();
    eprintln!(
        "{path} ({}): {sent} bytes accepted by the socket, answer {answer:?}",
        if framed { "framed" } else { "chunked" }
    );
    answer.ok()
}

#[test]
fn oversized_unframed_and_truncated_bodies_are_refused_before_they_are_read() {
    let p = probe("oversized");
    // Content-Length over the limit: 413 at once, before a byte of the body is sent.
    let head = request("POST", "/publish/file?name=big.bin", &[("Content-Length", "300000000")], b"");
    let a = exchange(&p.addr, &head, Duration::from_secs(3)).expect("413 before the body");
    assert!(a.error(413).contains(&MAX_UPLOAD_BYTES.to_string()), "{a:?}");
    // The same on a JSON route, against its own, small limit.
    let head = request("POST", "/connect", &[JSON, ("Content-Length", "1000000")], b"");
    let a = exchange(&p.addr, &head, Duration::from_secs(3)).expect("413 before the body");
    assert!(a.error(413).contains("65536"), "{a:?}");
    // No Content-Length: an upload is refused (411); an unframed JSON body is cut at its limit.
    let chunked = [("Transfer-Encoding", "chunked")];
    let a = exchange(
        &p.addr,
        &request("POST", "/publish/file?name=c.bin", &chunked, b"5\r\nhello\r\n0\r\n\r\n"),
        Duration::from_secs(5),
    );
    assert!(a.unwrap().error(411).contains("Content-Length"));
    let text = format!("{{\"text\":\"{}\"}}", "a".repeat(100_000));
    let body = format!("{:x}\r\n{text}\r\n0\r\n\r\n", text.len());
    let a = exchange(
        &p.addr,
        &request("POST", "/publish/post", &[JSON, chunked[0]], body.as_bytes()),
        Duration::from_secs(5),
    );
    assert!(a.unwrap().error(413).contains("length limit"));
    // A body shorter than its Content-Length, the client gone: nothing is published.
    let mut s = connect(&p.addr);
    s.write_all(&request("POST", "/publish/file?name=t.bin", &[("Content-Length", "1000")], b"only 19 bytes here."))
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(5)));
    p.still_serving("over-limit headers");
    // 300 MB really sent, framed and unframed: refused, and never held by the node.
    for framed in [true, false] {
        if let Some(a) = push_300_mb(&p.addr, "/publish/file?name=huge.bin", &[], framed) {
            assert_eq!(a.status, if framed { 413 } else { 411 }, "{a:?}");
        }
        p.still_serving(if framed { "a 300 MB upload" } else { "a 300 MB chunked upload" });
    }
    if let Some(a) = push_300_mb(&p.addr, "/publish/post", &[JSON], false) {
        assert_eq!(a.status, 413, "{a:?}");
    }
    p.still_serving("a 300 MB chunked JSON body");
}

/// A request sent and never read past its first bytes (the node's writes block).
fn hold(addr: &str, bytes: &[u8]) -> TcpStream {
    let mut s = connect(addr);
    s.write_all(bytes).unwrap();
    s
}

#[test]
fn transfers_beyond_their_limits_get_503_with_retry_after_and_stalled_readers_are_let_go() {
    let p = probe("transfers");
    // Two uploads in progress (a byte of each sent, the rest held back)...
    let held: Vec<TcpStream> = (0..2)
        .map(|i| {
            hold(&p.addr, &request("POST", &format!("/publish/file?name=u{i}"), &[("Content-Length", "1000000")], b"x"))
        })
        .collect();
    // Taken up by the node (the host holds both bodies; a bounded wait, not an assertion).
    for _ in 0..20 {
        if call(&p.addr, "GET", "/status", &[], b"").json()["pending_sync"] == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // ...so a third is refused at once, and told when to come back.
    let a = call(&p.addr, "POST", "/publish/file?name=third", &[], b"abc");
    assert!(a.error(503).contains("uploads"), "{a:?}");
    assert_eq!(a.header("retry-after"), Some("1"));
    drop(held);
    wait_until("upload slots freed once their clients left", Duration::from_secs(5), || {
        let a = call(&p.addr, "POST", "/publish/file?name=after", &[], b"abc");
        if a.status == 200 {
            Ok(())
        } else {
            Err(format!("{a:?}"))
        }
    });

    // A file large enough that a client which never reads blocks the node's writes.
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let link = p.publish("big.bin", &data);
    let fetch = request("GET", &format!("/fetch/{link}"), &[], b"");
    let stalled: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = connect_small_window(&p.addr);
            s.write_all(&fetch).unwrap();
            // Its answer has begun (peeked, not read: the window stays full).
            let mut head = [0u8; 12];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let n = s.peek(&mut head).unwrap();
            assert_eq!(&head[..n], b"HTTP/1.1 200", "a stalled reader's fetch");
            s
        })
        .collect();
    wait_until("a fifth fetch refused while four readers stall", Duration::from_secs(10), || {
        let a = exchange(&p.addr, &fetch, Duration::from_secs(10))?;
        if a.status == 503 && a.header("retry-after") == Some("1") && a.error(503).contains("fetches") {
            Ok(())
        } else {
            Err(format!("status {}", a.status))
        }
    });
    // The stalled writes are given up on, which frees the slots (the readers are still there).
    let started = Instant::now();
    wait_until("a fetch served again", Duration::from_secs(20), || {
        let a = exchange(&p.addr, &fetch, Duration::from_secs(10))?;
        if a.status == 200 && a.body == data {
            Ok(())
        } else {
            Err(format!("status {}", a.status))
        }
    });
    eprintln!("stalled readers let go after {:.1} s", started.elapsed().as_secs_f64());
    drop(stalled);
    p.still_serving("transfers over their limits");
}

#[test]
fn slow_clients_are_cut_off_and_cannot_hold_every_connection() {
    let p = probe("slow");
    let fds_at_rest = open_fds(p.pid());
    // A request head that never ends (slow-loris).
    let mut loris = hold(&p.addr, b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    // A keep-alive connection left idle after one request.
    let mut idle = hold(&p.addr, b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(read_answer(&mut idle, Duration::from_secs(5)).unwrap().status, 200);
    // Bodies that stall part-way, on a JSON route and on an upload.
    let mut json = hold(&p.addr, &request("POST", "/connect", &[JSON, ("Content-Length", "100")], b"{\"peer_id\""));
    let mut upload =
        hold(&p.addr, &request("POST", "/publish/file?name=s", &[("Content-Length", "1000")], b"0123456789"));
    // A flood of slow-loris connections, more than the API serves at once.
    let mut flood: Vec<TcpStream> = (0..100).map(|_| hold(&p.addr, b"GET /status HTTP/1.1\r\n")).collect();
    std::thread::sleep(Duration::from_millis(1000));
    let fds = open_fds(p.pid());
    assert!(
        fds <= fds_at_rest + MAX_API_CONNECTIONS + FD_SLACK,
        "{fds} descriptors open under a flood of 104 connections ({fds_at_rest} at rest)"
    );
    // Each is cut off within its timeout (5 s for a head, an idle connection, a body).
    assert!(closed_within(&mut loris, Duration::from_secs(10)), "a slow-loris head is never cut off");
    assert!(closed_within(&mut idle, Duration::from_secs(10)), "an idle connection is kept forever");
    for (what, s) in [("JSON body", &mut json), ("upload body", &mut upload)] {
        let a = read_answer(s, Duration::from_secs(10)).unwrap_or_else(|e| panic!("a stalled {what}: {e}"));
        assert!(a.error(408).contains("stalled"), "{what}: {a:?}");
    }
    // The flood is worked off by the same timeouts, the backlog after the first 64.
    for s in &mut flood {
        assert!(closed_within(s, Duration::from_secs(15)), "a flooding connection is never cut off");
    }
    p.still_serving("slow clients");
}

#[test]
fn a_flood_of_concurrent_requests_is_answered() {
    let p = probe("flood");
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let addr = p.addr.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let (a, want) = match (w + i) % 4 {
                        0 => (call(&addr, "GET", "/status", &[], b""), 200),
                        1 => (call(&addr, "GET", "/nope", &[], b""), 404),
                        2 => (call(&addr, "POST", "/connect", &[JSON], b"{"), 400),
                        _ => (
                            call(&addr, "POST", &format!("/publish/file?name=f{w}-{i}"), &[], &vec![w as u8; 1 << 20]),
                            200,
                        ),
                    };
                    // Uploads beyond the slots are refused, with a JSON error like the rest.
                    if !(a.status == 503 && want == 200) {
                        assert_eq!(a.status, want, "{a:?}");
                    }
                    a.json();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    p.still_serving("a flood of 400 requests");
}

#[test]
fn a_name_with_control_characters_is_refused_and_one_stored_by_others_still_fetches() {
    // A file another node published under a name no HTTP header can carry as it is.
    let name = "evil\r\nname\u{7}\"é.txt";
    let data = b"bytes of a file whose name no header can carry ".repeat(100);
    let key = FileKey::from_bytes([9; 32]);
    let share =
        content::share_file(&Identity::from_secret(&[7; 32]), name, &data, MAX_CHUNK_BYTES, key, 1_000).unwrap();
    let mut chunks: Vec<(ChunkId, Vec<u8>)> = share.chunks.iter().map(|c| (c.id, c.ciphertext.clone())).collect();
    chunks.push((share.root.id, share.root.ciphertext.clone()));
    let p = probe_seeded("names", &chunks);
    let link = share.link.to_string();

    let a = call(&p.addr, "GET", &format!("/fetch/{link}"), &[], b"");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, data);
    assert_eq!(
        a.header("content-disposition"),
        Some("attachment; filename=\"evil__name___.txt\"; filename*=UTF-8''evil%0D%0Aname%07%22%C3%A9.txt")
    );
    let out = p.t.path().join("fetched.txt");
    let got = p.node.cli(&["get", &link, "--out", out.to_str().unwrap()]);
    assert!(got.status.success(), "swarm get: {}", String::from_utf8_lossy(&got.stderr));
    assert_eq!(std::fs::read(&out).unwrap(), data);

    // Publishing such a name is refused, with the character named.
    for (query, code) in [("a%0Ab", "U+000A"), ("tab%09.txt", "U+0009"), ("del%7F", "U+007F"), ("c1%C2%9B", "U+009B")] {
        let a = call(&p.addr, "POST", &format!("/publish/file?name={query}"), &[], b"data");
        let e = a.error(400);
        assert!(e.contains("control character") && e.contains(code), "{query}: {e}");
    }
    // Any printable name goes through, and comes back in both forms.
    let link = p.publish("r%C3%A9sum%C3%A9%20(final).pdf", b"%PDF");
    let a = call(&p.addr, "GET", &format!("/fetch/{link}"), &[], b"");
    assert_eq!(
        a.header("content-disposition"),
        Some("attachment; filename=\"r_sum_ (final).pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%28final%29.pdf")
    );
    p.still_serving("control-character names");
}

#[test]
fn a_keyless_link_to_a_plaintext_manifest_root_is_refused_not_a_panic() {
    // Anyone can publish a manifest root unencrypted: it opens without a key, as a post would.
    let key = || FileKey::from_bytes([3; 32]);
    let data = vec![5u8; 1000];
    let share =
        content::share_file(&Identity::from_secret(&[4; 32]), "plain.txt", &data, MAX_CHUNK_BYTES, key(), 1_000)
            .unwrap();
    // The sealed root's own chunk index (past every data chunk's).
    let plain = content::chunk::decrypt(&key(), u32::MAX, &share.root.id, &share.root.ciphertext).unwrap();
    let plain_root = ChunkId::of(&plain);
    let mut chunks: Vec<(ChunkId, Vec<u8>)> = share.chunks.iter().map(|c| (c.id, c.ciphertext.clone())).collect();
    chunks.push((plain_root, plain));
    let p = probe_seeded("keyless", &chunks);

    let a = call(&p.addr, "GET", &format!("/fetch/{plain_root}"), &[], b"");
    let e = a.error(422);
    assert!(e.contains("plaintext manifest") && e.contains("ROOT:KEY"), "{e}");
    let status = call(&p.addr, "GET", "/status", &[], b"").json();
    assert_eq!(status["pending_sync"], 0, "the fetch is over: {status}");
    p.still_serving("a keyless link to a plaintext manifest");
}

#[test]
fn put_of_a_file_over_the_limit_names_the_limit_and_smaller_files_stream() {
    let p = probe("put");
    let huge = p.t.path().join("huge.bin");
    // Sparse: 300 MB long, no disk used.
    std::fs::File::create(&huge).unwrap().set_len(300_000_000).unwrap();
    let out = p.node.cli(&["put", huge.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("300000000 bytes") && err.contains(&format!("at most {MAX_UPLOAD_BYTES} bytes")), "{err}");
    assert!(!err.contains("Broken pipe") && !err.contains("running?"), "{err}");

    let small = p.t.path().join("small.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&small, &data).unwrap();
    let out = p.node.cli(&["put", small.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let back = p.t.path().join("back.bin");
    let out = p.node.cli(&["get", &link, "--out", back.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&back).unwrap(), data);
    p.still_serving("swarm put");
}
