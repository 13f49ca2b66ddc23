//! Render a bundle's enabled components with Tera into sorted, labelled Kubernetes objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::error::Error as _;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::crd::CrdSpec;
use super::objects::{self, Object, ObjectRef};
use super::source::Tree;
use super::{Addon, AddonManifest, Component, Gate};
use crate::error::{Error, Problem, Problems, innermost};
use crate::values::{Values, ValuesPath};

/// What a render needs besides the bundle and its values.
#[derive(Debug, Clone)]
pub struct RenderContext<'a> {
    pub release: &'a str,
    pub state_namespace: &'a str,
    /// The namespace of a team instance (`-n`); `None` renders the platform.
    pub instance: Option<&'a str>,
    pub profile: Option<&'a str>,
    /// Shared partials and macros.
    pub shared: &'a Tree,
}

/// The objects of one render, in apply order.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Every object, generated Secrets included.
    pub objects: Vec<Object>,
    /// The enabled components in dependency order.
    pub components: Vec<String>,
    /// Enabled components whose dependents wait until they are ready (gate `ready`).
    pub gated: BTreeSet<String>,
    pub addon: String,
    pub version: String,
    /// SHA-256 of the merged values: records that they changed without recording them.
    pub values_digest: String,
    /// The namespace of a team instance (`-n`); `None` for the platform.
    pub instance: Option<String>,
    /// What a team instance needs the platform to serve.
    pub requires: Vec<super::Required>,
    /// Every component the bundle declares, on or off: their switches and what of theirs may
    /// already run in a cluster.
    pub all_components: Vec<Component>,
}

impl Rendered {
    /// The values path that turns `component` off, if it has one.
    pub fn switch_of(&self, component: &str) -> Option<&str> {
        self.all_components
            .iter()
            .find(|c| c.name == component)
            .and_then(|c| c.enabled.as_deref())
    }
}

impl Rendered {
    /// The objects a user may see: everything except generated Secrets, which only `up` creates.
    pub fn printable(&self) -> impl Iterator<Item = &Object> {
        self.objects.iter().filter(|o| o.generated_keys().is_none())
    }
}

/// Renders every enabled component of `addon` with `values`.
///
/// # Errors
/// Template syntax and render errors (file, line and the innermost Tera message), invalid YAML in
/// the output, objects without apiVersion/kind/name, scope mistakes, duplicates and names, labels,
/// annotations or Ingress hosts the API server would refuse — all at once.
pub fn render(addon: &Addon, values: &Values, ctx: &RenderContext<'_>) -> Result<Rendered, Error> {
    let mut problems = Problems::default();
    let mut components = enabled_components(&addon.manifest, values, &mut problems);
    if let Some(namespace) = ctx.instance {
        if addon.manifest.namespaces.iter().any(|ns| ns == namespace) {
            problems.push(
                Problem::new(format!(
                    "-n {namespace} names a namespace of the platform release of {}",
                    addon.manifest.name
                ))
                .because(format!(
                    "the platform installs into {}",
                    addon.manifest.namespaces.join(", ")
                ))
                .hint("give each team a namespace of its own, or install the platform without -n"),
            );
        }
        match &addon.manifest.instance {
            Some(instance) => components.retain(|c| instance.components.contains(c)),
            None => problems.push(
                Problem::new(format!(
                    "bundle {} has no team instance: it cannot be installed with -n",
                    addon.manifest.name
                ))
                .hint("install it without -n, or add an `instance` section to its addon.yaml"),
            ),
        }
    }
    problems.into_result()?;

    let tera = build_tera(addon, ctx.shared)?;
    let mut context = tera::Context::from_value(json!({
        "values": values.tree(),
        "release": {"name": ctx.release, "namespace": ctx.state_namespace},
        "addon": {"name": addon.manifest.name, "version": addon.manifest.version},
        "profile": ctx.profile.unwrap_or(""),
        "instance": {"namespace": ctx.instance.unwrap_or("")},
        "component": "",
    }))
    .map_err(|err| {
        Error::input(Problem::new("cannot build the template context").because(err.to_string()))
    })?;

    let mut problems = Problems::default();
    let mut objects = Vec::new();
    for template in addon
        .templates
        .iter()
        .filter(|t| components.contains(&t.component))
    {
        context.insert("component", &template.component);
        let text = match tera.render(&template.name, &context) {
            Ok(text) => text,
            Err(err) => {
                problems.push(render_problem(&err, template, addon));
                continue;
            }
        };
        match documents(&text, &template.display) {
            Ok(docs) => {
                for (index, doc) in docs {
                    match object_of(doc, index, &template.display) {
                        Ok((id, mut value)) => {
                            objects::label(
                                &mut value,
                                &objects::ReleaseId::new(ctx.state_namespace, ctx.release),
                                &addon.manifest.name,
                                &template.component,
                            );
                            objects.push(Object {
                                id,
                                component: template.component.clone(),
                                template: template.display.clone(),
                                value,
                            });
                        }
                        Err(problem) => problems.push(problem),
                    }
                }
            }
            Err(problem) => problems.push(problem),
        }
    }
    problems.extend(check_objects(&objects));
    if let Some(namespace) = ctx.instance {
        problems.extend(check_instance(&objects, namespace, values));
    }
    problems.extend(super::check::check(&objects, values));
    problems.into_result()?;
    objects.sort_by(|a, b| a.id.cmp(&b.id));
    let gated = addon
        .manifest
        .components
        .iter()
        .filter(|c| c.gate == Gate::Ready && components.contains(&c.name))
        .filter(|c| {
            addon
                .manifest
                .components
                .iter()
                .any(|d| components.contains(&d.name) && d.depends_on.contains(&c.name))
        })
        .map(|c| c.name.clone())
        .collect();
    let values_digest = objects::digest(values.tree());
    Ok(Rendered {
        objects,
        components,
        gated,
        addon: addon.manifest.name.clone(),
        version: addon.manifest.version.clone(),
        values_digest,
        instance: ctx.instance.map(str::to_owned),
        requires: addon
            .manifest
            .instance
            .as_ref()
            .map(|i| i.requires.clone())
            .unwrap_or_default(),
        all_components: addon.manifest.components.clone(),
    })
}

