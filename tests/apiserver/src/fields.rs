//! Field sets for server-side apply: leaf paths of an object, their `fieldsV1` form, the apply
//! merge, and the JSON merge and strategic merge patches.
//!
//! A list whose items are all objects with a distinct string `name` is a keyed list (its items are
//! addressed by name, like containers, ports and env); any other list is atomic (one leaf). The
//! real API server takes list types from the OpenAPI schema; this rule matches it for the lists
//! plane writes.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    Field(String),
    /// An item of a keyed list, by its `name`.
    Key(String),
}

pub type Path = Vec<Seg>;
pub type FieldSet = BTreeSet<Path>;

/// Top-level and metadata fields the server owns; they never appear in a field set.
fn ignored(path: &[Seg], skip_status: bool) -> bool {
    match path {
        [Seg::Field(f)] => f == "apiVersion" || f == "kind" || (skip_status && f == "status"),
        [Seg::Field(m), Seg::Field(f)] if m == "metadata" => matches!(
            f.as_str(),
            "name"
                | "namespace"
                | "uid"
                | "resourceVersion"
                | "generation"
                | "creationTimestamp"
                | "deletionTimestamp"
                | "deletionGracePeriodSeconds"
                | "managedFields"
                | "selfLink"
                | "generateName"
        ),
        _ => false,
    }
}

/// The name key of a keyed list, or `None` when the list is atomic.
fn keys_of(items: &[Value]) -> Option<Vec<&str>> {
    if items.is_empty() {
        return None;
    }
    let names: Vec<&str> = items
        .iter()
        .map(|i| i.get("name").and_then(Value::as_str))
        .collect::<Option<_>>()?;
    let unique: BTreeSet<&&str> = names.iter().collect();
    (unique.len() == names.len()).then_some(names)
}

/// The leaf paths of `value`. `skip_status` leaves out `status` (resources with a status
/// subresource track it separately).
pub fn field_set(value: &Value, skip_status: bool) -> FieldSet {
    let mut out = FieldSet::new();
    let mut path = Vec::new();
    walk(value, &mut path, &mut out, skip_status);
    out
}

fn walk(value: &Value, path: &mut Path, out: &mut FieldSet, skip_status: bool) {
    if ignored(path, skip_status) {
        return;
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(Seg::Field(k.clone()));
                walk(v, path, out, skip_status);
                path.pop();
            }
        }
        Value::Array(items) => {
            if let Some(names) = keys_of(items) {
                for (name, item) in names.into_iter().zip(items) {
                    path.push(Seg::Key(name.to_owned()));
                    walk(item, path, out, skip_status);
                    path.pop();
                }
            } else {
                out.insert(path.clone());
            }
        }
        _ => {
            // An empty object at the top would be no field at all.
            if !path.is_empty() {
                out.insert(path.clone());
            }
        }
    }
}

/// The value at `path`, if present.
pub fn get<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut cur = value;
    for seg in path {
        cur = match seg {
            Seg::Field(f) => cur.get(f)?,
            Seg::Key(k) => cur
                .as_array()?
                .iter()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(k))?,
        };
    }
    Some(cur)
}

/// The paths of `set` strictly under `p`. Paths sort lexicographically, so they follow `p`
/// as one run; set lookups keep applies of megabyte CRDs linear rather than quadratic.
pub fn descendants<'a>(set: &'a FieldSet, p: &'a [Seg]) -> impl Iterator<Item = &'a Path> + 'a {
    use std::ops::Bound;
    set.range::<[Seg], _>((Bound::Excluded(p), Bound::Unbounded))
        .take_while(move |q| q.starts_with(p))
}

/// Whether `set` holds `p` or a path under it.
pub fn covers(set: &FieldSet, p: &[Seg]) -> bool {
    set.contains(p) || descendants(set, p).next().is_some()
}

