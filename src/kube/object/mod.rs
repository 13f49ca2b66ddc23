//! What plane knows about one object without asking the server: pure functions over JSON.

pub(crate) mod normalize;
pub(crate) mod owner;
pub(crate) mod readiness;
pub(crate) mod taken;
pub(crate) mod unchanged;

/// The field manager of every write plane makes.
pub const FIELD_MANAGER: &str = "plane";

/// The subject of an object reference.
pub fn subject(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}
