//! What runs on the cluster of a bundle's declared status view: each kind it lists and the pods
//! it counts, each read with one cluster-wide LIST, summed into the states, pods and requests
//! `plane status` shows, per namespace and in total.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::requests::{Requests, pod_requests, quantity};
use super::{Listed, ListedKind, list_all};
use crate::bundle::declared::resource_name;
use crate::bundle::declared::view::ViewKind;
use crate::bundle::{Declared, declared::StatusView};
use crate::kube::client::Cluster;
use crate::kube::object::readiness::{self, Readiness};

/// Everything `status` reads for one view, each kind listed once, concurrently.
#[derive(Debug, Clone)]
pub struct ViewObjects {
    /// One listing per kind of the view, in its order.
    pub kinds: Vec<Listed>,
    /// The view's pods, when it counts pods.
    pub pods: Option<Listed>,
}

/// What a view's kind is listed as.
fn listed_kind(declared: &Declared, kind: &ViewKind) -> ListedKind {
    let plural = declared
        .rule(&kind.api_version, &kind.kind)
        .and_then(|rule| rule.plural.as_deref());
    let resource = resource_name(&kind.api_version, &kind.kind, plural);
    ListedKind {
        api_version: kind.api_version.clone(),
        kind: kind.kind.clone(),
        resource,
        selector: None,
    }
}

/// Lists every kind of the view and its pods, all at once.
pub async fn list_view(cluster: &Cluster, declared: &Declared, view: &StatusView) -> ViewObjects {
    let kinds = futures::future::join_all(
        view.kinds
            .iter()
            .map(|kind| list_all(cluster, listed_kind(declared, kind))),
    );
    let pods = async {
        match &view.pods {
            Some(pods) => Some(
                list_all(
                    cluster,
                    ListedKind {
                        api_version: "v1".into(),
                        kind: "Pod".into(),
                        resource: "pods".into(),
                        selector: Some(pods.selector.clone()),
                    },
                )
                .await,
            ),
            None => None,
        }
    };
    let (kinds, pods) = futures::join!(kinds, pods);
    ViewObjects { kinds, pods }
}

/// Where an object's requests were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestsFrom {
    /// Summed from its pods' containers.
    Pods,
    /// What its status says its pods want (no pod visible).
    Status,
    /// Neither is known.
    None,
}

impl RequestsFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pods => "pods",
            Self::Status => "status",
            Self::None => "none",
        }
    }
}

/// One condition of an object, as its status has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.kind, self.status)?;
        if !self.reason.is_empty() {
            write!(f, " ({})", self.reason)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

fn conditions(object: &Value) -> Vec<Condition> {
    let text = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Condition {
            kind: text(c, "type"),
            status: text(c, "status"),
            reason: text(c, "reason"),
            message: text(c, "message"),
        })
        .collect()
}

/// The pods of one object: how many in each role, and what they request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodTally {
    pub roles: BTreeMap<String, u64>,
    pub requests: Requests,
}

/// One object as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub namespace: String,
    pub name: String,
    /// By its readiness rule; `None` for a kind counted by declared states.
    pub ready: Option<bool>,
    /// `ready`, `progressing` or `failed`, or its declared state.
    pub state: String,
    /// What it waits for, or why it failed; `None` when ready.
    pub reason: Option<String>,
    pub conditions: Vec<Condition>,
    /// Its declared fields.
    pub fields: BTreeMap<String, Value>,
    /// Its declared columns' text.
    pub columns: Vec<String>,
    /// For the kind that owns the pods: its pods (`None` when pods could not be listed), and
    /// what they request.
    pub pods: Option<Option<PodTally>>,
    pub requests: Requests,
    pub requests_from: RequestsFrom,
}

/// Counts of a kind's objects in one namespace (or all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    Ready {
        ready: u64,
        not_ready: u64,
    },
    /// By declared state, every state listed.
    States(BTreeMap<String, u64>),
}

/// A view in one namespace, or in all. A count is `None` when its kind could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// By kind key.
    pub counts: BTreeMap<String, Option<Count>>,
    /// Pods by role, when the view counts pods.
    pub pods: BTreeMap<String, Option<u64>>,
    /// The requests of the pod-owning kind's objects (each from its pods or else its status),
    /// when the view has such a kind.
    pub requests: Option<Option<Requests>>,
}

/// A view's summary: every object's state, and tallies per namespace and in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSummary {
    pub view: StatusView,
    /// One list per kind of the view, `None` when it could not be listed.
    pub kinds: Vec<Option<Vec<ObjectState>>>,
    pub namespaces: BTreeMap<String, Tally>,
    pub total: Tally,
}

