//! Who each profile of a fleet may touch, resolved before anything runs: its pinned context,
//! server and cluster identity, and never two profiles on one cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::super::session;
use crate::bundle::Profile;
use crate::error::{Error, Problem};
use crate::kube::{self, ConnectOptions};

/// Where one profile runs: its cluster, as its pin resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub profile: String,
    pub context: String,
    pub server: String,
    /// The UID of its `kube-system` Namespace; empty when the cluster could not be reached.
    pub uid: String,
}

/// A profile whose cluster could not be reached: reads report it as that profile's failure,
/// `up` refuses the whole fleet.
#[derive(Debug)]
pub struct Unreachable {
    pub target: Target,
    pub error: Error,
}

/// Resolves every profile's pin, all at once: the context it names (or the kubeconfig's one
/// context for the server it names), that context's server, and the cluster's identity (one GET
/// each). A profile without a pin, a pin the cluster does not match, or two profiles that reach
/// one cluster is a refusal (exit 2), before any profile's work starts.
///
/// # Errors
/// Every such problem at once, each naming its profile file.
pub async fn resolve(
    profiles: &[Profile],
    kubeconfig: Option<&PathBuf>,
    request_timeout: Option<std::time::Duration>,
) -> Result<(Vec<Target>, Vec<Unreachable>), Error> {
    let mut problems = Vec::new();
    let mut contexts = Vec::new();
    for profile in profiles {
        match pinned_context(profile, kubeconfig.map(PathBuf::as_path)) {
            Ok(context) => contexts.push(context),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Input { problems });
    }
    let reached = futures::future::join_all(profiles.iter().zip(&contexts).map(
        |(profile, context)| async move {
            let options = ConnectOptions {
                kubeconfig: kubeconfig.cloned(),
                context: Some(context.clone()),
                request_timeout,
            };
            let mut target = Target {
                profile: profile.name.clone(),
                context: context.clone(),
                server: String::new(),
                uid: String::new(),
            };
            let cluster = match kube::connect(&options).await {
                Ok(cluster) => cluster,
                Err(err) => {
                    return Err(Unreachable {
                        target,
                        error: err.into(),
                    });
                }
            };
            target.server.clone_from(&cluster.server);
            // The pin's context and server, and its uid when it has one: one GET.
            if let Err(error) = session::check_pin(Some(profile), &cluster).await {
                return Err(Unreachable { target, error });
            }
            match cluster.identity().await {
                Ok(uid) => target.uid = uid,
                Err(err) => {
                    return Err(Unreachable {
                        target,
                        error: err.into(),
                    });
                }
            }
            Ok(target)
        },
    ))
    .await;
    let mut targets = Vec::new();
    let mut unreachable = Vec::new();
    for result in reached {
        match result {
            Ok(target) => targets.push(target),
            // A pin the cluster does not match is the user's mistake, for the whole fleet.
            Err(Unreachable {
                error: Error::Input { problems: found },
                ..
            }) => {
                problems.extend(found);
            }
            Err(other) => unreachable.push(other),
        }
    }
    let mut by_uid: BTreeMap<&str, Vec<&Target>> = BTreeMap::new();
    for target in &targets {
        by_uid.entry(&target.uid).or_default().push(target);
    }
    for (uid, same) in by_uid.into_iter().filter(|(_, same)| same.len() > 1) {
        let names: Vec<String> = same
            .iter()
            .map(|t| format!("{} (context {})", t.profile, t.context))
            .collect();
        problems.push(
            Problem::new(format!("{} reach the same cluster", names.join(" and ")))
                .because(format!("their kube-system Namespace is one: uid {uid}"))
                .hint("pin each profile to its own cluster (`cluster: {context, uid}` in the profile)"),
        );
    }
    if !problems.is_empty() {
        return Err(Error::Input { problems });
    }
    Ok((targets, unreachable))
}

/// The context a profile's pin names: its `context`, or the kubeconfig's one context whose
/// cluster is its `server`.
fn pinned_context(
    profile: &Profile,
    kubeconfig: Option<&std::path::Path>,
) -> Result<String, Problem> {
    let Some(pin) = &profile.spec.cluster else {
        return Err(
            Problem::new(format!("profile {} pins no cluster", profile.name))
                .at(profile.path.clone())
                .because("in a fleet every profile must say which cluster it may touch")
                .hint("add `cluster: {context: NAME, uid: KUBE_SYSTEM_UID}` to the profile"),
        );
    };
    if let Some(context) = &pin.context {
        return Ok(context.clone());
    }
    let Some(server) = &pin.server else {
        return Err(Problem::new(format!(
            "profile {} pins no context and no server",
            profile.name
        ))
        .at(profile.path.clone())
        .hint("add `context:` or `server:` under `cluster:`"));
    };
    let server = server.trim_end_matches('/');
    let matching = kube::contexts_reaching(kubeconfig, server);
    match matching.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Problem::new(format!(
            "profile {} pins server {server}, which no kubeconfig context reaches",
            profile.name
        ))
        .at(profile.path.clone())
        .hint("add a context for it to the kubeconfig, or pin `context:`")),
        several => Err(Problem::new(format!(
            "profile {} pins server {server}, which several contexts reach: {}",
            profile.name,
            several.join(", ")
        ))
        .at(profile.path.clone())
        .hint("pin `context:` as well")),
    }
}
