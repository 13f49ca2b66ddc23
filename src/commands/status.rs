//! `plane status`: releases and where their parts are, what their bundles' status views list
//! across the cluster by state with what it requests, and usage from the releases' Prometheus;
//! what cannot be read is named, the rest shown.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::session;
use crate::bundle::Declared;
use crate::bundle::declared::StatusView;
use crate::cli::TableFormat;
use crate::error::{Error, ExitStatus, Problem, did_you_mean};
use crate::kube::{
    self, Cluster, Gap, Listed, PrometheusService, Release, ReleaseParts, UsageByObject,
    ViewSummary,
};
use crate::settings::StatusSettings;
use crate::ui::releases::release_value;
use crate::ui::status::{ReleaseStatus, Report, Usage, ViewReport};
use crate::ui::to_format;
use crate::ui::{Printer, status::gap_line};

pub fn run(settings: &StatusSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let report = session::runtime()?.block_on(gather(settings, printer))?;
    let text = match settings.output {
        TableFormat::Table => crate::ui::status::tables(&report, &settings.state_namespace),
        TableFormat::Json => to_format(&to_json(&report), false)?,
        TableFormat::Yaml => to_format(&to_json(&report), true)?,
    };
    printer.data(&text);
    for gap in &report.missing {
        printer.warn(&gap.reason);
    }
    if let Some(Usage::Missing(why)) = &report.usage {
        printer.warn(&format!("usage unavailable: {why}"));
    }
    for gap in &report.errors {
        printer.warn(&gap_line(gap));
    }
    outcome(&report)
}

async fn gather(settings: &StatusSettings, printer: &Printer) -> Result<Report, Error> {
    let cluster = session::connect(&settings.cluster, None, printer).await?;
    let state_ns = &settings.state_namespace;
    let releases = releases_shown(&cluster, state_ns, settings.with_teams).await;
    let mut errors = Vec::new();
    let mut missing = Vec::new();
    let releases = match releases {
        Ok(all) => Some(select(all, settings.release.as_deref(), state_ns)?),
        Err(err) => {
            errors.push(Gap::new(
                &format!("secrets in {state_ns}"),
                &err,
                &format!(
                    "ask a cluster admin for `list` on secrets in the namespace {state_ns}, \
                     where plane keeps its release records"
                ),
            ));
            None
        }
    };
    // Each view once, however many releases of its bundle are shown; what the bundles plane
    // ships would show when the records cannot be read.
    let views = match &releases {
        Some(releases) => views_of(releases),
        None => shipped_views(None),
    };
    let (statuses, listed) = futures::join!(
        release_statuses(&cluster, releases.as_deref()),
        futures::future::join_all(
            views
                .iter()
                .map(|(declared, view)| kube::list_view(&cluster, declared, view)),
        ),
    );
    let statuses = statuses.map(|(found, gaps)| {
        errors.extend(gaps);
        found
    });
    let mut reports = Vec::new();
    for ((declared, view), objects) in views.iter().zip(&listed) {
        for listed in objects.kinds.iter().chain(&objects.pods) {
            match listed {
                Listed::Objects(_) => {}
                Listed::NotServed(gap) => missing.push(gap.clone()),
                Listed::Unreadable(gap) => errors.push(gap.clone()),
            }
        }
        reports.push(ViewReport {
            summary: kube::summarize(view, declared, objects),
            usage: None,
        });
    }
    let usage = usage(
        &cluster,
        statuses.as_deref(),
        &mut reports,
        settings.release.as_deref(),
        !settings.with_teams,
    )
    .await;
    Ok(Report {
        releases: statuses,
        views: reports,
        usage,
        missing,
        errors,
    })
}

/// The status views of the releases' bundles, each once (by name), in the releases' order. A
/// record written by a plane that did not record its bundle's declarations reads them from the
/// bundle of that name plane ships, if any.
fn views_of(releases: &[Release]) -> Vec<(Declared, StatusView)> {
    let mut seen = BTreeSet::new();
    let mut views = Vec::new();
    for release in releases {
        let declared = &release.inventory.declared;
        let found = if declared.is_empty() {
            shipped_views(Some(&release.inventory.addon))
        } else {
            declared
                .status
                .iter()
                .map(|view| (declared.clone(), view.clone()))
                .collect()
        };
        for (declared, view) in found {
            if seen.insert(view.name.clone()) {
                views.push((declared, view));
            }
        }
    }
    views
}

