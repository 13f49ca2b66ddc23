//! Deciding without a request that applying an object would change nothing: the fields plane
//! owns on the live object (its server-side apply `managedFields` entry) are exactly the fields
//! of the desired object, with the same values. Anything this cannot prove is left to a dry-run.
//!
//! Why this is sound: a server-side apply sets the applier's fields to the applied values and
//! removes the fields it owned before but no longer applies; nothing else. When plane already
//! owns exactly the applied fields and every one holds the applied value, the result is the live
//! object. Whoever changed or removed one of plane's fields since (`kubectl edit`, a controller,
//! a forced apply) took it from plane's entry, so drift always fails the check and gets a dry-run.

use serde_json::{Map, Value};

use super::FIELD_MANAGER;

/// Whether applying `desired` over `live` is provably a no-op. `false` means "ask the server",
/// never "it changes".
pub fn provably_unchanged(desired: &Value, live: &Value) -> bool {
    let (Some(desired_map), Some(live_map)) = (desired.as_object(), live.as_object()) else {
        return false;
    };
    if desired["apiVersion"] != live["apiVersion"] {
        return false;
    }
    let Some(fields) = owned_fields(live, desired["apiVersion"].as_str().unwrap_or_default())
    else {
        return false;
    };
    let metadata = applied_metadata(desired_map);
    let top = applied_top(desired_map, metadata.as_ref());
    map_matches(top, live_map, fields)
}

/// The metadata an apply of `desired` sets: all of it but the name and namespace, which identify
/// the object and are never owned as fields. It is small: only it is copied, never the
/// (possibly megabyte) object.
pub(super) fn applied_metadata(desired: &Map<String, Value>) -> Option<Value> {
    desired
        .get("metadata")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "name" | "namespace"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<Map<String, Value>>()
        })
        .filter(|m| !m.is_empty())
        .map(Value::Object)
}

/// The top-level fields an apply of `desired` sets: everything but `apiVersion`, `kind` and
/// `status`, with `metadata` as [`applied_metadata`] gave it.
pub(super) fn applied_top<'a>(
    desired: &'a Map<String, Value>,
    metadata: Option<&'a Value>,
) -> impl Iterator<Item = (&'a str, &'a Value)> + Clone {
    desired
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "apiVersion" | "kind" | "status" | "metadata"))
        .map(|(k, v)| (k.as_str(), v))
        .chain(metadata.map(|m| ("metadata", m)))
}

/// A map's entries, by name.
pub(super) fn entries(map: &Map<String, Value>) -> impl Iterator<Item = (&str, &Value)> + Clone {
    map.iter().map(|(k, v)| (k.as_str(), v))
}

/// plane's apply entries in `managedFields` (not a subresource's): one, when plane applied it.
pub(super) fn plane_entries(live: &Value) -> impl Iterator<Item = &Value> {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| is_plane_apply(e))
}

/// Whether a `managedFields` entry is plane's apply (not a subresource's).
pub(crate) fn is_plane_apply(entry: &Value) -> bool {
    entry["manager"] == FIELD_MANAGER
        && entry["operation"] == "Apply"
        && entry
            .get("subresource")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
}

/// plane's apply entry in `managedFields`, for this apiVersion and not a subresource.
pub(super) fn owned_fields<'a>(
    live: &'a Value,
    api_version: &str,
) -> Option<&'a Map<String, Value>> {
    let mut mine = plane_entries(live);
    let entry = mine.next()?;
    if mine.next().is_some()
        || entry["apiVersion"] != api_version
        || entry["fieldsType"] != "FieldsV1"
    {
        return None;
    }
    entry["fieldsV1"].as_object()
}

/// The children of a `fieldsV1` node, without `.` (the node itself).
pub(super) fn children(fields: &Map<String, Value>) -> impl Iterator<Item = (&String, &Value)> {
    fields.iter().filter(|(k, _)| k.as_str() != ".")
}

/// A desired map (its entries) against the live map and plane's fields at the same place: the
/// same field names, each matching.
fn map_matches<'a>(
    desired: impl Iterator<Item = (&'a str, &'a Value)> + Clone,
    live: &Map<String, Value>,
    fields: &Map<String, Value>,
) -> bool {
    if children(fields).count() != desired.clone().count() {
        return false;
    }
    desired.into_iter().all(|(key, value)| {
        let (Some(node), Some(live_value)) = (fields.get(&format!("f:{key}")), live.get(key))
        else {
            return false;
        };
        node.as_object()
            .is_some_and(|node| value_matches(value, live_value, node))
    })
}

fn value_matches(desired: &Value, live: &Value, fields: &Map<String, Value>) -> bool {
    if desired.is_null() {
        return false;
    }
    if children(fields).next().is_none() {
        // One field for the whole value: a scalar, an atomic list or map (a Service's selector,
        // a binding's roleRef), or an empty one. Compared whole.
        return desired == live;
    }
    match desired {
        Value::Object(map) => live
            .as_object()
            .is_some_and(|live| map_matches(entries(map), live, fields)),
        Value::Array(items) => list_matches(items, live, fields),
        _ => false,
    }
}

/// A list whose items plane owns one by one: by key (`k:{...}`) or, for scalars, by value
/// (`v:...`). Every desired item must be one of plane's, in the live order, and plane must own
/// no other item.
fn list_matches(desired: &[Value], live: &Value, fields: &Map<String, Value>) -> bool {
    let Some(live) = live.as_array() else {
        return false;
    };
    if children(fields).count() != desired.len() {
        return false;
    }
    let mut last_index = None;
    for item in desired {
        let Some((live_index, _, node)) = item_in(item, live, fields) else {
            return false;
        };
        if last_index.is_some_and(|last| live_index <= last) {
            return false;
        }
        last_index = Some(live_index);
        let matches = match item {
            Value::Object(map) => match (node.as_object(), live[live_index].as_object()) {
                (Some(node), Some(live)) => map_matches(entries(map), live, node),
                _ => false,
            },
            _ => true,
        };
        if !matches {
            return false;
        }
    }
    true
}

