//! Loopback benchmark: connection setup time (connect() until both sides report `Connected`),
//! PING/PONG round-trip time, one-way throughput of large frames, and the same RTT and
//! throughput over plain tokio TCP with length-prefixed frames as the ceiling.

use crate::{Events, Signal, SignalPath, WebRtcConfig, WebRtcError, WebRtcTransport};
use bytes::Bytes;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use swarm_engine::transport::{Transport, TransportEvent};
use swarm_engine::types::PeerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// No single step of the benchmark waits longer than this.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Connection setups measured (connect, both sides up, disconnect).
    pub setups: usize,
    /// Sequential PING/PONG round trips.
    pub round_trips: usize,
    /// PING body size.
    pub ping_bytes: usize,
    /// Bytes sent one way in the throughput run.
    pub throughput_bytes: usize,
    /// Engine frame size in the throughput run.
    pub frame_bytes: usize,
    /// Bytes the throughput sender keeps in flight (below the transport's queue bound).
    pub window_bytes: usize,
    /// Also measure TCP on loopback.
    pub tcp: bool,
    /// The transport settings under test (bind_ip should be loopback).
    pub config: WebRtcConfig,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            setups: 20,
            round_trips: 2000,
            ping_bytes: 32,
            throughput_bytes: 256 * 1024 * 1024,
            frame_bytes: 256 * 1024,
            window_bytes: 8 * 1024 * 1024,
            tcp: true,
            config: WebRtcConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct BenchReport {
    pub setups: usize,
    pub setup_ms_median: f64,
    pub setup_ms_min: f64,
    pub setup_ms_max: f64,
    pub round_trips: usize,
    pub rtt_us_p50: f64,
    pub rtt_us_p99: f64,
    pub throughput_bytes: usize,
    pub frame_bytes: usize,
    pub throughput_mb_s: f64,
    pub tcp_rtt_us_p50: Option<f64>,
    pub tcp_rtt_us_p99: Option<f64>,
    pub tcp_throughput_mb_s: Option<f64>,
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
        writeln!(f, "{:<34} {:>12} {:>12}", "loopback 127.0.0.1", "webrtc", "tcp")?;
        writeln!(
            f,
            "{:<34} {:>12.1} {:>12}",
            format!("setup ms, median of {}", self.setups),
            self.setup_ms_median,
            "-"
        )?;
        writeln!(
            f,
            "{:<34} {:>12}",
            "setup ms, min / max",
            format!("{:.1} / {:.1}", self.setup_ms_min, self.setup_ms_max)
        )?;
        let rtt = format!("rtt us p50 ({} round trips)", self.round_trips);
        writeln!(f, "{:<34} {:>12.0} {:>12}", rtt, self.rtt_us_p50, opt(self.tcp_rtt_us_p50, 0))?;
        writeln!(f, "{:<34} {:>12.0} {:>12}", "rtt us p99", self.rtt_us_p99, opt(self.tcp_rtt_us_p99, 0))?;
        let tp = format!("MB/s, {} KiB frames, {} MiB", self.frame_bytes / 1024, self.throughput_bytes >> 20);
        writeln!(f, "{:<34} {:>12.1} {:>12}", tp, self.throughput_mb_s, opt(self.tcp_throughput_mb_s, 1))
    }
}

/// Run the benchmark on a runtime of its own (blocks: call it outside any tokio runtime).
pub fn run(opts: BenchOptions) -> Result<BenchReport, WebRtcError> {
    opts.config.validate()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_async(opts))
}

fn fail(what: impl fmt::Display) -> WebRtcError {
    WebRtcError::Bench(what.to_string())
}

/// Delivers a signal straight to the other transport of the pair.
struct Direct {
    me: PeerId,
    to: Mutex<Option<WebRtcTransport>>,
}

impl SignalPath for Direct {
    fn send(&self, _to: PeerId, signal: &Signal) {
        if let Some(t) = self.to.lock().ok().and_then(|t| t.clone()) {
            t.deliver_signal(self.me, signal.clone());
        }
    }
}

async fn next(rx: &mut Events) -> Result<TransportEvent, WebRtcError> {
    tokio::time::timeout(STEP_TIMEOUT, rx.recv()).await.map_err(|_| fail("timed out"))?.ok_or_else(|| fail("closed"))
}

