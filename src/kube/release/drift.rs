//! Drift: a recorded object another manager changed (it took fields plane applied) or deleted,
//! told from the objects already read for health and the revision bodies the record keeps; no
//! request of its own.

use std::collections::HashMap;

use serde_json::Value;

use crate::bundle::{ObjectKey, ObjectRef};
use crate::kube::object::normalize::drop_controller_owned;
use crate::kube::object::taken::{at, contains, holds, taken};
use crate::kube::object::unchanged::is_plane_apply;
use crate::kube::release::inventory::Inventory;

/// What plane applied in the release's current revision, by object, without the fields it
/// declares a controller's (`plane.datalayer.io/controller-owned`: an autoscaler's replicas);
/// empty when the record did not keep that revision's objects (then only deletions are drift).
pub struct Applied(HashMap<ObjectKey, Value>);

impl Applied {
    pub fn of(inventory: &Inventory) -> Self {
        Self(
            inventory
                .stored
                .restore(inventory.revision)
                .map(|(_, objects)| {
                    objects
                        .into_iter()
                        .map(|o| {
                            let mut value = o.object.value;
                            drop_controller_owned(&mut value);
                            (o.object.id.key(), value)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// How `id` drifted, if it did: `deleted`, or `changed by MANAGER` when a field plane applied
    /// is no longer plane's (another manager took it, or removed it). A value the server
    /// rewrote (`0.5` CPU kept as `500m`) is no drift. A Secret's values are not kept in the
    /// record, so only its deletion counts.
    pub fn drift(&self, id: &ObjectRef, live: Option<&Value>) -> Option<String> {
        let Some(live) = live else {
            return Some(format!("{}: deleted", id.subject()));
        };
        if id.kind == "Secret" {
            return None;
        }
        let applied = self.0.get(&id.key())?;
        let mut taken = taken(applied, live).filter(|taken| !taken.is_empty())?;
        // A field taken with the value plane applied (beside the server's defaults and a
        // controller's own fields: an autoscaler that set a group's replicas in an atomic list
        // took the whole list) changed nothing.
        let mut seen = live.clone();
        drop_controller_owned(&mut seen);
        taken.retain(|path| {
            at(applied, path)
                .is_some_and(|applied| at(&seen, path).is_none_or(|now| !contains(now, applied)))
        });
        if taken.is_empty() {
            return None;
        }
        // Who holds what plane no longer does (nobody, when it was removed).
        let mut managers: Vec<&str> = live["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| !is_plane_apply(e))
            .filter(|e| taken.iter().any(|path| holds(&e["fieldsV1"], path)))
            .filter_map(|e| e["manager"].as_str())
            .collect();
        managers.sort_unstable();
        managers.dedup();
        Some(format!(
            "{}: changed by {}",
            id.subject(),
            if managers.is_empty() {
                "another manager".to_owned()
            } else {
                managers.join(", ")
            }
        ))
    }
}
