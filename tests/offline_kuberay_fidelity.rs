//! The datalayer-ray bundle's KubeRay CRDs keep what the official KubeRay CRDs keep — every field,
//! every default outside pod templates, no stricter constraint, the same versions, names and
//! printer columns — checked against facts recorded from upstream in tests/fixtures/kuberay/.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde_json::Value;

const ADDON: &str = "datalayer-ray";

/// Constraints the bundle keeps stricter than upstream on purpose: (kind, version, path,
/// constraint, why). A stricter constraint refuses objects the official CRD accepts, so each one
/// needs a reason here; today there are none.
const STRICTER_ALLOWED: &[(&str, &str, &str, &str, &str)] = &[];

/// Schema keywords recorded as facts (as tests/fixtures/kuberay/record.py names them).
const KEYWORDS: &[(&str, &str)] = &[
    ("format", "format"),
    ("default", "default"),
    ("enum", "enum"),
    ("minimum", "minimum"),
    ("maximum", "maximum"),
    ("exclusiveMinimum", "exclusiveMinimum"),
    ("exclusiveMaximum", "exclusiveMaximum"),
    ("minLength", "minLength"),
    ("maxLength", "maxLength"),
    ("pattern", "pattern"),
    ("minItems", "minItems"),
    ("maxItems", "maxItems"),
    ("uniqueItems", "uniqueItems"),
    ("minProperties", "minProperties"),
    ("maxProperties", "maxProperties"),
    ("x-kubernetes-list-type", "list-type"),
    ("x-kubernetes-list-map-keys", "list-map-keys"),
    ("x-kubernetes-map-type", "map-type"),
    ("nullable", "nullable"),
    (
        "x-kubernetes-preserve-unknown-fields",
        "preserve-unknown-fields",
    ),
    ("x-kubernetes-embedded-resource", "embedded-resource"),
];
/// Lower bounds: the bundle is stricter when it has one the official lacks, or a larger one.
const LOWER_BOUNDS: &[&str] = &[
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];
/// Upper bounds: stricter when the official lacks it, or when the bundle's is smaller.
const UPPER_BOUNDS: &[&str] = &[
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

/// One field of a schema: its type (`int-or-string`, or `-` for none) and its facts by name; a
/// flag (`required`, `pod-template`, ...) is `true`, a CEL rule count is `cel`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Field {
    ty: String,
    facts: BTreeMap<String, Value>,
}

impl Field {
    fn has(&self, fact: &str) -> bool {
        self.facts
            .get(fact)
            .is_some_and(|v| v != &Value::Bool(false))
    }
}

/// Field path (`spec.workerGroupSpecs[].replicas`) → field.
type Fields = BTreeMap<String, Field>;

/// The upstream facts: fields by (kind, version), CRD facts by (kind, version or `*`, fact), and
/// printer columns by (kind, version), in order.
struct Official {
    release: String,
    fields: BTreeMap<(String, String), Fields>,
    crd: BTreeMap<(String, String, String), Value>,
    columns: BTreeMap<(String, String), Vec<Value>>,
}

impl Official {
    fn kinds(&self) -> BTreeSet<&str> {
        self.crd.keys().map(|(kind, _, _)| kind.as_str()).collect()
    }

    fn versions(&self, kind: &str) -> BTreeSet<&str> {
        self.crd
            .keys()
            .filter(|(k, v, fact)| k == kind && v != "*" && fact == "served")
            .map(|(_, v, _)| v.as_str())
            .collect()
    }

    fn fact(&self, kind: &str, version: &str, fact: &str) -> Option<&Value> {
        self.crd
            .get(&(kind.to_owned(), version.to_owned(), fact.to_owned()))
    }
}

fn fixture(name: &str) -> String {
    let path = common::fixtures().join("kuberay").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Data lines (not `#` comments) split at tabs, with their line numbers.
fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| (i + 1, line.split('\t').collect()))
}

fn json(text: &str, at: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{at}: {text:?} is not JSON: {e}"))
}

