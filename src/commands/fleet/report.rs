//! What a fleet command says: one summary table (or one JSON array), each profile's detail
//! under its header, the resume command of a stopped rollout, and one exit code for all.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::child::Outcome;
use super::file::Wave;
use super::identity::Unreachable;
use super::{Kind, Run, State};
use crate::error::{Error, ExitStatus, Problem};
use crate::ui::{Printer, Table, to_format};

/// How a profile's run ended, in a few words.
pub fn short_result(kind: &Kind, outcome: &Outcome) -> String {
    match outcome.code {
        Some(0 | 3) => match kind {
            Kind::Diff { .. } => match &outcome.report {
                Some(report) if report["changes"] == false => "no changes".to_owned(),
                Some(report) => report["summary"].as_str().unwrap_or("changes").to_owned(),
                None => "done".to_owned(),
            },
            Kind::Up { .. } => match &outcome.report {
                Some(report) => format!(
                    "revision {}: {}",
                    report["revision"],
                    report["summary"].as_str().unwrap_or_default()
                ),
                None => "done".to_owned(),
            },
            Kind::Ls { .. } => match &outcome.report {
                Some(Value::Array(rows)) => format!("{} release(s)", rows.len()),
                _ => "done".to_owned(),
            },
            Kind::Status => "ok".to_owned(),
        },
        Some(130) => "interrupted".to_owned(),
        None => "ended by a signal".to_owned(),
        Some(code) => format!(
            "failed (exit {code}): {}",
            outcome.error.as_deref().unwrap_or("see its lines above")
        ),
    }
}

/// The result cell of a run.
fn result(kind: &Kind, run: &Run) -> String {
    match &run.state {
        State::Skipped => "skipped".to_owned(),
        State::Done(outcome) => short_result(kind, outcome),
    }
}

fn cluster_value(run: &Run) -> Value {
    json!({
        "context": run.target.context,
        "server": run.target.server,
        "uid": run.target.uid,
    })
}

/// The report of `diff`, `ls` and `status` over the fleet, and its exit: 1 when any profile
/// failed, else 3 when any has changes (`diff --exit-code`) or skew (`ls --expect-same`).
///
/// # Errors
/// Any profile's failure, after everything is printed; Ctrl-C.
pub fn read(
    kind: &Kind,
    runs: &[Run],
    format: Option<bool>,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let mut skew = None;
    match (kind, format) {
        (_, Some(yaml)) => {
            let docs: Vec<Value> = runs.iter().map(document).collect();
            printer.data(&to_format(&json!(docs), yaml)?);
        }
        (Kind::Ls { .. }, None) => {
            let (table, found) = releases_side_by_side(runs);
            printer.data(&table);
            skew = found;
        }
        (_, None) => {
            let mut table = Table::new(&["PROFILE", "CONTEXT", "SERVER", "RESULT"]);
            for run in runs {
                table.row(vec![
                    run.target.profile.clone(),
                    run.target.context.clone(),
                    run.target.server.clone(),
                    result(kind, run),
                ]);
            }
            let mut text = table.render();
            for run in runs {
                if let State::Done(outcome) = &run.state
                    && !outcome.stdout.is_empty()
                {
                    text.push_str(&format!(
                        "\n== {} (context {}, {})\n{}",
                        run.target.profile, run.target.context, run.target.server, outcome.stdout
                    ));
                    if !outcome.stdout.ends_with('\n') {
                        text.push('\n');
                    }
                }
            }
            printer.data(&text);
        }
    }
    if let Kind::Ls { expect_same: true } = kind
        && format.is_some()
    {
        skew = releases_skew(runs);
    }
    exit(kind, runs, skew, printer)
}

/// A profile's JSON document: what its command printed, with `profile` and `cluster`; its error
/// instead when it failed.
fn document(run: &Run) -> Value {
    let mut doc = match &run.state {
        State::Done(outcome) if outcome.succeeded() => {
            match serde_yaml_ng::from_str::<Value>(&outcome.stdout) {
                Ok(Value::Object(map)) => Value::Object(map),
                Ok(other) => json!({"items": other}),
                Err(_) => json!({"output": outcome.stdout}),
            }
        }
        State::Done(outcome) => json!({
            "error": outcome.error.clone().unwrap_or_else(|| "failed".to_owned()),
            "exitCode": outcome.code,
        }),
        State::Skipped => json!({"skipped": true}),
    };
    doc["profile"] = json!(run.target.profile);
    doc["cluster"] = cluster_value(run);
    doc
}

