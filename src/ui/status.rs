//! What `plane status` found, and how its tables read: the releases and their parts, then each
//! status view: a table per listed kind, the view per namespace, and what is not ready.

use serde_json::Value;

use crate::bundle::declared::view::ViewKind;
use crate::kube::{
    Count, Found, Gap, ObjectState, ObjectUsage, ReleaseParts, Tally, UsageByObject, ViewSummary,
};
use crate::ui::Table;
use crate::ui::releases::{RELEASE_COLUMNS, release_cells};

/// What `status` found.
pub struct Report {
    /// `None` when the release records could not be read.
    pub releases: Option<Vec<ReleaseStatus>>,
    /// The status view of each bundle shown.
    pub views: Vec<ViewReport>,
    /// Usage, when a view declares how to ask for it.
    pub usage: Option<Usage>,
    /// Kinds the cluster does not serve: there are none of them.
    pub missing: Vec<Gap>,
    /// What could not be read: the rest is shown without it.
    pub errors: Vec<Gap>,
}

/// One release: its row as `ls -o json` shows it, and its parts.
pub struct ReleaseStatus {
    pub row: Value,
    pub parts: ReleaseParts,
    /// The name of its bundle's status view.
    pub view: Option<String>,
}

impl ReleaseStatus {
    pub fn view_name(&self) -> Option<&str> {
        self.view.as_deref()
    }
}

/// One view's summary, and the usage of its objects when Prometheus answered.
pub struct ViewReport {
    pub summary: ViewSummary,
    pub usage: Option<UsageByObject>,
}

impl ViewReport {
    pub fn usage_of(&self, object: &ObjectState) -> Option<&ObjectUsage> {
        self.usage
            .as_ref()?
            .get(&(object.namespace.clone(), object.name.clone()))
    }
}

/// Where usage came from, or why there is none.
pub enum Usage {
    /// The Prometheus Services that answered.
    Available { from: Vec<String> },
    /// Why there is none, in one line.
    Missing(String),
}

/// `cannot read widgets.example.com: forbidden for user "x" — hint: ...`
pub fn gap_line(gap: &Gap) -> String {
    let mut line = format!("cannot read {}: {}", gap.resource, gap.reason);
    if let Some(hint) = &gap.hint {
        line.push_str(&format!(" — hint: {hint}"));
    }
    line
}

/// The report as tables: releases and their parts, then each view.
pub fn tables(report: &Report, state_ns: &str) -> String {
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
            for release in list.iter().filter(|r| !r.parts.0.is_empty()) {
                out.push('\n');
                out.push_str(&parts_text(
                    release.row["name"].as_str().unwrap_or("-"),
                    &release.parts,
                ));
            }
        }
    }
    for view in &report.views {
        out.push_str(&view_text(view));
    }
    out
}

fn parts_text(name: &str, parts: &ReleaseParts) -> String {
    let mut lines = Table::new(&[&format!("{name}:"), ""]);
    for (part, found) in &parts.0 {
        let text = match found {
            None => "-".to_owned(),
            Some(Found::Endpoint(e)) => format!("{} ({})", e.url, e.from),
            Some(Found::Service(s)) => format!("{} ({})", s.url, s.service),
            Some(Found::Workload(w)) => format!(
                "{} {}, {}/{} ready ({}, image {})",
                w.title, w.version, w.ready_replicas, w.replicas, w.deployment, w.image
            ),
        };
        lines.row(vec![format!("  {part}"), text]);
    }
    lines.render()
}

/// One view: a table per listed kind, the view per namespace, and the listed objects that are
/// not ready with their conditions.
fn view_text(report: &ViewReport) -> String {
    let summary = &report.summary;
    let view = &summary.view;
    let mut out = String::new();
    for (kind, objects) in view.kinds.iter().zip(&summary.kinds) {
        let Some(name) = &kind.table else { continue };
        out.push('\n');
        match objects {
            None => out.push_str(&format!(
                "{}: unknown (they could not be listed)\n",
                kind.title
            )),
            Some(list) if list.is_empty() => out.push_str(&format!("{}: none\n", kind.title)),
            Some(list) => out.push_str(&kind_table(report, kind, name, list)),
        }
    }
    out.push('\n');
    out.push_str(&namespaces_table(summary));
    let not_ready: Vec<(&ViewKind, &ObjectState)> = view
        .kinds
        .iter()
        .zip(&summary.kinds)
        .filter(|(kind, _)| kind.table.is_some())
        .flat_map(|(kind, list)| list.iter().flatten().map(move |o| (kind, o)))
        .filter(|(_, o)| o.ready == Some(false))
        .collect();
    if !not_ready.is_empty() {
        out.push_str("\nNOT READY\n");
        for (kind, object) in not_ready {
            out.push_str(&format!(
                "{}/{}/{}: {}\n",
                kind.kind,
                object.namespace,
                object.name,
                object.reason.as_deref().unwrap_or(&object.state)
            ));
            for condition in &object.conditions {
                out.push_str(&format!("  {condition}\n"));
            }
        }
    }
    out
}

