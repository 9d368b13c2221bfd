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

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
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

    /// Plaintext bytes chunk `index` holds: `chunk_size`, the last one what is left.
    pub fn chunk_len(&self, index: u32) -> u64 {
        let cs = u64::from(self.chunk_size);
        self.size.saturating_sub(u64::from(index) * cs).min(cs)
    }

    /// Check a fetched chunk against its address and decrypt it as chunk `index` of this file;
    /// it must hold the bytes the manifest says it does.
    pub fn open_chunk(&self, key: &FileKey, index: u32, ciphertext: &[u8]) -> Result<Vec<u8>, ContentError> {
        let id = self.chunks.get(index as usize).ok_or_else(|| {
            ContentError::Inconsistent(format!("chunk {index} asked of a file of {} chunks", self.chunks.len()))
        })?;
        let plain = chunk::decrypt(key, index, id, ciphertext)?;
        if plain.len() as u64 != self.chunk_len(index) {
            return Err(ContentError::Inconsistent(format!(
                "chunk {index} holds {} bytes, the manifest says {}",
                plain.len(),
                self.chunk_len(index)
            )));
        }
        Ok(plain)
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
            out.extend(self.open_chunk(key, index, &bytes)?);
        }
        Ok(out)
    }
}

/// A file's manifest built as its bytes arrive: the bytes are cut into chunks of `chunk_size`
/// (the last may be shorter), each encrypted under the file key as soon as it is full. Feeding
/// the same bytes in pieces of any sizes gives the same chunks and the same manifest; only the
/// chunk being filled is held.
pub struct ManifestBuilder {
    name: String,
    chunk_size: usize,
    key: FileKey,
    size: u64,
    chunks: Vec<ChunkId>,
    buf: Vec<u8>,
}

impl ManifestBuilder {
    pub fn new(name: &str, chunk_size: usize, key: FileKey) -> Result<Self, ContentError> {
        limit("manifest name length", name.len(), MAX_NAME_BYTES)?;
        if chunk_size == 0 || chunk_size > MAX_CHUNK_BYTES {
            return Err(ChunkError::BadChunkSize(chunk_size).into());
        }
        Ok(ManifestBuilder { name: name.to_string(), chunk_size, key, size: 0, chunks: Vec::new(), buf: Vec::new() })
    }

    /// Plaintext bytes taken so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Take bytes from the front of `data`, up to the end of the chunk being filled. Returns how
    /// many were taken and the chunk, encrypted, if they filled it. A file may not grow past
    /// [`MAX_MANIFEST_CHUNKS`] chunks.
    pub fn feed(&mut self, data: &[u8]) -> Result<(usize, Option<chunk::Chunk>), ContentError> {
        if data.is_empty() {
            return Ok((0, None));
        }
        if self.buf.is_empty() && self.chunks.len() >= MAX_MANIFEST_CHUNKS {
            let max = MAX_MANIFEST_CHUNKS;
            return Err(ContentError::Limit { what: "file size in chunks", len: max + 1, max });
        }
        let take = (self.chunk_size - self.buf.len()).min(data.len());
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(self.chunk_size);
        }
        self.buf.extend_from_slice(&data[..take]);
        self.size += take as u64;
        let full = self.buf.len() == self.chunk_size;
        Ok((take, if full { Some(self.seal_buffer()?) } else { None }))
    }

    fn seal_buffer(&mut self) -> Result<chunk::Chunk, ContentError> {
        // At most MAX_MANIFEST_CHUNKS chunks (checked by `feed`): the index fits.
        let index = self.chunks.len() as u32;
        let c = chunk::encrypt_one(&self.key, index, &self.buf)?;
        self.buf.clear();
        self.chunks.push(c.id);
        Ok(c)
    }

    /// The last chunk (if bytes are left over) and the manifest listing every chunk; the key
    /// is handed back for sealing the root.
    pub fn finish(mut self) -> Result<(Manifest, Option<chunk::Chunk>, FileKey), ContentError> {
        let last = if self.buf.is_empty() { None } else { Some(self.seal_buffer()?) };
        let manifest =
            Manifest { name: self.name, size: self.size, chunk_size: self.chunk_size as u32, chunks: self.chunks };
        manifest.check()?;
        Ok((manifest, last, self.key))
    }
}

/// Encrypt a file and describe it: the chunks to store, and the manifest listing them.
pub fn prepare_file(
    name: &str,
    data: &[u8],
    chunk_size: usize,
    key: &FileKey,
) -> Result<(Manifest, Vec<chunk::Chunk>), ContentError> {
    let mut builder = ManifestBuilder::new(name, chunk_size, key.clone())?;
    let mut chunks = Vec::with_capacity(data.len().div_ceil(chunk_size));
    let mut rest = data;
    while !rest.is_empty() {
        let (taken, chunk) = builder.feed(rest)?;
        rest = &rest[taken..];
        chunks.extend(chunk);
    }
    let (manifest, last, _) = builder.finish()?;
    chunks.extend(last);
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
