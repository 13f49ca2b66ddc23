//! The server's knobs and the plain data types tests hand it: fault rules, authorization rules
//! and request records.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// The token every server accepts with full rights unless [`Config::token`] says otherwise.
pub const DEFAULT_TOKEN: &str = "plane-test-token";

/// The annotation that makes a simulated controller fail an object; see the crate docs for the
/// values and what each one produces.
pub const FAIL_ANNOTATION: &str = "test.plane.datalayer.io/fail";

/// The annotation of the real test control plane's simulators (`fake-kubelet.py`,
/// `fake-kuberay.py`) that the test server honours too: on a workload's Pod template its pods stay
/// unready in `CrashLoopBackOff`; on a RayCluster it gets `ReplicaFailure=True` and no `state`.
pub const SIM_FAIL_ANNOTATION: &str = "sim.k8s-real/fail";

/// How a test server behaves. `Config::default()` suits tests: a free port, fast controllers.
#[derive(Debug, Clone)]
pub struct Config {
    /// Port on 127.0.0.1; `None` picks a free one.
    pub port: Option<u16>,
    /// Where to write the kubeconfig; `None` writes one into a fresh temporary directory that is
    /// removed when the server is dropped.
    pub kubeconfig: Option<PathBuf>,
    /// The bearer token with full rights written into the kubeconfig.
    pub token: String,
    /// How often the simulated controllers take a step (each workload needs two or three steps
    /// to become ready).
    pub controller_step: Duration,
    /// How long after its creation a CRD becomes `Established` and served by discovery.
    pub crd_establish_delay: Duration,
    /// Interval of `BOOKMARK` events on watches that ask for them; `None` sends none.
    pub watch_bookmarks: Option<Duration>,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// ConfigMaps the simulated controller-manager publishes into every namespace, as a real
    /// one publishes `kube-root-ca.crt` (add `openshift-service-ca.crt` to look like OpenShift).
    pub published_config_maps: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: None,
            kubeconfig: None,
            token: DEFAULT_TOKEN.to_owned(),
            controller_step: Duration::from_millis(50),
            crd_establish_delay: Duration::from_millis(100),
            watch_bookmarks: Some(Duration::from_secs(1)),
            faults: Vec::new(),
            published_config_maps: vec!["kube-root-ca.crt".to_owned()],
        }
    }
}

/// A fault: requests whose method and path match get a status, a delay, or a dropped connection,
/// `times` times (or always).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FaultRule {
    /// HTTP method (`PATCH`); `None` matches any.
    pub method: Option<String>,
    /// Path pattern where `*` matches any run of characters (`/apis/apps/v1/*/deployments/*`).
    pub path: String,
    /// Answer with this status code and a `Status` body instead of serving the request.
    pub status: Option<u16>,
    /// Wait this many milliseconds first (then serve normally unless `status` or `drop` is set).
    pub delay_ms: Option<u64>,
    /// Wait up to this many milliseconds more, a different pseudo-random amount each request.
    pub jitter_ms: Option<u64>,
    /// Close the connection without an answer.
    pub drop_connection: bool,
    /// How many requests this rule hits before it expires; `None` means forever.
    pub times: Option<u32>,
}

impl FaultRule {
    /// A rule answering `status` to `method path`, `times` times.
    pub fn status(method: &str, path: &str, status: u16, times: u32) -> Self {
        Self {
            method: Some(method.to_owned()),
            path: path.to_owned(),
            status: Some(status),
            times: Some(times),
            ..Self::default()
        }
    }

    /// Latency on every request to `path`, for good: `ms` milliseconds plus up to `jitter_ms`
    /// more. Latency rules add up with each other and with the one fault rule that applies.
    pub fn latency(path: &str, ms: u64, jitter_ms: u64) -> Self {
        Self {
            path: path.to_owned(),
            delay_ms: Some(ms),
            jitter_ms: (jitter_ms > 0).then_some(jitter_ms),
            ..Self::default()
        }
    }

    /// A rule that only slows requests down, for good: no status, no dropped connection, no
    /// count of times. (A delay for a number of times is an ordinary fault rule: the first live
    /// matching one applies.)
    pub fn is_latency(&self) -> bool {
        self.status.is_none() && !self.drop_connection && self.times.is_none()
    }

    /// This rule's delay for one request, `random` choosing the jitter.
    pub fn delay(&self, random: u64) -> Duration {
        let jitter = self
            .jitter_ms
            .filter(|&j| j > 0)
            .map_or(0, |j| random % (j + 1));
        Duration::from_millis(self.delay_ms.unwrap_or(0) + jitter)
    }

    /// Whether the rule covers a request.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && glob(&self.path, path)
    }
}

/// `*` matches any run of characters, including `/`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// An RBAC-style rule: a request is allowed when some rule matches its verb, group, resource
/// (`deployments`, `deployments/status`) and name. `*` matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    /// Empty means every name.
    pub resource_names: Vec<String>,
}

