//! The status view a bundle declares (addon.yaml `status:`): the custom kinds `plane status`
//! lists and sums across the cluster, the pods it counts for them, the release's parts it
//! points at, and the Prometheus queries of their usage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Declared;
use crate::cel::Expression;
use crate::error::Problem;
use crate::values::ValuesPath;

/// Top-level keys of `status -o json` a view may not take.
const RESERVED: &[&str] = &["releases", "usage", "missing", "errors"];

/// Keys of an object in `status -o json` that plane writes, which a declared field may not take.
const FIELDS: &[&str] = &[
    "namespace",
    "name",
    "ready",
    "state",
    "reason",
    "conditions",
    "requests",
    "requestsFrom",
    "usage",
];

/// One bundle's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusView {
    /// Its key in `status -o json`.
    pub name: String,
    /// The kinds it lists across the cluster, in the order it shows them.
    pub kinds: Vec<ViewKind>,
    /// The pods it counts, for the kind that `ownsPods`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodCount>,
    /// The release's parts it shows, found among the release's objects by label.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// What the pods of each object use, from a Prometheus the release runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// A kind the view lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ViewKind {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    /// Its list's key in `status -o json` (`widgets`).
    pub key: String,
    /// Its column in the per-namespace table, and its heading (`WIDGETS`).
    pub title: String,
    /// Shown in a table of its own, one row per object, under this name column (`WIDGET`), and
    /// the objects that are not ready listed with their conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The view's pods belong to its objects: each row counts them and sums their requests.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub owns_pods: bool,
    /// Values of each object in `-o json`, by name: JSON, `null` when absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Expression>,
    /// Columns of its own table, after its state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<Column>,
    /// Its objects counted by state (the first whose `when` holds; one without `when` takes the
    /// rest) instead of ready or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub states: Vec<State>,
    /// What an object requests when none of its pods is seen (Kubernetes quantities as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Requests>,
}

/// A column: its header and the text of each row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub header: String,
    pub value: Expression,
}

/// A state objects are counted in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Expression>,
}

/// Quantities an object's status gives for its pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Expression>,
}

/// The pods a view counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodCount {
    /// Listed across the cluster with this label selector.
    pub selector: String,
    /// The label naming the object (of the kind that `ownsPods`) a pod belongs to.
    pub owner: String,
    /// The role of a pod, as text (`'head'`, `'worker'`): counted per role.
    pub role: Expression,
    /// The roles, in the order columns show them.
    pub roles: Vec<String>,
}

/// A part of a release: an object of its, found by label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub name: String,
    pub kind: PartKind,
    pub selector: String,
    /// What a Deployment part runs, for the line `status` writes (`Widget operator v1.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// The kinds a part may be, each shown its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartKind {
    /// Its URL, from its first rule's host and path.
    Ingress,
    /// Its address inside the cluster.
    Service,
    /// Its image, version (the image tag) and replicas.
    Deployment,
}

impl PartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "Ingress",
            Self::Service => "Service",
            Self::Deployment => "Deployment",
        }
    }
}

/// Usage per object from Prometheus instant queries, each summed by the labels that name the
/// object: the CPU cores, memory bytes and GPUs its pods use now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// The part that is the Prometheus Service to ask.
    pub part: String,
    /// The series labels holding an object's namespace and name.
    pub labels: [String; 2],
    pub cpu: String,
    pub memory: String,
    pub gpu: String,
}

impl StatusView {
    /// The kind whose objects own the view's pods.
    pub fn pod_owner(&self) -> Option<&ViewKind> {
        self.kinds.iter().find(|k| k.owns_pods)
    }

    /// The part Prometheus is, when usage is declared.
    pub fn prometheus_part(&self) -> Option<&str> {
        self.usage.as_ref().map(|u| u.part.as_str())
    }

