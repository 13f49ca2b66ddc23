//! One command over many profiles (regions): the selection, every pin resolved before anything
//! runs, each profile's work as today's command in a child process, `up` in waves, one report.

mod child;
mod file;
mod identity;
mod report;

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use child::Outcome;
pub(crate) use child::child_args;
pub use child::report as write_report;
use file::{Fleet, Wave};
use identity::Target;

use super::session;
use crate::bundle::profile;
use crate::cli::{ClusterArgs, FleetArgs, SourceArgs};
use crate::error::{Error, ExitStatus, Problem, did_you_mean};
use crate::ui::Printer;

/// Which command runs over the fleet, with what only it needs.
#[derive(Debug, Clone)]
pub enum Kind {
    Diff {
        exit_code: bool,
    },
    Up {
        canary: Option<String>,
        soak: Option<Duration>,
    },
    Ls {
        expect_same: bool,
    },
    Status,
}

/// A fleet command, as the command line gave it.
pub struct Request<'a> {
    pub kind: Kind,
    pub fleet: &'a FleetArgs,
    pub sources: &'a SourceArgs,
    pub cluster: &'a ClusterArgs,
    /// `--profile`, which a fleet cannot take.
    pub profile: Option<&'a str>,
    /// `-o json` (`Some(false)`) or `-o yaml` (`Some(true)`): an array of each profile's
    /// document instead of tables.
    pub format: Option<bool>,
    /// For `up`'s soak: the `ls` arguments that find the release (`-n`, `--state-namespace`)
    /// and its name.
    pub release: Option<(String, Vec<String>)>,
}

/// One profile's place in the run, and how it ended.
pub struct Run {
    pub target: Target,
    pub wave: usize,
    pub state: State,
}

pub enum State {
    Done(Outcome),
    /// Not started: an earlier failure or Ctrl-C stopped the rollout first.
    Skipped,
}

/// Runs `request` over its profiles.
///
/// # Errors
/// Bad selection or pins (exit 2, nothing run anywhere); any profile's failure (exit 1, after
/// every profile's report); Ctrl-C (130).
pub fn run(request: &Request<'_>, printer: &Printer) -> Result<ExitStatus, Error> {
    if let Some(profile) = request.profile {
        return Err(Error::input(
            Problem::new(format!(
                "--profile {profile} picks one profile; the fleet picks several"
            ))
            .hint("list it in --profiles, or leave --profiles, --all-profiles and --fleet out"),
        ));
    }
    if let Some(context) = &request.cluster.context {
        return Err(Error::input(
            Problem::new(format!(
                "--context {context} picks one cluster; in a fleet each profile's pin picks its own"
            ))
            .hint("leave --context out; pin `cluster: {context: ...}` in each profile"),
        ));
    }
    let sources = crate::settings::sources(request.sources);
    let Fleet {
        waves,
        parallel,
        soak,
    } = select(request, &sources)?;
    let mut profiles = Vec::new();
    let mut problems = Vec::new();
    for name in waves.iter().flat_map(|w| &w.profiles) {
        match profile::load(&sources.profiles, name) {
            Ok(profile) => profiles.push(profile),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Input { problems });
    }
    let own: Vec<OsString> = std::env::args_os().skip(1).collect();
    let timeout = Some(request.cluster.request_timeout).filter(|t| !t.is_zero());
    session::runtime()?.block_on(async {
        let (targets, unreachable) =
            identity::resolve(&profiles, request.cluster.kubeconfig.as_ref(), timeout).await?;
        let interrupted = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&interrupted);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
            }
        });
        let runner = Runner {
            request,
            own: &own,
            lines: printer.fleet(
                &waves
                    .iter()
                    .flat_map(|w| w.profiles.clone())
                    .collect::<Vec<_>>(),
            ),
            interrupted,
        };
        if let Kind::Up { soak: asked, .. } = &request.kind {
            if !unreachable.is_empty() {
                return Err(report::unreachable_refusal(&unreachable));
            }
            let soak = asked.or(soak);
            let runs = runner
                .waves(&waves, &targets, parallel.unwrap_or(4), soak)
                .await;
            return report::up(
                &runs,
                &waves,
                resume_args(request, &own, &runs).as_ref(),
                printer,
            );
        }
        let mut runs = runner.all(&targets, parallel.unwrap_or(8)).await;
        runs.extend(unreachable.into_iter().map(|u| Run {
            target: u.target,
            wave: 0,
            state: State::Done(child::not_started(&u.error)),
        }));
        order(&mut runs, &waves);
        report::read(&request.kind, &runs, request.format, printer)
    })
}

