//! What a user hands to someone else to get content back: a share link. A file is its encrypted
//! chunks plus one more chunk, the *root*, holding the signed manifest sealed under the file key
//! (so holders learn neither the name nor the size); the link is `root:key`. A post is public: its
//! root is the signed post record itself, and its link is just the root.
//!
//! Every root is an ordinary chunk (content-addressed, replicated like any other), so publishing
//! and fetching need nothing beyond the chunk protocol.

use super::chunk::{self, Chunk, ChunkId, FileKey};
use super::manifest::{self, ContentError, Manifest, Post};
use crate::identity::{Envelope, Identity, Verifier};
use crate::types::{parse_hex32, HexIdError, PeerId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Chunk index the sealed manifest uses: no data chunk has it (a manifest lists at most
/// [`manifest::MAX_MANIFEST_CHUNKS`]).
const ROOT_INDEX: u32 = u32::MAX;

/// A share link: the root chunk, and for files the key that opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareLink {
    pub root: ChunkId,
    pub key: Option<FileKey>,
}

impl fmt::Display for ShareLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{}:{}", self.root, k.to_hex()),
            None => write!(f, "{}", self.root),
        }
    }
}

impl std::str::FromStr for ShareLink {
    type Err = HexIdError;
    fn from_str(s: &str) -> Result<Self, HexIdError> {
        let (root, key) = match s.trim().split_once(':') {
            Some((r, k)) => (r, Some(FileKey::from_bytes(parse_hex32("file key", k)?))),
            None => (s, None),
        };
        Ok(ShareLink { root: ChunkId(parse_hex32("root chunk id", root)?), key })
    }
}

/// What a root chunk holds once opened.
#[derive(Serialize, Deserialize)]
enum Root {
    Manifest(Envelope),
    Post(Envelope),
}

/// A file ready to publish: its data chunks and the root that lists them.
pub struct FileShare {
    pub root: Chunk,
    pub chunks: Vec<Chunk>,
    pub manifest: Manifest,
    pub link: ShareLink,
}

/// Encrypt a file under `key`, sign its manifest and seal it into the root chunk.
pub fn share_file(
    identity: &Identity,
    name: &str,
    data: &[u8],
    chunk_size: usize,
    key: FileKey,
    unix_ms: u64,
) -> Result<FileShare, ContentError> {
    let (manifest, chunks) = manifest::prepare_file(name, data, chunk_size, &key)?;
    let (root, link) = seal_file_root(identity, &manifest, key, unix_ms)?;
    Ok(FileShare { root, chunks, manifest, link })
}

/// Sign a file's manifest and seal it under the file key into the file's root chunk (stored
/// last: once the link exists, every chunk it lists is). Used whole ([`share_file`]) or at the
/// end of a publication built piece by piece ([`manifest::ManifestBuilder`]).
pub fn seal_file_root(
    identity: &Identity,
    manifest: &Manifest,
    key: FileKey,
    unix_ms: u64,
) -> Result<(Chunk, ShareLink), ContentError> {
    let envelope = manifest.seal(identity, unix_ms)?;
    let root = chunk::encrypt_one(&key, ROOT_INDEX, &encode(&Root::Manifest(envelope))?)?;
    let link = ShareLink { root: root.id, key: Some(key) };
    Ok((root, link))
}

/// Sign a post into a (public) root chunk.
pub fn share_post(identity: &Identity, post: &Post, unix_ms: u64) -> Result<Chunk, ContentError> {
    let bytes = encode(&Root::Post(post.seal(identity, unix_ms)?))?;
    if bytes.len() > chunk::MAX_CHUNK_BYTES {
        return Err(ContentError::Limit { what: "sealed post", len: bytes.len(), max: chunk::MAX_CHUNK_BYTES });
    }
    Ok(Chunk { id: ChunkId::of(&bytes), ciphertext: bytes })
}

/// An opened root: who signed it, when, and what it says.
#[derive(Debug)]
pub enum Opened {
    File { manifest: Manifest, author: PeerId, unix_ms: u64 },
    Post { post: Post, author: PeerId, unix_ms: u64 },
}

/// Check a fetched root against the link, decrypt it if the link has a key, verify the signature
/// and the record's limits.
pub fn open_root(link: &ShareLink, bytes: &[u8], verifier: &dyn Verifier) -> Result<Opened, ContentError> {
    let got = ChunkId::of(bytes);
    if got != link.root {
        return Err(chunk::ChunkError::HashMismatch { index: ROOT_INDEX, expected: link.root, got }.into());
    }
    let plain;
    let record = match &link.key {
        Some(k) => {
            plain = chunk::decrypt(k, ROOT_INDEX, &link.root, bytes).map_err(|_| ContentError::Malformed {
                what: "file root",
                reason: "it does not decrypt under the link's key (wrong key, or not a file's root)".into(),
            })?;
            &plain[..]
        }
        None => bytes,
    };
    let root: Root = rmp_serde::from_slice(record).map_err(|e| ContentError::Malformed {
        what: if link.key.is_some() { "file root" } else { "post (a file link needs its key: ROOT:KEY)" },
        reason: e.to_string(),
    })?;
    Ok(match root {
        // Only a root sealed under a key is a file: a plaintext manifest (someone's crafted
        // chunk) would leave the reader without a key for the chunks it lists.
        Root::Manifest(_) if link.key.is_none() => {
            return Err(ContentError::Malformed {
                what: "file root",
                reason: "it is a plaintext manifest; a file's root is sealed under its key (ROOT:KEY)".into(),
            })
        }
        Root::Manifest(env) => Opened::File {
            manifest: Manifest::open(&env, verifier)?,
            author: env.public_key,
            unix_ms: env.timestamp_ms,
        },
        Root::Post(env) => {
            Opened::Post { post: Post::open(&env, verifier)?, author: env.public_key, unix_ms: env.timestamp_ms }
        }
    })
}

