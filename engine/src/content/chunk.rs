//! Chunks: a file is cut into pieces of at most [`MAX_CHUNK_BYTES`], each encrypted with
//! AES-256-GCM under a key made for that file alone, and addressed by the SHA-256 of its
//! ciphertext. Holders store and serve ciphertext they cannot read, and anyone can check that a
//! chunk is the one asked for without the key.
//!
//! The nonce of chunk `i` is `i` itself (96-bit big-endian): unique because a key encrypts one
//! file only. The index is also bound as associated data, so a holder cannot swap two chunks of
//! the same file and have them decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Largest chunk of plaintext (one WebRTC message carries one chunk).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;
/// AES-GCM tag appended to every chunk.
pub const TAG_BYTES: usize = 16;

/// A chunk's address: SHA-256 of its ciphertext.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChunkId(#[serde(with = "crate::serde_bytes::array32")] pub [u8; 32]);

impl ChunkId {
    pub fn of(ciphertext: &[u8]) -> Self {
        ChunkId(Sha256::digest(ciphertext).into())
    }

    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", self.short())
    }
}

impl std::str::FromStr for ChunkId {
    type Err = crate::types::HexIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::types::parse_hex32("chunk id", s).map(ChunkId)
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The key of one file. Whoever holds it (and the manifest) can read the file; holders of its
/// chunks cannot. Wiped from memory when dropped.
#[derive(Clone)]
pub struct FileKey(Zeroizing<[u8; 32]>);

impl FileKey {
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut *k);
        FileKey(k)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        FileKey(Zeroizing::new(bytes))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(*self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&*self.0).expect("a 32-byte key is an AES-256 key")
    }
}

/// Keys compare by value (links are compared in tests and by callers; nothing here decides on
/// a secret by comparing it).
impl PartialEq for FileKey {
    fn eq(&self, other: &Self) -> bool {
        *self.0 == *other.0
    }
}

impl Eq for FileKey {}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKey(..)")
    }
}

/// One encrypted chunk, ready to store or send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub id: ChunkId,
    pub ciphertext: Vec<u8>,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("chunk size {0} is outside 1..={MAX_CHUNK_BYTES}")]
    BadChunkSize(usize),
    #[error("chunk {index} has {len} bytes, more than a chunk can hold")]
    TooLarge { index: u32, len: usize },
    #[error("chunk {index} does not match its address {expected} (got {got})")]
    HashMismatch { index: u32, expected: ChunkId, got: ChunkId },
    #[error("chunk {index} does not decrypt under this file key (wrong key, or altered)")]
    Decrypt { index: u32 },
}

fn nonce(index: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[8..].copy_from_slice(&index.to_be_bytes());
    n
}

/// Encrypt one piece of at most [`MAX_CHUNK_BYTES`] as chunk `index` of the file `key` is for
/// (a file's sealed manifest is such a piece, at an index no data chunk uses). Files are cut
/// into such pieces by [`super::manifest::ManifestBuilder`].
pub fn encrypt_one(key: &FileKey, index: u32, plain: &[u8]) -> Result<Chunk, ChunkError> {
    if plain.len() > MAX_CHUNK_BYTES {
        return Err(ChunkError::TooLarge { index, len: plain.len() });
    }
    let aad = index.to_be_bytes();
    let ciphertext = key
        .cipher()
        .encrypt(Nonce::from_slice(&nonce(index)), Payload { msg: plain, aad: &aad })
        .expect("AES-GCM encryption of at most 256 KiB cannot fail");
    Ok(Chunk { id: ChunkId::of(&ciphertext), ciphertext })
}

