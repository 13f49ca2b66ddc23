//! Checks the merged values against the bundle's values.schema.json and its ordering rules.

use serde_json::Value;

use super::{Values, ValuesPath};
use crate::error::{Problem, did_you_mean};

/// The keyword for "these numeric properties must not decrease in this order".
const ORDERED: &str = "x-plane-ordered";
/// The root keyword mapping old values paths to their new names (`{"web": "frontend"}`),
/// so a values file written for an older bundle is told what each key is called now.
const RENAMED: &str = "x-plane-renamed";

/// Validates `values` against `schema`, naming each failing values path and where its value came
/// from. Values under `secret_paths` are never shown.
pub fn validate(
    values: &Values,
    schema: &Value,
    schema_file: &str,
    secret_paths: &[ValuesPath],
) -> Vec<Problem> {
    let validator = match jsonschema::validator_for(schema) {
        Ok(validator) => validator,
        Err(err) => {
            return vec![
                Problem::new("the values schema is not a valid JSON Schema")
                    .at(schema_file.to_owned())
                    .because(err.to_string()),
            ];
        }
    };
    let mut problems = Vec::new();
    for err in validator.iter_errors(values.tree()) {
        let path = pointer_to_path(err.instance_path().as_str());
        if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
            err.kind()
        {
            let allowed = allowed_properties(schema, err.schema_path().as_str());
            for key in unexpected {
                let child = path.key(key);
                if let Some(renamed) = renamed_problems(values, schema, schema_file, &child) {
                    problems.extend(renamed);
                    continue;
                }
                problems.push(
                    Problem::new(format!("unknown value `{child}`"))
                        .at(origin_of(values, &child))
                        .because(format!("{schema_file} allows no key `{key}` under {path}"))
                        .maybe_hint(
                            did_you_mean(key, allowed.iter().map(String::as_str))
                                .map(|_| suggestion(key, &allowed, &path)),
                        ),
                );
            }
            continue;
        }
        let secret = secret_paths
            .iter()
            .any(|s| path.starts_with(s) || s.starts_with(&path));
        let message = if secret {
            err.masked().to_string()
        } else {
            err.to_string()
        };
        problems.push(
            Problem::new(format!("invalid value at `{path}`"))
                .at(origin_of(values, &path))
                .because(message),
        );
    }
    check_ordered(
        values,
        schema,
        schema,
        values.tree(),
        &ValuesPath::root(),
        &mut problems,
    );
    problems
}

/// One problem per value under an unknown key that the schema declares renamed (`x-plane-renamed`),
/// each naming the path to use instead; `None` when no rename covers `unknown`.
fn renamed_problems(
    values: &Values,
    schema: &Value,
    schema_file: &str,
    unknown: &ValuesPath,
) -> Option<Vec<Problem>> {
    let renames: Vec<(ValuesPath, ValuesPath)> = schema
        .get(RENAMED)
        .and_then(Value::as_object)?
        .iter()
        .filter_map(|(old, new)| {
            Some((
                ValuesPath::parse(old).ok()?,
                ValuesPath::parse(new.as_str()?).ok()?,
            ))
        })
        .collect();
    if !renames
        .iter()
        .any(|(old, _)| unknown.starts_with(old) || old.starts_with(unknown))
    {
        return None;
    }
    let mut leaves = Vec::new();
    if let Some(value) = values.get(unknown) {
        collect_leaves(value, unknown, &mut leaves);
    }
    if leaves.is_empty() {
        leaves.push(unknown.clone());
    }
    let problems = leaves
        .into_iter()
        .map(|leaf| {
            // The longest old path that covers this value wins (`web.autoscaler` before `web`).
            let Some((old, new)) = renames
                .iter()
                .filter(|(old, _)| leaf.starts_with(old))
                .max_by_key(|(old, _)| old.0.len())
            else {
                return Problem::new(format!("unknown value `{leaf}`"))
                    .at(origin_of(values, &leaf))
                    .because(format!("{schema_file} allows no value at `{leaf}`"));
            };
            let now = ValuesPath(
                new.0
                    .iter()
                    .chain(&leaf.0[old.0.len()..])
                    .cloned()
                    .collect(),
            );
            Problem::new(format!("unknown value `{leaf}`"))
                .at(origin_of(values, &leaf))
                .because(format!("{schema_file} renamed `{old}` to `{new}`"))
                .hint(format!("did you mean `{now}`? (renamed)"))
        })
        .collect();
    Some(problems)
}