/// The status views of the bundles plane ships (only `addon`'s, when named).
fn shipped_views(addon: Option<&str>) -> Vec<(Declared, StatusView)> {
    let sources = crate::bundle::Sources::embedded();
    crate::bundle::names(&sources)
        .into_iter()
        .filter(|name| addon.is_none_or(|a| a == name))
        .filter_map(|name| {
            let file = format!("{name}/addon.yaml");
            let text = sources.addons.read(&file).ok()??;
            let declared = crate::bundle::AddonManifest::parse(&text, &file)
                .ok()?
                .declared();
            let view = declared.status.clone()?;
            Some((declared, view))
        })
        .collect()
}

/// Releases whose objects are read at once when they cannot all be read together.
const RELEASES_IN_FLIGHT: usize = 4;

/// Each release's health and parts, from one wave of LISTs. Several releases (the platform and
/// its teams): one LIST per kind across namespaces for all of them, the same round trips for one
/// team or a hundred. One release, or credentials that may not list across namespaces: one LIST
/// per kind and namespace the records name.
async fn release_statuses(
    cluster: &Cluster,
    releases: Option<&[Release]>,
) -> Option<(Vec<ReleaseStatus>, Vec<Gap>)> {
    let releases = releases?;
    let wide = if releases.len() > 1 {
        kube::LiveObjects::read(cluster, releases).await.ok()
    } else {
        None
    };
    let live = match wide {
        Some(live) => Ok(live),
        None => kube::LiveObjects::read_in_namespaces(cluster, releases).await,
    };
    // What cannot be read for all at once is read release by release: one release's objects
    // the credentials may not read leave a gap for it alone.
    let each: Vec<Result<kube::LiveObjects, kube::KubeError>> = match &live {
        Err(_) if releases.len() > 1 => {
            use futures::StreamExt as _;
            // A few releases at a time: each reads its kinds and namespaces at once.
            futures::stream::iter(releases)
                .map(|release| {
                    kube::LiveObjects::read_in_namespaces(cluster, std::slice::from_ref(release))
                })
                .buffered(RELEASES_IN_FLIGHT)
                .collect()
                .await
        }
        _ => Vec::new(),
    };
    let mut found = Vec::new();
    let mut gaps = Vec::new();
    for (i, release) in releases.iter().enumerate() {
        let read = each.get(i).unwrap_or(&live);
        let (row, objects) = match read {
            Ok(live) => (
                release_value(release, Some(&live.health(release))),
                live.of(release).cloned().collect::<Vec<Value>>(),
            ),
            Err(err) => {
                gaps.push(Gap::new(
                    &format!(
                        "the health of release {} (namespace {})",
                        release.name, release.namespace
                    ),
                    err,
                    "ask a cluster admin for `list` (or `get`) on the release's objects",
                ));
                (release_value(release, None), Vec::new())
            }
        };
        found.push(ReleaseStatus {
            row,
            parts: kube::find_parts(&objects, declared_parts(release)),
            view: view_name(release),
        });
    }
    Some((found, gaps))
}

fn view_name(release: &Release) -> Option<String> {
    let view = release.inventory.declared.status.as_ref()?;
    Some(view.name.clone())
}

fn declared_parts(release: &Release) -> &[crate::bundle::declared::view::Part] {
    release
        .inventory
        .declared
        .status
        .as_ref()
        .map_or(&[], |view| view.parts.as_slice())
}

/// The releases of the state namespace, and in the platform's view every team instance too (one
/// LIST across namespaces; credentials that may not make it see the state namespace's alone).
async fn releases_shown(
    cluster: &Cluster,
    state_ns: &str,
    with_teams: bool,
) -> Result<Vec<Release>, kube::KubeError> {
    // The releases engines run (every one in the platform's view, the team's own in its view),
    // read in the same wave as the records.
    let (all, engines) = futures::join!(
        async {
            if with_teams {
                Some(kube::list_releases(cluster.client(), None).await)
            } else {
                None
            }
        },
        kube::list_engine_releases(cluster.client(), (!with_teams).then_some(state_ns)),
    );
    let mut shown = None;
    if let Some(all) = all {
        match all {
            Ok(all) => {
                shown = Some(
                    all.into_iter()
                        .filter(|r| r.namespace == state_ns || r.inventory.instance.is_some())
                        .collect::<Vec<_>>(),
                );
            }
            Err(err) if err.code() == Some(403) => {}
            Err(err) => return Err(err),
        }
    }
    let mut releases = match shown {
        Some(releases) => releases,
        None => kube::list_releases(cluster.client(), Some(state_ns)).await?,
    };
    releases.extend(engines?);
    Ok(releases)
}

