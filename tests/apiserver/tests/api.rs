//! End-to-end tests of the test server through kube-rs, over real HTTPS.

#![allow(
    clippy::many_single_char_names,
    clippy::similar_names,
    clippy::needless_pass_by_value,
    reason = "short local names keep the request/assert pairs readable"
)]

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Discovery};
use plane_test_apiserver::{Config, FaultRule, PolicyRule, TestServer};
use serde_json::{Value, json};
use std::time::Duration;

async fn client(srv: &TestServer) -> Client {
    let kc = Kubeconfig::read_from(srv.kubeconfig_path()).expect("kubeconfig parses");
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig loads");
    Client::try_from(cfg).expect("client builds")
}

fn api(
    client: &Client,
    ns: Option<&str>,
    api_version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, kind), plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

fn obj(v: Value) -> DynamicObject {
    serde_json::from_value(v).expect("a valid object")
}

fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Waits (at most 10 s, so a broken controller fails the test instead of hanging it) until
/// `cond` holds for the object.
async fn wait_until(api: &Api<DynamicObject>, name: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let watch = kube::runtime::wait::await_condition(
        api.clone(),
        name,
        move |o: Option<&DynamicObject>| o.is_some_and(|o| cond(&serde_json::to_value(o).unwrap())),
    );
    let got = tokio::time::timeout(Duration::from_secs(10), watch)
        .await
        .unwrap_or_else(|_| panic!("{name} never reached the condition"))
        .unwrap();
    serde_json::to_value(got.unwrap()).unwrap()
}

fn condition(v: &Value, kind: &str) -> Option<(String, String)> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or("").to_owned(),
                c["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
}

fn ssa(manager: &str) -> PatchParams {
    PatchParams::apply(manager)
}

/// A server that publishes no ConfigMaps into namespaces, for tests that count every ConfigMap
/// in `default`.
fn without_published_config_maps() -> Config {
    Config {
        published_config_maps: Vec::new(),
        ..Config::default()
    }
}