/// The paths of the scalars, lists and empty mappings under `value`.
fn collect_leaves(value: &Value, path: &ValuesPath, leaves: &mut Vec<ValuesPath>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                collect_leaves(child, &path.key(key), leaves);
            }
        }
        _ => leaves.push(path.clone()),
    }
}

/// `did you mean `path.key`?` with the full values path of the closest allowed key.
fn suggestion(key: &str, allowed: &[String], path: &ValuesPath) -> String {
    let best = allowed
        .iter()
        .min_by_key(|candidate| strsim::damerau_levenshtein(key, candidate))
        .map_or_else(String::new, |best| path.key(best).to_string());
    format!("did you mean `{best}`?")
}

fn origin_of(values: &Values, path: &ValuesPath) -> String {
    values
        .origin(path)
        .map_or_else(|| format!("values path {path}"), ToString::to_string)
}

/// Converts a JSON pointer such as `/a/b/0` to a values path (numbers under lists become indices).
fn pointer_to_path(pointer: &str) -> ValuesPath {
    let mut path = ValuesPath::root();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        path = match token.parse::<usize>() {
            Ok(index) if !token.starts_with('+') => path.index(index),
            _ => path.key(&token),
        };
    }
    path
}

/// The property names the object schema above an `additionalProperties` failure allows.
fn allowed_properties(schema: &Value, schema_path: &str) -> Vec<String> {
    let parent = schema_path
        .rsplit_once('/')
        .map_or("", |(parent, _)| parent);
    schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

/// Walks schema and instance together and checks every `x-plane-ordered` rule on the way.
fn check_ordered(
    values: &Values,
    root: &Value,
    schema: &Value,
    instance: &Value,
    path: &ValuesPath,
    problems: &mut Vec<Problem>,
) {
    let schema = resolve(root, schema);
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check_ordered(values, root, sub, instance, path, problems);
        }
    }
    match instance {
        Value::Object(map) => {
            if let Some(order) = schema.get(ORDERED).and_then(Value::as_array) {
                let present: Vec<(&str, f64)> = order
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(|key| map.get(key).and_then(Value::as_f64).map(|n| (key, n)))
                    .collect();
                // Every out-of-order pair, so `min > max` is named even when a middle value sits between.
                for (i, &(low_key, low)) in present.iter().enumerate() {
                    for &(high_key, high) in &present[i + 1..] {
                        if low > high {
                            let (low_path, high_path) = (path.key(low_key), path.key(high_key));
                            problems.push(
                                Problem::new(format!(
                                    "`{low_path}` ({low}) is greater than `{high_path}` ({high})"
                                ))
                                .at(format!(
                                    "{low_path} from {}; {high_path} from {}",
                                    origin_of(values, &low_path),
                                    origin_of(values, &high_path)
                                ))
                                .because(format!(
                                    "the schema requires {}",
                                    order
                                        .iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join(" <= ")
                                ))
                                .hint(format!("lower {low_path} or raise {high_path}")),
                            );
                        }
                    }
                }
            }
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, child) in map {
                let sub = props
                    .and_then(|p| p.get(key))
                    .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()));
                if let Some(sub) = sub {
                    check_ordered(values, root, sub, child, &path.key(key), problems);
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items").filter(|s| s.is_object()) {
                for (index, child) in items.iter().enumerate() {
                    check_ordered(values, root, sub, child, &path.index(index), problems);
                }
            }
        }
        _ => {}
    }
}

