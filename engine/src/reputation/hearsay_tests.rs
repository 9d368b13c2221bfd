//! Hearsay: warnings from other nodes need a quorum of distinct accusers in good standing, never
//! graylist alone, are ignored about peers that serve this node well (and an accuser contradicted
//! so is not heard for a while), make the first failure here decisive, and a node warns others
//! only on its own evidence (not on warnings that named it).

use super::core::{Input, Output, ReputationCore};
use super::score::{OffenceKind, Outcome, Standing};
use crate::config::ReputationConfig;
use crate::core::Core;
use crate::time::Millis;
use crate::types::PeerId;
use proptest::prelude::*;

const SECOND: Millis = 1_000;
const EPOCH: u64 = 1_700_000_000_000;

fn pid(i: u8) -> PeerId {
    PeerId([i; 32])
}

fn core() -> ReputationCore {
    ReputationCore::new(ReputationConfig::default(), EPOCH).without_persistence()
}

fn feed(c: &mut ReputationCore, now: Millis, input: Input) -> Vec<Output> {
    c.handle(now, input);
    c.check_invariants();
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// `peer` serves this node well: it answered the requests that take (see `serves_well`).
fn serve(c: &mut ReputationCore, now: Millis, peer: u8) {
    let n = ReputationConfig::default().hearsay_exempt_served.ceil() as usize;
    for _ in 0..n {
        feed(c, now, Input::Request { peer: pid(peer), outcome: Outcome::Served { rtt_ms: 50 } });
    }
}

/// A warning from `accuser`, which this node first comes to know first-hand (it serves this
/// node well) unless it has a record already: strangers are not heard.
fn warn(c: &mut ReputationCore, now: Millis, accuser: u8, accused: u8) -> Vec<Output> {
    if c.record(&pid(accuser)).is_none() {
        serve(c, now, accuser);
    }
    feed(c, now, Input::Warned { accuser: pid(accuser), accused: vec![pid(accused)] })
}

fn warns(out: &[Output]) -> Vec<(PeerId, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Warn { peer, spread } => Some((*peer, *spread)),
            _ => None,
        })
        .collect()
}

/// One accuser (an honest node's rare mistake), however often it repeats itself, leaves a peer
/// we never met where a link is still made; a second distinct one (the quorum) puts it below the
/// publish threshold and shuns it, never lower.
#[test]
fn a_quorum_of_distinct_accusers_distrusts_but_never_graylists() {
    let mut c = core();
    let x = pid(50);
    for t in 1..=5 {
        warn(&mut c, t * SECOND, 1, 50);
    }
    let s = c.standing(&x, 6 * SECOND);
    assert!(s.may_publish(), "one accuser five times: {s:?} ({})", c.score(&x, 6 * SECOND));
    let out = warn(&mut c, 7 * SECOND, 2, 50);
    assert_eq!(c.standing(&x, 7 * SECOND), Standing::NoPublish, "score {}", c.score(&x, 7 * SECOND));
    assert!(out.contains(&Output::Shunned { peer: x, shunned: true }), "{out:?}");
    for a in 4..=20 {
        warn(&mut c, 8 * SECOND, a, 50);
    }
    assert_eq!(c.standing(&x, 8 * SECOND), Standing::NoPublish, "any number of accusers: still not graylisted");
    // Hearsay fades: a day later the peer is linkable again.
    let later = 8 * SECOND + 24 * 3_600 * SECOND;
    assert!(c.standing(&x, later).may_publish());
    let mut out = Vec::new();
    while let Some(t) = c.next_timeout().filter(|t| *t <= later) {
        c.handle_timeout(t);
        out.extend(std::iter::from_fn(|| c.poll_output()));
    }
    assert!(out.contains(&Output::Shunned { peer: x, shunned: false }), "{out:?}");
}

/// After a quorum of warnings, this node's first withheld answer graylists the peer; without
/// them it takes several.
#[test]
fn a_warned_peer_is_graylisted_at_its_first_failure_here() {
    let mut c = core();
    let (warned, fresh) = (pid(50), pid(51));
    for a in 1..=3 {
        warn(&mut c, SECOND, a, 50);
    }
    let out = feed(&mut c, 2 * SECOND, Input::Request { peer: warned, outcome: Outcome::Withheld });
    assert_eq!(c.standing(&warned, 2 * SECOND), Standing::Graylisted);
    assert!(warns(&out).is_empty(), "hearsay tipped it: no warning of our own");
    feed(&mut c, 2 * SECOND, Input::Request { peer: fresh, outcome: Outcome::Withheld });
    assert!(c.standing(&fresh, 2 * SECOND) > Standing::Graylisted, "one answer is not a verdict on its own");
    let late = pid(52);
    for a in 1..=3 {
        warn(&mut c, SECOND, a, 52);
    }
    feed(&mut c, 3 * SECOND, Input::Request { peer: late, outcome: Outcome::Served { rtt_ms: 3_000 } });
    assert_eq!(c.standing(&late, 3 * SECOND), Standing::Graylisted, "a late answer is a failure too");
}

