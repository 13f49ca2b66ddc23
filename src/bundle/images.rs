//! Container images in a render: where each runs, the values that set it, the registry mirrors
//! that rewrite it (values and objects alike) and the digests that pin it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Object;
use crate::error::Problem;
use crate::values::{Origin, Values, ValuesPath};

/// An image an operator starts later, which the render itself may not show (an operator's
/// pods run the image its custom resource names): declared in addon.yaml so that `plane images` lists it and
/// mirrors rewrite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedImage {
    /// The values path of the image: `{repository, tag, digest}`, or a string.
    pub path: String,
    /// Who runs it.
    #[serde(default)]
    pub description: String,
}

/// Where a value sets an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueSite {
    pub path: String,
    /// Where the value came from (`file:line:col`, `--set ...`).
    pub origin: String,
}

/// One image of a render, de-duplicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUse {
    /// As the cluster pulls it (mirrored).
    pub image: String,
    /// As the bundle and values named it, when a mirror rewrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `sha256:...` when the image is pinned by digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// `Kind/namespace/name (container)` of each container that runs it.
    pub objects: Vec<String>,
    /// The values that set it.
    pub values: Vec<ValueSite>,
    /// Who starts it, when the bundle declares it as a related image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<String>,
}

/// A profile's registry mirrors: the longest source prefix (`docker.io`, `quay.io/acme`)
/// that an image's full name starts with is replaced by its mirror.
#[derive(Debug, Clone, Default)]
pub struct Mirrors(Vec<(String, String)>);

impl Mirrors {
    /// Checks and sorts `map` (source -> mirror); problems name the profile's lines.
    ///
    /// # Errors
    /// A source or mirror that is not a registry host with an optional path.
    pub fn new(
        map: &BTreeMap<String, String>,
        at: &dyn Fn(&str) -> String,
    ) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut pairs = Vec::new();
        for (source, mirror) in map {
            for (what, text) in [("source", source), ("mirror", mirror)] {
                let ok = is_registry(text);
                if !ok {
                    problems.push(
                        Problem::new(format!("registryMirrors: `{text}` is not a registry"))
                            .at(at(source))
                            .because(format!("the {what} must be a host with an optional path, without a scheme, tag or digest"))
                            .hint("write `docker.io: registry.corp/dockerhub`"),
                    );
                }
            }
            pairs.push((canonical_prefix(source), mirror.clone()));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        // Longest source first, so `quay.io/acme` wins over `quay.io`.
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        Ok(Self(pairs))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `image` pulled from its mirror, or `None` when no mirror covers it.
    pub fn rewrite(&self, image: &str) -> Option<String> {
        let reference = Reference::parse(image);
        let full = reference.full_name();
        let (source, mirror) = self
            .0
            .iter()
            .find(|(source, _)| full == *source || full.starts_with(&format!("{source}/")))?;
        let rest = full[source.len()..].trim_start_matches('/');
        let mut out = if rest.is_empty() {
            mirror.clone()
        } else {
            format!("{mirror}/{rest}")
        };
        if let Some(tag) = reference.tag {
            out.push_str(&format!(":{tag}"));
        }
        if let Some(digest) = reference.digest {
            out.push_str(&format!("@{digest}"));
        }
        (out != image).then_some(out)
    }
}

/// A registry host (a port allowed) with an optional path: no scheme, tag, digest or blank.
fn is_registry(text: &str) -> bool {
    !text.is_empty()
        && !text.contains("://")
        && !text.contains(['@', ' ', '\t'].as_slice())
        && text.split('/').all(|part| !part.is_empty())
        && text.split('/').skip(1).all(|part| !part.contains(':'))
}

/// `docker.io` for Docker Hub's other names; other prefixes as written.
fn canonical_prefix(prefix: &str) -> String {
    for hub in ["index.docker.io", "registry-1.docker.io"] {
        if let Some(rest) = prefix.strip_prefix(hub) {
            return format!("docker.io{rest}");
        }
    }
    prefix.to_owned()
}

/// An image reference: `[registry/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference<'a> {
    /// The registry host, `docker.io` when none is written.
    pub registry: String,
    /// The repository path, `library/NAME` on Docker Hub for a one-word name.
    pub path: String,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> Reference<'a> {
    pub fn parse(image: &'a str) -> Self {
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (image, None),
        };
        let (name, tag) = match name.rfind(':') {
            Some(at) if !name[at..].contains('/') => (&name[..at], Some(&name[at + 1..])),
            _ => (name, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (canonical_prefix(first), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), name.to_owned()),
        };
        let path = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Self {
            registry,
            path,
            tag,
            digest,
        }
    }

    /// `registry/path`, Docker Hub's included.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.registry, self.path)
    }
}