/// The waves the flags or the fleet file give, with the file's parallelism and soak.
fn select(request: &Request<'_>, sources: &crate::bundle::Sources) -> Result<Fleet, Error> {
    let fleet = request.fleet;
    let known = profile::names(&sources.profiles);
    let parallel = fleet.parallel.map(usize::from);
    let unknown = |name: &str| {
        Problem::new(format!("unknown profile `{name}`"))
            .at(format!("--profiles {name}"))
            .because(format!("known profiles: {}", known.join(", ")))
            .maybe_hint(did_you_mean(name, known.iter().map(String::as_str)))
    };
    let mut problems = Vec::new();
    let (mut waves, file_parallel, soak) = if let Some(path) = &fleet.fleet {
        let loaded = Fleet::load(path, &known).map_err(|problems| Error::Input { problems })?;
        let mut waves = loaded.waves;
        if !fleet.profiles.is_empty() {
            for name in &fleet.profiles {
                if !waves.iter().any(|w| w.profiles.contains(name)) {
                    problems.push(
                        Problem::new(format!("profile `{name}` is not in the fleet file"))
                            .at(path.display().to_string())
                            .hint("--profiles picks among the fleet file's profiles"),
                    );
                }
            }
            for wave in &mut waves {
                wave.profiles.retain(|p| fleet.profiles.contains(p));
            }
            waves.retain(|w| !w.profiles.is_empty());
        }
        (waves, loaded.parallel, loaded.soak)
    } else {
        let names: Vec<String> = if fleet.all_profiles {
            let mut all = known.clone();
            all.sort();
            all
        } else {
            fleet.profiles.clone()
        };
        for (i, name) in names.iter().enumerate() {
            if !known.contains(name) {
                problems.push(unknown(name));
            } else if names[..i].contains(name) {
                problems.push(
                    Problem::new(format!("profile `{name}` is given twice"))
                        .at(format!("--profiles {}", names.join(","))),
                );
            }
        }
        let waves = match &request.kind {
            Kind::Up {
                canary: Some(canary),
                ..
            } => {
                if !known.contains(canary) {
                    problems.push(unknown(canary).at(format!("--canary {canary}")));
                }
                let rest: Vec<String> = names.iter().filter(|n| *n != canary).cloned().collect();
                let mut waves = vec![Wave {
                    name: "canary".to_owned(),
                    profiles: vec![canary.clone()],
                }];
                if !rest.is_empty() {
                    waves.push(Wave {
                        name: "rest".to_owned(),
                        profiles: rest,
                    });
                }
                waves
            }
            _ => vec![Wave {
                name: "all".to_owned(),
                profiles: names,
            }],
        };
        (waves, None, None)
    };
    if !problems.is_empty() {
        return Err(Error::Input { problems });
    }
    waves.retain(|w| !w.profiles.is_empty());
    if waves.is_empty() {
        return Err(Error::input(
            Problem::new("the fleet has no profile")
                .hint("name profiles with --profiles, or see `plane profiles`"),
        ));
    }
    Ok(Fleet {
        waves,
        parallel: parallel.or(file_parallel),
        soak,
    })
}

/// Runs in the fleet's order: waves, then each wave's profiles as listed.
fn order(runs: &mut [Run], waves: &[Wave]) {
    let place = |profile: &str| {
        waves
            .iter()
            .flat_map(|w| &w.profiles)
            .position(|p| p == profile)
            .unwrap_or(usize::MAX)
    };
    runs.sort_by_key(|run| place(&run.target.profile));
}