/// Whether `set` holds `q` or a path above it.
pub fn covered(set: &FieldSet, q: &[Seg]) -> bool {
    (1..=q.len()).any(|n| set.contains(&q[..n]))
}

/// A path as the API server prints it in conflict messages: `.spec.containers[name="app"].image`.
pub fn display(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Seg::Key(k) => {
                s.push_str("[name=\"");
                s.push_str(k);
                s.push_str("\"]");
            }
        }
    }
    s
}

/// The `fieldsV1` object for a field set (`f:` for fields, `k:{"name":..}` for keyed items, `.`
/// marking an owned list item).
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            let key = match seg {
                Seg::Field(f) => format!("f:{f}"),
                Seg::Key(k) => format!("k:{}", serde_json::json!({ "name": k })),
            };
            let entry = cur.entry(key).or_insert_with(|| Value::Object(Map::new()));
            let map = entry.as_object_mut().expect("fieldsV1 nodes are objects");
            if matches!(seg, Seg::Key(_)) {
                map.entry(".".to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
            cur = map;
        }
        // A map owned as a whole as well as by its keys (an Update that created it).
        if descendants(set, path).next().is_some() {
            cur.entry(".".to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    Value::Object(root)
}

/// Fields that are maps (of string keys to values) rather than structs in the built-in kinds:
/// an Update that creates one owns it as a whole too (`.` in `fieldsV1`), as in the real server.
pub fn is_granular_map(path: &[Seg]) -> bool {
    matches!(
        path.last(),
        Some(Seg::Field(f)) if matches!(
            f.as_str(),
            "labels" | "annotations" | "data" | "binaryData" | "matchLabels" | "nodeSelector"
                | "limits" | "requests"
        )
    )
}

/// Removes the value at `path`; then removes objects, keyed-list items (holding only their
/// `name`) and keyed lists left empty on the way up, as the fields that held them are no longer
/// anyone's.
pub fn remove(value: &mut Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    // A keyed item's name is its identity: it goes with the item once nothing else is left,
    // never on its own (another manager may still own fields of the item).
    let item_name =
        matches!(last, Seg::Field(f) if f == "name") && matches!(parent.last(), Some(Seg::Key(_)));
    if !item_name {
        remove_exact(value, path);
    }
    // Clean up from the deepest parent outwards; never drop top-level sections.
    for depth in (2..=parent.len()).rev() {
        let prefix = &parent[..depth];
        let empty = match get(value, prefix) {
            Some(Value::Object(m)) => match prefix.last() {
                Some(Seg::Key(_)) => m.keys().all(|k| k == "name"),
                _ => m.is_empty(),
            },
            Some(Value::Array(items)) => items.is_empty(),
            _ => false,
        };
        if empty {
            remove_exact(value, prefix);
        } else {
            break;
        }
    }
}

fn remove_exact(value: &mut Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    match (last, get_mut(value, parent)) {
        (Seg::Field(f), Some(Value::Object(map))) => {
            map.remove(f);
        }
        (Seg::Key(k), Some(Value::Array(items))) => {
            items.retain(|i| i.get("name").and_then(Value::as_str) != Some(k));
        }
        _ => {}
    }
}

fn get_mut<'a>(value: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = value;
    for seg in path {
        cur = match seg {
            Seg::Field(f) => cur.get_mut(f)?,
            Seg::Key(k) => cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(k))?,
        };
    }
    Some(cur)
}

