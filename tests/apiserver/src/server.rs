//! The HTTP side: accepting connections, the request log, fault injection, bearer-token
//! authorization, routing Kubernetes paths to discovery and the verbs, watches, and the admin
//! endpoints under `/_admin/`.

use crate::config::{Config, FaultRule, PolicyRule, RequestRecord};
use crate::controllers::Controllers;
use crate::error::ApiError;
use crate::ops::{self, DeleteParams, Target, WriteParams};
use crate::resources::{self, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Event, Store};
use crate::util::{self, decode, get_str};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};

/// Everything a request handler can reach.
pub struct State {
    pub store: Store,
    pub config: Config,
    log: Mutex<Vec<RequestRecord>>,
    faults: Mutex<Vec<FaultRule>>,
    tokens: Mutex<HashMap<String, Vec<PolicyRule>>>,
    /// The state of the latency jitter's pseudo-random numbers.
    random: AtomicU64,
    /// When the server started: requests' times count from it.
    epoch: std::time::Instant,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    pub fn new(config: Config, seed: u64) -> Self {
        let mut tokens = HashMap::new();
        tokens.insert(config.token.clone(), vec![PolicyRule::allow_all()]);
        Self {
            store: Store::new(seed),
            faults: Mutex::new(config.faults.clone()),
            config,
            log: Mutex::new(Vec::new()),
            tokens: Mutex::new(tokens),
            random: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            epoch: std::time::Instant::now(),
        }
    }

    /// Microseconds since the server started.
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Logs an answered request, stamped with when its answer was ready.
    fn log(&self, mut record: RequestRecord) {
        record.finished_us = self.now_us();
        locked(&self.log).push(record);
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        locked(&self.log).clone()
    }

    pub fn clear_requests(&self) {
        locked(&self.log).clear();
    }

    pub fn add_fault(&self, rule: FaultRule) {
        locked(&self.faults).push(rule);
    }

    pub fn clear_faults(&self) {
        locked(&self.faults).clear();
    }

    pub fn set_token_rules(&self, token: &str, rules: Vec<PolicyRule>) {
        locked(&self.tokens).insert(token.to_owned(), rules);
    }

    /// What the rules do to a request: the delays of every latency rule matching it (see
    /// [`FaultRule::is_latency`]), and the first other live rule matching it, used up by one.
    fn take_fault(&self, method: &str, path: &str) -> (Duration, Option<FaultRule>) {
        let mut faults = locked(&self.faults);
        let mut delay = Duration::ZERO;
        let mut fault = None;
        let mut applied = Vec::new();
        for (idx, rule) in faults.iter().enumerate() {
            if !rule.matches(method, path) {
                continue;
            }
            if rule.is_latency() {
                delay += rule.delay(self.next_random());
            } else if fault.is_none() {
                fault = Some(rule.clone());
            } else {
                continue;
            }
            applied.push(idx);
        }
        for idx in applied.into_iter().rev() {
            if let Some(n) = faults[idx].times.as_mut() {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    faults.remove(idx);
                }
            }
        }
        (delay, fault)
    }

    /// A pseudo-random number (xorshift), for latency jitter: varied, and the same on every run.
    fn next_random(&self) -> u64 {
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        x
    }
}

/// A response body: a whole JSON document, or the lines of a watch.
pub enum Body {
    Full(Full<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Full(f) => Pin::new(f).poll_frame(cx),
            Self::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }
}

/// Returned by the service to make hyper close the connection without answering.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by a fault rule")]
pub struct Dropped;

