//! Manifests and posts: small records that travel as signed envelopes. A manifest lists a file's
//! chunks in order; a post is a short text. Opening either checks the signature (through the
//! [`Verifier`] port), decodes the record and enforces its limits, and names what was wrong.

use super::chunk::{self, ChunkError, ChunkId, FileKey, MAX_CHUNK_BYTES};
use crate::identity::{Envelope, Identity, Rejection, Verifier};
use serde::{Deserialize, Serialize};

/// Chunks one manifest may list (with 256 KiB chunks: files up to 1 GiB).
pub const MAX_MANIFEST_CHUNKS: usize = 4096;
/// Longest file name in a manifest, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest post text, in bytes.
pub const MAX_POST_BYTES: usize = 16 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Plaintext bytes per chunk (the last may be shorter).
    pub chunk_size: u32,
    pub chunks: Vec<ChunkId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    pub text: String,
    /// Id of the envelope this post answers, if any.
    #[serde(default)]
    pub reply_to: Option<ContentId>,
}

/// Identity of a signed record: SHA-256 over what its signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentId(#[serde(with = "crate::serde_bytes::array32")] pub [u8; 32]);

impl ContentId {
    pub fn of(env: &Envelope) -> Self {
        ContentId(env.id())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentError {
    #[error("record refused: {0}")]
    Envelope(#[from] Rejection),
    #[error("record does not decode as a {what}: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("{what} is {len}, limit {max}")]
    Limit { what: &'static str, len: usize, max: usize },
    #[error("manifest is inconsistent: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("chunk {index} ({id}) is not available from any holder")]
    Missing { index: u32, id: ChunkId },
}

fn limit(what: &'static str, len: usize, max: usize) -> Result<(), ContentError> {
    if len > max {
        Err(ContentError::Limit { what, len, max })
    } else {
        Ok(())
    }
}

fn encode<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, ContentError> {
    rmp_serde::to_vec(v).map_err(|e| ContentError::Malformed { what, reason: e.to_string() })
}

fn open<T: for<'de> Deserialize<'de>>(
    what: &'static str,
    env: &Envelope,
    verifier: &dyn Verifier,
) -> Result<T, ContentError> {
    env.verify_with(verifier)?;
    rmp_serde::from_slice(&env.data).map_err(|e| ContentError::Malformed { what, reason: e.to_string() })
}

impl Manifest {
    /// Check what the signature cannot: limits, and that sizes and chunk count agree.
    pub fn check(&self) -> Result<(), ContentError> {
        limit("manifest name length", self.name.len(), MAX_NAME_BYTES)?;
        limit("manifest chunk count", self.chunks.len(), MAX_MANIFEST_CHUNKS)?;
        let cs = self.chunk_size as usize;
        if cs == 0 || cs > MAX_CHUNK_BYTES {
            return Err(ContentError::Inconsistent(format!("chunk size {cs} outside 1..={MAX_CHUNK_BYTES}")));
        }
        let expect = self.size.div_ceil(cs as u64);
        if expect != self.chunks.len() as u64 {
            return Err(ContentError::Inconsistent(format!(
                "{} bytes in {cs}-byte chunks need {expect} chunks, the manifest lists {}",
                self.size,
                self.chunks.len()
            )));
        }
        Ok(())
    }

    pub fn seal(&self, identity: &Identity, unix_ms: u64) -> Result<Envelope, ContentError> {
        self.check()?;
        Ok(Envelope::seal(identity, encode("manifest", self)?, unix_ms))
    }

    /// Verify, decode and check a received manifest.
    pub fn open(env: &Envelope, verifier: &dyn Verifier) -> Result<Manifest, ContentError> {
        let m: Manifest = open("manifest", env, verifier)?;
        m.check()?;
        Ok(m)
    }

    /// Rebuild the file: every chunk fetched by address (`fetch` returns its ciphertext, or
    /// `None` if no holder has it), checked against its address, decrypted and concatenated.
    pub fn reassemble(
        &self,
        key: &FileKey,
        mut fetch: impl FnMut(&ChunkId) -> Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ContentError> {
        self.check()?;
        let mut out = Vec::with_capacity(self.size as usize);
        for (i, id) in self.chunks.iter().enumerate() {
            let index = i as u32;
            let bytes = fetch(id).ok_or(ContentError::Missing { index, id: *id })?;
            out.extend(chunk::decrypt(key, index, id, &bytes)?);
        }
        if out.len() as u64 != self.size {
            return Err(ContentError::Inconsistent(format!(
                "chunks hold {} bytes, manifest says {}",
                out.len(),
                self.size
            )));
        }
        Ok(out)
    }
}

/// Encrypt a file and describe it: the chunks to store, and the manifest listing them.
pub fn prepare_file(
    name: &str,
    data: &[u8],
    chunk_size: usize,
    key: &FileKey,
) -> Result<(Manifest, Vec<chunk::Chunk>), ContentError> {
    let chunks = chunk::encrypt(key, data, chunk_size)?;
    let manifest = Manifest {
        name: name.to_string(),
        size: data.len() as u64,
        chunk_size: chunk_size as u32,
        chunks: chunks.iter().map(|c| c.id).collect(),
    };
    manifest.check()?;
    Ok((manifest, chunks))
}

impl Post {
    pub fn seal(&self, identity: &Identity, unix_ms: u64) -> Result<Envelope, ContentError> {
        limit("post length", self.text.len(), MAX_POST_BYTES)?;
        Ok(Envelope::seal(identity, encode("post", self)?, unix_ms))
    }

    pub fn open(env: &Envelope, verifier: &dyn Verifier) -> Result<Post, ContentError> {
        let p: Post = open("post", env, verifier)?;
        limit("post length", p.text.len(), MAX_POST_BYTES)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Ed25519Verifier;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::collections::BTreeMap;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(9)
    }

    #[test]
    fn publish_then_fetch_from_holders() {
        let me = Identity::from_secret(&[1; 32]);
        let key = FileKey::generate(&mut rng());
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let (manifest, chunks) = prepare_file("photo.jpg", &data, MAX_CHUNK_BYTES, &key).unwrap();
        assert_eq!(chunks.len(), 3);
        let env = manifest.seal(&me, 1_000).unwrap();
        let opened = Manifest::open(&env, &Ed25519Verifier).unwrap();
        assert_eq!(opened, manifest);
        let holders: BTreeMap<ChunkId, Vec<u8>> = chunks.iter().map(|c| (c.id, c.ciphertext.clone())).collect();
        assert_eq!(opened.reassemble(&key, |id| holders.get(id).cloned()).unwrap(), data);
        // One chunk gone from every holder: the error names it.
        let lost = opened.chunks[1];
        let err = opened.reassemble(&key, |id| (*id != lost).then(|| holders[id].clone())).unwrap_err();
        assert_eq!(err, ContentError::Missing { index: 1, id: lost });
        // A holder serving other bytes: refused by address.
        let err = opened.reassemble(&key, |id| Some(if *id == lost { vec![0; 10] } else { holders[id].clone() }));
        assert!(matches!(err, Err(ContentError::Chunk(ChunkError::HashMismatch { index: 1, .. }))));
    }

    #[test]
    fn tampered_or_inconsistent_records_are_named() {
        let me = Identity::from_secret(&[1; 32]);
        let key = FileKey::generate(&mut rng());
        let (manifest, _) = prepare_file("a", &[1; 100], 40, &key).unwrap();
        let mut env = manifest.seal(&me, 1).unwrap();
        env.data[3] ^= 1;
        assert_eq!(Manifest::open(&env, &Ed25519Verifier), Err(ContentError::Envelope(Rejection::BadSignature)));
        let mut lying = manifest.clone();
        lying.size = 1000;
        assert!(matches!(lying.seal(&me, 1), Err(ContentError::Inconsistent(_))));
        // Signed but not a manifest.
        let post = Post { text: "hello".into(), reply_to: None }.seal(&me, 2).unwrap();
        assert!(matches!(
            Manifest::open(&post, &Ed25519Verifier),
            Err(ContentError::Malformed { what: "manifest", .. })
        ));
        assert_eq!(Post::open(&post, &Ed25519Verifier).unwrap().text, "hello");
        let long = Post { text: "x".repeat(MAX_POST_BYTES + 1), reply_to: None };
        assert!(matches!(long.seal(&me, 3), Err(ContentError::Limit { what: "post length", .. })));
        let reply = Post { text: "re".into(), reply_to: Some(ContentId::of(&post)) }.seal(&me, 4).unwrap();
        assert_eq!(Post::open(&reply, &Ed25519Verifier).unwrap().reply_to, Some(ContentId::of(&post)));
    }
}
