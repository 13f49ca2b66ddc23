//! The cluster a live-tier test runs against: a real one named by `PLANE_E2E_KUBECONFIG`, or
//! else a fresh test API server, read and changed through the Kubernetes API either way.
#![allow(
    clippy::print_stderr,
    reason = "each test says which cluster it ran on, or why the live tier was skipped"
)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use plane_test_apiserver::{Config, TestServer};
use serde_json::Value;

/// Names a kubeconfig of a real cluster to run the live tier against.
pub const KUBECONFIG_VAR: &str = "PLANE_E2E_KUBECONFIG";
/// Names a kubeconfig of a user with no RBAC grants on that cluster (default: a
/// `limited.kubeconfig` beside the admin one, as `shared/realcluster` writes it).
pub const LIMITED_VAR: &str = "PLANE_E2E_LIMITED_KUBECONFIG";

/// Says, on one line starting `SKIPPED:`, what a test did not check. `.ci/run` prints every such
/// line of its live tier again at the end, so a green run says what it left out.
pub fn skipped(test: &str, what: &str) {
    eprintln!("SKIPPED: {test}: {what}");
}

/// Live-tier tests share one real cluster, its namespaces and cluster-scoped objects: they take
/// turns. On test servers (one per test) they run in parallel.
static LIVE: Mutex<()> = Mutex::new(());

enum Backend {
    TestServer(TestServer),
    Live,
}

/// The cluster under test, with a client of its own for the test's checks.
pub struct Cluster {
    backend: Backend,
    kubeconfig: PathBuf,
    limited: Option<PathBuf>,
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    _turn: Option<MutexGuard<'static, ()>>,
    _limited_dir: Option<tempfile::TempDir>,
}

impl Cluster {
    /// The real cluster of `PLANE_E2E_KUBECONFIG` (waiting for this test's turn), or a new test
    /// server when the variable is not set, which is said once per test on stderr.
    pub fn under_test(test: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        if let Some(path) = std::env::var_os(KUBECONFIG_VAR).filter(|v| !v.is_empty()) {
            let turn = LIVE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let kubeconfig = PathBuf::from(path);
            let limited = std::env::var_os(LIMITED_VAR)
                .map(PathBuf::from)
                .or_else(|| {
                    let sibling = kubeconfig.with_file_name("limited.kubeconfig");
                    sibling.exists().then_some(sibling)
                });
            let client = runtime.block_on(client_for(&kubeconfig));
            eprintln!("{test}: live tier against {}", kubeconfig.display());
            Self {
                backend: Backend::Live,
                kubeconfig,
                limited,
                runtime,
                client,
                _turn: Some(turn),
                _limited_dir: None,
            }
        } else {
            eprintln!(
                "{test}: live tier skipped ({KUBECONFIG_VAR} is not set); running on the test API server"
            );
            let srv = TestServer::start(Config::default());
            let kubeconfig = srv.kubeconfig_path().to_path_buf();
            // A user the server knows but grants nothing, like realcluster's limited user.
            srv.set_token_rules("nobody", Vec::new());
            let dir = tempfile::tempdir().expect("temp dir");
            let limited = dir.path().join("limited.kubeconfig");
            let admin = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
            std::fs::write(&limited, admin.replace(srv.token(), "nobody")).expect("write");
            let client = runtime.block_on(client_for(&kubeconfig));
            Self {
                backend: Backend::TestServer(srv),
                kubeconfig,
                limited: Some(limited),
                runtime,
                client,
                _turn: None,
                _limited_dir: Some(dir),
            }
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self.backend, Backend::Live)
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A kubeconfig of a user without any rights, if the cluster has one.
    pub fn limited_kubeconfig(&self) -> Option<&Path> {
        self.limited.as_deref()
    }

    /// The test server behind this cluster, when it is one.
    pub fn test_server(&self) -> Option<&TestServer> {
        match &self.backend {
            Backend::TestServer(srv) => Some(srv),
            Backend::Live => None,
        }
    }

    fn resource(&self, api_version: &str, kind: &str) -> Option<(ApiResource, ApiCapabilities)> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        self.runtime
            .block_on(kube::discovery::pinned_kind(&self.client, &gvk))
            .ok()
    }

