//! What a bundle declares plane must know of its own kinds (addon.yaml `kinds:` and `status:`):
//! how to tell one is ready, which pods it runs, which changes its running workload does not
//! pick up, and how `status` shows them. Recorded with each release, so that `ls` and `status`
//! read it without the bundle.

pub mod view;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cel::Expression;
use crate::error::Problem;
use crate::values::ValuesPath;

pub use view::StatusView;

/// Everything a bundle declares of its kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<KindRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusView>,
}

/// What plane knows of one custom kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindRule {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    /// Its resource name (`widgets`), when it is not the kind in lower case with an `s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plural: Option<String>,
    /// Named values computed from the object before any of its expressions, each able to use the
    /// others (`wanted: "spec.replicas * 2"`).
    #[serde(default, rename = "let", skip_serializing_if = "Bindings::is_empty")]
    pub bindings: Bindings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<ReadinessRule>,
    /// The label selector of the pods an object runs, as text (`'app=' + metadata.name`): their
    /// container states fail `up` fast, and `status` counts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Expression>,
    /// Fields a running object does not act on when they change.
    #[serde(default, rename = "notPickedUp", skip_serializing_if = "Vec::is_empty")]
    pub not_picked_up: Vec<NotPickedUp>,
}

/// When an object of the kind is ready, as Flux's `healthCheckExprs` read it: `inProgress`, then
/// `failed`, then `current`, the first true one decides; none true is in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadinessRule {
    /// Whether a `status.observedGeneration` behind `metadata.generation` means in progress
    /// before any expression is read (Flux does so); `ignore` for an operator that does not
    /// write it on every change.
    #[serde(default, skip_serializing_if = "waits")]
    pub observed_generation: Generation,
    pub current: Expression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Expression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<Expression>,
    /// What it waits for, or why it failed, as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Expression>,
}

/// How readiness reads `status.observedGeneration`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generation {
    #[default]
    Wait,
    Ignore,
}

/// Serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's signature")]
fn waits(generation: &Generation) -> bool {
    *generation == Generation::Wait
}

/// Fields a running object keeps acting on as they were, and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotPickedUp {
    /// Paths into the object: `spec.autoscalerOptions`.
    pub fields: Vec<String>,
    /// Text over the live object: what happens, and how to apply the change.
    pub message: Expression,
}

/// Named expressions, kept in an order where each comes after those it uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bindings(Vec<(String, Expression)>);

impl Bindings {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &crate::cel::Bindings {
        &self.0
    }

    /// The named expressions, each after those it uses.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Expression)> {
        self.0
            .iter()
            .map(|(name, expression)| (name.as_str(), expression))
    }

    /// Orders `named` so that each comes after the names it uses.
    ///
    /// # Errors
    /// A name that is also a field of every object, or names that use each other in a cycle.
    fn ordered(named: BTreeMap<String, Expression>) -> Result<Self, String> {
        for name in named.keys() {
            if matches!(
                name.as_str(),
                "apiVersion" | "kind" | "metadata" | "spec" | "status"
            ) {
                return Err(format!(
                    "`let` may not name `{name}`: it is a field of the object"
                ));
            }
        }
        let mut done: Vec<(String, Expression)> = Vec::new();
        let mut left: BTreeMap<String, Expression> = named;
        while !left.is_empty() {
            let pending: BTreeSet<String> = left.keys().cloned().collect();
            let next = left
                .iter()
                .find(|(_, expression)| {
                    expression
                        .variables()
                        .iter()
                        .all(|used| !pending.contains(used))
                })
                .map(|(name, _)| name.clone());
            let Some(next) = next else {
                return Err(format!(
                    "`let` values use each other in a cycle: {}",
                    pending.into_iter().collect::<Vec<_>>().join(", ")
                ));
            };
            let expression = left.remove(&next).unwrap_or_else(|| unreachable!());
            done.push((next, expression));
        }
        Ok(Self(done))
    }
}

impl Serialize for Bindings {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&str, &Expression> =
            self.0.iter().map(|(n, e)| (n.as_str(), e)).collect();
        map.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Bindings {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let named = BTreeMap::<String, Expression>::deserialize(deserializer)?;
        Self::ordered(named).map_err(serde::de::Error::custom)
    }
}

impl KindRule {
    /// `plural.group`: the name RBAC and kubectl use (`widgets.example.com`).
    pub fn resource(&self) -> String {
        resource_name(&self.api_version, &self.kind, self.plural.as_deref())
    }