/// Follows a local `$ref` (`#/$defs/...`).
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    for _ in 0..32 {
        match schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
        {
            Some(pointer) => match root.pointer(pointer) {
                Some(target) => schema = target,
                None => break,
            },
            None => break,
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{Origin, file_origin, parse_yaml};
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "worker": {"$ref": "#/$defs/worker"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535}
            },
            "$defs": {"worker": {
                "type": "object",
                "additionalProperties": false,
                "x-plane-ordered": ["minReplicas", "replicas", "maxReplicas"],
                "properties": {
                    "minReplicas": {"type": "integer"},
                    "replicas": {"type": "integer"},
                    "maxReplicas": {"type": "integer"}
                }
            }}
        })
    }

    fn values(text: &str) -> Values {
        let mut values = Values::default();
        let layer = parse_yaml(text, "values.yaml").unwrap();
        values.merge(&layer.value, &file_origin("values.yaml", &layer.lines));
        values
    }

    #[test]
    fn ordering_names_both_values_and_their_origins() {
        let mut v = values("worker:\n  minReplicas: 1\n  replicas: 1\n  maxReplicas: 3\n");
        assert!(validate(&v, &schema(), "s.json", &[]).is_empty());
        v.set(
            &ValuesPath::parse("worker.minReplicas").unwrap(),
            json!(5),
            &Origin::Set {
                arg: "worker.minReplicas=5".into(),
            },
        )
        .unwrap();
        let problems = validate(&v, &schema(), "s.json", &[]);
        // 5 > replicas (1) and 5 > maxReplicas (3): both pairs are named.
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[1]
                .to_string()
                .contains("`worker.minReplicas` (5) is greater than `worker.maxReplicas` (3)")
        );
        let text = problems[0].to_string();
        assert!(
            text.contains("worker.minReplicas") && text.contains("worker.replicas"),
            "{text}"
        );
        assert!(
            text.contains("--set worker.minReplicas=5") && text.contains("values.yaml:3:3"),
            "{text}"
        );
    }

    #[test]
    fn unknown_keys_get_a_suggestion_and_types_name_the_path() {
        let v = values("worker:\n  replcas: 2\nport: \"http\"\n");
        let problems = validate(&v, &schema(), "s.json", &[]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let all = problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            all.contains("unknown value `worker.replcas`") && all.contains("values.yaml:2:3"),
            "{all}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.hint.as_deref() == Some("did you mean `worker.replicas`?")),
            "{problems:?}"
        );
        assert!(
            all.contains("invalid value at `port`") && all.contains("values.yaml:3:1"),
            "{all}"
        );
    }

    #[test]
    fn renamed_keys_name_their_new_path() {
        let mut schema = schema();
        schema["x-plane-renamed"] = json!({"old": "worker", "old.max": "worker.maxReplicas"});
        let v = values("old:\n  replicas: 2\n  max: 3\n");
        let problems = validate(&v, &schema, "s.json", &[]);
        let shown: Vec<(String, Option<String>, Option<String>)> = problems
            .iter()
            .map(|p| (p.what.clone(), p.location.clone(), p.hint.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                (
                    "unknown value `old.max`".to_owned(),
                    Some("values.yaml:3:3".to_owned()),
                    Some("did you mean `worker.maxReplicas`? (renamed)".to_owned())
                ),
                (
                    "unknown value `old.replicas`".to_owned(),
                    Some("values.yaml:2:3".to_owned()),
                    Some("did you mean `worker.replicas`? (renamed)".to_owned())
                ),
            ]
        );
    }

    #[test]
    fn secret_values_are_masked() {
        let v = values("port: \"hunter2\"\n");
        let problems = validate(
            &v,
            &schema(),
            "s.json",
            &[ValuesPath::parse("port").unwrap()],
        );
        assert!(!problems[0].to_string().contains("hunter2"));
    }
}
