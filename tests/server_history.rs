//! `plane history` on the test server: every revision newest first with what it changed, the
//! inputs only as a digest, read without a single write.

mod common;

use std::time::Duration;

use common::{LOCAL, deployed, text, within};
use serde_json::Value;

fn history(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    let (release, args) = args.split_first().unwrap();
    within(
        common::on_release("history", kubeconfig, release, args),
        Duration::from_secs(60),
    )
}

#[test]
fn history_lists_each_revision_with_its_changes_and_writes_nothing() {
    let (srv, fixture) = deployed(&[]);
    let change = fixture.cluster(
        "up",
        srv.kubeconfig_path(),
        &[
            LOCAL,
            &[
                "--no-wait",
                "--yes",
                "--set",
                "api.replicas=2",
                "--set",
                "observability.enabled=false",
            ],
        ]
        .concat(),
    );
    let out = within(change, Duration::from_secs(120));
    assert!(out.status.success(), "{}", text(&out.stderr));

    let writes_before = srv.requests().iter().filter(|r| r.is_mutating()).count();
    let out = history(srv.kubeconfig_path(), &["datalayer-ray", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        srv.requests().iter().filter(|r| r.is_mutating()).count(),
        writes_before,
        "history wrote"
    );
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["revision"], 2);
    assert_eq!(rows[1]["revision"], 1);
    assert_eq!(rows[0]["phase"], "deployed");
    // The second revision changed the API and pruned the observability component.
    assert_eq!(rows[0]["changes"]["configured"], 1, "{}", rows[0]);
    assert!(
        rows[0]["changes"]["pruned"].as_u64().unwrap() > 0,
        "{}",
        rows[0]
    );
    assert_eq!(rows[1]["changes"]["pruned"], 0);
    assert_ne!(rows[0]["values"], rows[1]["values"]);
    assert_eq!(rows[0]["values"].as_str().unwrap().len(), 12);

    let table = history(srv.kubeconfig_path(), &["datalayer-ray"]);
    let table = text(&table.stdout);
    assert!(table.starts_with("REVISION"), "{table}");
    assert!(table.contains("ROLLBACK-OF"), "{table}");

    let missing = history(srv.kubeconfig_path(), &["nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("release nope not found"));
}
