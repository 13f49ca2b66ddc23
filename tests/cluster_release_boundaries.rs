//! Release boundaries, on any cluster: with the platform installed, `up -n` and `down -n` in
//! every namespace of the cluster either refuse (exit 2, nothing written) or install and remove
//! a team instance, and the platform's objects never change; two releases of one name in two
//! namespaces are two owners, and `--take-ownership` moves an object from one to the other.

#![allow(
    clippy::print_stderr,
    reason = "the live tier reports what each namespace gave, for the record"
)]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::cluster::Cluster;
use common::{Fixture, LOCAL, builtin, run_on as run, succeeded, text, within};
use serde_json::{Value, json};

const RELEASE: &str = "datalayer-ray";
const TEAM: &str = "plane-e2e-boundary-team";

fn down(kubeconfig: &Path, release: &str, args: &[&str]) -> Output {
    within(
        common::down(kubeconfig, release, args),
        Duration::from_secs(240),
    )
}

/// What changed on the test server since the last look: its mutating requests (none on a real
/// cluster, where the objects' versions say it instead).
fn writes_since(cluster: &Cluster) -> Vec<String> {
    let Some(srv) = cluster.test_server() else {
        return Vec::new();
    };
    let writes = srv
        .requests()
        .iter()
        .filter(|r| r.is_mutating())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    srv.clear_requests();
    writes
}

/// Removes what an earlier run left: team instances of the bundle first, then the platform.
fn clean_slate(cluster: &Cluster) {
    for namespace in cluster.list("v1", "Namespace", None) {
        let name = namespace["metadata"]["name"].as_str().unwrap().to_owned();
        if cluster
            .record_in(&name, RELEASE)
            .is_some_and(|r| r["instance"].is_string())
        {
            succeeded(&down(
                cluster.kubeconfig(),
                RELEASE,
                &["-n", &name, "--yes"],
            ));
        }
    }
    if cluster.inventory(RELEASE).is_some() {
        succeeded(&down(cluster.kubeconfig(), RELEASE, &["--yes"]));
    }
}

#[test]
fn a_team_instance_never_touches_the_platform_in_any_namespace() {
    let cluster = Cluster::under_test("release-boundaries");
    clean_slate(&cluster);
    let kubeconfig = cluster.kubeconfig();
    let fixture = builtin(RELEASE);
    // The platform with logging on (fluentbit-config in default beside the RayCluster), ready.
    succeeded(&run(
        &fixture,
        kubeconfig,
        "up",
        &[
            LOCAL,
            &["--set", "logging.enabled=true", "--timeout", "120s"],
        ]
        .concat(),
    ));
    cluster.apply_as(
        "test",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}),
    );
    let platform = cluster.inventory(RELEASE).expect("the platform's record");
    assert!(
        common::inventory_subjects(&platform).contains("ConfigMap/default/fluentbit-config"),
        "logging is on"
    );
    let before = cluster.versions_of(&platform);
    writes_since(&cluster);

    let mut installed = Vec::new();
    for namespace in cluster.list("v1", "Namespace", None) {
        let name = namespace["metadata"]["name"].as_str().unwrap().to_owned();
        if namespace["status"]["phase"] == "Terminating" {
            eprintln!("{name}: terminating, left out");
            continue;
        }
        let up = run(
            &fixture,
            kubeconfig,
            "up",
            &[LOCAL, &["-n", &name, "--yes", "--timeout", "120s"]].concat(),
        );
        let stderr = text(&up.stderr);
        match up.status.code() {
            Some(2) => {
                assert!(
                    stderr.contains("no team instance goes there")
                        || stderr.contains("a team instance may not go into namespace")
                        || stderr.contains("names a namespace of the platform release"),
                    "{name}: {stderr}"
                );
                assert_eq!(writes_since(&cluster), Vec::<String>::new(), "{name}");
                assert!(
                    cluster
                        .record_in(&name, RELEASE)
                        .is_none_or(|r| r["instance"].is_null()),
                    "{name}: a team record was written"
                );
                // `down -n` there is refused alike and deletes nothing.
                let out = down(kubeconfig, RELEASE, &["-n", &name, "--yes"]);
                assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
                assert_eq!(writes_since(&cluster), Vec::<String>::new(), "{name}");
                eprintln!("{name}: refused");
            }
            Some(0) => {
                let record = cluster.record_in(&name, RELEASE).expect("a team record");
                assert_eq!(record["instance"], name.as_str());
                // The platform never renders into a namespace that holds a team's record.
                let out = run(
                    &fixture,
                    kubeconfig,
                    "diff",
                    &[
                        LOCAL,
                        &[
                            "--set",
                            &format!("bootstrapRayCluster.namespace={name}"),
                            "--set",
                            &format!("global.rayNamespaces=[default, {name}]"),
                        ],
                    ]
                    .concat(),
                );
                assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
                assert!(
                    text(&out.stderr)
                        .contains(&format!("team instance {RELEASE} (addon {RELEASE}) keeps its record in namespace {name}")),
                    "{}",
                    text(&out.stderr)
                );
                succeeded(&down(kubeconfig, RELEASE, &["-n", &name, "--yes"]));
                assert!(cluster.record_in(&name, RELEASE).is_none());
                writes_since(&cluster);
                installed.push(name.clone());
                eprintln!("{name}: installed and removed a team instance");
            }
            other => panic!("{name}: up -n exited {other:?}: {stderr}"),
        }
        assert_eq!(cluster.versions_of(&platform), before, "after -n {name}");
    }
    assert!(installed.contains(&TEAM.to_owned()), "{installed:?}");
    for refused in ["default", "plane-system", "kube-system", "ray-system"] {
        assert!(!installed.contains(&refused.to_owned()), "{refused}");
    }

    // The platform is as it was: its record, its objects, deployed and healthy.
    assert_eq!(cluster.inventory(RELEASE), Some(platform));
    let releases = common::ls_json(kubeconfig);
    let row = releases
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == RELEASE)
        .expect("the platform in ls");
    assert_eq!(row["status"], "deployed", "{row}");
    assert_eq!(row["health"]["ready"], row["health"]["total"], "{row}");

    cluster.delete("v1", "Namespace", None, TEAM);
    succeeded(&down(kubeconfig, RELEASE, &["--yes"]));
}

