//! What ran is what was rendered: `plane version` names the commit and each embedded bundle's
//! digest, and a release's `history` and `ls` carry the digest of the bundle each revision was
//! deployed from. Shell completions offer the embedded bundles and profiles.

mod common;

use std::process::Command;

use common::{deployed, text};
use serde_json::Value;

fn plane_json(args: &[&str]) -> Value {
    let mut cmd = common::plane();
    cmd.args(args);
    let out = cmd.output().expect("plane runs");
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn bundle_digest() -> String {
    let version = plane_json(&["version", "-o", "json"]);
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    let commit = version["commit"].as_str().unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{commit}"
    );
    let bundle = version["bundles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "datalayer-ray")
        .expect("datalayer-ray is embedded")
        .clone();
    let digest = bundle["digest"].as_str().unwrap().to_owned();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    digest
}

#[test]
fn history_and_ls_name_the_bundle_each_revision_was_deployed_from() {
    let digest = bundle_digest();
    let (srv, _fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_str().unwrap().to_owned();
    let history = plane_json(&[
        "history",
        "datalayer-ray",
        "--kubeconfig",
        &kc,
        "-o",
        "json",
    ]);
    assert_eq!(history[0]["bundleDigest"], digest.as_str(), "{history}");
    assert_eq!(history[0]["version"], "0.1.0");
    let ls = plane_json(&["ls", "--kubeconfig", &kc, "-o", "json"]);
    assert_eq!(ls[0]["bundleDigest"], digest.as_str(), "{ls}");
}

#[test]
fn completions_offer_the_embedded_bundles_and_profiles() {
    for shell in ["bash", "zsh", "fish"] {
        let mut cmd = common::plane();
        cmd.args(["completion", shell]);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let script = text(&out.stdout);
        assert!(script.contains("datalayer-ray"), "{shell}");
        assert!(script.contains("r-eastus"), "{shell}");
    }
    // The bash script loads, and registers plane's completion.
    let loaded = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source <('{}' completion bash) && complete -p plane",
            env!("CARGO_BIN_EXE_plane")
        ))
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{}", text(&loaded.stderr));
    assert!(text(&loaded.stdout).contains("plane"));
}
