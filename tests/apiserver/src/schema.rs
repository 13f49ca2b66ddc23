//! Validation and pruning of custom resources against a CRD version's `openAPIV3Schema`:
//! types, `required`, `enum`, bounds, lengths, item counts, `nullable`, int-or-string, pruning
//! of unknown fields unless `x-kubernetes-preserve-unknown-fields` keeps them, and the schema's
//! `default`s for absent fields of every object that is present, as a real API server fills them.

use crate::error::Cause;
use serde_json::{Map, Value};

/// What validating one object found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub causes: Vec<Cause>,
    /// Paths of unknown fields that were pruned (reported under `fieldValidation=Strict`).
    pub pruned: Vec<String>,
}

/// Validates `obj` in place, pruning unknown fields. `metadata`, `apiVersion` and `kind` at the
/// root are the server's business and are not checked against the schema.
pub fn validate(obj: &mut Value, schema: &Value) -> Outcome {
    let mut out = Outcome::default();
    let Value::Object(root) = obj else {
        return out;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = preserves(schema);
    let keys: Vec<String> = root.keys().cloned().collect();
    for k in keys {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.and_then(|p| p.get(&k)) {
            Some(sub) => {
                let v = root.get_mut(&k).expect("key listed above");
                check(v, sub, &k, &mut out);
                if v.is_null() && !nullable(sub) {
                    root.remove(&k);
                }
            }
            None if preserve => {}
            None => {
                root.remove(&k);
                out.pruned.push(k);
            }
        }
    }
    fill_defaults(root, schema);
    required(root, schema, "", &mut out);
    out
}

/// Puts each property's `default` where the object lacks it (structural defaulting: only in
/// objects that exist, never creating a parent for a default).
fn fill_defaults(map: &mut Map<String, Value>, schema: &Value) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (key, sub) in props {
        if let Some(default) = sub.get("default")
            && !map.contains_key(key)
        {
            map.insert(key.clone(), default.clone());
        }
    }
}

fn preserves(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn nullable(schema: &Value) -> bool {
    schema.get("nullable").and_then(Value::as_bool) == Some(true)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn cause(out: &mut Outcome, reason: &str, field: &str, message: String) {
    out.causes.push(Cause {
        reason: reason.to_owned(),
        message,
        field: field.to_owned(),
    });
}

/// How the API server quotes a value in `Invalid value: ...`.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        Value::Object(_) => "\"object\"".to_owned(),
        Value::Array(_) => "\"array\"".to_owned(),
        other => other.to_string(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn required(map: &Map<String, Value>, schema: &Value, path: &str, out: &mut Outcome) {
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if map.get(r).is_none_or(Value::is_null) {
                cause(
                    out,
                    "FieldValueRequired",
                    &join(path, r),
                    "Required value".to_owned(),
                );
            }
        }
    }
}

fn check(v: &mut Value, schema: &Value, path: &str, out: &mut Outcome) {
    if v.is_null() {
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            cause(
                out,
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body must be of type integer,string: \"{}\"",
                    shown(v),
                    type_name(v)
                ),
            );
        }
        return;
    }
    if let Some(want) = schema.get("type").and_then(Value::as_str) {
        let got = type_name(v);
        let ok = got == want || (want == "number" && got == "integer");
        if !ok {
            cause(
                out,
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {}: {path} in body must be of type {want}: \"{got}\"",
                    shown(v)
                ),
            );
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(shown).collect();
        cause(
            out,
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                shown(v),
                list.join(", ")
            ),
        );
    }
    match v {
        Value::Number(n) => bounds(n.as_f64().unwrap_or(0.0), schema, path, v, out),
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                cause(
                    out,
                    "FieldValueInvalid",
                    path,
                    format!(
                        "Invalid value: {}: {path} in body should be at least {min} chars long",
                        shown(v)
                    ),
                );
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                cause(
                    out,
                    "FieldValueTooLong",
                    path,
                    format!("Too long: may not be more than {max} bytes"),
                );
            }
        }
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && n < min
            {
                cause(
                    out,
                    "FieldValueInvalid",
                    path,
                    format!("Invalid value: {n}: {path} in body should have at least {min} items"),
                );
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && n > max
            {
                cause(
                    out,
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {n}: must have at most {max} items"),
                );
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    check(item, item_schema, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            let preserve = preserves(schema)
                || schema.get("additionalProperties").and_then(Value::as_bool) == Some(true)
                || schema
                    .get("x-kubernetes-embedded-resource")
                    .and_then(Value::as_bool)
                    == Some(true);
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let sub = props.and_then(|p| p.get(&k)).or(additional);
                let child = join(path, &k);
                match sub {
                    Some(sub) => {
                        let cv = map.get_mut(&k).expect("key listed above");
                        check(cv, sub, &child, out);
                        if cv.is_null() && !nullable(sub) {
                            map.remove(&k);
                        }
                    }
                    None if preserve => {}
                    None => {
                        map.remove(&k);
                        out.pruned.push(child);
                    }
                }
            }
            fill_defaults(map, schema);
            required(map, schema, path, out);
        }
        _ => {}
    }
}

fn bounds(n: f64, schema: &Value, path: &str, v: &Value, out: &mut Outcome) {
    let excl_min = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
    let excl_max = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && (n < min || (excl_min && n <= min))
    {
        let rel = if excl_min {
            "greater than"
        } else {
            "greater than or equal to"
        };
        cause(
            out,
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {v}: {path} in body should be {rel} {}",
                schema["minimum"]
            ),
        );
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && (n > max || (excl_max && n >= max))
    {
        let rel = if excl_max {
            "less than"
        } else {
            "less than or equal to"
        };
        cause(
            out,
            "FieldValueInvalid",
            path,
            format!(
                "Invalid value: {v}: {path} in body should be {rel} {}",
                schema["maximum"]
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 5},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "port": {"x-kubernetes-int-or-string": true},
                        "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                },
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }
        })
    }

    #[test]
    fn valid_objects_keep_known_and_preserved_fields_and_lose_unknown_ones() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"size": 2, "port": "http", "items": [{"n": "x", "junk": 1}], "free": {"any": 1}, "labels": {"k": "v"}, "extra": true},
            "junk": 1});
        let out = validate(&mut o, &schema());
        assert!(out.causes.is_empty(), "{:?}", out.causes);
        assert_eq!(
            out.pruned,
            vec![
                "junk".to_owned(),
                "spec.extra".to_owned(),
                "spec.items[0].junk".to_owned()
            ]
        );
        assert_eq!(o["spec"]["free"]["any"], 1);
        assert!(o.get("junk").is_none());
    }

    #[test]
    fn invalid_objects_name_every_field() {
        let mut o = json!({"spec": {"size": 9, "mode": "c", "port": 1.5, "labels": {"k": 1}}});
        let out = validate(&mut o, &schema());
        let fields: Vec<&str> = out.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["spec.labels.k", "spec.mode", "spec.port", "spec.size"]
        );
        let mut o = json!({"spec": {"size": "two"}});
        let out = validate(&mut o, &schema());
        assert_eq!(
            out.causes[0].message,
            "Invalid value: \"two\": spec.size in body must be of type integer: \"string\""
        );
        let mut o = json!({"spec": {}});
        let out = validate(&mut o, &schema());
        assert_eq!(out.causes[0].field, "spec.size");
        assert_eq!(out.causes[0].reason, "FieldValueRequired");
    }
}
