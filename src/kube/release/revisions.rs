//! What a release's record keeps of each revision's objects, so that `plane rollback` can apply
//! one again: the rendered bodies, de-duplicated across revisions and compressed, never a
//! Secret's values, and within a size budget that gives up the oldest revisions' bodies first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::objects::digest;
use crate::bundle::{Component, Declared, Object, Rendered, Required};

/// What the record may hold in all (its metadata and the stored bodies): half of what a Secret
/// may hold, so that a record never nears the limit however its metadata grows.
pub const RECORD_BUDGET: usize = 512 * 1024;
/// What the API server accepts in one Secret's data; no write above it is ever attempted.
pub const SECRET_LIMIT: usize = 1024 * 1024;

/// The objects of recent revisions, by revision, and their bodies by digest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredRevisions {
    revisions: BTreeMap<u64, StoredRevision>,
    /// Each body once, however many revisions have it: an unchanged object costs its digest.
    bodies: BTreeMap<String, Value>,
    /// Revisions whose objects were given up to keep the record within its budget.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    given_up: BTreeSet<u64>,
    /// Revisions whose objects were not kept because one held a secret input's value or a
    /// URL's credentials outside a Secret's data: the record never holds those.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    withheld: BTreeSet<u64>,
}

/// One revision as it was rendered: its components in order, those whose dependents wait for
/// them, its objects in render order, and what the platform check of a team instance reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRevision {
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub gated: BTreeSet<String>,
    pub objects: Vec<StoredObject>,
    /// What a team instance needs the platform to serve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Required>,
    /// Every component the bundle declared, on or off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub declared: Vec<Component>,
    /// What the bundle declared of its kinds.
    #[serde(default, skip_serializing_if = "Declared::is_empty")]
    pub kinds: Declared,
}

/// One object of a revision: its body's digest, and for a Secret the digest of each value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredObject {
    pub component: String,
    pub template: String,
    pub body: String,
    /// A Secret's keys, each with the digest of its value; the values are never stored.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secret_values: BTreeMap<String, String>,
}

/// One object restored from the record: the body as rendered then, without a Secret's values.
#[derive(Debug, Clone)]
pub struct RestoredObject {
    pub object: Object,
    /// A Secret's keys and the digests of the values it had then.
    pub secret_values: BTreeMap<String, String>,
}

/// The record's data cannot be written: even without any stored body it is over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub bytes: usize,
}

impl StoredRevisions {
    /// Keeps `rendered` as revision `revision`, replacing what was kept under that number.
    pub fn keep(&mut self, revision: u64, rendered: &Rendered) {
        let mut stored = StoredRevision {
            components: rendered.components.clone(),
            gated: rendered.gated.clone(),
            objects: Vec::with_capacity(rendered.objects.len()),
            requires: rendered.requires.clone(),
            declared: rendered.all_components.clone(),
            kinds: rendered.declared.clone(),
        };
        let mut bodies = Vec::with_capacity(rendered.objects.len());
        for object in &rendered.objects {
            let (body, secret_values) = without_secret_values(&object.value);
            if crate::redact::holds_secret(&body.to_string()) {
                self.revisions.remove(&revision);
                self.withheld.insert(revision);
                self.collect_garbage();
                return;
            }
            let key = digest(&body);
            bodies.push((key.clone(), body));
            stored.objects.push(StoredObject {
                component: object.component.clone(),
                template: object.template.clone(),
                body: key,
                secret_values,
            });
        }
        for (key, body) in bodies {
            self.bodies.entry(key).or_insert(body);
        }
        self.withheld.remove(&revision);
        self.revisions.insert(revision, stored);
        self.collect_garbage();
    }

    /// Whether revision `revision`'s objects were not kept because one held a secret.
    pub fn withheld(&self, revision: u64) -> bool {
        self.withheld.contains(&revision)
    }

    /// Whether revision `revision`'s objects are kept.
    pub fn has(&self, revision: u64) -> bool {
        self.revisions.contains_key(&revision)
    }

