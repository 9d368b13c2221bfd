//! End-to-end: `swarm identity new|show|export|import` on real directories.

use std::path::Path;
use std::process::{Command, Output};

fn swarm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_swarm"))
        .current_dir(dir)
        .env_remove("SWARM_PASSPHRASE")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    assert!(!o.status.success(), "should have failed: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn identity_lifecycle_and_refusals() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    std::fs::write(d.join("pw"), "correct horse battery staple\n").unwrap();
    std::fs::write(d.join("bad"), "wrong\n").unwrap();
    let pw = ["--passphrase-file", "pw"];

    let created = stdout(&swarm(d, &[&["identity", "new", "--data", "a"][..], &pw].concat()));
    let peer_line = created.lines().next().unwrap().to_string();
    assert!(peer_line.starts_with("peer id: ") && peer_line.len() == "peer id: ".len() + 64);
    let user_line = created.lines().nth(1).unwrap();
    assert_eq!(user_line.len(), "user id: ".len() + 16);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("a/identity.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key file must be private");
    }
    // Show needs no passphrase and prints the same ids.
    assert!(stdout(&swarm(d, &["identity", "show", "--data", "a"])).starts_with(&peer_line));
    // A second `new` refuses and keeps the first.
    assert!(stderr(&swarm(d, &[&["identity", "new", "--data", "a"][..], &pw].concat())).contains("already holds"));
    assert!(stdout(&swarm(d, &["identity", "show", "--data", "a"])).starts_with(&peer_line));
    // Export with the wrong passphrase fails and writes nothing.
    let e = stderr(&swarm(d, &["identity", "export", "--data", "a", "--to", "x.key", "--passphrase-file", "bad"]));
    assert!(e.contains("wrong passphrase"), "{e}");
    assert!(!d.join("x.key").exists());
    // Export -> import into another node's directory.
    stdout(&swarm(d, &[&["identity", "export", "--data", "a", "--to", "x.key"][..], &pw].concat()));
    stdout(&swarm(d, &[&["identity", "import", "--data", "b", "--from", "x.key"][..], &pw].concat()));
    assert!(stdout(&swarm(d, &["identity", "show", "--data", "b"])).starts_with(&peer_line));
    // A truncated file is refused with a clear error and the store is untouched, even with --force.
    let bytes = std::fs::read(d.join("x.key")).unwrap();
    std::fs::write(d.join("trunc.key"), &bytes[..bytes.len() / 2]).unwrap();
    let before = std::fs::read(d.join("b/identity.key")).unwrap();
    let e = stderr(&swarm(
        d,
        &[&["identity", "import", "--data", "b", "--from", "trunc.key", "--force"][..], &pw].concat(),
    ));
    assert!(e.contains("trunc.key") && e.contains("truncated"), "{e}");
    assert_eq!(std::fs::read(d.join("b/identity.key")).unwrap(), before);
    // No passphrase at all: a clear error naming the two ways to give one.
    let e = stderr(&swarm(d, &["identity", "new", "--data", "c"]));
    assert!(e.contains("--passphrase-file") && e.contains("SWARM_PASSPHRASE"), "{e}");
}