    /// The label selector of `object`'s pods, when the kind declares one and it evaluates.
    pub fn pod_selector(&self, object: &Value) -> Option<String> {
        self.pods
            .as_ref()?
            .text_of(object, self.bindings.as_slice())
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// What a change from `before` to `after` of a live object leaves undone: `changes spec.a and
    /// spec.b of a running Widget: MESSAGE`.
    pub fn not_picked_up(&self, before: &Value, after: &Value) -> Option<String> {
        let mut lines = Vec::new();
        for rule in &self.not_picked_up {
            let changed: Vec<&str> = rule
                .fields
                .iter()
                .filter(|field| {
                    let path = ValuesPath::parse(field).ok();
                    let read = |v: &Value| path.as_ref().and_then(|p| p.find_in(v)).cloned();
                    read(before) != read(after)
                })
                .map(String::as_str)
                .collect();
            if changed.is_empty() {
                continue;
            }
            let message = rule
                .message
                .text_of(before, self.bindings.as_slice())
                .unwrap_or_else(|err| format!("(its message cannot be evaluated: {err})"));
            lines.push(format!(
                "changes {} of a running {}: {message}",
                changed.join(" and "),
                self.kind
            ));
        }
        (!lines.is_empty()).then(|| lines.join("; "))
    }
}

/// `plural.group` of a kind: its declared plural, or else its name in lower case with an `s`.
pub fn resource_name(api_version: &str, kind: &str, plural: Option<&str>) -> String {
    let plural = plural.map_or_else(|| format!("{}s", kind.to_lowercase()), str::to_owned);
    match api_version.rsplit_once('/') {
        Some((group, _)) => format!("{plural}.{group}"),
        None => plural,
    }
}

/// The API group of `api_version` (`""` for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

impl Declared {
    /// What the bundle declares of `kind` in the group of `api_version`, any version.
    pub fn rule(&self, api_version: &str, kind: &str) -> Option<&KindRule> {
        let group = group_of(api_version);
        self.kinds
            .iter()
            .find(|k| k.kind == kind && group_of(&k.api_version) == group)
    }

    /// The rule of a typed object.
    pub fn rule_of(&self, object: &Value) -> Option<&KindRule> {
        self.rule(object["apiVersion"].as_str()?, object["kind"].as_str()?)
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.status.is_none()
    }

    /// Checks what serde cannot, at `file:line` from addon.yaml's `text`: custom kinds only, each
    /// once, field paths that parse, and a status view that names only what exists.
    pub fn check(&self, file: &str, text: &str) -> Vec<Problem> {
        let lines = crate::values::LineMap::of(text);
        let at = |path: &ValuesPath| lines.at(file, path);
        let mut problems = Vec::new();
        let root = ValuesPath::root();
        for (i, rule) in self.kinds.iter().enumerate() {
            let here = root.key("kinds").index(i);
            let group = group_of(&rule.api_version);
            if crate::kinds::BUILTIN_GROUPS.contains(&group) {
                problems.push(
                    Problem::new(format!(
                        "kinds: {} in {} is a Kubernetes kind",
                        rule.kind, rule.api_version
                    ))
                    .at(at(&here.key("kind")))
                    .because("plane reads the readiness of Kubernetes' own kinds itself")
                    .hint("declare only the custom kinds the bundle's CRDs define"),
                );
            }
            if self.kinds[..i]
                .iter()
                .any(|k| k.kind == rule.kind && group_of(&k.api_version) == group)
            {
                problems.push(
                    Problem::new(format!("kinds: {} is declared twice", rule.kind))
                        .at(at(&here.key("kind"))),
                );
            }
            for (j, not_picked_up) in rule.not_picked_up.iter().enumerate() {
                for (k, field) in not_picked_up.fields.iter().enumerate() {
                    if let Err(why) = ValuesPath::parse(field) {
                        problems.push(
                            Problem::new(format!(
                                "kinds: {}: `{field}` is not a field path",
                                rule.kind
                            ))
                            .at(at(&here.key("notPickedUp").index(j).key("fields").index(k)))
                            .because(why)
                            .hint("write a dotted path into the object, e.g. spec.template"),
                        );
                    }
                }
            }
        }
        if let Some(view) = &self.status {
            problems.extend(view.check(self, &at));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(yaml: &str) -> KindRule {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn bindings_come_after_what_they_use_and_cycles_are_refused() {
        let widget = rule(
            "apiVersion: example.com/v1\nkind: Widget\nlet: {b: 'a * 2', a: 'spec.size', c: 'b + a'}\n",
        );
        let names: Vec<&str> = widget.bindings.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let cycle = serde_yaml_ng::from_str::<KindRule>(
            "apiVersion: example.com/v1\nkind: Widget\nlet: {a: 'b', b: 'a'}\n",
        )
        .unwrap_err();
        assert!(cycle.to_string().contains("cycle"), "{cycle}");
        let shadow = serde_yaml_ng::from_str::<KindRule>(
            "apiVersion: example.com/v1\nkind: Widget\nlet: {status: '1'}\n",
        )
        .unwrap_err();
        assert!(
            shadow.to_string().contains("field of the object"),
            "{shadow}"
        );
        assert_eq!(widget.resource(), "widgets.example.com");
    }

    #[test]
    fn changes_a_running_object_ignores_are_named() {
        let widget = rule(
            "apiVersion: example.com/v1\nkind: Widget\nnotPickedUp:\n- fields: [spec.engine, spec.size]\n  message: \"'recreate ' + metadata.name\"\n",
        );
        let before =
            json!({"metadata": {"name": "w"}, "spec": {"engine": "a", "size": 1, "color": "red"}});
        let mut after = before.clone();
        after["spec"]["color"] = json!("blue");
        assert_eq!(widget.not_picked_up(&before, &after), None);
        after["spec"]["engine"] = json!("b");
        after["spec"]["size"] = json!(2);
        assert_eq!(
            widget.not_picked_up(&before, &after).as_deref(),
            Some("changes spec.engine and spec.size of a running Widget: recreate w")
        );
    }
}
