use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NOW: u64 = 1_800_000_000_000;

fn ident(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

fn shares_of(id: &Identity, params: SplitParams, seed: u64) -> Vec<SecretShare> {
    split(id, params, 1, NOW, &mut ChaCha20Rng::seed_from_u64(seed)).expect("valid params")
}

/// The subset of `all` picked by the bits of `mask`.
fn pick(all: &[SecretShare], mask: u32) -> Vec<SecretShare> {
    all.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, s)| s.clone()).collect()
}

#[test]
fn params_are_validated_with_named_errors() {
    assert_eq!(SplitParams::default(), SplitParams { shares: 5, threshold: 3 });
    assert!(SplitParams::default().validate().is_ok());
    let e = |shares, threshold| SplitParams { shares, threshold }.validate().unwrap_err();
    assert_eq!(e(5, 1), SplitError::ThresholdTooLow { threshold: 1, min: 2 });
    assert_eq!(e(17, 3), SplitError::TooManyShares { shares: 17, max: 16 });
    assert_eq!(e(3, 4), SplitError::ThresholdAboveShares { threshold: 4, shares: 3 });
    let id = ident(1);
    let r = split(&id, SplitParams { shares: 2, threshold: 3 }, 1, NOW, &mut ChaCha20Rng::seed_from_u64(0));
    assert!(matches!(r, Err(SplitError::ThresholdAboveShares { .. })));
}

#[test]
fn halves_round_trip_through_the_padded_encoding() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    for half in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
        let s = encode_half(&half, &mut rng);
        assert!(s.to_bytes()[31] < 0x08, "below 2^251");
        assert_eq!(*decode_half(&s, "low").unwrap(), half);
    }
    // A scalar at or above 2^251 is no encoded half.
    let mut top = [0u8; 32];
    top[31] = 0x08;
    let s = Scalar::from_canonical_bytes(top).unwrap();
    assert_eq!(decode_half(&s, "high").unwrap_err(), CombineError::NotASeed { half: "high" });
}

#[test]
fn padding_is_random_so_commitments_differ_between_splits() {
    let id = ident(2);
    let a = shares_of(&id, SplitParams::default(), 1);
    let b = shares_of(&id, SplitParams::default(), 2);
    let (ca, cb) = (
        open_commitments(&a[0].commitments, &id.peer_id()).unwrap(),
        open_commitments(&b[0].commitments, &id.peer_id()).unwrap(),
    );
    assert_ne!(ca.low[0], cb.low[0], "the first commitment hides the half behind fresh padding");
    assert_ne!(a[0].low, b[0].low);
}