fn cm(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

#[tokio::test]
async fn discovery_lists_builtin_groups_and_version() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let v = c.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");
    let d = Discovery::new(c).run().await.unwrap();
    for (group, kind) in [
        ("", "ConfigMap"),
        ("apps", "Deployment"),
        ("batch", "CronJob"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("networking.k8s.io", "Ingress"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("coordination.k8s.io", "Lease"),
        ("authorization.k8s.io", "SelfSubjectAccessReview"),
        ("policy", "PodDisruptionBudget"),
        ("autoscaling", "HorizontalPodAutoscaler"),
    ] {
        let found = d.groups().any(|g| {
            g.name() == group
                && g.recommended_resources()
                    .iter()
                    .any(|(ar, _)| ar.kind == kind)
        });
        assert!(found, "{group}/{kind} missing from discovery");
    }
    let ns = api(&client(&srv).await, None, "v1", "Namespace", "namespaces");
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

#[tokio::test]
async fn dynamic_object_round_trip() {
    let srv = TestServer::start(without_published_config_maps());
    let c = client(&srv).await;
    let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");

    // create, get, conflict on a second create
    let created = cms
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "labels": {"app": "x", "tier": "web"}}, "data": {"k": "1"}})),
        )
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let got = cms.get("a").await.unwrap();
    assert_eq!(got.data["data"]["k"], "1");
    let e = cms
        .create(&PostParams::default(), &obj(cm("a", json!({}))))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 409);

    // list with label selectors
    cms.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "b", "labels": {"app": "y"}}})),
    )
    .await
    .unwrap();
    let names = |l: kube::core::ObjectList<DynamicObject>| -> Vec<String> {
        l.items
            .into_iter()
            .map(|o| o.metadata.name.unwrap())
            .collect()
    };
    for (sel, want) in [
        ("app=x", vec!["a"]),
        ("app==y", vec!["b"]),
        ("app!=x", vec!["b"]),
        ("app in (x,y)", vec!["a", "b"]),
        ("app notin (x)", vec!["b"]),
        ("tier", vec!["a"]),
        ("!tier", vec!["b"]),
    ] {
        assert_eq!(
            names(cms.list(&ListParams::default().labels(sel)).await.unwrap()),
            want,
            "{sel}"
        );
    }
    assert_eq!(
        names(
            cms.list(&ListParams::default().fields("metadata.name=b"))
                .await
                .unwrap()
        ),
        vec!["b"]
    );
    let all = api(&c, None, "v1", "ConfigMap", "configmaps");
    assert_eq!(
        names(
            all.list(&ListParams::default().fields("metadata.namespace=default"))
                .await
                .unwrap()
        )
        .len(),
        2
    );

    // server-side apply: create, conflict, force, dropped fields
    let p = cms
        .patch(
            "s",
            &ssa("plane"),
            &Patch::Apply(cm("s", json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(p.data["data"], json!({"a": "1", "b": "2"}));
    let rv1 = p.metadata.resource_version.clone().unwrap();
    let same = cms
        .patch(
            "s",
            &ssa("plane"),
            &Patch::Apply(cm("s", json!({"a": "1", "b": "2"}))),
        )
        .await
        .unwrap();
    assert_eq!(
        same.metadata.resource_version.unwrap(),
        rv1,
        "a no-op apply stores nothing"
    );
    let e = cms
        .patch(
            "s",
            &ssa("other"),
            &Patch::Apply(cm("s", json!({"a": "9"}))),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), 409);
    let kube::Error::Api(status) = &e else {
        unreachable!()
    };
    assert!(
        status.message.contains("conflict with \"plane\""),
        "{}",
        status.message
    );
    assert!(status.message.contains(".data.a"), "{}", status.message);
    assert_eq!(status.reason, "Conflict");
    // the same value is shared without conflict
    cms.patch(
        "s",
        &ssa("other"),
        &Patch::Apply(cm("s", json!({"a": "1"}))),
    )
    .await
    .unwrap();
    let forced = cms
        .patch(
            "s",
            &ssa("other").force(),
            &Patch::Apply(cm("s", json!({"a": "9"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["data"]["a"], "9");
    let managers: Vec<(String, Value)> = forced
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| (m.manager.unwrap(), m.fields_v1.unwrap().0))
        .collect();
    let plane = &managers.iter().find(|(m, _)| m == "plane").unwrap().1;
    assert!(
        plane["f:data"].get("f:a").is_none(),
        "ownership of data.a moved: {plane}"
    );
    assert!(plane["f:data"].get("f:b").is_some());
    // plane stops applying b: it is removed; a now belongs to other and stays
    let dropped = cms
        .patch("s", &ssa("plane"), &Patch::Apply(cm("s", json!({}))))
        .await
        .unwrap();
    assert_eq!(dropped.data["data"], json!({"a": "9"}));

    // dry run returns the result and stores nothing
    let dry = cms
        .patch(
            "s",
            &ssa("plane").dry_run(),
            &Patch::Apply(cm("s", json!({"c": "3"}))),
        )
        .await
        .unwrap();
    assert_eq!(dry.data["data"]["c"], "3");
    assert!(cms.get("s").await.unwrap().data["data"].get("c").is_none());
    let dry_new = cms
        .patch(
            "new",
            &ssa("plane").dry_run(),
            &Patch::Apply(cm("new", json!({}))),
        )
        .await
        .unwrap();
    assert_eq!(dry_new.metadata.name.as_deref(), Some("new"));
    assert_eq!(code(&cms.get("new").await.unwrap_err()), 404);
    assert!(
        srv.requests()
            .iter()
            .any(|r| r.dry_run && r.method == "PATCH" && !r.is_mutating())
    );

    // watch from a resourceVersion
    let rv = cms
        .get("a")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().fields("metadata.name=a"), &rv)
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.data["data"]["k"])),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["MODIFIED \"2\"", "DELETED a"]);

    // delete with a finalizer: marked, then gone once the finalizer is removed
    cms.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "f", "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let marked = cms
        .delete("f", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert!(
        cms.get("f")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(code(&cms.get("f").await.unwrap_err()), 404);
}

#[tokio::test]
async fn update_managers_conflict_with_appliers_and_generation_counts_spec_changes() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let deploys = api(&c, Some("default"), "apps/v1", "Deployment", "deployments");
    let d = |replicas: i64, image: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}}})
    };
    let first = deploys
        .patch("web", &ssa("plane"), &Patch::Apply(d(2, "nginx:1")))
        .await
        .unwrap();
    assert_eq!(first.metadata.generation, Some(1));
    // server defaults are there, and not owned by plane
    assert_eq!(first.data["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(first.data["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(first.data["spec"]["strategy"]["type"], "RollingUpdate");
    let c0 = &first.data["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c0["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c0["imagePullPolicy"], "IfNotPresent");
    // someone else scales it with a merge patch (an Update)
    let scaled = deploys
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("hpa".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    let e = deploys
        .patch("web", &ssa("plane"), &Patch::Apply(d(2, "nginx:1")))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = &e else { panic!() };
    assert_eq!(s.code, 409);
    assert!(
        s.message.contains("conflict with \"hpa\"") && s.message.contains(".spec.replicas"),
        "{}",
        s.message
    );
    // a label change is not a spec change
    let labelled = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(2));
    // strategic merge patch merges containers by name
    let smp = deploys.patch("web", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "busybox"}]}}}}))).await.unwrap();
    let names: Vec<&str> = smp.data["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "side"]);
    // the status subresource is not written through the main resource
    let st = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 42}})),
        )
        .await
        .unwrap();
    assert_ne!(st.data["status"]["replicas"], 42);
    // a stale resourceVersion on PUT is a Conflict
    let mut stale = st.clone();
    stale.metadata.resource_version = Some("1".into());
    assert_eq!(
        code(
            &deploys
                .replace("web", &PostParams::default(), &stale)
                .await
                .unwrap_err()
        ),
        409
    );

    let svcs = api(&c, Some("default"), "v1", "Service", "services");
    let svc = svcs
        .patch(
            "web",
            &ssa("plane"),
            &Patch::Apply(
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}}),
            ),
        )
        .await
        .unwrap();
    assert!(
        svc.data["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    assert_eq!(svc.data["spec"]["sessionAffinity"], "None");
    assert_eq!(svc.data["spec"]["ports"][0]["protocol"], "TCP");
}

#[tokio::test]
async fn errors_have_real_codes_and_reasons() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let widgets = api(&c, Some("default"), "example.com/v1", "Widget", "widgets");
    assert_eq!(
        code(&widgets.list(&ListParams::default()).await.unwrap_err()),
        404
    );
    let missing_ns = api(&c, Some("nope"), "v1", "ConfigMap", "configmaps");
    let e = missing_ns
        .create(&PostParams::default(), &obj(cm("x", json!({}))))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = &e else { panic!() };
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "namespaces \"nope\" not found");
    let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");
    let e = cms
        .create(&PostParams::default(), &obj(cm("Bad_Name", json!({}))))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = &e else { panic!() };
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(s.details.as_ref().unwrap().causes[0].field, "metadata.name");
    let e = cms
        .patch(
            "x",
            &PatchParams::apply(""),
            &Patch::Apply(cm("x", json!({}))),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), 422, "apply needs a field manager");
    assert_eq!(code(&cms.get("absent").await.unwrap_err()), 404);
    assert_eq!(
        code(
            &cms.delete("absent", &DeleteParams::default())
                .await
                .unwrap_err()
        ),
        404
    );
}

