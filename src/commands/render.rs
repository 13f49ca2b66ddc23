//! The render pipeline every command that renders shares: load the bundle, layer its values,
//! render. Problems of the arguments and of these steps are reported together.

use std::collections::BTreeSet;

use crate::bundle::images::{self, Mirrors};
use crate::bundle::objects::ingress_routes;
use crate::bundle::{self, Addon, Profile, RenderContext, Rendered, ValueSources};
use crate::error::{Error, Problem, Problems};
use crate::settings::RenderSettings;
use crate::values::{Origin, Values, ValuesPath};

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
    // A bundle with team instances is checked with two of them: a team render with itself and
    // one probe, a platform render with two probes. The probes do not depend on the render:
    // they render at once beside it.
    let probes: &[(&str, &str)] = match (&addon.manifest.instance, &settings.instance) {
        (None, _) => &[],
        (Some(_), Some(_)) => &PROBES[..1],
        (Some(_), None) => &PROBES,
    };
    let (rendered, probes) = std::thread::scope(|scope| {
        let probing = (!probes.is_empty()).then(|| {
            scope.spawn(|| {
                probes
                    .iter()
                    .map(|&(release, namespace)| {
                        let probe = render_as(
                            &addon,
                            settings,
                            Some(namespace),
                            Some(release),
                            on_template,
                        );
                        (namespace.to_owned(), probe)
                    })
                    .collect::<Vec<_>>()
            })
        });
        let rendered = render_as(
            &addon,
            settings,
            settings.instance.as_deref(),
            None,
            on_template,
        );
        let probes = probing.map_or_else(Vec::new, |probing| {
            probing
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (rendered, probes)
    });
    let rendered = match rendered {
        Ok(rendered) => rendered,
        Err(err) => return Err(with_earlier(problems, err)),
    };
    problems.into_result()?;
    if addon.manifest.instance.is_some() {
        let this = settings
            .instance
            .as_ref()
            .map(|namespace| (namespace.clone(), Ok(rendered.clone())));
        check_team_instances(&addon, this.into_iter().chain(probes).collect())?;
    }
    Ok(rendered)
}

/// The release and namespace of the two team instances a bundle's render is checked with.
const PROBES: [(&str, &str); 2] = [
    ("plane-probe-a", "plane-probe-a"),
    ("plane-probe-b", "plane-probe-b"),
];

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
    let mut values = bundle::layer_values(
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
    if settings.all_variants {
        switch_everything_on(addon, &mut values)?;
    }
    let policy = ImagePolicy::of(settings.profile.as_ref(), &values)?;
    let mut sources = images::mirror_values(
        &mut values,
        &addon.manifest.related_images,
        &policy.mirrors,
        &policy.origin,
    )
    .map_err(Error::input)?;
    let state_namespace = instance.unwrap_or(&settings.release.state_namespace);
    let mut rendered = bundle::render(
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
    )?;
    images::mirror_objects(&mut rendered.objects, &policy.mirrors, &mut sources);
    let related = &addon.manifest.related_images;
    rendered.images = images::collect(&rendered.objects, &values, related, &sources);
    let mut problems = related_problems(addon, &values);
    if let Some(why) = &policy.require_digests {
        problems.extend(images::require_digests(&rendered.images, why));
    }
    if !problems.is_empty() {
        return Err(Error::Input { problems });
    }
    Ok(rendered)
}

/// What a profile and the values say of images: the mirrors, and whether digests are required.
struct ImagePolicy {
    mirrors: Mirrors,
    /// Why every image must be pinned by digest, when it must.
    require_digests: Option<String>,
    /// The origin of a mirrored value.
    origin: Origin,
}

impl ImagePolicy {
    fn of(profile: Option<&Profile>, values: &Values) -> Result<Self, Error> {
        let (mirrors, origin) = match profile {
            Some(profile) => {
                let at = |source: &str| {
                    profile
                        .origin(&ValuesPath::root().key("registryMirrors").key(source))
                        .to_string()
                };
                let mirrors = Mirrors::new(&profile.spec.registry_mirrors, &at)
                    .map_err(|problems| Error::Input { problems })?;
                let origin = Origin::Derived {
                    from: format!(
                        "registryMirrors of profile {} ({})",
                        profile.name,
                        profile.origin(&ValuesPath::root().key("registryMirrors"))
                    ),
                };
                (mirrors, origin)
            }
            None => (
                Mirrors::default(),
                Origin::Derived {
                    from: "registryMirrors".to_owned(),
                },
            ),
        };
        let by_values = ValuesPath::root().key("global").key("requireDigests");
        let require_digests = match profile {
            Some(p) if p.spec.require_digests => Some(format!(
                "profile {} requires digests ({})",
                p.name,
                p.origin(&ValuesPath::root().key("requireDigests"))
            )),
            _ if values.get(&by_values) == Some(&serde_json::Value::Bool(true)) => Some(format!(
                "global.requireDigests is true ({})",
                values
                    .origin(&by_values)
                    .map_or_else(|| "-".to_owned(), ToString::to_string)
            )),
            _ => None,
        };
        Ok(Self {
            mirrors,
            require_digests,
            origin,
        })
    }
}

/// Each related image must name an image in the values.
fn related_problems(addon: &Addon, values: &Values) -> Vec<Problem> {
    addon
        .manifest
        .related_images
        .iter()
        .filter(|image| {
            ValuesPath::parse(&image.path)
                .ok()
                .and_then(|path| values.get(&path).and_then(images::image_of))
                .is_none()
        })
        .map(|image| {
            Problem::new(format!(
                "relatedImages: `{}` names no image in the values",
                image.path
            ))
            .at(format!("{} addon.yaml", addon.manifest.name))
            .hint("name a values path holding {repository, tag, digest} or an image string")
        })
        .collect()
}

/// `--all-variants`: every component's switch on.
fn switch_everything_on(addon: &Addon, values: &mut Values) -> Result<(), Error> {
    let origin = Origin::Derived {
        from: "--all-variants".to_owned(),
    };
    for component in &addon.manifest.components {
        if let Some(switch) = &component.enabled {
            let path = ValuesPath::parse(switch).map_err(|why| {
                Error::input(Problem::new(format!("switch {switch}")).because(why))
            })?;
            values
                .set(&path, serde_json::Value::Bool(true), &origin)
                .map_err(|why| {
                    Error::input(Problem::new(format!("cannot switch {switch} on")).because(why))
                })?;
        }
    }
    Ok(())
}

/// Two team instances of the bundle, with other names in other namespaces, must share nothing:
/// no object outside their namespace (each render refuses one) and no Ingress host and path.
/// A team render is held against one more instance; a platform render, against two, so that a
/// bundle that cannot host teams says so before any team tries.
fn check_team_instances(
    addon: &Addon,
    rendered: Vec<(String, Result<Rendered, Error>)>,
) -> Result<(), Error> {
    let mut problems = Problems::default();
    let mut instances: Vec<(String, Rendered)> = Vec::new();
    for (namespace, render) in rendered {
        match render {
            Ok(instance) => instances.push((namespace, instance)),
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
    let [first, second] = instances.as_slice() else {
        return Ok(());
    };
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
