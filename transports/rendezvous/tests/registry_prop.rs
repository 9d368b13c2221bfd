//! Property test of the registry against a plain model: any sequence of register, unregister,
//! time passing, sweeping and full discovery walks keeps the same accept/reject decisions, and
//! every walk returns each live registration exactly once, the asker never.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use swarm_rendezvous::{Namespace, PeerId, Registry, RegistryLimits};

const PEERS: u8 = 8;
const NAMESPACES: [&str; 3] = ["a", "b.c", "d-e_f"];

#[derive(Debug, Clone)]
enum Op {
    Register { peer: u8, ns: usize, ttl_s: u64 },
    Unregister { peer: u8, ns: usize },
    Advance { ms: u64 },
    Expire,
    Walk { ns: usize, asker: Option<u8>, limit: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PEERS, 0..NAMESPACES.len(), 0u64..40).prop_map(|(peer, ns, ttl_s)| Op::Register { peer, ns, ttl_s }),
        1 => (0..PEERS, 0..NAMESPACES.len()).prop_map(|(peer, ns)| Op::Unregister { peer, ns }),
        2 => (0u64..15_000).prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Expire),
        2 => (0..NAMESPACES.len(), proptest::option::of(0..PEERS), 0u32..6)
            .prop_map(|(ns, asker, limit)| Op::Walk { ns, asker, limit }),
    ]
}

fn pid(i: u8) -> PeerId {
    PeerId([i.wrapping_mul(37); 32])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn walks_cover_exactly_the_live_set(ops in proptest::collection::vec(op(), 1..120)) {
        let limits = RegistryLimits {
            max_registrations_per_peer: 2,
            max_registrations_total: 12,
            min_ttl_s: 5,
            max_ttl_s: 30,
            max_discover_limit: 4,
        };
        let mut reg = Registry::new(limits);
        // Model: (ns, peer) -> expires_ms.
        let mut model: BTreeMap<(usize, u8), u64> = BTreeMap::new();
        let mut now_ms = 0u64;
        for op in ops {
            match op {
                Op::Register { peer, ns, ttl_s } => {
                    model.retain(|_, exp| *exp > now_ms);
                    let held = model.keys().filter(|(_, p)| *p == peer).count();
                    let exists = model.contains_key(&(ns, peer));
                    let ok = exists || (held < 2 && model.len() < 12);
                    let got = reg.register(now_ms, &Namespace::parse(NAMESPACES[ns]).unwrap(), pid(peer), ttl_s);
                    prop_assert_eq!(got.is_ok(), ok, "register decision");
                    if ok {
                        let granted = ttl_s.clamp(5, 30);
                        prop_assert_eq!(got.unwrap(), granted);
                        model.insert((ns, peer), now_ms + granted * 1000);
                    }
                }
                Op::Unregister { peer, ns } => {
                    let removed = reg.unregister(&Namespace::parse(NAMESPACES[ns]).unwrap(), &pid(peer));
                    prop_assert_eq!(removed, model.remove(&(ns, peer)).is_some());
                }
                Op::Advance { ms } => now_ms += ms,
                Op::Expire => {
                    reg.expire(now_ms);
                    model.retain(|_, exp| *exp > now_ms);
                    prop_assert_eq!(reg.len(), model.len());
                }
                Op::Walk { ns, asker, limit } => {
                    let n = Namespace::parse(NAMESPACES[ns]).unwrap();
                    let asker_id = asker.map(pid);
                    let mut seen = Vec::new();
                    let mut cookie = None;
                    let mut pages = 0;
                    loop {
                        let page = reg.discover(now_ms, &n, asker_id.as_ref(), limit, cookie);
                        prop_assert!(page.peers.len() <= 4, "page over max_discover_limit");
                        if page.peers.is_empty() {
                            break;
                        }
                        seen.extend(page.peers);
                        cookie = Some(page.cookie);
                        pages += 1;
                        prop_assert!(pages <= 20, "walk does not end");
                    }
                    let unique: BTreeSet<PeerId> = seen.iter().copied().collect();
                    prop_assert_eq!(unique.len(), seen.len(), "a walk repeated a peer");
                    let live: BTreeSet<PeerId> = model
                        .iter()
                        .filter(|((m_ns, p), exp)| *m_ns == ns && **exp > now_ms && Some(*p) != asker)
                        .map(|((_, p), _)| pid(*p))
                        .collect();
                    prop_assert_eq!(unique, live);
                }
            }
            prop_assert_eq!(reg.check_invariants(), Ok(()));
        }
    }
}
