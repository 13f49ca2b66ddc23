//! Bundles: load an addon (embedded or from a folder), layer its values, and render its objects.

pub mod budget;
mod check;
pub mod crd;
pub mod declared;
pub mod images;
mod manifest;
pub mod objects;
pub mod profile;
mod render;
pub mod source;

use std::collections::BTreeMap;

use serde_json::Value;

pub use budget::RenderBudget;
pub use declared::{Declared, KindRule};
pub use manifest::AddonManifest;
pub use manifest::{Component, Detect, Existing, Gate, Instance, Required, WatchNamespaces};
pub use objects::{Claim, Object, ObjectKey, ObjectRef, ReleaseId};
pub use profile::Profile;
pub use render::{RenderContext, Rendered, render};
pub use source::Sources;

use crate::error::{Error, Problem, Problems, did_you_mean};
use crate::values::{self, Origin, SetArg, Values, ValuesPath};

/// One template of a component.
#[derive(Debug, Clone)]
pub struct Template {
    pub component: String,
    /// The name Tera knows it by: its path inside the bundle.
    pub name: String,
    /// How it is shown to users.
    pub display: String,
    pub text: String,
}

/// A loaded bundle.
#[derive(Debug, Clone)]
pub struct Addon {
    pub manifest: AddonManifest,
    pub values_file: String,
    pub values_text: String,
    pub schema_file: String,
    pub schema: Value,
    pub templates: Vec<Template>,
    /// Static files under `files/`, by path relative to it.
    pub files: BTreeMap<String, String>,
    /// SHA-256 over every file of the bundle plane read (path and content): what a release
    /// records, so that what ran can be told from what was scanned.
    pub digest: String,
}

/// The names of the bundles in `sources`.
pub fn names(sources: &Sources) -> Vec<String> {
    sources
        .addons
        .folders("")
        .into_iter()
        .filter(|name| {
            matches!(
                sources.addons.read(&format!("{name}/addon.yaml")),
                Ok(Some(_))
            )
        })
        .collect()
}

