//! Registry core: paging, exclusion of the asker, expiry with injected time, limits, TTL clamp.

use swarm_rendezvous::{Cookie, Namespace, PeerId, Registry, RegistryError, RegistryLimits};

fn limits() -> RegistryLimits {
    RegistryLimits {
        max_registrations_per_peer: 8,
        max_registrations_total: 100_000,
        min_ttl_s: 10,
        max_ttl_s: 7200,
        max_discover_limit: 100,
    }
}

fn peer(i: u32) -> PeerId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    // Spread ids so that id order differs from registration order.
    b[31] = (i.wrapping_mul(97) % 251) as u8;
    PeerId(b)
}

fn ns(s: &str) -> Namespace {
    Namespace::parse(s).expect("valid namespace")
}

/// Walks every page of `ns` from the start; returns the pages.
fn walk(reg: &Registry, now_ms: u64, n: &Namespace, asker: Option<&PeerId>, limit: u32) -> Vec<Vec<PeerId>> {
    let mut pages = Vec::new();
    let mut cookie = None;
    for _ in 0..1000 {
        let page = reg.discover(now_ms, n, asker, limit, cookie);
        if page.peers.is_empty() {
            return pages;
        }
        cookie = Some(page.cookie);
        pages.push(page.peers);
    }
    panic!("walk did not end");
}

#[test]
fn paging_250_with_limit_100_returns_each_once_without_the_asker() {
    let mut reg = Registry::new(limits());
    let n = ns("swarm");
    for i in 0..250 {
        reg.register(i as u64, &n, peer(i), 60).expect("register");
    }
    let asker = peer(17);
    let pages = walk(&reg, 1_000, &n, Some(&asker), 100);
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![100, 100, 49]);
    let all: Vec<PeerId> = pages.concat();
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 249, "no duplicates");
    assert!(!all.contains(&asker));
    // Registration order, the stable paging order.
    let expected: Vec<PeerId> = (0..250).filter(|&i| i != 17).map(peer).collect();
    assert_eq!(all, expected);
}

#[test]
fn limit_is_clamped_and_zero_means_the_maximum() {
    let mut reg = Registry::new(limits());
    let n = ns("x");
    for i in 0..150 {
        reg.register(0, &n, peer(i), 60).expect("register");
    }
    assert_eq!(reg.discover(0, &n, None, 1000, None).peers.len(), 100);
    assert_eq!(reg.discover(0, &n, None, 0, None).peers.len(), 100);
    assert_eq!(reg.discover(0, &n, None, 7, None).peers.len(), 7);
    assert!(reg.discover(0, &ns("other"), None, 7, None).peers.is_empty());
}

#[test]
fn expired_registrations_are_never_returned_and_are_swept() {
    let mut reg = Registry::new(limits());
    let n = ns("x");
    reg.register(0, &n, peer(1), 10).expect("register");
    reg.register(0, &n, peer(2), 20).expect("register");
    reg.register(0, &n, peer(3), 30).expect("register");
    // Not swept yet, but already invisible at 20 s: expiry is `expires_ms <= now`.
    assert_eq!(reg.discover(20_000, &n, None, 10, None).peers, vec![peer(3)]);
    assert_eq!(reg.discover(9_999, &n, None, 10, None).peers.len(), 3);
    assert_eq!(reg.next_expiry_ms(), Some(10_000));
    assert_eq!(reg.expire(20_000), 2);
    assert_eq!(reg.len(), 1);
    assert_eq!(reg.expire(30_000), 1);
    assert!(reg.is_empty());
    reg.check_invariants().expect("consistent");
}

#[test]
fn refresh_extends_the_ttl_and_keeps_the_paging_position() {
    let mut reg = Registry::new(limits());
    let n = ns("x");
    reg.register(0, &n, peer(1), 10).expect("register");
    reg.register(0, &n, peer(2), 10).expect("register");
    let first = reg.discover(0, &n, None, 1, None);
    assert_eq!(first.peers, vec![peer(1)]);
    reg.register(5_000, &n, peer(1), 10).expect("refresh");
    // The refreshed registration does not reappear after the cookie.
    assert_eq!(reg.discover(5_000, &n, None, 10, Some(first.cookie)).peers, vec![peer(2)]);
    assert_eq!(reg.discover(12_000, &n, None, 10, None).peers, vec![peer(1)]);
}

#[test]
fn cookie_after_the_last_page_yields_only_newer_registrations() {
    let mut reg = Registry::new(limits());
    let n = ns("x");
    reg.register(0, &n, peer(1), 60).expect("register");
    let page = reg.discover(0, &n, None, 10, None);
    assert!(reg.discover(0, &n, None, 10, Some(page.cookie)).peers.is_empty());
    reg.register(0, &n, peer(2), 60).expect("register");
    assert_eq!(reg.discover(0, &n, None, 10, Some(page.cookie)).peers, vec![peer(2)]);
}

#[test]
fn ttl_is_clamped_to_the_bounds() {
    let mut reg = Registry::new(limits());
    let n = ns("x");
    assert_eq!(reg.register(0, &n, peer(1), 0), Ok(10));
    assert_eq!(reg.register(0, &n, peer(2), 1_000_000), Ok(7200));
    assert_eq!(reg.register(0, &n, peer(3), u64::MAX), Ok(7200));
    assert_eq!(reg.register(0, &n, peer(4), 300), Ok(300));
}

#[test]
fn per_peer_and_total_limits_are_enforced() {
    let mut reg = Registry::new(RegistryLimits { max_registrations_total: 10, ..limits() });
    for i in 0..8 {
        reg.register(0, &ns(&format!("n{i}")), peer(1), 60).expect("within the per-peer limit");
    }
    assert_eq!(reg.register(0, &ns("n8"), peer(1), 60), Err(RegistryError::TooManyForPeer { peer: peer(1), max: 8 }));
    // A refresh is not a new registration.
    assert_eq!(reg.register(0, &ns("n0"), peer(1), 60), Ok(60));
    reg.register(0, &ns("n0"), peer(2), 60).expect("9th");
    reg.register(0, &ns("n0"), peer(3), 60).expect("10th");
    assert_eq!(reg.register(0, &ns("n0"), peer(4), 60), Err(RegistryError::Full { max: 10 }));
    assert_eq!(reg.unregister_peer(&peer(1)), 8);
    reg.register(0, &ns("n0"), peer(4), 60).expect("room again");
    reg.check_invariants().expect("consistent");
}

#[test]
fn unregister_removes_only_that_registration() {
    let mut reg = Registry::new(limits());
    reg.register(0, &ns("a"), peer(1), 60).expect("register");
    reg.register(0, &ns("b"), peer(1), 60).expect("register");
    assert!(reg.unregister(&ns("a"), &peer(1)));
    assert!(!reg.unregister(&ns("a"), &peer(1)));
    assert_eq!(reg.namespaces_of(&peer(1)), vec![ns("b")]);
    reg.check_invariants().expect("consistent");
}

#[test]
fn cookies_round_trip_and_garbage_is_refused() {
    let page = {
        let mut reg = Registry::new(limits());
        reg.register(0, &ns("a"), peer(1), 60).expect("register");
        reg.discover(0, &ns("a"), None, 10, None)
    };
    assert_eq!(Cookie::decode(&page.cookie.encode()), Ok(page.cookie));
    for bad in ["", "c", "x12", "c-1", "c1a", "c99999999999999999999999"] {
        assert!(matches!(Cookie::decode(bad), Err(RegistryError::BadCookie { .. })), "{bad:?}");
    }
}
