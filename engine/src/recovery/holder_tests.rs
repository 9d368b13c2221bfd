use super::*;
use crate::recovery::messages::Record;
use crate::recovery::owner::{build_backup, revocations, Backup, BackupConfig, Recovery};
use crate::recovery::proof::tests::FAST_KDF;
use crate::recovery::split::SplitParams;
use proptest::prelude::*;
use rand::SeedableRng;

pub(crate) const NOW: u64 = 1_800_000_000_000;
pub(crate) const PASS: &[u8] = b"correct horse battery staple";

pub(crate) fn ident(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

pub(crate) fn backup_cfg() -> BackupConfig {
    BackupConfig { params: SplitParams::default(), kdf: FAST_KDF }
}

/// An owner, five holder cores, and a backup of `generation` (not yet delivered).
pub(crate) struct World {
    pub(crate) owner: Identity,
    pub(crate) holders: Vec<HolderCore>,
    pub(crate) backup: Backup,
}

pub(crate) fn world(seed: u64, cfg: HolderConfig) -> World {
    let owner = ident(seed);
    let ids: Vec<Identity> = (1..=5).map(|i| ident(seed.wrapping_mul(31).wrapping_add(i))).collect();
    let peers: Vec<PeerId> = ids.iter().map(|i| i.peer_id()).collect();
    let backup = backup_of(&owner, &peers, 1, seed);
    let holders =
        ids.into_iter().zip(0..).map(|(id, i)| HolderCore::new(id, cfg, ChaCha20Rng::seed_from_u64(i))).collect();
    World { owner, holders, backup }
}

pub(crate) fn backup_of(owner: &Identity, peers: &[PeerId], generation: u64, seed: u64) -> Backup {
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ generation);
    build_backup(owner, peers, PASS, backup_cfg(), generation, NOW, &mut rng).unwrap().0
}

pub(crate) fn drain(core: &mut HolderCore) -> Vec<Output> {
    core.check_invariants();
    std::iter::from_fn(|| core.poll_output()).collect()
}

/// The one envelope sent, decoded as a `T`, with its addressee.
pub(crate) fn only_reply<T: Record>(outs: &[Output]) -> (PeerId, T) {
    let sent: Vec<_> = outs
        .iter()
        .filter_map(|o| if let Output::Send { to, envelope } = o { Some((*to, envelope)) } else { None })
        .collect();
    assert_eq!(sent.len(), 1, "{outs:?}");
    (sent[0].0, open::<T>(sent[0].1).expect("a signed reply of the expected kind"))
}

/// The first envelope sent.
pub(crate) fn first_sent(outs: &[Output]) -> Envelope {
    outs.iter()
        .find_map(|o| if let Output::Send { envelope, .. } = o { Some(envelope.clone()) } else { None })
        .expect("a reply")
}

pub(crate) fn refusal(outs: &[Output]) -> RefusalReason {
    only_reply::<Refusal>(outs).1.reason
}

pub(crate) fn deliver_all(w: &mut World, now: Millis) {
    for (h, (_, env)) in w.holders.iter_mut().zip(&w.backup.deposits) {
        h.handle(now, Input::Deposit(env.clone()));
        drain(h);
    }
}

/// One full exchange with `holder` for `rec` at `now`: challenge, then release request; the outputs
/// of the release request.
pub(crate) fn ask(holder: &mut HolderCore, rec: &mut Recovery, now: Millis) -> Vec<Output> {
    holder.handle(now, Input::ChallengeRequest(rec.challenge_request(&holder.me, now)));
    let outs = drain(holder);
    let Ok(request) = rec.on_challenge(&first_sent(&outs), now) else { return outs };
    holder.handle(now, Input::ReleaseRequest(request));
    drain(holder)
}

#[test]
fn a_deposit_is_checked_stored_and_acknowledged() {
    let mut w = world(1, HolderConfig::default());
    let owner = w.owner.peer_id();
    let env = w.backup.deposits[2].1.clone();
    w.holders[2].handle(NOW, Input::Deposit(env.clone()));
    let outs = drain(&mut w.holders[2]);
    assert!(
        matches!(&outs[0], Output::Store(ShardOp::Put { owner: o, record }) if *o == owner && *record == rmp_serde::to_vec(&env).unwrap())
    );
    let (to, ack) = only_reply::<Ack>(&outs);
    assert_eq!((to, ack.owner, ack.generation, ack.index, ack.deposit), (owner, owner, 1, 3, Bytes32(env.id())));
    assert_eq!(w.holders[2].held(&owner), Some((1, 3)));
}