/// The enabled components in dependency order; a component whose dependency is off is an error.
fn enabled_components(
    manifest: &AddonManifest,
    values: &Values,
    problems: &mut Problems,
) -> Vec<String> {
    let order = manifest.order().unwrap_or_default();
    let mut enabled = Vec::new();
    for name in order {
        let Some(component) = manifest.components.iter().find(|c| c.name == name) else {
            continue;
        };
        let on = match &component.enabled {
            None => true,
            Some(path_text) => {
                let path = ValuesPath::parse(path_text).unwrap_or_default();
                match values.get(&path) {
                    Some(Value::Bool(on)) => *on,
                    Some(other) => {
                        problems.push(
                            Problem::new(format!(
                                "the switch of component `{name}` must be true or false"
                            ))
                            .at(values
                                .origin(&path)
                                .map_or_else(|| format!("values path {path}"), ToString::to_string))
                            .because(format!("`{path}` is {}", crate::values::kind_of(other))),
                        );
                        false
                    }
                    None => {
                        problems.push(
                            Problem::new(format!("the switch of component `{name}` is missing"))
                                .at(format!("values path {path}"))
                                .hint("give it a default in values.yaml"),
                        );
                        false
                    }
                }
            }
        };
        if !on {
            continue;
        }
        enabled.push(name);
    }
    for name in &enabled {
        let component = manifest.components.iter().find(|c| &c.name == name);
        for dep in component
            .map(|c| c.depends_on.as_slice())
            .unwrap_or_default()
        {
            // A dependency that is off but can already run in the cluster is used from there.
            let external = manifest
                .components
                .iter()
                .any(|c| &c.name == dep && c.existing.is_some());
            if !enabled.contains(dep) && !external {
                let switch = manifest
                    .components
                    .iter()
                    .find(|c| &c.name == dep)
                    .and_then(|c| c.enabled.clone());
                problems.push(
                    Problem::new(format!(
                        "component `{name}` is on but `{dep}`, which it depends on, is off"
                    ))
                    .maybe_hint(switch.map(|s| format!("set {s}=true, or turn `{name}` off too"))),
                );
            }
        }
    }
    enabled
}