fn widget_crd(scope: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": scope,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "color": {"type": "string", "enum": ["red", "blue"]},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}})
}

#[tokio::test]
async fn crds_are_established_then_served_and_validate_their_resources() {
    let srv = TestServer::start(Config {
        crd_establish_delay: Duration::from_millis(300),
        ..Config::default()
    });
    let c = client(&srv).await;
    let crds = api(
        &c,
        None,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    let widgets = api(&c, Some("default"), "example.com/v1", "Widget", "widgets");
    crds.patch(
        "widgets.example.com",
        &ssa("plane").force(),
        &Patch::Apply(widget_crd("Namespaced")),
    )
    .await
    .unwrap();
    // Before Established the kind is not served.
    assert_eq!(
        code(&widgets.list(&ListParams::default()).await.unwrap_err()),
        404
    );
    let crd = wait_until(&crds, "widgets.example.com", |v| {
        condition(v, "Established").is_some_and(|(s, _)| s == "True")
    })
    .await;
    assert_eq!(condition(&crd, "NamesAccepted").unwrap().0, "True");
    let d = Discovery::new(c.clone()).run().await.unwrap();
    assert!(d.groups().any(|g| g.name() == "example.com"));

    let w = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    let e = widgets
        .patch(
            "w",
            &ssa("plane"),
            &Patch::Apply(w(json!({"size": 20, "color": "green"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = &e else { panic!() };
    assert_eq!(s.code, 422);
    let fields: Vec<&str> = s
        .details
        .as_ref()
        .unwrap()
        .causes
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["spec.color", "spec.size"], "{}", s.message);
    let e = widgets
        .create(&PostParams::default(), &obj(w(json!({"color": "red"}))))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 422, "spec.size is required");
    let ok = widgets
        .patch(
            "w",
            &ssa("plane"),
            &Patch::Apply(w(json!({"size": 2, "junk": 1, "extra": {"kept": true}}))),
        )
        .await
        .unwrap();
    assert!(
        ok.data["spec"].get("junk").is_none(),
        "unknown fields are pruned"
    );
    assert_eq!(ok.data["spec"]["extra"]["kept"], true);
    assert_eq!(ok.metadata.generation, Some(1));

    // deleting the CRD removes its resources
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    let gone = kube::runtime::wait::await_condition(
        crds.clone(),
        "widgets.example.com",
        |o: Option<&DynamicObject>| o.is_none(),
    );
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap()
        .unwrap();
    assert!(
        srv.list_objects("example.com/v1", "Widget", None)
            .is_empty()
    );
}

#[tokio::test]
async fn namespaces_terminate_and_take_their_contents() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let nss = api(&c, None, "v1", "Namespace", "namespaces");
    nss.patch(
        "team",
        &ssa("plane"),
        &Patch::Apply(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
        ),
    )
    .await
    .unwrap();
    let cms = api(&c, Some("team"), "v1", "ConfigMap", "configmaps");
    cms.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let ns = nss
        .delete("team", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(ns.data["status"]["phase"], "Terminating");
    let e = cms
        .create(&PostParams::default(), &obj(cm("late", json!({}))))
        .await
        .unwrap_err();
    assert_eq!(code(&e), 403);
    // the namespace waits for its content's finalizers
    let held = wait_until(&cms, "held", |v| {
        v.pointer("/metadata/deletionTimestamp").is_some()
    })
    .await;
    assert!(held.pointer("/metadata/deletionTimestamp").is_some());
    assert!(nss.get("team").await.is_ok());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let gone =
        kube::runtime::wait::await_condition(nss.clone(), "team", |o: Option<&DynamicObject>| {
            o.is_none()
        });
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn propagation_policies_reach_dependents() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let deploys = api(&c, Some("default"), "apps/v1", "Deployment", "deployments");
    let pods = api(&c, Some("default"), "v1", "Pod", "pods");
    let d = |name: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "annotations": {"test.plane.datalayer.io/fail": "ImagePullBackOff"}},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nope:1"}]}}}})
    };
    for name in ["fg", "orphan"] {
        deploys
            .patch(name, &ssa("plane"), &Patch::Apply(d(name)))
            .await
            .unwrap();
    }
    let pod_of = |name: &'static str| {
        let pods = pods.clone();
        async move {
            for _ in 0..200 {
                let l = pods
                    .list(&ListParams::default().labels(&format!("app={name}")))
                    .await
                    .unwrap();
                if let Some(p) = l.items.into_iter().next() {
                    return serde_json::to_value(p).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("no pod for {name}");
        }
    };
    let fg_pod = pod_of("fg").await;
    let waiting = &fg_pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert_eq!(waiting["reason"], "ImagePullBackOff");
    assert_eq!(fg_pod["metadata"]["ownerReferences"][0]["name"], "fg");
    let orphan_pod = pod_of("orphan").await;

    deploys
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let fg_pod_name = fg_pod["metadata"]["name"].as_str().unwrap().to_owned();
    let gone = kube::runtime::wait::await_condition(
        pods.clone(),
        &fg_pod_name,
        |o: Option<&DynamicObject>| o.is_none(),
    );
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap()
        .unwrap();
    let gone =
        kube::runtime::wait::await_condition(deploys.clone(), "fg", |o: Option<&DynamicObject>| {
            o.is_none()
        });
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap()
        .unwrap();

    deploys
        .delete("orphan", &DeleteParams::orphan())
        .await
        .unwrap();
    let gone = kube::runtime::wait::await_condition(
        deploys.clone(),
        "orphan",
        |o: Option<&DynamicObject>| o.is_none(),
    );
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap()
        .unwrap();
    let kept = pods
        .get(orphan_pod["metadata"]["name"].as_str().unwrap())
        .await
        .unwrap();
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn faults_and_the_request_log() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");
    srv.add_fault(FaultRule::status(
        "PATCH",
        "/api/v1/namespaces/*/configmaps/*",
        500,
        2,
    ));
    for _ in 0..2 {
        let e = cms
            .patch("x", &ssa("plane"), &Patch::Apply(cm("x", json!({}))))
            .await
            .unwrap_err();
        assert_eq!(code(&e), 500);
    }
    cms.patch("x", &ssa("plane"), &Patch::Apply(cm("x", json!({}))))
        .await
        .unwrap();
    srv.add_fault(FaultRule {
        method: Some("GET".into()),
        path: "*/configmaps/x".into(),
        drop_connection: true,
        times: Some(1),
        ..FaultRule::default()
    });
    let e = cms.get("x").await.unwrap_err();
    assert!(
        !matches!(e, kube::Error::Api(_)),
        "a dropped connection is not an API answer: {e:?}"
    );
    srv.add_fault(FaultRule {
        path: "*/configmaps/x".into(),
        delay_ms: Some(50),
        times: Some(1),
        ..FaultRule::default()
    });
    cms.get("x").await.unwrap();

    let log = srv.requests();
    let patches: Vec<_> = log.iter().filter(|r| r.method == "PATCH").collect();
    assert_eq!(
        patches.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 201]
    );
    let last = patches[2];
    assert_eq!(last.path, "/api/v1/namespaces/default/configmaps/x");
    assert_eq!(
        last.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(last.field_manager.as_deref(), Some("plane"));
    assert_eq!(last.query_param("fieldManager").as_deref(), Some("plane"));
    assert!(last.is_mutating());
    let gets: Vec<u16> = log
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/configmaps/x"))
        .map(|r| r.status)
        .collect();
    assert_eq!(gets, [0, 200]);
    srv.clear_requests();
    assert!(srv.requests().is_empty());
}

#[tokio::test]
async fn token_rules_decide_and_reviews_report_them() {
    let srv = TestServer::start(Config::default());
    srv.set_token_rules(
        "reader",
        vec![
            PolicyRule::new(&["get", "list", "watch"], &["", "apps"], &["*"]),
            PolicyRule::new(
                &["create"],
                &["authorization.k8s.io"],
                &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
            ),
        ],
    );
    let mut cfg = kube::Config::new(srv.url().parse().unwrap());
    cfg.root_cert = Some(vec![pem_to_der(srv.ca_pem())]);
    cfg.auth_info.token = Some("reader".to_owned().into());
    let reader = Client::try_from(cfg).unwrap();
    let cms = api(&reader, Some("default"), "v1", "ConfigMap", "configmaps");
    cms.list(&ListParams::default()).await.unwrap();
    let e = cms
        .patch("x", &ssa("plane"), &Patch::Apply(cm("x", json!({}))))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = &e else { panic!() };
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert!(
        s.message.contains("cannot patch resource \"configmaps\""),
        "{}",
        s.message
    );

    let ssar = api(
        &reader,
        None,
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
    );
    let review = |verb: &str| {
        obj(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"verb": verb, "resource": "deployments", "group": "apps", "namespace": "default"}}}),
        )
    };
    let allowed = |o: DynamicObject| o.data["status"]["allowed"].as_bool().unwrap();
    assert!(allowed(
        ssar.create(&PostParams::default(), &review("list"))
            .await
            .unwrap()
    ));
    assert!(!allowed(
        ssar.create(&PostParams::default(), &review("patch"))
            .await
            .unwrap()
    ));
    let ssrr = api(
        &reader,
        None,
        "authorization.k8s.io/v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
    );
    let rules = ssrr
        .create(
            &PostParams::default(),
            &obj(
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": "default"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        rules.data["status"]["resourceRules"][0]["verbs"],
        json!(["get", "list", "watch"])
    );

    let mut bad = kube::Config::new(srv.url().parse().unwrap());
    bad.root_cert = Some(vec![pem_to_der(srv.ca_pem())]);
    bad.auth_info.token = Some("wrong".to_owned().into());
    let e = api(
        &Client::try_from(bad).unwrap(),
        Some("default"),
        "v1",
        "ConfigMap",
        "configmaps",
    )
    .list(&ListParams::default())
    .await
    .unwrap_err();
    assert_eq!(code(&e), 401);
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0);
    for ch in b64.bytes().filter(|c| *c != b'=') {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'a'..=b'z' => ch - b'a' + 26,
            b'0'..=b'9' => ch - b'0' + 52,
            b'+' => 62,
            _ => 63,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buf >> bits) & 0xff).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn controllers_bring_workloads_to_ready_and_fail_on_request() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let ns = Some("default");
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "img:1"}]}});
    let apply = |api: Api<DynamicObject>, v: Value| async move {
        let name = v["metadata"]["name"].as_str().unwrap().to_owned();
        api.patch(&name, &ssa("plane"), &Patch::Apply(v))
            .await
            .unwrap();
    };
    let deploys = api(&c, ns, "apps/v1", "Deployment", "deployments");
    apply(
        deploys.clone(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ok"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}}, "template": template}}),
    )
    .await;
    let d = wait_until(&deploys, "ok", |v| {
        condition(v, "Available").is_some_and(|(s, _)| s == "True")
    })
    .await;
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(d["status"]["updatedReplicas"], 3);
    apply(deploys.clone(), json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "late", "annotations": {"test.plane.datalayer.io/fail": "ProgressDeadlineExceeded"}},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}})).await;
    let late = wait_until(&deploys, "late", |v| {
        condition(v, "Progressing").is_some_and(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(
        condition(&late, "Progressing").unwrap().1,
        "ProgressDeadlineExceeded"
    );

    let sts = api(&c, ns, "apps/v1", "StatefulSet", "statefulsets");
    apply(sts.clone(), json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "x"}}, "template": template}})).await;
    wait_until(&sts, "db", |v| {
        v["status"]["readyReplicas"] == 2 && v["status"]["observedGeneration"] == 1
    })
    .await;
    let ds = api(&c, ns, "apps/v1", "DaemonSet", "daemonsets");
    apply(
        ds.clone(),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template}}),
    )
    .await;
    wait_until(&ds, "agent", |v| {
        v["status"]["numberReady"] == 1 && v["status"]["desiredNumberScheduled"] == 1
    })
    .await;

    let jobs = api(&c, ns, "batch/v1", "Job", "jobs");
    let job_template = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "img:1"}]}});
    apply(jobs.clone(), json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"}, "spec": {"template": job_template}})).await;
    let j = wait_until(&jobs, "once", |v| {
        condition(v, "Complete").is_some_and(|(s, _)| s == "True")
    })
    .await;
    assert_eq!(j["status"]["succeeded"], 1);
    apply(jobs.clone(), json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "bad", "annotations": {"test.plane.datalayer.io/fail": "BackoffLimitExceeded"}}, "spec": {"template": job_template}})).await;
    let j = wait_until(&jobs, "bad", |v| condition(v, "Failed").is_some()).await;
    assert_eq!(condition(&j, "Failed").unwrap().1, "BackoffLimitExceeded");

    let pvcs = api(
        &c,
        ns,
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
    );
    apply(
        pvcs.clone(),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await;
    let p = wait_until(&pvcs, "data", |v| v["status"]["phase"] == "Bound").await;
    assert_eq!(p["status"]["capacity"]["storage"], "1Gi");

    // A spec change restarts the progression at the new generation.
    apply(
        deploys.clone(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ok"},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "x"}}, "template": template}}),
    )
    .await;
    let d = wait_until(&deploys, "ok", |v| {
        v["status"]["observedGeneration"] == 2 && v["status"]["readyReplicas"] == 4
    })
    .await;
    assert_eq!(d["metadata"]["generation"], 2);
}

fn raycluster_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "rayclusters.ray.io"},
        "spec": {"group": "ray.io", "scope": "Namespaced",
            "names": {"kind": "RayCluster", "plural": "rayclusters", "singular": "raycluster", "listKind": "RayClusterList", "categories": ["all"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "status", "type": "string", "jsonPath": ".status.state"}],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}})
}

