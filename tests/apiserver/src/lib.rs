//! A Kubernetes-API-compatible test server for plane's end-to-end tests: real HTTP on
//! 127.0.0.1, discovery, CRUD, server-side apply with managed fields, watches, simulated
//! controllers, fault injection and a request log.
//!
//! ```no_run
//! use plane_test_apiserver::{Config, FaultRule, TestServer};
//!
//! let srv = TestServer::start(Config::default());
//! // Run the real binary against it: `plane --kubeconfig <path> up ...`
//! let kubeconfig = srv.kubeconfig_path();
//! # let _ = kubeconfig;
//! // Make the next PATCH to any Deployment fail with 500, once.
//! srv.add_fault(FaultRule::status("PATCH", "*/deployments/*", 500, 1));
//! // ... run the command under test ...
//! let writes = srv.requests().into_iter().filter(|r| r.is_mutating()).count();
//! assert_eq!(writes, 0);
//! let cm = srv.get_object("v1", "ConfigMap", Some("default"), "settings");
//! assert!(cm.is_none());
//! ```
//!
//! The server runs its own single-threaded tokio runtime on a background thread, so it works
//! from plain `#[test]` functions and from `#[tokio::test]` alike; dropping the [`TestServer`]
//! stops it. Each server has its own port, store and log, so tests can run many in parallel.
//!
//! # Connection
//!
//! HTTPS on `127.0.0.1` with a bearer token (kubectl sends tokens only over TLS). The
//! certificate covers `127.0.0.1` and `localhost` and is signed by a CA generated once per
//! process; the kubeconfig embeds that CA and names one cluster, user and context
//! (`plane-test`, namespace `default`), so kube-rs and kubectl both accept it as it is.
//!
//! # Simulated controllers
//!
//! Every [`Config::controller_step`] the controllers move each object one step:
//!
//! | kind | progression |
//! |---|---|
//! | Deployment | the real controller's sequence: `Progressing=True` (`NewReplicaSetCreated`) only; observed, `Available=False`; `Progressing=True` (`ReplicaSetUpdated`) with the counts; all replicas ready, `Available=True` (`MinimumReplicasAvailable`), `Progressing=True` (`NewReplicaSetAvailable`) |
//! | StatefulSet, DaemonSet, ReplicaSet | step 1: observed, none ready; step 2: all ready |
//! | Job | step 1: `active`; step 2: `succeeded`, conditions `SuccessCriteriaMet` and `Complete` |
//! | PersistentVolumeClaim | step 2: `spec.volumeName`, `status.phase: Bound` |
//! | Service type LoadBalancer | step 2: `status.loadBalancer.ingress[0].ip: 198.51.100.10` |
//! | Pod (created by a client) | step 2: `Running`, `Ready=True` |
//! | CustomResourceDefinition | `NamesAccepted=True` at once; `Established=True` (and served by discovery) once [`Config::crd_establish_delay`] has passed |
//! | RayCluster (`ray.io/v1`) | step 1: `HeadPodReady=False` (`HeadPodNotFound`), `RayClusterProvisioned=False`; step 2: `HeadPodReady=True`; step 3: `RayClusterProvisioned=True`, `state: ready`, worker counts, `head` |
//!
//! A spec change (new `generation`) starts the progression again. Every namespace gets the
//! ServiceAccount `default` and the ConfigMaps of [`Config::published_config_maps`]
//! (`kube-root-ca.crt`), as a real controller-manager publishes them.
//!
//! # Failure annotation
//!
//! The annotation [`FAIL_ANNOTATION`] (`test.plane.datalayer.io/fail`) on an object makes its
//! controller fail it:
//!
//! | value | kinds | result |
//! |---|---|---|
//! | `ProgressDeadlineExceeded` | Deployment | from step 2: `Progressing=False` reason `ProgressDeadlineExceeded`, `Available=False`, no ready replicas |
//! | `ImagePullBackOff` | Deployment, StatefulSet, DaemonSet, Job, RayCluster | never ready; one Pod labelled with the workload's `spec.selector.matchLabels` (RayCluster: `ray.io/cluster`, `ray.io/node-type: head`), owned by it, `phase: Pending`, each container waiting with reason `ImagePullBackOff` |
//! | `CrashLoopBackOff` | same | as above, `phase: Running`, containers waiting with reason `CrashLoopBackOff`, `restartCount: 5`, last state terminated with exit code 1 |
//! | `RayClusterFailed` | RayCluster | from step 2: `ReplicaFailure=True` reason `FailedCreateHeadPod`; `HeadPodReady=False`; `state` never set (KubeRay 1.7 behaviour) |
//! | `BackoffLimitExceeded` | Job | from step 2: conditions `FailureTarget` and `Failed` with reason `BackoffLimitExceeded` |
//! | `Stuck` | any of the above, CRDs | stays at step 1 forever (CRDs never become `Established`), for timeout tests |
//!
//! [`SIM_FAIL_ANNOTATION`] (`sim.k8s-real/fail`), the annotation of the real test control plane's
//! simulators, works here too: on a workload's Pod template (or a Pod) its pods stay unready in
//! `CrashLoopBackOff`; on a RayCluster it gets `ReplicaFailure=True` and no `state`.
//!
//! # Service proxy
//!
//! `GET /api/v1/namespaces/NS/services/NAME[:PORT]/proxy/...` needs `get` on `services/proxy`.
//!
//! | Service | answer |
//! |---|---|
//! | missing | 404 `services "NAME" not found` |
//! | annotated [`PROMETHEUS_ANNOTATION`] (`test.plane.datalayer.io/prometheus`) | `/api/v1/query?query=Q`: a Prometheus instant vector of the annotation's samples for every metric named in `Q` (`{"metric": [{labels..., "value": "1.5"}]}`; no PromQL is evaluated) |
//! | any other | 503 `no endpoints available for service "NAME"`, like a real API server when nothing answers behind the Service |
//!
//! # Admin endpoints (no token needed, not logged)
//!
//! - `GET /_admin/requests` (the request log as JSON), `DELETE /_admin/requests`
//! - `GET /_admin/faults`, `POST /_admin/faults` (a [`FaultRule`] as JSON), `DELETE /_admin/faults`
//! - `PUT /_admin/tokens/TOKEN` (a JSON list of [`PolicyRule`]s) adds or replaces a token