#[test]
fn deposits_not_for_us_or_altered_are_dropped_with_the_reason() {
    let mut w = world(2, HolderConfig::default());
    let dep0 = w.backup.deposits[0].1.clone();
    // Holder 1 is handed holder 0's deposit.
    w.holders[1].handle(NOW, Input::Deposit(dep0.clone()));
    assert!(matches!(&drain(&mut w.holders[1])[..], [Output::Dropped { error: HolderError::NotForMe(_), .. }]));
    // A changed byte breaks the owner's signature.
    let mut bad = dep0.clone();
    let last = bad.data.len() - 1;
    bad.data[last] ^= 1;
    w.holders[0].handle(NOW, Input::Deposit(bad));
    assert!(matches!(&drain(&mut w.holders[0])[..], [Output::Dropped { error: HolderError::Message(_), .. }]));
    // Mallory re-signs the owner's deposit as hers: the seal is bound to the real owner.
    let mallory = ident(99);
    let stolen = Envelope::seal(&mallory, dep0.data.clone(), NOW);
    w.holders[0].handle(NOW, Input::Deposit(stolen));
    assert!(matches!(
        &drain(&mut w.holders[0])[..],
        [Output::Dropped { error: HolderError::Seal(SealError::CannotOpen), .. }]
    ));
    assert_eq!(w.holders[0].stats().stored, 0);
}

