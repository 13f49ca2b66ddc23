//! Read-only views of releases for `plane status`: their parts, what their bundles' status views
//! list across the cluster, and its usage. Nothing here writes.

pub(crate) mod parts;
pub(crate) mod prometheus;
pub(crate) mod requests;
pub(crate) mod view;

use kube::api::ListParams;
use serde::Serialize;
use serde_json::Value;

use crate::kube::client::Cluster;
use crate::kube::client::read::{Listing, Reading};
use crate::kube::error::KubeError;

/// A kind `status` lists in all namespaces.
#[derive(Debug, Clone)]
pub struct ListedKind {
    pub api_version: String,
    pub kind: String,
    /// `plural.group`, the name RBAC and kubectl use (`widgets.example.com`, `pods`).
    pub resource: String,
    pub selector: Option<String>,
}

/// Why a kind's objects are not all known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// `widgets.example.com`.
    pub resource: String,
    /// The HTTP status the server answered, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The result of listing one kind: its objects, or why there are none to show.
#[derive(Debug, Clone)]
pub enum Listed {
    Objects(Vec<Value>),
    /// The cluster does not serve the kind (its CRD is not installed): there are none.
    NotServed(Gap),
    /// The kind exists but could not be read (RBAC, a failing server): what it holds is unknown.
    Unreadable(Gap),
}

impl Listed {
    pub fn objects(&self) -> Option<&[Value]> {
        match self {
            Self::Objects(objects) => Some(objects),
            Self::NotServed(_) => Some(&[]),
            Self::Unreadable(_) => None,
        }
    }
}

/// Lists every object of `kind` in all namespaces, each typed with its kind.
pub async fn list_all(cluster: &Cluster, kind: ListedKind) -> Listed {
    let served = match cluster.find(&kind.api_version, &kind.kind).await {
        Ok(Some(served)) => served,
        Ok(None) => return Listed::NotServed(not_served(&kind)),
        Err(err) => return Listed::Unreadable(Gap::new(&kind.resource, &err, "")),
    };
    let mut params = ListParams::default();
    if let Some(selector) = &kind.selector {
        params = params.labels(selector);
    }
    let what = format!("cannot list {}", kind.resource);
    let reading = Reading {
        what: &what,
        subject: None,
    };
    let unreadable = |err: &KubeError| {
        Listed::Unreadable(Gap::new(
            &kind.resource,
            err,
            &format!(
                "ask a cluster admin for `list` on {} in all namespaces (a ClusterRole bound \
                 with a ClusterRoleBinding)",
                kind.resource
            ),
        ))
    };
    match cluster.list_served(&served, None, &params, reading).await {
        Ok(Listing::Objects(objects)) => Listed::Objects(objects),
        Ok(Listing::NotServed) => Listed::NotServed(not_served(&kind)),
        Ok(Listing::Forbidden(err)) | Err(err) => unreadable(&err),
    }
}

impl Gap {
    /// The gap an error leaves; a 403 names the user the server refused, with `forbidden_hint`.
    pub fn new(resource: &str, err: &KubeError, forbidden_hint: &str) -> Self {
        let problem = err.to_problem();
        let reason = if problem.causes.is_empty() {
            problem.what
        } else {
            problem.causes.join(": ")
        };
        if err.code() == Some(403) {
            return Self {
                resource: resource.to_owned(),
                code: Some(403),
                reason: forbidden_reason(&reason),
                hint: (!forbidden_hint.is_empty()).then(|| forbidden_hint.to_owned()),
            };
        }
        Self {
            resource: resource.to_owned(),
            code: err.code(),
            reason,
            hint: problem.hint,
        }
    }
}

fn not_served(kind: &ListedKind) -> Gap {
    Gap {
        resource: kind.resource.clone(),
        code: None,
        reason: format!(
            "the cluster does not serve {} (its CustomResourceDefinition is not installed)",
            kind.resource
        ),
        hint: None,
    }
}

/// `forbidden for user "jane"` from the API server's message, which names the user.
fn forbidden_reason(message: &str) -> String {
    let user = message
        .split_once("User \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(user, _)| user);
    match user {
        Some(user) => format!("forbidden for user \"{user}\""),
        None => format!("forbidden: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_the_user() {
        assert_eq!(
            forbidden_reason(
                "widgets.example.com is forbidden: User \"jane\" cannot list resource \"widgets\""
            ),
            "forbidden for user \"jane\""
        );
    }
}
