//! The plan: each rendered object compared with the live object (read by one LIST per kind and
//! namespace), by a server-side dry-run unless plane's own fields prove it unchanged, plus the
//! objects of the previous inventory that are no longer rendered.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{ListParams, Patch};
use serde::Serialize;
use serde_json::Value;

use crate::bundle::crd::CrdSpec;
use crate::bundle::objects::{PRUNE_ANNOTATION, RELEASE_LABEL};
use crate::bundle::{Claim, Declared, Object, ObjectKey, ObjectRef, ReleaseId};
use crate::kinds;
use crate::kube::client::Cluster;
use crate::kube::client::discovery::ServedKind;
use crate::kube::client::read::Reading;
use crate::kube::client::retry::retry;
use crate::kube::client::{IN_FLIGHT, LISTS_IN_FLIGHT};
use crate::kube::error::KubeError;
use crate::kube::object::normalize::{keep_controller_owned, mask_secrets, normalize};
use crate::kube::object::owner::{Owner, engine_of, owner_of};
use crate::kube::object::readiness;
use crate::kube::object::unchanged::provably_unchanged;
pub use crate::kube::progress::Action;
use crate::kube::release::inventory::Inventory;
use crate::kube::release::wait::WaitTarget;

/// One object of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedObject {
    /// `Kind/namespace/name`, as every message names the object.
    pub subject: String,
    #[serde(flatten)]
    pub id: ObjectRef,
    pub component: String,
    pub action: Action,
    /// Why, when there is more to say (adoption, a kind installed by this release, kept objects).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What `up` applies: the rendered object with controller-owned fields carried over.
    /// `None` when the render no longer has it (a prune, or a protected object kept).
    #[serde(skip)]
    pub desired: Option<Value>,
    /// The live object, normalised and masked, for diffs.
    #[serde(skip)]
    pub before: Option<Value>,
    /// The dry-run result (or the desired object when no dry-run was possible), normalised and masked.
    #[serde(skip)]
    pub after: Option<Value>,
    /// The keys of a generated Secret.
    #[serde(skip)]
    pub generated_keys: Option<Vec<String>>,
    /// It exists but is not this release's: who owns it. `up` takes it over only when told to
    /// (`--take-ownership`), and then records it as adopted.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::kube::object::owner::serialize_owner"
    )]
    pub owner: Option<Owner>,
    /// Something the user must know before applying it (a change running pods will not pick up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The server has validated it by a dry-run. Objects in a namespace, or of a kind, that the
    /// release creates cannot be until those exist; `up` dry-runs them before writing them.
    #[serde(skip)]
    pub dry_run_passed: bool,
    /// A RoleBinding or ClusterRoleBinding to a role this render creates, which credentials that
    /// may not escalate cannot dry-run before the role exists: `up` writes the role, then it.
    #[serde(skip)]
    pub binds_new_role: bool,
    /// The live object the plan read was ready then: an unchanged object that was needs no wait.
    #[serde(skip)]
    pub was_ready: bool,
}

impl PlannedObject {
    /// `up` waits for it after applying: everything it applies, and what it leaves alone unless
    /// the plan read it ready.
    pub fn needs_wait(&self) -> bool {
        self.desired.is_some() && !(self.action == Action::Unchanged && self.was_ready)
    }

    /// What `up` waits for after applying it: the object, and the pods it runs.
    pub fn wait_target(&self, declared: &Declared) -> WaitTarget {
        WaitTarget {
            id: self.id.clone(),
            pods: self
                .desired
                .as_ref()
                .and_then(|desired| readiness::pod_selector(desired, declared)),
        }
    }

    /// It exists and belongs to someone else: applying it takes it over.
    pub fn adopts(&self) -> bool {
        self.owner.is_some()
    }
}

/// What a plan is for: an `up` of a render, or a rollback to a revision the record kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Up,
    /// CRDs only move forward: a live CRD is left as it is. Namespaces, CRDs and volumes are
    /// never pruned, even when they opt in.
    Rollback,
}

