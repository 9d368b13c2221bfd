//! Gossip core laws: de-duplication, TTL decrement and expiry, bounded frames, no echo of own rumours.

use super::core::{GossipCore, Input, Output};
use crate::config::GossipConfig;
use crate::core::{Core, Effect, LinkEvent};
use crate::observer::Event;
use crate::types::PeerId;
use crate::wire::{Message, Rumor};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn pid(i: u8) -> PeerId {
    PeerId([i; 32])
}

fn core(cfg: GossipConfig) -> GossipCore {
    GossipCore::new(pid(0), cfg, ChaCha8Rng::seed_from_u64(7))
}

fn drain(c: &mut GossipCore) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

fn connect(c: &mut GossipCore, peers: &[u8]) {
    for p in peers {
        c.handle(0, Input::Link(LinkEvent::Up { peer: pid(*p), outbound: true }));
    }
}

/// Run one round (timer + discovery's answer) and return the broadcast rumours.
fn round(c: &mut GossipCore, now: u64) -> Option<(Vec<PeerId>, Vec<Rumor>)> {
    c.handle_timeout(now.max(c.next_timeout().unwrap_or(0)));
    let asked = drain(c).iter().any(|o| matches!(o, Output::RequestTopPeers(20)));
    if !asked {
        return None;
    }
    c.handle(now, Input::TopPeers(vec![pid(50), pid(51)]));
    drain(c).into_iter().find_map(|o| match o {
        Output::Effect(Effect::Broadcast { to, msg: Message::Gossip { rumors } }) => Some((to, rumors)),
        _ => None,
    })
}

fn rumor(origin: u8, seq: u64, ttl: u8) -> Rumor {
    Rumor { origin: pid(origin), seq, ttl, peers: vec![pid(origin.wrapping_add(100))] }
}

#[test]
fn duplicate_rumour_is_delivered_once() {
    let mut c = core(GossipConfig::default());
    connect(&mut c, &[1, 2]);
    drain(&mut c);
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![rumor(9, 1, 3)] });
    c.handle(0, Input::Frame { from: pid(2), rumors: vec![rumor(9, 1, 3)] });
    let out = drain(&mut c);
    let received =
        out.iter().filter(|o| matches!(o, Output::Effect(Effect::Event(Event::RumorReceived { .. })))).count();
    assert_eq!(received, 1);
    assert_eq!(c.duplicates(), 1);
    // What was learned reaches discovery once, at the next round, sorted and de-duplicated.
    c.handle_timeout(c.next_timeout().unwrap());
    let learned: Vec<Output> = drain(&mut c).into_iter().filter(|o| matches!(o, Output::Learned(_))).collect();
    assert_eq!(learned, vec![Output::Learned(vec![pid(9), pid(109)])]);
}

#[test]
fn relays_decrement_ttl_and_stop_at_one() {
    let mut c = core(GossipConfig::default());
    connect(&mut c, &[1, 2]);
    c.handle(0, Input::Frame { from: pid(1), rumors: vec![rumor(8, 1, 3), rumor(9, 1, 1)] });
    let (to, rumors) = round(&mut c, 0).expect("a round with connections broadcasts");
    assert_eq!(to, vec![pid(1), pid(2)]);
    assert_eq!(rumors[0].origin, pid(0), "own rumour first");
    assert_eq!(rumors[0].ttl, 3);
    assert_eq!(rumors[0].peers, vec![pid(50), pid(51)]);
    let relayed: Vec<(PeerId, u8)> = rumors[1..].iter().map(|r| (r.origin, r.ttl)).collect();
    assert_eq!(relayed, vec![(pid(8), 2)], "ttl 3 relayed as 2; ttl 1 not relayed");
    // Relays are sent once.
    let (_, again) = round(&mut c, 60_000).unwrap();
    assert_eq!(again.len(), 1);
}

#[test]
fn no_round_without_connections_and_frames_from_strangers_ignored() {
    let mut c = core(GossipConfig::default());
    assert!(round(&mut c, 0).is_none());
    c.handle(0, Input::Frame { from: pid(3), rumors: vec![rumor(9, 1, 3)] });
    assert!(drain(&mut c).is_empty());
}

proptest! {
    #[test]
    fn frames_stay_bounded_and_never_echo(
        frames in prop::collection::vec((1u8..6, prop::collection::vec((0u8..12, 0u64..4, any::<u8>()), 0..10)), 0..40),
        max_rumors in 1usize..8,
    ) {
        let cfg = GossipConfig { max_rumors_per_frame: max_rumors, ..GossipConfig::default() };
        let mut c = core(cfg);
        connect(&mut c, &[1, 2, 3, 4, 5]);
        // A rumour is delivered at most once while it could still be travelling (ttl + 2 rounds).
        let horizon = (u64::from(GossipConfig::default().ttl) + 2) * 60_000;
        let mut first_seen = std::collections::BTreeMap::new();
        let mut now = 0;
        for (i, (from, rs)) in frames.into_iter().enumerate() {
            let rumors: Vec<Rumor> = rs.into_iter().map(|(o, s, t)| rumor(o, s, t)).collect();
            c.handle(now, Input::Frame { from: pid(from), rumors: rumors.clone() });
            c.check_invariants();
            for o in drain(&mut c) {
                if let Output::Effect(Effect::Event(Event::RumorReceived { origin, seq })) = o {
                    prop_assert!(origin != pid(0), "own rumour accepted back");
                    if let Some(t) = first_seen.insert((origin, seq), now) {
                        prop_assert!(now - t >= horizon, "rumour delivered twice within the horizon");
                    }
                }
            }
            if i % 5 == 4 {
                now += 60_000;
                if let Some((_, out)) = round(&mut c, now) {
                    prop_assert!(out.len() <= max_rumors.max(1));
                    c.check_invariants();
                    for r in &out[1..] {
                        prop_assert!(r.ttl >= 1 && r.ttl < GossipConfig::default().ttl, "relayed beyond our ttl policy");
                        prop_assert!(r.origin != pid(0));
                    }
                }
            }
        }
    }
}