/// Loads the bundle `name`.
///
/// # Errors
/// Unknown bundle (with a suggestion), unreadable or malformed files, listing every problem.
pub fn load(sources: &Sources, name: &str) -> Result<Addon, Error> {
    let tree = &sources.addons;
    let read = |rel: &str| {
        tree.read_limited(&format!("{name}/{rel}"), sources.file_max)
            .map_err(|err| {
                Error::input(
                    Problem::new(format!("cannot read {rel} of bundle {name}"))
                        .because(err.to_string())
                        .maybe_hint(profile::refusal_hint(&err.reason)),
                )
            })
    };
    let walk = |rel: &str| {
        tree.files(&format!("{name}/{rel}")).map_err(|err| {
            Error::input(
                Problem::new(format!("cannot read the folder {rel} of bundle {name}"))
                    .because(err.to_string())
                    .maybe_hint(profile::refusal_hint(&err.reason)),
            )
        })
    };
    let manifest_file = tree.display(&format!("{name}/addon.yaml"));
    let Some(manifest_text) = read("addon.yaml")? else {
        let known = names(sources);
        return Err(Error::input(
            Problem::new(format!("unknown addon `{name}`"))
                .because(format!(
                    "known addons: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
                .maybe_hint(
                    did_you_mean(name, known.iter().map(String::as_str))
                        .or_else(|| Some("run `plane addons` to list them".into())),
                ),
        ));
    };
    let manifest = AddonManifest::parse(&manifest_text, &manifest_file).map_err(Error::input)?;
    let mut problems = Problems::default();
    problems.extend(manifest.check(name, &manifest_file, &manifest_text));

    let values_file = tree.display(&format!("{name}/values.yaml"));
    let values_text = read("values.yaml")?.unwrap_or_default();
    let schema_file = tree.display(&format!("{name}/values.schema.json"));
    let schema_text = read("values.schema.json")?;
    let mut digest = FilesDigest::default();
    digest.add("addon.yaml", &manifest_text);
    digest.add("values.yaml", &values_text);
    if let Some(text) = &schema_text {
        digest.add("values.schema.json", text);
    }
    let schema = match schema_text {
        Some(text) => serde_json::from_str(&text).unwrap_or_else(|err| {
            problems.push(
                Problem::new("invalid values.schema.json")
                    .at(format!("{schema_file}:{}:{}", err.line(), err.column()))
                    .because(err.to_string()),
            );
            Value::Bool(true)
        }),
        // Without a schema every value is accepted; bundles should ship one.
        None => Value::Bool(true),
    };

    let declared: Vec<&str> = manifest
        .components
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    for folder in tree.folders(&format!("{name}/components")) {
        if !declared.contains(&folder.as_str()) {
            problems.push(
                Problem::new(format!(
                    "folder components/{folder} is not a component declared in addon.yaml"
                ))
                .at(manifest_file.clone())
                .maybe_hint(did_you_mean(&folder, declared.iter().copied())),
            );
        }
    }
    let mut templates: Vec<Template> = Vec::new();
    for component in &manifest.components {
        let before = templates.len();
        for rel in walk(&format!("components/{}", component.name))? {
            let Some(inner) = rel.strip_prefix(&format!("{name}/")) else {
                continue;
            };
            if !inner.ends_with(".yaml.tera") {
                continue;
            }
            let text = read(inner)?.unwrap_or_default();
            templates.push(Template {
                component: component.name.clone(),
                name: inner.to_owned(),
                display: tree.display(&rel),
                text,
            });
        }
        if templates.len() == before {
            // Rendering it would silently produce nothing (and `up` would deploy nothing).
            problems.push(
                Problem::new(format!("component `{}` has no templates", component.name))
                    .at(manifest_file.clone())
                    .hint(format!(
                        "add components/{}/*.yaml.tera, or remove the component from addon.yaml",
                        component.name
                    )),
            );
        }
    }
    let mut files = BTreeMap::new();
    for rel in walk("files")? {
        let Some(inner) = rel.strip_prefix(&format!("{name}/files/")) else {
            continue;
        };
        if let Some(text) = read(&format!("files/{inner}"))? {
            files.insert(inner.to_owned(), text);
        }
    }
    problems.into_result()?;
    for template in &templates {
        digest.add(&template.name, &template.text);
    }
    for (rel, text) in &files {
        digest.add(&format!("files/{rel}"), text);
    }
    Ok(Addon {
        manifest,
        values_file,
        values_text,
        schema_file,
        schema,
        templates,
        files,
        digest: digest.finish(),
    })
}

/// SHA-256 over files, each as its path, its length and its bytes (so no two sets collide).
#[derive(Default)]
struct FilesDigest(sha2::Sha256);

impl FilesDigest {
    fn add(&mut self, path: &str, text: &str) {
        use sha2::Digest as _;
        for part in [path.as_bytes(), text.as_bytes()] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    fn finish(self) -> String {
        use sha2::Digest as _;
        format!("sha256:{}", objects::hex(&self.0.finalize()))
    }
}

/// Everything that decides the values of one render, lowest precedence first.
pub struct ValueSources<'a> {
    pub profile: Option<&'a Profile>,
    /// The namespace of a team instance (`-n`): the bundle's instance values join after the
    /// profile's.
    pub instance: Option<&'a str>,
    /// `-f` files: (shown name, text).
    pub files: &'a [(String, String)],
    pub sets: &'a [SetArg],
    /// Every `--set` argument as given, parsed or not: what they give a secret input is
    /// learnt from them, so that no message shows it.
    pub raw_sets: &'a [String],
    /// Looks up the real environment.
    pub env: &'a dyn crate::values::Environment,
}

/// `value` with every string `$namespace` replaced by `namespace`.
fn with_namespace(value: &Value, namespace: &str) -> Value {
    match value {
        Value::String(text) if text == "$namespace" => Value::String(namespace.to_owned()),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| with_namespace(v, namespace)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_namespace(v, namespace)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Layers the values of `addon` (DESIGN §4) and checks them, listing every problem at once.
///
/// # Errors
/// An input error with every YAML, `--set`, input and schema problem found.
pub fn layer_values(addon: &Addon, sources: &ValueSources<'_>) -> Result<Values, Error> {
    let mut problems = Problems::default();
    let mut values = Values::default();

    let inputs: Vec<(String, values::InputSpec)> = addon
        .manifest
        .inputs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Whatever a secret input is given by the user (environment, profile, `-f`, `--set`) is
    // masked in every output from here on. The bundle's own defaults are no secret.
    let secrets = values::SecretInputs::of(&inputs);
    secrets.sets(sources.raw_sets);
    for (var, _) in &inputs {
        if let Some(raw) = sources.env.get(var) {
            secrets.raw(&inputs, var, &raw);
        }
        if let Some(raw) = sources.profile.and_then(|p| p.spec.env.get(var)) {
            let text = raw.as_str().map_or_else(
                || serde_json::to_string(raw).unwrap_or_default(),
                str::to_owned,
            );
            secrets.raw(&inputs, var, &text);
        }
    }

    // 1. The bundle's defaults.
    match values::parse_yaml(&addon.values_text, &addon.values_file) {
        Ok(layer) => values.merge(
            &layer.value,
            &values::file_origin(&addon.values_file, &layer.lines),
        ),
        Err(found) => problems.extend(found),
    }

    // 2. The profile: its values for this addon, and its environment inputs.
    if let Some(profile) = sources.profile {
        let addon_name = &addon.manifest.name;
        if let Some(layer) = profile.values_for(addon_name) {
            secrets.layer(&layer);
            if layer.is_object() {
                let prefix = ValuesPath::root().key("values").key(addon_name);
                values.merge(&layer, &|path: &ValuesPath| {
                    profile.origin(&ValuesPath([prefix.0.clone(), path.0.clone()].concat()))
                });
            } else if !layer.is_null() {
                problems.push(
                    Problem::new(format!("profile values for {addon_name} must be a mapping")).at(
                        profile
                            .origin(&ValuesPath::root().key("values").key(addon_name))
                            .to_string(),
                    ),
                );
            }
        }
        for (var, spec) in &inputs {
            let Some(raw) = profile.spec.env.get(var) else {
                continue;
            };
            let origin = profile.origin(&ValuesPath::root().key("env").key(var));
            let value = serde_json::to_value(raw).unwrap_or(Value::Null);
            match ValuesPath::parse(&spec.path) {
                Ok(path) => {
                    if let Err(why) = values.set(&path, value, &origin) {
                        problems.push(
                            Problem::new(format!("cannot use {var} from the profile"))
                                .at(origin.to_string())
                                .because(why),
                        );
                    }
                }
                Err(why) => problems.push(
                    Problem::new(format!("input {var} has a malformed values path")).because(why),
                ),
            }
        }
    }

    // 2b. A team instance's values, with `$namespace` filled in.
    if let (Some(namespace), Some(instance)) = (sources.instance, &addon.manifest.instance) {
        let origin = Origin::Instance {
            namespace: namespace.to_owned(),
        };
        values.merge(
            &with_namespace(&instance.values, namespace),
            &|_: &ValuesPath| origin.clone(),
        );
    }

    // 3. -f files, right-most wins.
    for (file, text) in sources.files {
        match values::parse_yaml(text, file) {
            Ok(layer) => {
                secrets.layer(&layer.value);
                values.merge(&layer.value, &values::file_origin(file, &layer.lines));
            }
            Err(found) => problems.extend(found),
        }
    }

    // 4. --set, right-most wins.
    for set in sources.sets {
        let origin = Origin::Set {
            arg: set.raw.clone(),
        };
        if let Err(why) = values.set(&set.path, set.value.clone(), &origin) {
            problems.push(
                Problem::new("cannot apply --set")
                    .at(format!("--set {}", set.raw))
                    .because(why),
            );
        }
    }

    // 5. The environment, then every input's checks, then the schema.
    let (input_problems, derived) = values::apply_inputs(&mut values, &inputs, sources.env);
    problems.extend(input_problems);
    let secret_paths: Vec<ValuesPath> = inputs
        .iter()
        .filter(|(_, spec)| spec.kind == values::InputType::Secret)
        .filter_map(|(_, spec)| ValuesPath::parse(&spec.path).ok())
        .collect();
    problems.extend(values::validate(
        &values,
        &addon.schema,
        &addon.schema_file,
        &secret_paths,
    ));
    problems.into_result()?;

    // Derived values are plane's, not the user's: they join after the schema check.
    for d in derived {
        values.set(&d.path, d.value, &d.origin).map_err(|why| {
            Error::input(Problem::new(format!("cannot set derived value {}", d.path)).because(why))
        })?;
    }
    Ok(values)
}