/// The whole plan, in apply order, with prunes last.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub objects: Vec<PlannedObject>,
    /// What the bundle declares of its kinds: how `up` tells they are ready.
    pub declared: Declared,
}

impl Plan {
    /// What `up` waits for after applying `objects`.
    pub fn wait_targets<'a>(
        &'a self,
        objects: impl IntoIterator<Item = &'a PlannedObject>,
    ) -> Vec<WaitTarget> {
        objects
            .into_iter()
            .map(|o| o.wait_target(&self.declared))
            .collect()
    }
}

impl Plan {
    /// How many objects get each action.
    pub fn count(&self, action: Action) -> usize {
        self.objects.iter().filter(|o| o.action == action).count()
    }

    pub fn has_changes(&self) -> bool {
        self.objects.iter().any(|o| o.action.writes())
    }

    /// What an applied plan did: `2 created, 1 configured, 0 pruned, 36 unchanged`.
    pub fn done_summary(&self) -> String {
        let mut done = format!(
            "{} created, {} configured, {} pruned, {} unchanged",
            self.count(Action::Create),
            self.count(Action::Configure),
            self.count(Action::Prune),
            self.count(Action::Unchanged)
        );
        let skipped = self.count(Action::Skip);
        if skipped > 0 {
            done.push_str(&format!(", {skipped} kept"));
        }
        done
    }

    /// `3 to create, 1 to change, 2 to prune, 40 unchanged`.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            format!("{} to create", self.count(Action::Create)),
            format!("{} to change", self.count(Action::Configure)),
            format!("{} to prune", self.count(Action::Prune)),
            format!("{} unchanged", self.count(Action::Unchanged)),
        ];
        let skipped = self.count(Action::Skip);
        if skipped > 0 {
            parts.push(format!("{skipped} kept"));
        }
        parts.join(", ")
    }
}

/// Computes the plan for `rendered` against the cluster.
///
/// # Errors
/// Discovery or list failures, and every object the server rejects on dry-run, all at once.
pub async fn plan(
    cluster: &Cluster,
    rendered: &[Object],
    declared: &Declared,
    release: &ReleaseId,
    previous: Option<&Inventory>,
    purpose: Purpose,
) -> Result<Plan, KubeError> {
    let live = list_live(cluster, rendered, release, previous).await?;
    let new_kinds = kinds_installed_by(rendered);
    // Objects in a namespace this release creates cannot be dry-run. A rendered Namespace
    // without the release's label may still exist (someone else's): dry-run those first.
    let unknown = |o: &&Object| {
        o.id.kind == "Namespace"
            && !live.contains_key(&ObjectKey::of("v1", "Namespace", None, &o.id.name))
    };
    let no_namespaces = BTreeSet::new();
    let roles: BTreeSet<ObjectKey> = rendered
        .iter()
        .filter(|o| matches!(o.id.kind.as_str(), "Role" | "ClusterRole"))
        .map(|o| o.id.key())
        .collect();
    let context = Context {
        cluster,
        release,
        live: &live,
        new_kinds: &new_kinds,
        roles: &roles,
        declared,
    };
    let first = context
        .plan_each(rendered.iter().filter(unknown).collect(), &no_namespaces)
        .await;
    let new_namespaces: BTreeSet<String> = first
        .iter()
        .flatten()
        .filter(|p| p.action == Action::Create)
        .map(|p| p.id.name.clone())
        .collect();
    let rest = context
        .plan_each(
            rendered.iter().filter(|o| !unknown(o)).collect(),
            &new_namespaces,
        )
        .await;
    // Back in render order.
    let (mut first, mut rest) = (first.into_iter(), rest.into_iter());
    let results: Vec<Result<PlannedObject, KubeError>> = rendered
        .iter()
        .filter_map(|o| {
            if unknown(&o) {
                first.next()
            } else {
                rest.next()
            }
        })
        .collect();
    let mut objects = Vec::new();
    let mut rejected = Vec::new();
    for result in results {
        match result {
            Ok(mut planned) => {
                if purpose == Purpose::Rollback {
                    keep_live_crd(&mut planned, &live);
                }
                objects.push(planned);
            }
            Err(err) => rejected.push(err),
        }
    }
    if !rejected.is_empty() {
        return Err(KubeError::combine(rejected, |n| {
            format!("the server rejected {n} object(s)")
        }));
    }

    if let Some(previous) = previous {
        for old in &previous.objects {
            let still_rendered = rendered.iter().any(|o| old.id.same_as(&o.id));
            if still_rendered {
                continue;
            }
            let Some(live_object) = live.get(&old.id.key()) else {
                continue;
            };
            let protected = kinds::lookup(&old.id.kind).is_some_and(|k| k.protected);
            let opted_in = live_object["metadata"]["annotations"][PRUNE_ANNOTATION] == "true";
            let (action, note) = if protected && purpose == Purpose::Rollback {
                (
                    Action::Skip,
                    Some(format!("a rollback never prunes a {}", old.id.kind)),
                )
            } else if protected && !opted_in {
                (
                    Action::Skip,
                    Some(format!(
                        "{} is never pruned unless it opts in with plane.datalayer.io/prune: \"true\"",
                        old.id.kind
                    )),
                )
            } else {
                (Action::Prune, None)
            };
            let mut before = normalize(live_object);
            mask_secrets(Some(&mut before), None);
            objects.push(PlannedObject {
                subject: old.id.subject(),
                id: old.id.clone(),
                component: old.component.clone(),
                action,
                note,
                desired: None,
                before: Some(before),
                after: None,
                generated_keys: None,
                owner: None,
                warning: None,
                dry_run_passed: false,
                binds_new_role: false,
                was_ready: false,
            });
        }
    }
    Ok(Plan {
        objects,
        declared: declared.clone(),
    })
}

