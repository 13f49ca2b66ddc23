//! `plane status`: releases and where their parts are, Ray on the cluster by state with what it
//! requests, and usage from the bundle's Prometheus; what cannot be read is named, the rest shown.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::session;
use crate::cli::TableFormat;
use crate::error::{Error, ExitStatus, Problem, did_you_mean};
use crate::kube::{
    self, Cluster, Gap, JOB_STATES, Listed, PrometheusService, RayClusterState, RaySummary,
    RayTally, ReadyCount, Release, ReleaseParts, Requests, UsageByCluster,
};
use crate::settings::StatusSettings;
use crate::ui::releases::{RELEASE_COLUMNS, release_cells, release_value};
use crate::ui::{Printer, Table, to_format};

pub fn run(settings: &StatusSettings, printer: &Printer) -> Result<ExitStatus, Error> {
    let report = session::runtime()?.block_on(gather(settings, printer))?;
    let text = match settings.output {
        TableFormat::Table => table(&report, &settings.state_namespace),
        TableFormat::Json => to_format(&report.to_json(), false)?,
        TableFormat::Yaml => to_format(&report.to_json(), true)?,
    };
    printer.data(&text);
    for gap in &report.missing {
        printer.warn(&gap.reason);
    }
    if let Usage::Missing(why) = &report.usage {
        printer.warn(&format!("usage unavailable: {why}"));
    }
    for gap in &report.errors {
        printer.warn(&gap_line(gap));
    }
    outcome(&report)
}

/// What `status` found.
struct Report {
    /// `None` when the release records could not be read.
    releases: Option<Vec<ReleaseStatus>>,
    ray: RaySummary,
    usage: Usage,
    /// Kinds the cluster does not serve: there are none of them.
    missing: Vec<Gap>,
    /// What could not be read: the rest is shown without it.
    errors: Vec<Gap>,
}

struct ReleaseStatus {
    /// The release as `ls -o json` shows it.
    row: Value,
    parts: ReleaseParts,
}

enum Usage {
    /// Usage per RayCluster, and the Prometheus Services that answered.
    Available {
        from: Vec<String>,
        by_cluster: UsageByCluster,
    },
    /// Why there is none, in one line.
    Missing(String),
}

async fn gather(settings: &StatusSettings, printer: &Printer) -> Result<Report, Error> {
    let cluster = session::connect(&settings.cluster, None, printer).await?;
    let state_ns = &settings.state_namespace;
    let (releases, objects) = futures::join!(
        releases_shown(&cluster, state_ns, settings.with_teams),
        kube::list_ray(&cluster),
    );
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
    let mut statuses = None;
    if let Some(releases) = &releases {
        // Several releases (the platform and its teams): one LIST per kind for all of them,
        // the same round trips for one team or a hundred. One release, or credentials that may
        // not list across namespaces: each release's objects read by name.
        let live = if releases.len() > 1 {
            kube::LiveObjects::read(&cluster, releases).await.ok()
        } else {
            None
        };
        let mut found = Vec::new();
        if let Some(live) = live {
            for release in releases {
                let objects: Vec<Value> = live.of(release).cloned().collect();
                let row = release_value(release, Some(&live.health(release)));
                let parts = kube::find_parts(&objects);
                found.push(ReleaseStatus { row, parts });
            }
        } else {
            let read =
                futures::future::join_all(releases.iter().map(|r| release_status(&cluster, r)))
                    .await;
            for (status, gaps) in read {
                found.push(status);
                errors.extend(gaps);
            }
        }
        statuses = Some(found);
    }
    for listed in [
        &objects.clusters,
        &objects.jobs,
        &objects.services,
        &objects.pods,
    ] {
        match listed {
            Listed::Objects(_) => {}
            Listed::NotServed(gap) => missing.push(gap.clone()),
            Listed::Unreadable(gap) => errors.push(gap.clone()),
        }
    }
    let usage = usage(
        &cluster,
        statuses.as_deref(),
        settings.release.as_deref(),
        !settings.with_teams,
    )
    .await;
    Ok(Report {
        releases: statuses,
        ray: kube::summarize_ray(&objects),
        usage,
        missing,
        errors,
    })
}