/// Accepts connections until `shutdown` turns true; the controllers run alongside.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let controllers_state = state.clone();
    tokio::spawn(async move {
        let mut controllers =
            Controllers::new(controllers_state.config.published_config_maps.clone());
        let mut tick = tokio::time::interval(controllers_state.config.controller_step);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut inner = controllers_state.store.lock();
            controllers.step(&mut inner, controllers_state.config.crd_establish_delay);
        }
    });
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let svc = service_fn(move |req| handle(state.clone(), req));
                    // Errors here are clients going away or dropped-connection faults.
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(Body::Full(Full::new(Bytes::from(bytes))))
        .expect("static response parts are valid")
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code(), &e.to_status())
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// What one request carries, parsed once.
struct Req {
    method: String,
    path: String,
    query: HashMap<String, String>,
    content_type: String,
    accept: String,
    rules: Vec<PolicyRule>,
    user_agent: String,
    body: Bytes,
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let started_us = state.now_us();
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let accept = header("accept").unwrap_or_default();
    let auth = header("authorization");
    let user_agent = header("user-agent").unwrap_or_default();
    let body = match req.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    if let Some(rest) = path.strip_prefix("/_admin/") {
        return Ok(admin(&state, &method, rest, &body));
    }
    let query = parse_query(&raw_query);
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All")
        || (method == "DELETE"
            && serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| b.get("dryRun").cloned())
                .and_then(|d| d.as_array().cloned())
                .is_some_and(|d| d.iter().any(|x| x == "All")));
    let mut record = RequestRecord {
        method: method.clone(),
        path: path.clone(),
        query: raw_query,
        content_type: content_type.clone(),
        dry_run,
        field_manager: query.get("fieldManager").cloned(),
        status: 0,
        body_bytes: body.len(),
        started_us,
        finished_us: 0,
    };
    let (delay, fault) = state.take_fault(&method, &path);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(rule) = fault {
        if let Some(ms) = rule.delay_ms {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if rule.drop_connection {
            state.log(record);
            return Err(Dropped);
        }
        if let Some(code) = rule.status {
            let resp = error_response(&ApiError::Injected {
                code,
                message: format!("injected fault: {code} for {method} {path}"),
            });
            record.status = code;
            state.log(record);
            return Ok(resp);
        }
    }
    if content_type
        .as_deref()
        .is_some_and(|c| c.contains("protobuf"))
    {
        // Protobuf needs every kind's schema compiled in; clients retry with JSON on 415.
        let resp = error_response(&ApiError::UnsupportedMediaType {
            message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml".to_owned(),
        });
        record.status = 415;
        state.log(record);
        return Ok(resp);
    }
    let token = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim);
    let rules = token.and_then(|t| locked(&state.tokens).get(t).cloned());
    let resp = match rules {
        None => error_response(&ApiError::Unauthorized),
        Some(rules) => {
            let r = Req {
                method,
                path,
                query,
                content_type: content_type.unwrap_or_default(),
                accept,
                rules,
                user_agent,
                body,
            };
            route(&state, &r).unwrap_or_else(|e| error_response(&e))
        }
    };
    record.status = resp.status().as_u16();
    state.log(record);
    Ok(resp)
}

fn admin(state: &State, method: &str, rest: &str, body: &[u8]) -> Response<Body> {
    let bad = |m: String| error_response(&ApiError::bad_request(m));
    match (method, rest) {
        ("GET", "requests") => json_response(200, &json!(state.requests())),
        ("DELETE", "requests") => {
            state.clear_requests();
            json_response(200, &json!({}))
        }
        ("GET", "faults") => json_response(200, &json!(*locked(&state.faults))),
        ("POST", "faults") => match serde_json::from_slice::<FaultRule>(body) {
            Ok(rule) => {
                state.add_fault(rule);
                json_response(201, &json!({}))
            }
            Err(e) => bad(format!("invalid fault rule: {e}")),
        },
        ("DELETE", "faults") => {
            state.clear_faults();
            json_response(200, &json!({}))
        }
        ("PUT", tokens) if tokens.starts_with("tokens/") => {
            match serde_json::from_slice::<Vec<PolicyRule>>(body) {
                Ok(rules) => {
                    state.set_token_rules(&tokens["tokens/".len()..], rules);
                    json_response(200, &json!({}))
                }
                Err(e) => bad(format!("invalid rules: {e}")),
            }
        }
        _ => error_response(&ApiError::no_route()),
    }
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "35", "gitVersion": "v1.35.0-plane-test", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0",
        "compiler": "gc", "platform": "linux/amd64"
    })
}

