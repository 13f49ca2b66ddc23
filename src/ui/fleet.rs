//! A fleet's progress on stderr: on a terminal one line per running profile, its latest step,
//! with warnings and errors kept above; otherwise each line whole, prefixed with its profile.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The lines of every profile of one fleet command.
pub struct FleetLines {
    multi: Option<MultiProgress>,
    quiet: bool,
    width: usize,
}

/// One profile's lines.
pub struct ProfileLine {
    multi: Option<MultiProgress>,
    bar: Option<ProgressBar>,
    prefix: String,
    quiet: bool,
}

impl FleetLines {
    pub(super) fn new(fancy: bool, quiet: bool, profiles: &[String]) -> Self {
        Self {
            multi: (fancy && !quiet)
                .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            quiet,
            width: profiles.iter().map(String::len).max().unwrap_or(0),
        }
    }

    /// The lines of `profile`, which starts now.
    pub fn start(&self, profile: &str) -> ProfileLine {
        let prefix = format!("{profile:<width$} │ ", width = self.width);
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}{wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(prefix.clone());
            bar.set_message("starting");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        ProfileLine {
            multi: self.multi.clone(),
            bar,
            prefix,
            quiet: self.quiet,
        }
    }

    /// A line of the fleet's own (a wave starts, a soak ends), never mixed into a profile's.
    pub fn note(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(crate::redact::mask(text));
            }
            None => super::to_stderr(&format!("{text}\n")),
        }
    }
}

impl ProfileLine {
    /// A line the profile's run printed on stderr. On a terminal, a step becomes the profile's
    /// line; a warning or an error (and what follows it) is printed above, prefixed.
    pub fn line(&self, text: &str, lasting: bool) {
        match (&self.bar, &self.multi) {
            (Some(bar), Some(multi)) => {
                if lasting {
                    let _ = multi.println(crate::redact::mask(&format!("{}{text}", self.prefix)));
                } else {
                    bar.set_message(crate::redact::mask(text).into_owned());
                }
            }
            _ if self.quiet && !lasting => {}
            _ => super::to_stderr(&format!("{}{text}\n", self.prefix)),
        }
    }

    /// The profile is done: its line says how it ended, and stays.
    pub fn finish(&self, result: &str) {
        match &self.bar {
            Some(bar) => bar.finish_with_message(crate::redact::mask(result).into_owned()),
            None if self.quiet => {}
            None => super::to_stderr(&format!("{}{result}\n", self.prefix)),
        }
    }
}
