//! The verbs on objects: get, list, create, update, patch (apply, merge, strategic merge) and
//! delete, with managed fields, generation, defaults, validation and finalizers.

use crate::defaults;
use crate::error::{ApiError, Cause};
use crate::fields::{self, FieldSet};
use crate::resources::ResourceType;
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{EventKind, Inner, Key, Manager, Stored};
use crate::util::{self, get_str, now_rfc3339};
use serde_json::{Value, json};

/// What a request addresses.
#[derive(Debug, Clone)]
pub struct Target {
    pub rt: ResourceType,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
}

impl Target {
    fn key(&self, name: &str) -> Key {
        Key::new(&self.rt, self.namespace.as_deref().unwrap_or(""), name)
    }

    fn status_only(&self) -> bool {
        self.sub.as_deref() == Some("status")
    }
}

/// Query options that shape a write.
#[derive(Debug, Clone, Default)]
pub struct WriteParams {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    /// The manager to record when no `fieldManager` is given (from the User-Agent).
    pub default_manager: String,
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields are an error rather than pruned.
    pub strict: bool,
}

impl WriteParams {
    fn manager(&self) -> String {
        self.field_manager
            .clone()
            .unwrap_or_else(|| self.default_manager.clone())
    }
}

/// Parses a request body as JSON, or YAML when that fails (apply patches may be either).
pub fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_yaml_ng::from_slice::<Value>(body).map_err(|yaml_err| {
            ApiError::bad_request(format!(
                "error decoding request body: not JSON ({json_err}) and not YAML ({yaml_err})"
            ))
        }),
    }
}

fn with_api_version(rt: &ResourceType, mut v: Value) -> Value {
    v["apiVersion"] = json!(rt.api_version());
    v["kind"] = json!(rt.kind);
    v
}

pub fn get(inner: &Inner, t: &Target) -> Result<Value, ApiError> {
    let name = t.name.as_deref().unwrap_or_default();
    let stored = inner
        .get(&t.key(name))
        .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, name))?;
    Ok(with_api_version(&t.rt, Value::clone(&stored.value)))
}

/// The matching objects and the list's resourceVersion.
pub fn list(
    inner: &Inner,
    t: &Target,
    labels: &LabelSelector,
    fields_sel: &FieldSelector,
) -> (Vec<Value>, u64) {
    let items = inner
        .list(&t.rt.group, &t.rt.plural, t.namespace.as_deref())
        .into_iter()
        .filter(|(_, s)| {
            labels.matches(s.value.pointer("/metadata/labels")) && fields_sel.matches(&s.value)
        })
        .map(|(_, s)| with_api_version(&t.rt, Value::clone(&s.value)))
        .collect();
    (items, inner.rv)
}

/// Checks that what a body names agrees with the URL, and fills in what it leaves out.
fn reconcile_identity(t: &Target, obj: &mut Value, require_kind: bool) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON or YAML object",
        ));
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if k != t.rt.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({k}) does not match the kind of the resource ({})",
                t.rt.kind
            )));
        }
        None if require_kind => {
            return Err(ApiError::bad_request("invalid object: kind must be set"));
        }
        _ => {}
    }
    if require_kind && obj.get("apiVersion").and_then(Value::as_str).is_none() {
        return Err(ApiError::bad_request(
            "invalid object: apiVersion must be set",
        ));
    }
    obj["apiVersion"] = json!(t.rt.api_version());
    obj["kind"] = json!(t.rt.kind);
    let md = util::metadata_mut(obj);
    if let Some(name) = &t.name {
        match md.get("name").and_then(Value::as_str) {
            Some(n) if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {
                md.insert("name".to_owned(), json!(name));
            }
        }
    }
    if let Some(ns) = &t.namespace {
        match md.get("namespace").and_then(Value::as_str) {
            Some(n) if n != ns && !n.is_empty() => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                md.insert("namespace".to_owned(), json!(ns));
            }
        }
    } else {
        md.remove("namespace");
    }
    for k in ["managedFields", "selfLink"] {
        md.remove(k);
    }
    Ok(())
}

