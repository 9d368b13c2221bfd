use super::*;
use crate::core::Core;
use crate::recovery::holder::tests::{
    ask, backup_cfg, backup_of, deliver_all, first_sent, ident, world, World, NOW, PASS,
};
use crate::recovery::holder::{HolderConfig, Input};
use crate::recovery::split::MAX_SHARES;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The identity of holder `i` (0-based) in `world(seed, ..)`.
fn holder_identity(seed: u64, i: u64) -> Identity {
    ident(seed.wrapping_mul(31).wrapping_add(i + 1))
}

/// Ask the holders at `which` (indices into the world's holders) for their shares.
fn collect(w: &mut World, rec: &mut Recovery, which: &[usize], now: Millis) -> Vec<Result<u8, RecoveryError>> {
    which
        .iter()
        .map(|&i| {
            let outs = ask(&mut w.holders[i], rec, now);
            let env = first_sent(&outs);
            rec.on_release(&env)
                .map_err(|e| if matches!(e, RecoveryError::Message(_)) { rec.on_refusal(&env) } else { e })
        })
        .collect()
}

#[test]
fn backups_are_validated() {
    let owner = ident(1);
    let peers: Vec<PeerId> = (2..7).map(|i| ident(i).peer_id()).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let mut go = |holders: &[PeerId], pass: &[u8]| build_backup(&owner, holders, pass, backup_cfg(), 1, NOW, &mut rng);
    assert_eq!(go(&peers[..4], PASS).unwrap_err(), BackupError::HolderCount { holders: 4, shares: 5 });
    let mut dup = peers.clone();
    dup[4] = dup[0];
    assert!(matches!(go(&dup, PASS), Err(BackupError::DuplicateHolder(_))));
    let mut me = peers.clone();
    me[2] = owner.peer_id();
    assert_eq!(go(&me, PASS).unwrap_err(), BackupError::OwnerAsHolder);
    assert_eq!(go(&peers, b"").unwrap_err(), BackupError::Proof(ProofError::EmptyPassphrase));
    let b = go(&peers, PASS).unwrap().0;
    assert_eq!(b.deposits.iter().map(|(p, _)| *p).collect::<Vec<_>>(), peers);
    let too_many = BackupConfig { params: SplitParams { shares: MAX_SHARES + 1, threshold: 3 }, ..backup_cfg() };
    let many: Vec<PeerId> = (10..27).map(|i| ident(i).peer_id()).collect();
    let r = build_backup(&owner, &many, PASS, too_many, 1, NOW, &mut ChaCha20Rng::seed_from_u64(0));
    assert!(matches!(r, Err(BackupError::Split(SplitError::TooManyShares { .. }))));
}

#[test]
fn acks_are_tracked_and_holders_gone_too_long_call_for_a_reshare() {
    let mut w = world(2, HolderConfig::default());
    let owner = w.owner.peer_id();
    let mut tracker = BackupTracker::new(owner, &w.backup, NOW);
    let mut acks = Vec::new();
    for (h, (_, env)) in w.holders.iter_mut().zip(&w.backup.deposits) {
        h.handle(NOW, Input::Deposit(env.clone()));
        acks.extend(std::iter::from_fn(|| h.poll_output()).filter_map(|o| match o {
            crate::recovery::holder::Output::Send { envelope, .. } => Some(envelope),
            _ => None,
        }));
    }
    assert_eq!(tracker.acked(), 0);
    let indices: Vec<u8> = acks.iter().map(|a| tracker.on_ack(a, NOW + 5).unwrap()).collect();
    assert_eq!((indices, tracker.acked()), (vec![1, 2, 3, 4, 5], 5));
    // An ack from a stranger, or for another deposit, is refused.
    let stranger = sign(&ident(77), &open::<Ack>(&acks[0]).unwrap(), NOW);
    assert!(matches!(tracker.on_ack(&stranger, NOW), Err(AckError::NotAHolder(_))));
    let h1 = holder_identity(2, 1);
    let wrong = sign(&h1, &Ack { index: 1, ..open::<Ack>(&acks[1]).unwrap() }, NOW);
    assert!(matches!(tracker.on_ack(&wrong, NOW), Err(AckError::Mismatch { .. })));
    // Holders 0..3 are seen later; 4 is not: past reshare_after_ms, only it is gone.
    let day = 24 * 60 * 60 * 1000;
    for (p, _) in &w.backup.deposits[..4] {
        tracker.seen(p, NOW + 3 * day);
    }
    assert!(tracker.gone(NOW + 3 * day, 7 * day).is_empty());
    assert_eq!(tracker.gone(NOW + 8 * day, 7 * day), vec![w.backup.deposits[4].0]);
    assert_eq!(tracker.gone(NOW + 11 * day, 7 * day).len(), 5);
}