/// Runs profiles' commands as child processes.
struct Runner<'a> {
    request: &'a Request<'a>,
    own: &'a [OsString],
    lines: crate::ui::FleetLines,
    interrupted: Arc<AtomicBool>,
}

impl Runner<'_> {
    /// The arguments of `target`'s child: the fleet's own without its selection, the profile,
    /// the pinned context, and JSON where the fleet reads the output.
    fn args(&self, target: &Target) -> Vec<OsString> {
        let mut extra = vec![
            "--context".to_owned(),
            target.context.clone(),
            "--no-progress".to_owned(),
        ];
        let mut drop_output = false;
        match &self.request.kind {
            Kind::Diff { .. } | Kind::Up { .. } => {
                extra.extend(["--profile".to_owned(), target.profile.clone()]);
            }
            Kind::Ls { .. } => {
                drop_output = true;
                extra.extend(["-o".to_owned(), "json".to_owned()]);
            }
            Kind::Status => {}
        }
        child_args(self.own, drop_output, &extra)
    }

    /// One profile's run, its line finished with how it ended.
    async fn one(&self, target: &Target, args: &[OsString]) -> Outcome {
        let line = self.lines.start(&target.profile);
        let outcome = match child::run(args, &line).await {
            Ok(outcome) => outcome,
            Err(err) => child::not_started(&err),
        };
        line.finish(&report::short_result(&self.request.kind, &outcome));
        outcome
    }

    /// Every target at once, `parallel` at a time; every one reported, whatever the others did.
    async fn all(&self, targets: &[Target], parallel: usize) -> Vec<Run> {
        let gate = Semaphore::new(parallel.max(1));
        futures::future::join_all(targets.iter().map(|target| {
            let gate = &gate;
            async move {
                let _permit = gate.acquire().await;
                if self.interrupted.load(Ordering::SeqCst) {
                    return Run {
                        target: target.clone(),
                        wave: 0,
                        state: State::Skipped,
                    };
                }
                let args = self.args(target);
                Run {
                    target: target.clone(),
                    wave: 0,
                    state: State::Done(self.one(target, &args).await),
                }
            }
        }))
        .await
    }

    /// `up` wave by wave: a wave's profiles `parallel` at a time; the first failure (or Ctrl-C)
    /// starts nothing more, while what runs finishes its `up`; a converged wave soaks before the
    /// next starts.
    async fn waves(
        &self,
        waves: &[Wave],
        targets: &[Target],
        parallel: usize,
        soak: Option<Duration>,
    ) -> Vec<Run> {
        let stop = AtomicBool::new(false);
        let mut runs = Vec::new();
        for (w, wave) in waves.iter().enumerate() {
            let wave_targets: Vec<&Target> = wave
                .profiles
                .iter()
                .filter_map(|p| targets.iter().find(|t| &t.profile == p))
                .collect();
            let stopped = stop.load(Ordering::SeqCst) || self.interrupted.load(Ordering::SeqCst);
            if stopped {
                runs.extend(wave_targets.into_iter().map(|t| Run {
                    target: t.clone(),
                    wave: w,
                    state: State::Skipped,
                }));
                continue;
            }
            self.lines.note(&format!(
                "{} ({}): {}",
                wave.name,
                w + 1,
                wave.profiles.join(", ")
            ));
            let gate = Semaphore::new(parallel.max(1));
            let done = futures::future::join_all(wave_targets.iter().map(|target| {
                let gate = &gate;
                let stop = &stop;
                async move {
                    let _permit = gate.acquire().await;
                    if stop.load(Ordering::SeqCst) || self.interrupted.load(Ordering::SeqCst) {
                        return Run {
                            target: (*target).clone(),
                            wave: w,
                            state: State::Skipped,
                        };
                    }
                    let args = self.args(target);
                    let outcome = self.one(target, &args).await;
                    if outcome.code != Some(0) {
                        stop.store(true, Ordering::SeqCst);
                    }
                    Run {
                        target: (*target).clone(),
                        wave: w,
                        state: State::Done(outcome),
                    }
                }
            }))
            .await;
            runs.extend(done);
            let last = w + 1 == waves.len();
            if let Some(soak) = soak
                && !last
                && !stop.load(Ordering::SeqCst)
                && let Err(failure) = self.soak(&wave_targets, soak).await
            {
                self.lines
                    .note(&format!("soak of {} failed: {failure}", wave.name));
                stop.store(true, Ordering::SeqCst);
                if let Some(run) = runs
                    .iter_mut()
                    .find(|r| failure.starts_with(&format!("{}:", r.target.profile)))
                {
                    run.state = State::Done(Outcome {
                        code: Some(1),
                        error: Some(format!("stopped being ready during the soak: {failure}")),
                        ..Outcome::default()
                    });
                }
            }
        }
        runs
    }

    /// Watches a converged wave for `soak`: every 10 seconds each profile's `ls` must show the
    /// release ready. The first that is not names the profile and the object.
    async fn soak(&self, targets: &[&Target], soak: Duration) -> Result<(), String> {
        let Some((release, ls_args)) = &self.request.release else {
            return Ok(());
        };
        self.lines.note(&format!(
            "soak: watching for {}",
            humantime::format_duration(soak)
        ));
        let end = Instant::now() + soak;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(Duration::from_secs(10))).await;
            if self.interrupted.load(Ordering::SeqCst) {
                return Err("interrupted".to_owned());
            }
            for target in targets {
                let mut args: Vec<OsString> = vec!["ls".into()];
                if let Some(kubeconfig) = &self.request.cluster.kubeconfig {
                    args.extend(["--kubeconfig".into(), kubeconfig.clone().into_os_string()]);
                }
                args.extend(ls_args.iter().map(OsString::from));
                args.extend(["--context", &target.context, "-o", "json"].map(OsString::from));
                let line = self.lines.start(&target.profile);
                let outcome = child::run(&args, &line).await.map_err(|e| e.to_string())?;
                let verdict = report::soak_verdict(release, &outcome);
                line.finish(verdict.as_deref().unwrap_or("ready"));
                if let Some(why) = verdict {
                    return Err(format!("{}: {why}", target.profile));
                }
            }
        }
    }
}