/// The facts, parsed once for every test.
static OFFICIAL: LazyLock<Official> = LazyLock::new(|| {
    let crds_text = fixture("crds.tsv");
    let release = crds_text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("# KubeRay "))
        .and_then(|rest| rest.split(':').next())
        .expect("crds.tsv starts with `# KubeRay TAG (COMMIT): ...`")
        .to_owned();
    let mut crd = BTreeMap::new();
    let mut columns: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for (n, cells) in rows(&crds_text) {
        let at = format!("crds.tsv:{n}");
        let [kind, version, fact, value] = cells[..] else {
            panic!("{at}: expected 4 cells, got {cells:?}");
        };
        let value = json(value, &at);
        if fact == "column" {
            columns
                .entry((kind.to_owned(), version.to_owned()))
                .or_default()
                .push(value);
        } else {
            crd.insert(
                (kind.to_owned(), version.to_owned(), fact.to_owned()),
                value,
            );
        }
    }
    let mut fields: BTreeMap<(String, String), Fields> = BTreeMap::new();
    for (n, cells) in rows(&fixture("crd-fields.tsv")) {
        let at = format!("crd-fields.tsv:{n}");
        let [kind, version, path, ty, rest @ ..] = &cells[..] else {
            panic!("{at}: expected at least 4 cells, got {cells:?}");
        };
        let facts = rest
            .iter()
            .map(|fact| match fact.split_once('=') {
                Some((name, value)) => (name.to_owned(), json(value, &at)),
                None => ((*fact).to_owned(), Value::Bool(true)),
            })
            .collect();
        let field = Field {
            ty: (*ty).to_owned(),
            facts,
        };
        fields
            .entry(((*kind).to_owned(), (*version).to_owned()))
            .or_default()
            .insert((*path).to_owned(), field);
    }
    Official {
        release,
        fields,
        crd,
        columns,
    }
});

/// The facts of one schema node, in the vocabulary of the recorded ones.
fn facts_of(schema: &Value, required: bool) -> Field {
    let ty = if schema["x-kubernetes-int-or-string"] == true {
        "int-or-string".to_owned()
    } else {
        schema["type"].as_str().unwrap_or("-").to_owned()
    };
    let mut facts: BTreeMap<String, Value> = KEYWORDS
        .iter()
        .filter_map(|(key, name)| Some(((*name).to_owned(), schema.get(key)?.clone())))
        .collect();
    if required {
        facts.insert("required".to_owned(), Value::Bool(true));
    }
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        facts.insert("cel".to_owned(), rules.len().into());
    }
    Field { ty, facts }
}

/// Every field of a schema by path, as record.py walks it: `.name`, `[]` items, `{}` map values.
fn flatten(schema: &Value, path: &str, required: bool, out: &mut Fields) {
    if !path.is_empty() {
        out.insert(path.to_owned(), facts_of(schema, required));
    }
    let needed: BTreeSet<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, child) in properties {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            flatten(child, &child_path, needed.contains(name.as_str()), out);
        }
    }
    if schema["items"].is_object() {
        flatten(&schema["items"], &format!("{path}[]"), false, out);
    }
    if schema["additionalProperties"].is_object() {
        flatten(
            &schema["additionalProperties"],
            &format!("{path}{{}}"),
            false,
            out,
        );
    }
}

/// The paths above `path`, nearest first (`a.b[].c` → `a.b[]`, `a.b`, `a`).
fn ancestors(path: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut end = path.len();
    while end > 0 {
        let head = &path[..end];
        end = if let Some(stripped) = head.strip_suffix("[]").or_else(|| head.strip_suffix("{}")) {
            stripped.len()
        } else {
            head.rfind('.').unwrap_or(0)
        };
        if end > 0 {
            found.push(&path[..end]);
        }
    }
    found
}

