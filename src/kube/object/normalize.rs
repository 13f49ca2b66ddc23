//! Make live and desired objects comparable: drop server bookkeeping, keep fields other
//! controllers own, and mask Secret values before anything is shown.

use serde_json::{Map, Value};

/// On an object: fields another controller owns after creation (comma-separated patterns such as
/// `spec.workerGroupSpecs[*].replicas`). plane sets them on create and never resets them.
pub const CONTROLLER_OWNED: &str = "plane.datalayer.io/controller-owned";

/// Removes what the server manages and what never counts as a change.
pub fn normalize(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(metadata) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for key in [
                "managedFields",
                "resourceVersion",
                "uid",
                "generation",
                "creationTimestamp",
                "selfLink",
            ] {
                metadata.remove(key);
            }
            // Empty maps are how the server writes absent ones.
            for key in ["annotations", "labels"] {
                if metadata
                    .get(key)
                    .and_then(Value::as_object)
                    .is_some_and(Map::is_empty)
                {
                    metadata.remove(key);
                }
            }
        }
    }
    object
}

/// One step of a field pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Every,
    Index(usize),
}

fn parse_pattern(pattern: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in pattern.trim().split('.') {
        let (key, rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            steps.push(Step::Key(key.to_owned()));
        }
        for index in rest
            .split('[')
            .map(|s| s.trim_end_matches(']'))
            .filter(|s| !s.is_empty())
        {
            steps.push(if index == "*" {
                Step::Every
            } else {
                index.parse().map_or(Step::Every, Step::Index)
            });
        }
    }
    steps
}