/// Warnings from an accuser this node distrusts, or about a peer that serves this node well,
/// change nothing.
#[test]
fn warnings_from_bad_accusers_or_about_good_servers_are_ignored() {
    let mut c = core();
    let (liar, good) = (pid(9), pid(60));
    feed(&mut c, 0, Input::Offence { peer: liar, kind: OffenceKind::BadChunk });
    assert!(!c.standing(&liar, 0).may_gossip());
    for a in [9, 9, 9] {
        warn(&mut c, SECOND, a, 61);
    }
    assert_eq!(c.score(&pid(61), SECOND), 0.0, "a distrusted accuser is not heard");
    for i in 1..=3 {
        feed(&mut c, i * SECOND, Input::Request { peer: good, outcome: Outcome::Served { rtt_ms: 80 } });
    }
    let before = c.score(&good, 4 * SECOND);
    for a in 1..=8 {
        warn(&mut c, 4 * SECOND, a, 60);
    }
    assert_eq!(c.score(&good, 4 * SECOND), before, "first-hand service beats hearsay");
    assert!(c.standing(&good, 4 * SECOND).may_gossip());
    // ...while it lasts: once it withholds more than it serves, the warnings kept count.
    for i in 5..=7 {
        feed(&mut c, i * SECOND, Input::Request { peer: good, outcome: Outcome::Withheld });
    }
    assert!(c.record(&good).unwrap().counts.warned >= 3.0 - 1e-3);
    assert_eq!(c.standing(&good, 7 * SECOND), Standing::Graylisted);
}

/// A node warns when its own evidence graylists a peer (pushed while fewer than a quorum have
/// warned, else only told to new links), once per graylisting.
#[test]
fn a_node_warns_on_its_own_evidence_once() {
    let mut c = core();
    let out = feed(&mut c, SECOND, Input::Offence { peer: pid(50), kind: OffenceKind::BadChunk });
    assert_eq!(warns(&out), vec![(pid(50), true)]);
    let out = feed(&mut c, 2 * SECOND, Input::Offence { peer: pid(50), kind: OffenceKind::BadChunk });
    assert!(warns(&out).is_empty(), "already warned of");
    for a in 1..=3 {
        warn(&mut c, 3 * SECOND, a, 51);
    }
    let out = feed(&mut c, 4 * SECOND, Input::Offence { peer: pid(51), kind: OffenceKind::BadChunk });
    assert_eq!(warns(&out), vec![(pid(51), false)], "the swarm has heard of it: new links only");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Whatever warnings arrive, from whomever, in any order: a warning never raises a score,
    /// hearsay alone never graylists, and no warning of our own comes from it.
    #[test]
    fn hearsay_alone_never_graylists_and_never_raises(
        warnings in prop::collection::vec((0u8..12, 0u8..6, 0u64..7_200), 0..200),
    ) {
        let mut c = core();
        let mut sorted = warnings;
        sorted.sort_by_key(|w| w.2);
        for (accuser, accused, t) in sorted {
            let now = t * SECOND;
            let before = c.score(&pid(100 + accused), now);
            let out = warn(&mut c, now, accuser, 100 + accused);
            prop_assert!(warns(&out).is_empty());
            prop_assert!(c.score(&pid(100 + accused), now) <= before);
            prop_assert!(c.standing(&pid(100 + accused), now) > Standing::Graylisted);
        }
    }
}