/// Whether the bundle keeps `path` although it does not type it: the nearest typed node above it
/// preserves unknown fields.
fn preserved(bundle: &Fields, path: &str) -> bool {
    ancestors(path)
        .into_iter()
        .find_map(|above| bundle.get(above))
        .is_some_and(|node| node.has("preserve-unknown-fields"))
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

/// What the bundle's field does that the official one does not: (constraint, detail) pairs, each
/// a problem unless allow-listed.
fn stricter(official: &Field, bundle: &Field) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    let theirs = |name: &str| official.facts.get(name);
    if let Some(values) = bundle.facts.get("enum") {
        let allowed: Vec<&Value> = values.as_array().into_iter().flatten().collect();
        match theirs("enum").and_then(Value::as_array) {
            None => found.push(("enum", format!("enum {values} (the official has none)"))),
            Some(official_values) => {
                let refused: Vec<&Value> = official_values
                    .iter()
                    .filter(|v| !allowed.contains(v))
                    .collect();
                if !refused.is_empty() {
                    found.push(("enum", format!("enum {values} refuses {refused:?}")));
                }
            }
        }
    }
    for &(bounds, tighter) in &[(LOWER_BOUNDS, true), (UPPER_BOUNDS, false)] {
        for &name in bounds {
            let Some(ours) = bundle.facts.get(name) else {
                continue;
            };
            let looser_or_same = theirs(name).is_some_and(|t| {
                if tighter {
                    number(ours) <= number(t)
                } else {
                    number(ours) >= number(t)
                }
            });
            if !looser_or_same {
                let official_text = theirs(name).map_or("none".to_owned(), ToString::to_string);
                found.push((
                    name_static(name),
                    format!("{name} {ours} (the official: {official_text})"),
                ));
            }
        }
    }
    for name in ["pattern", "format"] {
        if let Some(ours) = bundle.facts.get(name)
            && theirs(name) != Some(ours)
        {
            let official_text = theirs(name).map_or("none".to_owned(), ToString::to_string);
            found.push((
                name_static(name),
                format!("{name} {ours} (the official: {official_text})"),
            ));
        }
    }
    if bundle.has("uniqueItems") && !official.has("uniqueItems") {
        found.push((
            "uniqueItems",
            "uniqueItems (the official has none)".to_owned(),
        ));
    }
    if bundle.has("required") && !official.has("required") {
        found.push(("required", "required (the official is optional)".to_owned()));
    }
    let list_type = |f: &Field| f.facts.get("list-type").cloned();
    if let Some(ours) = list_type(bundle)
        && ours != "atomic"
        && (list_type(official).as_ref() != Some(&ours)
            || bundle.facts.get("list-map-keys") != theirs("list-map-keys"))
    {
        let keys = bundle
            .facts
            .get("list-map-keys")
            .map_or(String::new(), |k| format!(" keyed by {k}"));
        found.push((
            "list-type",
            format!(
                "x-kubernetes-list-type {ours}{keys} (the official: {})",
                list_type(official).map_or("none".to_owned(), |t| t.to_string())
            ),
        ));
    }
    let rules = |f: &Field| f.facts.get("cel").map_or(0, |n| n.as_u64().unwrap_or(0));
    if rules(bundle) > rules(official) {
        found.push((
            "cel",
            format!(
                "{} CEL rules (the official: {})",
                rules(bundle),
                rules(official)
            ),
        ));
    }
    found
}

fn name_static(name: &str) -> &'static str {
    LOWER_BOUNDS
        .iter()
        .chain(UPPER_BOUNDS)
        .chain(&["pattern", "format"])
        .find(|n| **n == name)
        .copied()
        .expect("a known constraint")
}

