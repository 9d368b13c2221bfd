//! The identity on disk: `DIR/identity.key`, a sealed key file. Writes go to a temporary file
//! that is synced and renamed over the target, so a crash leaves the old file or the new one,
//! never half of one; nothing is written before the new key file has been checked.

use super::keys::Identity;
use super::vault::{self, VaultError};
use crate::types::PeerId;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const KEY_FILE: &str = "identity.key";
/// Where `import --force` keeps the identity it replaced.
pub const PREVIOUS_KEY_FILE: &str = "identity.key.previous";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: std::io::Error },
    #[error("{path}: {error}")]
    Vault { path: PathBuf, error: VaultError },
    #[error("{0} already holds an identity (nothing was changed)")]
    Exists(PathBuf),
    #[error("{0} holds no identity: run `swarm identity new` first")]
    Missing(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |error| StoreError::Io { path: path.to_path_buf(), error }
}

pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}

/// Write `bytes` to `path` atomically (temp file, fsync, rename, fsync of the directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // Sealed or not, a key file is for its owner's eyes only.
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::Missing(path.to_path_buf())),
        Err(e) => Err(StoreError::Io { path: path.to_path_buf(), error: e }),
    }
}

fn vault_err(path: &Path) -> impl FnOnce(VaultError) -> StoreError + '_ {
    move |error| StoreError::Vault { path: path.to_path_buf(), error }
}

/// Store a freshly sealed identity; refuses to replace an existing one.
pub fn create(dir: &Path, sealed: &[u8]) -> Result<(), StoreError> {
    let path = key_path(dir);
    if path.exists() {
        return Err(StoreError::Exists(path));
    }
    write_atomic(&path, sealed)
}

/// The stored public key (no passphrase needed).
pub fn public_key(dir: &Path) -> Result<PeerId, StoreError> {
    let path = key_path(dir);
    vault::public_key(&read(&path)?).map_err(vault_err(&path))
}

/// Open the stored identity.
pub fn load(dir: &Path, passphrase: &[u8]) -> Result<Identity, StoreError> {
    let path = key_path(dir);
    vault::open(&read(&path)?, passphrase).map_err(vault_err(&path))
}

/// Export: check the stored file opens with `passphrase`, then copy it to `to`.
pub fn export(dir: &Path, passphrase: &[u8], to: &Path) -> Result<PeerId, StoreError> {
    let path = key_path(dir);
    let bytes = read(&path)?;
    let id = vault::open(&bytes, passphrase).map_err(vault_err(&path))?;
    write_atomic(to, &bytes)?;
    Ok(id.peer_id())
}

/// Import a key file: it must open with `passphrase` before anything is written. An existing
/// identity is replaced only with `force`, and is then kept as `identity.key.previous`.
pub fn import(dir: &Path, from: &Path, passphrase: &[u8], force: bool) -> Result<PeerId, StoreError> {
    let bytes = std::fs::read(from).map_err(io(from))?;
    let id = vault::open(&bytes, passphrase).map_err(vault_err(from))?;
    let path = key_path(dir);
    if path.exists() {
        if !force {
            return Err(StoreError::Exists(path));
        }
        let old = read(&path)?;
        write_atomic(&dir.join(PREVIOUS_KEY_FILE), &old)?;
    }
    write_atomic(&path, &bytes)?;
    Ok(id.peer_id())
}

/// Make `sealed` (a key file just sealed by this process) the stored identity; the one it
/// replaces, if any, is kept as `identity.key.previous`. Returns the replaced identity's key.
pub fn replace(dir: &Path, sealed: &[u8]) -> Result<Option<PeerId>, StoreError> {
    let path = key_path(dir);
    let previous = if path.exists() {
        let old = read(&path)?;
        let peer = vault::public_key(&old).map_err(vault_err(&path))?;
        write_atomic(&dir.join(PREVIOUS_KEY_FILE), &old)?;
        Some(peer)
    } else {
        None
    };
    write_atomic(&path, sealed)?;
    Ok(previous)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::vault::{seal, KdfParams};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const FAST: KdfParams = KdfParams { memory_kib: 64, iterations: 1, parallelism: 1 };

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("swarm-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn sealed(seed: u64, pass: &[u8]) -> (PeerId, Vec<u8>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let id = Identity::generate(&mut rng);
        (id.peer_id(), seal(&id, pass, FAST, &mut rng).unwrap())
    }

    #[test]
    fn export_import_round_trip_and_refusals_leave_the_store_untouched() {
        let (a, b) = (tmp("a"), tmp("b"));
        let (pid, bytes) = sealed(1, b"pw");
        create(&a, &bytes).unwrap();
        assert!(matches!(create(&a, &bytes), Err(StoreError::Exists(_))));
        assert_eq!(public_key(&a).unwrap(), pid);
        // Export needs the right passphrase.
        let file = a.join("export.key");
        assert!(matches!(
            export(&a, b"nope", &file),
            Err(StoreError::Vault { error: VaultError::WrongPassphrase, .. })
        ));
        assert!(!file.exists());
        assert_eq!(export(&a, b"pw", &file).unwrap(), pid);
        // Import into another node's directory.
        assert_eq!(import(&b, &file, b"pw", false).unwrap(), pid);
        assert_eq!(load(&b, b"pw").unwrap().peer_id(), pid);
        // A second identity: wrong passphrase, corrupt or truncated file => error, store untouched.
        let (other, other_bytes) = sealed(2, b"pw2");
        let other_file = a.join("other.key");
        std::fs::write(&other_file, &other_bytes).unwrap();
        let before = std::fs::read(key_path(&b)).unwrap();
        assert!(import(&b, &other_file, b"wrong", true).is_err());
        std::fs::write(&other_file, &other_bytes[..other_bytes.len() / 2]).unwrap();
        assert!(import(&b, &other_file, b"pw2", true).is_err());
        assert_eq!(std::fs::read(key_path(&b)).unwrap(), before, "a failed import must not touch the store");
        // Without --force an existing identity is kept; with it, the old one is kept aside.
        std::fs::write(&other_file, &other_bytes).unwrap();
        assert!(matches!(import(&b, &other_file, b"pw2", false), Err(StoreError::Exists(_))));
        assert_eq!(import(&b, &other_file, b"pw2", true).unwrap(), other);
        assert_eq!(std::fs::read(b.join(PREVIOUS_KEY_FILE)).unwrap(), before);
        assert!(matches!(load(&tmp("empty"), b"pw"), Err(StoreError::Missing(_))));
        let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
    }
}