/// Merges an applied configuration into a live object: objects merge key by key, keyed lists
/// item by item (applied items first, in applied order, then live items others own), anything
/// else is replaced.
pub fn apply_merge(live: &mut Value, applied: &Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                match l.get_mut(k) {
                    Some(lv) => apply_merge(lv, av),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) if keys_of(a).is_some() && keys_of(l).is_some() => {
            let mut out = Vec::with_capacity(a.len().max(l.len()));
            for item in a {
                let name = item.get("name").and_then(Value::as_str);
                let mut merged = l
                    .iter()
                    .find(|i| i.get("name").and_then(Value::as_str) == name)
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new()));
                apply_merge(&mut merged, item);
                out.push(merged);
            }
            for item in l.iter() {
                let name = item.get("name").and_then(Value::as_str);
                if !a
                    .iter()
                    .any(|i| i.get("name").and_then(Value::as_str) == name)
                {
                    out.push(item.clone());
                }
            }
            *l = out;
        }
        (l, a) => *l = a.clone(),
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// RFC 6902 JSON patch: `add`, `remove`, `replace`, `move`, `copy`, `test`.
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be a list of operations")?;
    for op in ops {
        let kind = op["op"]
            .as_str()
            .ok_or("a JSON patch operation needs \"op\"")?;
        let path = op["path"]
            .as_str()
            .ok_or("a JSON patch operation needs \"path\"")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or(format!("{kind} {path}: missing value"))
        };
        match kind {
            "add" => pointer_add(target, path, value()?)?,
            "remove" => {
                pointer_remove(target, path)?;
            }
            "replace" => {
                let slot = target
                    .pointer_mut(path)
                    .ok_or(format!("replace {path}: no such path"))?;
                *slot = value()?;
            }
            "test" => {
                if target.pointer(path) != Some(&value()?) {
                    return Err(format!("test {path}: the value differs"));
                }
            }
            "move" | "copy" => {
                let from = op["from"]
                    .as_str()
                    .ok_or(format!("{kind} {path}: missing from"))?;
                let v = if kind == "move" {
                    pointer_remove(target, from)?
                } else {
                    target
                        .pointer(from)
                        .cloned()
                        .ok_or(format!("copy {from}: no such path"))?
                };
                pointer_add(target, path, v)?;
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or(format!("{path:?} is not a JSON pointer"))?;
    Ok((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn pointer_add(target: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = v;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => {
            m.insert(last, v);
        }
        Some(Value::Array(a)) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("add {path}: bad index"))?
            };
            if idx > a.len() {
                return Err(format!("add {path}: index out of range"));
            }
            a.insert(idx, v);
        }
        _ => return Err(format!("add {path}: no such parent")),
    }
    Ok(())
}

fn pointer_remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let removed = match target.pointer_mut(&parent) {
        Some(Value::Object(m)) => m.remove(&last),
        Some(Value::Array(a)) => match last.parse::<usize>() {
            Ok(i) if i < a.len() => Some(a.remove(i)),
            _ => None,
        },
        _ => None,
    };
    removed.ok_or(format!("remove {path}: no such path"))
}