/// The rows each profile's `ls` reported.
fn rows(run: &Run) -> Option<&Vec<Value>> {
    match &run.state {
        State::Done(outcome) if outcome.succeeded() => outcome.report.as_ref()?.as_array(),
        _ => None,
    }
}

/// Every release of every region side by side (revision, bundle version, values digest,
/// health, drift), and the skew when a release's versions differ or a region lacks it.
fn releases_side_by_side(runs: &[Run]) -> (String, Option<String>) {
    let mut table = Table::new(&[
        "PROFILE",
        "CONTEXT",
        "RELEASE",
        "NAMESPACE",
        "REVISION",
        "VERSION",
        "VALUES",
        "HEALTH",
        "DRIFT",
        "STATUS",
    ]);
    for run in runs {
        let Some(rows) = rows(run) else {
            table.row(vec![
                run.target.profile.clone(),
                run.target.context.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                result(&Kind::Status, run),
            ]);
            continue;
        };
        for row in rows {
            let text = |k: &str| row[k].as_str().unwrap_or("-").to_owned();
            let digest = text("valuesDigest");
            table.row(vec![
                run.target.profile.clone(),
                run.target.context.clone(),
                text("name"),
                text("namespace"),
                match &row["revision"] {
                    Value::Null => "-".to_owned(),
                    revision => revision.to_string(),
                },
                text("version"),
                digest.chars().take(12).collect(),
                crate::ui::releases::health_text(&row["health"]),
                crate::ui::releases::drift_text(&row["drift"]),
                text("status"),
            ]);
        }
    }
    (table.render(), releases_skew(runs))
}

/// Where the regions run a release at different bundle versions, or one lacks it.
fn releases_skew(runs: &[Run]) -> Option<String> {
    let mut versions: BTreeMap<String, BTreeMap<String, Vec<&str>>> = BTreeMap::new();
    let read: Vec<&Run> = runs.iter().filter(|r| rows(r).is_some()).collect();
    for run in &read {
        for row in rows(run).into_iter().flatten() {
            let name = format!(
                "{}/{}",
                row["namespace"].as_str().unwrap_or("-"),
                row["name"].as_str().unwrap_or("-")
            );
            let version = row["version"].as_str().unwrap_or("-").to_owned();
            versions
                .entry(name)
                .or_default()
                .entry(version)
                .or_default()
                .push(&run.target.profile);
        }
    }
    let mut skews = Vec::new();
    for (release, by_version) in &versions {
        let mut parts: Vec<String> = by_version
            .iter()
            .map(|(version, profiles)| format!("{version} in {}", profiles.join(", ")))
            .collect();
        let holding: usize = by_version.values().map(Vec::len).sum();
        if holding < read.len() {
            let missing: Vec<&str> = read
                .iter()
                .map(|r| r.target.profile.as_str())
                .filter(|p| !by_version.values().flatten().any(|q| q == p))
                .collect();
            parts.push(format!("absent in {}", missing.join(", ")));
        }
        if parts.len() > 1 {
            skews.push(format!("{release}: {}", parts.join("; ")));
        }
    }
    (!skews.is_empty()).then(|| skews.join("\n"))
}

