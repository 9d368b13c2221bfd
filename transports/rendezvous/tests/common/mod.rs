//! Helpers shared by the server core tests: deterministic keys and nonces, signed registrations,
//! output draining. Each test binary uses a different subset.
#![allow(dead_code)]

use swarm_rendezvous::auth::{sign_register, Nonce};
use swarm_rendezvous::server::core::{ConnId, Input, Output, ServerCore};
use swarm_rendezvous::{ClientMsg, ErrorCode, SeedSigner, ServerMsg, Signer};

/// The key pair of test peer `i`.
pub fn signer(i: u8) -> SeedSigner {
    SeedSigner::from_seed(&[i; 32])
}

/// Peer `i`'s id as on the wire.
pub fn hex(i: u8) -> String {
    signer(i).peer().to_hex()
}

/// The challenge the tests give connection `conn` (distinct per connection).
pub fn nonce(conn: ConnId) -> Nonce {
    let mut n = [0xa5; 32];
    n[..8].copy_from_slice(&conn.to_le_bytes());
    n
}

/// Opens `conn` with its test nonce and checks that the challenge, with the connection's
/// budget, is the first thing sent.
pub fn open(core: &mut ServerCore, now_ms: u64, conn: ConnId) {
    core.open(now_ms, conn, nonce(conn));
    let sent = drain(core);
    let expected = ::hex::encode(nonce(conn));
    assert!(
        matches!(sent.as_slice(), [Output::Send { conn: c, msg: ServerMsg::Challenge { nonce, rate_msgs_per_s: Some(_), rate_burst_msgs: Some(_) } }]
            if *c == conn && *nonce == expected),
        "challenge on open: {sent:?}"
    );
}

/// A `register` of peer `who` under `ns`, correctly signed for connection `conn`.
pub fn register(conn: ConnId, ns: &str, who: u8) -> Input {
    let sig = sign_register(&signer(who), &nonce(conn), ns);
    register_raw(ns, &hex(who), Some(sig))
}

pub fn register_raw(ns: &str, peer: &str, sig: Option<String>) -> Input {
    Input::Message(ClientMsg::Register { ns: ns.into(), peer: peer.into(), ttl_s: 60, sig, id: Some(1) })
}

pub fn signal(to: &str, payload: &str) -> Input {
    Input::Message(ClientMsg::Signal { to: to.into(), payload: payload.into(), id: None })
}

pub fn drain(core: &mut ServerCore) -> Vec<Output> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

pub fn error_codes(outputs: &[Output]) -> Vec<(ConnId, ErrorCode)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send { conn, msg: ServerMsg::Error { code, .. } } => Some((*conn, *code)),
            _ => None,
        })
        .collect()
}
