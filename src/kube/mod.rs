//! The facade of everything that talks to the cluster: connect, plan, apply, prune, wait,
//! record releases, read status. Only this module sends requests; commands see only what it
//! exports here, and it reports progress through [`Reporter`].
//!
//! Inside, by role: `client` talks to any API server; `object` is pure knowledge of one
//! object; `release` is one release's lifecycle (every write); `status` reads for
//! `plane status`. `client` imports nothing else of `kube`, `object` does no IO, `release` and
//! `status` build on both.

mod client;
mod error;
mod object;
mod progress;
mod release;
mod status;

pub use client::Cluster;
pub use client::connect::{ConnectOptions, connect, contexts_reaching};
pub use error::KubeError;
pub use kube::Client;
pub use object::FIELD_MANAGER;
pub use object::owner::Owner;
pub use object::readiness::{Readiness, evaluate as readiness, pod_selector};
pub use progress::{Event, Reporter};
pub use release::ahead::{Reader, read_ahead};
pub use release::converge::{ConvergeOptions, converge, record_failure};
pub use release::delete::{
    CustomResourceCount, Removal, RemovalOptions, plan_removal, remove, verify_gone,
};
pub use release::engine::list_engine_releases;
pub use release::handover::hand_over;
pub use release::inventory::{
    EngineRun, Inventory, Phase, Release, Revision, delete_inventory, list_releases,
    read_inventory, write_inventory,
};
pub use release::latch::{Latch, latch};
pub use release::lock::Lock;
pub use release::ownership::{Ownership, find as find_ownership};
pub use release::permissions::{preflight_plan, preflight_removal, preflight_render};
pub use release::plan::{Action, Plan, PlannedObject, Purpose, plan};
pub use release::platform::{Platform, check_team_instance};
pub use release::restore::{Restored, restore};
pub use release::revisions::RECORD_BUDGET;
pub use release::tiers::{SYSTEM_NAMESPACES, check_platform_namespaces, check_team_namespace};
pub use release::wait::{Health, LiveObjects, WaitOptions};
pub use status::parts::{Found, ReleaseParts, find_parts, release_parts};
pub use status::prometheus::{ObjectUsage, PrometheusService, UsageByObject, usage};
pub use status::requests::Requests;
pub use status::view::{Count, ObjectState, Tally, ViewObjects, ViewSummary, list_view, summarize};
pub use status::{Gap, Listed};
