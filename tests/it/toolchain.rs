//! The test command's own checks: a Node.js too old for `web/` is refused at once, saying what
//! is needed, before any build starts.

use std::process::Command;

/// Runs `tests/node-check.sh` with a `node` on PATH that says it is `version` (or no `node`).
fn node_check(version: Option<&str>) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!(
        "framecast-node-{}-{}",
        std::process::id(),
        version.unwrap_or("none")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(version) = version {
        let node = dir.join("node");
        std::fs::write(&node, format!("#!/bin/sh\necho {version}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&node, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Only the fake node and the basic tools the script uses.
    let path = format!("{}:/usr/bin:/bin", dir.display());
    let output = Command::new("/bin/bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node-check.sh"))
        .env("PATH", path)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn node_versions_that_cannot_build_web_are_refused_with_advice() {
    for version in ["v18.19.0", "v20.18.1", "v21.7.3", "v22.11.0"] {
        let (ok, stderr) = node_check(Some(version));
        assert!(!ok, "{version} passed");
        assert!(
            stderr.contains(&format!("Node.js {version} cannot build web/")),
            "{stderr}"
        );
        assert!(stderr.contains("Debian 12"), "{stderr}");
    }
    for version in ["v20.19.0", "v22.12.0", "v24.1.0"] {
        assert!(node_check(Some(version)).0, "{version} was refused");
    }
}
