//! The plan and every check before a write, in one place for `diff`, `up --dry-run`, `up` and
//! `up`'s new plan after a lock wait; and how a plan is shown.

use serde_json::json;

use super::ownership;
use super::session::{self, Deletion};
use crate::bundle::Rendered;
use crate::cli::PlanFormat;
use crate::error::Error;
use crate::kube::{self, Action, Cluster, Inventory, Plan};
use crate::settings::ReleaseSettings;
use crate::ui::{Printer, Progress, diff, to_format};

/// A release's render on a cluster, and where its checks report.
pub struct Planning<'a> {
    pub cluster: &'a Cluster,
    pub rendered: &'a Rendered,
    pub release: &'a ReleaseSettings,
    pub printer: &'a Printer,
    /// An `up` of the render, or a rollback to a kept revision.
    pub purpose: kube::Purpose,
}

/// What the plan is for.
pub enum Intent<'a> {
    /// To be shown (`diff`, `up --dry-run`): ownership is told, nothing is refused.
    Show,
    /// To be applied: its writes must be allowed, other owners' objects taken only when asked,
    /// prunes confirmed. `headline` opens the summary line.
    Apply {
        headline: &'a str,
        take_ownership: bool,
        yes: bool,
        progress: &'a Progress,
    },
}

impl Planning<'_> {
    /// The plan against `previous`, with every check its intent calls for.
    ///
    /// To apply: the permission preflight (with the IngressClass warning), the ownership step,
    /// the warnings of changes that will not take effect as expected, and the prune
    /// confirmation; when the plan itself is refused, every permission the run would lack is
    /// listed instead of the first refusal alone.
    ///
    /// # Errors
    /// The plan's failures, and every refusal of a check.
    pub async fn plan_and_check(
        &self,
        previous: Option<&Inventory>,
        intent: &Intent<'_>,
    ) -> Result<Plan, Error> {
        let Self {
            cluster,
            rendered,
            release,
            printer,
            purpose,
        } = *self;
        let id = release.id();
        let planned = kube::plan(
            cluster,
            &rendered.objects,
            &rendered.declared,
            &id,
            previous,
            purpose,
        )
        .await;
        let Intent::Apply {
            headline,
            take_ownership,
            yes,
            progress,
        } = *intent
        else {
            let plan = planned?;
            let ownership = kube::find_ownership(cluster, rendered, &plan, &id).await?;
            ownership::show(&ownership, printer);
            warn_changes(&plan, printer);
            return Ok(plan);
        };
        let plan = match planned {
            Ok(plan) => plan,
            Err(err) => {
                // A refused read or dry-run, or a kind the cluster lacks: say everything the
                // run would lack, all at once, rather than the first refusal alone.
                kube::preflight_render(
                    cluster,
                    rendered,
                    previous,
                    &release.state_namespace,
                    progress,
                )
                .await?;
                return Err(err.into());
            }
        };
        // Both only read: one round trip for the two.
        let (checked, found) = tokio::join!(
            kube::preflight_plan(cluster, rendered, &plan, &release.state_namespace, progress),
            kube::find_ownership(cluster, rendered, &plan, &id),
        );
        checked?;
        printer.status(&format!("{headline}: {}", plan.summary()));
        warn_changes(&plan, printer);
        let found = found?;
        ownership::refuse(&found, rendered, take_ownership)?;
        ownership::show_adoptions(&found, printer);
        confirm_prune(&plan, yes, printer)?;
        Ok(plan)
    }
}

/// Warns about planned changes that will not take effect as the user may expect.
fn warn_changes(plan: &Plan, printer: &Printer) {
    for object in &plan.objects {
        if let Some(warning) = &object.warning {
            printer.warn(&format!("{}: {warning}", object.subject));
        }
    }
}

/// Prunes are deletions: ask first on a terminal, refuse without one unless --yes.
fn confirm_prune(plan: &Plan, yes: bool, printer: &Printer) -> Result<(), Error> {
    let prunes: Vec<&str> = plan
        .objects
        .iter()
        .filter(|o| o.action == Action::Prune)
        .map(|o| o.subject.as_str())
        .collect();
    if prunes.is_empty() || yes {
        return Ok(());
    }
    for subject in &prunes {
        printer.status(&format!("  prune {subject}"));
    }
    session::confirm(
        &Deletion {
            question: format!("Delete these {} object(s)?", prunes.len()),
            without_terminal: format!("the plan prunes {} object(s)", prunes.len()),
            hint: "review them with `plane diff`, then pass --yes".to_owned(),
            declined: "nothing was changed: pruning was not confirmed",
        },
        false,
        printer,
    )
}

/// Prints a plan: diffs and a summary, or JSON.
///
/// # Errors
/// When the JSON cannot be written.
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
            printer.data(&to_format(
                &json!({"summary": summary, "objects": objects}),
                false,
            )?);
        }
    }
    Ok(())
}
