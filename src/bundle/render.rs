//! Render a bundle's enabled components with Tera into sorted, labelled Kubernetes objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::error::Error as _;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::crd::CrdSpec;
use super::objects::{self, Object, ObjectRef};
use super::source::Tree;
use super::{Addon, AddonManifest, Component, Gate, RenderBudget};
use crate::error::{Error, Problem, Problems, innermost};
use crate::values::{Values, ValuesPath};

/// What a render needs besides the bundle and its values.
#[derive(Clone)]
pub struct RenderContext<'a> {
    pub release: &'a str,
    pub state_namespace: &'a str,
    /// The namespace of a team instance (`-n`); `None` renders the platform.
    pub instance: Option<&'a str>,
    pub profile: Option<&'a str>,
    /// Shared partials and macros.
    pub shared: &'a Tree,
    /// What the render may use.
    pub budget: &'a RenderBudget,
    /// Told the template about to render (a sandboxed render reports it to its parent, which
    /// names it if the render dies).
    pub on_template: Option<&'a (dyn Fn(&str) + Sync)>,
}

/// The objects of one render, in apply order.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Rendered {
    /// Every object, generated Secrets included.
    pub objects: Vec<Object>,
    /// The enabled components in dependency order.
    pub components: Vec<String>,
    /// Enabled components whose dependents wait until they are ready (gate `ready`).
    pub gated: BTreeSet<String>,
    pub addon: String,
    pub version: String,
    /// SHA-256 of the bundle's files (`sha256:...`).
    #[serde(default)]
    pub bundle_digest: String,
    /// SHA-256 of the merged values: records that they changed without recording them.
    pub values_digest: String,
    /// The namespace of a team instance (`-n`); `None` for the platform.
    pub instance: Option<String>,
    /// What a team instance needs the platform to serve.
    pub requires: Vec<super::Required>,
    /// Every component the bundle declares, on or off: their switches and what of theirs may
    /// already run in a cluster.
    pub all_components: Vec<Component>,
    /// What the bundle declares of its kinds: readiness, pods, fields not picked up, its view.
    pub declared: super::Declared,
    /// Every image the render runs and the bundle declares, with its containers and values.
    #[serde(default)]
    pub images: Vec<super::images::ImageUse>,
}

impl Rendered {
    /// What finds the platform's operator for a team instance: the `existing` of every
    /// component the instance leaves to the platform.
    pub fn platform_operator(&self) -> Vec<super::Existing> {
        self.all_components
            .iter()
            .filter(|c| !self.components.contains(&c.name))
            .filter_map(|c| c.existing.clone())
            .collect()
    }

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