/// A peer someone has warned of is not heard as an accuser: a peer the swarm cuts off finds
/// honest nodes refusing it and would warn of them in turn; two of them cannot shun an honest
/// peer once they are accused themselves.
#[test]
fn an_accused_accuser_is_not_heard() {
    let mut c = core();
    let (a, b, victim) = (51u8, 52u8, 60u8);
    for p in [a, b] {
        // They serve this node well, so only being accused can silence them.
        serve(&mut c, 0, p);
    }
    warn(&mut c, SECOND, 1, a);
    warn(&mut c, SECOND, 2, b);
    warn(&mut c, 2 * SECOND, a, victim);
    let out = warn(&mut c, 2 * SECOND, b, victim);
    assert_eq!(c.score(&pid(victim), 2 * SECOND), 0.0, "accused accusers are not counted");
    assert!(!out.iter().any(|o| matches!(o, Output::Shunned { .. })), "{out:?}");
    // Two accusers nobody accused are heard.
    warn(&mut c, 3 * SECOND, 3, victim);
    warn(&mut c, 3 * SECOND, 4, victim);
    assert_eq!(c.standing(&pid(victim), 3 * SECOND), Standing::NoPublish);
}

/// Warnings from strangers (no first-hand evidence here) are not heard, however many.
#[test]
fn strangers_are_not_heard() {
    let mut c = core();
    for a in 1..=10u8 {
        feed(&mut c, SECOND, Input::Warned { accuser: pid(a), accused: vec![pid(60)] });
    }
    assert_eq!(c.score(&pid(60), SECOND), 0.0);
    warn(&mut c, 2 * SECOND, 1, 60);
    warn(&mut c, 2 * SECOND, 2, 60);
    assert_eq!(c.standing(&pid(60), 2 * SECOND), Standing::NoPublish, "once known, they are");
}

/// A warning naming this node, which knows it did nothing to earn one, graylists its signer
/// here at once, and that verdict is kept to this node: every adversary takes the warnings
/// about itself for slander, and warning others in turn would set them against the honest
/// peers that warned of it. The signer's own warnings are no longer heard. Evidence of the
/// signer's own doing is passed on as before.
#[test]
fn a_peer_that_slanders_this_node_is_graylisted_here_and_not_warned_of() {
    let mut c = core();
    let liar = pid(40);
    serve(&mut c, SECOND, 40);
    let out = feed(&mut c, 2 * SECOND, Input::Offence { peer: liar, kind: OffenceKind::FalseWarning });
    assert_eq!(c.standing(&liar, 2 * SECOND), Standing::Graylisted, "score {}", c.score(&liar, 2 * SECOND));
    assert!(warns(&out).is_empty(), "kept to this node: {out:?}");
    serve(&mut c, 3 * SECOND, 41);
    warn(&mut c, 3 * SECOND, 41, 50);
    warn(&mut c, 3 * SECOND, 40, 50);
    assert!(c.standing(&pid(50), 3 * SECOND).may_publish(), "the liar is not heard: one accuser counts");
    let out = feed(&mut c, 4 * SECOND, Input::Offence { peer: liar, kind: OffenceKind::BadChunk });
    assert_eq!(warns(&out), vec![(liar, true)], "its own doing is warned of");
}

/// An accuser that warns of a peer serving this node well says something this node knows to be
/// wrong: none of that warning counts, nor any of its warnings for a hearsay half-life (a
/// slanderer names every peer it links to, this node's good peers among them). Other accusers
/// are heard as before, and the contradicted one again after the half-life.
#[test]
fn an_accuser_contradicted_by_this_nodes_own_evidence_is_not_heard_for_a_while() {
    let mut c = core();
    let cfg = ReputationConfig::default();
    // Served a little more than the exemption asks (the counts decay).
    serve(&mut c, SECOND, 30);
    feed(&mut c, SECOND, Input::Request { peer: pid(30), outcome: Outcome::Served { rtt_ms: 50 } });
    serve(&mut c, SECOND, 1);
    serve(&mut c, SECOND, 2);
    feed(&mut c, 2 * SECOND, Input::Warned { accuser: pid(1), accused: vec![pid(50), pid(30)] });
    feed(&mut c, 2 * SECOND, Input::Warned { accuser: pid(1), accused: vec![pid(51)] });
    warn(&mut c, 3 * SECOND, 2, 50);
    warn(&mut c, 3 * SECOND, 2, 51);
    for p in [50, 51] {
        let s = c.standing(&pid(p), 3 * SECOND);
        assert!(s.may_publish(), "one accuser heard of {p}: {s:?}");
    }
    assert!(c.standing(&pid(30), 3 * SECOND).may_publish());
    let later = 4 * SECOND + cfg.hearsay_half_life_ms;
    warn(&mut c, later, 2, 52);
    let out = feed(&mut c, later, Input::Warned { accuser: pid(1), accused: vec![pid(52)] });
    assert!(out.contains(&Output::Shunned { peer: pid(52), shunned: true }), "heard again: {out:?}");
}
