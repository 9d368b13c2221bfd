//! The sans-IO server core driven directly: rate limit with injected time, identity rules,
//! signal routes (and their replacement by a newer connection), cleanup on close. Proof of key
//! possession is in `server_core_auth.rs`.

mod common;

use common::{hex, open, register, register_raw, signal};
use swarm_rendezvous::server::core::{CloseReason, ConnId, Input, Output, ServerCore};
use swarm_rendezvous::{ClientMsg, ErrorCode, ServerConfig, ServerMsg};

fn discover(ns: &str) -> Input {
    Input::Message(ClientMsg::Discover { ns: ns.into(), limit: 0, cookie: None, id: Some(2) })
}

use common::{drain, error_codes};

#[test]
fn rate_limit_refills_with_time_and_closes_a_persistent_violator() {
    let cfg =
        ServerConfig { rate_msgs_per_s: 2, rate_burst_msgs: 3, max_rate_violations: 2, ..ServerConfig::default() };
    let mut core = ServerCore::new(cfg);
    open(&mut core, 0, 1);
    let ping = || Input::Message(ClientMsg::Ping { id: Some(9) });
    for _ in 0..3 {
        core.handle(0, 1, ping());
    }
    assert!(drain(&mut core).iter().all(|o| matches!(o, Output::Send { msg: ServerMsg::Pong { id: Some(9) }, .. })));
    core.handle(0, 1, ping());
    assert_eq!(error_codes(&drain(&mut core)), vec![(1, ErrorCode::RateLimited)]);
    // 500 ms at 2 msg/s buys one message, and resets the violation count.
    core.handle(500, 1, ping());
    assert!(matches!(drain(&mut core)[..], [Output::Send { msg: ServerMsg::Pong { .. }, .. }]));
    for _ in 0..2 {
        core.handle(500, 1, ping());
    }
    assert_eq!(error_codes(&drain(&mut core)).len(), 2);
    core.handle(500, 1, ping());
    let out = drain(&mut core);
    assert_eq!(error_codes(&out), vec![(1, ErrorCode::RateLimited)]);
    assert!(matches!(out.last(), Some(Output::Close { conn: 1, reason: CloseReason::RateLimited })));
    assert_eq!(core.connections(), 0);
    // A closed connection is ignored from then on.
    core.handle(10_000, 1, ping());
    assert!(drain(&mut core).is_empty());
}

#[test]
fn identity_is_fixed_by_the_first_register() {
    let mut core = ServerCore::new(ServerConfig::default());
    open(&mut core, 0, 1);
    core.handle(0, 1, signal(&hex(2), "x"));
    core.handle(0, 1, Input::Message(ClientMsg::Unregister { ns: "a".into(), id: None }));
    assert_eq!(error_codes(&drain(&mut core)), vec![(1, ErrorCode::NotRegistered), (1, ErrorCode::NotRegistered)]);
    core.handle(0, 1, register(1, "a", 1));
    assert!(matches!(
        drain(&mut core)[..],
        [Output::Send { msg: ServerMsg::Registered { ttl_s: 60, id: Some(1), .. }, .. }]
    ));
    // Peer 2 with a valid signature of its own: still one peer per connection.
    core.handle(0, 1, register(1, "b", 2));
    assert_eq!(error_codes(&drain(&mut core)), vec![(1, ErrorCode::PeerMismatch)]);
    core.handle(0, 1, register(1, "b", 1));
    assert_eq!(core.registry().len(), 2);
}

