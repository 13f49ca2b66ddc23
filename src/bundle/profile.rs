//! Profiles: what differs per region or environment (inputs, values per addon, pinned cluster).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::source::Tree;
use crate::error::{Problem, did_you_mean};
use crate::values::{LineMap, Origin, ValuesPath};

/// A profile file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    #[serde(default)]
    pub description: String,
    /// Environment inputs for this environment, by variable name.
    #[serde(default)]
    pub env: BTreeMap<String, serde_yaml_ng::Value>,
    /// Values per addon name.
    #[serde(default)]
    pub values: BTreeMap<String, serde_yaml_ng::Value>,
    /// The cluster this profile may touch, if pinned.
    #[serde(default)]
    pub cluster: Option<ClusterPin>,
    /// Registry mirrors every image is pulled through: a source registry (with an optional
    /// path) -> its mirror (`docker.io: registry.corp/dockerhub`).
    #[serde(default, rename = "registryMirrors")]
    pub registry_mirrors: BTreeMap<String, String>,
    /// Every image must be pinned by digest (`repository@sha256:...`); a tag alone is refused.
    #[serde(default, rename = "requireDigests")]
    pub require_digests: bool,
}

/// A pinned cluster identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterPin {
    pub context: Option<String>,
    pub server: Option<String>,
    /// The UID of the cluster's `kube-system` Namespace (`kubectl get ns kube-system -o
    /// jsonpath='{.metadata.uid}'`): names can be copied, this cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// A loaded profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    /// Where it was read from, as shown in messages.
    pub path: String,
    pub spec: ProfileSpec,
    lines: LineMap,
}

impl Profile {
    /// The origin of a value this profile sets, given its path inside the profile file.
    pub fn origin(&self, path_in_file: &ValuesPath) -> Origin {
        let (line, col) = self.lines.find(path_in_file).unwrap_or((1, 1));
        Origin::Profile {
            name: self.name.clone(),
            file: self.path.clone(),
            line,
            col,
        }
    }

    /// The values this profile sets for `addon`, as JSON.
    pub fn values_for(&self, addon: &str) -> Option<Value> {
        self.spec
            .values
            .get(addon)
            .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
    }

    /// The URL this profile gives its region: the first URL-looking environment input.
    pub fn region_url(&self) -> Option<String> {
        self.spec
            .env
            .values()
            .find_map(|v| v.as_str().filter(|s| s.contains("://")).map(str::to_owned))
    }
}

/// The names of all profiles in a tree.
pub fn names(tree: &Tree) -> Vec<String> {
    tree.files("")
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !f.contains('/'))
        .filter_map(|f| f.strip_suffix(".yaml").map(str::to_owned))
        .collect()
}

/// Loads a profile by name, or from a path when the argument names a `.yaml` file.
///
/// # Errors
/// Unknown profile (with a suggestion), or a YAML or shape error at `file:line:col`.
pub fn load(tree: &Tree, name: &str) -> Result<Profile, Problem> {
    let (text, file, short) = if std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml"))
        || name.contains('/')
    {
        let text =
            crate::files::read_text(std::path::Path::new(name), crate::files::INPUT_FILE_MAX)
                .map_err(|why| {
                    Problem::new(format!("cannot read profile file {name}"))
                        .at(format!("--profile {name}"))
                        .because(why.to_string())
                        .maybe_hint(refusal_hint(&why))
                })?;
        let short = std::path::Path::new(name)
            .file_stem()
            .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned());
        (text, name.to_owned(), short)
    } else {
        let rel = format!("{name}.yaml");
        let text = tree
            .read_limited(&rel, crate::files::INPUT_FILE_MAX)
            .map_err(|err| {
                Problem::new("cannot read profile")
                    .at(format!("--profile {name}"))
                    .because(err.to_string())
                    .maybe_hint(refusal_hint(&err.reason))
            })?
            .ok_or_else(|| {
                let known = names(tree);
                Problem::new(format!("unknown profile `{name}`"))
                    .at(format!("--profile {name}"))
                    .because(format!("known profiles: {}", known.join(", ")))
                    .maybe_hint(did_you_mean(name, known.iter().map(String::as_str)))
            })?;
        (text, tree.display(&rel), name.to_owned())
    };
    if let Some(duplicate) = LineMap::duplicate_keys(&text, &file).into_iter().next() {
        return Err(duplicate);
    }
    let spec: ProfileSpec = if text.trim().is_empty() {
        ProfileSpec::default()
    } else {
        serde_yaml_ng::from_str(&text)
            .map_err(|err| crate::values::yaml_problem(&err, &file, "invalid profile"))?
    };
    Ok(Profile {
        name: short,
        path: file,
        spec,
        lines: LineMap::of(&text),
    })
}

/// What to do about a file plane would not read.
pub fn refusal_hint(why: &crate::files::ReadRefusal) -> Option<String> {
    use crate::files::ReadRefusal;
    match why {
        ReadRefusal::TooLarge { limit, .. } => Some(format!(
            "values files and profiles may hold at most {}: split it, or move what is not a value out of it",
            crate::files::size(*limit)
        )),
        ReadRefusal::NotRegular(_) => {
            Some("name a regular file; to pass generated values, write them to a file first".into())
        }
        ReadRefusal::NotText | ReadRefusal::NameNotUtf8 => Some("save it as UTF-8".into()),
        ReadRefusal::OutsideRoot | ReadRefusal::LinkedFolder => Some(
            "a bundle or profile folder reads only its own files: copy the file in instead of linking it"
                .into(),
        ),
        ReadRefusal::TooDeep { .. } | ReadRefusal::TooMany { .. } => {
            Some("point --addons-dir at the bundles' folder itself".into())
        }
        ReadRefusal::NotFound | ReadRefusal::Io(_) => None,
    }
}