mod config;
mod controllers;
mod defaults;
mod error;
mod fields;
mod kubeconfig;
mod ops;
mod proxy;
mod resources;
mod schema;
mod selector;
mod server;
mod store;
mod tls;
mod util;

pub use config::{
    Config, DEFAULT_TOKEN, FAIL_ANNOTATION, FaultRule, PolicyRule, RequestRecord,
    SIM_FAIL_ANNOTATION, critical_chain, critical_path,
};
pub use error::{ApiError, Cause, StartError};
pub use kubeconfig::merged as merged_kubeconfig;
pub use proxy::PROMETHEUS_ANNOTATION;

use serde_json::Value;
use server::State;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::watch;

/// A running test server. Dropping it stops the server and removes its temporary kubeconfig.
pub struct TestServer {
    state: Arc<State>,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    temp_dir: Option<PathBuf>,
    shutdown: Option<watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server and writes its kubeconfig.
    ///
    /// # Panics
    ///
    /// When the port cannot be bound or the kubeconfig cannot be written; tests want to stop
    /// there. Use [`TestServer::try_start`] to handle it.
    pub fn start(config: Config) -> Self {
        Self::try_start(config).unwrap_or_else(|e| panic!("plane-test-apiserver: {e}"))
    }

    /// Starts a server; it is serving when this returns, and its kubeconfig is written.
    pub fn try_start(config: Config) -> Result<Self, StartError> {
        let port = config.port.unwrap_or(0);
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| StartError::Bind { port, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { port, source })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        #[allow(
            clippy::cast_possible_truncation,
            reason = "any 64 bits of the clock make a seed"
        )]
        let seed = (nanos as u64) ^ u64::from(addr.port());
        let (kubeconfig, temp_dir) = if let Some(p) = &config.kubeconfig {
            (p.clone(), None)
        } else {
            let dir = std::env::temp_dir().join(format!(
                "plane-test-apiserver-{}-{}",
                std::process::id(),
                addr.port()
            ));
            (dir.join("kubeconfig"), Some(dir))
        };
        let tls = tls::get().map_err(|source| StartError::Tls { source })?;
        let token = config.token.clone();
        let state = Arc::new(State::new(config, seed));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| StartError::Runtime { source })?;
        let (tx, rx) = watch::channel(false);
        let serving = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("plane-test-apiserver-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    // Inside the runtime: tokio needs its reactor to adopt the socket.
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        server::serve(listener, tls.config.clone(), serving, rx).await;
                    }
                });
            })
            .map_err(|source| StartError::Runtime { source })?;
        let url = format!("https://{addr}");
        let server = Self {
            state,
            addr,
            kubeconfig: kubeconfig.clone(),
            temp_dir,
            shutdown: Some(tx),
            thread: Some(thread),
        };
        kubeconfig::write(&kubeconfig, &url, &token, &tls.ca_pem).map_err(|source| {
            StartError::Kubeconfig {
                path: kubeconfig.clone(),
                source,
            }
        })?;
        Ok(server)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The PEM of the CA that signed the server's certificate (the kubeconfig embeds it).
    pub fn ca_pem(&self) -> &'static str {
        tls::get().map_or("", |t| t.ca_pem.as_str())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The bearer token with full rights (the one in the kubeconfig).
    pub fn token(&self) -> &str {
        &self.state.config.token
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Every request answered so far (admin endpoints excluded), oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state.requests()
    }

    pub fn clear_requests(&self) {
        self.state.clear_requests();
    }

    pub fn add_fault(&self, rule: FaultRule) {
        self.state.add_fault(rule);
    }

    pub fn clear_faults(&self) {
        self.state.clear_faults();
    }

    /// Adds a token (or replaces its rules). Requests with it are allowed only what `rules`
    /// allow; everything else gets 403.
    pub fn set_token_rules(&self, token: &str, rules: Vec<PolicyRule>) {
        self.state.set_token_rules(token, rules);
    }

    /// The stored object, as a GET would return it. `namespace` is `None` for cluster-scoped
    /// kinds.
    pub fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let inner = self.state.store.lock();
        let types = inner.types();
        let rt = resources::by_kind(&types, api_version, kind)?;
        let key = store::Key::new(rt, namespace.unwrap_or(""), name);
        let mut v = Value::clone(&inner.get(&key)?.value);
        v["apiVersion"] = Value::String(rt.api_version());
        Some(v)
    }

    /// Creates an object the way another client would, without a request in the log (someone
    /// else's ConfigMap, a custom resource a user made). It goes through defaulting and
    /// validation like any create.
    ///
    /// # Errors
    /// An unknown kind, an existing object, or an invalid one, as the API would answer.
    pub fn create_object(&self, manager: &str, object: &Value) -> Result<Value, ApiError> {
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let kind = object["kind"].as_str().unwrap_or_default();
        let mut inner = self.state.store.lock();
        let types = inner.types();
        let rt = resources::by_kind(&types, api_version, kind)
            .ok_or_else(ApiError::no_route)?
            .clone();
        let target = ops::Target {
            namespace: rt.namespaced.then(|| {
                object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_owned()
            }),
            rt,
            name: None,
            sub: None,
        };
        let params = ops::WriteParams {
            field_manager: Some(manager.to_owned()),
            default_manager: manager.to_owned(),
            ..ops::WriteParams::default()
        };
        let body = serde_json::to_vec(object).unwrap_or_default();
        ops::create(&mut inner, &target, &body, &params).map(|(_, v)| v)
    }

    /// Changes an object the way another client would, without a request in the log: a JSON
    /// merge patch recorded as an `Update` by `manager` (an autoscaler changing replicas, an
    /// operator adding a finalizer). `status` patches the status subresource instead.
    pub fn patch_object(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        merge_patch: &Value,
    ) -> Result<Value, ApiError> {
        self.patch(
            manager,
            api_version,
            kind,
            namespace,
            name,
            None,
            merge_patch,
        )
    }

    /// Like [`TestServer::patch_object`], on the status subresource (which kinds without one
    /// do not have: they answer 404).
    pub fn patch_status(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        merge_patch: &Value,
    ) -> Result<Value, ApiError> {
        self.patch(
            manager,
            api_version,
            kind,
            namespace,
            name,
            Some("status"),
            merge_patch,
        )
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the public wrappers name them all"
    )]
    fn patch(
        &self,
        manager: &str,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        sub: Option<&str>,
        merge_patch: &Value,
    ) -> Result<Value, ApiError> {
        let mut inner = self.state.store.lock();
        let types = inner.types();
        let rt = resources::by_kind(&types, api_version, kind)
            .ok_or_else(ApiError::no_route)?
            .clone();
        if sub.is_some() && !rt.status_subresource {
            return Err(ApiError::no_route());
        }
        let target = ops::Target {
            namespace: rt
                .namespaced
                .then(|| namespace.unwrap_or("default").to_owned()),
            rt,
            name: Some(name.to_owned()),
            sub: sub.map(str::to_owned),
        };
        let params = ops::WriteParams {
            field_manager: Some(manager.to_owned()),
            default_manager: manager.to_owned(),
            ..ops::WriteParams::default()
        };
        let body = serde_json::to_vec(merge_patch).unwrap_or_default();
        ops::patch(
            &mut inner,
            &target,
            "application/merge-patch+json",
            &body,
            &params,
        )
        .map(|(_, v)| v)
    }

    /// The stored objects of a kind (in one namespace, or all with `None`), sorted by namespace
    /// and name.
    pub fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Vec<Value> {
        let inner = self.state.store.lock();
        let types = inner.types();
        let Some(rt) = resources::by_kind(&types, api_version, kind) else {
            return Vec::new();
        };
        inner
            .list(&rt.group, &rt.plural, namespace)
            .into_iter()
            .map(|(_, s)| {
                let mut v = Value::clone(&s.value);
                v["apiVersion"] = Value::String(rt.api_version());
                v
            })
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(dir) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
