//! Laws of the registration signature: it verifies for exactly the (nonce, peer, namespace) it
//! was made for; another nonce, another namespace or any flipped bit is refused.

use proptest::prelude::*;
use swarm_rendezvous::auth::{sign_register, verify_register, SignatureError};
use swarm_rendezvous::{Namespace, SeedSigner, Signer};

fn ns() -> impl Strategy<Value = String> {
    "[a-z0-9._-]{1,64}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn verifies_only_what_was_signed(
        seed in any::<[u8; 32]>(),
        nonce in any::<[u8; 32]>(),
        other_nonce in any::<[u8; 32]>(),
        ns in ns(),
        other_ns in ns(),
        flip in 0usize..512,
    ) {
        let signer = SeedSigner::from_seed(&seed);
        let peer = signer.peer();
        let namespace = Namespace::parse(&ns).expect("strategy makes valid namespaces");
        let sig = sign_register(&signer, &nonce, &ns);
        prop_assert_eq!(verify_register(&nonce, &peer, &namespace, Some(&sig)), Ok(()));
        if other_nonce != nonce {
            let refused = verify_register(&other_nonce, &peer, &namespace, Some(&sig));
            prop_assert!(matches!(refused, Err(SignatureError::Invalid { .. })), "replay accepted");
        }
        if other_ns != ns {
            let other = Namespace::parse(&other_ns).expect("valid");
            let refused = verify_register(&nonce, &peer, &other, Some(&sig));
            prop_assert!(matches!(refused, Err(SignatureError::Invalid { .. })), "other ns accepted");
        }
        let mut bytes = hex::decode(&sig).expect("hex");
        bytes[flip / 8] ^= 1 << (flip % 8);
        prop_assert!(verify_register(&nonce, &peer, &namespace, Some(&hex::encode(bytes))).is_err());
    }
}
