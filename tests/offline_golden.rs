//! Golden renders: every built-in addon × profile, and the fixture bundle, snapshot-reviewed.
//! Review changes with `cargo insta review`; CI never writes snapshots.

mod common;

use common::{Fixture, plane};
use serde_json::Value;

fn names(command: &str) -> Vec<String> {
    let out = plane().args([command, "-o", "json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_builtin_addon_and_profile() {
    let addons = names("addons");
    let profiles = names("profiles");
    assert!(!addons.is_empty() && !profiles.is_empty());
    for addon in &addons {
        for profile in &profiles {
            let out = plane()
                .args(["template", addon, "--profile", profile])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{addon} × {profile}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8(out.stdout).unwrap();
            insta::assert_snapshot!(format!("{addon}@{profile}"), text);
        }
    }
}

#[test]
fn the_fixture_bundle() {
    let fixture = Fixture::addon("minimal");
    let out = fixture.template(&["--profile", "dev"]).output().unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!("minimal@dev", String::from_utf8(out.stdout).unwrap());
}