#[test]
fn a_newer_generation_replaces_the_old_and_an_older_one_is_refused() {
    let mut w = world(3, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let owner = w.owner.peer_id();
    let peers: Vec<PeerId> = w.backup.deposits.iter().map(|(p, _)| *p).collect();
    let newer = backup_of(&w.owner, &peers, 2, 3);
    w.holders[0].handle(NOW + 1, Input::Deposit(newer.deposits[0].1.clone()));
    let outs = drain(&mut w.holders[0]);
    assert!(matches!(&outs[0], Output::Store(ShardOp::Put { .. })));
    assert_eq!(only_reply::<Ack>(&outs).1.generation, 2);
    assert_eq!(w.holders[0].held(&owner), Some((2, 1)));
    w.holders[0].handle(NOW + 2, Input::Deposit(w.backup.deposits[0].1.clone()));
    assert_eq!(refusal(&drain(&mut w.holders[0])), RefusalReason::OlderGeneration);
    assert_eq!(w.holders[0].held(&owner), Some((2, 1)));
}

#[test]
fn a_revocation_deletes_older_generations_only() {
    let mut w = world(4, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let (owner, holder) = (w.owner.peer_id(), w.holders[4].me);
    let (_, not_yet) = revocations(&w.owner, &[holder], 1, NOW).remove(0);
    w.holders[4].handle(NOW, Input::Revoke(not_yet));
    assert!(drain(&mut w.holders[4]).is_empty());
    let (_, revoke) = revocations(&w.owner, &[holder], 2, NOW).remove(0);
    // Only the owner can revoke.
    let forged = Envelope::seal(&ident(98), revoke.data.clone(), NOW);
    w.holders[4].handle(NOW, Input::Revoke(forged));
    assert!(drain(&mut w.holders[4]).is_empty());
    assert_eq!(w.holders[4].held(&owner), Some((1, 5)));
    w.holders[4].handle(NOW, Input::Revoke(revoke));
    assert_eq!(drain(&mut w.holders[4]), vec![Output::Store(ShardOp::Delete { owner })]);
    assert_eq!(w.holders[4].held(&owner), None);
}

#[test]
fn the_number_of_owners_held_is_bounded() {
    let mut w = world(5, HolderConfig { max_shares_held: 1, ..HolderConfig::default() });
    deliver_all(&mut w, NOW);
    let other = ident(55);
    let peers: Vec<PeerId> = w.backup.deposits.iter().map(|(p, _)| *p).collect();
    let theirs = backup_of(&other, &peers, 1, 55);
    w.holders[0].handle(NOW, Input::Deposit(theirs.deposits[0].1.clone()));
    assert_eq!(refusal(&drain(&mut w.holders[0])), RefusalReason::Full);
    assert_eq!(w.holders[0].held(&other.peer_id()), None);
}

#[test]
fn the_right_proof_gets_the_share_sealed_to_the_new_key_only() {
    let mut w = world(6, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let mut rec = Recovery::new(w.owner.peer_id(), ident(60), PASS);
    let outs = ask(&mut w.holders[1], &mut rec, NOW + 10);
    let (to, release) = only_reply::<Release>(&outs);
    assert_eq!((to, release.index, release.generation), (ident(60).peer_id(), 2, 1));
    assert_eq!(rec.on_release(&first_sent(&outs)), Ok(2));
    // Someone else with the same passphrase but another key is not the requester, and cannot
    // open the seal even when the label is rewritten for it.
    let mut eve = Recovery::new(w.owner.peer_id(), ident(61), PASS);
    assert!(matches!(eve.on_release(&first_sent(&outs)), Err(crate::recovery::owner::RecoveryError::NotOurs(_))));
    let relabelled = sign(&w.holders[1].identity, &Release { requester: ident(61).peer_id(), ..release }, NOW);
    assert!(matches!(eve.on_release(&relabelled), Err(crate::recovery::owner::RecoveryError::Seal { .. })));
    assert_eq!(w.holders[1].stats().released, 1);
}

#[test]
fn a_proof_is_bound_to_its_requester_and_spent_once() {
    let mut w = world(7, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let h = &mut w.holders[0];
    let owner = w.owner.peer_id();
    let mut alice = Recovery::new(owner, ident(70), PASS);
    let mallory = ident(71);
    h.handle(NOW, Input::ChallengeRequest(alice.challenge_request(&h.me, NOW)));
    let request = alice.on_challenge(&first_sent(&drain(h)), NOW).unwrap();
    let body: ReleaseRequest = open(&request).unwrap();
    // Mallory sends Alice's nonce and proof under her own key: the challenge is not hers.
    h.handle(NOW, Input::ReleaseRequest(sign(&mallory, &body, NOW)));
    assert_eq!(refusal(&drain(h)), RefusalReason::NoChallenge);
    // With a challenge of her own, Alice's proof does not check for her.
    let mal = Recovery::new(owner, mallory.duplicate(), b"unknown");
    h.handle(NOW, Input::ChallengeRequest(mal.challenge_request(&h.me, NOW)));
    let (_, mine) = only_reply::<Challenge>(&drain(h));
    h.handle(NOW, Input::ReleaseRequest(sign(&mallory, &ReleaseRequest { nonce: mine.nonce, ..body.clone() }, NOW)));
    assert_eq!(refusal(&drain(h)), RefusalReason::WrongProof { attempts_left: 9 });
    // Alice's own request works once; its replay finds the challenge spent.
    h.handle(NOW, Input::ReleaseRequest(request.clone()));
    assert!(only_reply::<Release>(&drain(h)).1.index == 1);
    h.handle(NOW, Input::ReleaseRequest(request));
    assert_eq!(refusal(&drain(h)), RefusalReason::NoChallenge);
    assert_eq!(h.stats().released, 1);
}

#[test]
fn challenges_expire_and_are_bounded() {
    let cfg = HolderConfig { max_pending_challenges: 2, ..HolderConfig::default() };
    let mut w = world(8, cfg);
    deliver_all(&mut w, NOW);
    let owner = w.owner.peer_id();
    let h = &mut w.holders[0];
    let mut rec = Recovery::new(owner, ident(80), PASS);
    h.handle(NOW, Input::ChallengeRequest(rec.challenge_request(&h.me, NOW)));
    let challenge = first_sent(&drain(h));
    assert_eq!(h.next_timeout(), Some(NOW + cfg.challenge_ttl_ms));
    let late = NOW + cfg.challenge_ttl_ms;
    h.handle_timeout(late);
    assert_eq!(h.next_timeout(), None);
    let request = rec.on_challenge(&challenge, late).unwrap();
    h.handle(late, Input::ReleaseRequest(request));
    assert_eq!(refusal(&drain(h)), RefusalReason::NoChallenge);
    // Past the bound, the oldest challenge is dropped for the newest.
    for i in 0..5 {
        h.handle(
            NOW + i,
            Input::ChallengeRequest(Recovery::new(owner, ident(81 + i), PASS).challenge_request(&h.me, NOW)),
        );
        drain(h);
    }
    assert_eq!(h.challenges.len(), 2);
    assert_eq!(h.stats().proofs_checked, 0, "expired or missing challenges cost no attempt");
}

#[test]
fn requests_for_unknown_owners_stale_or_for_others_get_no_share() {
    let mut w = world(9, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let h = &mut w.holders[0];
    let rec = Recovery::new(ident(90).peer_id(), ident(91), PASS);
    h.handle(NOW, Input::ChallengeRequest(rec.challenge_request(&h.me, NOW)));
    assert_eq!(refusal(&drain(h)), RefusalReason::NoShare);
    let rec = Recovery::new(w.owner.peer_id(), ident(92), PASS);
    let stale = rec.challenge_request(&h.me, NOW - 10 * 60 * 1000);
    h.handle(NOW, Input::ChallengeRequest(stale));
    assert!(matches!(&drain(h)[..], [Output::Dropped { error: HolderError::Clock(_), .. }]));
    h.handle(NOW, Input::ChallengeRequest(rec.challenge_request(&PeerId([7; 32]), NOW)));
    assert!(matches!(&drain(h)[..], [Output::Dropped { error: HolderError::NotForMe(_), .. }]));
}

#[test]
fn stored_records_restore_the_same_holdings() {
    let mut w = world(10, HolderConfig::default());
    let owner = w.owner.peer_id();
    w.holders[3].handle(NOW, Input::Deposit(w.backup.deposits[3].1.clone()));
    let records: Vec<Vec<u8>> = drain(&mut w.holders[3])
        .into_iter()
        .filter_map(|o| if let Output::Store(ShardOp::Put { record, .. }) = o { Some(record) } else { None })
        .collect();
    let me = w.holders[3].identity.duplicate();
    let mut again = HolderCore::new(me, HolderConfig::default(), ChaCha20Rng::seed_from_u64(0));
    let errors =
        again.restore(&[records[0].clone(), b"garbage".to_vec(), rmp_serde::to_vec(&w.backup.deposits[0].1).unwrap()]);
    assert_eq!(errors.len(), 2, "garbage and another holder's deposit: {errors:?}");
    assert!(matches!(errors[1], HolderError::NotForMe(_)));
    assert_eq!(again.held(&owner), Some((1, 4)));
    assert!(drain(&mut again).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any schedule of right and wrong attempts: a wrong proof never gets a share; in any window of
    /// `window_ms` at most `max_attempts_per_window` proofs are checked; after a lock, none is
    /// checked until it ends; the right proof outside a lock always gets the share.
    #[test]
    fn wrong_proofs_never_get_a_share_and_the_rate_limit_holds(
        steps in prop::collection::vec((prop_oneof![0u64..100, 0u64..6_000], any::<bool>()), 1..60), seed in any::<u64>(),
    ) {
        let cfg = HolderConfig { window_ms: 10_000, lockout_ms: 30_000, ..HolderConfig::default() };
        let mut w = world(seed % 1000, cfg);
        deliver_all(&mut w, NOW);
        let owner = w.owner.peer_id();
        let mut right = Recovery::new(owner, ident(seed ^ 1), PASS);
        let mut wrong = Recovery::new(owner, ident(seed ^ 2), b"not the passphrase");
        let h = &mut w.holders[0];
        let (mut now, mut checks, mut lock_end) = (NOW, Vec::<Millis>::new(), 0u64);
        for (dt, is_right) in steps {
            now += dt;
            let before = h.stats().proofs_checked;
            let outs = ask(h, if is_right { &mut right } else { &mut wrong }, now);
            let checked = h.stats().proofs_checked - before;
            if checked == 1 { checks.push(now) }
            prop_assert!(now >= lock_end || checked == 0, "a proof was checked while locked");
            let released = outs.iter().any(|o| matches!(o, Output::Send { envelope, .. } if open::<Release>(envelope).is_ok()));
            prop_assert!(!released || is_right, "a wrong proof got a share");
            let in_window = checks.iter().filter(|&&t| t + cfg.window_ms > now).count();
            prop_assert!(in_window <= cfg.max_attempts_per_window as usize);
            let locked = outs.iter().find_map(|o| match o {
                Output::Send { envelope, .. } => match open::<Refusal>(envelope) {
                    Ok(Refusal { reason: RefusalReason::Locked { until_ms }, .. }) => Some(until_ms),
                    _ => None,
                },
                _ => None,
            });
            if let Some(until) = locked { lock_end = lock_end.max(until) } else if is_right { prop_assert!(released) }
        }
    }
}

#[test]
fn ten_wrong_proofs_lock_the_owner_then_the_lock_ends() {
    let cfg = HolderConfig::default();
    let mut w = world(11, cfg);
    deliver_all(&mut w, NOW);
    let owner = w.owner.peer_id();
    let mut wrong = Recovery::new(owner, ident(110), b"guess");
    let mut right = Recovery::new(owner, ident(111), PASS);
    let h = &mut w.holders[0];
    for i in 1..cfg.max_attempts_per_window {
        assert_eq!(
            refusal(&ask(h, &mut wrong, NOW + u64::from(i))),
            RefusalReason::WrongProof { attempts_left: 10 - i }
        );
    }
    let tenth = NOW + 10;
    let until_ms = tenth + cfg.lockout_ms;
    assert_eq!(refusal(&ask(h, &mut wrong, tenth)), RefusalReason::Locked { until_ms });
    // Locked: even the right passphrase gets no challenge, long after the window has passed.
    assert_eq!(refusal(&ask(h, &mut right, tenth + cfg.window_ms + 1)), RefusalReason::Locked { until_ms });
    assert_eq!(refusal(&ask(h, &mut right, until_ms - 1)), RefusalReason::Locked { until_ms });
    assert_eq!(h.stats().proofs_checked, 10);
    assert_eq!(only_reply::<Release>(&ask(h, &mut right, until_ms)).1.index, 1);
}

#[test]
fn a_full_window_of_attempts_refuses_until_a_slot_frees() {
    let cfg = HolderConfig::default();
    let mut w = world(12, cfg);
    deliver_all(&mut w, NOW);
    let mut right = Recovery::new(w.owner.peer_id(), ident(120), PASS);
    let h = &mut w.holders[0];
    // Ten right proofs fill the window (every proof checked counts), the eleventh waits.
    for i in 0..10 {
        assert!(only_reply::<Release>(&ask(h, &mut right, NOW + i)).1.index == 1);
    }
    let until_ms = NOW + cfg.window_ms;
    assert_eq!(refusal(&ask(h, &mut right, NOW + 20)), RefusalReason::Locked { until_ms });
    assert!(only_reply::<Release>(&ask(h, &mut right, until_ms)).1.index == 1);
}

/// A holder restarted from what it stored: its share records and its rate-limit records.
fn restarted(h: &HolderCore, cfg: HolderConfig, shares: &[Vec<u8>], locks: &[Vec<u8>]) -> HolderCore {
    let mut again = HolderCore::new(h.identity.duplicate(), cfg, ChaCha20Rng::seed_from_u64(7));
    assert!(again.restore(shares).is_empty());
    assert!(again.restore_locks(locks).is_empty());
    again
}

/// The share and lock records among `outs`, newest last.
fn records(outs: &[Output], shares: &mut Vec<Vec<u8>>, locks: &mut Vec<Vec<u8>>) {
    for o in outs {
        match o {
            Output::Store(ShardOp::Put { record, .. }) => *shares = vec![record.clone()],
            Output::Store(ShardOp::Lock { record, .. }) => *locks = vec![record.clone()],
            _ => {}
        }
    }
}

#[test]
fn a_lock_survives_a_restart() {
    let cfg = HolderConfig::default();
    let mut w = world(13, cfg);
    let owner = w.owner.peer_id();
    let (mut shares, mut locks) = (Vec::new(), Vec::new());
    w.holders[0].handle(NOW, Input::Deposit(w.backup.deposits[0].1.clone()));
    records(&drain(&mut w.holders[0]), &mut shares, &mut locks);
    let mut wrong = Recovery::new(owner, ident(130), b"guess");
    for i in 0..6 {
        records(&ask(&mut w.holders[0], &mut wrong, NOW + i), &mut shares, &mut locks);
    }
    // Six attempts counted survive a restart: four more lock the owner.
    let mut h = restarted(&w.holders[0], cfg, &shares, &locks);
    assert_eq!(h.lock_of(&owner), Some((6, None)));
    for i in 6..10 {
        records(&ask(&mut h, &mut wrong, NOW + i), &mut shares, &mut locks);
    }
    let until_ms = NOW + 9 + cfg.lockout_ms;
    assert_eq!(h.lock_of(&owner), Some((10, Some(until_ms))));
    // And the lock survives the next restart: even the right passphrase waits.
    let mut h = restarted(&h, cfg, &shares, &locks);
    let mut right = Recovery::new(owner, ident(131), PASS);
    assert_eq!(refusal(&ask(&mut h, &mut right, NOW + cfg.window_ms + 1)), RefusalReason::Locked { until_ms });
    assert_eq!(only_reply::<Release>(&ask(&mut h, &mut right, until_ms)).1.index, 1);
    // A lock record of another generation (the owner re-shared since) is not applied.
    let peers: Vec<PeerId> = w.holders.iter().map(|h| h.me).collect();
    let newer = backup_of(&w.owner, &peers, 2, 13);
    let mut fresh = HolderCore::new(h.identity.duplicate(), cfg, ChaCha20Rng::seed_from_u64(8));
    fresh.restore(&[rmp_serde::to_vec(&newer.deposits[0].1).unwrap()]);
    fresh.restore_locks(&locks);
    assert_eq!(fresh.lock_of(&owner), Some((0, None)));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Wrong attempts with restarts between any of them: never more than the window's attempts
    /// are checked in a window, and a wrong proof never gets a share.
    #[test]
    fn the_rate_limit_holds_across_restarts(
        steps in prop::collection::vec((0u64..3_000, any::<bool>(), any::<bool>()), 1..40), seed in any::<u64>(),
    ) {
        let cfg = HolderConfig { window_ms: 10_000, lockout_ms: 30_000, ..HolderConfig::default() };
        let mut w = world(seed % 1000, cfg);
        let owner = w.owner.peer_id();
        let (mut shares, mut locks) = (Vec::new(), Vec::new());
        w.holders[0].handle(NOW, Input::Deposit(w.backup.deposits[0].1.clone()));
        records(&drain(&mut w.holders[0]), &mut shares, &mut locks);
        let mut wrong = Recovery::new(owner, ident(seed ^ 2), b"not the passphrase");
        let mut h = w.holders.swap_remove(0);
        let (mut now, mut checks) = (NOW, Vec::<Millis>::new());
        for (dt, restart, _) in steps {
            now += dt;
            if restart {
                h = restarted(&h, cfg, &shares, &locks);
            }
            let before = h.stats().proofs_checked;
            let outs = ask(&mut h, &mut wrong, now);
            records(&outs, &mut shares, &mut locks);
            if h.stats().proofs_checked > before { checks.push(now) }
            let released = outs.iter().any(|o| matches!(o, Output::Send { envelope, .. } if open::<Release>(envelope).is_ok()));
            prop_assert!(!released, "a wrong proof got a share");
            let in_window = checks.iter().filter(|&&t| t + cfg.window_ms > now).count();
            prop_assert!(in_window <= cfg.max_attempts_per_window as usize, "{} checks in a window", in_window);
        }
    }
}

#[test]
fn a_lying_holders_share_is_caught_by_the_owners_commitments() {
    let mut w = world(14, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let owner = w.owner.peer_id();
    w.holders[2].set_lies(true);
    let mut rec = Recovery::new(owner, ident(140), PASS);
    let env = first_sent(&ask(&mut w.holders[2], &mut rec, NOW));
    assert!(matches!(rec.on_release(&env), Err(crate::recovery::owner::RecoveryError::BadShare { .. })));
    // The honest ones still rebuild the key.
    for i in [0, 1, 3] {
        let env = first_sent(&ask(&mut w.holders[i], &mut rec, NOW));
        rec.on_release(&env).unwrap();
    }
    assert_eq!(rec.finish().unwrap().identity.peer_id(), owner);
}
