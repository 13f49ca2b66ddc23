//! `plane diff`: render, connect, plan, and show what `up` would change. Writes nothing.

use super::plan::{self, Intent, Planning};
use super::sandbox::render;
use super::session;
use crate::error::{Error, ExitStatus};
use crate::kube;
use crate::settings::DiffSettings;
use crate::ui::Printer;

pub fn run(settings: &DiffSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let rendered = render(&settings.render)?;
    let release = &settings.render.release;
    let plan = session::runtime()?.block_on(async {
        let cluster =
            session::connect(&settings.cluster, settings.render.profile.as_ref(), printer).await?;
        let previous = Box::pin(session::first_wave(
            &cluster,
            &rendered,
            release,
            printer,
            kube::Reader::Diff,
            session::read_previous(&cluster, &rendered, release),
        ))
        .await?;
        session::refuse_empty_render(&rendered, previous.as_ref())?;
        let planning = Planning {
            cluster: &cluster,
            rendered: &rendered,
            release,
            printer,
            purpose: kube::Purpose::Up,
        };
        planning
            .plan_and_check(previous.as_ref(), &Intent::Show)
            .await
    })?;
    plan::show(&plan, settings.output, printer)?;
    super::fleet::write_report(&serde_json::json!({
        "summary": plan.summary(),
        "changes": plan.has_changes(),
    }));
    Ok(if settings.exit_code && plan.has_changes() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}