/// Checks the namespace of a new object exists and is not terminating.
fn admit_namespace(inner: &Inner, t: &Target) -> Result<(), ApiError> {
    let Some(ns) = &t.namespace else {
        return Ok(());
    };
    let Some(ns_obj) = inner.namespace_exists(ns) else {
        return Err(ApiError::not_found("", "namespaces", ns));
    };
    if ns_obj.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::Forbidden {
            message: format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                crate::error::qualified(&t.rt.plural, &t.rt.group),
                t.name.as_deref().unwrap_or("")
            ),
            group: t.rt.group.clone(),
            kind: t.rt.plural.clone(),
            name: t.name.clone().unwrap_or_default(),
            causes: vec![Cause {
                reason: "NamespaceTerminating".to_owned(),
                message: format!("namespace {ns} is being terminated"),
                field: "metadata.namespace".to_owned(),
            }],
        });
    }
    Ok(())
}

/// Prunes and validates a custom resource against its CRD version's schema; also checks that a
/// CRD's name is `plural.group`.
fn validate(inner: &Inner, t: &Target, obj: &mut Value, strict: bool) -> Result<(), ApiError> {
    let name = get_str(obj, &["metadata", "name"]).unwrap_or("").to_owned();
    if t.rt.kind == "CustomResourceDefinition" && t.rt.group == "apiextensions.k8s.io" {
        let want = format!(
            "{}.{}",
            get_str(obj, &["spec", "names", "plural"]).unwrap_or(""),
            get_str(obj, &["spec", "group"]).unwrap_or("")
        );
        if name != want {
            return Err(ApiError::invalid(
                &t.rt.group,
                &t.rt.kind,
                &name,
                vec![Cause {
                    reason: "FieldValueInvalid".to_owned(),
                    message: format!(
                        "Invalid value: \"{name}\": must be spec.names.plural+\".\"+spec.group"
                    ),
                    field: "metadata.name".to_owned(),
                }],
            ));
        }
    }
    if !t.rt.custom {
        let causes = defaults::validate_builtin(&t.rt, obj);
        if causes.is_empty() {
            return Ok(());
        }
        return Err(ApiError::invalid(&t.rt.group, &t.rt.kind, &name, causes));
    }
    let Some(crd) = inner.crd_for(&t.rt.group, &t.rt.plural) else {
        return Ok(());
    };
    let schema = crd["spec"]["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == t.rt.version.as_str()))
        .and_then(|v| v.pointer("/schema/openAPIV3Schema"));
    let Some(schema) = schema else {
        return Ok(());
    };
    let outcome = schema::validate(obj, schema);
    if strict && !outcome.pruned.is_empty() {
        let list: Vec<String> = outcome
            .pruned
            .iter()
            .map(|p| format!("unknown field \"{p}\""))
            .collect();
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            list.join(", ")
        )));
    }
    if outcome.causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &t.rt.group,
            &t.rt.kind,
            &name,
            outcome.causes,
        ))
    }
}

fn name_check(t: &Target, obj: &Value) -> Result<(), ApiError> {
    let name = get_str(obj, &["metadata", "name"]).unwrap_or("");
    match defaults::validate_name(&t.rt, name) {
        Some(cause) => Err(ApiError::invalid(
            &t.rt.group,
            &t.rt.kind,
            name,
            vec![cause],
        )),
        None => Ok(()),
    }
}