    /// The revisions whose objects are kept, oldest first.
    pub fn kept(&self) -> impl Iterator<Item = u64> + '_ {
        self.revisions.keys().copied()
    }

    /// Whether revision `revision`'s objects were given up to keep the record within budget.
    pub fn given_up(&self, revision: u64) -> bool {
        self.given_up.contains(&revision)
    }

    /// Forgets every revision `keep` refuses.
    pub fn retain(&mut self, keep: impl Fn(u64) -> bool) {
        self.revisions.retain(|revision, _| keep(*revision));
        self.given_up.retain(|revision| keep(*revision));
        self.withheld.retain(|revision| keep(*revision));
        self.collect_garbage();
    }

    /// Revision `revision` as it was rendered, or `None` when its objects are not kept.
    pub fn restore(&self, revision: u64) -> Option<(&StoredRevision, Vec<RestoredObject>)> {
        let stored = self.revisions.get(&revision)?;
        let objects = stored
            .objects
            .iter()
            .map(|o| {
                let value = self.bodies.get(&o.body)?.clone();
                let id = crate::bundle::ObjectRef::of(&value)?;
                Some(RestoredObject {
                    object: Object {
                        id,
                        component: o.component.clone(),
                        template: o.template.clone(),
                        value,
                    },
                    secret_values: o.secret_values.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some((stored, objects))
    }

    /// The compressed bytes the record holds, within what is left of [`RECORD_BUDGET`] beside
    /// `metadata` bytes: the oldest revisions give up their objects until it fits (the newest
    /// too, when it alone is over).
    ///
    /// # Errors
    /// [`OverLimit`] when the metadata alone is over [`SECRET_LIMIT`]: nothing may be written.
    pub fn fit(&mut self, metadata: usize) -> Result<Vec<u8>, OverLimit> {
        loop {
            let bytes = if self.revisions.is_empty()
                && self.given_up.is_empty()
                && self.withheld.is_empty()
            {
                Vec::new()
            } else {
                self.encode()
            };
            let total = metadata + bytes.len();
            if total <= RECORD_BUDGET || self.revisions.is_empty() {
                return if total > SECRET_LIMIT {
                    Err(OverLimit { bytes: total })
                } else {
                    Ok(bytes)
                };
            }
            if let Some(oldest) = self.revisions.keys().next().copied() {
                self.revisions.remove(&oldest);
                self.given_up.insert(oldest);
                self.collect_garbage();
            }
        }
    }

    /// Reads what [`StoredRevisions::fit`] wrote; no bytes (a record of an older plane) keep
    /// nothing.
    ///
    /// # Errors
    /// Bytes that are not a gzip of the stored revisions.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut json)
            .map_err(|err| err.to_string())?;
        serde_json::from_slice(&json).map_err(|err| err.to_string())
    }

    fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(json.len() / 8),
            flate2::Compression::default(),
        );
        // Writing to a Vec cannot fail.
        let _ = encoder.write_all(&json);
        encoder.finish().unwrap_or_default()
    }

    fn collect_garbage(&mut self) {
        let used: BTreeSet<&String> = self
            .revisions
            .values()
            .flat_map(|r| r.objects.iter().map(|o| &o.body))
            .collect();
        let unused: Vec<String> = self
            .bodies
            .keys()
            .filter(|key| !used.contains(key))
            .cloned()
            .collect();
        for key in unused {
            self.bodies.remove(&key);
        }
    }
}

/// A body as the record keeps it: a Secret without `data` and `stringData`, with the digest of
/// each value beside it; any other object as it is.
fn without_secret_values(value: &Value) -> (Value, BTreeMap<String, String>) {
    let mut body = value.clone();
    let mut values = BTreeMap::new();
    if value["kind"] != "Secret" || value["apiVersion"] != "v1" {
        return (body, values);
    }
    let Some(fields) = body.as_object_mut() else {
        return (body, values);
    };
    if let Some(Value::Object(data)) = fields.remove("data") {
        for (key, encoded) in data {
            let bytes = encoded
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .unwrap_or_default();
            values.insert(key, value_digest(&bytes));
        }
    }
    if let Some(Value::Object(data)) = fields.remove("stringData") {
        for (key, text) in data {
            values.insert(
                key,
                value_digest(text.as_str().unwrap_or_default().as_bytes()),
            );
        }
    }
    (body, values)
}