#[test]
fn every_share_verifies_alone_and_carries_the_signed_commitments() {
    let id = ident(3);
    let shares = shares_of(&id, SplitParams::default(), 3);
    assert_eq!(shares.iter().map(|s| s.index).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    for s in &shares {
        let set = verify_share(s, &id.peer_id()).unwrap();
        assert_eq!((set.owner, set.generation, set.params), (id.peer_id(), 1, SplitParams::default()));
        assert_eq!((set.low.len(), set.high.len()), (3, 3));
    }
    // Checked against someone else's id, the owner's signature is refused.
    let stranger = ident(4).peer_id();
    assert!(matches!(verify_share(&shares[0], &stranger), Err(ShareFault::WrongOwner { .. })));
}

#[test]
fn commitments_signed_by_another_key_are_refused() {
    let (id, mallory) = (ident(5), ident(6));
    let mut s = shares_of(&id, SplitParams::default(), 5).remove(0);
    // Mallory re-signs the same commitments: the signer is not the owner.
    s.commitments = Envelope::seal(&mallory, s.commitments.data.clone(), NOW);
    assert!(matches!(verify_share(&s, &id.peer_id()), Err(ShareFault::WrongOwner { .. })));
    // Forged in the owner's name: the signature fails.
    s.commitments.public_key = id.peer_id();
    assert_eq!(verify_share(&s, &id.peer_id()), Err(ShareFault::Signature(Rejection::BadSignature)));
}

#[test]
fn too_few_shares_fail_with_counts_never_a_key() {
    let id = ident(7);
    let shares = shares_of(&id, SplitParams::default(), 7);
    match combine(&id.peer_id(), &shares[..2]) {
        Err(CombineError::TooFewShares { valid: 2, needed: 3, rejected }) => assert!(rejected.is_empty()),
        other => panic!("expected TooFewShares, got {other:?}"),
    }
    assert!(matches!(combine(&id.peer_id(), &[]), Err(CombineError::NoValidShares { .. })));
}

#[test]
fn a_reconstruction_from_too_few_shares_is_caught_by_the_checks() {
    // Bypass the count check: interpolating t-1 shares yields some other scalar, which the
    // commitment, encoding or public-key check refuses.
    let id = ident(8);
    let shares = shares_of(&id, SplitParams::default(), 8);
    let set = open_commitments(&shares[0].commitments, &id.peer_id()).unwrap();
    for pair in [[0, 1], [1, 4], [2, 3]] {
        let two: Vec<&SecretShare> = pair.iter().map(|&i| &shares[i]).collect();
        assert!(matches!(rebuild(&id.peer_id(), &set, &two), Err(CombineError::Inconsistent { .. })));
    }
    // And a right reconstruction checked against the wrong peer id is refused.
    let three: Vec<&SecretShare> = shares[..3].iter().collect();
    assert!(matches!(rebuild(&ident(9).peer_id(), &set, &three), Err(CombineError::WrongKey { .. })));
}

#[test]
fn newest_generation_with_enough_shares_wins_and_others_are_named() {
    let id = ident(10);
    let old = split(&id, SplitParams::default(), 1, NOW, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
    let new = split(&id, SplitParams::default(), 2, NOW + 1, &mut ChaCha20Rng::seed_from_u64(2)).unwrap();
    // Two old, three new: the new generation is used, the old shares are named.
    let mix = vec![old[0].clone(), new[1].clone(), old[3].clone(), new[2].clone(), new[4].clone()];
    let r = combine(&id.peer_id(), &mix).unwrap();
    assert_eq!((r.generation, r.used.clone()), (2, vec![2, 3, 5]));
    assert_eq!(r.identity.peer_id(), id.peer_id());
    let mut named: Vec<(u8, ShareFault)> = r.rejected;
    named.sort_by_key(|(i, _)| *i);
    assert_eq!(
        named,
        vec![(1, ShareFault::OtherGeneration { generation: 1 }), (4, ShareFault::OtherGeneration { generation: 1 })]
    );
    // Shares of two generations never mix: 2 + 2 is not enough.
    let r = combine(&id.peer_id(), &[old[0].clone(), old[1].clone(), new[2].clone(), new[3].clone()]);
    assert!(matches!(r, Err(CombineError::TooFewShares { valid: 2, needed: 3, .. })));
}

#[test]
fn a_repeated_share_counts_once() {
    let id = ident(11);
    let s = shares_of(&id, SplitParams::default(), 11);
    let r = combine(&id.peer_id(), &[s[0].clone(), s[0].clone(), s[1].clone()]);
    match r {
        Err(CombineError::TooFewShares { valid: 2, rejected, .. }) => {
            assert_eq!(rejected, vec![(1, ShareFault::DuplicateIndex)])
        }
        other => panic!("expected TooFewShares, got {other:?}"),
    }
}

#[test]
fn debug_output_hides_share_values() {
    let id = ident(12);
    let s = shares_of(&id, SplitParams::default(), 12).remove(0);
    let shown = format!("{s:?}");
    assert!(!shown.contains(&hex::encode(s.low.0)) && !shown.contains(&hex::encode(&s.low.0[..4])));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Any subset of at least t of n shares rebuilds exactly the owner's identity (peer id and
    /// user id); any smaller one fails with TooFewShares and yields no key.
    #[test]
    fn any_threshold_subset_recovers_and_smaller_ones_fail(
        key in any::<u64>(), rng_seed in any::<u64>(), n in 2u8..=7, t_off in 0u8..6, mask in any::<u32>(),
    ) {
        let t = 2 + t_off % (n - 1);
        let id = ident(key);
        let shares = shares_of(&id, SplitParams { shares: n, threshold: t }, rng_seed);
        let subset = pick(&shares, mask & ((1 << n) - 1));
        match combine(&id.peer_id(), &subset) {
            Ok(r) => {
                prop_assert!(subset.len() >= usize::from(t));
                prop_assert_eq!(r.identity.peer_id(), id.peer_id());
                prop_assert_eq!(r.identity.user_id(), id.user_id());
                prop_assert_eq!(&*r.identity.secret(), &*id.secret());
                prop_assert!(r.rejected.is_empty());
            }
            Err(CombineError::TooFewShares { valid, needed, .. }) => {
                prop_assert!(subset.len() < usize::from(t));
                prop_assert_eq!((valid, needed), (subset.len(), t));
            }
            Err(CombineError::NoValidShares { .. }) => prop_assert!(subset.is_empty()),
            Err(e) => prop_assert!(false, "unexpected {}", e),
        }
    }

    /// Flipping any bit of a share's value or index is detected and attributed to that share;
    /// with one spare share the recovery still succeeds, with exactly t it fails.
    #[test]
    fn a_changed_share_is_detected_and_named(
        key in any::<u64>(), victim in 0usize..5, bit in 0usize..(2 * 256 + 8),
    ) {
        let id = ident(key);
        let mut shares = shares_of(&id, SplitParams::default(), key ^ 1);
        let s = &mut shares[victim];
        match bit {
            0..=255 => s.low.0[bit / 8] ^= 1 << (bit % 8),
            256..=511 => s.high.0[(bit - 256) / 8] ^= 1 << (bit % 8),
            _ => s.index ^= 1 << (bit - 512),
        }
        let changed_index = s.index;
        prop_assert!(verify_share(&shares[victim], &id.peer_id()).is_err());
        // With the four others, recovery succeeds and names the changed share.
        let r = combine(&id.peer_id(), &shares).unwrap();
        prop_assert_eq!(r.identity.peer_id(), id.peer_id());
        prop_assert_eq!(r.used.len(), 4);
        prop_assert_eq!(r.rejected.len(), 1);
        prop_assert_eq!(r.rejected[0].0, changed_index);
        // With the changed share among exactly three, no key comes out.
        let others: Vec<usize> = (0..5).filter(|&i| i != victim).take(2).collect();
        let three = vec![shares[victim].clone(), shares[others[0]].clone(), shares[others[1]].clone()];
        let is_too_few = matches!(combine(&id.peer_id(), &three), Err(CombineError::TooFewShares { valid: 2, .. }));
        prop_assert!(is_too_few);
    }

    /// Shares of an old (revoked) and a new generation, any mix: the key comes back only when one
    /// generation alone has `threshold` valid shares, and then from that generation's shares only.
    #[test]
    fn shares_of_two_generations_never_combine(key in any::<u64>(), old_mask in 0u32..32, new_mask in 0u32..32) {
        let id = ident(key);
        let old = split(&id, SplitParams::default(), 1, NOW, &mut ChaCha20Rng::seed_from_u64(key ^ 3)).unwrap();
        let new = split(&id, SplitParams::default(), 2, NOW, &mut ChaCha20Rng::seed_from_u64(key ^ 4)).unwrap();
        let (o, n) = (pick(&old, old_mask), pick(&new, new_mask));
        let mut mix = o.clone();
        mix.extend(n.iter().cloned());
        match combine(&id.peer_id(), &mix) {
            Ok(r) => {
                let (used_gen, count) = if n.len() >= 3 { (2, n.len()) } else { (1, o.len()) };
                prop_assert!(count >= 3);
                prop_assert_eq!(r.generation, used_gen);
                prop_assert_eq!(r.used.len(), count);
                prop_assert_eq!(r.identity.peer_id(), id.peer_id());
            }
            Err(_) => prop_assert!(o.len() < 3 && n.len() < 3),
        }
    }
}