/// Whether two objects' maps are equal apart from the keys `skip` names (compared in place:
/// objects can be a megabyte).
fn equal_except(a: Option<&Value>, b: Option<&Value>, skip: &[&str]) -> bool {
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.and_then(Value::as_object).unwrap_or(&empty),
        b.and_then(Value::as_object).unwrap_or(&empty),
    );
    let keep = |k: &&String| !skip.contains(&k.as_str());
    a.keys().filter(keep).count() == b.keys().filter(keep).count()
        && a.iter()
            .filter(|(k, _)| keep(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Whether anything but metadata and status differs: what `generation` counts.
fn spec_changed(old: &Value, new: &Value) -> bool {
    !equal_except(Some(old), Some(new), &["metadata", "status"])
}

/// Whether two versions of an object are the same but for what every write changes anyway,
/// for no-op detection.
fn same_object(old: &Value, new: &Value) -> bool {
    equal_except(Some(old), Some(new), &["metadata"])
        && equal_except(
            old.get("metadata"),
            new.get("metadata"),
            &["managedFields", "resourceVersion"],
        )
}

/// Records an `Update` by `manager` (through `sub`, the status subresource, or the main
/// resource): it takes the fields whose values changed, and the maps it created as a whole;
/// fields that are gone leave every manager.
fn record_update(
    managers: &mut Vec<Manager>,
    manager: &str,
    api_version: &str,
    old: Option<&Value>,
    new: &Value,
    skip_status: bool,
    sub: Option<&str>,
) {
    let status_only = sub == Some("status");
    let mut changed: FieldSet = fields::field_set(new, skip_status && !status_only)
        .into_iter()
        .filter(|p| !status_only || p.first() == Some(&fields::Seg::Field("status".to_owned())))
        .filter(|p| old.and_then(|o| fields::get(o, p)) != fields::get(new, p))
        .collect();
    let created_maps: Vec<fields::Path> = changed
        .iter()
        .flat_map(|p| (1..p.len()).map(move |n| p[..n].to_vec()))
        .filter(|q| {
            fields::is_granular_map(q)
                && fields::get(new, q).is_some_and(Value::is_object)
                && old
                    .and_then(|o| fields::get(o, q))
                    .is_none_or(|v| !v.is_object())
        })
        .collect();
    changed.extend(created_maps);
    for m in managers.iter_mut() {
        if !m.is(manager, "Update", sub) {
            m.fields
                .retain(|q| !fields::covered(&changed, q) && !fields::covers(&changed, q));
        }
    }
    if !changed.is_empty() {
        match managers.iter_mut().find(|m| m.is(manager, "Update", sub)) {
            Some(m) => {
                m.fields.extend(changed);
                m.time = now_rfc3339();
            }
            None => managers.push(Manager {
                manager: manager.to_owned(),
                operation: "Update",
                api_version: api_version.to_owned(),
                time: now_rfc3339(),
                fields: changed,
                subresource: sub.map(str::to_owned),
            }),
        }
    }
    for m in managers.iter_mut() {
        m.fields.retain(|p| fields::get(new, p).is_some());
    }
    managers.retain(|m| !m.fields.is_empty());
}

/// The common end of every write: defaults, validation, generation, finalizer completion, no-op
/// detection, dry run, and storing.
fn finish(
    inner: &mut Inner,
    t: &Target,
    key: Key,
    old: Option<&Stored>,
    mut new: Value,
    managers: Vec<Manager>,
    params: &WriteParams,
) -> Result<(u16, Value), ApiError> {
    let seq = inner.next_seq();
    defaults::apply(&t.rt, &mut new, seq);
    validate(inner, t, &mut new, params.strict)?;
    let Some(old) = old else {
        name_check(t, &new)?;
        inner.stamp_new(&mut new);
        if params.dry_run {
            return Ok((201, render(new, &managers)));
        }
        return Ok((201, inner.put(key, new, managers, EventKind::Added)));
    };
    // The server owns these; a client can neither set nor clear them.
    let old_md = old.value["metadata"].clone();
    let md = util::metadata_mut(&mut new);
    for k in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_md.get(k) {
            Some(v) => {
                md.insert(k.to_owned(), v.clone());
            }
            None => {
                md.remove(k);
            }
        }
    }
    if old_md.get("generation").is_some() && spec_changed(&old.value, &new) {
        let g = old_md["generation"].as_i64().unwrap_or(1) + 1;
        util::metadata_mut(&mut new).insert("generation".to_owned(), json!(g));
    }
    let finished = new.pointer("/metadata/deletionTimestamp").is_some()
        && new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        && t.rt.kind != "Namespace";
    if finished {
        let new = render(new, &managers);
        if params.dry_run {
            return Ok((200, new));
        }
        // Like the real server: the answer is the object as the write left it, under the
        // resourceVersion it had before.
        inner.remove(&key);
        let mut new = with_api_version(&t.rt, new);
        if let Some(rv) = old.value.pointer("/metadata/resourceVersion") {
            util::metadata_mut(&mut new).insert("resourceVersion".to_owned(), rv.clone());
        }
        return Ok((200, new));
    }
    let same_fields = old.managers.len() == managers.len()
        && old.managers.iter().zip(&managers).all(|(a, b)| {
            a.is(&b.manager, b.operation, b.subresource.as_deref()) && a.fields == b.fields
        });
    if same_object(&old.value, &new) && same_fields {
        // A no-op write stores nothing: no new resourceVersion, no watch event.
        return Ok((200, with_api_version(&t.rt, Value::clone(&old.value))));
    }
    if params.dry_run {
        return Ok((200, render(new, &managers)));
    }
    Ok((200, inner.put(key, new, managers, EventKind::Modified)))
}

/// An object with its managed fields rendered but not stored (dry run).
fn render(mut v: Value, managers: &[Manager]) -> Value {
    if !managers.is_empty() {
        let list = managers.iter().map(Manager::to_json).collect();
        util::metadata_mut(&mut v).insert("managedFields".to_owned(), Value::Array(list));
    }
    v
}

pub fn create(
    inner: &mut Inner,
    t: &Target,
    body: &[u8],
    params: &WriteParams,
) -> Result<(u16, Value), ApiError> {
    let mut obj = parse_body(body)?;
    reconcile_identity(t, &mut obj, false)?;
    let md = util::metadata_mut(&mut obj);
    if md
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && let Some(prefix) = md
            .get("generateName")
            .and_then(Value::as_str)
            .map(str::to_owned)
    {
        let seq = inner.next_seq();
        util::metadata_mut(&mut obj).insert(
            "name".to_owned(),
            json!(format!("{prefix}{}", util::suffix(seq, 5))),
        );
    }
    let name = get_str(&obj, &["metadata", "name"])
        .unwrap_or("")
        .to_owned();
    let t = Target {
        name: Some(name.clone()),
        ..t.clone()
    };
    name_check(&t, &obj)?;
    admit_namespace(inner, &t)?;
    let key = t.key(&name);
    if inner.get(&key).is_some() {
        return Err(ApiError::AlreadyExists {
            message: format!(
                "{} \"{name}\" already exists",
                crate::error::qualified(&t.rt.plural, &t.rt.group)
            ),
            group: t.rt.group.clone(),
            kind: t.rt.plural.clone(),
            name,
        });
    }
    if t.rt.status_subresource
        && t.rt.kind != "Namespace"
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    for k in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "generation",
    ] {
        util::metadata_mut(&mut obj).remove(k);
    }
    if t.rt.kind == "Namespace" && t.rt.group.is_empty() {
        // The real server labels every namespace with its name, owned by its creator.
        util::metadata_mut(&mut obj)
            .entry("labels")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|l| l.insert("kubernetes.io/metadata.name".to_owned(), json!(name)));
    }
    let mut managers = Vec::new();
    record_update(
        &mut managers,
        &params.manager(),
        &t.rt.api_version(),
        None,
        &obj,
        t.rt.status_subresource,
        None,
    );
    finish(inner, &t, key, None, obj, managers, params)
}

