//! The Lua health checks held to plane's own verdicts under a real Lua 5.1, with the libraries
//! Argo CD withholds taken away.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::*;
use crate::bundle::{AddonManifest, Declared};
use crate::kube::{Readiness, readiness};

fn declared(file: &str) -> Declared {
    let text = std::fs::read_to_string(file).unwrap();
    AddonManifest::parse(&text, file).unwrap().declared()
}

fn ray() -> Declared {
    declared(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/addons/datalayer-ray/addon.yaml"
    ))
}

fn widgets() -> Declared {
    declared(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/addons/widgets/addon.yaml"
    ))
}

/// Objects of one kind, each from the YAML of its fields after `apiVersion` and `kind`.
fn objects(api_version: &str, kind: &str, bodies: &[&str]) -> Vec<Value> {
    bodies
        .iter()
        .map(|body| {
            serde_yaml_ng::from_str(&format!("apiVersion: {api_version}\nkind: {kind}\n{body}"))
                .unwrap_or_else(|err| panic!("{body}: {err}"))
        })
        .collect()
}

/// A JSON value as the Lua table Argo CD hands a script: a null is left out.
fn lua_value(value: &Value) -> String {
    match value {
        Value::Null => "nil".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => format!("{:?}", n.as_f64().unwrap()),
        },
        Value::String(s) => lua_string(s),
        Value::Array(items) => format!(
            "{{{}}}",
            items.iter().map(lua_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(fields) => format!(
            "{{{}}}",
            fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("[{}] = {}", lua_string(k), lua_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Runs `script` under the real lua5.1 once per object, with only the libraries Argo CD
/// opens to a health check (no `string`, `math`, `io`, ...): the status and message of each.
fn run_lua(script: &str, objects: &[Value]) -> Vec<(String, String)> {
    let mut program = String::from(
        "local write, tostring, pcall = io.write, tostring, pcall\nlocal function health()\n",
    );
    program.push_str(script);
    program.push_str(
        "\nend\n\
         string, math, io, os, debug, require, loadstring, load, dofile, loadfile = nil\n\
         getmetatable(\"\").__index = nil\n\
         local function report()\n\
         \x20 local ok, hs = pcall(health)\n\
         \x20 if not ok then write(\"error\", \"\\0\", tostring(hs), \"\\0\") return end\n\
         \x20 write(tostring(hs.status), \"\\0\", tostring(hs.message or \"\"), \"\\0\")\n\
         end\n",
    );
    for object in objects {
        program.push_str("obj = ");
        program.push_str(&lua_value(object));
        program.push_str("\nreport()\n");
    }
    let mut child = Command::new("lua5.1")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lua5.1 runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "lua5.1: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let fields: Vec<&str> = text.split('\0').collect();
    fields
        .chunks_exact(2)
        .map(|pair| (pair[0].to_owned(), pair[1].to_owned()))
        .collect()
}

/// plane's verdict, as Argo CD's health status and message.
fn plane(object: &Value, declared: &Declared) -> (String, String) {
    match readiness(object, declared) {
        Readiness::Ready => ("Healthy".to_owned(), String::new()),
        Readiness::Progressing(message) => ("Progressing".to_owned(), message),
        Readiness::Failed(message) => ("Degraded".to_owned(), message),
    }
}

/// Asserts that the script of the objects' kind gives plane's verdict on each; how many.
fn agree(declared: &Declared, objects: &[Value]) -> usize {
    let rule = declared.rule_of(&objects[0]).unwrap();
    let script = health_script(rule).unwrap();
    let verdicts = run_lua(&script, objects);
    assert_eq!(verdicts.len(), objects.len(), "{verdicts:?}");
    for (object, lua) in objects.iter().zip(&verdicts) {
        assert_eq!(lua, &plane(object, declared), "{} of {object}", rule.kind);
    }
    objects.len()
}

const CONDITIONS_READY: &str =
    "{type: HeadPodReady, status: \"True\"}, {type: RayClusterProvisioned, status: \"True\"}";

#[test]
fn rayclusters_agree_with_plane() {
    let bodies = [
        "metadata: {generation: 1}".to_owned(),
        "metadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: \"False\"}]}".to_owned(),
        "metadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: \"True\"}, {type: RayClusterProvisioned, status: \"False\"}]}".to_owned(),
        format!("metadata: {{generation: 1}}\nstatus: {{observedGeneration: 1, conditions: [{CONDITIONS_READY}]}}"),
        "metadata: {generation: 1}\nstatus: {observedGeneration: 1, state: ready}".to_owned(),
        "metadata: {generation: 1}\nstatus: {state: suspended}".to_owned(),
        "metadata: {generation: 1}\nstatus: {observedGeneration: 1}".to_owned(),
        "metadata: {generation: 1}\nstatus: {conditions: [{type: ReplicaFailure, status: \"True\", reason: FailedCreateHeadPod, message: quota exceeded}]}".to_owned(),
        "status: {conditions: [{type: ReplicaFailure, status: \"True\", reason: FailedCreateHeadPod}]}".to_owned(),
        "status: {conditions: [{type: ReplicaFailure, status: \"True\"}]}".to_owned(),
        format!("status: {{conditions: [{{type: ReplicaFailure, status: \"False\"}}, {CONDITIONS_READY}]}}"),
        "metadata: {generation: 1}\nspec: {suspend: true}\nstatus: {conditions: [{type: RayClusterSuspended, status: \"False\"}]}".to_owned(),
        "metadata: {generation: 1}\nspec: {suspend: true}\nstatus: {conditions: [{type: RayClusterSuspended, status: \"True\"}]}".to_owned(),
        "spec: {suspend: true}\nstatus: {state: ready}".to_owned(),
        "spec: {suspend: \"yes\"}\nstatus: {state: ready}".to_owned(),
        // What KubeRay writes after a change: the workers the spec asks for, counted and ready.
        format!("metadata: {{generation: 2}}\nspec: {{workerGroupSpecs: [{{replicas: 1, minReplicas: 1, maxReplicas: 3}}]}}\nstatus: {{observedGeneration: 1, conditions: [{CONDITIONS_READY}], desiredWorkerReplicas: 1, readyWorkerReplicas: 1}}"),
        format!("metadata: {{generation: 3}}\nspec: {{workerGroupSpecs: [{{replicas: 1, minReplicas: 2, maxReplicas: 3}}]}}\nstatus: {{observedGeneration: 1, conditions: [{CONDITIONS_READY}], desiredWorkerReplicas: 1, readyWorkerReplicas: 1}}"),
        format!("spec: {{workerGroupSpecs: [{{replicas: 1, minReplicas: 2, maxReplicas: 3}}]}}\nstatus: {{conditions: [{CONDITIONS_READY}], desiredWorkerReplicas: 2, readyWorkerReplicas: 1}}"),
        format!("spec: {{workerGroupSpecs: [{{replicas: 1, minReplicas: 2, maxReplicas: 3}}]}}\nstatus: {{conditions: [{CONDITIONS_READY}], desiredWorkerReplicas: 2, readyWorkerReplicas: 2}}"),
        format!("spec: {{workerGroupSpecs: [{{replicas: 9, maxReplicas: 2, numOfHosts: 2}}, {{replicas: 4, suspend: true}}]}}\nstatus: {{conditions: [{CONDITIONS_READY}], desiredWorkerReplicas: 4, readyWorkerReplicas: 4}}"),
        format!("spec: {{workerGroupSpecs: [{{minReplicas: 2}}]}}\nstatus: {{conditions: [{CONDITIONS_READY}], desiredWorkerReplicas: 2, readyWorkerReplicas: 1}}"),
        "spec: {workerGroupSpecs: [{replicas: 0}]}\nstatus: {state: ready}".to_owned(),
        "spec: {workerGroupSpecs: [{replicas: 5, minReplicas: 10, maxReplicas: 3}, {replicas: 2, numOfHosts: 0}]}\nstatus: {state: ready, desiredWorkerReplicas: 10, readyWorkerReplicas: 12}".to_owned(),
        "spec: {workerGroupSpecs: [{replicas: 2}]}\nstatus: {state: ready, desiredWorkerReplicas: 2}".to_owned(),
        // An empty status, an empty list of conditions, the state in other words.
        "status: {}".to_owned(),
        "status: {conditions: [], state: ready}".to_owned(),
        "status: {conditions: [], state: prêt}".to_owned(),
        "status: {conditions: [{type: HeadPodReady, status: \"true\"}, {type: RayClusterProvisioned, status: \"True\"}]}".to_owned(),
        // What KubeRay never writes: plane's error texts, word for word.
        "status: broken".to_owned(),
        "status: {conditions: x}".to_owned(),
        "status: {conditions: {type: Ready}}".to_owned(),
        "status: {conditions: [1, x, [2]]}".to_owned(),
        "status: {state: 5}".to_owned(),
        "spec: {workerGroupSpecs: [{replicas: \"2\"}]}\nstatus: {state: ready}".to_owned(),
        "spec: {workerGroupSpecs: [{replicas: 1.5}]}\nstatus: {state: ready}".to_owned(),
        "spec: {workerGroupSpecs: [{replicas: 2}]}\nstatus: {state: ready, desiredWorkerReplicas: \"2\", readyWorkerReplicas: 2}".to_owned(),
        "spec: {workerGroupSpecs: {replicas: 2}}\nstatus: {state: ready}".to_owned(),
        "spec: {workerGroupSpecs: [{replicas: 2, numOfHosts: 1.5}]}\nstatus: {state: ready}".to_owned(),
        "spec: {workerGroupSpecs: [{replicas: 4611686018427387904, numOfHosts: 4}]}\nstatus: {state: ready}".to_owned(),
        format!("spec: {{workerGroupSpecs: [{{replicas: 2}}]}}\nstatus: {{conditions: [{CONDITIONS_READY}], desiredWorkerReplicas: 2, readyWorkerReplicas: 2.5}}"),
        "status: {conditions: [{type: ReplicaFailure, status: \"True\", reason: 5}]}".to_owned(),
        "status: {conditions: [{type: ReplicaFailure, status: \"True\", reason: \"quote \\\" and \\\\ and\\nline\", message: \"échec ✗\"}]}".to_owned(),
    ];
    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let n = agree(&ray(), &objects("ray.io/v1", "RayCluster", &bodies));
    assert_eq!(n, 42);
}

#[test]
fn rayjobs_agree_with_plane() {
    let bodies = [
        "status: {jobDeploymentStatus: Complete, jobStatus: SUCCEEDED}",
        "status: {jobDeploymentStatus: ValidationFailed, reason: ValidationFailed, message: entrypoint is empty}",
        "status: {jobDeploymentStatus: ValidationFailed}",
        "status: {jobDeploymentStatus: Complete, jobStatus: FAILED, message: exit 1}",
        "status: {jobDeploymentStatus: Complete, jobStatus: FAILED}",
        "status: {jobDeploymentStatus: Complete, jobStatus: STOPPED, reason: Stopped}",
        "status: {jobDeploymentStatus: Complete}",
        "status: {jobDeploymentStatus: Failed}",
        "status: {jobDeploymentStatus: Failed, reason: DeadlineExceeded, message: too slow}",
        "status: {jobDeploymentStatus: Running, jobStatus: RUNNING}",
        "status: {jobDeploymentStatus: Initializing}",
        "status: {}",
        "metadata: {generation: 4}\nstatus: {observedGeneration: 1, jobDeploymentStatus: Running}",
        "spec: {suspend: true}\nstatus: {jobDeploymentStatus: Suspended}",
        "status: {jobDeploymentStatus: Suspended}",
        "spec: {suspend: true}\nstatus: {jobDeploymentStatus: Complete, jobStatus: SUCCEEDED}",
        // Odd types: plane's error texts, word for word.
        "status: {jobDeploymentStatus: 5}",
        "status: {jobDeploymentStatus: Failed, reason: 7}",
        "status: x",
        "status: {jobDeploymentStatus: [Failed]}",
        "status: {jobDeploymentStatus: Complete, jobStatus: true}",
        "spec: {suspend: 1}\nstatus: {jobDeploymentStatus: Suspended}",
    ];
    let n = agree(&ray(), &objects("ray.io/v1", "RayJob", &bodies));
    assert_eq!(n, 22);
}

#[test]
fn rayservices_agree_with_plane() {
    let bodies = [
        "status: {conditions: [{type: Ready, status: \"True\"}]}",
        "status: {conditions: [{type: Ready, status: \"True\"}, {type: UpgradeInProgress, status: \"True\"}]}",
        "status: {conditions: [{type: Ready, status: \"True\"}, {type: UpgradeInProgress, status: \"False\"}]}",
        "status: {conditions: [{type: Ready, status: \"False\", reason: NoEndpoints}]}",
        "status: {conditions: [{type: Ready, status: \"False\", reason: NoEndpoints, message: no endpoints yet}]}",
        "status: {conditions: [{type: Ready}]}",
        "status: {serviceStatus: Running}",
        "status: {serviceStatus: Pending}",
        "status: {conditions: [], serviceStatus: Running}",
        "status: {}",
        "metadata: {name: s}",
        "status: {conditions: [{type: Ready, status: true}]}",
        // Odd types.
        "status: {conditions: ready}",
        "status: {conditions: [{type: Ready, status: \"False\", reason: [x]}]}",
        "status: [1]",
        "status: {conditions: [{type: Ready, status: \"False\", message: \"\"}]}",
    ];
    let n = agree(&ray(), &objects("ray.io/v1", "RayService", &bodies));
    assert_eq!(n, 16);
}

#[test]
fn widgets_agree_with_plane() {
    let bodies = [
        "metadata: {generation: 1}\nspec: {replicas: 2}",
        "metadata: {generation: 1}\nspec: {replicas: 2}\nstatus: {}",
        "metadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, phase: Running, readyReplicas: 2}",
        "metadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, phase: Running, readyReplicas: 2}",
        "metadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: \"1\", phase: Running, readyReplicas: 2}",
        "metadata: {generation: 2.5}\nspec: {replicas: 2}\nstatus: {observedGeneration: 1, phase: Running, readyReplicas: 2}",
        "spec: {replicas: 2}\nstatus: {phase: Running, readyReplicas: 1}",
        "spec: {replicas: 2}\nstatus: {phase: Running, readyReplicas: 3}",
        "spec: {replicas: 2}\nstatus: {phase: Failed, message: boom}",
        "spec: {replicas: 2}\nstatus: {phase: Failed}",
        "spec: {replicas: 2}\nstatus: {phase: Failed, message: \"échec ✗\"}",
        "spec: {replicas: 2}\nstatus: {phase: \"\"}",
        "spec: {replicas: 2}\nstatus: {phase: Pending, readyReplicas: 0}",
        // Missing and odd fields: plane's error texts, word for word.
        "status: {phase: Running, readyReplicas: 1}",
        "status: {phase: Pending}",
        "spec: {replicas: \"2\"}\nstatus: {phase: Running, readyReplicas: 2}",
        "spec: {replicas: 2}\nstatus: {phase: Running, readyReplicas: 1.5}",
        "spec: {replicas: 2}\nstatus: {phase: 3}",
        "spec: {replicas: 2}\nstatus: {phase: Failed, message: 5}",
        "spec: {replicas: 2}\nstatus: {phase: Running, readyReplicas: 2.0}",
        "spec: [2]\nstatus: {phase: Running}",
    ];
    let n = agree(&widgets(), &objects("example.com/v1", "Widget", &bodies));
    assert_eq!(n, 21);
}

/// A kind whose readiness is one expression, read as `current` (when it is not a message
/// probe) or as its message.
fn probe(expression: &str, as_message: bool) -> Declared {
    let quoted = serde_json::to_string(expression).unwrap();
    let readiness = if as_message {
        format!("current: 'false'\n      message: {quoted}")
    } else {
        format!("current: {quoted}")
    };
    serde_yaml_ng::from_str(&format!(
        "kinds:\n  - apiVersion: test.example/v1\n    kind: Gadget\n    readiness:\n      \
         observedGeneration: ignore\n      {readiness}\n"
    ))
    .unwrap_or_else(|err| panic!("{expression}: {err}"))
}

fn probe_objects() -> Vec<Value> {
    let mut objects = vec![
        json!({}),
        json!({
            "metadata": {"name": "w", "generation": 3, "labels": {"app": "x"}},
            "spec": {
                "replicas": 2, "ratio": 0.5, "big": 4_294_967_296_i64, "neg": -7,
                "name": "héllo wörld", "tags": ["a", "b"],
                "items": [{"n": 1}, {"n": 2, "skip": true}],
                "empty": [], "emptyMap": {}, "flag": true, "nested": {"a": {"b": 1}},
                "text": "A,B,,C", "num": "42", "float": "2.5e3", "huge": 1e300,
            },
            "status": {"phase": "Running", "ready": 1, "conditions": [{"type": "Ready", "status": "True"}]},
        }),
        json!({
            "metadata": {"labels": ["x"]},
            "spec": {"replicas": "2", "tags": "a,b", "items": 5, "name": 7, "flag": "yes",
                     "ratio": "x", "nested": [1, 2], "num": "-0012", "float": "inf"},
            "status": "broken",
        }),
    ];
    for object in &mut objects {
        object["apiVersion"] = json!("test.example/v1");
        object["kind"] = json!("Gadget");
    }
    objects
}

/// Expressions over every construct the translation knows, each read by plane and by the
/// script, as a boolean and as a message, over objects where it holds, fails or errs.
const PROBES: &[&str] = &[
    // Arithmetic: ints apart from doubles, overflow and division by zero as CEL has them.
    "1 + 2",
    "7 / 2",
    "-7 / 2",
    "7 % 3",
    "-7 % 3",
    "7 % -3",
    "1 / 0",
    "1 % 0",
    "spec.big * spec.big",
    "spec.big * spec.big * spec.big",
    "-spec.neg",
    "spec.neg - spec.big",
    "1.5 + 2.5",
    "string(1.5 + 2.5)",
    "0.1 + 0.2",
    "string(0.1 + 0.2)",
    "1e21 * 1.0",
    "string(1e21 * 1.0)",
    "1e-7 * 1.0",
    "string(spec.huge)",
    "spec.huge",
    "1.0 / 0.0",
    "string(-1.0 / 0.0)",
    "string(0.0 / 0.0)",
    "1.5 + 1",
    "1 + 1.5",
    "spec.ratio * 2.0",
    "spec.ratio * 2",
    "spec.ratio % 2.0",
    "-spec.ratio",
    "'a' + 1",
    "'a' - 'b'",
    "true + true",
    "null + 1",
    "[1] + [2.5, 'x']",
    "([1] + {'k': 1})[1]",
    "'a\"b\\\\c\\n\\t\\u0001' + 1",
    "spec.name + 1",
    "-'a'",
    "!1",
    "!spec.flag",
    // Comparisons and equality.
    "1 == 1.0",
    "1 < 1.5",
    "2.5 >= 2",
    "'a' < 'b'",
    "'é' > 'z'",
    "'a' < 1",
    "true < false",
    "true > false",
    "null == null",
    "null < null",
    "[1, 2] == [1, 2.0]",
    "[1, 2] != [1]",
    "{'a': 1} == {'a': 1.0}",
    "{'a': 1} == {'b': 1}",
    "[] == {}",
    "1 == 'a'",
    "spec.tags == ['a', 'b']",
    "spec.empty == []",
    "spec.emptyMap == {}",
    "optional.of(1) == optional.of(1.0)",
    "optional.none() == optional.none()",
    "spec.ratio < 1",
    "spec.replicas > 1",
    "0.0 / 0.0 < 1.0",
    "0.0 / 0.0 == 0.0 / 0.0",
    // Conversions.
    "string(true)",
    "string(spec.replicas)",
    "string(-0)",
    "string(null)",
    "string([1])",
    "int(spec.ratio)",
    "int(-2.7)",
    "int('42')",
    "int('-0')",
    "int('+5')",
    "int('')",
    "int('x')",
    "int('-')",
    "int('99999999999999999999')",
    "int('-9999999999999999999')",
    "int(spec.num)",
    "int(1e19)",
    "int(true)",
    "double(spec.replicas)",
    "double('1.5')",
    "double(spec.float)",
    "double('abc')",
    "double('')",
    "double('.5')",
    "double('-Infinity')",
    "dyn(1) + 1",
    // Strings.
    "size('héllo')",
    "size(spec.name)",
    "'héllo'.size()",
    "spec.name.size()",
    "size(1)",
    "size(null)",
    "'abc'.contains('b')",
    "'abc'.contains('')",
    "spec.name.contains('wö')",
    "'abc'.startsWith('ab')",
    "'abc'.startsWith('abcd')",
    "'abc'.endsWith('bc')",
    "'abc'.endsWith('')",
    "spec.name.contains(1)",
    "spec.name.upperAscii()",
    "'ÀB'.lowerAscii()",
    "spec.text.split(',').join('|')",
    "spec.name.split('').join('-')",
    "''.split(',').size()",
    "''.split('').size()",
    "'aXbXc'.replace('X', '--')",
    "'ab'.replace('', '-')",
    "''.replace('', '-')",
    "spec.tags.join(', ')",
    "spec.tags.join()",
    "[1, 2].join()",
    "[].join('-')",
    "spec.empty.join('-')",
    "metadata.labels.join()",
    "spec.tags.join(1)",
    // Lists and maps.
    "spec.items.map(i, i.n).sum()",
    "spec.items.filter(i, i.?skip.orValue(false)).size()",
    "spec.items.exists(i, i.n == 2)",
    "spec.items.all(i, i.n > 0)",
    "spec.items.exists_one(i, i.n > 1)",
    "spec.items.map(i, i.n > 1, i.n * 10)",
    "spec.items.map(i, i.n > 1, i.n * 10)[0]",
    "spec.items.map(i, i.n * 2)[1]",
    "spec.items[5]",
    "spec.items[-1]",
    "spec.items['a']",
    "spec.items[1.0].n",
    "spec.items[5.0]",
    "spec.items[-1.0]",
    "spec.tags[1.5]",
    "spec.tags[true]",
    "spec.tags[0] + spec.tags[1]",
    "metadata.labels['app']",
    "metadata.labels['nope']",
    "metadata.labels[1]",
    "metadata.labels[1.5]",
    "metadata.labels[true]",
    "metadata.labels[[1]]",
    "metadata.labels[?'nope'].orValue('none')",
    "metadata.labels[?'app'].orValue('none')",
    "metadata.?labels[?'app'].orValue('none')",
    "spec.?missing[0].orValue('none')",
    "spec.?missing[spec.nothere].orValue('short-circuited')",
    "spec.?tags[5].orValue('none')",
    "spec.?tags[1].value()",
    "metadata.labels.?app.orValue('x')",
    "has(metadata.labels.app)",
    "has(spec.nope)",
    "has(spec.tags.x)",
    "has(spec.name.x)",
    "has(spec.?tags.x)",
    "has(spec.?name.x)",
    "has(spec.?nope.x)",
    "has(spec.?nested.a)",
    "spec.name.x",
    "spec.nope",
    "spec.nested.a.b",
    "spec.?nested.a.b.orValue(0)",
    "spec.?nested.x.orValue(0)",
    "spec.?name.x",
    "spec.?tags.x.orValue('list')",
    "spec.?nope.?deeper.orValue(1)",
    "spec.?name.?x.orValue('y')",
    "spec.?tags.hasValue()",
    "spec.?nope",
    "spec.?replicas",
    "optional.of(1).value()",
    "optional.none().value()",
    "optional.none().orValue(3)",
    "optional.ofNonZeroValue('').hasValue()",
    "optional.ofNonZeroValue(spec.tags).hasValue()",
    "optional.none().or(optional.of(2)).value()",
    "optional.of(1).or(optional.of(2)).value()",
    "'x'.orValue(1)",
    "spec.name.hasValue()",
    "spec.replicas.value()",
    "'a' in spec.tags",
    "'z' in spec.tags",
    "2.0 in [1, 2]",
    "'app' in metadata.labels",
    "1 in metadata.labels",
    "1.5 in metadata.labels",
    "[1] in metadata.labels",
    "'a' in 'abc'",
    "'a' in spec.empty",
    "size(spec.empty)",
    "size(spec.emptyMap)",
    "size(spec.empty + [1])",
    "{'a': 1, 'b': 2}.size()",
    "{'a': 1}['a']",
    "{'a': 1, 'a': 2}",
    "{1.5: 1}",
    "{1: 'one', true: 'yes'}[1] + {1: 'one', true: 'yes'}[true]",
    "metadata.labels.map(k, k + '!').join()",
    "spec.nested.exists(k, k == 'a')",
    "[1, 2.5].sum()",
    "['a'].sum()",
    "[[1]].sum()",
    "[].sum()",
    "sum([1, 2])",
    "spec.name.sum()",
    "[1, spec.big * spec.big].size()",
    "spec.items.map(i, spec.tags.map(t, t + string(i.n))).size()",
    "spec.items.map(i, spec.tags.filter(t, t == 'a').size() + i.n).sum()",
    "spec.?name.optMap(n, n + '!').orValue('none')",
    "spec.?nope.optMap(n, n + '!').orValue('none')",
    "[1, 2, 3].filter(end, end > 1).map(v, v * 2).sum()",
    "[1, 2].exists(cel, cel == 2) && [3].all(obj, obj == 3)",
    // Logic: an error passed over when the other operand decides.
    "spec.flag && spec.nope",
    "spec.nope && false",
    "false && spec.nope",
    "spec.nope || true",
    "spec.nope || spec.other",
    "1 && true",
    "true && 1",
    "1 && false",
    "false || 'x'",
    "'x' || true",
    "(1 ? true : false) || false",
    "(1 ? true : false) && true",
    "true && true && spec.replicas > 1",
    "spec.nope || false || true",
    "false || false || spec.nope",
    "1 ? 2 : 3",
    "size(status) == 0 ? 'none' : status.phase",
    "spec.flag ? (spec.replicas > 1 ? 'many' : 'one') : 'off'",
    "[1, 'a', 2].exists(x, x > 1)",
    "[1, 'a'].exists(x, x > 1)",
    "['a', 1].all(x, x > 1)",
    "[1, 'a'].all(x, x > 0)",
    "[1, 2].all(x, x)",
    "[1, 2].exists(x, x)",
    "[1, 2].exists_one(x, x)",
    "[1, 2].filter(x, x)",
    "spec.tags.exists(t, t == 'b')",
    "spec.items.all(i, has(i.skip))",
    "!(spec.replicas > 1) || spec.flag",
    // Names.
    "kind",
    "apiVersion + '/' + kind",
    "nothere",
    "status",
    "spec.tags",
    "metadata.generation",
    "spec.ratio",
    "spec.flag",
    "null",
    "spec.nested",
    "optional.none()",
    "optional.of('text')",
];

#[test]
fn any_expression_agrees_with_plane() {
    let objects = probe_objects();
    let mut disagreements = Vec::new();
    let mut n = 0;
    for expression in PROBES {
        for as_message in [false, true] {
            let declared = probe(expression, as_message);
            let rule = &declared.kinds[0];
            let script = health_script(rule).unwrap_or_else(|err| panic!("{err}"));
            let verdicts = run_lua(&script, &objects);
            assert_eq!(
                verdicts.len(),
                objects.len(),
                "`{expression}`: {verdicts:?}"
            );
            for (i, (object, lua)) in objects.iter().zip(&verdicts).enumerate() {
                let plane = plane(object, &declared);
                if lua != &plane {
                    disagreements.push(format!(
                        "`{expression}` as {} over object {i}:\n  lua:   {lua:?}\n  plane: {plane:?}",
                        if as_message { "message" } else { "current" }
                    ));
                }
                n += 1;
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert_eq!(n, PROBES.len() * 2 * 3);
}

#[test]
fn constructs_without_a_translation_are_refused_by_name() {
    for (expression, construct) in [
        ("spec.name.matches('a+')", "the method `matches`"),
        ("matches(spec.name, 'a+')", "the function `matches`"),
        ("1u == spec.replicas", "the unsigned integer 1u"),
        ("b'abc' == spec.name", "a bytes literal"),
        ("type(spec) == map", "the function `type`"),
        ("spec.x == int", "the type `int` as a value"),
        ("[?spec.?x] == []", "optional list elements"),
        ("{?'a': spec.?x} == {}", "optional map entries"),
        ("spec.name.trim() == ''", "the method `trim`"),
        ("spec.n == 9007199254740993", "the integer 9007199254740993"),
        ("spec.name.charAt(0) == 'a'", "the method `charAt`"),
    ] {
        let declared = probe(expression, false);
        let err = health_script(&declared.kinds[0]).unwrap_err();
        assert!(
            err.contains(construct) && err.contains("Gadget") && err.contains("current"),
            "{expression}: {err}"
        );
    }
    let mut kind: KindRule = serde_yaml_ng::from_str(
        "apiVersion: test.example/v1\nkind: Gadget\nlet: {x: \"spec.name.matches('a')\"}\n\
         readiness: {current: 'x'}\n",
    )
    .unwrap();
    let err = health_script(&kind).unwrap_err();
    assert!(err.contains("`let` x") && err.contains("matches"), "{err}");
    kind.readiness = None;
    assert!(health_script(&kind).unwrap_err().contains("no readiness"));
}

#[test]
fn argocd_cm_keys_name_group_and_kind() {
    let mut rules = ray().kinds;
    rules.extend(widgets().kinds);
    rules.push(serde_yaml_ng::from_str("apiVersion: example.com/v1\nkind: Quiet\n").unwrap());
    rules.push(
        serde_yaml_ng::from_str("apiVersion: v1\nkind: Core\nreadiness: {current: 'true'}\n")
            .unwrap(),
    );
    let keys: Vec<String> = health_customizations(&rules)
        .unwrap()
        .into_iter()
        .map(|(key, script)| {
            assert!(script.contains("return cel.health(obj, v, bindings, {"));
            key
        })
        .collect();
    assert_eq!(
        keys,
        [
            "resource.customizations.health.ray.io_RayCluster",
            "resource.customizations.health.ray.io_RayJob",
            "resource.customizations.health.ray.io_RayService",
            "resource.customizations.health.example.com_Widget",
            "resource.customizations.health.Core",
        ]
    );
}

#[test]
fn scripts_carry_only_the_helpers_they_use() {
    let declared = ray();
    let job = health_script(declared.rule("ray.io/v1", "RayJob").unwrap()).unwrap();
    assert!(job.contains("function cel.join(") && job.contains("function cel.in_("));
    assert!(!job.contains("function cel.sum(") && !job.contains("function cel.exists("));
    let cluster = health_script(declared.rule("ray.io/v1", "RayCluster").unwrap()).unwrap();
    assert!(cluster.contains("function cel.sum(") && cluster.contains("function cel.exists("));
    for script in [&job, &cluster] {
        assert!(!script.contains("require(") && !script.contains("math."));
        assert!(!script.contains("string.") && !script.contains(":sub("));
    }
    // The harness holds a script to what Argo CD opens: no string library, no string methods.
    assert_eq!(
        run_lua("return { status = ('x'):rep(2) }", &[json!({})])[0].0,
        "error"
    );
    // Every helper of the runtime, loaded together, is valid Lua 5.1.
    let all = format!("{RUNTIME}\nreturn {{ status = \"Healthy\" }}");
    assert_eq!(
        run_lua(&all, &[json!({})]),
        [("Healthy".to_owned(), String::new())]
    );
}