fn route(state: &State, r: &Req) -> Result<Response<Body>, ApiError> {
    let segs: Vec<&str> = r
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let discovery = |v: Option<Value>| {
        v.map(|v| json_response(200, &v))
            .ok_or_else(ApiError::no_route)
    };
    match segs.as_slice() {
        ["version"] => return Ok(json_response(200, &version())),
        ["healthz" | "livez" | "readyz"] => {
            return Ok(Response::new(Body::Full(Full::new(Bytes::from_static(
                b"ok",
            )))));
        }
        ["api" | "apis"] if r.accept.contains(resources::AGGREGATED_DISCOVERY) => {
            let all =
                resources::aggregated_discovery(&state.store.lock().types(), segs[0] == "api");
            let mut response = json_response(200, &all);
            response.headers_mut().insert(
                "Content-Type",
                hyper::header::HeaderValue::from_static(resources::AGGREGATED_DISCOVERY),
            );
            return Ok(response);
        }
        ["api"] => return Ok(json_response(200, &resources::api_versions())),
        ["api", v] => {
            return discovery(resources::api_resource_list(
                &state.store.lock().types(),
                "",
                v,
            ));
        }
        ["apis"] => {
            return Ok(json_response(
                200,
                &resources::api_group_list(&state.store.lock().types()),
            ));
        }
        ["apis", g] => return discovery(resources::api_group(&state.store.lock().types(), g)),
        ["apis", g, v] => {
            return discovery(resources::api_resource_list(
                &state.store.lock().types(),
                g,
                v,
            ));
        }
        ["openapi", "v3"] => {
            return Ok(json_response(
                200,
                &resources::openapi_v3_root(&state.store.lock().types()),
            ));
        }
        ["openapi", "v3", "api", v] => {
            return discovery(resources::openapi_v3_group_version(
                &state.store.lock().types(),
                "",
                v,
            ));
        }
        ["openapi", "v3", "apis", g, v] => {
            return discovery(resources::openapi_v3_group_version(
                &state.store.lock().types(),
                g,
                v,
            ));
        }
        _ => {}
    }
    if let [
        "api",
        "v1",
        "namespaces",
        ns,
        "services",
        service,
        "proxy",
        path @ ..,
    ] = segs.as_slice()
    {
        return crate::proxy::service(state, &r.rules, ns, service, path, &r.query)
            .map(|v| json_response(200, &v));
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Err(ApiError::no_route()),
    };
    let (namespace, resource, name, sub) = match rest {
        ["namespaces", ns, res, tail @ ..] if !matches!(*res, "status" | "finalize") => {
            (Some(*ns), *res, tail.first().copied(), tail.get(1).copied())
        }
        [res, tail @ ..] => (None, *res, tail.first().copied(), tail.get(1).copied()),
        [] => return Err(ApiError::no_route()),
    };
    let rt = state
        .store
        .lock()
        .types()
        .into_iter()
        .find(|t| t.group == group && t.version == version && t.plural == resource)
        .ok_or_else(ApiError::no_route)?;
    if (rt.namespaced && namespace.is_none() && name.is_some())
        || (!rt.namespaced && namespace.is_some())
        || sub.is_some_and(|s| {
            !((s == "status" && rt.status_subresource)
                || (s == "finalize" && rt.kind == "Namespace"))
        })
    {
        return Err(ApiError::no_route());
    }
    let t = Target {
        rt,
        namespace: namespace.map(str::to_owned),
        name: name.map(str::to_owned),
        sub: sub.map(str::to_owned),
    };
    let watching = r
        .query
        .get("watch")
        .is_some_and(|w| w == "true" || w == "1");
    let verb = match (r.method.as_str(), t.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => {
            return Err(ApiError::MethodNotAllowed {
                message: format!(
                    "the server does not allow this method on the requested resource: {} {}",
                    r.method, r.path
                ),
            });
        }
    };
    authorize(r, &t, verb)?;
    if t.rt.create_only {
        return review(r, &t);
    }
    let params = WriteParams {
        dry_run: r.query.get("dryRun").is_some_and(|v| v == "All"),
        field_manager: r.query.get("fieldManager").cloned(),
        default_manager: r
            .user_agent
            .split('/')
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or("unknown")
            .to_owned(),
        force: r.query.get("force").is_some_and(|v| v == "true"),
        strict: r
            .query
            .get("fieldValidation")
            .is_some_and(|v| v == "Strict"),
    };
    let table = r.accept.contains("as=Table");
    match verb {
        "get" => {
            let obj = ops::get(&state.store.lock(), &t)?;
            if table {
                return Ok(json_response(200, &to_table(&t.rt, &[obj], None)));
            }
            Ok(json_response(200, &obj))
        }
        "list" => {
            let (labels, fields) = selectors(&r.query)?;
            let (items, rv) = ops::list(&state.store.lock(), &t, &labels, &fields);
            if table {
                return Ok(json_response(200, &to_table(&t.rt, &items, Some(rv))));
            }
            Ok(json_response(200, &list_body(&t.rt, items, rv)))
        }
        "watch" => watch(state, &t, &r.query),
        "create" => ops::create(&mut state.store.lock(), &t, &r.body, &params)
            .map(|(c, v)| json_response(c, &v)),
        "update" => ops::update(&mut state.store.lock(), &t, &r.body, &params)
            .map(|(c, v)| json_response(c, &v)),
        "patch" => ops::patch(
            &mut state.store.lock(),
            &t,
            &r.content_type,
            &r.body,
            &params,
        )
        .map(|(c, v)| json_response(c, &v)),
        "delete" => {
            let d = delete_params(r);
            ops::delete(&mut state.store.lock(), &t, &d).map(|v| json_response(200, &v))
        }
        _ => {
            let d = delete_params(r);
            let (labels, fields) = selectors(&r.query)?;
            let mut inner = state.store.lock();
            let (items, rv) = ops::list(&inner, &t, &labels, &fields);
            let mut deleted = Vec::new();
            for item in items {
                let one = Target {
                    name: get_str(&item, &["metadata", "name"]).map(str::to_owned),
                    ..t.clone()
                };
                let answer = ops::delete(&mut inner, &one, &d)?;
                deleted.push(if answer["kind"] == "Status" {
                    item
                } else {
                    answer
                });
            }
            Ok(json_response(200, &list_body(&t.rt, deleted, rv)))
        }
    }
}

