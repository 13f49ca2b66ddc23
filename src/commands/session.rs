//! What every cluster command starts with: a runtime, a connection checked against the
//! profile's pin, the release's record, and the one question plane asks before deleting.

use std::collections::BTreeSet;

use crate::bundle::profile::ClusterPin;
use crate::bundle::{Profile, Rendered};
use crate::cli::STATE_NAMESPACE;
use crate::error::{Error, Problem};
use crate::kube::{self, Cluster, ConnectOptions, Inventory, KubeError, Platform};
use crate::settings::ReleaseSettings;
use crate::ui::Printer;

/// A tokio runtime for cluster commands (template never builds one).
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| Error::failed("cannot start the async runtime", &err))
}

/// Connects, refuses a cluster other than the one the profile pins, and says where it is going.
pub async fn connect(
    options: &ConnectOptions,
    profile: Option<&Profile>,
    printer: &Printer,
) -> Result<Cluster, Error> {
    let cluster = kube::connect(options).await?;
    check_pin(profile, &cluster).await?;
    printer.status(&format!(
        "target: context {} ({})",
        if cluster.context.is_empty() {
            "-"
        } else {
            &cluster.context
        },
        cluster.server
    ));
    Ok(cluster)
}

/// Refuses a cluster other than the one the profile pins (context, server, identity).
pub async fn check_pin(profile: Option<&Profile>, cluster: &Cluster) -> Result<(), Error> {
    let Some((profile, pin)) = profile.and_then(|p| p.spec.cluster.as_ref().map(|c| (p, c))) else {
        return Ok(());
    };
    refuse_other_cluster(
        pin,
        &format!("profile {}", profile.name),
        PinFrom::Profile(&profile.path),
        cluster,
    )
    .await
}

/// Refuses a cluster other than the one a release's profile pinned: the pin its record keeps,
/// or, in a record of a plane that did not keep it, the pin of the profile it names (which must
/// then be readable: a pin that cannot be checked is a refusal, not a skipped check). Returns
/// the pin, for the next record.
pub async fn check_recorded_pin(
    inventory: &Inventory,
    sources: &crate::bundle::Sources,
    cluster: &Cluster,
) -> Result<Option<ClusterPin>, Error> {
    if let Some(pin) = &inventory.pin {
        let whose = match &inventory.profile {
            Some(name) => format!("profile {name} of release {}", inventory.release),
            None => format!("release {}", inventory.release),
        };
        refuse_other_cluster(pin, &whose, PinFrom::Record, cluster).await?;
        return Ok(Some(pin.clone()));
    }
    let Some(name) = &inventory.profile else {
        return Ok(None);
    };
    let profile = crate::bundle::profile::load(&sources.profiles, name).map_err(|problem| {
        Error::input(
            Problem::new(format!(
                "cannot check which cluster release {} may touch: its profile {name} cannot be read",
                inventory.release
            ))
            .because(problem.to_string())
            .hint(format!(
                "its record predates plane keeping the pin; run `plane up` with profile {name} \
                 once on this cluster, which records it, then run again"
            )),
        )
    })?;
    check_pin(Some(&profile), cluster).await?;
    Ok(Some(profile.spec.cluster.unwrap_or_default()))
}

/// Where a pin was read: a profile (`up`, `diff`), or a release's record (`down`, `rollback`).
#[derive(Clone, Copy)]
enum PinFrom<'a> {
    Profile(&'a str),
    Record,
}

