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
            Self::Disk(root) => {
                let read = jailed(root, rel).and_then(|path| read_text(&path, limit));
                match read {
                    Ok(text) => Ok(Some(text)),
                    Err(ReadRefusal::NotFound) => Ok(None),
                    Err(reason) => Err(ReadError {
                        path: self.display(rel),
                        reason,
                    }),
                }
            }
        }
    }

    /// The names of the folders directly under `rel` ("" for the top), sorted.
    pub fn folders(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = match self {
            Self::Embedded { dir, .. } => embedded_dir(dir, rel)
                .map(|d| d.dirs().filter_map(|sub| name_of(sub.path())).collect())
                .unwrap_or_default(),
            Self::Disk(root) => read_dir_names(&root.join(rel)),
        };
        names.sort();
        names
    }

    /// The paths (relative to the tree) of all files under `rel`, recursively, sorted. On disk
    /// the walk stays in the folder: it never follows a link to a folder, refuses a link that
    /// leads out of the tree and a name that is not UTF-8, and stops at [`WALK_DEPTH_MAX`]
    /// levels and [`WALK_ENTRIES_MAX`] entries.
    ///
    /// # Errors
    /// What the walk refused, naming the path.
    pub fn files(&self, rel: &str) -> Result<Vec<String>, ReadError> {
        let mut out = Vec::new();
        match self {
            Self::Embedded { dir, .. } => {
                if let Some(d) = embedded_dir(dir, rel) {
                    collect_embedded(d, &mut out);
                }
            }
            Self::Disk(root) => {
                // The folder itself must be inside: not `..`, not a link out.
                if !rel.is_empty() {
                    match jailed(root, rel) {
                        Ok(_) => {}
                        Err(ReadRefusal::NotFound) => return Ok(out),
                        Err(reason) => {
                            return Err(ReadError {
                                path: self.display(rel),
                                reason,
                            });
                        }
                    }
                    if std::fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.is_symlink()) {
                        return Err(ReadError {
                            path: self.display(rel),
                            reason: ReadRefusal::LinkedFolder,
                        });
                    }
                }
                let mut walk = Walk {
                    root,
                    real_root: None,
                    out: &mut out,
                    entries: 0,
                };
                walk.collect(&root.join(rel), 0)
                    .map_err(|(path, reason)| ReadError {
                        path: path.display().to_string(),
                        reason,
                    })?;
            }
        }
        out.sort();
        Ok(out)
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

/// How deep a walk of a bundle folder goes: far deeper than any bundle needs.
pub const WALK_DEPTH_MAX: usize = 16;
/// How many entries a walk of a bundle folder reads.
pub const WALK_ENTRIES_MAX: usize = 10_000;

/// A walk of a folder on disk that stays inside it.
struct Walk<'a> {
    root: &'a Path,
    real_root: Option<PathBuf>,
    out: &'a mut Vec<String>,
    entries: usize,
}

impl Walk<'_> {
    fn collect(&mut self, dir: &Path, depth: usize) -> Result<(), (PathBuf, ReadRefusal)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        if depth > WALK_DEPTH_MAX {
            return Err((
                dir.to_path_buf(),
                ReadRefusal::TooDeep {
                    max: WALK_DEPTH_MAX,
                },
            ));
        }
        for entry in entries.flatten() {
            self.entries += 1;
            let path = entry.path();
            if self.entries > WALK_ENTRIES_MAX {
                return Err((
                    path,
                    ReadRefusal::TooMany {
                        max: WALK_ENTRIES_MAX,
                    },
                ));
            }
            if entry.file_name().to_str().is_none() {
                return Err((path, ReadRefusal::NameNotUtf8));
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                self.collect(&path, depth + 1)?;
                continue;
            }
            if kind.is_symlink() {
                let real_root = if let Some(known) = &self.real_root {
                    known.clone()
                } else {
                    let found = self.root.canonicalize().map_err(|err| {
                        (self.root.to_path_buf(), ReadRefusal::Io(err.to_string()))
                    })?;
                    self.real_root = Some(found.clone());
                    found
                };
                match path.canonicalize() {
                    Ok(target) if !target.starts_with(&real_root) => {
                        return Err((path, ReadRefusal::OutsideRoot));
                    }
                    Ok(target) if target.is_dir() => {
                        return Err((path, ReadRefusal::LinkedFolder));
                    }
                    // A dangling link: reading it says so.
                    _ => {}
                }
            }
            if let Ok(rel) = path.strip_prefix(self.root) {
                self.out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
}

/// The real path of `rel` inside the folder `root`, which must lie in it once links are
/// resolved: a bundle reads nothing outside its folder. `rel` comes from plane or from the
/// bundle's own names (a component, a `file()` argument), so `..` and absolute paths are refused
/// before anything is resolved.
fn jailed(root: &Path, rel: &str) -> Result<PathBuf, ReadRefusal> {
    let relative = Path::new(rel);
    if relative.is_absolute()
        || relative.components().any(|c| {
            !matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
    {
        return Err(ReadRefusal::OutsideRoot);
    }
    let path = root.join(relative);
    if let Err(err) = std::fs::symlink_metadata(&path) {
        return Err(match err.kind() {
            std::io::ErrorKind::NotFound => ReadRefusal::NotFound,
            _ => ReadRefusal::Io(err.to_string()),
        });
    }
    let target = path.canonicalize().map_err(|err| match err.kind() {
        // A link to nothing.
        std::io::ErrorKind::NotFound => ReadRefusal::Io("it is a link to nothing".into()),
        _ => ReadRefusal::Io(err.to_string()),
    })?;
    let inside = root
        .canonicalize()
        .map_err(|err| ReadRefusal::Io(err.to_string()))?;
    if !target.starts_with(&inside) {
        return Err(ReadRefusal::OutsideRoot);
    }
    Ok(target)
}

/// The names of the folders directly in `dir` (not links to folders), UTF-8 names only.
fn read_dir_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect()
}

/// The three trees plane reads: bundles, shared templates and profiles.
#[derive(Debug, Clone)]
pub struct Sources {
    pub addons: Tree,
    pub templates: Tree,
    pub profiles: Tree,
    /// The largest file of a bundle plane reads (the render budget `file`).
    pub file_max: u64,
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
            file_max: BUNDLE_FILE_MAX,
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