/// A bundle of one ConfigMap in `plane-e2e-shared` (and a second one when `second` is on), for
/// two releases of one name kept in two state namespaces.
fn overlapping_bundle() -> Fixture {
    Fixture::addon("overlap")
        .with_root_file(
            "addons/overlap/addon.yaml",
            "name: overlap\nversion: 0.0.1\ndescription: one shared ConfigMap\n\
             components:\n  - name: config\n",
        )
        .with_root_file(
            "addons/overlap/values.yaml",
            "second: false\n",
        )
        .with_root_file(
            "addons/overlap/components/config/configmap.yaml.tera",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n  namespace: plane-e2e-shared\n\
             data:\n  from: {{ release.namespace }}\n\
             {% if values.second %}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n  \
             namespace: plane-e2e-shared\ndata:\n  from: {{ release.namespace }}\n{% endif %}",
        )
}

fn state(namespace: &str) -> [&str; 2] {
    ["--state-namespace", namespace]
}

#[test]
fn two_releases_of_one_name_in_two_namespaces_are_two_owners() {
    let cluster = Cluster::under_test("same-name-releases");
    let kubeconfig = cluster.kubeconfig();
    let (a, b) = ("plane-e2e-state-a", "plane-e2e-state-b");
    for namespace in [a, b, "plane-e2e-shared"] {
        cluster.delete("v1", "Namespace", None, namespace);
    }
    cluster.apply_as(
        "test",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plane-e2e-shared"}}),
    );
    let fixture = overlapping_bundle();
    succeeded(&run(&fixture, kubeconfig, "up", &state(a)));
    let one = cluster
        .get("v1", "ConfigMap", Some("plane-e2e-shared"), "one")
        .expect("ConfigMap one");
    assert_eq!(
        one["metadata"]["labels"]["plane.datalayer.io/release-namespace"],
        a
    );
    writes_since(&cluster);

    // The same name kept in another namespace: another release, and ConfigMap one is not its.
    let second = [&state(b)[..], &["--set", "second=true"]].concat();
    let out = run(&fixture, kubeconfig, "up", &second);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "ConfigMap/plane-e2e-shared/one belongs to plane release overlap (namespace {a})"
        )) && stderr.contains("--take-ownership"),
        "{stderr}"
    );
    assert_eq!(writes_since(&cluster), Vec::<String>::new());
    assert!(cluster.record_in(b, "overlap").is_none());
    assert!(
        cluster
            .get("v1", "ConfigMap", Some("plane-e2e-shared"), "two")
            .is_none()
    );

    // --take-ownership moves it: its labels name the second release, the first's record
    // forgets it, and the first release's `down` leaves it alone.
    let taking = [&second[..], &["--take-ownership"]].concat();
    let stderr = succeeded(&run(&fixture, kubeconfig, "up", &taking));
    assert!(
        stderr.contains("adopt ConfigMap/plane-e2e-shared/one"),
        "{stderr}"
    );
    let one = cluster
        .get("v1", "ConfigMap", Some("plane-e2e-shared"), "one")
        .expect("ConfigMap one");
    assert_eq!(
        one["metadata"]["labels"]["plane.datalayer.io/release-namespace"],
        b
    );
    assert_eq!(one["data"]["from"], b);
    let first = cluster.record_in(a, "overlap").expect("the first record");
    assert!(
        !common::inventory_subjects(&first).contains("ConfigMap/plane-e2e-shared/one"),
        "{first}"
    );
    let second_record = cluster.record_in(b, "overlap").expect("the second record");
    let taken: Vec<&Value> = second_record["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "one")
        .collect();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["adopted"], true);

    succeeded(&down(
        kubeconfig,
        "overlap",
        &[&state(a)[..], &["--yes"]].concat(),
    ));
    assert!(
        cluster
            .get("v1", "ConfigMap", Some("plane-e2e-shared"), "one")
            .is_some(),
        "the first release's down deleted what it no longer owns"
    );
    succeeded(&down(
        kubeconfig,
        "overlap",
        &[&state(b)[..], &["--yes", "--include-adopted"]].concat(),
    ));
    for name in ["one", "two"] {
        assert!(
            cluster
                .get("v1", "ConfigMap", Some("plane-e2e-shared"), name)
                .is_none()
        );
    }
    for namespace in [a, b, "plane-e2e-shared"] {
        cluster.delete("v1", "Namespace", None, namespace);
    }
}

