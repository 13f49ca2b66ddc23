//! The render pipeline every command that renders shares: load the bundle, layer its values,
//! render. Problems of the arguments and of these steps are reported together.

use crate::bundle::{self, RenderContext, Rendered, ValueSources};
use crate::error::{Error, Problems};
use crate::settings::RenderSettings;

/// Loads the bundle, layers its values and renders it.
///
/// # Errors
/// Input errors from the arguments and from every step, each naming its origin.
pub fn render(settings: &RenderSettings) -> Result<Rendered, Error> {
    let problems = settings.problems.clone();
    let addon = match bundle::load(&settings.sources, &settings.addon) {
        Ok(addon) => addon,
        Err(err) => return Err(with_earlier(problems, err)),
    };
    let env = |var: &str| std::env::var(var).ok();
    let values = match bundle::layer_values(
        &addon,
        &ValueSources {
            profile: settings.profile.as_ref(),
            files: &settings.value_files,
            sets: &settings.sets,
            env: &env,
        },
    ) {
        Ok(values) => values,
        Err(err) => return Err(with_earlier(problems, err)),
    };
    problems.into_result()?;
    bundle::render(
        &addon,
        &values,
        &RenderContext {
            release: &settings.release.name,
            state_namespace: &settings.release.state_namespace,
            profile: settings.profile.as_ref().map(|p| p.name.as_str()),
            shared: &settings.sources.templates,
        },
    )
}

/// Puts the problems of earlier steps before those of `err`.
fn with_earlier(mut problems: Problems, err: Error) -> Error {
    match err {
        Error::Input { problems: later } => {
            problems.extend(later);
            problems.into_result().err().unwrap_or(Error::Input {
                problems: Vec::new(),
            })
        }
        other @ (Error::Failed { .. } | Error::Interrupted { .. }) => other,
    }
}
