//! Every rendered object checked against the rules the API server applies to its name, namespace,
//! labels, annotations and (Ingress) hosts, so a value the server would refuse stops the render —
//! all at once, each naming the object, its template and the values path the text came from.

use serde_json::Value;

use super::objects::Object;
use crate::error::Problem;
use crate::k8s_validation;
use crate::values::{Values, ValuesPath};

/// Checks every object; returns one problem per value that breaks a rule.
pub fn check(objects: &[Object], values: &Values) -> Vec<Problem> {
    let sources = string_values(values);
    let mut problems = Vec::new();
    for object in objects {
        let mut bad = |field: String, text: &str, why: String| {
            problems.push(problem(object, &field, text, &why, &sources, values));
        };
        let (name_ok, rule) = k8s_validation::name_rule(&object.id.kind);
        if let Err(why) = name_ok(&object.id.name) {
            bad(
                "metadata.name".into(),
                &object.id.name,
                format!("as a {} name ({rule}), {why}", object.id.kind),
            );
        }
        if let Some(namespace) = &object.id.namespace
            && let Err(why) = k8s_validation::dns1123_label(namespace)
        {
            bad(
                "metadata.namespace".into(),
                namespace,
                format!("as a namespace (a DNS-1123 label), {why}"),
            );
        }
        check_metadata(&object.value["metadata"], "metadata", &mut bad);
        if crate::kinds::lookup(&object.id.kind).is_some_and(|k| k.pod_template) {
            check_metadata(
                &object.value["spec"]["template"]["metadata"],
                "spec.template.metadata",
                &mut bad,
            );
        }
        if object.id.kind == "Ingress" {
            check_ingress(&object.value["spec"], &mut bad);
        }
    }
    problems
}

/// Labels and annotations of one metadata block.
fn check_metadata(metadata: &Value, at: &str, bad: &mut impl FnMut(String, &str, String)) {
    if let Some(labels) = metadata.get("labels").and_then(Value::as_object) {
        for (key, value) in labels {
            if let Err(why) = k8s_validation::qualified_name(key) {
                bad(
                    format!("{at}.labels key"),
                    key,
                    format!("as a label key, {why}"),
                );
            }
            match value {
                Value::String(text) => {
                    if let Err(why) = k8s_validation::label_value(text) {
                        bad(
                            format!("{at}.labels.{key}"),
                            text,
                            format!("as a label value, {why}"),
                        );
                    }
                }
                other => bad(
                    format!("{at}.labels.{key}"),
                    &other.to_string(),
                    "a label value must be a string".into(),
                ),
            }
        }
    }
    if let Some(annotations) = metadata.get("annotations").and_then(Value::as_object) {
        let mut size = 0;
        for (key, value) in annotations {
            if let Err(why) = k8s_validation::qualified_name(&key.to_ascii_lowercase()) {
                bad(
                    format!("{at}.annotations key"),
                    key,
                    format!("as an annotation key, {why}"),
                );
            }
            size += key.len();
            match value {
                Value::String(text) => size += text.len(),
                other => bad(
                    format!("{at}.annotations.{key}"),
                    &other.to_string(),
                    "an annotation value must be a string".into(),
                ),
            }
        }
        if size > k8s_validation::ANNOTATIONS_MAX_BYTES {
            // The largest annotation is named, so that the values path it came from can be.
            let largest = annotations
                .iter()
                .filter_map(|(key, value)| Some((key, value.as_str()?)))
                .max_by_key(|(key, value)| key.len() + value.len());
            let (field, text) = largest.map_or_else(
                || (format!("{at}.annotations"), String::new()),
                |(key, value)| (format!("{at}.annotations.{key}"), value.to_owned()),
            );
            bad(
                field,
                &text,
                format!(
                    "all annotations together may take at most {} bytes (256 KiB); these take {size}",
                    k8s_validation::ANNOTATIONS_MAX_BYTES
                ),
            );
        }
    }
}

/// The hosts of an Ingress's rules and TLS entries.
fn check_ingress(spec: &Value, bad: &mut impl FnMut(String, &str, String)) {
    for (i, rule) in array(&spec["rules"]).iter().enumerate() {
        if let Some(host) = rule["host"].as_str().filter(|h| !h.is_empty())
            && let Err(why) = k8s_validation::ingress_host(host)
        {
            bad(
                format!("spec.rules[{i}].host"),
                host,
                format!("as an Ingress host, {why}"),
            );
        }
    }
    for (i, tls) in array(&spec["tls"]).iter().enumerate() {
        for (j, host) in array(&tls["hosts"]).iter().enumerate() {
            if let Some(host) = host.as_str()
                && let Err(why) = k8s_validation::ingress_host(host)
            {
                bad(
                    format!("spec.tls[{i}].hosts[{j}]"),
                    host,
                    format!("as an Ingress TLS host, {why}"),
                );
            }
        }
    }
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn problem(
    object: &Object,
    field: &str,
    text: &str,
    why: &str,
    sources: &[Source],
    values: &Values,
) -> Problem {
    let problem = Problem::new(format!("{} has an invalid {field} `{text}`", object.id))
        .at(object.template.clone())
        .because(why.to_owned());
    match source_of(text, sources) {
        Some(path) => {
            let origin = values
                .origin(path)
                .map_or_else(|| "the bundle".to_owned(), ToString::to_string);
            problem
                .because(format!(
                    "it comes from values path `{path}`, set by {origin}"
                ))
                .hint(format!(
                    "change `{path}`; the API server would refuse {}",
                    object.id
                ))
        }
        None => problem.hint(format!(
            "the template renders it; the API server would refuse {}",
            object.id
        )),
    }
}

/// A string in the values (a value, or a key of a mapping such as an annotations map) and its path.
struct Source {
    path: ValuesPath,
    text: String,
    is_key: bool,
}

/// The values path whose string or key the offending text is, or failing that the longest value
/// it contains (a name built from a value, like `<name>-head`).
fn source_of<'a>(text: &str, sources: &'a [Source]) -> Option<&'a ValuesPath> {
    sources
        .iter()
        .find(|s| !s.is_key && s.text == text)
        .or_else(|| sources.iter().find(|s| s.text == text))
        .or_else(|| {
            sources
                .iter()
                .filter(|s| !s.is_key && s.text.len() >= 3 && text.contains(s.text.as_str()))
                .max_by_key(|s| s.text.len())
        })
        .map(|s| &s.path)
}

/// Every string and mapping key in the values with its path, in a stable order.
fn string_values(values: &Values) -> Vec<Source> {
    fn walk(value: &Value, path: &ValuesPath, out: &mut Vec<Source>) {
        match value {
            Value::String(text) if !text.is_empty() => out.push(Source {
                path: path.clone(),
                text: text.clone(),
                is_key: false,
            }),
            Value::Object(map) => {
                for (key, child) in map {
                    out.push(Source {
                        path: path.key(key),
                        text: key.clone(),
                        is_key: true,
                    });
                    walk(child, &path.key(key), out);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    walk(child, &path.index(index), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(values.tree(), &ValuesPath::root(), &mut out);
    out
}