/// A Tera instance with the shared templates, the bundle's templates and plane's functions.
fn build_tera(addon: &Addon, shared: &Tree) -> Result<tera::Tera, Error> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    let mut sources: Vec<(String, String, String)> = Vec::new();
    for rel in shared.files("") {
        if let Ok(Some(text)) = shared.read(&rel) {
            sources.push((rel.clone(), shared.display(&rel), text));
        }
    }
    for template in &addon.templates {
        sources.push((
            template.name.clone(),
            template.display.clone(),
            template.text.clone(),
        ));
    }
    let loaded = tera.add_raw_templates(
        sources
            .iter()
            .map(|(name, _, text)| (name.as_str(), text.as_str())),
    );
    if let Err(err) = loaded {
        // Parse one by one (only now: parsing is most of a render's time), so a syntax error
        // names its own file and line.
        let mut problems = Problems::default();
        for (name, display, text) in &sources {
            if let Err(err) = tera::Template::new(name, None, text) {
                problems.push(parse_problem(&err, display));
            }
        }
        problems.into_result()?;
        return Err(Error::input(
            Problem::new("cannot load the templates")
                .because(innermost(&err))
                .hint("check the {% import %} lines"),
        ));
    }
    let files = Arc::new(addon.files.clone());
    tera.register_function(
        "file",
        move |args: &HashMap<String, Value>| -> tera::Result<Value> {
            let path = args
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| tera::Error::msg("file() needs path=\"...\""))?;
            files
                .get(path)
                .map(|text| Value::String(text.clone()))
                .ok_or_else(|| {
                    let known: Vec<&str> = files.keys().map(String::as_str).collect();
                    tera::Error::msg(format!(
                        "file `{path}` not found under files/ (there are: {})",
                        known.join(", ")
                    ))
                })
        },
    );
    // `{{ text | digest }}`: the SHA-256 of a text, in hex — to roll a workload when (and only
    // when) the configuration it reads at start changes.
    tera.register_filter(
        "digest",
        |value: &Value, _: &HashMap<String, Value>| -> tera::Result<Value> {
            let text = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Ok(Value::String(objects::digest(&Value::String(text))))
        },
    );
    Ok(tera)
}

/// Every message of a Tera error chain, outermost first.
fn chain(err: &tera::Error) -> Vec<String> {
    let mut messages = vec![err.to_string()];
    let mut source = err.source();
    while let Some(inner) = source {
        messages.push(inner.to_string());
        source = inner.source();
    }
    messages
}

fn parse_problem(err: &tera::Error, display: &str) -> Problem {
    let message = innermost(err);
    // pest reports positions as ` --> line:col`.
    let position = message
        .split("--> ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned);
    let location = position.map_or_else(|| display.to_owned(), |pos| format!("{display}:{pos}"));
    Problem::new("template syntax error")
        .at(location)
        .because(message.trim().to_owned())
}

fn render_problem(err: &tera::Error, template: &super::Template, addon: &Addon) -> Problem {
    let messages = chain(err);
    let inner = messages.last().cloned().unwrap_or_default();
    // Tera names no line for render errors; find where the offending variable is used.
    let variable = inner
        .split('`')
        .nth(1)
        .filter(|_| inner.starts_with("Variable `"))
        .map(str::to_owned);
    let mut location = template.display.clone();
    if let Some(variable) = &variable {
        let found = line_of(&template.text, variable)
            .map(|line| format!("{}:{line}", template.display))
            .or_else(|| {
                addon.templates.iter().find_map(|t| {
                    line_of(&t.text, variable).map(|line| format!("{}:{line}", t.display))
                })
            });
        if let Some(found) = found {
            location = found;
        }
    }
    let mut problem = Problem::new("cannot render template").at(location);
    for message in messages.iter().skip(1) {
        problem = problem.because(message.clone());
    }
    if messages.len() == 1 {
        problem = problem.because(inner);
    }
    if let Some(variable) = variable
        && let Some(path) = variable.strip_prefix("values.")
    {
        problem = problem.hint(format!(
            "`{path}` is not in the values: add it to values.yaml, or check its spelling"
        ));
    }
    problem
}

/// The first line (1-based) where `needle` appears inside a Tera tag.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|line| line.contains(needle) && (line.contains("{{") || line.contains("{%")))
        .map(|i| i + 1)
}

/// Splits rendered text into YAML documents, skipping empty ones. Each keeps its index.
fn documents(text: &str, display: &str) -> Result<Vec<(usize, Value)>, Problem> {
    let mut docs = Vec::new();
    for (index, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(doc).map_err(|err| {
            let line = err.location().map(|at| at.line());
            let excerpt = line
                .and_then(|l| text.lines().nth(l.saturating_sub(1)))
                .map(|l| format!("the rendered line reads: {}", l.trim_end()))
                .unwrap_or_default();
            let message = crate::values::yaml_message(&err);
            let mut problem = Problem::new("template rendered invalid YAML")
                .at(line.map_or_else(
                    || display.to_owned(),
                    |l| format!("{display} (rendered output line {l})"),
                ))
                .because(message);
            if !excerpt.is_empty() {
                problem = problem.because(excerpt);
            }
            problem.hint(
                "emit maps and lists with `| json_encode()`; check indentation around the line",
            )
        })?;
        if !value.is_null() {
            docs.push((index, value));
        }
    }
    Ok(docs)
}