/// The command that goes on from where a stopped rollout left off: the same, over the profiles
/// that failed or never ran, in their order.
fn resume_args(request: &Request<'_>, own: &[OsString], runs: &[Run]) -> Option<String> {
    let left: Vec<&str> = runs
        .iter()
        .filter(|r| match &r.state {
            State::Skipped => true,
            State::Done(outcome) => outcome.code != Some(0),
        })
        .map(|r| r.target.profile.as_str())
        .collect();
    if left.is_empty() {
        return None;
    }
    let mut args: Vec<String> = child_args(own, false, &[])
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let at = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut extra = Vec::new();
    if let Some(fleet) = &request.fleet.fleet {
        extra.extend(["--fleet".to_owned(), fleet.display().to_string()]);
    }
    extra.extend(["--profiles".to_owned(), left.join(",")]);
    if let Kind::Up { canary, soak } = &request.kind {
        if canary.is_some() && request.fleet.fleet.is_none() && left.len() > 1 {
            extra.extend(["--canary".to_owned(), left[0].to_owned()]);
        }
        if let Some(soak) = soak {
            extra.extend([
                "--soak".to_owned(),
                humantime::format_duration(*soak).to_string(),
            ]);
        }
    }
    if let Some(parallel) = request.fleet.parallel {
        extra.extend(["--parallel".to_owned(), parallel.to_string()]);
    }
    for (i, e) in extra.into_iter().enumerate() {
        args.insert(at + i, e);
    }
    Some(format!(
        "plane {}",
        args.iter()
            .map(|a| shell_word(a))
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

/// `word` as a shell reads it back.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