/// Everything the bundle's schema of (kind, version) loses or adds against the official one.
fn field_problems(kind: &str, version: &str, official: &Fields, bundle: &Fields) -> Vec<String> {
    let mut problems = Vec::new();
    let at = |path: &str| format!("{kind} {version} {path}");
    for (path, theirs) in official {
        let Some(ours) = bundle.get(path) else {
            if !preserved(bundle, path) {
                problems.push(format!(
                    "{}: missing (the official type is {}); the API server would prune it",
                    at(path),
                    theirs.ty
                ));
            } else if let Some(default) = theirs.facts.get("default") {
                problems.push(format!(
                    "{}: default {default} missing (only preserved, not typed)",
                    at(path)
                ));
            }
            continue;
        };
        if ours.ty != theirs.ty {
            problems.push(format!(
                "{}: type {} (the official: {})",
                at(path),
                ours.ty,
                theirs.ty
            ));
        }
        match (theirs.facts.get("default"), ours.facts.get("default")) {
            (Some(t), None) => problems.push(format!("{}: default {t} missing", at(path))),
            (Some(t), Some(o)) if t != o => {
                problems.push(format!("{}: default {o} (the official: {t})", at(path)));
            }
            (None, Some(o)) => {
                problems.push(format!("{}: default {o} (the official has none)", at(path)));
            }
            _ => {}
        }
        for flag in ["preserve-unknown-fields", "nullable", "embedded-resource"] {
            if theirs.has(flag) && !ours.has(flag) {
                problems.push(format!("{}: lacks {flag} (the official has it)", at(path)));
            }
        }
        for (constraint, detail) in stricter(theirs, ours) {
            let allowed = STRICTER_ALLOWED.iter().any(|(k, v, p, c, _)| {
                *k == kind && *v == version && *p == path && *c == constraint
            });
            if !allowed {
                problems.push(format!("{}: stricter than upstream: {detail}", at(path)));
            }
        }
    }
    // Pod templates are recorded at their root only; the bundle may type inside them.
    let pod_templates: Vec<&String> = official
        .iter()
        .filter(|(_, f)| f.has("pod-template"))
        .map(|(path, _)| path)
        .collect();
    for path in bundle.keys() {
        let in_pod_template = ancestors(path)
            .iter()
            .any(|above| pod_templates.iter().any(|t| t == above));
        if !official.contains_key(path) && !in_pod_template {
            problems.push(format!(
                "{}: typed here, but the official schema has no such field",
                at(path)
            ));
        }
    }
    problems
}

/// A printer column without the fields that default (priority 0) or do not change what is shown.
fn column(value: &Value) -> Value {
    let mut column = value.clone();
    if let Some(map) = column.as_object_mut() {
        map.remove("description");
        if map.get("priority") == Some(&Value::from(0)) {
            map.remove("priority");
        }
    }
    column
}

