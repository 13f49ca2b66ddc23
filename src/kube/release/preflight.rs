//! Refuse up front what cannot work: permissions the run lacks (the rules of each namespace,
//! then an access review for what they do not grant), kinds the cluster does not serve, missing
//! IngressClasses.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, stream};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, ResourceRule, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use serde_json::Value;

use crate::bundle::crd::CrdSpec;
use crate::bundle::{Object, ObjectRef};
use crate::kube::client::Cluster;
use crate::kube::client::IN_FLIGHT;
use crate::kube::client::retry::retry;
use crate::kube::error::KubeError;
use crate::kube::progress::{Event, Reporter};

/// One permission a run needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    pub verb: &'static str,
    pub group: String,
    pub resource: String,
    pub namespace: Option<String>,
}

impl Permission {
    fn describe(&self) -> String {
        let resource = if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        };
        match &self.namespace {
            Some(ns) => format!("{} {resource} in namespace {ns}", self.verb),
            None => format!("{} {resource} (cluster-wide)", self.verb),
        }
    }
}

/// An object reference with what discovery (or a CRD in the render) says about its resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub plural: String,
    pub namespaced: bool,
}

/// Resolves a kind through discovery, or through a CRD in `rendered` that will install it.
///
/// # Errors
/// Discovery failures.
pub async fn resolve(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
    rendered: &[Object],
) -> Result<Option<ResourceInfo>, KubeError> {
    if let Some(served) = cluster.find(api_version, kind).await? {
        return Ok(Some(ResourceInfo {
            group: served.resource.group.clone(),
            plural: served.resource.plural.clone(),
            namespaced: served.namespaced,
        }));
    }
    Ok(rendered
        .iter()
        .filter_map(|o| CrdSpec::of(&o.value))
        .find(|spec| spec.defines(api_version, kind))
        .map(|spec| ResourceInfo {
            group: spec.group,
            plural: spec.plural,
            namespaced: spec.namespaced,
        }))
}

/// Asks the server about every need at once and lists every denial: one
/// SelfSubjectRulesReview per namespace first, then a SelfSubjectAccessReview for each need the
/// rules do not grant (cluster-wide needs, rules the server could not list in full, or a real
/// denial, which the access review then confirms with the authorizer's own answer).
///
/// # Errors
/// [`KubeError::Denied`] with each missing permission; API failures of the reviews themselves.
pub async fn check_access(cluster: &Cluster, needs: BTreeSet<Permission>) -> Result<(), KubeError> {
    let namespaces: BTreeSet<String> = needs.iter().filter_map(|n| n.namespace.clone()).collect();
    let rules: BTreeMap<String, Vec<ResourceRule>> = stream::iter(namespaces)
        .map(|namespace| async move {
            let rules = cluster.namespace_rules(&namespace).await;
            (namespace, rules)
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|(namespace, rules)| async move { rules.map(|r| (namespace, r)) })
        .collect()
        .await;
    let unproven: Vec<Permission> = needs
        .into_iter()
        .filter(|need| {
            !need
                .namespace
                .as_ref()
                .and_then(|ns| rules.get(ns))
                .is_some_and(|rules| rules.iter().any(|rule| grants(rule, need)))
        })
        .collect();
    let api: Api<SelfSubjectAccessReview> = Api::all(cluster.client().clone());
    let results: Vec<Result<Option<String>, KubeError>> = stream::iter(unproven)
        .map(|need| {
            let api = api.clone();
            async move {
                let review = SelfSubjectAccessReview {
                    spec: SelfSubjectAccessReviewSpec {
                        resource_attributes: Some(ResourceAttributes {
                            verb: Some(need.verb.to_owned()),
                            group: Some(need.group.clone()),
                            resource: Some(need.resource.clone()),
                            namespace: need.namespace.clone(),
                            ..ResourceAttributes::default()
                        }),
                        ..SelfSubjectAccessReviewSpec::default()
                    },
                    ..SelfSubjectAccessReview::default()
                };
                let params = PostParams::default();
                let answer = retry(|| api.create(&params, &review))
                    .await
                    .map_err(|err| KubeError::api("cannot check permissions", None, &err))?;
                let allowed = answer.status.is_some_and(|s| s.allowed);
                Ok((!allowed).then(|| need.describe()))
            }
        })
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let mut denials = Vec::new();
    for result in results {
        if let Some(denial) = result? {
            denials.push(denial);
        }
    }
    if denials.is_empty() {
        Ok(())
    } else {
        Err(KubeError::Denied { denials })
    }
}

/// Whether a rule grants a need: its verb, group and resource, for every name of the resource.
fn grants(rule: &ResourceRule, need: &Permission) -> bool {
    let has = |list: Option<&Vec<String>>, value: &str| {
        list.is_some_and(|l| l.iter().any(|v| v == "*" || v == value))
    };
    has(Some(&rule.verbs), need.verb)
        && has(rule.api_groups.as_ref(), &need.group)
        && has(rule.resources.as_ref(), &need.resource)
        && rule.resource_names.as_ref().is_none_or(Vec::is_empty)
}

/// The IngressClasses the render's Ingresses name.
pub fn ingress_classes(rendered: &[Object]) -> BTreeSet<&str> {
    rendered
        .iter()
        .filter(|o| o.id.kind == "Ingress")
        .filter_map(|o| {
            o.value
                .pointer("/spec/ingressClassName")
                .and_then(Value::as_str)
        })
        .collect()
}

/// Warns about Ingresses whose IngressClass does not exist: they would never be served.
///
/// # Errors
/// Discovery failures; a missing IngressClass is only a warning.
pub async fn warn_ingress_classes(
    cluster: &Cluster,
    rendered: &[Object],
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let classes = ingress_classes(rendered);
    if classes.is_empty() {
        return Ok(());
    }
    if cluster
        .find("networking.k8s.io/v1", "IngressClass")
        .await?
        .is_none()
    {
        return Ok(());
    }
    for class in classes {
        let id = ObjectRef {
            api_version: "networking.k8s.io/v1".into(),
            kind: "IngressClass".into(),
            namespace: None,
            name: class.to_owned(),
        };
        if let Ok(None) = cluster.get(&id).await {
            reporter.report(Event::Note(format!(
                "warning: IngressClass {class} does not exist in this cluster; Ingresses that name it will not be served"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(verb: &'static str, group: &str, resource: &str) -> Permission {
        Permission {
            verb,
            group: group.into(),
            resource: resource.into(),
            namespace: Some("ns".into()),
        }
    }

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> ResourceRule {
        let strings = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        ResourceRule {
            verbs: strings(verbs),
            api_groups: Some(strings(groups)),
            resources: Some(strings(resources)),
            resource_names: (!names.is_empty()).then(|| strings(names)),
        }
    }

    #[test]
    fn a_rule_grants_its_verbs_groups_and_resources_for_every_name() {
        let secrets = rule(&["get", "patch"], &[""], &["secrets"], &[]);
        assert!(grants(&secrets, &need("patch", "", "secrets")));
        assert!(!grants(&secrets, &need("create", "", "secrets")));
        assert!(!grants(&secrets, &need("patch", "apps", "secrets")));
        assert!(!grants(&secrets, &need("patch", "", "configmaps")));
        assert!(grants(
            &rule(&["*"], &["*"], &["*"], &[]),
            &need("delete", "apps", "deployments")
        ));
        // A rule for named objects does not cover the resource as a whole.
        assert!(!grants(
            &rule(&["get"], &[""], &["secrets"], &["plane-release"]),
            &need("get", "", "secrets")
        ));
    }
}
