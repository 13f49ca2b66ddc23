//! Where bundles, shared templates and profiles are read from: the binary itself or a folder.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

use crate::files::{ReadRefusal, read_text};

/// The largest file of a bundle plane reads (a template, a dashboard, a CRD): a file this size
/// renders objects far over what the API server takes, so past it something is wrong.
pub const BUNDLE_FILE_MAX: u64 = 16 * 1024 * 1024;

static ADDONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/addons");
static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");
static PROFILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/profiles");

/// A tree of text files: embedded in the binary or on disk.
#[derive(Debug, Clone)]
pub enum Tree {
    /// Embedded; `prefix` is how paths are shown (`addons/`).
    Embedded {
        dir: &'static Dir<'static>,
        prefix: &'static str,
    },
    Disk(PathBuf),
}

/// A problem reading from a tree.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {reason}")]
pub struct ReadError {
    pub path: String,
    pub reason: ReadRefusal,
}

impl Tree {
    /// How `rel` is shown to users: a repository path for embedded files, the real path on disk.
    pub fn display(&self, rel: &str) -> String {
        match self {
            Self::Embedded { prefix, .. } => format!("{prefix}{rel}"),
            Self::Disk(root) => root.join(rel).display().to_string(),
        }
    }

    /// Reads a text file of a bundle, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the file exists but cannot be read, is not a regular file, is larger than
    /// [`BUNDLE_FILE_MAX`] or is not UTF-8.
    pub fn read(&self, rel: &str) -> Result<Option<String>, ReadError> {
        self.read_limited(rel, BUNDLE_FILE_MAX)
    }

    /// Reads a text file of at most `limit` bytes, or `None` when it does not exist.
    ///
    /// # Errors
    /// When the file exists but cannot be read, is not a regular file, is larger than `limit`
    /// or is not UTF-8.
    pub fn read_limited(&self, rel: &str, limit: u64) -> Result<Option<String>, ReadError> {
        match self {
            Self::Embedded { dir, .. } => dir
                .get_file(rel)
                .map(|file| {
                    file.contents_utf8()
                        .map(str::to_owned)
                        .ok_or_else(|| ReadError {
                            path: self.display(rel),
                            reason: ReadRefusal::NotText,
                        })
                })
                .transpose(),
            Self::Disk(root) => match read_text(&root.join(rel), limit) {
                Ok(text) => Ok(Some(text)),
                Err(ReadRefusal::NotFound) => Ok(None),
                Err(reason) => Err(ReadError {
                    path: self.display(rel),
                    reason,
                }),
            },
        }
    }

    /// The names of the folders directly under `rel` ("" for the top), sorted.
    pub fn folders(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = match self {
            Self::Embedded { dir, .. } => embedded_dir(dir, rel)
                .map(|d| d.dirs().filter_map(|sub| name_of(sub.path())).collect())
                .unwrap_or_default(),
            Self::Disk(root) => read_dir_names(&root.join(rel), true),
        };
        names.sort();
        names
    }

    /// The paths (relative to the tree) of all files under `rel`, recursively, sorted.
    pub fn files(&self, rel: &str) -> Vec<String> {
        let mut out = Vec::new();
        match self {
            Self::Embedded { dir, .. } => {
                if let Some(d) = embedded_dir(dir, rel) {
                    collect_embedded(d, &mut out);
                }
            }
            Self::Disk(root) => collect_disk(root, &root.join(rel), &mut out),
        }
        out.sort();
        out
    }
}

fn embedded_dir(dir: &'static Dir<'static>, rel: &str) -> Option<&'static Dir<'static>> {
    if rel.is_empty() {
        Some(dir)
    } else {
        dir.get_dir(rel)
    }
}

fn name_of(path: &Path) -> Option<String> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_owned)
}

fn collect_embedded(dir: &'static Dir<'static>, out: &mut Vec<String>) {
    for file in dir.files() {
        out.push(file.path().to_string_lossy().replace('\\', "/"));
    }
    for sub in dir.dirs() {
        collect_embedded(sub, out);
    }
}

fn collect_disk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_disk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn read_dir_names(dir: &Path, dirs: bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir() == dirs)
        .filter_map(|e| name_of(&e.path()))
        .collect()
}

/// The three trees plane reads: bundles, shared templates and profiles.
#[derive(Debug, Clone)]
pub struct Sources {
    pub addons: Tree,
    pub templates: Tree,
    pub profiles: Tree,
}

impl Sources {
    /// Everything from the binary.
    pub fn embedded() -> Self {
        Self {
            addons: Tree::Embedded {
                dir: &ADDONS,
                prefix: "addons/",
            },
            templates: Tree::Embedded {
                dir: &TEMPLATES,
                prefix: "templates/",
            },
            profiles: Tree::Embedded {
                dir: &PROFILES,
                prefix: "profiles/",
            },
        }
    }

    /// Bundles from `addons_dir`; shared templates and profiles from its siblings `templates/`
    /// and `profiles/` when they exist, otherwise from the binary. `profiles_dir` wins for profiles.
    pub fn resolve(addons_dir: Option<&Path>, profiles_dir: Option<&Path>) -> Self {
        let mut sources = Self::embedded();
        if let Some(dir) = addons_dir {
            sources.addons = Tree::Disk(dir.to_path_buf());
            let parent = dir.parent().unwrap_or(Path::new("."));
            if parent.join("templates").is_dir() {
                sources.templates = Tree::Disk(parent.join("templates"));
            }
            if parent.join("profiles").is_dir() {
                sources.profiles = Tree::Disk(parent.join("profiles"));
            }
        }
        if let Some(dir) = profiles_dir {
            sources.profiles = Tree::Disk(dir.to_path_buf());
        }
        sources
    }
}
