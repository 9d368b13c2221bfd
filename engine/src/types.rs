//! Identifiers shared by every subsystem.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A peer's identity on the wire: 32 bytes (the ed25519 public key once identity lands).
/// Serialised as one 32-byte binary string (34 bytes of MessagePack), not as 32 integers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PeerId(#[serde(with = "crate::serde_bytes::array32")] pub [u8; 32]);

/// Lexicographic byte order, as derived, but settled by one integer comparison of the first
/// eight bytes in almost every case: peer ids are the keys of every map in the engine.
impl Ord for PeerId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let head = |b: &[u8; 32]| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        head(&self.0).cmp(&head(&other.0)).then_with(|| self.0[8..].cmp(&other.0[8..]))
    }
}

impl PartialOrd for PeerId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PeerId {
    /// Short hex form for logs and reports (first 8 bytes).
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }

    /// Derive a peer id from a seeded RNG (simulator nodes, tests).
    pub fn random<R: rand::RngCore>(rng: &mut R) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        PeerId(b)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A 32-byte id written as hex that does not parse; `what` names the kind of id.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{what} `{text}` is not 64 hexadecimal characters")]
pub struct HexIdError {
    pub what: &'static str,
    pub text: String,
}

/// Read a 32-byte id written as 64 hex characters (peer ids, chunk ids, keys).
pub fn parse_hex32(what: &'static str, text: &str) -> Result<[u8; 32], HexIdError> {
    let err = || HexIdError { what, text: text.chars().take(80).collect() };
    let bytes = hex::decode(text.trim()).map_err(|_| err())?;
    bytes.try_into().map_err(|_| err())
}

impl std::str::FromStr for PeerId {
    type Err = HexIdError;
    fn from_str(s: &str) -> Result<Self, HexIdError> {
        parse_hex32("peer id", s).map(PeerId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A MessagePack binary string of `len` bytes.
    fn serde_bytes_of(len: usize) -> serde_bytes_value::B {
        serde_bytes_value::B(vec![1; len])
    }

    mod serde_bytes_value {
        #[derive(serde::Serialize)]
        pub struct B(#[serde(with = "crate::serde_bytes")] pub Vec<u8>);
    }

    proptest! {
        #[test]
        fn order_is_lexicographic_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), split in 0usize..32) {
            prop_assert_eq!(PeerId(a).cmp(&PeerId(b)), a.cmp(&b));
            // Ids sharing a prefix of any length still compare by bytes.
            let mut c = a;
            c[split..].copy_from_slice(&b[split..]);
            prop_assert_eq!(PeerId(a).cmp(&PeerId(c)), a.cmp(&c));
        }

        #[test]
        fn encodes_as_one_32_byte_string(a in any::<[u8; 32]>(), len in 0usize..40) {
            let bytes = rmp_serde::to_vec(&PeerId(a)).unwrap();
            prop_assert_eq!(bytes.len(), 34);
            prop_assert_eq!(rmp_serde::from_slice::<PeerId>(&bytes).unwrap(), PeerId(a));
            let other = rmp_serde::to_vec(&serde_bytes_of(len)).unwrap();
            prop_assert_eq!(rmp_serde::from_slice::<PeerId>(&other).is_ok(), len == 32);
        }
    }
}