#[test]
fn bad_inputs_get_specific_codes() {
    let mut core = ServerCore::new(ServerConfig::default());
    open(&mut core, 0, 1);
    core.handle(0, 1, register_raw("a", "zz", None));
    core.handle(0, 1, register_raw("UPPER", &hex(1), None));
    core.handle(0, 1, Input::Malformed { reason: "expected value".into() });
    core.handle(
        0,
        1,
        Input::Message(ClientMsg::Discover { ns: "a".into(), limit: 1, cookie: Some("nope".into()), id: None }),
    );
    core.handle(0, 1, register(1, "a", 1));
    core.handle(0, 1, signal("short", "x"));
    core.handle(0, 1, signal(&hex(7), "x"));
    core.handle(0, 1, signal(&hex(7), &"x".repeat(32 * 1024 + 1)));
    let codes: Vec<ErrorCode> = error_codes(&drain(&mut core)).into_iter().map(|(_, c)| c).collect();
    use ErrorCode::*;
    assert_eq!(codes, vec![BadPeerId, BadNamespace, BadMessage, BadCookie, BadPeerId, UnknownPeer, TooLarge]);
}

#[test]
fn oversized_frames_are_answered_and_closed_even_when_rate_limited() {
    let cfg = ServerConfig { rate_burst_msgs: 1, rate_msgs_per_s: 1, ..ServerConfig::default() };
    let mut core = ServerCore::new(cfg);
    open(&mut core, 0, 1);
    core.handle(0, 1, Input::Message(ClientMsg::Ping { id: None }));
    drain(&mut core);
    core.handle(0, 1, Input::Oversized { bytes: Some(70_000) });
    let out = drain(&mut core);
    assert_eq!(error_codes(&out), vec![(1, ErrorCode::TooLarge)]);
    assert!(matches!(out.last(), Some(Output::Close { conn: 1, reason: CloseReason::TooLarge })));
}

#[test]
fn signals_follow_the_newest_registration_and_close_cleans_up() {
    let mut core = ServerCore::new(ServerConfig::default());
    for conn in 1..=3 {
        open(&mut core, 0, conn);
    }
    core.handle(0, 1, register(1, "a", 1));
    core.handle(0, 2, register(2, "a", 2));
    core.handle(0, 3, register(3, "b", 1)); // peer 1 again (its key holder), on a newer connection
    drain(&mut core);
    core.handle(0, 2, signal(&hex(1), "offer"));
    let out = drain(&mut core);
    let expected = ServerMsg::Signal { from: hex(2), payload: "offer".into() };
    assert_eq!(out, vec![Output::Send { conn: 3, msg: expected }]);
    // The replaced connection closing leaves peer 1's registrations (now owned by conn 3).
    core.close(1);
    core.handle(0, 2, discover("a"));
    assert!(
        matches!(&drain(&mut core)[..], [Output::Send { msg: ServerMsg::Discovered { peers, .. }, .. }] if peers == &vec![hex(1)])
    );
    core.close(3);
    assert_eq!(core.registry().len(), 1);
    core.handle(0, 2, signal(&hex(1), "offer"));
    assert_eq!(error_codes(&drain(&mut core)), vec![(2, ErrorCode::UnknownPeer)]);
}

#[test]
fn discover_works_before_registering_and_excludes_the_asker_after() {
    let mut core = ServerCore::new(ServerConfig::default());
    open(&mut core, 0, 1);
    open(&mut core, 0, 2);
    core.handle(0, 1, register(1, "a", 1));
    core.handle(0, 2, discover("a"));
    core.handle(0, 1, discover("a"));
    let out = drain(&mut core);
    let pages: Vec<(ConnId, Vec<String>)> = out
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { conn, msg: ServerMsg::Discovered { peers, .. } } => Some((conn, peers)),
            _ => None,
        })
        .collect();
    assert_eq!(pages, vec![(2, vec![hex(1)]), (1, vec![])]);
}

#[test]
fn registrations_expire_on_tick() {
    let mut core = ServerCore::new(ServerConfig::default());
    open(&mut core, 0, 1);
    let Input::Message(ClientMsg::Register { ns, peer, sig, .. }) = register(1, "a", 1) else { unreachable!() };
    core.handle(0, 1, Input::Message(ClientMsg::Register { ns, peer, ttl_s: 1, sig, id: None }));
    assert_eq!(core.registry().len(), 1);
    core.tick(9_999);
    assert_eq!(core.registry().len(), 1, "ttl clamped up to min_ttl_s 10");
    core.tick(10_000);
    assert_eq!(core.registry().len(), 0);
}
