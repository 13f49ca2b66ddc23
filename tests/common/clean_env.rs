//! The environment plane runs with in tests and benches: every variable plane reads as an input
//! (the bundles' declared inputs, the flags' environment fallbacks, the kubeconfig) removed, and
//! no colour. `tests/common/mod.rs` and `benches/cluster.rs` both include this file.

use std::process::Command;

/// Variables plane reads that a developer's shell may set: `DATALAYER_RUN_URL` (datalayer-ray),
/// `RUN_URL` and `WEB_REPLICAS` (the `minimal` fixture), `PLANE_ADDONS_DIR` and
/// `PLANE_PROFILES_DIR` (flag fallbacks), and `KUBECONFIG`.
const REMOVED: &[&str] = &[
    "DATALAYER_RUN_URL",
    "RUN_URL",
    "WEB_REPLICAS",
    "PLANE_ADDONS_DIR",
    "PLANE_PROFILES_DIR",
    "KUBECONFIG",
];

/// `cmd` without any of [`REMOVED`], with `NO_COLOR` set, and plane's caches (discovery per
/// server) in a folder of this process's, not the developer's home.
pub fn clean(mut cmd: Command) -> Command {
    for var in REMOVED {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd.env(
        "PLANE_CACHE_DIR",
        std::env::temp_dir().join(format!("plane-test-cache-{}", std::process::id())),
    );
    cmd
}