/// The live index, `fieldsV1` name and node of a desired list item; `None` unless exactly one
/// of plane's items is it.
pub(super) fn item_in<'a>(
    item: &Value,
    live: &[Value],
    fields: &'a Map<String, Value>,
) -> Option<(usize, &'a String, &'a Value)> {
    let mut found = None;
    for (name, node) in children(fields) {
        let here = if let Some(key) = name.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            let item = item.as_object()?;
            // Key fields the desired item leaves out were defaulted by the server (a port's
            // protocol); those it sets must agree.
            key.iter()
                .all(|(k, v)| item.get(k).is_none_or(|mine| mine == v))
                .then(|| {
                    live.iter()
                        .position(|l| key.iter().all(|(k, v)| l.get(k) == Some(v)))
                })
                .flatten()
        } else if let Some(value) = name.strip_prefix("v:") {
            let value: Value = serde_json::from_str(value).ok()?;
            (&value == item)
                .then(|| live.iter().position(|l| l == item))
                .flatten()
        } else {
            // Positional (`i:`) or unknown: not provable.
            return None;
        };
        if let Some(index) = here {
            if found.is_some() {
                return None;
            }
            found = Some((index, name, node));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "web", "labels": {"app": "api"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "api", "image": image, "ports": [{"containerPort": 8080, "name": "http"}],
                 "args": ["--port", "8080"]}
            ]}}}
        })
    }

    /// What a real API server stores after plane applied `deployment("api:1")`: defaults added,
    /// ports keyed by port and (defaulted) protocol.
    fn live(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "api", "namespace": "web", "labels": {"app": "api"},
                "resourceVersion": "7", "generation": 1,
                "managedFields": [
                    {"manager": "plane", "operation": "Apply", "apiVersion": "apps/v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"api\"}": {".": {}, "f:name": {}, "f:image": {}, "f:args": {},
                                "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":
                                    {".": {}, "f:containerPort": {}, "f:name": {}}}}
                        }}}}
                    }},
                    {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                     "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}
                ]
            },
            "spec": {"replicas": 2, "revisionHistoryLimit": 10, "template": {"spec": {
                "restartPolicy": "Always",
                "containers": [{"name": "api", "image": image, "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "args": ["--port", "8080"]}]}}},
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn the_same_fields_with_the_same_values_are_a_no_op() {
        assert!(provably_unchanged(&deployment("api:1"), &live("api:1")));
    }

    #[test]
    fn a_changed_value_or_field_set_needs_the_server() {
        assert!(!provably_unchanged(&deployment("api:2"), &live("api:1")));
        let mut more = deployment("api:1");
        more["spec"]["minReadySeconds"] = json!(5);
        assert!(!provably_unchanged(&more, &live("api:1")));
        let mut fewer = deployment("api:1");
        fewer["spec"].as_object_mut().unwrap().remove("replicas");
        assert!(!provably_unchanged(&fewer, &live("api:1")));
        let mut args = deployment("api:1");
        args["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--port", "9090"]);
        assert!(!provably_unchanged(&args, &live("api:1")));
        let mut label = deployment("api:1");
        label["metadata"]["labels"]["tier"] = json!("web");
        assert!(!provably_unchanged(&label, &live("api:1")));
    }

    #[test]
    fn drift_by_another_manager_needs_the_server() {
        // `kubectl scale` took spec.replicas: it left plane's entry.
        let mut scaled = live("api:1");
        scaled["spec"]["replicas"] = json!(5);
        let fields = scaled
            .pointer_mut("/metadata/managedFields/0/fieldsV1/f:spec")
            .unwrap();
        fields.as_object_mut().unwrap().remove("f:replicas");
        assert!(!provably_unchanged(&deployment("api:1"), &scaled));
        // A value changed under plane's ownership is caught by the value comparison.
        let mut edited = live("api:1");
        edited["spec"]["replicas"] = json!(3);
        assert!(!provably_unchanged(&deployment("api:1"), &edited));
    }

    #[test]
    fn without_plane_s_apply_entry_nothing_is_proven() {
        let mut other = live("api:1");
        other["metadata"]["managedFields"][0]["manager"] = json!("helm");
        assert!(!provably_unchanged(&deployment("api:1"), &other));
        let mut old_version = live("api:1");
        old_version["metadata"]["managedFields"][0]["apiVersion"] = json!("apps/v1beta1");
        assert!(!provably_unchanged(&deployment("api:1"), &old_version));
        let mut no_fields = live("api:1");
        no_fields["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert!(!provably_unchanged(&deployment("api:1"), &no_fields));
    }

    #[test]
    fn reordered_items_and_nulls_need_the_server() {
        let two = |first: &str, second: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                   "spec": {"env": [{"name": first, "value": "1"}, {"name": second, "value": "1"}]}})
        };
        let mut live = two("a", "b");
        live["metadata"]["managedFields"] = json!([{"manager": "plane", "operation": "Apply",
            "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:env": {
                "k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:value": {}},
                "k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}]);
        assert!(provably_unchanged(&two("a", "b"), &live));
        assert!(!provably_unchanged(&two("b", "a"), &live));
        let mut null = two("a", "b");
        null["spec"]["env"][0]["value"] = Value::Null;
        assert!(!provably_unchanged(&null, &live));
    }
}
