//! A no-op `up` writes nothing and `history` does not grow; a changed value still records a
//! revision; and a no-op never says `no changes` while another run holds the lock (the state it
//! read may be that run's half-way).

mod common;

use std::time::Duration;

use common::{LOCAL, deployed, text, within};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);

fn history_len(kubeconfig: &std::path::Path) -> usize {
    let mut cmd = common::plane();
    cmd.args(["history", "datalayer-ray", "-o", "json", "--kubeconfig"])
        .arg(kubeconfig);
    let out = within(cmd, LIMIT);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn a_no_op_writes_nothing_and_a_change_still_records() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    assert_eq!(history_len(&kc), 1);
    srv.clear_requests();
    let out = within(fixture.cluster("up", &kc, LOCAL), LIMIT);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("no changes: revision 1 stays"), "{stderr}");
    let writes: Vec<String> = srv
        .requests()
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(writes, Vec::<String>::new());
    assert_eq!(history_len(&kc), 1);

    let changed = within(
        fixture.cluster("up", &kc, &[LOCAL, &["--set", "api.replicas=2"]].concat()),
        LIMIT,
    );
    let stderr = text(&changed.stderr);
    assert!(changed.status.success(), "{stderr}");
    assert!(stderr.contains("revision 2 deployed"), "{stderr}");
    assert_eq!(history_len(&kc), 2);
}

#[test]
fn a_no_op_racing_another_run_never_claims_no_changes() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    // Another run holds the release's lock, renewed just now, from another host.
    let now = jiff::Timestamp::now().to_string();
    srv.create_object(
        "someone-else",
        &json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": "plane-lock-datalayer-ray",
                "namespace": "plane-system",
                "annotations": {"plane.datalayer.io/host": "elsewhere", "plane.datalayer.io/pid": "1"},
            },
            "spec": {
                "holderIdentity": "someone@elsewhere",
                "leaseDurationSeconds": 60,
                "acquireTime": now,
                "renewTime": now,
            },
        }),
    )
    .expect("the lease is created");
    let out = within(fixture.cluster("up", &kc, LOCAL), LIMIT);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("no changes"), "{stderr}");
    assert!(stderr.contains("someone@elsewhere"), "{stderr}");
}

/// The longest chains of requests that waited on each other (round trips paid one after
/// another), measured under 50 ms of latency so that parallel requests overlap: a count, held
/// so that a change which adds a sequential step to these paths fails here.
const CHAINS: [(&str, &[&str], usize); 3] = [
    ("no-op up", &["up"], NO_OP_UP_CHAIN),
    ("diff", &["diff"], DIFF_CHAIN),
    ("ls", &["ls"], LS_CHAIN),
];
const NO_OP_UP_CHAIN: usize = 4;
const DIFF_CHAIN: usize = 4;
const LS_CHAIN: usize = 7;

#[test]
fn the_no_op_path_waits_on_few_requests_in_a_row() {
    let (srv, fixture) = deployed(&[]);
    let kc = srv.kubeconfig_path().to_path_buf();
    srv.add_fault(plane_test_apiserver::FaultRule::latency("*", 50, 0));
    let mut measured = Vec::new();
    for (name, command, bound) in CHAINS {
        srv.clear_requests();
        let cmd = if command[0] == "ls" {
            let mut ls = common::plane();
            ls.args(["ls", "--kubeconfig"]).arg(&kc);
            ls
        } else {
            fixture.cluster(command[0], &kc, LOCAL)
        };
        let out = within(cmd, LIMIT);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        let requests = srv.requests();
        let chain = plane_test_apiserver::critical_path(&requests);
        measured.push(format!(
            "{name}: {chain} in a row of {} requests",
            requests.len()
        ));
        assert!(
            chain <= bound,
            "{name}: {chain} requests in a row (held: {bound}); all: {measured:?}"
        );
    }
}