/// A root chunk holding a manifest in the clear (what a hostile publisher could make), for
/// tests of the readers that must refuse it.
#[cfg(test)]
pub(crate) fn plaintext_manifest_root(identity: &Identity, manifest: &Manifest) -> Chunk {
    let bytes = encode(&Root::Manifest(manifest.seal(identity, 1).unwrap())).unwrap();
    Chunk { id: ChunkId::of(&bytes), ciphertext: bytes }
}

fn encode(root: &Root) -> Result<Vec<u8>, ContentError> {
    rmp_serde::to_vec(root).map_err(|e| ContentError::Malformed { what: "root", reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Ed25519Verifier;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_file_round_trips_through_its_link_and_only_with_its_key() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let id = Identity::generate(&mut rng);
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let share = share_file(&id, "notes.txt", &data, 32 * 1024, FileKey::generate(&mut rng), 1_000).unwrap();
        assert_eq!(share.chunks.len(), 3);
        let link: ShareLink = share.link.to_string().parse().unwrap();
        let v = Ed25519Verifier;
        let Opened::File { manifest, author, unix_ms } = open_root(&link, &share.root.ciphertext, &v).unwrap() else {
            panic!("a file root opens as a file")
        };
        assert_eq!((author, unix_ms, manifest.name.as_str()), (id.peer_id(), 1_000, "notes.txt"));
        let by_id = |c: &ChunkId| share.chunks.iter().find(|x| x.id == *c).map(|x| x.ciphertext.clone());
        assert_eq!(manifest.reassemble(link.key.as_ref().unwrap(), by_id).unwrap(), data);
        // The holder's view: without the key the root is opaque.
        let keyless = ShareLink { root: link.root, key: None };
        assert!(matches!(open_root(&keyless, &share.root.ciphertext, &v), Err(ContentError::Malformed { .. })));
        let wrong = ShareLink { root: link.root, key: Some(FileKey::generate(&mut rng)) };
        let err = open_root(&wrong, &share.root.ciphertext, &v).unwrap_err().to_string();
        assert!(err.contains("file root") && err.contains("wrong key"), "{err}");
        // Bytes that are not the root asked for.
        assert!(matches!(open_root(&link, &share.chunks[0].ciphertext, &v), Err(ContentError::Chunk(_))));
    }

    #[test]
    fn a_post_opens_without_a_key_and_a_forged_one_is_refused() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let id = Identity::generate(&mut rng);
        let post = Post { text: "hello swarm".into(), reply_to: None };
        let root = share_post(&id, &post, 5).unwrap();
        let link: ShareLink = root.id.to_string().parse().unwrap();
        let Opened::Post { post: back, author, .. } = open_root(&link, &root.ciphertext, &Ed25519Verifier).unwrap()
        else {
            panic!("a post root opens as a post")
        };
        assert_eq!((back, author), (post, id.peer_id()));
        // Someone else's key under the same record: the signature no longer holds.
        let Root::Post(mut env) = rmp_serde::from_slice(&root.ciphertext).unwrap() else { unreachable!() };
        env.public_key = Identity::generate(&mut rng).peer_id();
        let forged = encode(&Root::Post(env)).unwrap();
        let link = ShareLink { root: ChunkId::of(&forged), key: None };
        assert!(matches!(open_root(&link, &forged, &Ed25519Verifier), Err(ContentError::Envelope(_))));
    }

    #[test]
    fn a_plaintext_manifest_root_is_refused_not_opened_without_a_key() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let id = Identity::generate(&mut rng);
        let (manifest, _) = manifest::prepare_file("x", &[1; 100], 40, &FileKey::generate(&mut rng)).unwrap();
        let plain = plaintext_manifest_root(&id, &manifest);
        let link = ShareLink { root: plain.id, key: None };
        let err = open_root(&link, &plain.ciphertext, &Ed25519Verifier).unwrap_err().to_string();
        assert!(err.contains("plaintext manifest"), "{err}");
    }

    #[test]
    fn links_that_do_not_parse_name_the_part() {
        assert_eq!("zz".parse::<ShareLink>().unwrap_err().what, "root chunk id");
        let root = "ab".repeat(32);
        assert_eq!(format!("{root}:12").parse::<ShareLink>().unwrap_err().what, "file key");
    }
}
