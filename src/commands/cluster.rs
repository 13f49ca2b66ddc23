//! The steps diff, up and ls share: a runtime, a connection checked against the profile's pin,
//! and the plan.

use std::collections::BTreeSet;

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
        request_timeout: Some(args.request_timeout).filter(|t| !t.is_zero()),
    })
    .await
    .map_err(|err| failed(&err))?;
    check_pin(profile, &target)?;
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

/// Refuses a cluster other than the one the profile pins (context and/or server).
pub fn check_pin(profile: Option<&Profile>, target: &Target) -> Result<(), Error> {
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
    Ok(())
}

/// Reads the release's record while discovering the kinds the render uses: one round trip for
/// both. A discovery failure here is left for the plan to report, with its object.
pub async fn read_previous(
    resources: &Resources,
    rendered: &Rendered,
    state_ns: &str,
    release: &str,
) -> Result<Option<kube::Inventory>, KubeError> {
    let (previous, _) = tokio::join!(
        kube::read_inventory(resources.client(), state_ns, release),
        resources.prefetch(rendered.objects.iter().map(|o| o.id.api_version.as_str())),
    );
    previous
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

/// The resource, verbs and namespace of each permission an `up` needs, from the render and the
/// previous inventory; kinds the cluster does not serve (and the render does not install) are
/// refused here, before anything is sent.
pub async fn preflight_up(
    resources: &Resources,
    rendered: &Rendered,
    previous: Option<&kube::Inventory>,
    state_ns: &str,
    reporter: &dyn kube::Reporter,
) -> Result<(), Error> {
    let mut needs = state_needs(state_ns);
    let mut missing = Vec::new();
    for object in &rendered.objects {
        let id = &object.id;
        let Some(resolved) = kube::resolve(resources, &id.api_version, &id.kind, &rendered.objects)
            .await
            .map_err(|e| failed(&e))?
        else {
            missing.push(format!("{} in {} (for {id})", id.kind, id.api_version));
            continue;
        };
        let namespace = if resolved.namespaced {
            id.namespace.clone()
        } else {
            None
        };
        let existed = previous.is_some_and(|p| {
            p.objects
                .iter()
                .any(|o| o.same(&id.api_version, &id.kind, id.namespace.as_deref(), &id.name))
        });
        let mut verbs = vec!["list", "patch"];
        if !existed {
            verbs.push("create");
        }
        if kube::readiness::has_rule(&id.kind) {
            verbs.push("watch");
        }
        if kube::readiness::pod_selector(&object.value).is_some() {
            insert_needs(&mut needs, "", "pods", namespace.as_ref(), &["watch"]);
        }
        insert_needs(
            &mut needs,
            &resolved.group,
            &resolved.plural,
            namespace.as_ref(),
            &verbs,
        );
    }
    if !missing.is_empty() {
        return Err(failed(&KubeError::MissingKinds { missing }));
    }
    for old in previous.map(|p| p.objects.as_slice()).unwrap_or_default() {
        let rendered_now = rendered.objects.iter().any(|o| {
            old.same(
                &o.id.api_version,
                &o.id.kind,
                o.id.namespace.as_deref(),
                &o.id.name,
            )
        });
        if rendered_now {
            continue;
        }
        if let Some(resolved) = kube::resolve(resources, &old.api_version, &old.kind, &[])
            .await
            .map_err(|e| failed(&e))?
        {
            let namespace = old.namespace.clone().filter(|_| resolved.namespaced);
            insert_needs(
                &mut needs,
                &resolved.group,
                &resolved.plural,
                namespace.as_ref(),
                &["list", "delete"],
            );
        }
    }
    kube::check_access(&resources_client(resources), needs)
        .await
        .map_err(|e| failed(&e))?;
    kube::warn_ingress_classes(resources, &rendered.objects, reporter)
        .await
        .map_err(|e| failed(&e))
}

/// The permissions the writes of a plan need, and none for what it leaves alone: create and
/// patch what it creates, patch what it changes, list and delete what it prunes, list and watch
/// what `up` will wait for, and the release's record and lock. The plan's own reads and dry-runs
/// have shown the rest; when they were refused, [`preflight_up`] lists every denial instead.
pub async fn preflight_plan(
    resources: &Resources,
    rendered: &Rendered,
    plan: &kube::Plan,
    state_ns: &str,
    reporter: &dyn kube::Reporter,
) -> Result<(), Error> {
    let mut needs = state_needs(state_ns);
    for object in &plan.objects {
        let waited = object.needs_wait();
        let mut verbs = match object.action {
            kube::Action::Create => vec!["create", "patch"],
            kube::Action::Configure => vec!["patch"],
            kube::Action::Prune | kube::Action::Delete => vec!["list", "delete"],
            kube::Action::Unchanged | kube::Action::Skip => Vec::new(),
        };
        if waited && kube::readiness::has_rule(&object.kind) {
            verbs.extend(["list", "watch"]);
        }
        let pods = waited
            && object
                .desired
                .as_ref()
                .and_then(kube::readiness::pod_selector)
                .is_some();
        if verbs.is_empty() && !pods {
            continue;
        }
        // The plan has refused every kind the cluster does not serve and the render does not
        // install.
        let Some(resolved) = kube::resolve(
            resources,
            &object.api_version,
            &object.kind,
            &rendered.objects,
        )
        .await
        .map_err(|e| failed(&e))?
        else {
            continue;
        };
        let namespace = object.namespace.clone().filter(|_| resolved.namespaced);
        if pods {
            insert_needs(
                &mut needs,
                "",
                "pods",
                namespace.as_ref(),
                &["list", "watch"],
            );
        }
        insert_needs(
            &mut needs,
            &resolved.group,
            &resolved.plural,
            namespace.as_ref(),
            &verbs,
        );
    }
    let (access, classes) = tokio::join!(
        kube::check_access(resources.client(), needs),
        kube::warn_ingress_classes(resources, &rendered.objects, reporter),
    );
    access.map_err(|e| failed(&e))?;
    classes.map_err(|e| failed(&e))
}

/// Adds the permission for each verb on a resource in a namespace (or cluster-wide).
fn insert_needs(
    needs: &mut BTreeSet<kube::Need>,
    group: &str,
    resource: &str,
    namespace: Option<&String>,
    verbs: &[&'static str],
) {
    for verb in verbs {
        needs.insert(kube::Need {
            verb,
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespace: namespace.cloned(),
        });
    }
}

/// What every `up` and `down` needs in the state namespace: the inventory Secret and the lock.
pub fn state_needs(state_ns: &str) -> BTreeSet<kube::Need> {
    let mut needs = BTreeSet::new();
    let namespace = state_ns.to_owned();
    insert_needs(
        &mut needs,
        "",
        "secrets",
        Some(&namespace),
        &["get", "patch", "create"],
    );
    insert_needs(
        &mut needs,
        "coordination.k8s.io",
        "leases",
        Some(&namespace),
        &["get", "create", "update", "delete"],
    );
    needs
}

fn resources_client(resources: &Resources) -> kube::Client {
    resources.client().clone()
}

/// What can stop work under the release lock: Ctrl-C, listened for from the moment the lock is
/// held (so the signal is noticed and handled rather than ending the process with the Lease
/// still held; a second one ends it at once), and the loss of the lock.
pub struct Guard {
    interrupted: kube::Flag,
    lost: kube::Flag,
}

impl Guard {
    /// Starts listening for Ctrl-C. Call it once the lock is held: before that (say while waiting
    /// for the lock) Ctrl-C should end the process at once, as usual.
    pub fn new(lock: &kube::Lock) -> Self {
        let (setter, interrupted) = kube::flag();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                setter.set();
                // A second Ctrl-C does not wait for the phase to be recorded.
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        Self {
            interrupted,
            lost: lock.loss(),
        }
    }

    /// Refuses to go on if Ctrl-C came before the first write: nothing to record then.
    pub fn check(&self, command: &str) -> Result<(), Error> {
        if self.interrupted.is_set() {
            return Err(Error::Interrupted {
                problem: Problem::new(format!("interrupted: {command} stopped before any write"))
                    .because("nothing was changed")
                    .hint("run the same command again"),
            });
        }
        Ok(())
    }

    /// Runs `work` unless Ctrl-C comes first or the lock is lost; then the work is dropped, so
    /// no new write starts, and the caller records (or, for a lost lock, leaves alone) the
    /// release's phase.
    pub async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, KubeError>>,
    ) -> Result<Result<T, KubeError>, Stopped> {
        tokio::select! {
            biased;
            // If no Ctrl-C handler could be installed, the flag is never set and Ctrl-C ends
            // the process as usual.
            () = self.interrupted.wait() => Err(Stopped::Interrupted),
            () = self.lost.wait() => Err(Stopped::LockLost),
            result = work => Ok(result),
        }
    }
}

/// Why work under the lock stopped before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Ctrl-C.
    Interrupted,
    /// The lock went to another run (or expired); the release is no longer this run's to write.
    LockLost,
}

/// The error for a run Ctrl-C stopped once it had started writing (exit 130).
pub fn interrupted(what: &str) -> Error {
    Error::Interrupted {
        problem: Problem::new(format!("interrupted: {what}"))
            .because("no new writes were started; the release's phase was recorded")
            .hint("run the same command again to converge"),
    }
}

/// The error for a run that lost its lock: the release and its record are another run's now.
pub fn lock_lost(release: &str) -> Error {
    failed(&KubeError::LockLost {
        release: release.to_owned(),
    })
}