/// A rollback leaves a live CRD as it is, whatever the revision had: CRDs only move forward,
/// and an older CRD could drop fields the custom resources of today hold.
fn keep_live_crd(planned: &mut PlannedObject, live: &HashMap<ObjectKey, Value>) {
    if planned.id.kind != "CustomResourceDefinition" {
        return;
    }
    let Some(live_object) = live.get(&planned.id.key()) else {
        return;
    };
    planned.action = Action::Skip;
    planned.note = Some("CRDs only move forward: a rollback leaves it as it is".into());
    planned.desired = None;
    planned.warning = None;
    planned.before = Some(normalize(live_object));
    planned.after = planned.before.clone();
}

/// Whether `object` is a RoleBinding or ClusterRoleBinding whose role is among `roles`.
fn binds_rendered_role(object: &Object, roles: &BTreeSet<ObjectKey>) -> bool {
    let role_ref = &object.value["roleRef"];
    let (Some(kind), Some(name)) = (role_ref["kind"].as_str(), role_ref["name"].as_str()) else {
        return false;
    };
    let namespace = match (object.id.kind.as_str(), kind) {
        ("RoleBinding", "Role") => object.id.namespace.as_deref(),
        ("RoleBinding" | "ClusterRoleBinding", "ClusterRole") => None,
        _ => return false,
    };
    roles.contains(&ObjectKey::of(
        "rbac.authorization.k8s.io/v1",
        kind,
        namespace,
        name,
    ))
}

/// Kinds whose CRD is part of the render: (group, kind) -> the CRD's name.
fn kinds_installed_by(rendered: &[Object]) -> BTreeMap<(String, String), String> {
    rendered
        .iter()
        .filter_map(|o| {
            let spec = CrdSpec::of(&o.value)?;
            Some(((spec.group, spec.kind), o.id.name.clone()))
        })
        .collect()
}

