//! addon.yaml: what a bundle declares about itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::declared::{Declared, KindRule, StatusView};
use crate::error::Problem;
use crate::values::{InputSpec, ValuesPath};

/// The contents of addon.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddonManifest {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Namespaces the bundle installs into (informational; Namespace objects come from templates).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Environment variables the bundle reads, by name.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputSpec>,
    pub components: Vec<Component>,
    /// What a team instance of the bundle is (`-n NAMESPACE`); without it, the bundle has none.
    #[serde(default)]
    pub instance: Option<Instance>,
    /// What plane must know of the bundle's custom kinds (see [`Declared`]).
    #[serde(default)]
    pub kinds: Vec<KindRule>,
    /// How `plane status` shows what the bundle runs.
    #[serde(default)]
    pub status: Option<StatusView>,
    /// Images an operator starts later from values (`plane images` lists them, mirrors rewrite
    /// them), each by its values path.
    #[serde(default, rename = "relatedImages")]
    pub related_images: Vec<super::images::RelatedImage>,
}

/// A team instance: the part of a bundle one team installs into its own namespace, beside the
/// platform release that provides the rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// The components a team instance renders; the others are the platform's.
    pub components: Vec<String>,
    /// Values layered over the profile's (under `-f` and `--set`); a string `$namespace`
    /// becomes the instance's namespace.
    #[serde(default)]
    pub values: serde_json::Value,
    /// Kinds the platform must serve before a team instance can work.
    #[serde(default)]
    pub requires: Vec<Required>,
}

/// A kind a team instance needs the platform to serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Required {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    /// Whether its objects are namespaced, for a kind plane does not know (a team instance may
    /// render only namespaced objects, and plane must be able to tell).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
}

/// The scope of a kind's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Namespaced,
    Cluster,
}

/// A named group of templates that can be switched on and off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Component {
    pub name: String,
    /// Values path of the boolean switch; without one the component is always on.
    pub enabled: Option<String>,
    #[serde(default)]
    pub depends_on: Vec<String>,
    #[serde(default)]
    pub gate: Gate,
    #[serde(default)]
    pub description: String,
    /// How to find an installation of what this component provides made by someone else: on, such
    /// an installation is a conflict; off, dependents use it.
    pub existing: Option<Existing>,
}

/// What a component provides that may already run in a cluster, and how to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Existing {
    /// What it is, for messages: `Widget operator`.
    pub what: String,
    /// Objects of a kind, found in any namespace by a label selector.
    pub detect: Vec<Detect>,
    /// When it may watch only some namespaces: where it says which, for team instances.
    #[serde(
        default,
        rename = "watchNamespaces",
        skip_serializing_if = "Option::is_none"
    )]
    pub watch_namespaces: Option<WatchNamespaces>,
}

/// Where an operator's Deployment lists the namespaces it watches, and the values path that sets
/// the list (for the hint when a team's namespace is not among them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchNamespaces {
    /// The container argument, `--watch-namespace`: `--watch-namespace=a,b` watches a and b;
    /// without it, or empty, every namespace.
    pub flag: String,
    /// The values path of the list (`operator.watchNamespaces`).
    pub values: String,
}

/// One kind of object that shows an installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detect {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub selector: String,
}

/// What dependents of a component wait for before they are applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// Every object of the component is ready.
    #[default]
    Ready,
    /// Nothing: dependents follow as soon as the component is applied.
    None,
}

impl AddonManifest {
    /// What the bundle declares of its kinds, as releases record it.
    pub fn declared(&self) -> Declared {
        Declared {
            kinds: self.kinds.clone(),
            status: self.status.clone(),
        }
    }

    /// Parses addon.yaml.
    ///
    /// # Errors
    /// A problem at `file:line:col` for YAML and shape errors and for a key set twice.
    pub fn parse(text: &str, file: &str) -> Result<Self, Problem> {
        if let Some(duplicate) = crate::values::LineMap::duplicate_keys(text, file)
            .into_iter()
            .next()
        {
            return Err(duplicate);
        }
        serde_yaml_ng::from_str(text)
            .map_err(|err| crate::values::yaml_problem(&err, file, "invalid addon.yaml"))
    }