fn meta(object: &Value, field: &str) -> String {
    object["metadata"][field]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Pods by (namespace, owner).
type PodsByOwner = BTreeMap<(String, String), PodTally>;

/// Sums what was listed. Pure: every input is already read.
pub fn summarize(view: &StatusView, declared: &Declared, objects: &ViewObjects) -> ViewSummary {
    let pods = objects.pods.as_ref().and_then(Listed::objects);
    let mut by_owner: PodsByOwner = BTreeMap::new();
    if let Some(count) = &view.pods {
        for pod in pods.unwrap_or_default() {
            let phase = pod["status"]["phase"].as_str().unwrap_or_default();
            if matches!(phase, "Succeeded" | "Failed") {
                continue;
            }
            let Some(owner) = pod["metadata"]["labels"][&count.owner].as_str() else {
                continue;
            };
            let Ok(role) = count.role.text_of(pod, &[]) else {
                continue;
            };
            let entry = by_owner
                .entry((meta(pod, "namespace"), owner.to_owned()))
                .or_default();
            if count.roles.contains(&role) {
                *entry.roles.entry(role).or_default() += 1;
            }
            entry.requests += pod_requests(pod);
        }
    }
    let pods_known = pods.is_some();
    let kinds: Vec<Option<Vec<ObjectState>>> = view
        .kinds
        .iter()
        .zip(&objects.kinds)
        .map(|(kind, listed)| {
            listed.objects().map(|list| {
                list.iter()
                    .map(|o| object_state(kind, declared, o, pods_known, &by_owner))
                    .collect()
            })
        })
        .collect();

    let mut names: BTreeSet<String> = BTreeSet::new();
    for list in kinds.iter().flatten() {
        names.extend(list.iter().map(|o| o.namespace.clone()));
    }
    names.extend(by_owner.keys().map(|(ns, _)| ns.clone()));
    let pods_by_owner = pods_known.then_some(&by_owner);
    let namespaces = names
        .into_iter()
        .map(|ns| {
            let tally = tally(view, &kinds, pods_by_owner, Some(&ns));
            (ns, tally)
        })
        .collect();
    let total = tally(view, &kinds, pods_by_owner, None);
    ViewSummary {
        view: view.clone(),
        kinds,
        namespaces,
        total,
    }
}

fn object_state(
    kind: &ViewKind,
    declared: &Declared,
    object: &Value,
    pods_known: bool,
    by_owner: &PodsByOwner,
) -> ObjectState {
    let (namespace, name) = (meta(object, "namespace"), meta(object, "name"));
    let rule = declared.rule(&kind.api_version, &kind.kind);
    let bindings = rule.map(|r| r.bindings.as_slice()).unwrap_or_default();
    let (ready, state, reason) = if kind.states.is_empty() {
        match readiness::evaluate(object, declared) {
            Readiness::Ready => (Some(true), "ready".to_owned(), None),
            Readiness::Progressing(why) => (Some(false), "progressing".to_owned(), Some(why)),
            Readiness::Failed(why) => (Some(false), "failed".to_owned(), Some(why)),
        }
    } else {
        let matched = kind.states.iter().find(|s| {
            s.when
                .as_ref()
                .is_some_and(|when| when.is_true(object, bindings) == Ok(true))
        });
        let state = matched
            .or_else(|| kind.states.iter().find(|s| s.when.is_none()))
            .map_or_else(|| "unknown".to_owned(), |s| s.name.clone());
        (None, state, None)
    };
    let fields = kind
        .fields
        .iter()
        .map(|(field, expression)| {
            let value = expression.json_of(object, bindings).unwrap_or(Value::Null);
            (field.clone(), value)
        })
        .collect();
    let columns = kind
        .columns
        .iter()
        .map(|c| {
            c.value
                .text_of(object, bindings)
                .unwrap_or_else(|_| "-".to_owned())
        })
        .collect();
    let (pods, requests, requests_from) = if kind.owns_pods {
        let seen = by_owner.get(&(namespace.clone(), name.clone()));
        let (requests, from) = match (seen, status_requests(kind, object, bindings)) {
            (Some(pods), _) => (pods.requests, RequestsFrom::Pods),
            (None, Some(wanted)) => (wanted, RequestsFrom::Status),
            (None, None) => (Requests::default(), RequestsFrom::None),
        };
        let tally = pods_known.then(|| seen.cloned().unwrap_or_default());
        (Some(tally), requests, from)
    } else {
        (None, Requests::default(), RequestsFrom::None)
    };
    ObjectState {
        ready,
        state,
        reason,
        conditions: conditions(object),
        fields,
        columns,
        pods,
        requests,
        requests_from,
        namespace,
        name,
    }
}

/// What an object's status says its pods want, when it says anything that parses.
fn status_requests(
    kind: &ViewKind,
    object: &Value,
    bindings: &crate::cel::Bindings,
) -> Option<Requests> {
    let declared = kind.requests.as_ref()?;
    let field = |expression: Option<&crate::cel::Expression>, scale: i64| {
        let text = expression?.text_of(object, bindings).ok()?;
        quantity(&text, scale)
    };
    let cpu = field(declared.cpu.as_ref(), 1000);
    let memory = field(declared.memory.as_ref(), 1);
    let gpu = field(declared.gpu.as_ref(), 1);
    (cpu.is_some() || memory.is_some() || gpu.is_some()).then(|| Requests {
        cpu_millis: cpu.unwrap_or(0),
        memory_bytes: memory.unwrap_or(0),
        gpu: gpu.unwrap_or(0),
    })
}

fn tally(
    view: &StatusView,
    kinds: &[Option<Vec<ObjectState>>],
    pods: Option<&PodsByOwner>,
    namespace: Option<&str>,
) -> Tally {
    let here = |ns: &str| namespace.is_none_or(|n| n == ns);
    let mut counts = BTreeMap::new();
    let mut requests = None;
    for (kind, list) in view.kinds.iter().zip(kinds) {
        let list_here: Option<Vec<&ObjectState>> = list
            .as_ref()
            .map(|l| l.iter().filter(|o| here(&o.namespace)).collect());
        let count = list_here.as_ref().map(|list| {
            if kind.states.is_empty() {
                Count::Ready {
                    ready: list.iter().filter(|o| o.ready == Some(true)).count() as u64,
                    not_ready: list.iter().filter(|o| o.ready != Some(true)).count() as u64,
                }
            } else {
                let mut states: BTreeMap<String, u64> =
                    kind.states.iter().map(|s| (s.name.clone(), 0)).collect();
                for object in list {
                    *states.entry(object.state.clone()).or_default() += 1;
                }
                Count::States(states)
            }
        });
        if kind.owns_pods {
            // Requests are per object (pods or, without pods, status), so they need the objects.
            requests = Some(list_here.as_ref().map(|list| {
                let mut sum = Requests::default();
                for object in list {
                    sum += object.requests;
                }
                sum
            }));
        }
        counts.insert(kind.key.clone(), count);
    }
    let pods_here: Option<Vec<&PodTally>> = pods.map(|map| {
        map.iter()
            .filter(|((ns, _), _)| here(ns))
            .map(|(_, v)| v)
            .collect()
    });
    let pods = view
        .pods
        .iter()
        .flat_map(|p| p.roles.iter())
        .map(|role| {
            let count = pods_here.as_ref().map(|p| {
                p.iter()
                    .map(|t| t.roles.get(role).copied().unwrap_or(0))
                    .sum()
            });
            (role.clone(), count)
        })
        .collect();
    Tally {
        counts,
        pods,
        requests,
    }
}

/// `headPods`: a role's pod count in JSON.
pub fn pods_key(role: &str) -> String {
    format!("{role}Pods")
}

impl ObjectState {
    /// The object in `status -o json`: its name, state and declared fields; for the kind that
    /// owns the pods, its pods per role and requests.
    pub fn to_json(&self, kind: &ViewKind, roles: &[String]) -> Value {
        let mut out = Map::new();
        out.insert("namespace".into(), json!(self.namespace));
        out.insert("name".into(), json!(self.name));
        match self.ready {
            Some(ready) => {
                out.insert("ready".into(), json!(ready));
                if kind.table.is_some() {
                    out.insert("state".into(), json!(self.state));
                    out.insert("reason".into(), json!(self.reason));
                    out.insert("conditions".into(), json!(self.conditions));
                }
            }
            None => {
                out.insert("state".into(), json!(self.state));
            }
        }
        for (field, value) in &self.fields {
            out.insert(field.clone(), value.clone());
        }
        if self.pods.is_some() {
            for role in roles {
                out.insert(pods_key(role), json!(self.pods_of(role)));
            }
            out.insert("requests".into(), json!(self.requests));
            out.insert("requestsFrom".into(), json!(self.requests_from));
        }
        Value::Object(out)
    }

    /// How many pods of `role` it has; `None` when pods could not be listed.
    pub fn pods_of(&self, role: &str) -> Option<u64> {
        self.pods
            .as_ref()?
            .as_ref()
            .map(|t| t.roles.get(role).copied().unwrap_or(0))
    }
}

impl Tally {
    /// The tally in `status -o json`: each kind's count, pods per role and requests.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (key, count) in &self.counts {
            let value = match count {
                None => Value::Null,
                Some(Count::Ready { ready, not_ready }) => {
                    json!({"ready": ready, "notReady": not_ready})
                }
                Some(Count::States(states)) => json!(states),
            };
            out.insert(key.clone(), value);
        }
        for (role, count) in &self.pods {
            out.insert(pods_key(role), json!(count));
        }
        if let Some(requests) = &self.requests {
            out.insert("requests".into(), json!(requests));
        }
        Value::Object(out)
    }
}