#[tokio::test]
async fn rayclusters_progress_to_ready_or_report_replica_failure() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let crds = api(
        &c,
        None,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    crds.patch(
        "rayclusters.ray.io",
        &ssa("plane"),
        &Patch::Apply(raycluster_crd()),
    )
    .await
    .unwrap();
    wait_until(&crds, "rayclusters.ray.io", |v| {
        condition(v, "Established").is_some_and(|(s, _)| s == "True")
    })
    .await;
    let rcs = api(
        &c,
        Some("default"),
        "ray.io/v1",
        "RayCluster",
        "rayclusters",
    );
    let rc = |name: &str, fail: Option<&str>| {
        let mut v = json!({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": name},
            "spec": {"headGroupSpec": {"template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.9"}]}}},
                "workerGroupSpecs": [{"groupName": "w", "replicas": 2, "minReplicas": 1, "maxReplicas": 4,
                    "template": {"spec": {"containers": [{"name": "ray-worker", "image": "rayproject/ray:2.9"}]}}}]}});
        if let Some(f) = fail {
            v["metadata"]["annotations"] = json!({"test.plane.datalayer.io/fail": f});
        }
        v
    };
    rcs.patch("ok", &ssa("plane"), &Patch::Apply(rc("ok", None)))
        .await
        .unwrap();
    let ok = wait_until(&rcs, "ok", |v| v["status"]["state"] == "ready").await;
    assert_eq!(
        condition(&ok, "HeadPodReady").unwrap(),
        ("True".into(), "HeadPodRunningAndReady".into())
    );
    assert_eq!(
        condition(&ok, "RayClusterProvisioned").unwrap(),
        ("True".into(), "AllPodRunningAndReadyFirstTime".into())
    );
    assert_eq!(ok["status"]["observedGeneration"], 1);
    assert_eq!(ok["status"]["readyWorkerReplicas"], 2);
    assert_eq!(ok["status"]["maxWorkerReplicas"], 4);

    rcs.patch(
        "bad",
        &ssa("plane"),
        &Patch::Apply(rc("bad", Some("RayClusterFailed"))),
    )
    .await
    .unwrap();
    let bad = wait_until(&rcs, "bad", |v| condition(v, "ReplicaFailure").is_some()).await;
    assert_eq!(
        condition(&bad, "ReplicaFailure").unwrap(),
        ("True".into(), "FailedCreateHeadPod".into())
    );
    assert_eq!(condition(&bad, "HeadPodReady").unwrap().0, "False");
    assert!(
        bad["status"].get("state").is_none(),
        "KubeRay 1.7 does not set state on failure"
    );

    // The real test control plane's annotation, as fake-kuberay.py answers it.
    let mut sim = rc("sim", None);
    sim["metadata"]["annotations"] = json!({"sim.k8s-real/fail": "no quota"});
    rcs.patch("sim", &ssa("plane"), &Patch::Apply(sim))
        .await
        .unwrap();
    let sim = wait_until(&rcs, "sim", |v| condition(v, "ReplicaFailure").is_some()).await;
    assert_eq!(
        condition(&sim, "ReplicaFailure").unwrap(),
        ("True".into(), "FailedCreateWorkerPod".into())
    );
    assert_eq!(sim["status"]["reason"], "no quota");
    assert_eq!(condition(&sim, "HeadPodReady").unwrap().0, "False");
    assert_eq!(condition(&sim, "RayClusterProvisioned").unwrap().0, "False");
    assert!(sim["status"].get("state").is_none());
}