/// Checks that a document is a Kubernetes object and returns its identity.
fn object_of(value: Value, index: usize, display: &str) -> Result<(ObjectRef, Value), Problem> {
    let at = format!("{display} (document {})", index + 1);
    if !value.is_object() {
        return Err(
            Problem::new("a rendered document is not a Kubernetes object")
                .at(at)
                .because(format!("it is {}", crate::values::kind_of(&value))),
        );
    }
    let text = |pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name = text("/metadata/name");
    let which = name
        .as_deref()
        .map_or_else(String::new, |n| format!(" `{n}`"));
    let described = |what: &str| {
        Problem::new(format!("a rendered object{which} has no {what}"))
            .at(at.clone())
            .hint("every object needs apiVersion, kind and metadata.name")
    };
    let api_version = text("/apiVersion").ok_or_else(|| described("apiVersion"))?;
    let kind = text("/kind").ok_or_else(|| described("kind"))?;
    let name = name.ok_or_else(|| described("metadata.name"))?;
    let namespace = text("/metadata/namespace");
    Ok((
        ObjectRef {
            api_version,
            kind,
            namespace,
            name,
        },
        value,
    ))
}

/// A team instance owns nothing outside its namespace: no cluster-scoped object, nothing in
/// another namespace, so that its namespace's admin alone can install it and two teams never
/// share an object.
fn check_instance(objects: &[Object], namespace: &str, values: &Values) -> Vec<Problem> {
    let mut problems = Vec::new();
    for object in objects {
        let mut problem = Problem::new(format!(
            "{} does not belong in a team instance of namespace {namespace}",
            object.id
        ))
        .at(object.template.clone());
        match object.id.namespace.as_deref() {
            None => problem = problem.because("it is cluster-scoped"),
            Some(ns) if ns != namespace => {
                problem = problem.because(format!("it is in the namespace {ns}"));
                // The values that name that namespace, with where each came from.
                for path in paths_with(values.tree(), ns, &ValuesPath::root()) {
                    let origin = values
                        .origin(&path)
                        .map_or_else(|| "the bundle".to_owned(), ToString::to_string);
                    problem = problem.because(format!("{path} is `{ns}` ({origin})"));
                }
            }
            Some(_) => continue,
        }
        problems.push(problem.hint(
            "a team instance renders only namespaced objects in its own namespace; \
                 check the values that name namespaces, or turn the component off",
        ));
    }
    problems
}

/// The values paths whose value is the string `text`.
fn paths_with(value: &Value, text: &str, at: &ValuesPath) -> Vec<ValuesPath> {
    match value {
        Value::String(s) if s == text => vec![at.clone()],
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| paths_with(v, text, &at.key(k)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, v)| paths_with(v, text, &at.index(i)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks across objects: duplicates, namespaces where they belong, generated Secrets empty.
fn check_objects(objects: &[Object]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let cluster_kinds: Vec<String> = objects
        .iter()
        .filter_map(|o| CrdSpec::of(&o.value))
        .filter(|spec| !spec.namespaced)
        .map(|spec| spec.kind)
        .collect();
    let mut seen: BTreeMap<String, &Object> = BTreeMap::new();
    for object in objects {
        let key = format!("{}|{}", object.id.group(), object.id);
        if let Some(first) = seen.get(&key) {
            problems.push(
                Problem::new(format!("duplicate object {}", object.id))
                    .at(object.template.clone())
                    .because(format!("{} already rendered it", first.template))
                    .hint("rename one of them, or render it in one template only"),
            );
        } else {
            seen.insert(key, object);
        }
        let cluster_scoped = crate::kinds::is_cluster_scoped(&object.id.kind)
            || cluster_kinds.contains(&object.id.kind);
        match (&object.id.namespace, cluster_scoped) {
            (None, false) => problems.push(
                Problem::new(format!("{} has no metadata.namespace", object.id))
                    .at(object.template.clone())
                    .hint("set metadata.namespace on every namespaced object"),
            ),
            (Some(ns), true) => problems.push(
                Problem::new(format!(
                    "{}/{} is cluster-scoped but sets metadata.namespace {ns}",
                    object.id.kind, object.id.name
                ))
                .at(object.template.clone()),
            ),
            _ => {}
        }
        if let Some(keys) = object.generated_keys() {
            let has_data = ["data", "stringData"]
                .iter()
                .any(|k| object.value.get(*k).is_some_and(|v| !v.is_null()));
            if has_data || keys.is_empty() {
                problems.push(
                    Problem::new(format!(
                        "generated Secret {} must name its keys and carry no data",
                        object.id
                    ))
                    .at(object.template.clone())
                    .hint("`up` fills in the keys listed in plane.datalayer.io/generate"),
                );
            }
        }
    }
    problems
}
