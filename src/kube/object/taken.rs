//! The fields plane applied that are no longer plane's: another manager took them (an edit, a
//! scale, a forced apply) or removed them. Read from `managedFields` alone, so that a value the
//! server normalized (a CPU of `0.5` stored as `500m`, an empty list dropped, a list's item
//! whose key the server defaulted) is never taken for a change: a field another client changes
//! leaves plane's apply entry, a value the server rewrites does not.

use serde_json::{Map, Value};

use super::unchanged::{
    applied_metadata, applied_top, children, entries, item_in, owned_fields, plane_entries,
};

/// A field's place in `fieldsV1`: its names from the top (`f:spec`, `f:replicas`).
pub type FieldPath = Vec<String>;

/// The fields of `desired` (what plane applied) that plane's apply entry on `live` no longer
/// holds. A list item plane no longer holds is told by its list. Empty when plane still holds
/// every field it applied; everything when plane holds nothing any more; `None` when
/// `managedFields` cannot tell (plane's entry in another version, or in two).
pub fn taken(desired: &Value, live: &Value) -> Option<Vec<FieldPath>> {
    let desired_map = desired.as_object()?;
    let api_version = desired["apiVersion"].as_str().unwrap_or_default();
    let nothing = Map::new();
    let fields = match owned_fields(live, api_version) {
        Some(fields) => fields,
        None if plane_entries(live).next().is_none() => &nothing,
        None => return None,
    };
    let metadata = applied_metadata(desired_map);
    let mut found = Walk {
        path: Vec::new(),
        taken: Vec::new(),
    };
    found.map(
        applied_top(desired_map, metadata.as_ref()),
        live.as_object(),
        fields,
    );
    Some(found.taken)
}

/// Whether a `fieldsV1` tree holds `path` (for a list, any of its items).
pub fn holds(fields: &Value, path: &[String]) -> bool {
    path.iter()
        .try_fold(fields, |node, name| node.get(name))
        .is_some()
}

/// The value at `path` (as [`taken`] gives it) in an object: `f:` names a field, `k:` the list
/// item with that key (a key field the item leaves out was defaulted by the server), `v:` the
/// list item with that value.
pub fn at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, name| {
        if let Some(field) = name.strip_prefix("f:") {
            value.get(field)
        } else if let Some(key) = name.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(key).ok()?;
            value.as_array()?.iter().find(|item| {
                key.iter()
                    .all(|(k, v)| item.get(k).is_none_or(|mine| mine == v))
            })
        } else {
            let item: Value = serde_json::from_str(name.strip_prefix("v:")?).ok()?;
            value.as_array()?.iter().find(|v| **v == item)
        }
    })
}

/// Whether `live` still holds everything `applied` sets, with the same values: what the server
/// added (defaults) is ignored, a changed or removed value is not.
pub fn contains(live: &Value, applied: &Value) -> bool {
    match (live, applied) {
        (_, Value::Null) => true,
        (Value::Object(live), Value::Object(applied)) => applied
            .iter()
            .all(|(k, v)| live.get(k).is_some_and(|l| contains(l, v)) || v.is_null()),
        (Value::Array(live), Value::Array(applied)) => {
            live.len() == applied.len() && live.iter().zip(applied).all(|(l, a)| contains(l, a))
        }
        (live, applied) => live == applied,
    }
}

/// A walk of what plane applied beside plane's fields, gathering what plane no longer holds.
struct Walk {
    path: FieldPath,
    taken: Vec<FieldPath>,
}