/// Everything the bundle's CustomResourceDefinition `crd` does differently from the official one.
fn crd_problems(official: &Official, crd: &Value) -> Vec<String> {
    let spec = &crd["spec"];
    let kind = spec["names"]["kind"].as_str().unwrap_or("?");
    if !official.kinds().contains(kind) {
        return vec![format!(
            "{kind}: not an official KubeRay {} kind",
            official.release
        )];
    }
    let mut problems = Vec::new();
    let differs = |what: &str, ours: &Value, version: &str, fact: &str| {
        let theirs = official.fact(kind, version, fact);
        (theirs != Some(ours)).then(|| {
            format!(
                "{kind} {what}: {ours} (the official: {})",
                theirs.map_or("none".to_owned(), ToString::to_string)
            )
        })
    };
    problems.extend(differs("group", &spec["group"], "*", "group"));
    problems.extend(differs("scope", &spec["scope"], "*", "scope"));
    for name in ["plural", "singular", "kind", "listKind"] {
        problems.extend(differs(
            &format!("names.{name}"),
            &spec["names"][name],
            "*",
            name,
        ));
    }
    for name in ["shortNames", "categories"] {
        let ours = spec["names"]
            .get(name)
            .cloned()
            .unwrap_or(Value::Array(Vec::new()));
        problems.extend(differs(&format!("names.{name}"), &ours, "*", name));
    }
    let strategy = spec["conversion"]["strategy"]
        .as_str()
        .unwrap_or("None")
        .into();
    problems.extend(differs("conversion strategy", &strategy, "*", "conversion"));

    let versions: Vec<&Value> = spec["versions"].as_array().into_iter().flatten().collect();
    let ours: BTreeSet<&str> = versions.iter().filter_map(|v| v["name"].as_str()).collect();
    let theirs = official.versions(kind);
    for missing in theirs.difference(&ours) {
        problems.push(format!(
            "{kind} {missing}: not served (the official serves it)"
        ));
    }
    for version in versions {
        let name = version["name"].as_str().unwrap_or("?");
        if !theirs.contains(name) {
            problems.push(format!(
                "{kind} {name}: served, but not an official version"
            ));
            continue;
        }
        for fact in ["served", "storage", "deprecated"] {
            let ours = version.get(fact).cloned().unwrap_or(Value::Bool(false));
            problems.extend(differs(&format!("{name} {fact}"), &ours, name, fact));
        }
        if official.fact(kind, name, "deprecationWarning").is_some() {
            problems.extend(differs(
                &format!("{name} deprecationWarning"),
                &version["deprecationWarning"],
                name,
                "deprecationWarning",
            ));
        }
        let subresources = version
            .get("subresources")
            .cloned()
            .unwrap_or(Value::Object(serde_json::Map::new()));
        problems.extend(differs(
            &format!("{name} subresources"),
            &subresources,
            name,
            "subresources",
        ));
        let our_columns: Vec<Value> = version["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(column)
            .collect();
        let their_columns: Vec<Value> = official
            .columns
            .get(&(kind.to_owned(), name.to_owned()))
            .into_iter()
            .flatten()
            .map(column)
            .collect();
        if our_columns != their_columns {
            problems.push(format!(
                "{kind} {name} printer columns: {}\n  the official: {}",
                Value::Array(our_columns),
                Value::Array(their_columns)
            ));
        }
        let mut fields = Fields::new();
        flatten(
            &version["schema"]["openAPIV3Schema"],
            "",
            false,
            &mut fields,
        );
        let official_fields = official
            .fields
            .get(&(kind.to_owned(), name.to_owned()))
            .unwrap_or_else(|| panic!("no recorded fields of {kind} {name}"));
        problems.extend(field_problems(kind, name, official_fields, &fields));
    }
    problems
}

/// The CRDs of `plane template datalayer-ray -o json` with `sets`.
fn rendered_crds(sets: &[&str]) -> Vec<Value> {
    let mut cmd = common::plane();
    cmd.args(["template", ADDON, "--profile", "local", "-o", "json"]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{sets:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("-o json prints JSON");
    list["items"]
        .as_array()
        .expect("a v1/List has items")
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition" && o["spec"]["group"] == "ray.io")
        .cloned()
        .collect()
}

/// The default render with RayCronJob on: all four CRDs.
static ALL_CRDS: LazyLock<Vec<Value>> =
    LazyLock::new(|| rendered_crds(&["kuberay.featureGates.RayCronJob=true"]));

fn kinds(crds: &[Value]) -> BTreeSet<String> {
    crds.iter()
        .filter_map(|crd| crd["spec"]["names"]["kind"].as_str().map(str::to_owned))
        .collect()
}

fn all_problems(crds: &[Value]) -> Vec<String> {
    crds.iter()
        .flat_map(|crd| crd_problems(&OFFICIAL, crd))
        .collect()
}

#[test]
fn the_facts_are_those_of_the_pinned_release() {
    let official = &*OFFICIAL;
    assert_eq!(
        official.release,
        "v1.7.0 (59d663aeec13760646da3db9c1cf8cfe883e30b7)"
    );
    assert_eq!(
        official.kinds(),
        BTreeSet::from(["RayCluster", "RayCronJob", "RayJob", "RayService"])
    );
    // A few facts the bundle once got wrong, so a broken recording cannot pass as an empty one.
    let field = |kind: &str, path: &str| {
        official.fields[&(kind.to_owned(), "v1".to_owned())]
            .get(path)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} v1 {path} not recorded"))
    };
    assert_eq!(field("RayService", "spec.suspend").ty, "boolean");
    assert_eq!(
        field(
            "RayService",
            "spec.upgradeStrategy.clusterUpgradeOptions.maxSurgePercent"
        )
        .facts["default"],
        100
    );
    assert!(field("RayCluster", "spec.headGroupSpec.template").has("pod-template"));
    assert_eq!(
        official.versions("RayJob"),
        BTreeSet::from(["v1", "v1alpha1"])
    );
}

#[test]
fn every_gate_combination_renders_crds_as_official() {
    // RayCronJob is the only value that changes which CRDs render (with installCRDs on).
    for (gate, expected) in [
        (false, vec!["RayCluster", "RayJob", "RayService"]),
        (
            true,
            vec!["RayCluster", "RayCronJob", "RayJob", "RayService"],
        ),
    ] {
        let crds = if gate {
            ALL_CRDS.clone()
        } else {
            rendered_crds(&["kuberay.featureGates.RayCronJob=false"])
        };
        assert_eq!(
            kinds(&crds),
            expected.into_iter().map(str::to_owned).collect(),
            "RayCronJob={gate}"
        );
        let problems = all_problems(&crds);
        assert!(
            problems.is_empty(),
            "RayCronJob={gate}: the bundle's CRDs differ from KubeRay {}:\n{}",
            OFFICIAL.release,
            problems.join("\n")
        );
    }
    assert!(rendered_crds(&["kuberay.installCRDs=false"]).is_empty());
}

fn version_mut<'a>(crds: &'a mut [Value], kind: &str, version: &str) -> &'a mut Value {
    crds.iter_mut()
        .find(|crd| crd["spec"]["names"]["kind"] == kind)
        .and_then(|crd| crd["spec"]["versions"].as_array_mut())
        .and_then(|versions| versions.iter_mut().find(|v| v["name"] == version))
        .unwrap_or_else(|| panic!("{kind} {version} not rendered"))
}