/// A release installed by a plane that did not label the release's namespace: its next `up`
/// adds the label to every object, with no prune and no takeover.
#[test]
fn a_release_labelled_by_an_earlier_plane_is_migrated_by_its_next_up() {
    let cluster = Cluster::under_test("identity-migration");
    clean_slate(&cluster);
    let kubeconfig = cluster.kubeconfig();
    let fixture = builtin(RELEASE);
    succeeded(&run(
        &fixture,
        kubeconfig,
        "up",
        &[LOCAL, &["--no-wait"]].concat(),
    ));
    let record = cluster.inventory(RELEASE).expect("the record");
    let objects = record["objects"].as_array().unwrap().clone();
    let grafana_admin = || {
        cluster
            .get("v1", "Secret", Some("ray-observability"), "grafana-admin")
            .expect("the generated Secret")["data"]
            .clone()
    };
    let generated = grafana_admin();
    for o in &objects {
        cluster.merge_patch(
            o["apiVersion"].as_str().unwrap(),
            o["kind"].as_str().unwrap(),
            o["namespace"].as_str(),
            o["name"].as_str().unwrap(),
            &json!({"metadata": {"labels": {"plane.datalayer.io/release-namespace": null}}}),
        );
    }
    let out = run(
        &fixture,
        kubeconfig,
        "diff",
        &[LOCAL, &["-o", "json"]].concat(),
    );
    succeeded(&out);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["summary"]["prune"], 0, "{}", plan["summary"]);
    assert_eq!(plan["summary"]["create"], 0, "{}", plan["summary"]);
    let owned: Vec<&Value> = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| !o["owner"].is_null())
        .collect();
    assert!(owned.is_empty(), "{owned:?}");
    // Without --yes: nothing to prune, nothing to adopt, so nothing to confirm.
    succeeded(&run(
        &fixture,
        kubeconfig,
        "up",
        &[LOCAL, &["--no-wait"]].concat(),
    ));
    for o in &objects {
        let live = cluster
            .get(
                o["apiVersion"].as_str().unwrap(),
                o["kind"].as_str().unwrap(),
                o["namespace"].as_str(),
                o["name"].as_str().unwrap(),
            )
            .unwrap_or_else(|| panic!("{o} is gone"));
        assert_eq!(
            live["metadata"]["labels"]["plane.datalayer.io/release-namespace"], "plane-system",
            "{o}"
        );
    }
    // The generated Secret was labelled anew with its values as they were.
    assert_eq!(grafana_admin(), generated);
    succeeded(&down(kubeconfig, RELEASE, &["--yes"]));
}
