//! Team instances (`up -n NAMESPACE`) beside one platform release, on any cluster: each team's
//! objects stay in its namespace, routes stay apart, a team's `down` leaves the others alone,
//! the platform goes last, and concurrent team installs all succeed. On a real cluster, one
//! team is installed and removed by a user who is admin of that namespace only.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::cluster::{Cluster, skipped};
use common::{Fixture, LOCAL, builtin, text, within};
use serde_json::{Value, json};

const RELEASE: &str = "datalayer-ray";

fn run(fixture: &Fixture, kubeconfig: &Path, command: &str, args: &[&str]) -> Output {
    within(
        fixture.cluster(command, kubeconfig, args),
        Duration::from_secs(240),
    )
}

fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn down(kubeconfig: &Path, args: &[&str]) -> Output {
    within(
        common::down(kubeconfig, RELEASE, args),
        Duration::from_secs(240),
    )
}

/// The record of the team instance in `namespace`, if any.
fn team_record(cluster: &Cluster, namespace: &str) -> Option<Value> {
    common::record_of(&cluster.get(
        "v1",
        "Secret",
        Some(namespace),
        &format!("plane-release-{RELEASE}"),
    )?)
}

/// Removes what an earlier run left: team instances first, then the platform.
fn clean_slate(cluster: &Cluster, teams: &[&str]) {
    for team in teams {
        if team_record(cluster, team).is_some() {
            succeeded(&down(cluster.kubeconfig(), &["-n", team, "--yes"]));
        }
    }
    if cluster.inventory(RELEASE).is_some() {
        succeeded(&down(cluster.kubeconfig(), &["--yes"]));
    }
    for team in teams {
        cluster.apply_as(
            "test",
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team}}),
        );
    }
}

/// The namespaces of the releases `plane status` plus `args` shows.
fn status_namespaces(kubeconfig: &Path, args: &[&str]) -> Vec<String> {
    let out = common::status(kubeconfig, &[args, &["-o", "json"]].concat());
    succeeded(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["namespace"].as_str().unwrap().to_owned())
        .collect()
}

/// On a real cluster, makes the limited user admin of `namespace` only (a RoleBinding to the
/// built-in `admin` ClusterRole) and returns its kubeconfig. The test server grants by token,
/// not by RBAC objects: there the cluster admin stands in, which is said.
fn namespace_admin<'a>(cluster: &'a Cluster, namespace: &str) -> &'a Path {
    if let (true, Some(limited)) = (cluster.is_live(), cluster.limited_kubeconfig()) {
        cluster.apply_as(
            "test",
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "team-admin", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "limited-user"}]}),
        );
        return limited;
    }
    skipped(
        "teams_install_beside_the_platform_and_go_before_it",
        "a namespace admin installing its team: the test server authorizes by token, so the cluster admin installs team-a",
    );
    cluster.kubeconfig()
}

/// Whether the ServiceAccount `sa` of `namespace` may `verb` `resource` in `target`, asked of
/// the real API server (a SubjectAccessReview through kubectl).
fn service_account_can(
    cluster: &Cluster,
    sa: (&str, &str),
    verb: &str,
    resource: &str,
    target: &str,
) -> bool {
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .args(["auth", "can-i", verb, resource, "-n", target])
        .arg(format!("--as=system:serviceaccount:{}:{}", sa.0, sa.1))
        .output()
        .expect("kubectl runs");
    text(&out.stdout).trim() == "yes"
}

