//! Raw HTTP/1.1 over a TCP socket, for probing a node's control API with requests no client
//! library would send (truncated, unframed, stalled, oversized), and what the node process uses
//! (memory, file descriptors) read from /proc.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One parsed response.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned();
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &body)
            .finish()
    }
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.header("content-type"), Some("application/json"), "not JSON: {self:?}");
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:?}"))
    }

    /// The `error` of a JSON error body; the status must be `status`.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{self:?} body {}", String::from_utf8_lossy(&self.body));
        let v = self.json();
        v["error"].as_str().unwrap_or_else(|| panic!("no `error` string in {v}")).to_string()
    }
}

/// `host:port` of an API URL such as `http://127.0.0.1:7700`.
pub fn host_port(api: &str) -> String {
    api.trim_start_matches("http://").trim_end_matches('/').to_string()
}

pub fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_nodelay(true).unwrap();
    s
}

/// A connection whose receive buffer is held small (no autotuning), so a client that does not
/// read makes the node's writes block after a few KiB rather than tens of MiB.
pub fn connect_small_window(addr: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let to: std::net::SocketAddr = addr.parse().unwrap();
    let s = Socket::new(Domain::for_address(to), Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(16 * 1024).unwrap();
    s.connect(&to.into()).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.into()
}

/// A request's head (request line, `Host`, `Connection: close`, then `headers`) and `body`.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// Send `bytes` and read the answer (within `within`).
pub fn exchange(addr: &str, bytes: &[u8], within: Duration) -> Result<Answer, String> {
    let mut s = connect(addr);
    s.write_all(bytes).map_err(|e| format!("sending: {e}"))?;
    read_answer(&mut s, within)
}

/// A request with a small body, Content-Length set.
pub fn call(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let len = body.len().to_string();
    let mut h: Vec<(&str, &str)> = headers.to_vec();
    if !body.is_empty() {
        h.push(("Content-Length", &len));
    }
    exchange(addr, &request(method, path, &h, body), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Read one response: its head, then Content-Length bytes of body (or up to EOF without one).
pub fn read_answer(s: &mut TcpStream, within: Duration) -> Result<Answer, String> {
    let deadline = Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    // The head once parsed (its body still empty), and where the body starts in `buf`.
    let mut head: Option<(Answer, usize)> = None;
    loop {
        if let Some((a, at)) = &mut head {
            if let Some(n) = a.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
                if buf.len() >= *at + n {
                    a.body = buf[*at..*at + n].to_vec();
                    return Ok(head.unwrap().0);
                }
            }
        }
        let left = deadline.checked_duration_since(Instant::now()).ok_or("no complete answer in time")?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        let n = match s.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!("no complete answer within {within:?} (got {} bytes)", buf.len()))
            }
            Err(e) => return Err(format!("reading: {e} (got {} bytes)", buf.len())),
        };
        if n == 0 {
            return match head {
                Some((mut a, at)) => {
                    a.body = buf[at..].to_vec();
                    Ok(a)
                }
                None => Err(format!("connection closed after {} bytes, no answer", buf.len())),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        if head.is_none() {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(at) = r.parse(&buf).map_err(|e| format!("bad answer: {e}"))? {
                let headers = r
                    .headers
                    .iter()
                    .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect();
                head = Some((Answer { status: r.code.unwrap_or(0), headers, body: Vec::new() }, at));
            }
        }
    }
}

/// Whether the server closes `s` (EOF or reset) within `within`; bytes it sends first are
/// discarded.
pub fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut chunk = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        s.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
        match s.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
    false
}

/// A `/proc/PID/status` figure in KiB (VmRSS, VmHWM).
pub fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} for {pid}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}