    /// Checks what serde cannot, at `file:line` (from addon.yaml's `text`): the name, component
    /// names (DNS labels: they name folders), unique components and sound dependencies, the
    /// values paths of switches and inputs, the components a team instance names, and the label
    /// selectors of `existing` — all before any connection.
    pub fn check(&self, folder: &str, file: &str, text: &str) -> Vec<Problem> {
        let lines = crate::values::LineMap::of(text);
        let at = |path: &ValuesPath| lines.at(file, path);
        let mut problems = Vec::new();
        let root = ValuesPath::root();
        for (i, component) in self.components.iter().enumerate() {
            let here = root.key("components").index(i);
            if let Err(why) = crate::k8s_validation::dns1123_label(&component.name) {
                problems.push(
                    Problem::new(format!("component name `{}` is not a DNS-1123 label", component.name))
                        .at(at(&here.key("name")))
                        .because(why)
                        .hint("a component's name is its folder under components/: lower-case letters, digits and `-`"),
                );
            }
            if let Some(enabled) = &component.enabled
                && let Err(why) = ValuesPath::parse(enabled)
            {
                problems.push(
                    Problem::new(format!(
                        "the switch of component `{}` is not a values path",
                        component.name
                    ))
                    .at(at(&here.key("enabled")))
                    .because(format!("`{enabled}`: {why}"))
                    .hint("write a dotted path into values.yaml, e.g. web.enabled"),
                );
            }
            if let Some(watch) = component
                .existing
                .as_ref()
                .and_then(|e| e.watch_namespaces.as_ref())
            {
                let there = here.key("existing").key("watchNamespaces");
                if let Err(why) = ValuesPath::parse(&watch.values) {
                    problems.push(
                        Problem::new(format!(
                            "component `{}`: watchNamespaces.values is not a values path",
                            component.name
                        ))
                        .at(at(&there.key("values")))
                        .because(format!("`{}`: {why}", watch.values))
                        .hint("write the dotted path of the list in values.yaml, e.g. operator.watchNamespaces"),
                    );
                }
                if !watch.flag.starts_with('-')
                    || watch.flag.contains('=')
                    || watch.flag.contains(' ')
                {
                    problems.push(
                        Problem::new(format!(
                            "component `{}`: watchNamespaces.flag `{}` is not a flag name",
                            component.name, watch.flag
                        ))
                        .at(at(&there.key("flag")))
                        .hint("write the argument's name alone, e.g. --watch-namespace"),
                    );
                }
            }
            for (j, detect) in component
                .existing
                .iter()
                .flat_map(|e| e.detect.iter())
                .enumerate()
            {
                if let Err(why) = crate::k8s_validation::label_selector(&detect.selector) {
                    problems.push(
                        Problem::new(format!(
                            "component `{}` looks for existing {} objects with an invalid label selector",
                            component.name, detect.kind
                        ))
                        .at(at(&here.key("existing").key("detect").index(j).key("selector")))
                        .because(format!("`{}`: {why}", detect.selector))
                        .hint("write key=value, key!=value, key in (a,b), key or !key, joined by commas"),
                    );
                }
            }
        }
        for (var, spec) in &self.inputs {
            if let Err(why) = ValuesPath::parse(&spec.path) {
                problems.push(
                    Problem::new(format!("input {var} feeds a malformed values path"))
                        .at(at(&root.key("inputs").key(var).key("path")))
                        .because(format!("`{}`: {why}", spec.path)),
                );
            }
        }
        if let Some(instance) = &self.instance {
            let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
            for (i, component) in instance.components.iter().enumerate() {
                if !names.contains(&component.as_str()) {
                    problems.push(
                        Problem::new(format!(
                            "the team instance names unknown component `{component}`"
                        ))
                        .at(at(&root.key("instance").key("components").index(i)))
                        .because(format!("the components are: {}", names.join(", ")))
                        .maybe_hint(crate::error::did_you_mean(component, names.iter().copied())),
                    );
                }
            }
        }
        problems.extend(self.declared().check(file, text));
        if self.name != folder {
            problems.push(
                Problem::new(format!(
                    "addon name `{}` does not match its folder `{folder}`",
                    self.name
                ))
                .at(file.to_owned()),
            );
        }
        let names: Vec<&str> = self.components.iter().map(|c| c.name.as_str()).collect();
        for (i, component) in self.components.iter().enumerate() {
            if names[..i].contains(&component.name.as_str()) {
                problems.push(
                    Problem::new(format!("component `{}` is declared twice", component.name))
                        .at(file.to_owned()),
                );
            }
            for dep in &component.depends_on {
                if !names.contains(&dep.as_str()) {
                    problems.push(
                        Problem::new(format!(
                            "component `{}` depends on unknown component `{dep}`",
                            component.name
                        ))
                        .at(file.to_owned())
                        .maybe_hint(crate::error::did_you_mean(dep, names.iter().copied())),
                    );
                }
            }
        }
        if problems.is_empty()
            && let Err(cycle) = self.order()
        {
            problems.push(
                Problem::new(format!(
                    "components depend on each other in a cycle: {cycle}"
                ))
                .at(file.to_owned()),
            );
        }
        problems
    }