/// The controller-owned field patterns an object declares.
pub fn controller_owned(object: &Value) -> Vec<String> {
    object["metadata"]["annotations"][CONTROLLER_OWNED]
        .as_str()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Copies the live values of controller-owned fields into `desired`, so that applying it neither
/// resets them nor shows them as drift. Fields the live object lacks keep the desired value.
pub fn keep_controller_owned(desired: &mut Value, live: &Value) {
    for pattern in controller_owned(desired) {
        let steps = parse_pattern(&pattern);
        copy_at(desired, live, &steps);
    }
}

/// Removes the controller-owned fields from `object`: what plane applied there is the
/// controller's to change, so its change is no drift.
pub fn drop_controller_owned(object: &mut Value) {
    for pattern in controller_owned(object) {
        remove_at(object, &parse_pattern(&pattern));
    }
}

fn remove_at(object: &mut Value, steps: &[Step]) {
    match steps {
        [] => {}
        [Step::Key(key)] => {
            if let Some(map) = object.as_object_mut() {
                map.remove(key);
            }
        }
        [Step::Key(key), rest @ ..] => {
            if let Some(child) = object.get_mut(key) {
                remove_at(child, rest);
            }
        }
        [Step::Index(i), rest @ ..] => {
            if let Some(child) = object.get_mut(*i) {
                remove_at(child, rest);
            }
        }
        [Step::Every, rest @ ..] => {
            for child in object.as_array_mut().into_iter().flatten() {
                remove_at(child, rest);
            }
        }
    }
}

fn copy_at(desired: &mut Value, live: &Value, steps: &[Step]) {
    let Some((step, rest)) = steps.split_first() else {
        *desired = live.clone();
        return;
    };
    match step {
        Step::Key(key) => {
            if let (Some(d), Some(l)) = (desired.get_mut(key), live.get(key)) {
                copy_at(d, l, rest);
            }
        }
        Step::Index(i) => {
            if let (Some(d), Some(l)) = (desired.get_mut(*i), live.get(*i)) {
                copy_at(d, l, rest);
            }
        }
        Step::Every => {
            if let (Some(d), Some(l)) = (desired.as_array_mut(), live.as_array()) {
                for (d, l) in d.iter_mut().zip(l) {
                    copy_at(d, l, rest);
                }
            }
        }
    }
}

/// Replaces Secret values, and any field whose new value holds a secret input's value (which
/// the live field may hold the previous value of), so that no diff or log can show them:
/// unchanged ones become `***`, changed ones `*** (before)` and `*** (after)`.
pub fn mask_secrets(before: Option<&mut Value>, after: Option<&mut Value>) {
    let mut before = before;
    let mut after = after;
    if let Some(after) = after.as_deref_mut() {
        mask_secret_fields(before.as_deref_mut(), after);
    }
    let is_secret = |v: &Option<&mut Value>| v.as_ref().is_some_and(|v| v["kind"] == "Secret");
    if !is_secret(&before) && !is_secret(&after) {
        return;
    }
    for field in ["data", "stringData"] {
        let old = before
            .as_ref()
            .and_then(|b| b.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let new = after
            .as_ref()
            .and_then(|a| a.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(map) = before
            .as_mut()
            .and_then(|b| b.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            for (key, value) in map.iter_mut() {
                *value = Value::String(
                    if new.get(key) == Some(value) {
                        "***"
                    } else {
                        "*** (before)"
                    }
                    .into(),
                );
            }
        }
        if let Some(map) = after
            .as_mut()
            .and_then(|a| a.get_mut(field))
            .and_then(Value::as_object_mut)
        {
            for (key, value) in map.iter_mut() {
                *value = Value::String(
                    if old.get(key) == Some(value) {
                        "***"
                    } else {
                        "*** (after)"
                    }
                    .into(),
                );
            }
        }
    }
}

/// Masks each string of `after` that holds a secret ([`crate::redact`]), and the string at the
/// same place in `before`: the live value there may be the secret's previous value, which no
/// registry knows.
fn mask_secret_fields(before: Option<&mut Value>, after: &mut Value) {
    match after {
        Value::String(text) if crate::redact::holds_secret(text) => {
            let same = before
                .as_deref()
                .is_some_and(|b| b.as_str() == Some(text.as_str()));
            if same { "***" } else { "*** (after)" }.clone_into(text);
            if let Some(before) = before
                && before.is_string()
            {
                *before = Value::String(if same { "***" } else { "*** (before)" }.to_owned());
            }
        }
        Value::Object(map) => {
            let mut before = before.and_then(Value::as_object_mut);
            for (key, value) in map.iter_mut() {
                let old = before.as_deref_mut().and_then(|b| b.get_mut(key));
                mask_secret_fields(old, value);
            }
        }
        Value::Array(items) => {
            let mut before = before.and_then(Value::as_array_mut);
            for (index, value) in items.iter_mut().enumerate() {
                let old = before.as_deref_mut().and_then(|b| b.get_mut(index));
                mask_secret_fields(old, value);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_field_holding_a_secret_hides_its_live_value_too() {
        crate::redact::register("normalize-test-token-2");
        let mut before = json!({"kind": "Deployment", "metadata": {"annotations": {"t": "normalize-test-token-1", "k": "v"}}});
        let mut after = json!({"kind": "Deployment", "metadata": {"annotations": {"t": "normalize-test-token-2", "k": "v"}}});
        mask_secrets(Some(&mut before), Some(&mut after));
        assert_eq!(before["metadata"]["annotations"]["t"], "*** (before)");
        assert_eq!(after["metadata"]["annotations"]["t"], "*** (after)");
        assert_eq!(before["metadata"]["annotations"]["k"], "v");
    }

    #[test]
    fn normalize_drops_server_bookkeeping() {
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "a", "uid": "u", "resourceVersion": "7", "generation": 1,
            "creationTimestamp": "t", "managedFields": [], "annotations": {}}, "status": {"x": 1}, "data": {"k": "v"}});
        assert_eq!(
            normalize(&live),
            json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
        );
    }

    #[test]
    fn controller_owned_fields_keep_their_live_values() {
        let mut desired = json!({"metadata": {"annotations": {CONTROLLER_OWNED: "spec.workerGroupSpecs[*].replicas"}},
            "spec": {"workerGroupSpecs": [{"groupName": "w", "replicas": 1, "maxReplicas": 3}]}});
        let live = json!({"spec": {"workerGroupSpecs": [{"groupName": "w", "replicas": 3, "maxReplicas": 2}]}});
        keep_controller_owned(&mut desired, &live);
        assert_eq!(desired["spec"]["workerGroupSpecs"][0]["replicas"], 3);
        assert_eq!(desired["spec"]["workerGroupSpecs"][0]["maxReplicas"], 3);
        drop_controller_owned(&mut desired);
        assert_eq!(
            desired["spec"]["workerGroupSpecs"][0],
            json!({"groupName": "w", "maxReplicas": 3})
        );
        assert_eq!(
            parse_pattern("a.b[2].c[*]"),
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(2),
                Step::Key("c".into()),
                Step::Every
            ]
        );
    }

    #[test]
    fn secrets_are_masked_per_key() {
        let mut before = json!({"kind": "Secret", "data": {"same": "c2FtZQ==", "changed": "b2xk", "gone": "eA=="}});
        let mut after = json!({"kind": "Secret", "data": {"same": "c2FtZQ==", "changed": "bmV3", "added": "eQ=="}});
        mask_secrets(Some(&mut before), Some(&mut after));
        assert_eq!(
            before["data"],
            json!({"same": "***", "changed": "*** (before)", "gone": "*** (before)"})
        );
        assert_eq!(
            after["data"],
            json!({"same": "***", "changed": "*** (after)", "added": "*** (after)"})
        );
        let text = format!("{before}{after}");
        for secret in ["c2FtZQ==", "b2xk", "bmV3", "eA==", "eQ=="] {
            assert!(!text.contains(secret));
        }
    }
}