/// Lists the release's live objects: one LIST per kind and namespace, by the release label, of
/// which the release's are those whose labels name its record's namespace too — or, labelled by
/// an earlier plane without the namespace, those its record lists. Another release of the same
/// name (a team instance beside the platform) owns the rest.
pub(super) async fn list_live(
    cluster: &Cluster,
    rendered: &[Object],
    release: &ReleaseId,
    previous: Option<&Inventory>,
) -> Result<HashMap<ObjectKey, Value>, KubeError> {
    let selector = live_selector(release);
    let calls = live_lists(cluster, rendered, previous).await?;
    let params = ListParams::default().labels(&selector);
    let lists: Vec<Vec<Value>> = stream::iter(calls)
        .map(|(served, namespace): (ServedKind, Option<String>)| {
            let params = &params;
            async move {
                let resource = &served.resource;
                cluster
                    .list_objects(
                        &resource.api_version,
                        &resource.kind,
                        namespace.as_deref(),
                        params,
                    )
                    .await?
                    .objects()
            }
        })
        .buffered(LISTS_IN_FLIGHT)
        .try_collect()
        .await?;
    let recorded: BTreeSet<ObjectKey> = previous
        .map(|p| p.objects.iter().map(|o| o.id.key()).collect())
        .unwrap_or_default();
    let live = lists
        .into_iter()
        .flatten()
        .filter_map(|object| Some((ObjectKey::of_object(&object)?, object)))
        // What an engine runs is the engine's, whatever plane's labels on it say.
        .filter(|(_, object)| engine_of(object).is_none())
        .filter(|(key, object)| match release.claim(object) {
            Claim::Ours => true,
            Claim::Unplaced => recorded.contains(key),
            Claim::Other { .. } | Claim::NotPlane => false,
        })
        .collect();
    Ok(live)
}

/// The label selector of the plan's lists: the release's objects.
pub fn live_selector(release: &ReleaseId) -> String {
    format!("{RELEASE_LABEL}={}", release.name)
}

/// The plan's lists: each kind of the render and the record, in each namespace it is in (one
/// list cluster-wide for a cluster-scoped kind); kinds the cluster does not serve are left out.
///
/// # Errors
/// Discovery failures.
pub async fn live_lists(
    cluster: &Cluster,
    rendered: &[Object],
    previous: Option<&Inventory>,
) -> Result<Vec<(ServedKind, Option<String>)>, KubeError> {
    let mut wanted: BTreeMap<(String, String), BTreeSet<Option<String>>> = BTreeMap::new();
    let recorded = previous.map(|p| p.objects.as_slice()).unwrap_or_default();
    for id in rendered
        .iter()
        .map(|o| &o.id)
        .chain(recorded.iter().map(|o| &o.id))
    {
        wanted
            .entry((id.api_version.clone(), id.kind.clone()))
            .or_default()
            .insert(id.namespace.clone());
    }
    cluster
        .prefetch(wanted.keys().map(|(api_version, _)| api_version.as_str()))
        .await?;
    let mut calls = Vec::new();
    for ((api_version, kind), namespaces) in &wanted {
        let Some(served) = cluster.find(api_version, kind).await? else {
            continue;
        };
        let namespaces: BTreeSet<Option<String>> = namespaces
            .iter()
            .map(|ns| ns.clone().filter(|_| served.namespaced))
            .collect();
        for namespace in namespaces {
            calls.push((served.clone(), namespace));
        }
    }
    Ok(calls)
}

/// What planning each object needs to know.
struct Context<'a> {
    cluster: &'a Cluster,
    release: &'a ReleaseId,
    live: &'a HashMap<ObjectKey, Value>,
    new_kinds: &'a BTreeMap<(String, String), String>,
    /// The Roles and ClusterRoles the render holds.
    roles: &'a BTreeSet<ObjectKey>,
    declared: &'a Declared,
}

impl Context<'_> {
    /// Plans objects 8 at a time, results in input order.
    async fn plan_each(
        &self,
        objects: Vec<&Object>,
        new_namespaces: &BTreeSet<String>,
    ) -> Vec<Result<PlannedObject, KubeError>> {
        stream::iter(objects)
            .map(|object| plan_one(self, object, new_namespaces))
            .buffered(IN_FLIGHT)
            .collect()
            .await
    }
}

