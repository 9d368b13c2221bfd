//! Run the loopback benchmark: `cargo run --release -p swarm-transport-webrtc --example bench --
//! [setups=N] [rtt=N] [mib=N] [check_ms=N] [mtu=N] [rwnd=N] [sendbuf=N] [tcp=0]`.
//! The overrides exist to compare settings; the defaults are the transport's.

use swarm_transport_webrtc::bench::{run, BenchOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut o = BenchOptions::default();
    for arg in std::env::args().skip(1) {
        let (k, v) = arg.split_once('=').ok_or_else(|| format!("expected key=value, got {arg}"))?;
        let n: u64 = v.parse()?;
        match k {
            "setups" => o.setups = n as usize,
            "rtt" => o.round_trips = n as usize,
            "mib" => o.throughput_bytes = (n as usize) << 20,
            "frame_kib" => o.frame_bytes = (n as usize) << 10,
            "window_mib" => o.window_bytes = (n as usize) << 20,
            "check_ms" => o.config.ice_check_interval_ms = n,
            "mtu" => o.config.sctp_mtu_bytes = Some(n as u32),
            "rwnd" => o.config.sctp_receive_buffer_bytes = n as u32,
            "sendbuf" => o.config.send_buffer_limit_bytes = n as usize,
            "msg" => o.config.max_message_bytes = n as usize,
            "tcp" => o.tcp = n != 0,
            "nudge_ms" => o.config.setup_nudge_interval_ms = n,
            "udpbuf" => o.config.udp_socket_buffer_bytes = n as usize,
            _ => return Err(format!("unknown option {k}").into()),
        }
    }
    println!("{}", run(o)?);
    Ok(())
}
