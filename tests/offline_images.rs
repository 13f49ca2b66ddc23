//! `plane images` against the renders themselves: every image of every profile's render with
//! every switch on, plus what KubeRay starts later; digests required and given; a registry
//! mirror that leaves no image on its source registry, in any object or operator setting.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{builtin, text};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> std::process::Output {
    let mut cmd = common::plane();
    cmd.args(args);
    cmd.output().expect("plane runs")
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The images of every container list in `value`, however deep (this test's own walk).
fn containers_images(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if ["containers", "initContainers", "ephemeralContainers"].contains(&key.as_str()) {
                    for item in child.as_array().into_iter().flatten() {
                        if let Some(image) = item["image"].as_str() {
                            out.insert(image.to_owned());
                        }
                    }
                }
                containers_images(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| containers_images(i, out)),
        _ => {}
    }
}

fn profiles() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("profiles"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".yaml")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// The component switches of datalayer-ray's addon.yaml.
fn switches() -> Vec<String> {
    let manifest: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("addons/datalayer-ray/addon.yaml")).unwrap(),
    )
    .unwrap();
    manifest["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["enabled"].as_str().map(str::to_owned))
        .collect()
}

fn images_of(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| i["image"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_image_of_every_profile_and_variant_is_listed() {
    let mut expected = BTreeSet::new();
    for profile in profiles() {
        let mut args = vec![
            "template".to_owned(),
            "datalayer-ray".to_owned(),
            "--profile".to_owned(),
            profile.clone(),
            "-o".to_owned(),
            "json".to_owned(),
        ];
        for switch in switches() {
            args.extend(["--set".to_owned(), format!("{switch}=true")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let render = json_of(&run(&args));
        containers_images(&render, &mut expected);
    }
    assert!(expected.len() >= 5, "{expected:?}");
    let listed = json_of(&run(&[
        "images",
        "datalayer-ray",
        "--all-profiles",
        "--all-variants",
        "-o",
        "json",
    ]));
    assert_eq!(images_of(&listed), expected);
    for image in listed.as_array().unwrap() {
        assert!(!image["values"].as_array().unwrap().is_empty(), "{image}");
        assert!(!image["profiles"].as_array().unwrap().is_empty(), "{image}");
    }
}

/// The image KubeRay starts Ray pods from, read from the bundle's values by this test.
fn ray_image() -> String {
    let values: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(root().join("addons/datalayer-ray/values.yaml")).unwrap(),
    )
    .unwrap();
    let image = &values["bootstrapRayCluster"]["image"];
    format!(
        "{}:{}",
        image["repository"].as_str().unwrap(),
        image["tag"].as_str().unwrap()
    )
}

/// Whether `plane images` of the bundle at `addons` (r-eastus: no bootstrap RayCluster, so no
/// Ray pod in the render) lists the Ray image KubeRay starts.
fn lists_the_ray_image(addons: &Path) -> bool {
    let listed = json_of(&run(&[
        "images",
        "datalayer-ray",
        "--addons-dir",
        addons.to_str().unwrap(),
        "--profiles-dir",
        root().join("profiles").to_str().unwrap(),
        "--profile",
        "r-eastus",
        "-o",
        "json",
    ]));
    listed
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["image"] == ray_image().as_str() && i["related"].is_string())
}

#[test]
fn the_images_an_operator_starts_later_are_listed_by_declaration() {
    let fixture = builtin("datalayer-ray");
    let addons = fixture.root().join("addons");
    assert!(lists_the_ray_image(&addons));
    // Without its relatedImages entry, the Ray image escapes the list: the check sees it.
    let manifest = fixture.addon_dir().join("addon.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let start = text.find("relatedImages:").unwrap();
    let end = start + text[start..].find("\n# What plane knows").unwrap();
    std::fs::write(&manifest, format!("{}{}", &text[..start], &text[end + 1..])).unwrap();
    assert!(!lists_the_ray_image(&addons));
}

#[test]
fn digests_are_required_by_name_and_carried_when_given() {
    let required = run(&[
        "template",
        "datalayer-ray",
        "--profile",
        "local",
        "--set",
        "global.requireDigests=true",
    ]);
    let stderr = text(&required.stderr);
    assert_eq!(required.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is pinned by a tag only"), "{stderr}");
    assert!(
        stderr.contains("kuberay.image (from ") && stderr.contains("values.yaml:"),
        "the values path and its origin: {stderr}"
    );
    assert!(required.stdout.is_empty());

    let listed = json_of(&run(&[
        "images",
        "datalayer-ray",
        "--profile",
        "local",
        "--all-variants",
        "-o",
        "json",
    ]));
    let digest = format!("sha256:{}", "ab".repeat(32));
    let mut args = vec![
        "template".to_owned(),
        "datalayer-ray".to_owned(),
        "--profile".to_owned(),
        "local".to_owned(),
        "--set".to_owned(),
        "global.requireDigests=true".to_owned(),
        "-o".to_owned(),
        "json".to_owned(),
    ];
    for image in listed.as_array().unwrap() {
        for site in image["values"].as_array().unwrap() {
            args.extend([
                "--set".to_owned(),
                format!("{}.digest={digest}", site["path"].as_str().unwrap()),
            ]);
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let render = json_of(&run(&args));
    let mut images = BTreeSet::new();
    containers_images(&render, &mut images);
    assert!(!images.is_empty());
    for image in images {
        assert!(image.ends_with(&format!("@{digest}")), "{image}");
    }
}

#[test]
fn a_mirror_leaves_no_image_on_its_source_registry() {
    let dir = tempfile::tempdir().unwrap();
    let local = std::fs::read_to_string(root().join("profiles/local.yaml")).unwrap();
    let profile = dir.path().join("airgap.yaml");
    std::fs::write(
        &profile,
        format!(
            "{local}\nregistryMirrors:\n  docker.io: registry.corp/hub\n  quay.io: registry.corp/quay\n"
        ),
    )
    .unwrap();
    let profile = profile.to_str().unwrap();
    let render = json_of(&run(&[
        "template",
        "datalayer-ray",
        "--profile",
        profile,
        "-o",
        "json",
    ]));
    let mut images = BTreeSet::new();
    containers_images(&render, &mut images);
    assert!(images.len() >= 5, "{images:?}");
    for image in &images {
        assert!(image.starts_with("registry.corp/"), "{image}");
    }
    let ray = images
        .iter()
        .find(|i| i.contains("/rayproject/ray:"))
        .expect("the RayCluster's containers are mirrored too");
    assert!(
        ray.starts_with("registry.corp/hub/rayproject/ray:"),
        "{ray}"
    );
    // No string anywhere (an operator's flag or environment, a custom resource) names a source
    // registry.
    let all = render.to_string();
    for source in [
        "quay.io/",
        "docker.io/",
        "\"rayproject/",
        "\"grafana/grafana",
        "\"fluent/",
    ] {
        assert!(!all.contains(source), "{source} is still in the render");
    }
    let listed = json_of(&run(&[
        "images",
        "datalayer-ray",
        "--profile",
        profile,
        "-o",
        "json",
    ]));
    for image in listed.as_array().unwrap() {
        assert!(image["source"].is_string(), "{image}");
    }
}