async fn plan_one(
    context: &Context<'_>,
    object: &Object,
    new_namespaces: &BTreeSet<String>,
) -> Result<PlannedObject, KubeError> {
    let Context {
        cluster,
        release,
        live,
        new_kinds,
        roles,
        declared,
    } = *context;
    let id = &object.id;
    let subject = id.to_string();
    let mut planned = PlannedObject {
        subject: subject.clone(),
        id: id.clone(),
        component: object.component.clone(),
        action: Action::Create,
        note: None,
        desired: Some(object.value.clone()),
        before: None,
        after: None,
        generated_keys: object.generated_keys(),
        owner: None,
        warning: None,
        dry_run_passed: false,
        binds_new_role: false,
        was_ready: false,
    };
    let mut live_object = live.get(&id.key()).cloned();

    let served = cluster.find(&id.api_version, &id.kind).await?;
    let Some(served) = served else {
        if let Some(crd) = new_kinds.get(&(id.group().to_owned(), id.kind.clone())) {
            // A CRD that exists but whose kind is not served yet (one an interrupted run has
            // just created): `up` waits until it is established before touching this object.
            let exists = live.contains_key(&ObjectKey::of(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                crd,
            ));
            planned.note = Some(if exists {
                format!("its CRD {crd} exists but is not established yet; up waits for it")
            } else {
                "its CRD is installed by this release".into()
            });
            planned.after = Some(masked_after(&object.value, None));
            return Ok(planned);
        }
        if let Some(crd) = unestablished_crd(cluster, id.group(), &id.kind).await {
            return Err(KubeError::Local {
                what: format!(
                    "the cluster does not serve {} in {} yet",
                    id.kind, id.api_version
                ),
                subject: Some(subject),
                reason: format!("its CRD {crd} exists but is not established yet"),
                hint: Some(format!(
                    "run again once it is (`kubectl wait --for condition=established crd/{crd}`)"
                )),
            });
        }
        return Err(KubeError::Local {
            what: format!("the cluster does not serve {} in {}", id.kind, id.api_version),
            subject: Some(subject),
            reason: "no matching resource in API discovery".into(),
            hint: Some("install the CRD that defines this kind first, or turn off the component that renders it".into()),
        });
    };
    if planned.generated_keys.is_some() {
        // Generated Secrets are create-only: their values are never compared or shown. Their
        // metadata follows the render (plane's labels), with the live values applied as they
        // are.
        planned.after = Some(masked_after(&object.value, None));
        if let Some(live_object) = &live_object {
            let metadata_moved = ["labels", "annotations"].iter().any(|field| {
                let desired = &object.value["metadata"][field];
                desired.as_object().is_some_and(|map| {
                    map.iter()
                        .any(|(k, v)| &live_object["metadata"][field][k] != v)
                })
            });
            planned.action = if metadata_moved {
                planned.note = Some("its metadata changes; its generated values stay".into());
                let mut with_values = object.value.clone();
                with_values["data"] = live_object["data"].clone();
                let mut before = normalize(live_object);
                let mut after = normalize(&with_values);
                mask_secrets(Some(&mut before), Some(&mut after));
                planned.before = Some(before);
                planned.after = Some(after);
                Action::Configure
            } else {
                Action::Unchanged
            };
            planned.was_ready = readiness::evaluate(live_object, declared).is_ready();
        }
        return Ok(planned);
    }
    if id
        .namespace
        .as_ref()
        .is_some_and(|ns| new_namespaces.contains(ns))
        && live_object.is_none()
    {
        planned.note = Some("its namespace is created by this release".into());
        planned.after = Some(masked_after(&object.value, None));
        return Ok(planned);
    }

    let mut desired = object.value.clone();
    if let Some(live_object) = &live_object {
        keep_controller_owned(&mut desired, live_object);
        planned.was_ready = readiness::evaluate(live_object, declared).is_ready();
        if provably_unchanged(&desired, live_object) {
            // The server would return the live object: no dry-run needed to know it.
            let mut before = normalize(live_object);
            let mut after = before.clone();
            mask_secrets(Some(&mut before), Some(&mut after));
            planned.action = Action::Unchanged;
            planned.dry_run_passed = true;
            planned.desired = Some(desired);
            planned.before = Some(before);
            planned.after = Some(after);
            return Ok(planned);
        }
    }
    let api = cluster.api(&served, id.namespace.as_deref());
    let params = crate::kube::release::ssa::apply_params().dry_run();
    let patch = Patch::Apply(&desired);
    let dry = match retry(|| api.patch(&id.name, &params, &patch)).await {
        Ok(dry) => {
            planned.dry_run_passed = true;
            served.typed(dry)
        }
        Err(err) => {
            let what = if crate::kube::client::retry::is_transient(&err) {
                "cannot dry-run the object"
            } else {
                "the server rejected the object on dry-run"
            };
            let rejected = KubeError::api(what, Some(&subject), &err);
            // Over someone else's object, that it is theirs is what to say first.
            if live_object.is_none() && rejected.code() == Some(422) {
                let other = cluster
                    .get(id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|o| owner_of(&o, release));
                if let Some(owner) = other {
                    planned.note = Some(format!(
                        "exists, owned by {owner}; the server would also reject applying over it"
                    ));
                    planned.owner = Some(owner);
                    planned.action = Action::Configure;
                    return Ok(planned);
                }
            }
            // Without the right to escalate, a binding is checked against its role, which the
            // server cannot find before `up` writes it: 404. The role comes first in `up`.
            if live_object.is_none()
                && rejected.code() == Some(404)
                && binds_rendered_role(object, roles)
            {
                planned.binds_new_role = true;
                planned.note = Some("its role is created by this release".into());
                planned.desired = Some(desired);
                planned.after = Some(masked_after(&object.value, None));
                return Ok(planned);
            }
            return Err(rejected);
        }
    };

    if live_object.is_none()
        && dry["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty())
    {
        // It exists but without this release's label: someone else's.
        live_object = cluster.get(id).await?;
        planned.owner = live_object
            .as_ref()
            .and_then(|live| owner_of(live, release));
        if let Some(owner) = &planned.owner {
            planned.note = Some(format!("exists, owned by {owner}"));
        }
    }
    planned.desired = Some(desired);
    match live_object {
        None => planned.after = Some(masked_after(&dry, None)),
        Some(live_object) => {
            let mut before = normalize(&live_object);
            let mut after = normalize(&dry);
            let same = before == after;
            mask_secrets(Some(&mut before), Some(&mut after));
            planned.action = if same {
                Action::Unchanged
            } else {
                Action::Configure
            };
            if !same {
                planned.warning = declared
                    .rule_of(&before)
                    .and_then(|rule| rule.not_picked_up(&before, &after));
            }
            planned.before = Some(before);
            planned.after = Some(after);
        }
    }
    Ok(planned)
}

/// The name of a CRD on the cluster that defines `kind` in `group` but is not established yet.
/// Asked only when a kind is not served; a CRD list the credentials may not read finds none.
async fn unestablished_crd(cluster: &Cluster, group: &str, kind: &str) -> Option<String> {
    let reading = Reading {
        what: "cannot list CustomResourceDefinitions",
        subject: None,
    };
    let crds = cluster
        .list(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            &ListParams::default(),
            reading,
        )
        .await
        .ok()?
        .objects()
        .ok()?;
    crds.into_iter().find_map(|crd| {
        let defines = CrdSpec::of(&crd).is_some_and(|s| s.group == group && s.kind == kind);
        (defines && !readiness::evaluate(&crd, &Declared::default()).is_ready()).then(|| {
            crd["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
    })
}

fn masked_after(value: &Value, before: Option<&mut Value>) -> Value {
    let mut after = normalize(value);
    mask_secrets(before, Some(&mut after));
    after
}