fn existing<'a>(inner: &'a Inner, t: &Target) -> Result<(Key, &'a Stored), ApiError> {
    let name = t.name.as_deref().unwrap_or_default();
    let key = t.key(name);
    let stored = inner
        .get(&key)
        .ok_or_else(|| ApiError::not_found(&t.rt.group, &t.rt.plural, name))?;
    Ok((key, stored))
}

fn conflict_modified(t: &Target) -> ApiError {
    let name = t.name.clone().unwrap_or_default();
    ApiError::Conflict {
        message: format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
            crate::error::qualified(&t.rt.plural, &t.rt.group)
        ),
        group: t.rt.group.clone(),
        kind: t.rt.plural.clone(),
        name,
        causes: Vec::new(),
    }
}

/// Applies a full new object (PUT, or the result of a merge patch) as an `Update`.
fn replace(
    inner: &mut Inner,
    t: &Target,
    mut obj: Value,
    params: &WriteParams,
) -> Result<(u16, Value), ApiError> {
    let (key, old) = existing(inner, t)?;
    let old = old.clone();
    if let Some(rv) = obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        && Some(rv)
            != old
                .value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
    {
        return Err(conflict_modified(t));
    }
    let skip_status = t.rt.status_subresource;
    if t.status_only() {
        // The status subresource changes status and nothing else.
        let status = obj.get("status").cloned();
        obj = Value::clone(&old.value);
        match status {
            Some(s) => obj["status"] = s,
            None => {
                if let Some(m) = obj.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    } else if skip_status {
        match old.value.get("status") {
            Some(s) => obj["status"] = s.clone(),
            None => {
                if let Some(m) = obj.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    if t.rt.kind == "Service"
        && let Some(ip) = old.value.pointer("/spec/clusterIP")
        && obj.pointer("/spec/clusterIP").is_none()
        && obj.get("spec").is_some_and(Value::is_object)
    {
        obj["spec"]["clusterIP"] = ip.clone();
    }
    let mut managers = Vec::clone(&old.managers);
    record_update(
        &mut managers,
        &params.manager(),
        &t.rt.api_version(),
        Some(&old.value),
        &obj,
        skip_status,
        t.sub.as_deref(),
    );
    finish(inner, t, key, Some(&old), obj, managers, params)
}

pub fn update(
    inner: &mut Inner,
    t: &Target,
    body: &[u8],
    params: &WriteParams,
) -> Result<(u16, Value), ApiError> {
    let mut obj = parse_body(body)?;
    reconcile_identity(t, &mut obj, false)?;
    replace(inner, t, obj, params)
}

pub fn patch(
    inner: &mut Inner,
    t: &Target,
    content_type: &str,
    body: &[u8],
    params: &WriteParams,
) -> Result<(u16, Value), ApiError> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if ct == "application/apply-patch+yaml" {
        return apply(inner, t, body, params);
    }
    let patch = parse_body(body)?;
    let (_, old) = existing(inner, t)?;
    let mut obj = Value::clone(&old.value);
    match ct {
        "application/merge-patch+json" => fields::merge_patch(&mut obj, &patch),
        "application/strategic-merge-patch+json" if !t.rt.custom => {
            fields::strategic_merge_patch(&mut obj, &patch);
        }
        "application/json-patch+json" => {
            if let Err(message) = fields::json_patch(&mut obj, &patch) {
                let name = t.name.clone().unwrap_or_default();
                return Err(ApiError::invalid(
                    &t.rt.group,
                    &t.rt.kind,
                    &name,
                    vec![Cause {
                        reason: "FieldValueInvalid".to_owned(),
                        message,
                        field: String::new(),
                    }],
                ));
            }
        }
        "application/strategic-merge-patch+json" => {
            return Err(ApiError::UnsupportedMediaType {
                message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".to_owned(),
            });
        }
        other => {
            return Err(ApiError::UnsupportedMediaType {
                message: format!(
                    "the body of the request was in an unknown format ({other}) - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
                ),
            });
        }
    }
    // A patch carries no resourceVersion precondition unless it sets one itself.
    if patch.pointer("/metadata/resourceVersion").is_none() {
        util::metadata_mut(&mut obj).remove("resourceVersion");
    }
    reconcile_identity(t, &mut obj, false)?;
    replace(inner, t, obj, params)
}

/// Server-side apply.
fn apply(
    inner: &mut Inner,
    t: &Target,
    body: &[u8],
    params: &WriteParams,
) -> Result<(u16, Value), ApiError> {
    let name = t.name.clone().unwrap_or_default();
    let Some(manager) = params.field_manager.clone().filter(|m| !m.is_empty()) else {
        return Err(ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![Cause {
                reason: "FieldValueRequired".to_owned(),
                message: "Required value: is required for apply patch".to_owned(),
                field: "fieldManager".to_owned(),
            }],
        ));
    };
    let mut cfg = parse_body(body)?;
    reconcile_identity(t, &mut cfg, true)?;
    let precondition = cfg
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned);
    for k in [
        "resourceVersion",
        "uid",
        "creationTimestamp",
        "generation",
        "deletionTimestamp",
    ] {
        util::metadata_mut(&mut cfg).remove(k);
    }
    if t.rt.custom {
        // Unknown fields are pruned from what is applied, so nobody comes to own them.
        let mut probe = cfg.clone();
        // Only strict-mode errors stop here; the merged result is validated in full later.
        if let Err(e @ ApiError::BadRequest { .. }) = validate(inner, t, &mut probe, params.strict)
        {
            return Err(e);
        }
        prune_like(&mut cfg, &probe);
    }
    let skip_status = t.rt.status_subresource && !t.status_only();
    if let Some(m) = cfg.as_object_mut() {
        if skip_status {
            m.remove("status");
        } else if t.status_only() {
            // Through /status only status changes.
            m.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
            if let Some(md) = m.get_mut("metadata").and_then(Value::as_object_mut) {
                md.retain(|k, _| k == "name" || k == "namespace");
            }
        }
    }
    let new_fields = fields::field_set(&cfg, skip_status);
    let key = t.key(&name);
    let Some(old) = inner.get(&key).cloned() else {
        if precondition.is_some() {
            return Err(ApiError::not_found(&t.rt.group, &t.rt.plural, &name));
        }
        admit_namespace(inner, t)?;
        name_check(t, &cfg)?;
        let managers = vec![Manager {
            manager,
            operation: "Apply",
            api_version: t.rt.api_version(),
            time: now_rfc3339(),
            fields: new_fields,
            subresource: t.sub.clone(),
        }];
        return finish(inner, t, key, None, cfg, managers, params);
    };
    if let Some(rv) = precondition
        && Some(rv.as_str())
            != old
                .value
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
    {
        return Err(conflict_modified(t));
    }
    let live: &Value = &old.value;
    let sub = t.sub.as_deref();
    let is_self = |m: &Manager| m.is(&manager, "Apply", sub);
    let differs = |p: &fields::Path| fields::get(live, p) != fields::get(&cfg, p);
    let mut conflicts: Vec<(String, String)> = Vec::new();
    // A field conflicts when another manager owns it and the applied value differs, or when
    // the applied value replaces a structure (a non-object) under which another manager owns
    // fields. Owning a map does not conflict with others owning its keys. `taken[i]` is what
    // manager i loses if the apply is forced.
    let mut taken: Vec<FieldSet> = Vec::with_capacity(old.managers.len());
    for m in old.managers.iter() {
        let mut lost = FieldSet::new();
        if !is_self(m) {
            for p in &new_fields {
                let exact = m.fields.contains(p);
                let replaces_structure = !fields::get(&cfg, p).is_some_and(Value::is_object)
                    && fields::descendants(&m.fields, p).next().is_some();
                if (exact || replaces_structure) && differs(p) {
                    // The real server names the manager's API version only when it differs.
                    let using = if m.api_version == t.rt.api_version() {
                        String::new()
                    } else {
                        format!(" using {}", m.api_version)
                    };
                    conflicts.push((
                        format!("conflict with \"{}\"{using}", m.manager),
                        fields::display(p),
                    ));
                    if exact {
                        lost.insert(p.clone());
                    }
                    lost.extend(fields::descendants(&m.fields, p).cloned());
                }
            }
        }
        taken.push(lost);
    }
    if !conflicts.is_empty() && !params.force {
        return Err(apply_conflict(&conflicts));
    }
    let mut managers = Vec::clone(&old.managers);
    for (m, lost) in managers.iter_mut().zip(&taken) {
        m.fields.retain(|q| !lost.contains(q));
    }
    let previous: FieldSet = managers
        .iter()
        .find(|m| is_self(m))
        .map(|m| m.fields.clone())
        .unwrap_or_default();
    let mut merged = live.clone();
    for p in &previous {
        // p itself or something under it is still applied, or still someone else's.
        let still_applied = fields::covers(&new_fields, p);
        let owned_by_others = managers
            .iter()
            .filter(|m| !is_self(m))
            .any(|m| fields::covers(&m.fields, p));
        if !still_applied && !owned_by_others {
            fields::remove(&mut merged, p);
        }
    }
    fields::apply_merge(&mut merged, &cfg);
    let entry = Manager {
        manager: manager.clone(),
        operation: "Apply",
        api_version: t.rt.api_version(),
        time: now_rfc3339(),
        fields: new_fields,
        subresource: t.sub.clone(),
    };
    match managers.iter_mut().find(|m| is_self(m)) {
        Some(m) if m.fields == entry.fields => {}
        Some(m) => *m = entry,
        None => managers.push(entry),
    }
    managers.retain(|m| !m.fields.is_empty());
    finish(inner, t, key, Some(&old), merged, managers, params)
}

/// Removes from `cfg` whatever pruning removed from `pruned` (keeps cfg's own values otherwise).
fn prune_like(cfg: &mut Value, pruned: &Value) {
    match (cfg, pruned) {
        (Value::Object(c), Value::Object(p)) => {
            c.retain(|k, _| p.contains_key(k));
            for (k, v) in c.iter_mut() {
                prune_like(v, &p[k]);
            }
        }
        (Value::Array(c), Value::Array(p)) if c.len() == p.len() => {
            for (cv, pv) in c.iter_mut().zip(p) {
                prune_like(cv, pv);
            }
        }
        _ => {}
    }
}

/// The 409 of an apply; `conflicts` are (`conflict with "manager"[ using v]`, field) pairs.
fn apply_conflict(conflicts: &[(String, String)]) -> ApiError {
    let lines: Vec<String> = conflicts.iter().map(|(m, f)| format!("{m}: {f}")).collect();
    let message = if lines.len() == 1 {
        format!("Apply failed with 1 conflict: {}", lines[0])
    } else {
        format!(
            "Apply failed with {} conflicts: {}",
            lines.len(),
            lines.join("\n")
        )
    };
    // Like the real server: details carry the causes only, no name or kind.
    ApiError::Conflict {
        message,
        group: String::new(),
        kind: String::new(),
        name: String::new(),
        causes: conflicts
            .iter()
            .map(|(m, f)| Cause {
                reason: "FieldManagerConflict".to_owned(),
                message: m.clone(),
                field: f.clone(),
            })
            .collect(),
    }
}

/// Options of a DELETE, from its body and query.
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    pub dry_run: bool,
    /// `Foreground`, `Background` or `Orphan`.
    pub propagation: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

pub fn delete(inner: &mut Inner, t: &Target, params: &DeleteParams) -> Result<Value, ApiError> {
    let (key, old) = existing(inner, t)?;
    if params
        .precondition_uid
        .as_deref()
        .is_some_and(|u| Some(u) != get_str(&old.value, &["metadata", "uid"]))
        || params
            .precondition_rv
            .as_deref()
            .is_some_and(|r| Some(r) != get_str(&old.value, &["metadata", "resourceVersion"]))
    {
        return Err(conflict_modified(t));
    }
    let finalizer = match params.propagation.as_deref() {
        Some("Foreground") => Some("foregroundDeletion"),
        Some("Orphan") => Some("orphan"),
        _ => None,
    };
    let held = finalizer.is_some()
        || t.rt.kind == "Namespace"
        || t.rt.kind == "CustomResourceDefinition"
        || old
            .value
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty());
    let out = if params.dry_run {
        Value::clone(&old.value)
    } else {
        delete_key(inner, &key, finalizer).unwrap_or_default()
    };
    if !held && !returns_deleted_object(&t.rt) {
        // Like the real server: an object deleted at once is answered with a Status.
        let mut details = json!({"name": t.name, "kind": t.rt.plural,
            "uid": out.pointer("/metadata/uid").cloned().unwrap_or_default()});
        if !t.rt.group.is_empty() {
            details["group"] = json!(t.rt.group);
        }
        return Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
        );
    }
    Ok(with_api_version(&t.rt, out))
}