impl Walk {
    fn map<'a>(
        &mut self,
        desired: impl Iterator<Item = (&'a str, &'a Value)>,
        live: Option<&Map<String, Value>>,
        fields: &Map<String, Value>,
    ) {
        for (key, value) in desired {
            // Applying a null sets nothing.
            if value.is_null() {
                continue;
            }
            let name = format!("f:{key}");
            match fields.get(&name).and_then(Value::as_object) {
                None => {
                    let mut path = self.path.clone();
                    path.push(name);
                    self.taken.push(path);
                }
                Some(node) => {
                    self.path.push(name);
                    self.value(value, live.and_then(|l| l.get(key)), node);
                    self.path.pop();
                }
            }
        }
    }

    fn value(&mut self, desired: &Value, live: Option<&Value>, fields: &Map<String, Value>) {
        // A value held whole (a scalar, an atomic list or map) is plane's as long as its field is.
        if children(fields).next().is_none() {
            return;
        }
        match desired {
            Value::Object(map) => self.map(entries(map), live.and_then(Value::as_object), fields),
            Value::Array(items) => self.list(items, live.and_then(Value::as_array), fields),
            _ => {}
        }
    }

    /// A list whose items plane holds by key or value: fewer items held than applied is an item
    /// taken; each item still held is walked.
    fn list(&mut self, desired: &[Value], live: Option<&Vec<Value>>, fields: &Map<String, Value>) {
        let by_key_or_value =
            children(fields).all(|(n, _)| n.starts_with("k:") || n.starts_with("v:"));
        let Some(live) = live.filter(|_| by_key_or_value) else {
            return;
        };
        if children(fields).count() < desired.len() {
            self.taken.push(self.path.clone());
        }
        for item in desired {
            let Some((index, name, node)) = item_in(item, live, fields) else {
                continue;
            };
            if let (Value::Object(map), Some(node)) = (item, node.as_object()) {
                self.path.push(name.clone());
                self.map(entries(map), live[index].as_object(), node);
                self.path.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What plane applied: a Deployment with a port whose protocol the server defaults, a CPU
    /// the server rewrites and an empty list it drops.
    fn applied() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "web", "labels": {"app": "api"}},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{
                "name": "api", "image": "api:1", "args": [],
                "ports": [{"containerPort": 8080}],
                "resources": {"limits": {"cpu": "0.5"}}
            }]}}}
        })
    }

    fn plane_fields() -> Value {
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"api\"}": {".": {}, "f:name": {}, "f:image": {}, "f:args": {},
                    "f:ports": {"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":
                        {".": {}, "f:containerPort": {}}},
                    "f:resources": {"f:limits": {"f:cpu": {}}}}
            }}}}
        })
    }

    /// What a real API server (v1.36) stores after that apply, as seen on the control plane of
    /// `../shared/realcluster`: `500m`, no `args`, a `protocol`.
    fn live(plane: Value, others: &[Value]) -> Value {
        let mut entry = json!({"manager": "plane", "operation": "Apply",
            "apiVersion": "apps/v1", "fieldsType": "FieldsV1"});
        entry["fieldsV1"] = plane;
        let mut managed = vec![entry];
        managed.extend(others.iter().cloned());
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "web", "labels": {"app": "api"},
                "managedFields": managed},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{
                "name": "api", "image": "api:1", "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m"}}
            }]}}}
        })
    }

    #[test]
    fn values_the_server_rewrote_are_not_taken() {
        assert_eq!(taken(&applied(), &live(plane_fields(), &[])), Some(vec![]));
    }

    #[test]
    fn a_field_another_manager_took_is_named() {
        let mut fields = plane_fields();
        fields["f:spec"]
            .as_object_mut()
            .unwrap()
            .remove("f:replicas");
        let scaled = json!({"manager": "kubectl-scale", "operation": "Update",
            "subresource": "scale", "fieldsV1": {"f:spec": {"f:replicas": {}}}});
        let live = live(fields, std::slice::from_ref(&scaled));
        let taken = taken(&applied(), &live).unwrap();
        assert_eq!(
            taken,
            vec![vec!["f:spec".to_owned(), "f:replicas".to_owned()]]
        );
        assert!(holds(&scaled["fieldsV1"], &taken[0]));
    }

    #[test]
    fn a_field_inside_a_list_item_is_followed_by_its_key() {
        let mut fields = plane_fields();
        let container = fields
            .pointer_mut("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"api\"}")
            .unwrap();
        container.as_object_mut().unwrap().remove("f:image");
        let taken = taken(&applied(), &live(fields, &[])).unwrap();
        assert_eq!(
            taken[0].last().map(String::as_str),
            Some("f:image"),
            "{taken:?}"
        );
    }

    #[test]
    fn a_list_item_no_longer_held_is_told_by_its_list() {
        // Two ports applied, one still plane's: the list tells it.
        let mut two = applied();
        two["spec"]["template"]["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 8080}, {"containerPort": 9090}]);
        let mut live_two = live(plane_fields(), &[]);
        live_two["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([
            {"containerPort": 8080, "protocol": "TCP"},
            {"containerPort": 9090, "protocol": "TCP"}
        ]);
        let found = taken(&two, &live_two).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].last().map(String::as_str), Some("f:ports"));
        // No port plane's any more: its list left plane's entry.
        let mut fields = plane_fields();
        let container = fields
            .pointer_mut("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"api\"}")
            .unwrap();
        container.as_object_mut().unwrap().remove("f:ports");
        let found = taken(&applied(), &live(fields, &[])).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].last().map(String::as_str), Some("f:ports"));
    }

    #[test]
    fn a_taken_field_is_read_where_it_is_and_compared_beside_defaults() {
        let live = live(plane_fields(), &[]);
        let port = [
            "f:spec",
            "f:template",
            "f:spec",
            "f:containers",
            "k:{\"name\":\"api\"}",
            "f:ports",
            "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}",
        ]
        .map(str::to_owned);
        // The applied port left its protocol to the server: found all the same.
        let desired = applied();
        let applied_port = at(&desired, &port).unwrap();
        assert_eq!(applied_port, &json!({"containerPort": 8080}));
        let live_port = at(&live, &port).unwrap();
        assert!(contains(live_port, applied_port));
        assert!(!contains(
            &json!({"containerPort": 9090, "protocol": "TCP"}),
            applied_port
        ));
        let image = [&port[..5], &["f:image".to_owned()]].concat();
        assert_eq!(at(&live, &image), Some(&json!("api:1")));
        assert!(!contains(&json!([1, 2]), &json!([1])));
    }

    #[test]
    fn without_plane_s_entry_everything_was_taken_and_two_entries_cannot_tell() {
        let mut bare = live(plane_fields(), &[]);
        bare["metadata"]["managedFields"] = json!([]);
        let taken_all = taken(&applied(), &bare).unwrap();
        assert_eq!(taken_all.len(), 2, "{taken_all:?}");
        let mut twice = live(plane_fields(), &[]);
        let entry = twice["metadata"]["managedFields"][0].clone();
        twice["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .push(entry);
        assert_eq!(taken(&applied(), &twice), None);
    }
}