/// The digest of one Secret value, to tell whether a live value is the one a revision had.
pub fn value_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    crate::bundle::objects::hex(&sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(kind: &str, name: &str, value: &Value) -> Object {
        let mut body =
            json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "n"}});
        if let (Some(body), Some(extra)) = (body.as_object_mut(), value.as_object()) {
            body.extend(extra.clone());
        }
        Object {
            id: crate::bundle::ObjectRef::of(&body).unwrap(),
            component: "c".into(),
            template: "t.yaml".into(),
            value: body,
        }
    }

    fn rendered(objects: Vec<Object>) -> Rendered {
        Rendered {
            objects,
            components: vec!["c".into()],
            gated: BTreeSet::new(),
            addon: "a".into(),
            version: "1".into(),
            values_digest: String::new(),
            bundle_digest: String::new(),
            instance: None,
            requires: Vec::new(),
            all_components: Vec::new(),
            declared: Declared::default(),
            images: Vec::new(),
        }
    }

    #[test]
    fn secrets_keep_their_keys_and_digests_never_their_values() {
        let secret = object(
            "Secret",
            "s",
            &json!({"data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "t0ken"}}),
        );
        let mut stored = StoredRevisions::default();
        stored.keep(1, &rendered(vec![secret]));
        let bytes = stored.fit(0).unwrap();
        let mut json = String::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_string(&mut json)
            .unwrap();
        for secret in ["aHVudGVyMg==", "hunter2", "t0ken"] {
            assert!(!json.contains(secret), "{json}");
        }
        let back = StoredRevisions::decode(&bytes).unwrap();
        let (_, objects) = back.restore(1).unwrap();
        assert!(objects[0].object.value.get("data").is_none());
        assert_eq!(
            objects[0].secret_values["password"],
            value_digest(b"hunter2")
        );
        assert_eq!(objects[0].secret_values["token"], value_digest(b"t0ken"));
    }

    #[test]
    fn an_unchanged_object_is_kept_once() {
        let same = object("ConfigMap", "a", &json!({"data": {"k": "v".repeat(1000)}}));
        let mut stored = StoredRevisions::default();
        for revision in 1..=5 {
            let changed = object(
                "ConfigMap",
                "b",
                &json!({"data": {"k": revision.to_string()}}),
            );
            stored.keep(revision, &rendered(vec![same.clone(), changed]));
        }
        assert_eq!(stored.bodies.len(), 6);
        stored.retain(|r| r > 3);
        assert_eq!(stored.bodies.len(), 3);
        assert!(!stored.has(3) && stored.has(4));
    }

    #[test]
    fn past_the_budget_the_oldest_revisions_lose_their_objects_first() {
        // Bodies that hardly compress: 260 KiB of 6-bit symbols, about 195 KiB compressed.
        let noise = |seed: u64| -> String {
            const SYMBOLS: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
            (0..260 * 1024)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    char::from(SYMBOLS[usize::try_from(x % 64).unwrap()])
                })
                .collect()
        };
        let mut stored = StoredRevisions::default();
        for revision in 1..=3 {
            let big = object("ConfigMap", "big", &json!({"data": {"k": noise(revision)}}));
            stored.keep(revision, &rendered(vec![big]));
        }
        let bytes = stored.fit(1000).unwrap();
        assert!(bytes.len() + 1000 <= RECORD_BUDGET);
        assert_eq!(stored.kept().collect::<Vec<_>>(), vec![2, 3]);
        assert!(stored.given_up(1) && !stored.given_up(2));

        // One revision over the budget on its own keeps nothing, and still writes.
        let mut huge = StoredRevisions::default();
        let objects: Vec<Object> = (0..4)
            .map(|i| {
                object(
                    "ConfigMap",
                    &format!("h{i}"),
                    &json!({"data": {"k": noise(10 + i)}}),
                )
            })
            .collect();
        huge.keep(1, &rendered(objects));
        let bytes = huge.fit(1000).unwrap();
        assert!(bytes.len() < 1000);
        assert!(!huge.has(1));
        assert!(StoredRevisions::decode(&bytes).unwrap().given_up(1));

        // Metadata over the limit: nothing may be written.
        assert_eq!(
            StoredRevisions::default().fit(SECRET_LIMIT + 1),
            Err(OverLimit {
                bytes: SECRET_LIMIT + 1
            })
        );
    }
}
