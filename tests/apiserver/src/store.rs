//! The in-memory object store: objects keyed by group/resource/namespace/name, a global monotonic
//! resourceVersion, managed fields per manager, and the event history watches replay from.

use crate::fields::{self, FieldSet};
use crate::resources::{self, BUILTINS, ResourceType};
use crate::util::{self, now_rfc3339};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// How many events watches can resume from; older resourceVersions get 410 Gone.
const HISTORY: usize = 8192;

/// Where an object lives. Versions of one group/resource share storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub group: String,
    pub resource: String,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(rt: &ResourceType, namespace: &str, name: &str) -> Self {
        Self {
            group: rt.group.clone(),
            resource: rt.plural.clone(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// One field manager's entry in `managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::struct_field_names,
    reason = "the names of managedFields[] entries"
)]
pub struct Manager {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: &'static str,
    pub api_version: String,
    pub time: String,
    pub fields: FieldSet,
    /// `status` for writes through the status subresource.
    pub subresource: Option<String>,
}

impl Manager {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields::to_fields_v1(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            v["subresource"] = json!(sub);
        }
        v
    }

    /// Whether this entry is the one of `manager` doing `operation` through `subresource`.
    pub fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }
}

/// A stored object: its JSON (with rendered `managedFields`) and the field sets behind them.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Shared with the watch event that announced it; objects can be a megabyte (CRDs), so
    /// reads and the controllers avoid deep copies.
    pub value: Arc<Value>,
    pub managers: Arc<Vec<Manager>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// A change, as watches see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventKind,
    pub key: Key,
    pub object: Arc<Value>,
}

pub struct Inner {
    pub objects: BTreeMap<Key, Stored>,
    pub rv: u64,
    history: VecDeque<Event>,
    seq: u64,
    seed: u64,
    tx: broadcast::Sender<Event>,
}

/// The store: one mutex around everything, so each request sees and makes a consistent change.
pub struct Store {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Event>,
}