impl PolicyRule {
    /// Everything.
    pub fn allow_all() -> Self {
        Self::new(&["*"], &["*"], &["*"])
    }

    pub fn new(verbs: &[&str], api_groups: &[&str], resources: &[&str]) -> Self {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        Self {
            verbs: v(verbs),
            api_groups: v(api_groups),
            resources: v(resources),
            resource_names: Vec::new(),
        }
    }

    pub fn allows(&self, verb: &str, group: &str, resource: &str, name: &str) -> bool {
        let any = |list: &[String], x: &str| list.iter().any(|i| i == "*" || i == x);
        any(&self.verbs, verb)
            && any(&self.api_groups, group)
            && (any(&self.resources, resource)
                || resource.split_once('/').is_some_and(|(_, sub)| {
                    self.resources.iter().any(|r| *r == format!("*/{sub}"))
                }))
            && (self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name))
    }
}

/// One request the server answered, for tests to assert what was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The raw query string (empty when there is none).
    pub query: String,
    pub content_type: Option<String>,
    /// `dryRun=All` was set.
    pub dry_run: bool,
    /// The `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// The response code; 0 when a fault dropped the connection.
    pub status: u16,
    /// The size of the request's body.
    #[serde(default)]
    pub body_bytes: usize,
    /// When it arrived and when its answer was ready, in microseconds since the server started.
    #[serde(default)]
    pub started_us: u64,
    #[serde(default)]
    pub finished_us: u64,
}

/// The longest chain of requests that waited on each other: each started after the one before
/// it was answered. Under latency, parallel requests overlap and count once; this is the number
/// of round trips a client paid one after another (its critical path).
pub fn critical_path(requests: &[RequestRecord]) -> usize {
    critical_chain(requests).len()
}

/// The requests of [`critical_path`]'s chain, first to last: what to shorten.
pub fn critical_chain(requests: &[RequestRecord]) -> Vec<&RequestRecord> {
    let mut sorted: Vec<&RequestRecord> = requests.iter().collect();
    sorted.sort_by_key(|r| r.started_us);
    // For each request: the length of the longest chain ending in it, and the request before.
    let mut best: Vec<(usize, Option<usize>)> = Vec::with_capacity(sorted.len());
    for (i, request) in sorted.iter().enumerate() {
        let before = (0..i)
            .filter(|&j| sorted[j].finished_us <= request.started_us)
            .max_by_key(|&j| best[j].0);
        best.push((1 + before.map_or(0, |j| best[j].0), before));
    }
    let mut at = (0..sorted.len()).max_by_key(|&i| best[i].0);
    let mut chain = Vec::new();
    while let Some(i) = at {
        chain.push(sorted[i]);
        at = best[i].1;
    }
    chain.reverse();
    chain
}

impl RequestRecord {
    /// Whether the request could change stored state: a POST, PUT, PATCH or DELETE that is not a
    /// dry run and not an access review (reviews are answered, never stored).
    pub fn is_mutating(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
            && !self.dry_run
            && !self.path.contains("/selfsubject")
    }

    /// A query parameter's value, percent-decoded (`labelSelector` -> `app=web`).
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (crate::util::decode(k) == key).then(|| crate::util::decode(v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_fixed_plus_bounded_jitter() {
        let fixed = FaultRule::latency("*", 50, 0);
        assert!(fixed.is_latency());
        assert_eq!(fixed.delay(12345), Duration::from_millis(50));
        let jittered = FaultRule::latency("*", 50, 20);
        let delays: Vec<Duration> = (0..200u64).map(|r| jittered.delay(r * 7919)).collect();
        assert!(delays.iter().all(|d| (50..=70).contains(&d.as_millis())));
        assert!(
            delays
                .iter()
                .any(|d| d.as_millis() != delays[0].as_millis())
        );
        assert!(!FaultRule::status("GET", "*", 500, 1).is_latency());
    }

    #[test]
    fn globs() {
        assert!(glob("/api/v1/*", "/api/v1/namespaces/x"));
        assert!(glob(
            "*/deployments/*",
            "/apis/apps/v1/namespaces/a/deployments/b"
        ));
        assert!(!glob(
            "*/deployments/*",
            "/apis/apps/v1/namespaces/a/statefulsets/b"
        ));
        assert!(glob("/version", "/version"));
        assert!(!glob("/version", "/versions"));
    }

    #[test]
    fn rules() {
        let r = PolicyRule::new(&["get", "list"], &["apps"], &["deployments"]);
        assert!(r.allows("get", "apps", "deployments", "x"));
        assert!(!r.allows("patch", "apps", "deployments", "x"));
        assert!(!r.allows("get", "apps", "deployments/status", "x"));
        assert!(PolicyRule::allow_all().allows("patch", "", "pods/status", ""));
    }
}