    /// Component names in dependency order (dependencies first, then declaration order).
    ///
    /// # Errors
    /// The cycle, as `a -> b -> a`, when there is one.
    pub fn order(&self) -> Result<Vec<String>, String> {
        fn visit<'a>(
            manifest: &'a AddonManifest,
            name: &'a str,
            done: &mut Vec<String>,
            path: &mut Vec<&'a str>,
        ) -> Result<(), String> {
            if done.iter().any(|d| d == name) {
                return Ok(());
            }
            if path.contains(&name) {
                path.push(name);
                return Err(path.join(" -> "));
            }
            path.push(name);
            if let Some(component) = manifest.components.iter().find(|c| c.name == name) {
                for dep in &component.depends_on {
                    visit(manifest, dep, done, path)?;
                }
            }
            path.pop();
            done.push(name.to_owned());
            Ok(())
        }
        let mut done = Vec::new();
        for component in &self.components {
            visit(self, &component.name, &mut done, &mut Vec::new())?;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(components: &str) -> AddonManifest {
        AddonManifest::parse(
            &format!("name: a\nversion: 0.1.0\ndescription: d\ncomponents:\n{components}"),
            "addon.yaml",
        )
        .unwrap()
    }

    #[test]
    fn orders_dependencies_first() {
        let m = manifest(
            "  - {name: web, depends_on: [operator]}\n  - {name: operator}\n  - {name: api, depends_on: [operator]}\n",
        );
        assert_eq!(m.order().unwrap(), ["operator", "web", "api"]);
    }

    #[test]
    fn reports_cycles_and_unknown_dependencies() {
        let m = manifest("  - {name: x, depends_on: [y]}\n  - {name: y, depends_on: [x]}\n");
        assert!(
            m.check("a", "addon.yaml", "")[0]
                .what
                .contains("x -> y -> x")
        );
        let m = manifest("  - {name: x, depends_on: [operatr]}\n  - {name: operator}\n");
        let problems = m.check("a", "addon.yaml", "");
        assert_eq!(
            problems[0].hint.as_deref(),
            Some("did you mean `operator`?")
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_a_line() {
        let err = AddonManifest::parse(
            "name: a\nversion: 1\ndescription: d\ncomponents: []\nextra: 1\n",
            "addon.yaml",
        )
        .unwrap_err();
        assert!(
            err.location.as_deref().unwrap().starts_with("addon.yaml:5"),
            "{err}"
        );
    }
}
