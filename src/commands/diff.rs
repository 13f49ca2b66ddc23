//! `plane diff`: render, connect, plan, and show what `up` would change. Writes nothing.

use serde_json::json;

use super::template;
use super::{cluster, owners};
use crate::cli::{DiffArgs, PlanFormat};
use crate::error::{Error, Status};
use crate::kube::{self, Action, Plan};
use crate::ui::{Printer, diff};

pub fn run(args: &DiffArgs, printer: &Printer) -> Result<Status, Error> {
    let (rendered, profile) = template::render_with_profile(&args.render)?;
    let runtime = cluster::runtime()?;
    let plan = runtime.block_on(async {
        let (_, resources) = cluster::connect(&args.cluster, profile.as_ref(), printer).await?;
        let release = args
            .render
            .release
            .clone()
            .unwrap_or_else(|| args.render.addon.clone());
        let previous = cluster::read_previous(
            &resources,
            &rendered,
            &args.render.state_namespace,
            &release,
        )
        .await
        .map_err(|e| cluster::failed(&e))?;
        cluster::refuse_empty_render(&rendered, previous.as_ref())?;
        let plan = kube::plan(&resources, &rendered.objects, &release, previous.as_ref())
            .await
            .map_err(|e| cluster::failed(&e))?;
        let ownership = owners::find(
            &resources,
            &rendered,
            &plan,
            &release,
            &args.render.state_namespace,
        )
        .await?;
        owners::show(&ownership, printer);
        owners::warn_plan(&plan, printer);
        Ok::<_, Error>(plan)
    })?;
    show(&plan, args.output, printer)?;
    Ok(if args.exit_code && plan.has_changes() {
        Status::Changes
    } else {
        Status::Success
    })
}

/// Prints a plan: diffs and a summary, or JSON.
pub fn show(plan: &Plan, format: PlanFormat, printer: &Printer) -> Result<(), Error> {
    match format {
        PlanFormat::Diff => printer.data(&diff::plan_diff(plan, printer.color_stdout())),
        PlanFormat::Json => {
            let summary = json!({
                "create": plan.count(Action::Create),
                "configure": plan.count(Action::Configure),
                "prune": plan.count(Action::Prune),
                "unchanged": plan.count(Action::Unchanged),
                "skip": plan.count(Action::Skip),
            });
            let objects: Vec<serde_json::Value> = plan
                .objects
                .iter()
                .map(|o| {
                    let mut value = serde_json::to_value(o).unwrap_or_default();
                    if o.action != Action::Unchanged {
                        value["diff"] = json!(diff::object_diff(o, false));
                    }
                    value
                })
                .collect();
            printer.data(&super::to_format(
                &json!({"summary": summary, "objects": objects}),
                false,
            )?);
        }
    }
    Ok(())
}
