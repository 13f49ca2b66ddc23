//! The render pipeline every command that renders shares: load the bundle, layer its values,
//! render. Problems of the arguments and of these steps are reported together.

use std::collections::BTreeSet;

use crate::bundle::objects::ingress_routes;
use crate::bundle::{self, Addon, RenderContext, Rendered, ValueSources};
use crate::error::{Error, Problem, Problems};
use crate::settings::RenderSettings;

/// What a render tells of each template it starts.
pub type OnTemplate = Option<&'static (dyn Fn(&str) + Sync)>;

/// Loads the bundle, layers its values and renders it in this process; for a bundle with team
/// instances, also checks that two of them never collide. What the render child runs
/// (`sandbox.rs`); `on_template` is told each template as it starts.
///
/// # Errors
/// Input errors from the arguments and from every step, each naming its origin.
pub fn render_here(settings: &RenderSettings, on_template: OnTemplate) -> Result<Rendered, Error> {
    let problems = settings.problems.clone();
    let addon = match bundle::load(&settings.sources, &settings.addon) {
        Ok(addon) => addon,
        Err(err) => return Err(with_earlier(problems, err)),
    };
    let rendered = match render_as(
        &addon,
        settings,
        settings.instance.as_deref(),
        None,
        on_template,
    ) {
        Ok(rendered) => rendered,
        Err(err) => return Err(with_earlier(problems, err)),
    };
    problems.into_result()?;
    if addon.manifest.instance.is_some() {
        check_team_instances(&addon, settings, &rendered, on_template)?;
    }
    Ok(rendered)
}

/// Layers the values and renders `addon` as the platform (`instance` `None`) or as a team
/// instance in that namespace, under `release` (else the settings' release).
fn render_as(
    addon: &Addon,
    settings: &RenderSettings,
    instance: Option<&str>,
    release: Option<&str>,
    on_template: OnTemplate,
) -> Result<Rendered, Error> {
    let env = crate::gitops::EngineEnvironment(settings.engine);
    // A probe of the platform's team instances takes the profile's values, not the user's: the
    // user's name the platform's namespaces.
    let probe_of_platform = settings.instance.is_none() && instance.is_some();
    let no_sets = [];
    let values = bundle::layer_values(
        addon,
        &ValueSources {
            profile: settings.profile.as_ref(),
            instance,
            files: if probe_of_platform {
                &[]
            } else {
                &settings.value_files
            },
            sets: if probe_of_platform {
                &no_sets
            } else {
                &settings.sets
            },
            raw_sets: if probe_of_platform {
                &[]
            } else {
                &settings.raw_sets
            },
            env: &env,
        },
    )?;
    let state_namespace = instance.unwrap_or(&settings.release.state_namespace);
    bundle::render(
        addon,
        &values,
        &RenderContext {
            release: release.unwrap_or(&settings.release.name),
            state_namespace,
            instance,
            profile: settings.profile.as_ref().map(|p| p.name.as_str()),
            shared: &settings.sources.templates,
            budget: &settings.budget,
            on_template,
        },
    )
}

/// Two team instances of the bundle, with other names in other namespaces, must share nothing:
/// no object outside their namespace (each render refuses one) and no Ingress host and path.
/// A team render is held against one more instance; a platform render, against two, so that a
/// bundle that cannot host teams says so before any team tries.
fn check_team_instances(
    addon: &Addon,
    settings: &RenderSettings,
    rendered: &Rendered,
    on_template: OnTemplate,
) -> Result<(), Error> {
    const PROBES: [(&str, &str); 2] = [
        ("plane-probe-a", "plane-probe-a"),
        ("plane-probe-b", "plane-probe-b"),
    ];
    let mut instances: Vec<(String, Rendered)> = Vec::new();
    if let Some(namespace) = &settings.instance {
        instances.push((namespace.clone(), rendered.clone()));
    }
    let mut problems = Problems::default();
    for (release, namespace) in PROBES.into_iter().take(2 - instances.len()) {
        match render_as(addon, settings, Some(namespace), Some(release), on_template) {
            Ok(probe) => instances.push((namespace.to_owned(), probe)),
            Err(err) => {
                problems.push(
                    Problem::new(format!(
                        "a team instance of {} (-n {namespace}) does not render apart from others",
                        addon.manifest.name
                    ))
                    .because("its render is refused; the problems follow")
                    .hint("team instances render only namespaced objects in their own namespace"),
                );
                problems.extend(err.problems().iter().cloned());
                return Err(problems.into_result().expect_err("a problem"));
            }
        }
    }
    let routes = |rendered: &Rendered| -> BTreeSet<(String, String, String)> {
        rendered
            .objects
            .iter()
            .filter(|o| o.id.kind == "Ingress")
            .flat_map(|o| {
                ingress_routes(&o.value)
                    .into_iter()
                    .map(|(h, p)| (o.id.to_string(), h, p))
            })
            .collect()
    };
    let (first, second) = (&instances[0], &instances[1]);
    for (subject, host, path) in routes(&first.1) {
        if let Some((other, ..)) = routes(&second.1)
            .into_iter()
            .find(|(_, h, p)| *h == host && *p == path)
        {
            problems.push(
                Problem::new(format!(
                    "two team instances of {} would serve the same route {host}{path}",
                    addon.manifest.name
                ))
                .at(subject)
                .because(format!(
                    "-n {} renders it, and so does {other} of -n {}",
                    first.0, second.0
                ))
                .hint("derive each instance's Ingress host or path from its namespace (`instance.namespace`)"),
            );
        }
    }
    problems.into_result()
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
