//! Rebuild when a bundle, profile or shared template changes: they are embedded with `include_dir`,
//! whose macro cannot tell cargo which files it read. And the commit plane is built from, for
//! `plane version` (`unknown` outside a git checkout).
use std::process::Command;

fn main() {
    for dir in ["addons", "templates", "profiles"] {
        println!("cargo::rerun-if-changed={dir}");
    }
    println!("cargo::rerun-if-changed=.git/HEAD");
    println!("cargo::rerun-if-changed=.git/refs");
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=PLANE_COMMIT={commit}");
}