fn spec_schema<'a>(crds: &'a mut [Value], kind: &str, version: &str) -> &'a mut Value {
    &mut version_mut(crds, kind, version)["schema"]["openAPIV3Schema"]["properties"]["spec"]
}

fn assert_reported(problems: &[String], expected: &[&str]) {
    for want in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(want)),
            "not reported: {want}\nreported:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_check_reports_a_removed_field_and_a_changed_default() {
    let mut crds = ALL_CRDS.clone();
    let spec = spec_schema(&mut crds, "RayService", "v1");
    let removed = spec["properties"]
        .as_object_mut()
        .unwrap()
        .remove("suspend");
    assert!(
        removed.is_some(),
        "the bundle types RayService spec.suspend"
    );
    spec["properties"]["upgradeStrategy"]["properties"]["clusterUpgradeOptions"]["properties"]["maxSurgePercent"]
        ["default"] = 50.into();
    let problems = all_problems(&crds);
    assert_reported(
        &problems,
        &[
            "RayService v1 spec.suspend: missing",
            "RayService v1 spec.upgradeStrategy.clusterUpgradeOptions.maxSurgePercent: default 50 (the official: 100)",
        ],
    );
    assert_eq!(problems.len(), 2, "{problems:#?}");
}

#[test]
fn the_check_reports_stricter_constraints_columns_and_versions() {
    let mut crds = ALL_CRDS.clone();
    let spec = spec_schema(&mut crds, "RayCluster", "v1");
    let workers = &mut spec["properties"]["workerGroupSpecs"];
    workers["x-kubernetes-list-type"] = "map".into();
    workers["x-kubernetes-list-map-keys"] = serde_json::json!(["groupName"]);
    workers["items"]["properties"]["replicas"]["minimum"] = 0.into();
    spec["properties"]["headGroupSpec"]["properties"]["serviceType"]["enum"] =
        serde_json::json!(["ClusterIP"]);
    // A default only preserved, not typed, is lost.
    spec["properties"]["networkPolicy"]["properties"]
        .as_object_mut()
        .unwrap()
        .remove("mode");
    version_mut(&mut crds, "RayJob", "v1")["additionalPrinterColumns"][3]["type"] = "date".into();
    let cron = crds
        .iter_mut()
        .find(|crd| crd["spec"]["names"]["kind"] == "RayCronJob")
        .unwrap();
    cron["spec"]["names"]
        .as_object_mut()
        .unwrap()
        .remove("categories");
    let service = crds
        .iter_mut()
        .find(|crd| crd["spec"]["names"]["kind"] == "RayService")
        .unwrap();
    service["spec"]["versions"]
        .as_array_mut()
        .unwrap()
        .retain(|v| v["name"] == "v1");
    let problems = all_problems(&crds);
    assert_reported(
        &problems,
        &[
            "RayCluster v1 spec.workerGroupSpecs: stricter than upstream: x-kubernetes-list-type \"map\" keyed by [\"groupName\"]",
            "RayCluster v1 spec.workerGroupSpecs[].replicas: stricter than upstream: minimum 0",
            "RayCluster v1 spec.headGroupSpec.serviceType: stricter than upstream: enum",
            "RayCluster v1 spec.networkPolicy.mode: default \"DenyAll\" missing (only preserved",
            "RayJob v1 printer columns",
            "RayCronJob names.categories: []",
            "RayService v1alpha1: not served",
        ],
    );
    assert_eq!(problems.len(), 7, "{problems:#?}");
}