/// Wait for an event matching `want`, skipping others (late frames, for example).
async fn until(rx: &mut Events, want: impl Fn(&TransportEvent) -> bool) -> Result<(), WebRtcError> {
    loop {
        let ev = next(rx).await?;
        if want(&ev) {
            return Ok(());
        }
        if matches!(ev, TransportEvent::DialFailed { .. }) {
            return Err(fail("dial failed"));
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

async fn run_async(opts: BenchOptions) -> Result<BenchReport, WebRtcError> {
    let rt = tokio::runtime::Handle::current();
    let (ida, idb) = (PeerId([1; 32]), PeerId([2; 32]));
    let (pa, pb) =
        (Arc::new(Direct { me: ida, to: Mutex::new(None) }), Arc::new(Direct { me: idb, to: Mutex::new(None) }));
    // One peer redialling in a tight loop is what the offer budget refuses: the answering side
    // allows the benchmark's setups.
    let setups_u32 = u32::try_from(opts.setups).unwrap_or(u32::MAX);
    let answering = WebRtcConfig {
        peer_offer_burst: opts.config.peer_offer_burst.max(setups_u32),
        offer_burst: opts.config.offer_burst.max(setups_u32),
        ..opts.config.clone()
    };
    let (a, mut ea) = WebRtcTransport::new(ida, opts.config.clone(), pa.clone(), &rt)?;
    let (b, mut eb) = WebRtcTransport::new(idb, answering, pb.clone(), &rt)?;
    *pa.to.lock().map_err(fail)? = Some(b.clone());
    *pb.to.lock().map_err(fail)? = Some(a.clone());
    let up = |p: PeerId| move |e: &TransportEvent| matches!(e, TransportEvent::Connected { peer, .. } if *peer == p);
    let down = |p: PeerId| move |e: &TransportEvent| matches!(e, TransportEvent::Disconnected { peer } if *peer == p);

    let mut report = BenchReport { setups: opts.setups.max(1), round_trips: opts.round_trips, ..Default::default() };
    let mut setups = Vec::new();
    for i in 0..report.setups {
        let start = Instant::now();
        a.connect(idb);
        until(&mut ea, up(idb)).await?;
        until(&mut eb, up(ida)).await?;
        setups.push(start.elapsed().as_secs_f64() * 1e3);
        if i + 1 < report.setups {
            a.disconnect(idb);
            until(&mut ea, down(idb)).await?;
            until(&mut eb, down(ida)).await?;
        }
    }
    setups.sort_by(f64::total_cmp);
    report.setup_ms_median = percentile(&setups, 0.5);
    report.setup_ms_min = setups.first().copied().unwrap_or_default();
    report.setup_ms_max = setups.last().copied().unwrap_or_default();

    let mut pongs = a.take_pongs().ok_or_else(|| fail("pongs taken"))?;
    let body = Bytes::from(vec![0u8; opts.ping_bytes]);
    let mut rtts = Vec::with_capacity(opts.round_trips);
    for _ in 0..opts.round_trips {
        let start = Instant::now();
        a.ping(idb, body.clone());
        tokio::time::timeout(STEP_TIMEOUT, pongs.recv()).await.map_err(|_| fail("pong timed out"))?;
        rtts.push(start.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(f64::total_cmp);
    (report.rtt_us_p50, report.rtt_us_p99) = (percentile(&rtts, 0.5), percentile(&rtts, 0.99));

    let frame = Bytes::from(vec![0x5au8; opts.frame_bytes.max(1)]);
    let frames = opts.throughput_bytes.div_ceil(frame.len()).max(1);
    let window = (opts.window_bytes / frame.len()).max(1);
    let (mut sent, mut got) = (0, 0);
    let start = Instant::now();
    while got < frames {
        while sent < frames && sent - got < window {
            a.send(idb, frame.clone());
            sent += 1;
        }
        if let TransportEvent::Frame { bytes, .. } = next(&mut eb).await? {
            got += 1;
            if bytes.len() != frame.len() {
                return Err(fail("frame size changed in flight"));
            }
        }
    }
    report.throughput_mb_s = mb_s(frames * frame.len(), start.elapsed());
    (report.throughput_bytes, report.frame_bytes) = (frames * frame.len(), frame.len());
    a.shutdown();
    b.shutdown();

    if opts.tcp {
        let (p50, p99, mbs) = tcp(&opts, &frame, frames).await.map_err(fail)?;
        (report.tcp_rtt_us_p50, report.tcp_rtt_us_p99, report.tcp_throughput_mb_s) = (Some(p50), Some(p99), Some(mbs));
    }
    Ok(report)
}

/// RTT and throughput over a TCP loopback connection with u32-length-prefixed frames.
async fn tcp(opts: &BenchOptions, frame: &Bytes, frames: usize) -> std::io::Result<(f64, f64, f64)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let round_trips = opts.round_trips;
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; 1 << 20];
        for _ in 0..round_trips {
            let len = s.read_u32().await? as usize;
            s.read_exact(&mut buf[..len]).await?;
            s.write_u32(len as u32).await?;
            s.write_all(&buf[..len]).await?;
        }
        let mut total = 0usize;
        for _ in 0..frames {
            let len = s.read_u32().await? as usize;
            s.read_exact(&mut buf[..len]).await?;
            total += len;
        }
        s.write_u8(1).await?;
        Ok::<usize, std::io::Error>(total)
    });
    let mut c = TcpStream::connect(addr).await?;
    c.set_nodelay(true)?;
    let ping = vec![0u8; opts.ping_bytes];
    let mut back = vec![0u8; opts.ping_bytes];
    let mut rtts = Vec::with_capacity(round_trips);
    for _ in 0..round_trips {
        let start = Instant::now();
        let mut msg = Vec::with_capacity(4 + ping.len());
        msg.extend_from_slice(&(ping.len() as u32).to_be_bytes());
        msg.extend_from_slice(&ping);
        c.write_all(&msg).await?;
        let len = c.read_u32().await? as usize;
        c.read_exact(&mut back[..len]).await?;
        rtts.push(start.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(f64::total_cmp);
    let start = Instant::now();
    for _ in 0..frames {
        c.write_u32(frame.len() as u32).await?;
        c.write_all(frame).await?;
    }
    c.read_u8().await?;
    let took = start.elapsed();
    let total = server.await.map_err(std::io::Error::other)??;
    Ok((percentile(&rtts, 0.5), percentile(&rtts, 0.99), mb_s(total, took)))
}
