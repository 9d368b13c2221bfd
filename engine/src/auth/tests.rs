//! Handshake laws: honest peers prove each other; an impostor, a relayed proof, silence, a second
//! challenge or frames before the proof never open a link, and each is reported.

use super::core::{transcript, AuthCore, Input, Output};
use crate::config::AuthConfig;
use crate::core::{Core, Effect};
use crate::identity::{Ed25519Verifier, Identity};
use crate::links::Gate;
use crate::observer::Offence;
use crate::types::PeerId;
use crate::wire::Message;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::rc::Rc;

fn ident(i: u8) -> Rc<Identity> {
    Rc::new(Identity::from_secret(&[i; 32]))
}

fn core(id: &Rc<Identity>) -> AuthCore {
    AuthCore::new(
        id.clone(),
        Rc::new(Ed25519Verifier),
        AuthConfig::default(),
        ChaCha8Rng::seed_from_u64(u64::from(id.peer_id().0[0])),
    )
}

fn drain(c: &mut AuthCore) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}

/// Hand every handshake frame `out` sends to `to` over to `dst`, as coming from `from`.
fn carry(out: &[Output], to: PeerId, from: PeerId, dst: &mut AuthCore, now: u64) {
    for o in out {
        match o {
            Output::Effect(Effect::Send { to: t, msg: Message::Hello { nonce } }) if *t == to => {
                dst.handle(now, Input::Hello { from, nonce: nonce.clone() })
            }
            Output::Effect(Effect::Send { to: t, msg: Message::Proof { signature } }) if *t == to => {
                dst.handle(now, Input::Proof { from, signature: signature.clone() })
            }
            _ => {}
        }
    }
}

fn ups(out: &[Output]) -> Vec<PeerId> {
    out.iter().filter_map(|o| if let Output::Up { peer, .. } = o { Some(*peer) } else { None }).collect()
}

fn reports(out: &[Output]) -> Vec<(PeerId, Offence)> {
    out.iter()
        .filter_map(|o| {
            if let Output::Effect(Effect::Report { peer, offence }) = o {
                Some((*peer, *offence))
            } else {
                None
            }
        })
        .collect()
}

/// Run a handshake between `a` (dialling `b_claimed`) and `b` (seeing `a` connect) until quiet.
/// Returns everything each side output.
fn handshake(a: &mut AuthCore, a_id: PeerId, b: &mut AuthCore, b_claimed: PeerId) -> (Vec<Output>, Vec<Output>) {
    a.handle(0, Input::Connected { peer: b_claimed, outbound: true, generation: 1 });
    b.handle(0, Input::Connected { peer: a_id, outbound: false, generation: 1 });
    let (mut all_a, mut all_b) = (vec![], vec![]);
    for _ in 0..4 {
        let (oa, ob) = (drain(a), drain(b));
        carry(&oa, b_claimed, a_id, b, 1);
        carry(&ob, a_id, b_claimed, a, 1);
        all_a.extend(oa);
        all_b.extend(ob);
    }
    (all_a, all_b)
}

#[test]
fn honest_peers_prove_each_other() {
    let (ia, ib) = (ident(1), ident(2));
    let (mut a, mut b) = (core(&ia), core(&ib));
    let (oa, ob) = handshake(&mut a, ia.peer_id(), &mut b, ib.peer_id());
    assert_eq!(ups(&oa), vec![ib.peer_id()]);
    assert_eq!(ups(&ob), vec![ia.peer_id()]);
    assert!(reports(&oa).is_empty() && reports(&ob).is_empty());
    assert!(a.is_proved(&ib.peer_id()) && b.is_proved(&ia.peer_id()));
    assert_eq!(a.next_timeout(), None, "no deadline left once proved");
    // Frames that raced the proof are handed on once it is in.
    a.handle(2, Input::Early { from: ib.peer_id(), msg: Message::Heartbeat { seq: 1 } });
    assert_eq!(drain(&mut a), vec![Output::Deliver { from: ib.peer_id(), msg: Message::Heartbeat { seq: 1 } }]);
}

#[test]
fn an_impostor_is_refused_closed_and_reported() {
    // M connects to A claiming to be B: it can answer A's challenge only with its own key.
    let (ia, ib, im) = (ident(1), ident(2), ident(3));
    let (mut a, mut m) = (core(&ia), core(&im));
    let (oa, _) = handshake(&mut a, ia.peer_id(), &mut m, ib.peer_id());
    assert!(ups(&oa).is_empty(), "impostor accepted");
    assert_eq!(reports(&oa), vec![(ib.peer_id(), Offence::AuthFailed)]);
    assert!(oa.contains(&Output::Drop { peer: ib.peer_id() }));
    assert!(oa.contains(&Output::DialFailed { peer: ib.peer_id() }), "an outbound failure reaches discovery");
    assert_eq!(a.stats().failed, 1);
}

#[test]
fn a_proof_made_for_someone_else_does_not_pass() {
    // M relays A's challenge to B; B's proof names M as the verifier, so A refuses it.
    let (ia, ib, im) = (ident(1), ident(2), ident(3));
    let mut a = core(&ia);
    a.handle(0, Input::Connected { peer: ib.peer_id(), outbound: true, generation: 1 });
    let nonce = drain(&mut a)
        .into_iter()
        .find_map(|o| {
            if let Output::Effect(Effect::Send { msg: Message::Hello { nonce }, .. }) = o {
                Some(nonce)
            } else {
                None
            }
        })
        .unwrap();
    let relayed = ib.sign(&transcript(&nonce, &ib.peer_id(), &im.peer_id()));
    a.handle(1, Input::Proof { from: ib.peer_id(), signature: relayed.to_vec() });
    let out = drain(&mut a);
    assert!(ups(&out).is_empty());
    assert_eq!(reports(&out), vec![(ib.peer_id(), Offence::AuthFailed)]);
    // The genuine proof would have passed.
    let mut a2 = core(&ia);
    a2.handle(0, Input::Connected { peer: ib.peer_id(), outbound: true, generation: 1 });
    drain(&mut a2);
    let good = ib.sign(&transcript(&nonce, &ib.peer_id(), &ia.peer_id()));
    a2.handle(1, Input::Proof { from: ib.peer_id(), signature: good.to_vec() });
    assert_eq!(ups(&drain(&mut a2)), vec![ib.peer_id()]);
}