/// Strategic merge patch, simplified: a JSON merge patch in which keyed lists (items with a
/// `name`) merge item by item instead of being replaced, and `$patch: delete` on an item
/// removes it. Other directives (`$setElementOrder`, `$retainKeys`, ...) are dropped.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        let existing = t.entry(k.clone()).or_insert(Value::Null);
        match (existing, v) {
            (Value::Array(live), Value::Array(items))
                if keys_of(live).is_some()
                    && items
                        .iter()
                        .all(|i| i.get("name").and_then(Value::as_str).is_some()) =>
            {
                for item in items {
                    let name = item.get("name").and_then(Value::as_str);
                    let pos = live
                        .iter()
                        .position(|i| i.get("name").and_then(Value::as_str) == name);
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (pos, delete) {
                        (Some(i), true) => {
                            live.remove(i);
                        }
                        (Some(i), false) => strategic_merge_patch(&mut live[i], item),
                        (None, false) => {
                            let mut fresh = Value::Object(Map::new());
                            strategic_merge_patch(&mut fresh, item);
                            live.push(fresh);
                        }
                        (None, true) => {}
                    }
                }
            }
            (slot, v) => strategic_merge_patch(slot, v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &[&str]) -> Path {
        s.iter()
            .map(|x| {
                x.strip_prefix('=')
                    .map_or_else(|| Seg::Field((*x).to_owned()), |k| Seg::Key(k.to_owned()))
            })
            .collect()
    }

    #[test]
    fn field_sets_key_named_lists_and_skip_server_fields() {
        let v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "x", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "i"}], "args": ["a", "b"]},
            "status": {"phase": "Running"}
        });
        let set = field_set(&v, true);
        let want: FieldSet = [
            p(&["metadata", "labels", "a"]),
            p(&["spec", "containers", "=c", "name"]),
            p(&["spec", "containers", "=c", "image"]),
            p(&["spec", "args"]),
        ]
        .into_iter()
        .collect();
        assert_eq!(set, want);
        let f = to_fields_v1(&set);
        assert!(f["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["."].is_object());
        assert_eq!(
            display(&p(&["spec", "containers", "=c", "image"])),
            ".spec.containers[name=\"c\"].image"
        );
    }

    #[test]
    fn remove_cleans_up_empty_parents_and_items() {
        let mut v = json!({"spec": {"env": [{"name": "A", "value": "1"}]}});
        remove(&mut v, &p(&["spec", "env", "=A", "name"]));
        assert_eq!(
            v["spec"]["env"][0]["name"], "A",
            "a name goes only with its item"
        );
        remove(&mut v, &p(&["spec", "env", "=A", "value"]));
        assert_eq!(v, json!({"spec": {}}), "the emptied list goes too");
        let mut v = json!({"spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d", "image": "j"}], "x": {"y": 1}}});
        remove(&mut v, &p(&["spec", "containers", "=c", "image"]));
        remove(&mut v, &p(&["spec", "x", "y"]));
        assert_eq!(
            v,
            json!({"spec": {"containers": [{"name": "d", "image": "j"}]}})
        );
    }

    #[test]
    fn apply_merge_merges_keyed_lists() {
        let mut live = json!({"spec": {"c": [{"name": "a", "x": 1, "y": 2}], "args": [1, 2]}});
        apply_merge(
            &mut live,
            &json!({"spec": {"c": [{"name": "b"}, {"name": "a", "x": 3}], "args": [3]}}),
        );
        assert_eq!(
            live,
            json!({"spec": {"c": [{"name": "b"}, {"name": "a", "x": 3, "y": 2}], "args": [3]}})
        );
    }

    #[test]
    fn json_patches() {
        let mut t =
            json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x/y": "1"}}, "spec": {}});
        json_patch(
            &mut t,
            &json!([
                {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "c"},
                {"op": "replace", "path": "/metadata/labels/x~1y", "value": "2"},
                {"op": "copy", "from": "/metadata/labels", "path": "/spec/labels"},
                {"op": "move", "from": "/spec/labels", "path": "/spec/moved"},
            ]),
        )
        .unwrap();
        assert_eq!(
            t,
            json!({"metadata": {"finalizers": ["b", "c"], "labels": {"x/y": "2"}}, "spec": {"moved": {"x/y": "2"}}})
        );
        assert!(
            json_patch(
                &mut t,
                &json!([{"op": "test", "path": "/spec", "value": 1}])
            )
            .is_err()
        );
        assert!(json_patch(&mut t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }

    #[test]
    fn patches() {
        let mut t = json!({"a": 1, "b": {"c": 2}, "l": [{"name": "x", "v": 1}]});
        merge_patch(&mut t, &json!({"a": null, "b": {"d": 3}}));
        assert_eq!(
            t,
            json!({"b": {"c": 2, "d": 3}, "l": [{"name": "x", "v": 1}]})
        );
        strategic_merge_patch(
            &mut t,
            &json!({"l": [{"name": "y"}, {"name": "x", "v": 2}]}),
        );
        assert_eq!(t["l"], json!([{"name": "x", "v": 2}, {"name": "y"}]));
        strategic_merge_patch(&mut t, &json!({"l": [{"name": "x", "$patch": "delete"}]}));
        assert_eq!(t["l"], json!([{"name": "y"}]));
    }
}
