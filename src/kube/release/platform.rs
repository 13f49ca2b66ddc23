//! What a team instance needs of the cluster before anything of it is written: its namespace,
//! the kinds the platform serves, and the platform's operator, watching that namespace.

use kube::api::ListParams;
use serde_json::Value;

use crate::bundle::{Existing, ObjectRef, Required, WatchNamespaces};
use crate::kube::client::Cluster;
use crate::kube::client::read::{Listing, Reading};
use crate::kube::error::KubeError;
use crate::kube::progress::{Event, Reporter};

/// The platform a team instance relies on: the kinds it must serve and how to find its operator.
#[derive(Debug, Clone, Copy)]
pub struct Platform<'a> {
    /// The bundle, for messages and hints.
    pub addon: &'a str,
    pub requires: &'a [Required],
    /// How to find the operator, and where it lists the namespaces it watches (the `existing` of
    /// the platform's components).
    pub operator: &'a [Existing],
}

/// Refuses a team instance whose namespace does not exist, or whose platform is missing: kinds
/// not served, no operator, or an operator that does not watch the namespace. What the
/// credentials may not see (a namespace admin cannot list the operator) is said in one
/// warning, and the check goes on with what it could see.
///
/// # Errors
/// [`KubeError::Local`] naming what is missing and how to fix it; API failures.
pub async fn check_team_instance(
    cluster: &Cluster,
    namespace: &str,
    platform: &Platform<'_>,
    reporter: &dyn Reporter,
) -> Result<(), KubeError> {
    let id = ObjectRef {
        api_version: "v1".into(),
        kind: "Namespace".into(),
        namespace: None,
        name: namespace.to_owned(),
    };
    if cluster.get(&id).await?.is_none() {
        return Err(KubeError::Local {
            what: format!("namespace {namespace} does not exist"),
            subject: Some(format!("Namespace/{namespace}")),
            reason: "a team instance is installed into an existing namespace; plane does not \
                     create it"
                .into(),
            hint: Some(format!(
                "ask a cluster admin to create it (`kubectl create namespace {namespace}`) and \
                 make you its admin, then run again"
            )),
        });
    }
    let mut missing = Vec::new();
    for required in platform.requires {
        if cluster
            .find(&required.api_version, &required.kind)
            .await?
            .is_none()
        {
            missing.push(format!("{} in {}", required.kind, required.api_version));
        }
    }
    if !missing.is_empty() {
        return Err(platform_missing(
            platform,
            format!("the cluster does not serve {}", missing.join(", ")),
        ));
    }
    let what = operator_name(platform);
    let mut operators: Vec<(Value, Option<&WatchNamespaces>)> = Vec::new();
    for existing in platform.operator {
        for detect in &existing.detect {
            let params = ListParams::default().labels(&detect.selector);
            let reading_what = format!("cannot look for the {} of the platform", detect.kind);
            let reading = Reading {
                what: &reading_what,
                subject: None,
            };
            match cluster
                .list(&detect.api_version, &detect.kind, None, &params, reading)
                .await?
            {
                Listing::Objects(found) => operators.extend(
                    found
                        .into_iter()
                        .map(|o| (o, existing.watch_namespaces.as_ref())),
                ),
                Listing::NotServed => {}
                Listing::Forbidden(err) => {
                    reporter.report(Event::Note(format!(
                        "warning: could not check that a {what} runs and watches {namespace} ({}); going on with what these credentials can see",
                        err.to_problem().causes.join(": ")
                    )));
                    return Ok(());
                }
            }
        }
    }
    if operators.is_empty() && !platform.operator.is_empty() {
        return Err(platform_missing(
            platform,
            format!("no {what} runs in the cluster"),
        ));
    }
    // An operator that watches only some namespaces must watch this one.
    let lists: Vec<Option<Vec<String>>> = operators
        .iter()
        .map(|(operator, flag)| flag.and_then(|f| watched(operator, &f.flag)))
        .collect();
    if !lists.is_empty()
        && lists.iter().all(|list| {
            list.as_ref()
                .is_some_and(|l| !l.iter().any(|ns| ns == namespace))
        })
    {
        let watched: Vec<String> = lists.iter().flatten().flatten().cloned().collect();
        let values = operators
            .iter()
            .find_map(|(_, flag)| flag.map(|f| f.values.as_str()))
            .unwrap_or_default();
        return Err(KubeError::Local {
            what: format!("the {what} does not watch namespace {namespace}"),
            subject: Some(format!("Namespace/{namespace}")),
            reason: format!("it watches only {}", watched.join(", ")),
            hint: Some(format!(
                "add {namespace} to the platform's {values} and run its `plane up` \
                 again, then this one"
            )),
        });
    }
    Ok(())
}

/// What the platform's operator is called in messages: `Widget operator`.
fn operator_name(platform: &Platform<'_>) -> String {
    let names: Vec<&str> = platform.operator.iter().map(|e| e.what.as_str()).collect();
    if names.is_empty() {
        "operator".to_owned()
    } else {
        names.join(" or ")
    }
}

/// The namespaces an operator Deployment watches (`FLAG=a,b` among its containers' arguments),
/// or `None` for all.
fn watched(operator: &Value, flag: &str) -> Option<Vec<String>> {
    let prefix = format!("{flag}=");
    let containers = operator["spec"]["template"]["spec"]["containers"].as_array()?;
    containers
        .iter()
        .flat_map(|c| c["args"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .find_map(|arg| arg.strip_prefix(prefix.as_str()))
        .filter(|list| !list.is_empty())
        .map(|list| list.split(',').map(str::to_owned).collect())
}

fn platform_missing(platform: &Platform<'_>, reason: String) -> KubeError {
    KubeError::Local {
        what: format!(
            "the platform of {} is not installed; nothing was changed",
            platform.addon
        ),
        subject: None,
        reason,
        hint: Some(format!(
            "install the platform first (`plane up {} --profile PROFILE`, by a cluster admin), \
             then the team instance",
            platform.addon
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_operator_watches_all_namespaces_unless_its_flag_names_some() {
        let operator = |args: Value| json!({"spec": {"template": {"spec": {"containers": [{"name": "op", "args": args}]}}}});
        let flag = "--namespaces";
        assert_eq!(
            watched(&operator(json!(["--metrics-addr=:8080"])), flag),
            None
        );
        assert_eq!(
            watched(&operator(json!(["--namespaces=team-a,team-b"])), flag),
            Some(vec!["team-a".to_owned(), "team-b".to_owned()])
        );
        assert_eq!(watched(&operator(json!(["--namespaces="])), flag), None);
    }
}