/// Check a fetched chunk against the address it was asked by, then decrypt it as chunk `index`.
pub fn decrypt(key: &FileKey, index: u32, expected: &ChunkId, ciphertext: &[u8]) -> Result<Vec<u8>, ChunkError> {
    if ciphertext.len() > MAX_CHUNK_BYTES + TAG_BYTES {
        return Err(ChunkError::TooLarge { index, len: ciphertext.len() });
    }
    let got = ChunkId::of(ciphertext);
    if got != *expected {
        return Err(ChunkError::HashMismatch { index, expected: *expected, got });
    }
    let aad = index.to_be_bytes();
    key.cipher()
        .decrypt(Nonce::from_slice(&nonce(index)), Payload { msg: ciphertext, aad: &aad })
        .map_err(|_| ChunkError::Decrypt { index })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::manifest::{prepare_file, ContentError};
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn key(seed: u64) -> FileKey {
        FileKey::generate(&mut ChaCha8Rng::seed_from_u64(seed))
    }

    fn encrypt(key: &FileKey, data: &[u8], chunk_size: usize) -> Result<Vec<Chunk>, ContentError> {
        prepare_file("f", data, chunk_size, key).map(|(_, chunks)| chunks)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip_and_addresses(data in prop::collection::vec(any::<u8>(), 0..5000), size in 1usize..700) {
            let k = key(1);
            let result = encrypt(&k, &data, size);
            if data.len().div_ceil(size) > crate::content::manifest::MAX_MANIFEST_CHUNKS {
                // More chunks than a manifest may list: refused whole, never cut short.
                prop_assert!(result.is_err(), "{} chunks accepted", data.len().div_ceil(size));
                return Ok(());
            }
            let chunks = result.unwrap();
            prop_assert_eq!(chunks.len(), data.len().div_ceil(size));
            let mut back = vec![];
            for (i, c) in chunks.iter().enumerate() {
                prop_assert_eq!(c.id, ChunkId::of(&c.ciphertext));
                prop_assert!(c.ciphertext.len() <= size + TAG_BYTES);
                back.extend(decrypt(&k, i as u32, &c.id, &c.ciphertext).unwrap());
            }
            prop_assert_eq!(back, data);
        }

        #[test]
        fn any_altered_byte_is_caught(data in prop::collection::vec(any::<u8>(), 1..2000), pos in any::<usize>()) {
            let k = key(2);
            let c = &encrypt(&k, &data, 1024).unwrap()[0];
            let mut bad = c.ciphertext.clone();
            let i = pos % bad.len();
            bad[i] ^= 0x20;
            // Asked by its address: the hash catches it.
            prop_assert!(matches!(decrypt(&k, 0, &c.id, &bad), Err(ChunkError::HashMismatch { .. })), "hash must catch it");
            // Even if the address were the altered bytes' own, the GCM tag catches it.
            prop_assert_eq!(decrypt(&k, 0, &ChunkId::of(&bad), &bad), Err(ChunkError::Decrypt { index: 0 }));
        }
    }

    #[test]
    fn wrong_key_swapped_chunks_and_sizes_are_refused() {
        let data = vec![5u8; 3000];
        let chunks = encrypt(&key(3), &data, 1000).unwrap();
        assert_eq!(decrypt(&key(4), 0, &chunks[0].id, &chunks[0].ciphertext), Err(ChunkError::Decrypt { index: 0 }));
        // Same plaintext in chunks 0 and 1, yet chunk 1 does not pass as chunk 0.
        assert_ne!(chunks[0].id, chunks[1].id, "same plaintext, different nonce, different address");
        assert_eq!(decrypt(&key(3), 0, &chunks[1].id, &chunks[1].ciphertext), Err(ChunkError::Decrypt { index: 0 }));
        assert_eq!(encrypt(&key(3), &data, 0), Err(ChunkError::BadChunkSize(0).into()));
        let too_big = MAX_CHUNK_BYTES + 1;
        assert_eq!(encrypt(&key(3), &data, too_big), Err(ChunkError::BadChunkSize(too_big).into()));
        let big = vec![0u8; MAX_CHUNK_BYTES + TAG_BYTES + 1];
        assert!(matches!(decrypt(&key(3), 0, &ChunkId::of(&big), &big), Err(ChunkError::TooLarge { .. })));
        assert!(encrypt(&key(3), &[], 1000).unwrap().is_empty());
    }
}