/// The releases of the state namespace, and in the platform's view every team instance too (one
/// LIST across namespaces; credentials that may not make it see the state namespace's alone).
async fn releases_shown(
    cluster: &Cluster,
    state_ns: &str,
    with_teams: bool,
) -> Result<Vec<Release>, kube::KubeError> {
    if with_teams {
        match kube::list_releases(cluster.client(), None).await {
            Ok(all) => {
                return Ok(all
                    .into_iter()
                    .filter(|r| r.namespace == state_ns || r.inventory.instance.is_some())
                    .collect());
            }
            Err(err) if err.code() == Some(403) => {}
            Err(err) => return Err(err),
        }
    }
    kube::list_releases(cluster.client(), Some(state_ns)).await
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

/// One release's health and parts, read together; what could not be read comes back as gaps.
async fn release_status(cluster: &Cluster, release: &Release) -> (ReleaseStatus, Vec<Gap>) {
    let (health, (parts, mut gaps)) = futures::join!(
        kube::release_health(cluster, release),
        kube::release_parts(cluster, &release.inventory),
    );
    let health = health
        .map_err(|err| {
            gaps.push(Gap::new(
                &format!("the health of release {}", release.name),
                &err,
                "ask a cluster admin for `get` on the release's objects",
            ));
        })
        .ok();
    let row = release_value(release, health.as_ref());
    (ReleaseStatus { row, parts }, gaps)
}

/// Usage from each shown release's Prometheus, merged; or why there is none. A team's view
/// (`-n`) reads the Prometheus of the platform releases, which scrapes the team's Ray pods.
async fn usage(
    cluster: &kube::Cluster,
    releases: Option<&[ReleaseStatus]>,
    named: Option<&str>,
    team_view: bool,
) -> Usage {
    let client = cluster.client();
    let Some(releases) = releases else {
        return Usage::Missing(
            "the release records could not be read, so their Prometheus is unknown".into(),
        );
    };
    let mut services: Vec<PrometheusService> = releases
        .iter()
        .filter_map(|r| r.parts.prometheus_service())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if services.is_empty() && team_view {
        match platform_prometheus(cluster).await {
            Ok(found) => services = found,
            Err(why) => return Usage::Missing(why),
        }
    }
    if services.is_empty() {
        return Usage::Missing(match (named, releases.is_empty()) {
            (_, true) => "no plane release on the cluster has a Prometheus".into(),
            (Some(name), false) => {
                format!("release {name} has no Prometheus Service (its observability is off)")
            }
            (None, false) => "no release has a Prometheus Service (observability is off)".into(),
        });
    }
    let answers =
        futures::future::join_all(services.iter().map(|s| kube::ray_usage(client, s))).await;
    let mut from = Vec::new();
    let mut by_cluster = UsageByCluster::new();
    let mut first_error = None;
    for (service, answer) in services.iter().zip(answers) {
        match answer {
            Ok(usage) => {
                from.push(service.subject());
                for (key, value) in usage {
                    by_cluster.entry(key).or_insert(value);
                }
            }
            Err(why) => {
                first_error.get_or_insert(why);
            }
        }
    }
    match first_error {
        Some(why) if from.is_empty() => Usage::Missing(why),
        _ => Usage::Available { from, by_cluster },
    }
}

/// The Prometheus Services of the platform releases (every record, one LIST); why not, when the
/// records may not be listed.
async fn platform_prometheus(cluster: &kube::Cluster) -> Result<Vec<PrometheusService>, String> {
    let releases = kube::list_releases(cluster.client(), None)
        .await
        .map_err(|err| {
            format!(
                "the platform's Prometheus is unknown: {}",
                err.to_problem().causes.join(": ")
            )
        })?;
    let platforms: Vec<&kube::Release> = releases
        .iter()
        .filter(|r| r.inventory.instance.is_none())
        .collect();
    let parts = futures::future::join_all(
        platforms
            .iter()
            .map(|r| kube::release_parts(cluster, &r.inventory)),
    )
    .await;
    Ok(parts
        .into_iter()
        .filter_map(|(parts, _)| parts.prometheus_service())
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

/// `cannot read rayjobs.ray.io: forbidden for user "x" — hint: ...`
fn gap_line(gap: &Gap) -> String {
    let mut line = format!("cannot read {}: {}", gap.resource, gap.reason);
    if let Some(hint) = &gap.hint {
        line.push_str(&format!(" — hint: {hint}"));
    }
    line
}

impl Report {
    fn usage_of(&self, cluster: &RayClusterState) -> Option<&kube::ClusterUsage> {
        match &self.usage {
            Usage::Available { by_cluster, .. } => {
                by_cluster.get(&(cluster.namespace.clone(), cluster.name.clone()))
            }
            Usage::Missing(_) => None,
        }
    }

    /// The JSON (and YAML) document; its fields are described in the README.
    fn to_json(&self) -> Value {
        let releases = self.releases.as_ref().map(|list| {
            list.iter()
                .map(|r| {
                    let mut row = r.row.clone();
                    row["parts"] = json!(r.parts);
                    row
                })
                .collect::<Vec<_>>()
        });
        let clusters = self.ray.clusters.as_ref().map(|list| {
            list.iter()
                .map(|c| {
                    let mut value = json!(c);
                    value["usage"] = json!(self.usage_of(c));
                    value
                })
                .collect::<Vec<_>>()
        });
        let usage = match &self.usage {
            Usage::Available { from, .. } => json!({"available": true, "from": from}),
            Usage::Missing(why) => json!({"available": false, "reason": why}),
        };
        json!({
            "releases": releases,
            "ray": {
                "clusters": clusters,
                "jobs": self.ray.jobs,
                "services": self.ray.services,
                "namespaces": self.ray.namespaces,
                "total": self.ray.total,
            },
            "usage": usage,
            "missing": self.missing,
            "errors": self.errors,
        })
    }
}

/// The report as tables: releases and their parts, RayClusters, Ray per namespace, and the
/// RayClusters that are not ready with their conditions.
fn table(report: &Report, state_ns: &str) -> String {
    let mut out = String::new();
    match &report.releases {
        None => out.push_str("RELEASES: unknown (the release records could not be read)\n"),
        Some(list) if list.is_empty() => {
            out.push_str(&format!("RELEASES: none in the namespace {state_ns}\n"));
        }
        Some(list) => {
            let mut releases = Table::new(RELEASE_COLUMNS);
            for release in list {
                releases.row(release_cells(&release.row));
            }
            out.push_str(&releases.render());
            for release in list {
                out.push('\n');
                out.push_str(&parts_text(
                    release.row["name"].as_str().unwrap_or("-"),
                    &release.parts,
                ));
            }
        }
    }
    out.push('\n');
    match &report.ray.clusters {
        None => out.push_str("RAYCLUSTERS: unknown (they could not be listed)\n"),
        Some(list) if list.is_empty() => out.push_str("RAYCLUSTERS: none\n"),
        Some(list) => out.push_str(&clusters_table(report, list)),
    }
    out.push('\n');
    out.push_str(&namespaces_table(&report.ray));
    let not_ready: Vec<&RayClusterState> = report
        .ray
        .clusters
        .iter()
        .flatten()
        .filter(|c| !c.ready)
        .collect();
    if !not_ready.is_empty() {
        out.push_str("\nNOT READY\n");
        for cluster in not_ready {
            out.push_str(&format!(
                "RayCluster/{}/{}: {}\n",
                cluster.namespace,
                cluster.name,
                cluster.reason.as_deref().unwrap_or(cluster.state)
            ));
            for condition in &cluster.conditions {
                out.push_str(&format!("  {condition}\n"));
            }
        }
    }
    out
}

fn parts_text(name: &str, parts: &ReleaseParts) -> String {
    let mut lines = Table::new(&[&format!("{name}:"), ""]);
    let absent = || "-".to_owned();
    lines.row(vec![
        "  api".into(),
        parts
            .api
            .as_ref()
            .map_or_else(absent, |a| format!("{} ({})", a.url, a.from)),
    ]);
    for (label, part) in [
        ("grafana", &parts.grafana),
        ("prometheus", &parts.prometheus),
    ] {
        lines.row(vec![
            format!("  {label}"),
            part.as_ref()
                .map_or_else(absent, |p| format!("{} ({})", p.url, p.service)),
        ]);
    }
    lines.row(vec![
        "  operator".into(),
        parts.operator.as_ref().map_or_else(absent, |o| {
            format!(
                "KubeRay {}, {}/{} ready ({}, image {})",
                o.version, o.ready_replicas, o.replicas, o.deployment, o.image
            )
        }),
    ]);
    lines.render()
}

fn clusters_table(report: &Report, clusters: &[RayClusterState]) -> String {
    let with_usage = matches!(report.usage, Usage::Available { .. });
    let mut header = vec![
        "NAMESPACE",
        "RAYCLUSTER",
        "STATE",
        "WORKERS",
        "HEAD PODS",
        "WORKER PODS",
        "CPU",
        "MEMORY",
        "GPU",
        "REQUESTS FROM",
    ];
    if with_usage {
        header.extend(["CPU USED", "MEMORY USED"]);
    }
    let mut table = Table::new(&header);
    for cluster in clusters {
        let mut cells = vec![
            cluster.namespace.clone(),
            cluster.name.clone(),
            cluster.state.to_owned(),
            format!("{}/{}", cluster.ready_workers, cluster.desired_workers),
            count(cluster.head_pods),
            count(cluster.worker_pods),
            cpu(cluster.requests.cpu_millis),
            memory(cluster.requests.memory_bytes),
            cluster.requests.gpu.to_string(),
            cluster.requests_from.as_str().to_owned(),
        ];
        if with_usage {
            let usage = report.usage_of(cluster);
            cells.push(
                usage
                    .and_then(|u| u.cpu_cores)
                    .map_or_else(|| "-".to_owned(), |c| format!("{c:.2}")),
            );
            cells.push(
                usage
                    .and_then(|u| u.memory_bytes)
                    .map_or_else(|| "-".to_owned(), |m| memory(whole(m))),
            );
        }
        table.row(cells);
    }
    table.render()
}

fn namespaces_table(ray: &RaySummary) -> String {
    let mut table = Table::new(&[
        "NAMESPACE",
        "RAYCLUSTERS",
        "RAYJOBS",
        "RAYSERVICES",
        "HEAD PODS",
        "WORKER PODS",
        "CPU",
        "MEMORY",
        "GPU",
    ]);
    let row = |name: &str, tally: &RayTally| {
        let requests = tally.requests;
        let of = |f: fn(&Requests) -> String| requests.as_ref().map_or_else(unknown, f);
        vec![
            name.to_owned(),
            tally.clusters.as_ref().map_or_else(unknown, ready_of),
            tally.jobs.as_ref().map_or_else(unknown, |jobs| {
                let parts: Vec<String> = JOB_STATES
                    .iter()
                    .filter_map(|s| jobs.get(s).filter(|n| **n > 0).map(|n| format!("{n} {s}")))
                    .collect();
                if parts.is_empty() {
                    "none".to_owned()
                } else {
                    parts.join(", ")
                }
            }),
            tally.services.as_ref().map_or_else(unknown, ready_of),
            count(tally.head_pods),
            count(tally.worker_pods),
            of(|r| cpu(r.cpu_millis)),
            of(|r| memory(r.memory_bytes)),
            of(|r| r.gpu.to_string()),
        ]
    };
    for (name, tally) in &ray.namespaces {
        table.row(row(name, tally));
    }
    table.row(row("TOTAL", &ray.total));
    table.render()
}

/// `1/2 ready`, or `none`.
fn ready_of(count: &ReadyCount) -> String {
    match count.ready + count.not_ready {
        0 => "none".to_owned(),
        all => format!("{}/{all} ready", count.ready),
    }
}

fn unknown() -> String {
    "unknown".to_owned()
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(unknown, |n| n.to_string())
}

/// Cores from millicores: `2`, `1.5`, `0.25`.
fn cpu(millis: u64) -> String {
    decimal(millis, 1000)
}

/// `value / unit` with up to the unit's decimals, trailing zeros dropped.
fn decimal(value: u64, unit: u64) -> String {
    let digits = unit.ilog10() as usize;
    let text = format!("{}.{:0digits$}", value / unit, value % unit);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Bytes in the largest binary unit that fits, to two decimals: `2.25Gi`, `512Mi`.
fn memory(bytes: u64) -> String {
    for (suffix, unit) in [
        ("Ti", 1_u64 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if bytes >= unit {
            let hundredths = (u128::from(bytes) * 100 + u128::from(unit) / 2) / u128::from(unit);
            let hundredths = u64::try_from(hundredths).unwrap_or(u64::MAX);
            return format!("{}{suffix}", decimal(hundredths, 100));
        }
    }
    bytes.to_string()
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a usage sample in bytes, non-negative and far below u64::MAX"
)]
fn whole(value: f64) -> u64 {
    value.round().max(0.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_like_kubectl_top() {
        assert_eq!(cpu(2000), "2");
        assert_eq!(cpu(1500), "1.5");
        assert_eq!(cpu(250), "0.25");
        assert_eq!(cpu(0), "0");
        assert_eq!(memory(3 << 30), "3Gi");
        assert_eq!(memory((2 << 30) + (256 << 20)), "2.25Gi");
        assert_eq!(memory(512 << 20), "512Mi");
        assert_eq!(memory(100), "100");
    }

    #[test]
    fn only_unreadable_kinds_fail_the_command() {
        let gap = Gap {
            resource: "rayjobs.ray.io".into(),
            code: Some(403),
            reason: "forbidden for user \"x\"".into(),
            hint: Some("ask".into()),
        };
        let mut report = Report {
            releases: Some(Vec::new()),
            ray: RaySummary::default(),
            usage: Usage::Missing("no Prometheus".into()),
            missing: vec![gap.clone()],
            errors: Vec::new(),
        };
        assert_eq!(outcome(&report).unwrap(), ExitStatus::Success);
        report.errors.push(gap.clone());
        let err = outcome(&report).unwrap_err();
        assert!(err.to_string().contains("rayjobs.ray.io"), "{err}");
        assert_eq!(
            gap_line(&gap),
            "cannot read rayjobs.ray.io: forbidden for user \"x\" — hint: ask"
        );
    }
}