#[tokio::test]
async fn the_sim_fail_annotation_on_a_pod_template_crash_loops_its_pods() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let sts = api(
        &c,
        Some("default"),
        "apps/v1",
        "StatefulSet",
        "statefulsets",
    );
    sts.patch(
        "db",
        &ssa("plane"),
        &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
                "template": {"metadata": {"labels": {"app": "db"}, "annotations": {"sim.k8s-real/fail": "x"}},
                    "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}})),
    )
    .await
    .unwrap();
    let pods = api(&c, Some("default"), "v1", "Pod", "pods");
    let pod = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let list = pods
                .list(&ListParams::default().labels("app=db"))
                .await
                .unwrap();
            if let Some(p) = list.items.into_iter().next() {
                return serde_json::to_value(p).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a pod of the StatefulSet");
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(
        condition(&pod, "Ready").unwrap(),
        ("False".into(), "ContainersNotReady".into())
    );
    assert_eq!(
        pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    assert_eq!(pod["metadata"]["annotations"]["sim.k8s-real/fail"], "x");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = sts.get("db").await.unwrap();
    assert_eq!(
        serde_json::to_value(s).unwrap()["status"]["readyReplicas"],
        0
    );
}

#[test]
fn many_servers_start_and_stop_in_parallel_from_sync_code() {
    let threads: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(|| {
                let srv = TestServer::start(Config::default());
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let c = client(&srv).await;
                    c.apiserver_version().await.unwrap();
                });
                assert!(srv.kubeconfig_path().exists());
                let path = srv.kubeconfig_path().to_owned();
                let port = srv.port();
                drop(srv);
                assert!(!path.exists(), "the temporary kubeconfig is removed");
                port
            })
        })
        .collect();
    let mut ports: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 20);
}