#[test]
fn a_holder_returning_a_wrong_share_is_named_and_recovery_still_succeeds() {
    let mut w = world(3, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let owner = w.owner.peer_id();
    let new_key = ident(300);
    let mut rec = Recovery::new(owner, new_key.duplicate(), PASS);
    // Holder 0 turns bad: it opens its share, changes one bit, and releases that.
    let bad = holder_identity(3, 0);
    let dep: Deposit = open(&w.backup.deposits[0].1).unwrap();
    let plain = seal::open(&bad, &deposit_context(&owner, &bad.peer_id(), 1, 1), &dep.sealed).unwrap();
    let mut secret: DepositSecret = rmp_serde::from_slice(&plain).unwrap();
    secret.share.high.0[3] ^= 0x10;
    let context = release_context(&owner, &bad.peer_id(), &new_key.peer_id(), 1, 1);
    let sealed = seal::seal(
        &new_key.peer_id(),
        &context,
        &rmp_serde::to_vec(&secret.share).unwrap(),
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    let forged = sign(&bad, &Release { owner, requester: new_key.peer_id(), generation: 1, index: 1, sealed }, NOW);
    let e = rec.on_release(&forged).unwrap_err();
    assert_eq!(
        e,
        RecoveryError::BadShare { holder: bad.peer_id().short(), fault: ShareFault::Mismatch { half: "high" } }
    );
    assert!(rec.collected().is_empty());
    // Three honest holders are enough.
    assert_eq!(collect(&mut w, &mut rec, &[1, 2, 3], NOW), vec![Ok(2), Ok(3), Ok(4)]);
    let r = rec.finish().unwrap();
    assert_eq!((r.identity.peer_id(), r.identity.user_id()), (owner, w.owner.user_id()));
}

#[test]
fn a_reshare_without_a_departed_holder_recovers_from_the_new_generation() {
    let mut w = world(4, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let owner = w.owner.peer_id();
    // Holder 4 left: generation 2 goes to holders 0..3 and a newcomer; holder 4 is told to forget.
    let newcomer = ident(400);
    let mut peers: Vec<PeerId> = w.backup.deposits.iter().map(|(p, _)| *p).collect();
    let departed = peers[4];
    peers[4] = newcomer.peer_id();
    let second = backup_of(&w.owner, &peers, 2, 4);
    w.holders.push(crate::recovery::holder::HolderCore::new(
        newcomer,
        HolderConfig::default(),
        ChaCha20Rng::seed_from_u64(9),
    ));
    for (i, (_, env)) in second.deposits.iter().enumerate() {
        let h = if i == 4 { 5 } else { i };
        w.holders[h].handle(NOW + 1, Input::Deposit(env.clone()));
        while w.holders[h].poll_output().is_some() {}
    }
    let (_, revoke) = revocations(&w.owner, &[departed], 2, NOW + 1).remove(0);
    w.holders[4].handle(NOW + 1, Input::Revoke(revoke));
    assert_eq!(w.holders[4].held(&owner), None);
    let mut rec = Recovery::new(owner, ident(401), PASS);
    let got = collect(&mut w, &mut rec, &[4, 0, 5, 2], NOW + 2);
    assert!(matches!(got[0], Err(RecoveryError::Refused(_, RefusalReason::NoShare))));
    let r = rec.finish().unwrap();
    assert_eq!((r.identity.peer_id(), r.generation, r.used.clone()), (owner, 2, vec![1, 3, 5]));
}

#[test]
fn a_wrong_passphrase_recovers_nothing() {
    let mut w = world(5, HolderConfig::default());
    deliver_all(&mut w, NOW);
    let mut rec = Recovery::new(w.owner.peer_id(), ident(500), b"wrong guess");
    let got = collect(&mut w, &mut rec, &[0, 1, 2, 3, 4], NOW);
    assert!(got
        .iter()
        .all(|r| matches!(r, Err(RecoveryError::Refused(_, RefusalReason::WrongProof { attempts_left: 9 })))));
    assert!(matches!(rec.finish(), Err(CombineError::NoValidShares { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// End to end: whichever holders answer, three or more give back the same peer id and user id;
    /// two give a detected failure and no key.
    #[test]
    fn any_three_holders_recover_the_same_identity_and_two_do_not(seed in 0u64..1000, mask in 0u32..32) {
        let mut w = world(seed, HolderConfig::default());
        deliver_all(&mut w, NOW);
        let which: Vec<usize> = (0..5).filter(|i| mask & (1 << i) != 0).collect();
        let mut rec = Recovery::new(w.owner.peer_id(), ident(seed + 5000), PASS);
        let got = collect(&mut w, &mut rec, &which, NOW);
        prop_assert!(got.iter().all(|r| r.is_ok()));
        match rec.finish() {
            Ok(r) => {
                prop_assert!(which.len() >= 3);
                prop_assert_eq!(r.identity.peer_id(), w.owner.peer_id());
                prop_assert_eq!(r.identity.user_id(), w.owner.user_id());
            }
            Err(CombineError::TooFewShares { valid, needed: 3, .. }) => {
                prop_assert!(which.len() < 3);
                prop_assert_eq!(valid, which.len());
            }
            Err(CombineError::NoValidShares { .. }) => prop_assert!(which.is_empty()),
            Err(e) => prop_assert!(false, "unexpected {}", e),
        }
    }
}