/// A `<Kind>List` as the real server encodes it: built-in kinds' items carry no `kind` or
/// `apiVersion` (only the list does); custom resources' items keep theirs, and their list's
/// metadata has an empty `continue`.
fn list_body(rt: &ResourceType, mut items: Vec<Value>, rv: u64) -> Value {
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if rt.custom {
        metadata["continue"] = json!("");
    } else {
        for item in &mut items {
            if let Some(m) = item.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
        }
    }
    json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": metadata, "items": items})
}

fn selectors(q: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(q.get("labelSelector").map_or("", String::as_str))?,
        FieldSelector::parse(q.get("fieldSelector").map_or("", String::as_str))?,
    ))
}

fn delete_params(r: &Req) -> DeleteParams {
    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    let dry_body = body["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|x| x == "All"));
    DeleteParams {
        dry_run: dry_body || r.query.get("dryRun").is_some_and(|v| v == "All"),
        propagation: body["propagationPolicy"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| r.query.get("propagationPolicy").cloned()),
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        precondition_rv: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn authorize(r: &Req, t: &Target, verb: &str) -> Result<(), ApiError> {
    let resource = match &t.sub {
        Some(s) => format!("{}/{s}", t.rt.plural),
        None => t.rt.plural.clone(),
    };
    let name = t.name.as_deref().unwrap_or("");
    if t.rt.create_only
        || r.rules
            .iter()
            .any(|rule| rule.allows(verb, &t.rt.group, &resource, name))
    {
        return Ok(());
    }
    let what = crate::error::qualified(&t.rt.plural, &t.rt.group);
    let subject = if name.is_empty() {
        what.clone()
    } else {
        format!("{what} \"{name}\"")
    };
    let scope = match &t.namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_owned(),
    };
    Err(ApiError::Forbidden {
        message: format!(
            "{subject} is forbidden: User \"plane-test\" cannot {verb} resource \"{resource}\" in API group \"{}\"{scope}",
            t.rt.group
        ),
        group: t.rt.group.clone(),
        kind: t.rt.plural.clone(),
        name: name.to_owned(),
        causes: Vec::new(),
    })
}

/// SelfSubjectAccessReview and SelfSubjectRulesReview, answered from the caller's rules.
fn review(r: &Req, t: &Target) -> Result<Response<Body>, ApiError> {
    let mut obj = ops::parse_body(&r.body)?;
    obj["apiVersion"] = json!(t.rt.api_version());
    obj["kind"] = json!(t.rt.kind);
    util::metadata_mut(&mut obj).insert("creationTimestamp".to_owned(), Value::Null);
    if t.rt.kind == "SelfSubjectAccessReview" {
        let allowed = if let Some(a) = obj.pointer("/spec/resourceAttributes") {
            let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("");
            let resource = if s("subresource").is_empty() {
                s("resource").to_owned()
            } else {
                format!("{}/{}", s("resource"), s("subresource"))
            };
            r.rules
                .iter()
                .any(|rule| rule.allows(s("verb"), s("group"), &resource, s("name")))
        } else {
            // Non-resource URLs (discovery, /version, ...) are open to everyone here.
            true
        };
        obj["status"] = if allowed {
            json!({"allowed": true, "reason": "allowed by the test server's rules for this token"})
        } else {
            json!({"allowed": false})
        };
    } else {
        let rules: Vec<Value> = r
            .rules
            .iter()
            .map(|rule| {
                let mut v = json!({"verbs": rule.verbs, "apiGroups": rule.api_groups, "resources": rule.resources});
                if !rule.resource_names.is_empty() {
                    v["resourceNames"] = json!(rule.resource_names);
                }
                v
            })
            .collect();
        obj["status"] = json!({
            "resourceRules": rules,
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/version", "/version/"]}],
            "incomplete": false,
        });
    }
    Ok(json_response(201, &obj))
}

/// A `meta.k8s.io/v1` Table, for `kubectl get`.
fn to_table(rt: &ResourceType, items: &[Value], rv: Option<u64>) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}),
    ];
    for (name, kind, _) in &rt.printer_columns {
        let kind = if kind == "date" {
            "string"
        } else {
            kind.as_str()
        };
        columns.push(
            json!({"name": name, "type": kind, "format": "", "description": name, "priority": 0}),
        );
    }
    columns.push(
        json!({"name": "Age", "type": "string", "format": "", "description": "Age", "priority": 0}),
    );
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut cells = vec![item["metadata"]["name"].clone()];
            for (_, kind, path) in &rt.printer_columns {
                let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
                let v = util::get_path(item, &segs).cloned().unwrap_or(Value::Null);
                cells.push(if kind == "date" { json!(util::age(v.as_str().unwrap_or(""))) } else { v });
            }
            cells.push(json!(util::age(get_str(item, &["metadata", "creationTimestamp"]).unwrap_or(""))));
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item["metadata"]}})
        })
        .collect();
    let mut table = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns, "rows": rows});
    if let Some(rv) = rv {
        table["metadata"]["resourceVersion"] = json!(rv.to_string());
    }
    table
}