    pub(super) fn check(
        &self,
        declared: &Declared,
        at: &dyn Fn(&ValuesPath) -> String,
    ) -> Vec<Problem> {
        let root = ValuesPath::root().key("status");
        let mut problems = Vec::new();
        let word = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_alphanumeric())
        };
        if !word(&self.name) || RESERVED.contains(&self.name.as_str()) {
            problems.push(
                Problem::new(format!(
                    "status: the view name `{}` cannot be a key of `status -o json`",
                    self.name
                ))
                .at(at(&root.key("name")))
                .hint(format!(
                    "a lower-case word of letters and digits other than {}",
                    RESERVED.join(", ")
                )),
            );
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            let here = root.key("kinds").index(i);
            if !word(&kind.key) || self.kinds[..i].iter().any(|k| k.key == kind.key) {
                problems.push(
                    Problem::new(format!(
                        "status: `{}` is not a unique lower-case word",
                        kind.key
                    ))
                    .at(at(&here.key("key")))
                    .hint("each kind's key names its list in `status -o json`"),
                );
            }
            if declared.rule(&kind.api_version, &kind.kind).is_none()
                && crate::kinds::BUILTIN_GROUPS.contains(&super::group_of(&kind.api_version))
            {
                problems.push(
                    Problem::new(format!("status: {} is a Kubernetes kind", kind.kind))
                        .at(at(&here.key("kind")))
                        .hint("a view lists the bundle's custom kinds"),
                );
            }
            for field in kind.fields.keys() {
                let taken = FIELDS.contains(&field.as_str())
                    || self
                        .pods
                        .as_ref()
                        .is_some_and(|p| p.roles.iter().any(|r| format!("{r}Pods") == *field));
                if taken {
                    problems.push(
                        Problem::new(format!(
                            "status: {} field `{field}` is one plane writes",
                            kind.kind
                        ))
                        .at(at(&here.key("fields").key(field)))
                        .hint(format!(
                            "name it otherwise; plane writes {}",
                            FIELDS.join(", ")
                        )),
                    );
                }
            }
            if kind.owns_pods && self.pods.is_none() {
                problems.push(
                    Problem::new(format!(
                        "status: {} owns pods, but the view counts none",
                        kind.kind
                    ))
                    .at(at(&here.key("ownsPods")))
                    .hint("declare status.pods: the selector, owner label and roles of the pods"),
                );
            }
            if kind.states.iter().filter(|s| s.when.is_none()).count() > 1 {
                problems.push(
                    Problem::new(format!(
                        "status: {} has more than one state without `when`",
                        kind.kind
                    ))
                    .at(at(&here.key("states")))
                    .hint("one state may take the objects no other `when` holds for"),
                );
            }
        }
        if self.kinds.iter().filter(|k| k.owns_pods).count() > 1 {
            problems.push(
                Problem::new("status: more than one kind owns the view's pods")
                    .at(at(&root.key("kinds")))
                    .hint("the owner label names objects of one kind"),
            );
        }
        if let Some(pods) = &self.pods {
            let here = root.key("pods");
            if let Err(why) = crate::k8s_validation::label_selector(&pods.selector) {
                problems.push(
                    Problem::new("status: the pods' label selector is invalid")
                        .at(at(&here.key("selector")))
                        .because(format!("`{}`: {why}", pods.selector))
                        .hint("write key=value, key!=value, key in (a,b), key or !key, joined by commas"),
                );
            }
            if pods.roles.is_empty() || pods.roles.iter().any(|r| !word(r)) {
                problems.push(
                    Problem::new("status: the pods' roles must be lower-case words, at least one")
                        .at(at(&here.key("roles"))),
                );
            }
            if self.pod_owner().is_none() {
                problems.push(
                    Problem::new("status: the view counts pods, but no kind owns them")
                        .at(at(&here))
                        .hint("set ownsPods: true on the kind the owner label names"),
                );
            }
        }
        for (i, part) in self.parts.iter().enumerate() {
            let here = root.key("parts").index(i);
            let checked = crate::k8s_validation::label_selector(&part.selector).and_then(|()| {
                if part.selector.contains('(') {
                    Err("set-based terms (`in`, `notin`) are not supported here".to_owned())
                } else {
                    Ok(())
                }
            });
            if let Err(why) = checked {
                problems.push(
                    Problem::new(format!(
                        "status: part `{}` has an invalid label selector",
                        part.name
                    ))
                    .at(at(&here.key("selector")))
                    .because(format!("`{}`: {why}", part.selector))
                    .hint("write key=value, key!=value, key or !key, joined by commas"),
                );
            }
            if !word(&part.name) || self.parts[..i].iter().any(|p| p.name == part.name) {
                problems.push(
                    Problem::new(format!(
                        "status: part name `{}` is not a unique lower-case word",
                        part.name
                    ))
                    .at(at(&here.key("name"))),
                );
            }
        }
        if let Some(usage) = &self.usage {
            let service = self
                .parts
                .iter()
                .any(|p| p.name == usage.part && p.kind == PartKind::Service);
            if !service {
                problems.push(
                    Problem::new(format!(
                        "status: usage is asked of part `{}`, which is not a Service part",
                        usage.part
                    ))
                    .at(at(&root.key("usage").key("part")))
                    .hint("name a part of kind Service: the Prometheus to query"),
                );
            }
            if self.pod_owner().is_none() {
                problems.push(
                    Problem::new("status: usage is declared, but no kind owns pods to show it for")
                        .at(at(&root.key("usage"))),
                );
            }
        }
        problems
    }
}