/// The named release, or all; a name the cluster does not have is an error.
fn select(all: Vec<Release>, name: Option<&str>, state_ns: &str) -> Result<Vec<Release>, Error> {
    let Some(name) = name else { return Ok(all) };
    if all.iter().any(|r| r.name == name) {
        return Ok(all.into_iter().filter(|r| r.name == name).collect());
    }
    let hint = did_you_mean(name, all.iter().map(|r| r.name.as_str()))
        .unwrap_or_else(|| "see the releases with `plane ls`, or leave the name out".to_owned());
    Err(Error::Failed {
        problem: Problem::new(format!("release {name} not found"))
            .at(format!("Namespace/{state_ns}"))
            .because(format!(
                "no release record plane-release-{name} in the namespace {state_ns}"
            ))
            .hint(hint),
    })
}

/// Usage for each view that declares its queries, from the Prometheus part of the shown releases
/// of its bundle, merged; or why there is none. `None` when no view declares usage. A team's
/// view (`-n`) reads the Prometheus of the platform releases, which scrapes the team's pods.
async fn usage(
    cluster: &Cluster,
    releases: Option<&[ReleaseStatus]>,
    views: &mut [ViewReport],
    named: Option<&str>,
    team_view: bool,
) -> Option<Usage> {
    if views.iter().all(|v| v.summary.view.usage.is_none()) {
        return None;
    }
    let Some(releases) = releases else {
        return Some(Usage::Missing(
            "the release records could not be read, so their Prometheus is unknown".into(),
        ));
    };
    let mut from = Vec::new();
    let mut first_error = None;
    let mut no_service = None;
    for view in views.iter_mut() {
        let Some(declared) = view.summary.view.usage.clone() else {
            continue;
        };
        let mut services: Vec<PrometheusService> = releases
            .iter()
            .filter(|r| r.view_name() == Some(view.summary.view.name.as_str()))
            .filter_map(|r| r.parts.prometheus_service(&declared.part))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if services.is_empty() && team_view {
            match platform_prometheus(cluster, &view.summary.view).await {
                Ok(found) => services = found,
                Err(why) => {
                    first_error.get_or_insert(why);
                    continue;
                }
            }
        }
        if services.is_empty() {
            no_service.get_or_insert(match (named, releases.is_empty()) {
                (_, true) => "no plane release on the cluster has a Prometheus".to_owned(),
                (Some(name), false) => {
                    format!("release {name} has no Prometheus Service (its observability is off)")
                }
                (None, false) => {
                    "no release has a Prometheus Service (observability is off)".into()
                }
            });
            continue;
        }
        let answers = futures::future::join_all(
            services
                .iter()
                .map(|s| kube::usage(cluster.client(), s, &declared)),
        )
        .await;
        let mut by_object = UsageByObject::new();
        let mut answered = false;
        for (service, answer) in services.iter().zip(answers) {
            match answer {
                Ok(usage) => {
                    answered = true;
                    from.push(service.subject());
                    for (key, value) in usage {
                        by_object.entry(key).or_insert(value);
                    }
                }
                Err(why) => {
                    first_error.get_or_insert(why);
                }
            }
        }
        if answered {
            view.usage = Some(by_object);
        }
    }
    Some(match (first_error, no_service) {
        _ if !from.is_empty() => Usage::Available { from },
        (Some(why), _) | (None, Some(why)) => Usage::Missing(why),
        (None, None) => Usage::Missing("no Prometheus answered".into()),
    })
}