/// Whether a watch event concerns the watched type, namespace and selectors.
fn event_matches(e: &Event, t: &Target, labels: &LabelSelector, fields: &FieldSelector) -> bool {
    e.key.group == t.rt.group
        && e.key.resource == t.rt.plural
        && t.namespace
            .as_deref()
            .is_none_or(|ns| e.key.namespace == ns)
        && fields.name().is_none_or(|n| e.key.name == n)
        && labels.matches(e.object.pointer("/metadata/labels"))
        && fields.matches(&e.object)
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn watch(
    state: &State,
    t: &Target,
    q: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(q)?;
    let rv: Option<u64> = q
        .get("resourceVersion")
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    let send_initial = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| v == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    // Subscribe before reading the store, so nothing falls between the snapshot and the stream.
    let mut rx = state.store.subscribe();
    let (tx, body_rx) = mpsc::channel::<Bytes>(256);
    let mut first: Vec<Bytes> = Vec::new();
    let start_rv;
    {
        let inner = state.store.lock();
        start_rv = inner.rv;
        if send_initial || rv.is_none_or(|r| r == 0) {
            let (items, _) = ops::list(&inner, t, &labels, &fields);
            first.extend(items.iter().map(|o| line("ADDED", o)));
            if send_initial {
                let bm = json!({"kind": t.rt.kind, "apiVersion": t.rt.api_version(),
                    "metadata": {"resourceVersion": start_rv.to_string(), "annotations": {"k8s.io/initial-events-end": "true"}}});
                first.push(line("BOOKMARK", &bm));
            }
        } else {
            let since = rv.unwrap_or(0);
            let Some(events) = inner.events_since(since) else {
                // Like the real server: 200, one ERROR event with 410, end of stream.
                let gone = ApiError::Gone {
                    message: format!("too old resource version: {since} ({start_rv})"),
                };
                let _ = tx.try_send(line("ERROR", &gone.to_status()));
                return Ok(stream_response(body_rx));
            };
            first.extend(
                events
                    .iter()
                    .filter(|e| event_matches(e, t, &labels, &fields))
                    .map(|e| line(e.kind.as_str(), &with_version(t, &e.object))),
            );
        }
    }
    let bookmark_every = state.config.watch_bookmarks.filter(|_| bookmarks);
    let t = t.clone();
    tokio::spawn(async move {
        for l in first {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark =
            tokio::time::interval(bookmark_every.unwrap_or(Duration::from_secs(3600)));
        bookmark.tick().await;
        let mut last_rv = start_rv;
        loop {
            let out = tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(e) if e.rv > start_rv => {
                        last_rv = e.rv;
                        if !event_matches(&e, &t, &labels, &fields) { continue; }
                        line(e.kind.as_str(), &with_version(&t, &e.object))
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let gone = ApiError::Gone { message: "watch fell behind".to_owned() };
                        let _ = tx.send(line("ERROR", &gone.to_status())).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = bookmark.tick(), if bookmark_every.is_some() => {
                    line("BOOKMARK", &json!({"kind": t.rt.kind, "apiVersion": t.rt.api_version(),
                        "metadata": {"resourceVersion": last_rv.to_string()}}))
                }
                () = &mut deadline => return,
                () = tx.closed() => return,
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    });
    Ok(stream_response(body_rx))
}

fn with_version(t: &Target, obj: &Value) -> Value {
    let mut v = obj.clone();
    v["apiVersion"] = json!(t.rt.api_version());
    v
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    Response::builder()
        .status(200)
        .header("Content-Type", "application/json")
        .body(Body::Stream(rx))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = parse_query("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x");
        assert_eq!(q["labelSelector"], "app=web,tier in (a)");
        assert_eq!(q["watch"], "1");
        assert_eq!(q["x"], "");
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("a%4"), "a%4");
    }
}
