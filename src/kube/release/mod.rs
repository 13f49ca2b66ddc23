//! One release's lifecycle: its live objects, plan, ownership, permissions, apply, prune,
//! removal, waits, inventory and lock. Everything plane writes goes through here.

pub(crate) mod ahead;
pub(crate) mod apply;
pub(crate) mod converge;
pub(crate) mod delete;
pub(crate) mod drift;
pub(crate) mod engine;
pub(crate) mod handover;
pub(crate) mod inventory;
pub(crate) mod latch;
pub(crate) mod lock;
pub(crate) mod namespaces;
pub(crate) mod ownership;
pub(crate) mod permissions;
pub(crate) mod plan;
pub(crate) mod platform;
pub(crate) mod preflight;
pub(crate) mod restore;
pub(crate) mod revisions;
pub(crate) mod ssa;
pub(crate) mod state;
pub(crate) mod tiers;
pub(crate) mod wait;