#[test]
fn teams_install_beside_the_platform_and_go_before_it() {
    let cluster = Cluster::under_test("team-instances");
    let teams = ["team-a", "team-b"];
    clean_slate(&cluster, &teams);
    let fixture = builtin(RELEASE);
    let admin = cluster.kubeconfig();
    // Without a platform, a team instance names what is missing and writes nothing.
    if !cluster.is_live() {
        let out = run(&fixture, admin, "up", &[LOCAL, &["-n", "team-a"]].concat());
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("the platform of datalayer-ray is not installed"),
            "{}",
            text(&out.stderr)
        );
        assert!(team_record(&cluster, "team-a").is_none());
    }
    succeeded(&run(
        &fixture,
        admin,
        "up",
        &[LOCAL, &["--no-wait"]].concat(),
    ));
    let team_a_admin = namespace_admin(&cluster, "team-a");
    succeeded(&run(
        &fixture,
        team_a_admin,
        "up",
        &[LOCAL, &["-n", "team-a", "--no-wait"]].concat(),
    ));
    // team-b waits until ready, so that its objects no longer change on their own.
    succeeded(&run(
        &fixture,
        admin,
        "up",
        &[LOCAL, &["-n", "team-b"]].concat(),
    ));

    // Both deployed; their records disjoint, each in its own namespace, nothing cluster-scoped.
    let records: Vec<Value> = teams
        .iter()
        .map(|t| team_record(&cluster, t).expect("a team record"))
        .collect();
    for (team, record) in teams.iter().zip(&records) {
        assert_eq!(record["phase"], "deployed");
        assert_eq!(record["instance"], *team);
        for object in record["objects"].as_array().unwrap() {
            assert_eq!(object["namespace"], *team, "{object}");
        }
    }
    // Routes apart: each team's Ingress has a host of its own.
    let hosts: Vec<Value> = teams
        .iter()
        .map(|t| {
            cluster
                .get("networking.k8s.io/v1", "Ingress", Some(t), RELEASE)
                .expect("an Ingress")["spec"]["rules"][0]["host"]
                .clone()
        })
        .collect();
    assert_ne!(hosts[0], hosts[1]);
    // `ls -A` shows the platform and both teams, with their tier.
    let out = within(
        {
            let mut cmd = common::plane();
            cmd.args(["ls", "-A", "-o", "json", "--kubeconfig"])
                .arg(admin);
            cmd
        },
        Duration::from_secs(60),
    );
    succeeded(&out);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tiers: Vec<(String, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["namespace"].as_str().unwrap().to_owned(),
                r["tier"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for team in teams {
        assert!(
            tiers.contains(&(team.to_owned(), "team".to_owned())),
            "{tiers:?}"
        );
    }
    assert!(tiers.iter().any(|(_, t)| t == "platform"), "{tiers:?}");
    // The platform's `status` shows every team; `status -n` one team.
    let shown = status_namespaces(admin, &[]);
    for team in teams {
        assert!(shown.contains(&team.to_owned()), "{shown:?}");
    }
    assert_eq!(status_namespaces(admin, &["-n", "team-b"]), ["team-b"]);

    // A team's API manages Ray in its own namespace only.
    if cluster.is_live() {
        let sa = ("team-a", "datalayer-ray");
        assert!(service_account_can(
            &cluster,
            sa,
            "list",
            "rayclusters.ray.io",
            "team-a"
        ));
        assert!(!service_account_can(
            &cluster,
            sa,
            "create",
            "rayjobs.ray.io",
            "team-b"
        ));
    }

    // The platform goes last: refused, naming the team instances, nothing deleted.
    let platform_before = cluster.inventory(RELEASE).expect("the platform record");
    let out = down(admin, &["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    for team in teams {
        assert!(
            text(&out.stderr).contains(&format!("team instance datalayer-ray in namespace {team}")),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(cluster.inventory(RELEASE), Some(platform_before));

    // team-a's admin removes team-a; team-b is left as it was.
    let team_b_before = cluster.versions_of(&records[1]);
    succeeded(&down(team_a_admin, &["-n", "team-a", "--yes"]));
    assert!(team_record(&cluster, "team-a").is_none());
    assert_eq!(cluster.versions_of(&records[1]), team_b_before);
    // Still refused while team-b remains.
    let out = down(admin, &["--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("team instance datalayer-ray in namespace team-b"),
        "{}",
        text(&out.stderr)
    );

    succeeded(&down(admin, &["-n", "team-b", "--yes"]));
    succeeded(&down(admin, &["--yes"]));
}

#[test]
fn three_team_instances_installed_at_once_all_succeed() {
    let cluster = Cluster::under_test("concurrent-teams");
    let teams = ["team-x", "team-y", "team-z"];
    clean_slate(&cluster, &teams);
    let fixture = builtin(RELEASE);
    let admin = cluster.kubeconfig();
    succeeded(&run(
        &fixture,
        admin,
        "up",
        &[LOCAL, &["--no-wait"]].concat(),
    ));
    // Each under a deadline, all at once.
    let outs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = teams
            .iter()
            .map(|team| {
                let cmd =
                    fixture.cluster("up", admin, &[LOCAL, &["-n", team, "--no-wait"]].concat());
                scope.spawn(move || within(cmd, Duration::from_secs(240)))
            })
            .collect();
        runs.into_iter().map(|r| r.join().expect("a run")).collect()
    });
    for (team, out) in teams.iter().zip(&outs) {
        assert!(out.status.success(), "{team}: {}", text(&out.stderr));
        assert_eq!(
            team_record(&cluster, team).expect("a record")["phase"],
            "deployed"
        );
    }
    for team in teams {
        succeeded(&down(admin, &["-n", team, "--yes"]));
    }
    succeeded(&down(admin, &["--yes"]));
}

/// An Ingress route another plane release already serves is refused before any write, naming
/// both releases; `diff` says so and changes nothing.
#[test]
fn a_route_another_release_serves_is_refused() {
    let cluster = Cluster::under_test("route-conflict");
    clean_slate(&cluster, &[]);
    cluster.apply_as(
        "test",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other-app"}}),
    );
    cluster.apply_as(
        "other-deployer",
        &json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "other-api", "namespace": "other-app",
                         "labels": {common::RELEASE_LABEL: "other-app"}},
            "spec": {"rules": [{"host": "ray.localtest.me", "http": {"paths": [{"path": "/api/ray",
                "pathType": "Prefix", "backend": {"service": {"name": "x", "port": {"number": 80}}}}]}}]}}),
    );
    let fixture = builtin(RELEASE);
    let out = run(
        &fixture,
        cluster.kubeconfig(),
        "up",
        &[LOCAL, &["--no-wait"]].concat(),
    );
    let stderr = text(&out.stderr);
    cluster.delete(
        "networking.k8s.io/v1",
        "Ingress",
        Some("other-app"),
        "other-api",
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "Ingress/datalayer-api/datalayer-ray would serve ray.localtest.me/api/ray, which Ingress/other-app/other-api of plane release other-app serves"
        ),
        "{stderr}"
    );
    assert!(cluster.inventory(RELEASE).is_none());
}