#[test]
fn direct_inspection_sees_what_clients_wrote() {
    let srv = TestServer::start(without_published_config_maps());
    assert!(
        srv.get_object("v1", "Namespace", None, "kube-system")
            .is_some()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = client(&srv).await;
        let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");
        cms.patch(
            "x",
            &ssa("plane"),
            &Patch::Apply(cm("x", json!({"k": "v"}))),
        )
        .await
        .unwrap();
    });
    let x = srv
        .get_object("v1", "ConfigMap", Some("default"), "x")
        .unwrap();
    assert_eq!(x["data"]["k"], "v");
    assert_eq!(srv.list_objects("v1", "ConfigMap", None).len(), 1);
    assert!(
        srv.get_object("v1", "ConfigMap", Some("default"), "y")
            .is_none()
    );
}

#[tokio::test]
async fn watches_send_bookmarks_and_initial_events() {
    let srv = TestServer::start(Config {
        watch_bookmarks: Some(Duration::from_millis(50)),
        ..without_published_config_maps()
    });
    let c = client(&srv).await;
    let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");
    cms.create(&PostParams::default(), &obj(cm("pre", json!({}))))
        .await
        .unwrap();

    // A streaming list: the existing objects as ADDED, then the initial-events-end bookmark.
    let mut s = cms
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .unwrap()
        .boxed();
    match next_event(&mut s).await {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("pre")),
        other => panic!("{other:?}"),
    }
    match next_event(&mut s).await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(
                b.metadata
                    .annotations
                    .get("k8s.io/initial-events-end")
                    .map(String::as_str),
                Some("true")
            );
        }
        other => panic!("{other:?}"),
    }
    // Periodic bookmarks on a quiet watch.
    let rv = cms
        .get("pre")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut s = cms
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            },
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_event(&mut s).await, WatchEvent::Bookmark(_)));
}