/// The Prometheus Services of the platform releases of `view`'s bundle (every record, one LIST);
/// why not, when the records may not be listed.
async fn platform_prometheus(
    cluster: &Cluster,
    view: &StatusView,
) -> Result<Vec<PrometheusService>, String> {
    let Some(part) = view.prometheus_part() else {
        return Ok(Vec::new());
    };
    let releases = kube::list_releases(cluster.client(), None)
        .await
        .map_err(|err| {
            format!(
                "the platform's Prometheus is unknown: {}",
                err.to_problem().causes.join(": ")
            )
        })?;
    let platforms: Vec<&Release> = releases
        .iter()
        .filter(|r| r.inventory.instance.is_none())
        .filter(|r| {
            r.inventory
                .declared
                .status
                .as_ref()
                .is_some_and(|v| v.name == view.name)
        })
        .collect();
    let parts: Vec<(ReleaseParts, Vec<Gap>)> = futures::future::join_all(
        platforms
            .iter()
            .map(|r| kube::release_parts(cluster, &r.inventory)),
    )
    .await;
    Ok(parts
        .into_iter()
        .filter_map(|(parts, _)| parts.prometheus_service(part))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

/// Exit 1 when something could not be read (an API error, like `kubectl get` over several kinds:
/// the rest is printed first); absent kinds and missing usage are not failures.
fn outcome(report: &Report) -> Result<ExitStatus, Error> {
    if report.errors.is_empty() {
        return Ok(ExitStatus::Success);
    }
    let mut problem = Problem::new(format!(
        "status is incomplete: {} could not be read",
        report
            .errors
            .iter()
            .map(|g| g.resource.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for gap in &report.errors {
        problem = problem.because(format!("{}: {}", gap.resource, gap.reason));
    }
    Err(Error::Failed {
        problem: problem
            .hint("everything else is shown above; `-o json` lists these under `errors`"),
    })
}

/// The JSON (and YAML) document; its fields are described in the README.
fn to_json(report: &Report) -> Value {
    let releases = report.releases.as_ref().map(|list| {
        list.iter()
            .map(|r| {
                let mut row = r.row.clone();
                row["parts"] = json!(r.parts);
                row
            })
            .collect::<Vec<_>>()
    });
    let mut out = Map::new();
    out.insert("releases".into(), json!(releases));
    for view in &report.views {
        out.insert(view.summary.view.name.clone(), view_json(view));
    }
    if let Some(usage) = &report.usage {
        let usage = match usage {
            Usage::Available { from } => json!({"available": true, "from": from}),
            Usage::Missing(why) => json!({"available": false, "reason": why}),
        };
        out.insert("usage".into(), usage);
    }
    out.insert("missing".into(), json!(report.missing));
    out.insert("errors".into(), json!(report.errors));
    Value::Object(out)
}

fn view_json(report: &ViewReport) -> Value {
    let summary: &ViewSummary = &report.summary;
    let view = &summary.view;
    let roles: &[String] = view.pods.as_ref().map_or(&[], |p| p.roles.as_slice());
    let mut out = Map::new();
    for (kind, objects) in view.kinds.iter().zip(&summary.kinds) {
        let list = objects.as_ref().map(|list| {
            list.iter()
                .map(|object| {
                    let mut value = object.to_json(kind, roles);
                    if kind.owns_pods && view.usage.is_some() {
                        value["usage"] = json!(report.usage_of(object));
                    }
                    value
                })
                .collect::<Vec<_>>()
        });
        out.insert(kind.key.clone(), json!(list));
    }
    out.insert(
        "namespaces".into(),
        Value::Object(
            summary
                .namespaces
                .iter()
                .map(|(ns, tally)| (ns.clone(), tally.to_json()))
                .collect(),
        ),
    );
    out.insert("total".into(), summary.total.to_json());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreadable_kinds_fail_the_command() {
        let gap = Gap {
            resource: "widgets.example.com".into(),
            code: Some(403),
            reason: "forbidden for user \"x\"".into(),
            hint: Some("ask".into()),
        };
        let mut report = Report {
            releases: Some(Vec::new()),
            views: Vec::new(),
            usage: Some(Usage::Missing("no Prometheus".into())),
            missing: vec![gap.clone()],
            errors: Vec::new(),
        };
        assert_eq!(outcome(&report).unwrap(), ExitStatus::Success);
        report.errors.push(gap.clone());
        let err = outcome(&report).unwrap_err();
        assert!(err.to_string().contains("widgets.example.com"), "{err}");
        assert_eq!(
            gap_line(&gap),
            "cannot read widgets.example.com: forbidden for user \"x\" — hint: ask"
        );
    }
}