impl Store {
    pub fn new(seed: u64) -> Self {
        let (tx, _) = broadcast::channel(4096);
        let mut inner = Inner {
            objects: BTreeMap::new(),
            rv: 0,
            history: VecDeque::new(),
            seq: 0,
            seed,
            tx: tx.clone(),
        };
        let ns_type = BUILTINS
            .iter()
            .find(|t| t.kind == "Namespace")
            .expect("Namespace is built in")
            .clone();
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let mut obj =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            crate::defaults::apply(&ns_type, &mut obj, 0);
            inner.stamp_new(&mut obj);
            inner.put(
                Key::new(&ns_type, "", ns),
                obj,
                Vec::new(),
                EventKind::Added,
            );
        }
        Self {
            inner: Mutex::new(inner),
            tx,
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the store as consistent as any single step.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Inner {
    /// Every served type: built-ins plus the versions of each Established CRD.
    pub fn types(&self) -> Vec<ResourceType> {
        let mut out = BUILTINS.clone();
        let start = Key {
            group: "apiextensions.k8s.io".to_owned(),
            resource: "customresourcedefinitions".to_owned(),
            namespace: String::new(),
            name: String::new(),
        };
        for (k, s) in self.objects.range(start..) {
            if k.resource != "customresourcedefinitions" || k.group != "apiextensions.k8s.io" {
                break;
            }
            if crd_established(&s.value) {
                out.extend(resources::from_crd(&s.value));
            }
        }
        out
    }

    /// The CRD object defining `group`/`plural`, if any.
    pub fn crd_for(&self, group: &str, plural: &str) -> Option<&Value> {
        let key = Key {
            group: "apiextensions.k8s.io".to_owned(),
            resource: "customresourcedefinitions".to_owned(),
            namespace: String::new(),
            name: format!("{plural}.{group}"),
        };
        self.objects.get(&key).map(|s| s.value.as_ref())
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seed.wrapping_mul(1_000_003).wrapping_add(self.seq)
    }

    /// Sets uid, creationTimestamp and (for kinds that have one) generation on a new object.
    pub fn stamp_new(&mut self, obj: &mut Value) {
        let seq = self.next_seq();
        let generation = has_generation(obj["kind"].as_str().unwrap_or(""));
        let md = util::metadata_mut(obj);
        md.insert("uid".to_owned(), json!(util::uid(seq)));
        md.insert("creationTimestamp".to_owned(), json!(now_rfc3339()));
        if generation {
            md.insert("generation".to_owned(), json!(1));
        }
    }

    pub fn get(&self, key: &Key) -> Option<&Stored> {
        self.objects.get(key)
    }

    pub fn namespace_exists(&self, ns: &str) -> Option<&Value> {
        self.objects
            .get(&Key {
                group: String::new(),
                resource: "namespaces".to_owned(),
                namespace: String::new(),
                name: ns.to_owned(),
            })
            .map(|s| s.value.as_ref())
    }

    /// Stores an object under a new resourceVersion and tells the watches; returns what was
    /// stored.
    pub fn put(
        &mut self,
        key: Key,
        mut value: Value,
        managers: impl Into<Arc<Vec<Manager>>>,
        kind: EventKind,
    ) -> Value {
        let managers = managers.into();
        self.rv += 1;
        let md = util::metadata_mut(&mut value);
        md.insert("resourceVersion".to_owned(), json!(self.rv.to_string()));
        if managers.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert(
                "managedFields".to_owned(),
                Value::Array(managers.iter().map(Manager::to_json).collect()),
            );
        }
        let value = Arc::new(value);
        self.emit(kind, key.clone(), value.clone());
        self.objects.insert(
            key,
            Stored {
                value: value.clone(),
                managers,
            },
        );
        Arc::unwrap_or_clone(value)
    }

    /// Removes an object for good and sends DELETED (with a fresh resourceVersion, as the real
    /// server does).
    pub fn remove(&mut self, key: &Key) -> Option<Value> {
        let stored = self.objects.remove(key)?;
        self.rv += 1;
        let mut value = Arc::unwrap_or_clone(stored.value);
        util::metadata_mut(&mut value)
            .insert("resourceVersion".to_owned(), json!(self.rv.to_string()));
        let value = Arc::new(value);
        self.emit(EventKind::Deleted, key.clone(), value.clone());
        Some(Arc::unwrap_or_clone(value))
    }

    fn emit(&mut self, kind: EventKind, key: Key, object: Arc<Value>) {
        let ev = Event {
            rv: self.rv,
            kind,
            key,
            object,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(ev.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(ev);
    }

    /// Events after `rv`, or `None` when they are no longer kept.
    pub fn events_since(&self, rv: u64) -> Option<Vec<Event>> {
        let oldest = self.history.front().map_or(self.rv + 1, |e| e.rv);
        if rv + 1 < oldest && rv < self.rv {
            return None;
        }
        Some(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// Objects of one resource (all namespaces when `namespace` is `None`).
    pub fn list(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Vec<(&Key, &Stored)> {
        self.objects
            .iter()
            .filter(|(k, _)| {
                k.group == group
                    && k.resource == resource
                    && namespace.is_none_or(|n| k.namespace == n)
            })
            .collect()
    }
}

/// Whether objects of a kind carry `metadata.generation`: the real server sets it only for kinds
/// with a spec that controllers observe (workloads, CRDs, custom resources, Pods, ...), not for
/// ConfigMaps, Secrets, Namespaces, Services, RBAC objects and the like.
pub fn has_generation(kind: &str) -> bool {
    !matches!(
        kind,
        "ConfigMap"
            | "Secret"
            | "ServiceAccount"
            | "Namespace"
            | "Service"
            | "Endpoints"
            | "Event"
            | "Node"
            | "PersistentVolume"
            | "PersistentVolumeClaim"
            | "ResourceQuota"
            | "LimitRange"
            | "Role"
            | "RoleBinding"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "Lease"
            | "StorageClass"
            | "ControllerRevision"
    )
}

/// Whether a CRD has condition `Established=True`.
pub fn crd_established(crd: &Value) -> bool {
    has_condition(crd, "Established", "True")
}

pub fn has_condition(obj: &Value, kind: &str, status: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == kind && c["status"] == status)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_can_resume_only_from_kept_history() {
        let store = Store::new(1);
        let mut inner = store.lock();
        let start = inner.rv;
        assert_eq!(
            inner.events_since(0).map(|e| e.len()),
            Some(4),
            "the initial namespaces"
        );
        let key = |i: usize| Key {
            group: String::new(),
            resource: "configmaps".to_owned(),
            namespace: "default".to_owned(),
            name: format!("c{i}"),
        };
        for i in 0..HISTORY + 10 {
            inner.put(
                key(i),
                json!({"metadata": {"name": format!("c{i}")}}),
                Vec::new(),
                EventKind::Added,
            );
        }
        assert!(inner.events_since(start).is_none(), "too old: 410 Gone");
        let recent = inner.rv - 5;
        assert_eq!(inner.events_since(recent).map(|e| e.len()), Some(5));
        assert_eq!(inner.events_since(inner.rv).map(|e| e.len()), Some(0));
    }
}