#[tokio::test]
async fn status_subresource_collections_and_generated_names() {
    let srv = TestServer::start(without_published_config_maps());
    let c = client(&srv).await;
    let deploys = api(&c, Some("default"), "apps/v1", "Deployment", "deployments");
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "annotations": {"test.plane.datalayer.io/fail": "Stuck"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
    deploys
        .patch("web", &ssa("plane"), &Patch::Apply(d))
        .await
        .unwrap();
    let patched = deploys
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 7}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["replicas"], 7);
    assert_eq!(
        patched.data["spec"]["replicas"], 1,
        "the status subresource leaves spec alone"
    );
    assert_eq!(patched.metadata.generation, Some(1));

    let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");
    let generated = cms
        .create(
            &PostParams::default(),
            &obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"generateName": "gen-", "labels": {"batch": "1"}}})),
        )
        .await
        .unwrap();
    let name = generated.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    cms.create(
        &PostParams::default(),
        &obj(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "other", "labels": {"batch": "2"}}})),
    )
    .await
    .unwrap();
    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=1"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["other"]);
}

async fn next_event(
    s: &mut futures::stream::BoxStream<'static, kube::Result<WatchEvent<DynamicObject>>>,
) -> WatchEvent<DynamicObject> {
    tokio::time::timeout(Duration::from_secs(10), s.try_next())
        .await
        .expect("an event")
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn apply_removes_dropped_list_items_and_leaves_other_managers_items() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let deploys = api(&c, Some("default"), "apps/v1", "Deployment", "deployments");
    let d = |containers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}})
    };
    deploys
        .patch(
            "web",
            &ssa("plane"),
            &Patch::Apply(d(json!([{"name": "web", "image": "i:1",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]))),
        )
        .await
        .unwrap();
    deploys
        .patch(
            "web",
            &ssa("sidecar-injector"),
            &Patch::Apply(d(json!([{"name": "side", "image": "s:1"}]))),
        )
        .await
        .unwrap();
    let after = deploys
        .patch(
            "web",
            &ssa("plane"),
            &Patch::Apply(d(json!([{"name": "web", "image": "i:2",
            "env": [{"name": "A", "value": "1"}]}]))),
        )
        .await
        .unwrap();
    let containers = &after.data["spec"]["template"]["spec"]["containers"];
    let web = containers
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "web")
        .unwrap();
    assert_eq!(web["env"], json!([{"name": "A", "value": "1"}]));
    assert_eq!(web["image"], "i:2");
    assert!(
        containers
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "side"),
        "{containers}"
    );
    // Dropping the env list entirely removes it; the sidecar stays the injector's.
    let after = deploys
        .patch(
            "web",
            &ssa("plane"),
            &Patch::Apply(d(json!([{"name": "web", "image": "i:2"}]))),
        )
        .await
        .unwrap();
    let containers = after.data["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .clone();
    assert!(containers[0].get("env").is_none(), "{containers:?}");
    assert_eq!(containers.len(), 2);
}

