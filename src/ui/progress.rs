//! Progress for cluster work: indicatif lines on a terminal, timestamped plain lines otherwise.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::kube::{Event, Reporter};

/// Reports cluster progress on stderr.
pub struct Progress {
    start: Instant,
    quiet: bool,
    bars: Option<Bars>,
}

struct Bars {
    multi: MultiProgress,
    current: Mutex<Option<ProgressBar>>,
}

impl Progress {
    /// Bars when `fancy` (a terminal without --no-progress), plain lines otherwise.
    pub fn new(fancy: bool, quiet: bool) -> Self {
        let bars = (fancy && !quiet).then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            current: Mutex::new(None),
        });
        Self {
            start: Instant::now(),
            quiet,
            bars,
        }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let now = jiff::Zoned::now().strftime("%H:%M:%S").to_string();
        match &self.bars {
            Some(bars) => {
                let _ = bars
                    .multi
                    .println(format!("{now} {}", crate::redact::mask(text)));
            }
            None => super::to_stderr(&format!("{now} {text}\n")),
        }
    }

    fn bar_message(&self, text: &str) {
        if let Some(bars) = &self.bars {
            let current = bars
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(bar) = current.as_ref() {
                bar.set_message(crate::redact::mask(text).into_owned());
            }
        }
    }

    fn new_bar(&self, text: &str) {
        if let Some(bars) = &self.bars {
            let mut current = bars
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(old) = current.take() {
                old.finish_and_clear();
            }
            let bar = bars.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed:>3}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message(crate::redact::mask(text).into_owned());
            *current = Some(bar);
        }
    }

    /// Clears any bar before the final summary.
    pub fn finish(&self) {
        if let Some(bars) = &self.bars
            && let Some(bar) = bars
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        {
            bar.finish_and_clear();
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

impl Reporter for Progress {
    fn report(&self, event: Event) {
        match event {
            Event::Stage { name, objects } => {
                self.line(&format!(
                    "{name} ({objects} object{})",
                    if objects == 1 { "" } else { "s" }
                ));
                self.new_bar(&name);
            }
            Event::Done { subject, action } => {
                self.line(&format!("  {action} {subject}"));
            }
            Event::Waiting { subject, status } => {
                if self.bars.is_some() {
                    self.bar_message(&format!("waiting for {subject}: {status}"));
                } else {
                    self.line(&format!("  waiting for {subject}: {status}"));
                }
            }
            Event::Ready {
                subject,
                ready,
                total,
            } => {
                self.line(&format!("  ready {ready}/{total} {subject}"));
                self.bar_message(&format!("ready {ready}/{total}"));
            }
            Event::Note(text) => self.line(&text),
        }
    }
}
