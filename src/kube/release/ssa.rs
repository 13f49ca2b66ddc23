//! How every write of a release is made: a server-side apply by plane's field manager, with
//! conflicts forced, so the bundle stays the source of truth (decided here, once).

use crate::kube::object::FIELD_MANAGER;

/// The parameters of every write.
pub fn apply_params() -> kube::api::PatchParams {
    kube::api::PatchParams::apply(FIELD_MANAGER).force()
}