    let tera = build_tera(addon, ctx.shared, ctx.budget)?;
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
    let mut printed: u64 = 0;
    for template in addon
        .templates
        .iter()
        .filter(|t| components.contains(&t.component))
    {
        context.insert("component", &template.component);
        if let Some(report) = ctx.on_template {
            report(&template.display);
        }
        let text = match render_one(&tera, &template.name, &context) {
            Ok(text) => text,
            Err(Failure::Tera(err)) => {
                problems.push(render_problem(&err, template, addon));
                continue;
            }
            Err(Failure::Panic(message)) => {
                problems.push(
                    Problem::new("the template broke the renderer")
                        .at(template.display.clone())
                        .because(message)
                        .hint("an expression overflowed or divided by zero; check the arithmetic of the template"),
                );
                continue;
            }
        };
        printed += text.len() as u64;
        if printed > ctx.budget.output {
            return Err(over_budget(
                "output",
                &template.display,
                format!(
                    "the templates printed {} by this one, over the budget of {}",
                    crate::files::size(printed),
                    crate::files::size(ctx.budget.output)
                ),
            ));
        }
        let duplicates = crate::values::LineMap::duplicate_keys(
            &text,
            &format!("{} (rendered output)", template.display),
        );
        if !duplicates.is_empty() {
            problems.extend(duplicates);
            continue;
        }
        match documents(&text, &template.display)
            .and_then(|docs| flatten_lists(docs, &template.display))
        {
            Ok(docs) => {
                for (index, doc) in docs {
                    if objects.len() >= ctx.budget.objects {
                        return Err(over_budget(
                            "objects",
                            &template.display,
                            format!(
                                "the render made more than {} objects by this template",
                                ctx.budget.objects
                            ),
                        ));
                    }
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
    problems.extend(check_untrusted(&objects));
    if let Some(namespace) = ctx.instance {
        problems.extend(check_instance(&objects, namespace, values));
        let declared = addon
            .manifest
            .instance
            .as_ref()
            .map(|i| i.requires.as_slice())
            .unwrap_or_default();
        problems.extend(check_instance_scopes(&objects, declared));
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
        bundle_digest: addon.digest.clone(),
        values_digest,
        instance: ctx.instance.map(str::to_owned),
        requires: addon
            .manifest
            .instance
            .as_ref()
            .map(|i| i.requires.clone())
            .unwrap_or_default(),
        all_components: addon.manifest.components.clone(),
        declared: addon.manifest.declared(),
        images: Vec::new(),
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

/// Why a template did not render: Tera's error, or a panic inside Tera (an integer overflow in
/// an expression, say), caught so that no template can crash plane.
enum Failure {
    Tera(tera::Error),
    Panic(String),
}

/// Renders one template, a panic inside Tera caught and turned into a failure (its default
/// message on stderr left out: the failure says it).
fn render_one(tera: &tera::Tera, name: &str, context: &tera::Context) -> Result<String, Failure> {
    quiet_panics_while_rendering();
    RENDERING.with(|r| r.set(true));
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tera.render(name, context)));
    RENDERING.with(|r| r.set(false));
    match result {
        Ok(rendered) => rendered.map_err(Failure::Tera),
        Err(payload) => Err(Failure::Panic(
            payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned()),
        )),
    }
}

thread_local! {
    /// This thread is inside Tera: a panic there is caught and reported as a problem.
    static RENDERING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once per process, a panic hook that says nothing for a panic caught inside Tera (the
/// problem reports it) and hands every other panic to the hook that was there.
fn quiet_panics_while_rendering() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !RENDERING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// A budget a render went over: bad input naming the budget and how to raise it.
fn over_budget(budget: &str, at: &str, why: String) -> Error {
    Error::input(
        Problem::new(format!("the render went over its {budget} budget"))
            .at(at.to_owned())
            .because(why)
            .hint(format!(
                "a bundle that needs more: --budget {budget}=VALUE (README, \"Render budgets\")"
            )),
    )
}

/// A Tera instance with the shared templates, the bundle's templates and plane's functions. No
/// function reaches the process's environment (`get_env` is refused: inputs are declared in
/// addon.yaml), and `range` stays within the budget.
fn build_tera(addon: &Addon, shared: &Tree, budget: &RenderBudget) -> Result<tera::Tera, Error> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(Vec::new());
    let mut sources: Vec<(String, String, String)> = Vec::new();
    let unreadable = |err: super::source::ReadError| {
        Error::input(Problem::new("cannot read the shared templates").because(err.to_string()))
    };
    for rel in shared.files("").map_err(unreadable)? {
        if let Some(text) = shared.read_limited(&rel, budget.file).map_err(unreadable)? {
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
    tera.register_function(
        "get_env",
        |_: &HashMap<String, Value>| -> tera::Result<Value> {
            Err(tera::Error::msg(
                "get_env() is not available: a template reads no environment variable; declare an \
                 input in addon.yaml (`inputs:`), which feeds a values path",
            ))
        },
    );
    let range_max = budget.range;
    tera.register_function(
        "range",
        move |args: &HashMap<String, Value>| -> tera::Result<Value> { range(args, range_max) },
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

/// `range(end=N)`, `range(start=M, end=N, step_by=S)`: Tera's, but with a step that is not zero
/// and at most `max` items.
fn range(args: &HashMap<String, Value>, max: usize) -> tera::Result<Value> {
    let number = |name: &str, default: Option<u64>| -> tera::Result<u64> {
        match args.get(name) {
            Some(value) => value.as_u64().ok_or_else(|| {
                tera::Error::msg(format!(
                    "range() takes a whole number as `{name}`, not {value}"
                ))
            }),
            None => default.ok_or_else(|| tera::Error::msg("range() needs `end`")),
        }
    };
    let start = number("start", Some(0))?;
    let end = number("end", None)?;
    let step = number("step_by", Some(1))?;
    if step == 0 {
        return Err(tera::Error::msg("range() takes a step_by of at least 1"));
    }
    if start > end {
        return Err(tera::Error::msg(
            "range() takes a start no greater than its end",
        ));
    }
    let items = (end - start).div_ceil(step);
    if items > max as u64 {
        return Err(tera::Error::msg(format!(
            "range() would make {items} items, over the range budget of {max} (--budget range=N)"
        )));
    }
    Ok(Value::Array(
        (start..end)
            .step_by(usize::try_from(step).unwrap_or(usize::MAX))
            .map(Value::from)
            .collect(),
    ))
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

/// The documents with every `v1 List` replaced by its items, each checked as an object of its
/// own; any other kind named `...List` is refused (plane cannot tell what it would hold).
fn flatten_lists(docs: Vec<(usize, Value)>, display: &str) -> Result<Vec<(usize, Value)>, Problem> {
    let mut out = Vec::with_capacity(docs.len());
    for (index, doc) in docs {
        let kind = doc["kind"].as_str().unwrap_or_default();
        if kind == "List" && doc["apiVersion"] == "v1" {
            for item in doc["items"].as_array().into_iter().flatten() {
                if item["kind"].as_str().is_some_and(|k| k.ends_with("List")) {
                    return Err(Problem::new("a rendered List holds another list")
                        .at(format!("{display} (document {})", index + 1))
                        .hint("render the objects themselves"));
                }
                out.push((index, item.clone()));
            }
        } else if kind.ends_with("List") {
            return Err(Problem::new(format!("a rendered document is a {kind}"))
                .at(format!("{display} (document {})", index + 1))
                .because("plane applies objects, not lists of them (only v1 List is unpacked)")
                .hint("render each object as a document of its own"));
        } else {
            out.push((index, doc));
        }
    }
    Ok(out)
}

/// The most a ConfigMap's or Secret's data may hold: the API server refuses more than 1 MiB.
const DATA_MAX: usize = 1024 * 1024;

/// Checks every object against what a bundle may not do, whatever its templates: imitate plane's
/// own records and locks, claim an owner (the API server would garbage-collect the object with
/// it), put text that is not base64 in a Secret's `data`, or hold more data than the API server
/// stores in a ConfigMap or Secret.
fn check_untrusted(objects: &[Object]) -> Vec<Problem> {
    use base64::Engine as _;
    let mut problems = Vec::new();
    for object in objects {
        let refuse = |what: String, why: &str| {
            Problem::new(what)
                .at(object.template.clone())
                .because(why.to_owned())
        };
        let metadata = &object.value["metadata"];
        let labels = metadata["labels"].as_object();
        let plane_label = |key: &str| labels.is_some_and(|l| l.contains_key(key));
        let imitates = match object.id.kind.as_str() {
            "Secret" => {
                object.id.name.starts_with("plane-release-")
                    || object.value["type"] == "plane.datalayer.io/release"
                    || plane_label("plane.datalayer.io/inventory")
                    || plane_label("plane.datalayer.io/inventory-of")
            }
            "Lease" => object.id.name.starts_with("plane-lock-"),
            _ => false,
        };
        if imitates {
            problems.push(
                refuse(
                    format!("{} imitates plane's own state", object.id),
                    "plane keeps release records (Secrets plane-release-*, labelled plane.datalayer.io/inventory) and locks (Leases plane-lock-*) itself; a bundle may not render one",
                )
                .hint("rename the object and drop plane's inventory labels"),
            );
        }
        if metadata["ownerReferences"]
            .as_array()
            .is_some_and(|refs| !refs.is_empty())
        {
            problems.push(
                refuse(
                    format!("{} sets ownerReferences", object.id),
                    "the release owns what it renders; an owner reference would let another object's deletion take it away",
                )
                .hint("remove metadata.ownerReferences from the template"),
            );
        }
        if matches!(object.id.kind.as_str(), "Secret" | "ConfigMap") {
            let mut size = 0;
            for field in ["data", "stringData", "binaryData"] {
                for (key, value) in object.value[field].as_object().into_iter().flatten() {
                    let text = value.as_str().unwrap_or_default();
                    size += key.len() + text.len();
                    let base64_field =
                        (object.id.kind == "Secret" && field == "data") || field == "binaryData";
                    if base64_field
                        && base64::engine::general_purpose::STANDARD
                            .decode(text)
                            .is_err()
                    {
                        problems.push(
                            refuse(
                                format!("{} has {field}.{key} that is not base64", object.id),
                                "the API server takes only base64 there",
                            )
                            .hint("put plain text under stringData instead"),
                        );
                    }
                }
            }
            if size > DATA_MAX {
                problems.push(
                    refuse(
                        format!("{} holds more data than the API server stores", object.id),
                        &format!(
                            "its data is {}, over the 1 MiB a ConfigMap or Secret may hold",
                            crate::files::size(size as u64)
                        ),
                    )
                    .hint("split it into several objects, or keep large files out of the bundle"),
                );
            }
        }
    }
    problems
}

/// A team instance renders only namespaced objects: a kind plane does not know (not Kubernetes'
/// own, not a CRD of the render, nor declared in `instance.requires` with its `scope`) is refused,
/// since it could be cluster-scoped with a namespace set on it.
fn check_instance_scopes(objects: &[Object], declared: &[super::Required]) -> Vec<Problem> {
    let crd_kinds: Vec<String> = objects
        .iter()
        .filter_map(|o| CrdSpec::of(&o.value))
        .filter(|spec| spec.namespaced)
        .map(|spec| spec.kind)
        .collect();
    let mut problems = Vec::new();
    for object in objects {
        let kind = object.id.kind.as_str();
        let known = crate::kinds::scope_of(kind).is_some()
            || crd_kinds.iter().any(|k| k == kind)
            || declared
                .iter()
                .any(|r| r.kind == kind && r.scope == Some(super::manifest::Scope::Namespaced));
        if !known {
            problems.push(
                Problem::new(format!(
                    "plane cannot tell whether {} is namespaced",
                    object.id
                ))
                .at(object.template.clone())
                .because(format!(
                    "a team instance renders only namespaced objects, and {kind} is neither a kind plane knows nor declared"
                ))
                .hint(format!(
                    "declare it in addon.yaml: instance.requires: [{{apiVersion: {}, kind: {kind}, scope: Namespaced}}]",
                    object.id.api_version
                )),
            );
        }
    }
    problems
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
