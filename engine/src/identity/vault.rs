//! The sealed key file: the secret key encrypted under a passphrase (argon2id derives a 256-bit
//! key, AES-256-GCM seals the secret). Layout: the magic `SWARMKEY`, then one rmp-serde record
//! holding the version, the public key (so `show` needs no passphrase), the KDF parameters, the
//! salt, the nonce and the sealed secret. Everything before the ciphertext is bound into the GCM
//! tag as associated data: a changed byte anywhere fails to open.

use super::keys::Identity;
use crate::types::PeerId;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub const MAGIC: &[u8; 8] = b"SWARMKEY";
pub const VAULT_VERSION: u8 = 1;
/// A sealed key file is ~150 bytes; anything much larger is not one (checked before decoding).
pub const MAX_VAULT_BYTES: usize = 4096;

/// argon2id cost parameters, stored in the file so they can be raised later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        KdfParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// Bounds on parameters read from a file, so a crafted file cannot make us burn a gigabyte or an
/// hour before the tag check fails.
const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ITERATIONS: u32 = 16;
const MAX_PARALLELISM: u32 = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("not a swarm key file (missing the SWARMKEY header)")]
    NotAVault,
    #[error("key file of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("key file is truncated or malformed: {0}")]
    Malformed(String),
    #[error("key file version {got} is not supported (this build reads {supported})")]
    Version { got: u8, supported: u8 },
    #[error("key file has unusable KDF parameters: {0}")]
    Kdf(String),
    #[error("wrong passphrase, or the key file was altered")]
    WrongPassphrase,
    #[error("key file is inconsistent: its secret key does not match its public key")]
    Mismatch,
    #[error("passphrase is empty")]
    EmptyPassphrase,
}

#[derive(Serialize, Deserialize)]
struct Header {
    version: u8,
    public: PeerId,
    kdf: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
}

#[derive(Serialize, Deserialize)]
struct VaultFile {
    header: Header,
    #[serde(with = "crate::serde_bytes")]
    sealed: Vec<u8>,
}

/// argon2id of `passphrase` under `salt`, with `kdf` bounded first (also the recovery passphrase's KDF).
pub(crate) fn derive_key(
    passphrase: &[u8],
    salt: &[u8; 16],
    kdf: &KdfParams,
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    if kdf.memory_kib > MAX_MEMORY_KIB || kdf.iterations > MAX_ITERATIONS || kdf.parallelism > MAX_PARALLELISM {
        return Err(VaultError::Kdf(format!("{kdf:?} exceeds the accepted maximum")));
    }
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| VaultError::Kdf(e.to_string()))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, key.as_mut())
        .map_err(|e| VaultError::Kdf(e.to_string()))?;
    Ok(key)
}

fn associated_data(header: &Header) -> Result<Vec<u8>, VaultError> {
    let mut aad = MAGIC.to_vec();
    aad.extend(rmp_serde::to_vec(header).map_err(|e| VaultError::Malformed(e.to_string()))?);
    Ok(aad)
}

/// Seal `identity` under `passphrase`.
pub fn seal<R: RngCore + CryptoRng>(
    identity: &Identity,
    passphrase: &[u8],
    kdf: KdfParams,
    rng: &mut R,
) -> Result<Vec<u8>, VaultError> {
    if passphrase.is_empty() {
        return Err(VaultError::EmptyPassphrase);
    }
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut nonce);
    let header = Header { version: VAULT_VERSION, public: identity.peer_id(), kdf, salt, nonce };
    let key = derive_key(passphrase, &salt, &kdf)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| VaultError::Kdf(e.to_string()))?;
    let aad = associated_data(&header)?;
    let secret = identity.secret();
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret.as_ref(), aad: &aad })
        .map_err(|_| VaultError::Malformed("encryption failed".into()))?;
    let mut out = MAGIC.to_vec();
    out.extend(rmp_serde::to_vec(&VaultFile { header, sealed }).map_err(|e| VaultError::Malformed(e.to_string()))?);
    Ok(out)
}