/// Refuses a cluster other than `pin`'s: its context, its server, and (one GET) the UID of its
/// `kube-system` Namespace.
async fn refuse_other_cluster(
    pin: &ClusterPin,
    whose: &str,
    from: PinFrom<'_>,
    cluster: &Cluster,
) -> Result<(), Error> {
    let mut wrong = Vec::new();
    if let Some(context) = &pin.context
        && context != &cluster.context
    {
        wrong.push(format!(
            "context `{}` is not the pinned context `{context}`",
            cluster.context
        ));
    }
    if let Some(server) = &pin.server
        && server.trim_end_matches('/') != cluster.server
    {
        wrong.push(format!(
            "server {} is not the pinned server {server}",
            cluster.server
        ));
    }
    if let Some(uid) = &pin.uid
        && wrong.is_empty()
    {
        let found = cluster.identity().await?;
        if &found != uid {
            wrong.push(format!(
                "its kube-system Namespace has uid {found}, not the pinned uid {uid}: another \
                 cluster answers at this address"
            ));
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let (at, hint) = match from {
        PinFrom::Profile(path) => (
            path,
            "pass --context for the pinned cluster, or use another profile",
        ),
        PinFrom::Record => (
            "its release record",
            "pass --context for the cluster the release was installed on",
        ),
    };
    let mut problem = Problem::new(format!("{whose} may not touch this cluster")).at(at);
    for why in wrong {
        problem = problem.because(why);
    }
    Err(Error::input(problem.hint(hint)))
}

/// Reads the release's record while discovering the kinds the render uses: one round trip for
/// both. A discovery failure here is left for the plan to report, with its object.
pub async fn read_previous(
    cluster: &Cluster,
    rendered: &Rendered,
    release: &ReleaseSettings,
) -> Result<Option<Inventory>, KubeError> {
    let (previous, _) = tokio::join!(
        kube::read_inventory(cluster.client(), &release.state_namespace, &release.name),
        cluster.prefetch(rendered.objects.iter().map(|o| o.id.api_version.as_str())),
    );
    previous
}

/// The release's record; a release that is not installed is an error that says where it was
/// looked for, and a platform's record named as a team instance's (`-n` where a platform keeps
/// its records) is refused: the command would act on the platform.
pub async fn read_release(
    cluster: &Cluster,
    release: &ReleaseSettings,
    printer: &Printer,
) -> Result<Inventory, Error> {
    if release.team {
        // Where a platform lives there is no team instance to act on: the same refusal as `up`.
        kube::check_team_namespace(
            cluster.client(),
            &release.id(),
            &release.name,
            STATE_NAMESPACE,
            &printer.progress(),
        )
        .await?;
    }
    read_record(cluster, release).await
}

/// The release's record as [`read_release`] reads it, without its look at the tiers: to read
/// it again under the lock.
pub async fn read_record(cluster: &Cluster, release: &ReleaseSettings) -> Result<Inventory, Error> {
    let Some(inventory) =
        kube::read_inventory(cluster.client(), &release.state_namespace, &release.name).await?
    else {
        refuse_engine_release(cluster, release, "plane").await?;
        return Err(Error::Failed {
            problem: Problem::new(format!("release {} not found", release.name))
                .at(format!("namespace {}", release.state_namespace))
                .hint("list releases with `plane ls -A`; pass -n for a team instance"),
        });
    };
    if release.team && inventory.instance.is_none() {
        return Err(Error::input(
            Problem::new(format!(
                "namespace {} holds the record of platform release {}, not of a team instance; \
                 nothing was changed",
                release.state_namespace, release.name
            ))
            .at(format!("-n {}", release.state_namespace))
            .because("-n names a team instance's namespace; this one is a platform's state namespace")
            .hint("leave -n out to act on the platform release (with --state-namespace if it has another)"),
        ));
    }
    Ok(inventory)
}

/// Refuses to act on a release an engine runs (`template --for`): its record is the engine's,
/// and plane only reads it. Credentials that may not list the engines' records find none.
///
/// # Errors
/// The refusal, naming the engine and where to change the release.
pub async fn refuse_engine_release(
    cluster: &Cluster,
    release: &ReleaseSettings,
    command: &str,
) -> Result<(), Error> {
    let found =
        kube::list_engine_releases(cluster.client(), Some(&release.state_namespace)).await?;
    let Some(run) = found
        .iter()
        .find(|r| r.name == release.name)
        .and_then(|r| r.engine.as_ref())
    else {
        return Ok(());
    };
    let owner = run
        .owner
        .clone()
        .unwrap_or_else(|| format!("{}, applied by hand", run.engine));
    Err(Error::Failed {
        problem: Problem::new(format!(
            "release {} is run by {owner}; {command} changed nothing",
            release.name
        ))
        .at(run.record.clone())
        .because(format!(
            "it was rendered with `plane template --for {}`, and its engine keeps applying it",
            run.engine
        ))
        .hint("change or remove it through the engine's source (its app file, Git or artifact)"),
    })
}

/// Takes the release's lock (its Lease in the state namespace), waiting for another run's as
/// long as `wait` allows.
pub async fn lock(
    cluster: &Cluster,
    release: &ReleaseSettings,
    wait: Option<std::time::Duration>,
    reporter: &dyn kube::Reporter,
) -> Result<kube::Lock, Error> {
    // What was read ahead describes the cluster before this run writes: nothing after the
    // lock may take it.
    cluster.forget_ahead();
    let client = cluster.client();
    Ok(kube::Lock::acquire(
        client,
        &release.state_namespace,
        &release.name,
        wait,
        reporter,
    )
    .await?)
}

/// Refuses an empty render over a release that has objects: that would prune everything.
pub fn refuse_empty_render(rendered: &Rendered, previous: Option<&Inventory>) -> Result<(), Error> {
    if rendered.objects.is_empty() && previous.is_some_and(|p| !p.objects.is_empty()) {
        return Err(Error::input(
            Problem::new("the render is empty but the release has objects")
                .because("applying it would prune every object of the release")
                .hint("use `plane down` to remove a release"),
        ));
    }
    Ok(())
}

/// The first wave of `up` and `diff`: the tiers' check, the release's record (`previous`) and
/// everything the plan and its checks will read for `reader`, all at once.
///
/// # Errors
/// The tiers' check refusing, else `previous`'s error.
pub async fn first_wave<T, E: Into<Error>>(
    cluster: &Cluster,
    rendered: &Rendered,
    release: &ReleaseSettings,
    printer: &Printer,
    reader: kube::Reader,
    previous: impl Future<Output = Result<T, E>>,
) -> Result<T, Error> {
    let id = release.id();
    let (tier, previous, ()) = futures::join!(
        check_tier(cluster, rendered, release, printer),
        previous,
        kube::read_ahead(cluster, rendered, &id, &release.state_namespace, reader),
    );
    tier?;
    previous.map_err(Into::into)
}

/// Tiers never overlap, and a team instance has its platform. For a team instance (`-n`): its
/// namespace holds nothing of a platform release, exists, and the platform serves its kinds and
/// runs an operator that watches it. For a platform: no namespace it renders into (or keeps its
/// record in) holds a team instance's record. Nothing is written either way.
pub async fn check_tier(
    cluster: &Cluster,
    rendered: &Rendered,
    release: &ReleaseSettings,
    printer: &Printer,
) -> Result<(), Error> {
    let progress = printer.progress();
    let Some(namespace) = &rendered.instance else {
        let mut namespaces: BTreeSet<String> = rendered
            .objects
            .iter()
            .filter_map(|o| match (&o.id.namespace, o.id.kind.as_str()) {
                (Some(namespace), _) => Some(namespace.clone()),
                (None, "Namespace") => Some(o.id.name.clone()),
                (None, _) => None,
            })
            .collect();
        namespaces.insert(release.state_namespace.clone());
        kube::check_platform_namespaces(cluster.client(), &release.id(), &namespaces, &progress)
            .await?;
        return Ok(());
    };
    kube::check_team_namespace(
        cluster.client(),
        &release.id(),
        &rendered.addon,
        STATE_NAMESPACE,
        &progress,
    )
    .await?;
    // The platform's operator: how the components a team instance leaves to it are found.
    let operator = rendered.platform_operator();
    let platform = Platform {
        addon: &rendered.addon,
        requires: &rendered.requires,
        operator: &operator,
    };
    kube::check_team_instance(cluster, namespace, &platform, &progress).await?;
    Ok(())
}

/// A deletion to confirm: the question on a terminal, and what to say without one.
pub struct Deletion<'a> {
    /// `Delete these 3 object(s)?`
    pub question: String,
    /// Why it cannot ask: `the plan prunes 3 object(s)`.
    pub without_terminal: String,
    /// What to do instead of answering.
    pub hint: String,
    /// What a "no" means: `nothing was changed: pruning was not confirmed`.
    pub declined: &'a str,
}

/// Asks before a deletion; `--yes` skips the question, and without a terminal it is refused
/// with a hint rather than left hanging.
pub fn confirm(deletion: &Deletion<'_>, yes: bool, printer: &Printer) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !printer.interactive() {
        return Err(Error::Failed {
            problem: Problem::new(format!(
                "{} and there is no terminal to ask",
                deletion.without_terminal
            ))
            .hint(deletion.hint.clone()),
        });
    }
    if printer.confirm(&deletion.question) {
        Ok(())
    } else {
        Err(Error::Failed {
            problem: Problem::new(deletion.declined),
        })
    }
}
