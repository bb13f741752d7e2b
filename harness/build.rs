//! Records what `effcal --version` reports of the build: the commit it was built from and
//! the code-generation flags (target-cpu above all: benchmark builds are for the node that
//! runs them).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let dirty = Command::new("git").args(["status", "--porcelain", "--untracked-files=no"]).output().ok().is_some_and(|o| !o.stdout.is_empty());
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default().replace('\x1f', " ");
    println!("cargo:rustc-env=EFFCAL_COMMIT={commit}{}", if dirty { " (modified)" } else { "" });
    println!("cargo:rustc-env=EFFCAL_RUSTFLAGS={}", if flags.trim().is_empty() { "none".to_string() } else { flags.trim().to_string() });
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    for f in ["../.git/HEAD", "../.git/index"] {
        println!("cargo:rerun-if-changed={f}");
    }
}