    fn api(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Option<Api<DynamicObject>> {
        let (resource, caps) = self.resource(api_version, kind)?;
        Some(match (caps.scope, namespace) {
            (Scope::Namespaced, Some(ns)) => {
                Api::namespaced_with(self.client.clone(), ns, &resource)
            }
            _ => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// One object, or `None` when it (or its kind) does not exist.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let api = self.api(api_version, kind, namespace)?;
        self.runtime
            .block_on(api.get_opt(name))
            .expect("GET")
            .map(|o| serde_json::to_value(o).expect("json"))
    }

    /// Every object of a kind, in `namespace` or in all (none when the kind is not served).
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(api) = self.api(api_version, kind, namespace) else {
            return Vec::new();
        };
        self.runtime
            .block_on(api.list(&ListParams::default()))
            .expect("LIST")
            .items
            .into_iter()
            .map(|o| serde_json::to_value(o).expect("json"))
            .collect()
    }

    /// Subjects of the objects of these kinds whose `label` has `value`, in all namespaces.
    pub fn labelled(&self, kinds: &[(&str, &str)], label: &str, value: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (api_version, kind) in kinds {
            let Some(api) = self.api(api_version, kind, None) else {
                continue;
            };
            let params = ListParams::default().labels(&format!("{label}={value}"));
            for object in self.runtime.block_on(api.list(&params)).expect("LIST") {
                let name = object.metadata.name.unwrap_or_default();
                out.push(super::subject(
                    kind,
                    object.metadata.namespace.as_deref(),
                    &name,
                ));
            }
        }
        out.sort();
        out
    }

    /// Creates or changes an object as another client (`manager`) would, by server-side apply.
    pub fn apply_as(&self, manager: &str, object: &Value) -> Value {
        self.server_side_apply(&PatchParams::apply(manager).force(), object)
            .expect("apply")
    }

    /// [`Cluster::apply_as`], or why the server refused it.
    pub fn try_apply_as(&self, manager: &str, object: &Value) -> Result<Value, String> {
        self.server_side_apply(&PatchParams::apply(manager).force(), object)
    }

    /// A server-side apply dry-run of `object` as `manager`: what the server would store, or
    /// its refusal. Nothing is written.
    pub fn dry_run_apply(&self, manager: &str, object: &Value) -> Result<Value, String> {
        self.server_side_apply(&PatchParams::apply(manager).force().dry_run(), object)
    }

    fn server_side_apply(&self, params: &PatchParams, object: &Value) -> Result<Value, String> {
        let text = |p: &str| object.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let api = self
            .api(
                &text("/apiVersion").ok_or("no apiVersion")?,
                &text("/kind").ok_or("no kind")?,
                text("/metadata/namespace").as_deref(),
            )
            .ok_or("its kind is not served")?;
        let name = text("/metadata/name").ok_or("no name")?;
        self.runtime
            .block_on(api.patch(&name, params, &Patch::Apply(object)))
            .map(|o| serde_json::to_value(o).expect("json"))
            .map_err(|e| e.to_string())
    }

    /// Changes an object with a JSON merge patch, as a client would by hand (`null` removes a key).
    pub fn merge_patch(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) {
        self.merge(api_version, kind, namespace, name, patch, false);
    }

    /// Changes an object's status with a JSON merge patch, as its operator would.
    pub fn merge_patch_status(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) {
        self.merge(api_version, kind, namespace, name, patch, true);
    }

    fn merge(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        status: bool,
    ) {
        let api = self
            .api(api_version, kind, namespace)
            .expect("a served kind");
        let params = PatchParams::default();
        let patch = Patch::Merge(patch);
        let done = if status {
            self.runtime
                .block_on(api.patch_status(name, &params, &patch))
        } else {
            self.runtime.block_on(api.patch(name, &params, &patch))
        };
        done.expect("merge patch");
    }

    /// Changes fields as a controller does, with a JSON patch (RFC 6902) as `manager`: the Ray
    /// autoscaler setting a worker group's replicas.
    pub fn json_patch_as(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        ops: &Value,
    ) {
        let api = self
            .api(api_version, kind, namespace)
            .expect("a served kind");
        let url = format!("{}/{name}?fieldManager={manager}", api.resource_url());
        let request = http::Request::patch(url)
            .header(http::header::CONTENT_TYPE, "application/json-patch+json")
            .body(serde_json::to_vec(ops).expect("JSON"))
            .expect("a request");
        let _: Value = self
            .runtime
            .block_on(self.client.request(request))
            .expect("json patch");
    }

    /// Deletes an object if it exists, and waits (up to a minute) until it is gone.
    pub fn delete(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) {
        let Some(api) = self.api(api_version, kind, namespace) else {
            return;
        };
        let _ = self
            .runtime
            .block_on(api.delete(name, &DeleteParams::background()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.get(api_version, kind, namespace, name).is_some() {
            assert!(Instant::now() < deadline, "{kind}/{name} is not gone");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A release's record (the `release.json` of its inventory Secret), if it has one.
    pub fn inventory(&self, release: &str) -> Option<Value> {
        self.record_in("plane-system", release)
    }

    /// The record of release `release` kept in `namespace` (a team instance's, or a platform's
    /// in another state namespace), if there is one.
    pub fn record_in(&self, namespace: &str, release: &str) -> Option<Value> {
        super::record_of(&self.get(
            "v1",
            "Secret",
            Some(namespace),
            &format!("plane-release-{release}"),
        )?)
    }

    /// (subject, uid, resourceVersion) of every object a record lists, read live (`-` for one
    /// that is gone).
    pub fn versions_of(&self, record: &Value) -> Vec<(String, String, String)> {
        record["objects"]
            .as_array()
            .expect("a record's objects")
            .iter()
            .map(|o| {
                let live = self.get(
                    o["apiVersion"].as_str().unwrap(),
                    o["kind"].as_str().unwrap(),
                    o["namespace"].as_str(),
                    o["name"].as_str().unwrap(),
                );
                let field = |f: &str| {
                    live.as_ref()
                        .and_then(|l| l["metadata"][f].as_str())
                        .unwrap_or("-")
                        .to_owned()
                };
                (
                    super::subject(
                        o["kind"].as_str().unwrap(),
                        o["namespace"].as_str(),
                        o["name"].as_str().unwrap(),
                    ),
                    field("uid"),
                    field("resourceVersion"),
                )
            })
            .collect()
    }
}

async fn client_for(path: &Path) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(path).expect("a readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a usable kubeconfig");
    kube::Client::try_from(config).expect("a client")
}