/// Calls `f` with each container of `object` (any `containers`, `initContainers` or
/// `ephemeralContainers` list, however deep: a Deployment's pod template, the pod templates
/// of an operator's custom resources) and its `image` value.
pub fn each_container(object: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    match object {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if matches!(
                    key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Value::Array(items) = value
                {
                    for item in items.iter_mut() {
                        let name = item["name"].as_str().unwrap_or("-").to_owned();
                        if let Some(image) = item.get_mut("image").filter(|i| i.is_string()) {
                            f(&name, image);
                        }
                    }
                }
                each_container(value, f);
            }
        }
        Value::Array(items) => {
            for item in items {
                each_container(item, f);
            }
        }
        _ => {}
    }
}

/// Each container of `object` (as [`each_container`] finds them) with its image, read only:
/// what every render lists, without copying its objects.
pub fn containers(object: &Value) -> Vec<(&str, &str)> {
    fn walk<'a>(value: &'a Value, out: &mut Vec<(&'a str, &'a str)>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if matches!(
                        key.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    ) {
                        for item in child.as_array().into_iter().flatten() {
                            if let Some(image) = item["image"].as_str() {
                                out.push((item["name"].as_str().unwrap_or("-"), image));
                            }
                        }
                    }
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(object, &mut out);
    out
}

/// The image an image value names: a string, or `{repository, tag, digest}`.
pub fn image_of(value: &Value) -> Option<String> {
    if let Some(text) = value.as_str() {
        return Some(text.to_owned());
    }
    let repository = value.get("repository")?.as_str()?;
    let mut image = repository.to_owned();
    if let Some(tag) = value
        .get("tag")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        image.push_str(&format!(":{tag}"));
    }
    if let Some(digest) = value
        .get("digest")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty())
    {
        image.push_str(&format!("@{digest}"));
    }
    Some(image)
}

