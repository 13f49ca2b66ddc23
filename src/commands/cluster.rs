//! The steps diff, up and ls share: a runtime, a connection checked against the profile's pin,
//! and the plan.

use crate::bundle::{Profile, Rendered};
use crate::cli::ClusterArgs;
use crate::error::{Error, Problem};
use crate::kube::{self, ConnectOptions, KubeError, Resources, Target};
use crate::ui::Printer;

/// A tokio runtime for cluster commands (template never builds one).
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| Error::Failed {
            problem: Problem::new("cannot start the async runtime").because(err.to_string()),
        })
}

/// A cluster failure as a command error.
pub fn failed(err: &KubeError) -> Error {
    Error::Failed {
        problem: err.to_problem(),
    }
}

/// Connects, refuses a cluster other than the one the profile pins, and says where it is going.
pub async fn connect(
    args: &ClusterArgs,
    profile: Option<&Profile>,
    printer: &Printer,
) -> Result<(Target, Resources), Error> {
    let target = kube::connect(&ConnectOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
    })
    .await
    .map_err(|err| failed(&err))?;
    if let Some(pin) = profile.and_then(|p| p.spec.cluster.as_ref().map(|c| (p, c))) {
        let (profile, cluster) = pin;
        let mut wrong = Vec::new();
        if let Some(context) = &cluster.context
            && context != &target.context
        {
            wrong.push(format!(
                "context `{}` is not the pinned context `{context}`",
                target.context
            ));
        }
        if let Some(server) = &cluster.server
            && server.trim_end_matches('/') != target.server
        {
            wrong.push(format!(
                "server {} is not the pinned server {server}",
                target.server
            ));
        }
        if !wrong.is_empty() {
            let mut problem = Problem::new(format!(
                "profile {} may not touch this cluster",
                profile.name
            ))
            .at(profile.file.clone());
            for why in wrong {
                problem = problem.because(why);
            }
            return Err(Error::input(problem.hint(
                "pass --context for the pinned cluster, or use another profile",
            )));
        }
    }
    printer.status(&format!(
        "target: context {} ({})",
        if target.context.is_empty() {
            "-"
        } else {
            &target.context
        },
        target.server
    ));
    let resources = Resources::new(target.client.clone());
    Ok((target, resources))
}

/// Refuses an empty render over a release that has objects: that would prune everything.
pub fn refuse_empty_render(
    rendered: &Rendered,
    previous: Option<&kube::Inventory>,
) -> Result<(), Error> {
    if rendered.objects.is_empty() && previous.is_some_and(|p| !p.objects.is_empty()) {
        return Err(Error::input(
            Problem::new("the render is empty but the release has objects")
                .because("applying it would prune every object of the release")
                .hint("use `plane down` to remove a release"),
        ));
    }
    Ok(())
}