fn kind_table(report: &ViewReport, kind: &ViewKind, name: &str, objects: &[ObjectState]) -> String {
    let view = &report.summary.view;
    let roles: &[String] = view.pods.as_ref().map_or(&[], |p| p.roles.as_slice());
    let with_usage = kind.owns_pods && report.usage.is_some();
    let role_headers: Vec<String> = roles.iter().map(|r| pods_header(r)).collect();
    let mut header: Vec<&str> = vec!["NAMESPACE", name, "STATE"];
    header.extend(kind.columns.iter().map(|c| c.header.as_str()));
    if kind.owns_pods {
        header.extend(role_headers.iter().map(String::as_str));
        header.extend(["CPU", "MEMORY", "GPU", "REQUESTS FROM"]);
    }
    if with_usage {
        header.extend(["CPU USED", "MEMORY USED"]);
    }
    let mut table = Table::new(&header);
    for object in objects {
        let mut cells = vec![
            object.namespace.clone(),
            object.name.clone(),
            object.state.clone(),
        ];
        cells.extend(object.columns.iter().cloned());
        if kind.owns_pods {
            cells.extend(roles.iter().map(|r| count(object.pods_of(r))));
            cells.extend([
                cpu(object.requests.cpu_millis),
                memory(object.requests.memory_bytes),
                object.requests.gpu.to_string(),
                object.requests_from.as_str().to_owned(),
            ]);
        }
        if with_usage {
            let usage = report.usage_of(object);
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

/// `HEAD PODS` for the role `head`.
fn pods_header(role: &str) -> String {
    format!("{} PODS", role.to_uppercase())
}

fn namespaces_table(summary: &ViewSummary) -> String {
    let view = &summary.view;
    let roles: &[String] = view.pods.as_ref().map_or(&[], |p| p.roles.as_slice());
    let role_headers: Vec<String> = roles.iter().map(|r| pods_header(r)).collect();
    let with_requests = view.pod_owner().is_some();
    let mut header: Vec<&str> = vec!["NAMESPACE"];
    header.extend(view.kinds.iter().map(|k| k.title.as_str()));
    header.extend(role_headers.iter().map(String::as_str));
    if with_requests {
        header.extend(["CPU", "MEMORY", "GPU"]);
    }
    let mut table = Table::new(&header);
    let row = |name: &str, tally: &Tally| {
        let mut cells = vec![name.to_owned()];
        for kind in &view.kinds {
            let count = tally.counts.get(&kind.key).and_then(Option::as_ref);
            cells.push(count.map_or_else(unknown, |c| count_text(kind, c)));
        }
        for role in roles {
            cells.push(count(tally.pods.get(role).copied().flatten()));
        }
        if with_requests {
            let requests = tally.requests.flatten();
            let of =
                |f: fn(&crate::kube::Requests) -> String| requests.as_ref().map_or_else(unknown, f);
            cells.extend([
                of(|r| cpu(r.cpu_millis)),
                of(|r| memory(r.memory_bytes)),
                of(|r| r.gpu.to_string()),
            ]);
        }
        cells
    };
    for (name, tally) in &summary.namespaces {
        table.row(row(name, tally));
    }
    table.row(row("TOTAL", &summary.total));
    table.render()
}

/// `1/2 ready`, `2 running, 1 failed` (in the declared order of states), or `none`.
fn count_text(kind: &ViewKind, count: &Count) -> String {
    match count {
        Count::Ready { ready, not_ready } => match ready + not_ready {
            0 => "none".to_owned(),
            all => format!("{ready}/{all} ready"),
        },
        Count::States(states) => {
            let parts: Vec<String> = kind
                .states
                .iter()
                .filter_map(|s| {
                    states
                        .get(&s.name)
                        .filter(|n| **n > 0)
                        .map(|n| format!("{n} {}", s.name))
                })
                .collect();
            if parts.is_empty() {
                "none".to_owned()
            } else {
                parts.join(", ")
            }
        }
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
}