/// Every image value in `values`: maps with a string `repository` (the `{repository, tag,
/// digest}` convention), and the related images' paths; with their paths.
fn image_values(values: &Values, related: &[RelatedImage]) -> Vec<(ValuesPath, String)> {
    fn walk(value: &Value, path: &ValuesPath, out: &mut Vec<(ValuesPath, String)>) {
        match value {
            Value::Object(map) => {
                if map.get("repository").is_some_and(Value::is_string)
                    && let Some(image) = image_of(value)
                {
                    out.push((path.clone(), image));
                    return;
                }
                for (key, child) in map {
                    walk(child, &path.key(key), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &path.index(i), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(values.tree(), &ValuesPath::root(), &mut out);
    for image in related {
        if let Ok(path) = ValuesPath::parse(&image.path)
            && let Some(text) = values.get(&path).and_then(Value::as_str)
            && !out.iter().any(|(p, _)| *p == path)
        {
            out.push((path, text.to_owned()));
        }
    }
    out
}

/// Rewrites every image value through the mirrors before the render, so that wherever a
/// template puts it (a container, an operator's flag or environment, a custom resource) it is
/// the mirror's. Returns what each mirrored image was.
///
/// # Errors
/// A value that cannot be set (never for a path just read).
pub fn mirror_values(
    values: &mut Values,
    related: &[RelatedImage],
    mirrors: &Mirrors,
    origin: &Origin,
) -> Result<BTreeMap<String, String>, Problem> {
    let mut sources = BTreeMap::new();
    if mirrors.is_empty() {
        return Ok(sources);
    }
    for (path, image) in image_values(values, related) {
        let Some(mirrored) = mirrors.rewrite(&image) else {
            continue;
        };
        let is_map = values.get(&path).is_some_and(Value::is_object);
        let result = if is_map {
            let repository = values
                .get(&path.key("repository"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            match mirrors.rewrite(&repository) {
                Some(new) => values.set(&path.key("repository"), Value::String(new), origin),
                None => Ok(()),
            }
        } else {
            values.set(&path, Value::String(mirrored.clone()), origin)
        };
        result.map_err(|why| {
            Problem::new(format!("cannot mirror the image at {path}")).because(why)
        })?;
        sources.insert(mirrored, image);
    }
    Ok(sources)
}

/// Rewrites every container image of the render through the mirrors (images the templates
/// write as literals included), adding what each was to `sources`.
pub fn mirror_objects(
    objects: &mut [Object],
    mirrors: &Mirrors,
    sources: &mut BTreeMap<String, String>,
) {
    if mirrors.is_empty() {
        return;
    }
    for object in objects {
        each_container(&mut object.value, &mut |_, image| {
            let text = image.as_str().unwrap_or_default().to_owned();
            // Already the mirror's (from a mirrored value): never rewritten twice, even when a
            // mirror lives under a source's prefix.
            if sources.contains_key(&text) {
                return;
            }
            if let Some(mirrored) = mirrors.rewrite(&text) {
                sources.entry(mirrored.clone()).or_insert(text);
                *image = Value::String(mirrored);
            }
        });
    }
}

/// Every image of the render and the related images, each with the containers that run it and
/// the values that set it.
pub fn collect(
    objects: &[Object],
    values: &Values,
    related: &[RelatedImage],
    sources: &BTreeMap<String, String>,
) -> Vec<ImageUse> {
    let mut found: BTreeMap<String, ImageUse> = BTreeMap::new();
    let new_use = |image: &str| ImageUse {
        image: image.to_owned(),
        source: sources.get(image).cloned(),
        digest: Reference::parse(image).digest.map(str::to_owned),
        objects: Vec::new(),
        values: Vec::new(),
        related: None,
    };
    for object in objects {
        let subject = object.id.subject();
        for (container, image) in containers(&object.value) {
            let use_ = found
                .entry(image.to_owned())
                .or_insert_with(|| new_use(image));
            let at = format!("{subject} ({container})");
            if !use_.objects.contains(&at) {
                use_.objects.push(at);
            }
        }
    }
    for image in related {
        if let Ok(path) = ValuesPath::parse(&image.path)
            && let Some(name) = values.get(&path).and_then(image_of)
        {
            found
                .entry(name.clone())
                .or_insert_with(|| new_use(&name))
                .related = Some(image.description.clone());
        }
    }
    for (path, image) in image_values(values, related) {
        if let Some(use_) = found.get_mut(&image) {
            let origin = values
                .origin(&path.key("repository"))
                .or_else(|| values.origin(&path))
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            use_.values.push(ValueSite {
                path: path.to_string(),
                origin,
            });
        }
    }
    found.into_values().collect()
}

/// With `required`, every image must be pinned by digest: one problem per image that is not,
/// naming the values that set it and where they came from.
pub fn require_digests(images: &[ImageUse], why: &str) -> Vec<Problem> {
    images
        .iter()
        .filter(|image| image.digest.is_none())
        .map(|image| {
            let mut problem =
                Problem::new(format!("image {} is pinned by a tag only", image.image))
                    .because(why.to_owned());
            match image.values.first() {
                Some(site) => {
                    problem = problem.at(format!("{} (from {})", site.path, site.origin));
                }
                None => {
                    problem = problem.at(image.objects.first().cloned().unwrap_or_default());
                }
            }
            for object in &image.objects {
                problem = problem.because(format!("run by {object}"));
            }
            problem.hint(
                "add `digest: sha256:...` beside its tag (`crane digest IMAGE` or `skopeo inspect` \
                 prints it)",
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mirrors(pairs: &[(&str, &str)]) -> Mirrors {
        let map = pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        Mirrors::new(&map, &|s| s.to_owned()).unwrap()
    }

    #[test]
    fn references_name_docker_hub_when_no_registry_is_written() {
        let r = Reference::parse("acme/engine:2.58.0-py312");
        assert_eq!(r.full_name(), "docker.io/acme/engine");
        assert_eq!(r.tag, Some("2.58.0-py312"));
        assert_eq!(
            Reference::parse("busybox").full_name(),
            "docker.io/library/busybox"
        );
        let r = Reference::parse("localhost:5000/a/b:1@sha256:abc");
        assert_eq!(
            (r.registry.as_str(), r.path.as_str()),
            ("localhost:5000", "a/b")
        );
        assert_eq!((r.tag, r.digest), (Some("1"), Some("sha256:abc")));
    }

    #[test]
    fn the_longest_mirror_wins_and_tags_and_digests_stay() {
        let m = mirrors(&[
            ("docker.io", "registry.corp/hub"),
            ("quay.io", "registry.corp/quay"),
            ("quay.io/acme", "registry.corp/acme"),
        ]);
        assert_eq!(
            m.rewrite("acme/engine:2.58.0").as_deref(),
            Some("registry.corp/hub/acme/engine:2.58.0")
        );
        assert_eq!(
            m.rewrite("busybox@sha256:00").as_deref(),
            Some("registry.corp/hub/library/busybox@sha256:00")
        );
        assert_eq!(
            m.rewrite("quay.io/acme/operator:v1.7.0").as_deref(),
            Some("registry.corp/acme/operator:v1.7.0")
        );
        assert_eq!(
            m.rewrite("quay.io/prometheus/prometheus:v3").as_deref(),
            Some("registry.corp/quay/prometheus/prometheus:v3")
        );
        assert_eq!(m.rewrite("ghcr.io/x/y:1"), None);
        // A mirror of the mirror's own registry is no loop: the mirrored name is left alone.
        assert_eq!(m.rewrite("quay.ionic/x:1"), None);
    }

    #[test]
    fn an_image_a_mirrored_value_set_is_not_mirrored_again() {
        let m = mirrors(&[("docker.io", "docker.io/mirror")]);
        let value = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "n"},
            "spec": {"containers": [
                {"name": "a", "image": "docker.io/mirror/acme/x:1"},
                {"name": "b", "image": "busybox:1"},
            ]},
        });
        let mut objects = vec![Object {
            id: crate::bundle::ObjectRef::of(&value).unwrap(),
            component: "c".into(),
            template: "t".into(),
            value,
        }];
        let mut sources = BTreeMap::from([(
            "docker.io/mirror/acme/x:1".to_owned(),
            "acme/x:1".to_owned(),
        )]);
        mirror_objects(&mut objects, &m, &mut sources);
        let containers = &objects[0].value["spec"]["containers"];
        assert_eq!(containers[0]["image"], "docker.io/mirror/acme/x:1");
        assert_eq!(containers[1]["image"], "docker.io/mirror/library/busybox:1");
        assert_eq!(sources["docker.io/mirror/library/busybox:1"], "busybox:1");
    }

    #[test]
    fn a_mirror_that_is_not_a_registry_is_refused() {
        for bad in [
            "https://registry.corp",
            "registry.corp/",
            "a b",
            "x@sha256:1",
        ] {
            let map = BTreeMap::from([("docker.io".to_owned(), bad.to_owned())]);
            assert!(Mirrors::new(&map, &|s| s.to_owned()).is_err(), "{bad}");
        }
    }
}
