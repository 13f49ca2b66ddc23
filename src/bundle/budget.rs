//! What one render may use. A bundle is untrusted input (`--addons-dir`, a Git repository an
//! engine renders): each budget bounds what a hostile or careless bundle can cost, and exceeding
//! one is bad input (exit 2) naming the budget, never a hang, a crash or gigabytes.

use std::fmt;
use std::time::Duration;

/// The budgets of a render, each raised with `--budget NAME=VALUE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderBudget {
    /// Wall time of the whole render (load, values, templates, checks).
    pub time: Duration,
    /// Address space of the process that renders.
    pub memory: u64,
    /// Stack of the rendering thread: how deep templates may recurse (macros calling macros).
    pub stack: u64,
    /// Bytes all templates may print together.
    pub output: u64,
    /// Objects a render may produce.
    pub objects: usize,
    /// Items one `range()` may produce, and so one loop over it.
    pub range: usize,
    /// Bytes of any one file of a bundle.
    pub file: u64,
}

impl Default for RenderBudget {
    /// Far above what the bundle plane ships needs (0.1 s, 43 objects, 0.5 MB of output, files under
    /// 40 KB), far below what hurts a laptop or a CI runner.
    fn default() -> Self {
        Self {
            time: Duration::from_secs(60),
            memory: 2 << 30,
            stack: 64 << 20,
            output: 64 << 20,
            objects: 5_000,
            range: 100_000,
            file: 16 << 20,
        }
    }
}

/// The budgets by name, with what each bounds: README's table and `--budget`'s help.
pub const NAMES: [(&str, &str); 7] = [
    ("time", "wall time of the render (e.g. 60s, 5m)"),
    ("memory", "address space of the render process (e.g. 2GiB)"),
    (
        "stack",
        "stack of the rendering thread: how deep templates recurse (e.g. 64MiB)",
    ),
    ("output", "bytes all templates print together (e.g. 64MiB)"),
    ("objects", "objects one render produces"),
    ("range", "items one range() produces"),
    ("file", "bytes of one file of a bundle (e.g. 16MiB)"),
];

impl RenderBudget {
    /// Sets the budget `NAME=VALUE` of a `--budget` argument.
    ///
    /// # Errors
    /// A phrase saying what is wrong: an unknown name, a malformed or zero value.
    pub fn set(&mut self, arg: &str) -> Result<(), String> {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| "write NAME=VALUE, e.g. --budget time=120s".to_owned())?;
        let value = value.trim();
        let count = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{value}` is not a positive whole number"))
        };
        match name.trim() {
            "time" => {
                self.time = humantime::parse_duration(value)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| format!("`{value}` is not a duration such as 90s or 5m"))?;
            }
            "memory" => self.memory = bytes(value)?,
            "stack" => self.stack = bytes(value)?,
            "output" => self.output = bytes(value)?,
            "file" => self.file = bytes(value)?,
            "objects" => self.objects = count()?,
            "range" => self.range = count()?,
            other => {
                let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "there is no budget `{other}` (there are: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// A size: a whole number of bytes, or with KiB, MiB or GiB (KB, MB, GB as the same).
fn bytes(text: &str) -> Result<u64, String> {
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let scale: u64 = match unit {
        "" | "B" => 1,
        "KiB" | "KB" | "K" | "Ki" => 1 << 10,
        "MiB" | "MB" | "M" | "Mi" => 1 << 20,
        "GiB" | "GB" | "G" | "Gi" => 1 << 30,
        _ => return Err(format!("`{text}`: the unit must be KiB, MiB or GiB")),
    };
    digits
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{text}` is not a positive size such as 64MiB"))
}

impl fmt::Display for RenderBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "time={}s memory={} stack={} output={} objects={} range={} file={}",
            self.time.as_secs(),
            crate::files::size(self.memory),
            crate::files::size(self.stack),
            crate::files::size(self.output),
            self.objects,
            self.range,
            crate::files::size(self.file)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_set_by_name_and_checked() {
        let mut budget = RenderBudget::default();
        budget.set("time=2m").unwrap();
        budget.set("memory=512MiB").unwrap();
        budget.set("objects=10").unwrap();
        assert_eq!(budget.time, Duration::from_secs(120));
        assert_eq!(budget.memory, 512 << 20);
        assert_eq!(budget.objects, 10);
        assert!(budget.set("objects=0").is_err());
        assert!(budget.set("time=0s").is_err());
        assert!(budget.set("memory=12XB").is_err());
        assert!(
            budget
                .set("nope=1")
                .unwrap_err()
                .contains("there are: time")
        );
        assert!(budget.set("objects").is_err());
    }
}