#[tokio::test]
async fn apply_to_the_status_subresource_changes_only_status() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let crds = api(
        &c,
        None,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
    );
    crds.patch(
        "widgets.example.com",
        &ssa("plane"),
        &Patch::Apply(widget_crd("Namespaced")),
    )
    .await
    .unwrap();
    wait_until(&crds, "widgets.example.com", |v| {
        condition(v, "Established").is_some_and(|(s, _)| s == "True")
    })
    .await;
    let widgets = api(&c, Some("default"), "example.com/v1", "Widget", "widgets");
    let w = |size: i64| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": size}, "status": {"phase": "Ready"}})
    };
    let created = widgets
        .patch("w", &ssa("plane"), &Patch::Apply(w(1)))
        .await
        .unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status is not written through the main resource"
    );
    let st = widgets
        .patch_status("w", &ssa("operator"), &Patch::Apply(w(5)))
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert_eq!(
        st.data["spec"]["size"], 1,
        "spec is not written through /status"
    );
    assert_eq!(st.metadata.generation, Some(1));
}

#[tokio::test]
async fn tests_can_change_objects_as_another_manager() {
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");
    cms.patch(
        "x",
        &ssa("plane"),
        &Patch::Apply(cm("x", json!({"replicas": "1"}))),
    )
    .await
    .unwrap();
    srv.clear_requests();
    let changed = srv
        .patch_object(
            "autoscaler",
            "v1",
            "ConfigMap",
            Some("default"),
            "x",
            &json!({"data": {"replicas": "3"}}),
        )
        .unwrap();
    assert_eq!(changed["data"]["replicas"], "3");
    assert!(srv.requests().is_empty(), "direct changes are not requests");
    let e = cms
        .patch(
            "x",
            &ssa("plane"),
            &Patch::Apply(cm("x", json!({"replicas": "1"}))),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(s) = &e else { panic!() };
    assert!(
        s.message.contains("conflict with \"autoscaler\""),
        "{}",
        s.message
    );
    let missing = srv.patch_object("a", "v1", "ConfigMap", Some("default"), "nope", &json!({}));
    assert_eq!(missing.unwrap_err().code(), 404);
    assert_eq!(
        srv.patch_status("a", "v1", "ConfigMap", Some("default"), "x", &json!({}))
            .unwrap_err()
            .code(),
        404,
        "ConfigMaps have no status subresource"
    );

    // JSON patch, as `kubectl patch --type=json` sends it
    let p = cms
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([
            {"op": "add", "path": "/data/extra", "value": "y"}]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.data["data"]["extra"], "y");
}

#[tokio::test]
async fn large_objects_with_several_managers_apply_quickly() {
    // Field ownership uses set lookups; a quadratic scan would take minutes here.
    let srv = TestServer::start(Config::default());
    let c = client(&srv).await;
    let cms = api(&c, Some("default"), "v1", "ConfigMap", "configmaps");
    let data = |prefix: &str| -> Value {
        (0..20_000)
            .map(|i| (format!("k{i}"), json!(format!("{prefix}{i}"))))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    cms.patch("big", &ssa("plane"), &Patch::Apply(cm("big", data("a"))))
        .await
        .unwrap();
    cms.patch("big", &ssa("other"), &Patch::Apply(cm("big", data("a"))))
        .await
        .unwrap();
    let e = cms
        .patch("big", &ssa("other"), &Patch::Apply(cm("big", data("b"))))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("20000 conflicts"), "{e}");
    let forced = cms
        .patch(
            "big",
            &ssa("other").force(),
            &Patch::Apply(cm("big", data("b"))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["data"]["k19999"], "b19999");
    let again = cms
        .patch("big", &ssa("plane"), &Patch::Apply(cm("big", json!({}))))
        .await
        .unwrap();
    assert_eq!(
        again.data["data"].as_object().unwrap().len(),
        20_000,
        "other owns them all now"
    );
}