#[test]
fn silence_times_out_and_early_frames_close_the_link() {
    let (ia, ib, ic) = (ident(1), ident(2), ident(3));
    let mut a = core(&ia);
    a.handle(0, Input::Connected { peer: ib.peer_id(), outbound: false, generation: 1 });
    a.handle(0, Input::Connected { peer: ic.peer_id(), outbound: true, generation: 2 });
    drain(&mut a);
    // C speaks before proving itself.
    a.handle(5, Input::Early { from: ic.peer_id(), msg: Message::PexRequest { max: 50 } });
    let out = drain(&mut a);
    assert_eq!(reports(&out), vec![(ic.peer_id(), Offence::Unauthenticated)]);
    assert!(out.contains(&Output::DialFailed { peer: ic.peer_id() }));
    assert!(!out.iter().any(|o| matches!(o, Output::Deliver { .. })));
    // B never answers.
    let deadline = AuthConfig::default().handshake_timeout_ms;
    assert_eq!(a.next_timeout(), Some(deadline));
    a.handle_timeout(deadline - 1);
    assert!(drain(&mut a).is_empty());
    a.handle_timeout(deadline);
    let out = drain(&mut a);
    assert_eq!(reports(&out), vec![(ib.peer_id(), Offence::AuthTimeout)]);
    assert!(out.contains(&Output::Drop { peer: ib.peer_id() }));
    assert!(!out.iter().any(|o| matches!(o, Output::DialFailed { .. })), "inbound: discovery never knew of it");
    assert_eq!(a.next_timeout(), None);
    a.check_invariants();
}

#[test]
fn a_second_challenge_is_not_signed() {
    let (ia, ib) = (ident(1), ident(2));
    let mut a = core(&ia);
    a.handle(0, Input::Connected { peer: ib.peer_id(), outbound: false, generation: 1 });
    a.handle(1, Input::Hello { from: ib.peer_id(), nonce: vec![7; 32] });
    let signed = drain(&mut a)
        .iter()
        .filter(|o| matches!(o, Output::Effect(Effect::Send { msg: Message::Proof { .. }, .. })))
        .count();
    assert_eq!(signed, 1);
    a.handle(2, Input::Hello { from: ib.peer_id(), nonce: vec![8; 32] });
    let out = drain(&mut a);
    assert!(!out.iter().any(|o| matches!(o, Output::Effect(Effect::Send { msg: Message::Proof { .. }, .. }))));
    assert_eq!(reports(&out), vec![(ib.peer_id(), Offence::Unauthenticated)]);
}

#[test]
fn the_gate_opens_only_the_current_link() {
    let gate = Gate::default();
    let p = PeerId([4; 32]);
    let g1 = gate.open(p, 0);
    assert!(!gate.is_proved(&p));
    // The link is replaced before its proof is processed: the late proof opens nothing.
    gate.close(&p);
    let g2 = gate.open(p, 0);
    assert!(!gate.prove(&p, g1));
    assert!(!gate.is_proved(&p));
    assert!(gate.prove(&p, g2));
    assert!(gate.is_proved(&p));
    gate.close(&p);
    assert!(!gate.is_proved(&p));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Whatever arrives in whatever order, a link is reported up only for a peer that signed our
    /// challenge with its own key, at most once per connection, and the invariants hold.
    #[test]
    fn only_valid_proofs_open_links(steps in prop::collection::vec((0u8..4, 0u8..6, any::<u8>()), 1..40)) {
        let me = ident(1);
        let mut a = core(&me);
        let peers: Vec<Rc<Identity>> = (10..14).map(ident).collect();
        let mut nonces: std::collections::BTreeMap<PeerId, Vec<u8>> = Default::default();
        let mut now = 0;
        let mut gen = 0;
        for (who, what, x) in steps {
            let p = &peers[usize::from(who)];
            let id = p.peer_id();
            now += u64::from(x) * 50;
            match what {
                0 => { gen += 1; a.handle(now, Input::Connected { peer: id, outbound: x % 2 == 0, generation: gen }) }
                1 => a.handle(now, Input::Disconnected { peer: id, clean: false }),
                2 => if let Some(n) = nonces.get(&id) {
                    a.handle(now, Input::Proof { from: id, signature: p.sign(&transcript(n, &id, &me.peer_id())).to_vec() })
                },
                3 => a.handle(now, Input::Proof { from: id, signature: vec![x; 64] }),
                4 => a.handle(now, Input::Hello { from: id, nonce: vec![x; 32] }),
                _ => a.handle_timeout(now),
            }
            a.check_invariants();
            for o in drain(&mut a) {
                match o {
                    Output::Effect(Effect::Send { to, msg: Message::Hello { nonce } }) => { nonces.insert(to, nonce); }
                    Output::Up { peer, .. } => {
                        prop_assert!(what == 2, "link opened by something other than a valid proof");
                        prop_assert_eq!(peer, id);
                    }
                    _ => {}
                }
            }
        }
    }
}