fn parse(bytes: &[u8]) -> Result<VaultFile, VaultError> {
    if bytes.len() > MAX_VAULT_BYTES {
        return Err(VaultError::TooLarge { len: bytes.len(), max: MAX_VAULT_BYTES });
    }
    let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or(VaultError::NotAVault)?;
    let file: VaultFile = rmp_serde::from_slice(body).map_err(|e| VaultError::Malformed(e.to_string()))?;
    // The tag binds the header as we encode it, so the file must be exactly that encoding:
    // MessagePack has several encodings of one value (an integer in a wider form, say), and a
    // byte changed into another encoding of the same header would otherwise still open.
    // Trailing bytes are refused the same way.
    if rmp_serde::to_vec(&file).map_err(|e| VaultError::Malformed(e.to_string()))? != body {
        return Err(VaultError::Malformed("not in the form this build writes (re-encoded or trailing bytes)".into()));
    }
    if file.header.version != VAULT_VERSION {
        return Err(VaultError::Version { got: file.header.version, supported: VAULT_VERSION });
    }
    Ok(file)
}

/// The public key recorded in a key file (no passphrase needed; not authenticated until `open`).
pub fn public_key(bytes: &[u8]) -> Result<PeerId, VaultError> {
    Ok(parse(bytes)?.header.public)
}

/// Open a key file with its passphrase.
pub fn open(bytes: &[u8], passphrase: &[u8]) -> Result<Identity, VaultError> {
    let file = parse(bytes)?;
    let key = derive_key(passphrase, &file.header.salt, &file.header.kdf)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| VaultError::Kdf(e.to_string()))?;
    let aad = associated_data(&file.header)?;
    let secret = Zeroizing::new(
        cipher
            .decrypt(Nonce::from_slice(&file.header.nonce), Payload { msg: &file.sealed, aad: &aad })
            .map_err(|_| VaultError::WrongPassphrase)?,
    );
    let secret: &[u8; 32] = secret.as_slice().try_into().map_err(|_| VaultError::Mismatch)?;
    let identity = Identity::from_secret(secret);
    if identity.peer_id() != file.header.public {
        return Err(VaultError::Mismatch);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// Cheap parameters for tests; the format stores them, so real files keep the defaults.
    const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    fn sealed(seed: u64, pass: &[u8]) -> (Identity, Vec<u8>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let id = Identity::generate(&mut rng);
        let bytes = seal(&id, pass, FAST, &mut rng).unwrap();
        (id, bytes)
    }

    #[test]
    fn round_trip_and_public_key_without_passphrase() {
        let (id, bytes) = sealed(1, b"correct horse");
        assert_eq!(public_key(&bytes).unwrap(), id.peer_id());
        assert_eq!(open(&bytes, b"correct horse").unwrap().peer_id(), id.peer_id());
        assert!(bytes.len() < 256);
    }

    #[test]
    fn default_parameters_work() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let id = Identity::generate(&mut rng);
        let bytes = seal(&id, b"pw", KdfParams::default(), &mut rng).unwrap();
        assert_eq!(open(&bytes, b"pw").unwrap().peer_id(), id.peer_id());
    }

    #[test]
    fn wrong_passphrase_and_empty_passphrase() {
        let (_, bytes) = sealed(3, b"right");
        assert_eq!(open(&bytes, b"wrong").unwrap_err(), VaultError::WrongPassphrase);
        let id = Identity::from_secret(&[1; 32]);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(seal(&id, b"", FAST, &mut rng).unwrap_err(), VaultError::EmptyPassphrase);
    }

    #[test]
    fn not_a_vault_truncated_and_oversized() {
        let (_, bytes) = sealed(4, b"pw");
        assert_eq!(open(b"hello world", b"pw").unwrap_err(), VaultError::NotAVault);
        assert!(matches!(open(&bytes[..bytes.len() - 5], b"pw"), Err(VaultError::Malformed(_))));
        assert!(matches!(open(&vec![0u8; MAX_VAULT_BYTES + 1], b"pw"), Err(VaultError::TooLarge { .. })));
    }

    #[test]
    fn crafted_costly_kdf_is_refused_before_running() {
        let (_, bytes) = sealed(5, b"pw");
        let mut file = parse(&bytes).unwrap();
        file.header.kdf.memory_kib = u32::MAX;
        let mut crafted = MAGIC.to_vec();
        crafted.extend(rmp_serde::to_vec(&file).unwrap());
        assert!(matches!(open(&crafted, b"pw"), Err(VaultError::Kdf(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any single changed byte makes the file fail to open, and never panics.
        #[test]
        fn any_altered_byte_is_rejected(pos in any::<usize>(), delta in 1u8..=255) {
            let (_, bytes) = sealed(6, b"pw");
            let mut bad = bytes.clone();
            let i = pos % bad.len();
            bad[i] = bad[i].wrapping_add(delta);
            prop_assert!(open(&bad, b"pw").is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend(&bytes);
            let _ = open(&with_magic, b"pw");
            let _ = open(&bytes, b"pw");
        }
    }
}
