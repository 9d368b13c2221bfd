//! Proof of key possession in the sans-IO core: only a `register` signed by the peer id's key
//! over this connection's challenge and the namespace registers; every other one gets
//! `bad_signature` and changes nothing, so a registered peer's signal route cannot be hijacked.

mod common;

use common::{drain, error_codes, hex, nonce, open, register, register_raw, signal, signer};
use swarm_rendezvous::auth::sign_register;
use swarm_rendezvous::server::core::{Input, Output, ServerCore};
use swarm_rendezvous::{ClientMsg, ErrorCode, ServerConfig, ServerMsg};

fn discover(ns: &str) -> Input {
    Input::Message(ClientMsg::Discover { ns: ns.into(), limit: 0, cookie: None, id: Some(2) })
}

/// Peers a fresh discover on `conn` lists under `ns`.
fn listed(core: &mut ServerCore, conn: u64, ns: &str) -> Vec<String> {
    core.handle(0, conn, discover(ns));
    match &drain(core)[..] {
        [Output::Send { msg: ServerMsg::Discovered { peers, .. }, .. }] => peers.clone(),
        other => panic!("expected one discovered page, got {other:?}"),
    }
}

/// A refused registration leaves no trace: nothing listed, and the connection has no peer (so
/// it may not signal).
fn assert_refused_without_trace(core: &mut ServerCore, input: Input, what: &str) {
    core.handle(0, 1, input);
    assert_eq!(error_codes(&drain(core)), vec![(1, ErrorCode::BadSignature)], "{what}");
    assert_eq!(core.registry().len(), 0, "{what}: nothing registered");
    core.handle(0, 1, signal(&hex(9), "x"));
    assert_eq!(error_codes(&drain(core)), vec![(1, ErrorCode::NotRegistered)], "{what}: no peer bound");
}

#[test]
fn the_challenge_is_sent_on_open_and_a_good_signature_registers() {
    let mut core = ServerCore::new(ServerConfig::default());
    open(&mut core, 0, 1);
    core.handle(0, 1, register(1, "swarm", 1));
    assert_eq!(
        drain(&mut core),
        vec![Output::Send { conn: 1, msg: ServerMsg::Registered { ns: "swarm".into(), ttl_s: 60, id: Some(1) } }]
    );
    open(&mut core, 0, 2);
    assert_eq!(listed(&mut core, 2, "swarm"), vec![hex(1)]);
}

#[test]
fn wrong_key_wrong_nonce_wrong_namespace_or_no_signature_are_refused() {
    let mut core = ServerCore::new(ServerConfig::default());
    open(&mut core, 0, 1);
    // Signed by peer 2's key but claiming peer 1.
    let by_other_key = sign_register(&signer(2), &nonce(1), "swarm");
    assert_refused_without_trace(&mut core, register_raw("swarm", &hex(1), Some(by_other_key)), "wrong key");
    // Peer 1's real signature, made for another connection's challenge (a replay).
    let Input::Message(ClientMsg::Register { sig: replayed, .. }) = register(2, "swarm", 1) else { unreachable!() };
    assert_refused_without_trace(&mut core, register_raw("swarm", &hex(1), replayed), "replayed from conn 2");
    // Peer 1's real signature on this connection, but for another namespace.
    let for_other_ns = sign_register(&signer(1), &nonce(1), "other");
    assert_refused_without_trace(&mut core, register_raw("swarm", &hex(1), Some(for_other_ns)), "wrong ns");
    assert_refused_without_trace(&mut core, register_raw("swarm", &hex(1), None), "missing sig");
    assert_refused_without_trace(&mut core, register_raw("swarm", &hex(1), Some("ab".repeat(64))), "garbage sig");
    assert_refused_without_trace(&mut core, register_raw("swarm", &hex(1), Some("xyz".into())), "not hex");
    // The same connection can still register properly afterwards.
    core.handle(0, 1, register(1, "swarm", 1));
    assert!(error_codes(&drain(&mut core)).is_empty());
    assert_eq!(core.registry().len(), 1);
}

#[test]
fn a_hijack_attempt_without_the_key_leaves_the_route_with_the_owner() {
    let mut core = ServerCore::new(ServerConfig::default());
    for conn in 1..=3 {
        open(&mut core, 0, conn);
    }
    // Conn 1 is peer 1, the owner; conn 3 wants to talk to it; conn 2 is the attacker.
    core.handle(0, 1, register(1, "swarm", 1));
    core.handle(0, 3, register(3, "swarm", 3));
    drain(&mut core);
    let Input::Message(ClientMsg::Register { sig: owners_sig, .. }) = register(1, "swarm", 1) else { unreachable!() };
    let attempts = [
        ("no signature", None),
        ("the owner's signature, replayed", owners_sig),
        ("signed with the attacker's key", Some(sign_register(&signer(2), &nonce(2), "swarm"))),
    ];
    for (what, sig) in attempts {
        core.handle(0, 2, register_raw("swarm", &hex(1), sig));
        assert_eq!(error_codes(&drain(&mut core)), vec![(2, ErrorCode::BadSignature)], "{what}");
    }
    core.handle(0, 3, signal(&hex(1), "offer"));
    let delivered = ServerMsg::Signal { from: hex(3), payload: "offer".into() };
    assert_eq!(drain(&mut core), vec![Output::Send { conn: 1, msg: delivered }], "the route stays with conn 1");
    // The attacker's connection owns nothing: closing it removes nothing.
    core.close(2);
    assert_eq!(listed(&mut core, 3, "swarm"), vec![hex(1)]);
    assert_eq!(core.registry().len(), 2);
}

#[test]
fn a_peer_id_that_is_not_a_curve_point_cannot_register() {
    let mut core = ServerCore::new(ServerConfig::default());
    open(&mut core, 0, 1);
    // y = 2 does not decompress to a point on edwards25519.
    let mut not_a_key = [0u8; 32];
    not_a_key[0] = 2;
    let sig = sign_register(&signer(1), &nonce(1), "swarm");
    assert_refused_without_trace(&mut core, register_raw("swarm", &::hex::encode(not_a_key), Some(sig)), "bad key");
}
