//! Handing bundles to the engines that run continuously, Argo CD and Flux, with plane's
//! guarantees: what they need added to the render, and the bundle's declared readiness in the
//! form each engine reads.

pub mod cel_export;
pub mod lua;
pub mod render;

use crate::cli::Engine;
use crate::values::Environment;

/// The environment inputs are read from when `engine` renders: Argo CD hands a plugin's
/// parameters over as `PARAM_<NAME>` and an application's environment as `ARGOCD_ENV_<NAME>`
/// (read in that order, then the plain name); elsewhere, the plain name.
#[derive(Debug, Clone, Copy)]
pub struct EngineEnvironment(pub Option<Engine>);

impl Environment for EngineEnvironment {
    fn get(&self, var: &str) -> Option<String> {
        let read = |name: &str| std::env::var(name).ok();
        match self.0 {
            Some(Engine::Argocd) => read(&format!("PARAM_{var}"))
                .or_else(|| read(&format!("ARGOCD_ENV_{var}")))
                .or_else(|| read(var)),
            Some(Engine::Flux) | None => read(var),
        }
    }

    fn name(&self, var: &str) -> String {
        match self.0 {
            Some(Engine::Argocd) => format!("ARGOCD_ENV_{var}"),
            Some(Engine::Flux) | None => var.to_owned(),
        }
    }
}