/// Kinds whose real storage answers a DELETE with the deleted object (`ReturnDeletedObject`)
/// rather than a `Status`.
fn returns_deleted_object(rt: &ResourceType) -> bool {
    !rt.custom
        && matches!(
            (rt.group.as_str(), rt.kind.as_str()),
            ("", "Pod" | "Service" | "ServiceAccount") | ("storage.k8s.io", "StorageClass")
        )
}

/// Deletes an object: marks it (deletionTimestamp) while finalizers remain, removes it otherwise.
/// Namespaces always go through Terminating. Returns the object's last state.
pub fn delete_key(inner: &mut Inner, key: &Key, add_finalizer: Option<&str>) -> Option<Value> {
    let old = inner.get(key)?.clone();
    if old.value.pointer("/metadata/deletionTimestamp").is_some() {
        return Some(Value::clone(&old.value));
    }
    let mut v = Value::clone(&old.value);
    let is_namespace = key.group.is_empty() && key.resource == "namespaces";
    // Like the real server: a CRD takes its custom resources with it, by a finalizer added
    // on deletion.
    let add_finalizer =
        if key.group == "apiextensions.k8s.io" && key.resource == "customresourcedefinitions" {
            Some("customresourcecleanup.apiextensions.k8s.io")
        } else {
            add_finalizer
        };
    if let Some(f) = add_finalizer {
        let md = util::metadata_mut(&mut v);
        let list = md.entry("finalizers").or_insert_with(|| json!([]));
        if let Some(list) = list.as_array_mut()
            && !list.iter().any(|x| x == f)
        {
            list.push(json!(f));
        }
    }
    let has_finalizers = v
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty());
    if !has_finalizers && !is_namespace {
        return inner.remove(key);
    }
    let md = util::metadata_mut(&mut v);
    md.insert("deletionTimestamp".to_owned(), json!(now_rfc3339()));
    if !is_namespace {
        md.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
    }
    if let Some(g) = md.get("generation").and_then(Value::as_i64) {
        md.insert("generation".to_owned(), json!(g + 1));
    }
    if is_namespace {
        v["status"]["phase"] = json!("Terminating");
    }
    Some(inner.put(key.clone(), v, old.managers, EventKind::Modified))
}

/// Removes `finalizer` from an object; an object being deleted goes away with its last one.
pub fn drop_finalizer(inner: &mut Inner, key: &Key, finalizer: &str) {
    let Some(old) = inner.get(key).cloned() else {
        return;
    };
    let mut v = Value::clone(&old.value);
    let Some(list) = v
        .pointer_mut("/metadata/finalizers")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let before = list.len();
    list.retain(|f| f != finalizer);
    if list.len() == before {
        return;
    }
    let empty = list.is_empty();
    if empty {
        util::metadata_mut(&mut v).remove("finalizers");
    }
    if empty && v.pointer("/metadata/deletionTimestamp").is_some() {
        inner.remove(key);
    } else {
        inner.put(key.clone(), v, old.managers, EventKind::Modified);
    }
}