/// One exit for the fleet's reads.
fn exit(
    kind: &Kind,
    runs: &[Run],
    skew: Option<String>,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    failures(runs)?;
    if let Kind::Ls { expect_same: true } = kind
        && let Some(skew) = skew
    {
        printer.warn(&format!("the regions differ:\n{skew}"));
        return Ok(ExitStatus::Changes);
    }
    let changes = runs
        .iter()
        .any(|r| matches!(&r.state, State::Done(o) if o.code == Some(3)));
    Ok(if changes {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// Exit 130 when Ctrl-C stopped any profile, 1 when any failed; each named.
fn failures(runs: &[Run]) -> Result<(), Error> {
    let failed: Vec<&Run> = runs
        .iter()
        .filter(|r| matches!(&r.state, State::Done(o) if !o.succeeded()))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = failed.iter().map(|r| r.target.profile.as_str()).collect();
    let mut problem = Problem::new(format!(
        "{} of {} profiles failed: {}",
        failed.len(),
        runs.len(),
        names.join(", ")
    ));
    for run in &failed {
        if let State::Done(outcome) = &run.state {
            problem = problem.because(format!(
                "{}: {}",
                run.target.profile,
                outcome.error.as_deref().unwrap_or("see its lines above")
            ));
        }
    }
    let interrupted = failed
        .iter()
        .any(|r| matches!(&r.state, State::Done(o) if o.code == Some(130)));
    let problem = problem.hint("each profile's lines above say more");
    Err(if interrupted {
        Error::Interrupted { problem }
    } else {
        Error::Failed { problem }
    })
}

/// The report of `up` over the fleet: each profile's wave and result, and the command that
/// resumes a stopped rollout.
///
/// # Errors
/// Any profile's failure, or a rollout stopped before every profile ran.
pub fn up(
    runs: &[Run],
    waves: &[Wave],
    resume: Option<&String>,
    printer: &Printer,
) -> Result<ExitStatus, Error> {
    let kind = Kind::Up {
        canary: None,
        soak: None,
    };
    let mut table = Table::new(&["PROFILE", "WAVE", "CONTEXT", "RESULT"]);
    for run in runs {
        table.row(vec![
            run.target.profile.clone(),
            waves
                .get(run.wave)
                .map_or_else(|| "-".to_owned(), |w| w.name.clone()),
            run.target.context.clone(),
            result(&kind, run),
        ]);
    }
    printer.data(&table.render());
    let skipped: Vec<&str> = runs
        .iter()
        .filter(|r| matches!(r.state, State::Skipped))
        .map(|r| r.target.profile.as_str())
        .collect();
    let resume_hint = resume.map(|command| format!("resume with: {command}"));
    match failures(runs) {
        Ok(()) if skipped.is_empty() => Ok(ExitStatus::Success),
        Ok(()) => Err(Error::Failed {
            problem: Problem::new(format!(
                "the rollout stopped; not run: {}",
                skipped.join(", ")
            ))
            .maybe_hint(resume_hint),
        }),
        Err(Error::Failed { problem } | Error::Interrupted { problem }) if !skipped.is_empty() => {
            Err(Error::Failed {
                problem: problem
                    .because(format!("skipped: {}", skipped.join(", ")))
                    .maybe_hint(resume_hint),
            })
        }
        Err(Error::Failed { problem }) => Err(Error::Failed {
            problem: problem.maybe_hint(resume_hint),
        }),
        Err(other) => Err(other),
    }
}

/// `up` refuses a fleet whose clusters it cannot all reach: nothing starts.
pub fn unreachable_refusal(unreachable: &[Unreachable]) -> Error {
    let mut problem = Problem::new(format!(
        "cannot reach the cluster of {}; nothing was started",
        unreachable
            .iter()
            .map(|u| u.target.profile.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for u in unreachable {
        for p in u.error.problems() {
            problem = problem.because(format!(
                "{} (context {}): {}",
                u.target.profile,
                u.target.context,
                p.parts().what
            ));
        }
    }
    Error::Failed {
        problem: problem
            .hint("check each profile's context, or leave that profile out with --profiles"),
    }
}

/// What a soak's `ls` says of `release`: `None` when it is ready, else why not.
pub fn soak_verdict(release: &str, outcome: &Outcome) -> Option<String> {
    if !outcome.succeeded() {
        return Some(format!(
            "cannot read its releases: {}",
            outcome.error.as_deref().unwrap_or("ls failed")
        ));
    }
    let rows: Vec<Value> = serde_json::from_str(&outcome.stdout).unwrap_or_default();
    let Some(row) = rows.iter().find(|r| r["name"] == release) else {
        return Some(format!("release {release} is gone"));
    };
    let health = &row["health"];
    if health.is_null() {
        return Some(format!("the health of {release} cannot be read"));
    }
    if health["ready"] == health["total"] && health["failing"].is_null() {
        return None;
    }
    Some(format!(
        "{release} is {} ready{}",
        crate::ui::releases::health_text(health),
        ""
    ))
}
