//! Identity: a node's ed25519 key pair (its peer id is the public key), the user id derived from
//! it, signatures, and the passphrase-sealed key file a node keeps on disk and can export/import.

pub mod envelope;
pub mod keys;
pub mod store;
pub mod vault;

pub use envelope::{Envelope, EnvelopeGuard, GuardConfig, Rejection, RejectionCounts};
pub use keys::{user_id, verify, Ed25519Verifier, Identity, MemoVerifier, SignatureError, Verifier};
pub use vault::{KdfParams, VaultError};
