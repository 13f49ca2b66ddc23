//! The state namespace: where a release's record (a Secret) and its lock (a Lease) live, by
//! name, and the namespace itself, created on the first write.

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch};
use serde_json::json;

use crate::bundle::objects::MANAGED_BY;
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;
use crate::kube::object::FIELD_MANAGER;

/// The name of a release's record, a Secret in the state namespace.
pub fn record_name(release: &str) -> String {
    format!("plane-release-{release}")
}

/// The name of a release's lock, a Lease in the state namespace.
pub fn lock_name(release: &str) -> String {
    format!("plane-lock-{release}")
}

/// Creates the state namespace (or leaves it as it is).
///
/// # Errors
/// API failures, naming the namespace.
pub async fn ensure_namespace(client: &kube::Client, namespace: &str) -> Result<(), KubeError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {MANAGED_BY: FIELD_MANAGER}}});
    let (params, patch) = (
        crate::kube::release::ssa::apply_params(),
        Patch::Apply(&body),
    );
    retry(|| api.patch(namespace, &params, &patch))
        .await
        .map(|_| ())
        .map_err(|err| {
            KubeError::api(
                "cannot create the state namespace",
                Some(&format!("Namespace/{namespace}")),
                &err,
            )
        })
}
