//! `plane up`: render → connect → read the release → deploy it (`deploy.rs`: plan and check,
//! lock, converge, record).

use super::deploy::{Deploying, deploy};
use super::plan::Planning;
use super::sandbox::render;
use super::session;
use crate::error::{Error, ExitStatus};
use crate::kube::{self, Inventory};
use crate::settings::UpSettings;
use crate::ui::Progress;

pub fn run(settings: &UpSettings, printer: &crate::ui::Printer) -> Result<ExitStatus, Error> {
    let rendered = render(&settings.render)?;
    let release = &settings.render.release;
    session::runtime()?.block_on(async {
        let profile = settings.render.profile.as_ref();
        let cluster = session::connect(&settings.cluster, profile, printer).await?;
        let planning = Planning {
            cluster: &cluster,
            rendered: &rendered,
            release,
            printer,
            purpose: kube::Purpose::Up,
        };
        let progress = printer.progress();
        let reader = if settings.deploy.dry_run {
            kube::Reader::Diff
        } else {
            kube::Reader::Up
        };
        let previous = Box::pin(session::first_wave(
            &cluster,
            &rendered,
            release,
            printer,
            reader,
            read_previous(&planning, settings, &progress),
        ))
        .await?;
        let deploying = Deploying {
            command: "up",
            settings: settings.deploy,
            profile: profile.map(|p| p.name.clone()),
            // A profile without a pin records an empty one: the record says it was read.
            pin: profile.map(|p| p.spec.cluster.clone().unwrap_or_default()),
            rollback_of: None,
        };
        Box::pin(deploy(&planning, &deploying, previous, &progress)).await
    })
}

/// The release's record, or the refusal of an empty render over it. Credentials that cannot
/// read the record lack more: the preflight then lists every denial at once, not this one.
async fn read_previous(
    planning: &Planning<'_>,
    settings: &UpSettings,
    progress: &Progress,
) -> Result<Option<Inventory>, Error> {
    let Planning {
        cluster,
        rendered,
        release,
        ..
    } = *planning;
    let previous = match session::read_previous(cluster, rendered, release).await {
        Ok(previous) => previous,
        Err(err) if err.code() == Some(403) && !settings.deploy.dry_run => {
            kube::preflight_render(cluster, rendered, None, &release.state_namespace, progress)
                .await?;
            return Err(err.into());
        }
        Err(err) => return Err(err.into()),
    };
    session::refuse_empty_render(rendered, previous.as_ref())?;
    Ok(previous)
}
