//! Discovery kept on disk per API server for a few minutes, as kubectl keeps its own: a second
//! command against the same server starts its reads without asking which kinds it serves.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::core::GroupVersion;
use kube::discovery::ApiResource;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::discovery::{GroupVersions, ServedKind};

/// How long a server's discovery is trusted without asking again. A kind it no longer serves
/// (or one it newly serves) is noticed before that: a miss asks the server.
pub const TTL: Duration = Duration::from_secs(5 * 60);
/// A cache file larger than this is not read (a big cluster's whole discovery is well under).
const LIMIT: u64 = 4 * 1024 * 1024;
/// The file format's version; another version is ignored.
const FORMAT: u32 = 1;

/// One server's discovery as the file keeps it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    format: u32,
    server: String,
    /// Seconds since the Unix epoch.
    saved_at: u64,
    /// apiVersion -> kind -> resource.
    group_versions: HashMap<String, HashMap<String, StoredKind>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKind {
    plural: String,
    namespaced: bool,
}

/// Where plane keeps its caches: `PLANE_CACHE_DIR`, else `$XDG_CACHE_HOME/plane`, else
/// `~/.cache/plane`; none without a home (no cache then). `PLANE_CACHE_DIR=off` turns it off.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PLANE_CACHE_DIR") {
        return (dir != "off" && !dir.is_empty()).then(|| PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("plane"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".cache").join("plane"))
}

/// The file of one server: named by its host and port, and keyed by its URL and the CA the
/// kubeconfig trusts, so a rebuilt cluster at the same address with a new CA starts afresh.
pub fn file_for(server: &str, root_certs: &[Vec<u8>]) -> Option<PathBuf> {
    let mut hash = Sha256::new();
    hash.update(server.as_bytes());
    for cert in root_certs {
        hash.update([0]);
        hash.update(cert);
    }
    let digest = hash.finalize();
    let key = crate::bundle::objects::hex(&digest[..8]);
    let host: String = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    Some(
        cache_dir()?
            .join("discovery")
            .join(format!("{host}-{key}.json")),
    )
}

/// The discovery `path` keeps for `server`, if it is younger than [`TTL`]; nothing when the file
/// is missing, old, unreadable or not plane's (a cache never fails a command).
pub fn load(path: &Path, server: &str) -> Option<GroupVersions> {
    let text = crate::files::read_text(path, LIMIT).ok()?;
    let stored: Stored = serde_json::from_str(&text).ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    let age = now.checked_sub(stored.saved_at)?;
    if stored.format != FORMAT || stored.server != server || age > TTL.as_secs() {
        return None;
    }
    Some(
        stored
            .group_versions
            .into_iter()
            .filter_map(|(api_version, kinds)| {
                let gv: GroupVersion = api_version.parse().ok()?;
                let kinds = kinds
                    .into_iter()
                    .map(|(kind, stored)| {
                        let gvk = gv.clone().with_kind(&kind);
                        let found = ServedKind {
                            resource: ApiResource::from_gvk_with_plural(&gvk, &stored.plural),
                            namespaced: stored.namespaced,
                            cached: true,
                        };
                        (kind, found)
                    })
                    .collect();
                Some((api_version, kinds))
            })
            .collect(),
    )
}

/// Keeps `group_versions` for `server` in `path`: written beside it and renamed, so a reader
/// never sees half a file; a failure is ignored (the next command asks the server).
pub fn save(path: &Path, server: &str, group_versions: &GroupVersions) {
    let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
        return;
    };
    let stored = Stored {
        format: FORMAT,
        server: server.to_owned(),
        saved_at: now.as_secs(),
        group_versions: group_versions
            .iter()
            .map(|(api_version, kinds)| {
                let kinds = kinds
                    .iter()
                    .map(|(kind, served)| {
                        let stored = StoredKind {
                            plural: served.resource.plural.clone(),
                            namespaced: served.namespaced,
                        };
                        (kind.clone(), stored)
                    })
                    .collect();
                (api_version.clone(), kinds)
            })
            .collect(),
    };
    let Some(dir) = path.parent() else { return };
    let Ok(text) = serde_json::to_vec(&stored) else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let beside = path.with_extension(format!("{}.tmp", std::process::id()));
    if std::fs::write(&beside, &text).is_ok() && std::fs::rename(&beside, path).is_err() {
        let _ = std::fs::remove_file(&beside);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds() -> GroupVersions {
        let served = ServedKind {
            resource: ApiResource {
                group: "apps".into(),
                version: "v1".into(),
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                plural: "deployments".into(),
            },
            namespaced: true,
            cached: false,
        };
        let config_map = ServedKind {
            resource: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                plural: "configmaps".into(),
            },
            namespaced: true,
            cached: false,
        };
        HashMap::from([
            (
                "apps/v1".to_owned(),
                HashMap::from([("Deployment".to_owned(), served)]),
            ),
            (
                "v1".to_owned(),
                HashMap::from([("ConfigMap".to_owned(), config_map)]),
            ),
            ("widgets.example.com/v1".to_owned(), HashMap::new()),
        ])
    }

    #[test]
    fn a_saved_discovery_loads_for_its_server_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d").join("server.json");
        save(&path, "https://127.0.0.1:6443", &kinds());
        let loaded = load(&path, "https://127.0.0.1:6443").expect("loads");
        let deployment = &loaded["apps/v1"]["Deployment"];
        assert_eq!(deployment.resource.plural, "deployments");
        assert_eq!(deployment.resource.group, "apps");
        assert!(deployment.namespaced && deployment.cached);
        let config_map = &loaded["v1"]["ConfigMap"].resource;
        assert_eq!(
            (config_map.group.as_str(), config_map.version.as_str()),
            ("", "v1")
        );
        assert_eq!(config_map.api_version, "v1");
        assert_eq!(deployment.resource.api_version, "apps/v1");
        assert!(loaded["widgets.example.com/v1"].is_empty());
        assert!(load(&path, "https://127.0.0.1:6444").is_none());
    }

    #[test]
    fn an_old_or_foreign_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.json");
        let old = serde_json::json!({
            "format": FORMAT, "server": "s", "savedAt": 1, "groupVersions": {},
        });
        std::fs::write(&path, old.to_string()).unwrap();
        assert!(load(&path, "s").is_none());
        std::fs::write(&path, "not json").unwrap();
        assert!(load(&path, "s").is_none());
        assert!(load(dir.path(), "s").is_none(), "a directory is not read");
    }

    #[test]
    fn the_file_names_the_host_and_differs_by_ca() {
        let a = file_for("https://10.0.0.1:6443", &[b"ca-1".to_vec()]);
        let b = file_for("https://10.0.0.1:6443", &[b"ca-2".to_vec()]);
        if let (Some(a), Some(b)) = (a, b) {
            assert_ne!(a, b);
            let name = a.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name.starts_with("10.0.0.1_6443-"), "{name}");
        }
    }
}
