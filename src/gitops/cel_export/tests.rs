//! The Flux export held to plane's own verdicts: every fixture through a CEL evaluator.

use std::sync::{Arc, LazyLock};

use serde_json::{Value, json};

use super::*;
use crate::bundle::{AddonManifest, Declared};
use crate::kube::{Readiness, readiness};

fn load(file: &str) -> Declared {
    let text = std::fs::read_to_string(file).unwrap();
    AddonManifest::parse(&text, file).unwrap().declared()
}

static RAY: LazyLock<Declared> = LazyLock::new(|| {
    load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/addons/datalayer-ray/addon.yaml"
    ))
});

static WIDGETS: LazyLock<Declared> = LazyLock::new(|| {
    load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/addons/widgets/addon.yaml"
    ))
});

/// Flux's environment as the cel crate has it: the standard library, optional values and
/// the strings extension; no `sum()`.
static FLUX_ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| {
    let mut env = cel::Env::stdlib();
    env.add_extension(cel::extensions::strings).unwrap();
    Arc::new(env)
});

fn yaml(text: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap()
}

/// A kstatus status: Unknown is what Flux makes of an expression it cannot evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Current,
    Failed,
    InProgress,
    Unknown,
}

/// What Flux's StatusEvaluator says of `object`: the generation first, then `inProgress`,
/// `failed` and `current`, the variables being the object's top-level fields alone.
fn flux_status(check: &FluxCheck, object: &Value) -> Status {
    if let (Some(observed), Some(generation)) = (
        object["status"]["observedGeneration"].as_i64(),
        object["metadata"]["generation"].as_i64(),
    ) && observed != generation
    {
        return Status::InProgress;
    }
    let mut context = cel::Context::with_env(Arc::clone(&FLUX_ENV));
    for (key, value) in object.as_object().unwrap() {
        context.add_variable_from_value(key.clone(), crate::cel::to_cel(value));
    }
    let checks = [
        (check.in_progress.as_deref(), Status::InProgress),
        (check.failed.as_deref(), Status::Failed),
        (Some(check.current.as_str()), Status::Current),
    ];
    for (text, status) in checks {
        let Some(text) = text else { continue };
        let program = FLUX_ENV
            .compile(text)
            .unwrap_or_else(|err| panic!("{err}\n{text}"));
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => return status,
            Ok(cel::Value::Bool(false)) => {}
            _ => return Status::Unknown,
        }
    }
    Status::InProgress
}

fn plane_status(object: &Value, declared: &Declared) -> Status {
    match readiness(object, declared) {
        Readiness::Ready => Status::Current,
        Readiness::Failed(_) => Status::Failed,
        Readiness::Progressing(_) => Status::InProgress,
    }
}

/// One object to judge; `long_sum` when a list it sums is longer than [`SUM_BOUND`].
struct Case {
    name: String,
    object: Value,
    long_sum: bool,
}

fn case(api_version: &str, kind: &str, name: &str, body: &str) -> Case {
    Case {
        name: format!("{kind}: {name}"),
        object: yaml(&format!("apiVersion: {api_version}\nkind: {kind}\n{body}")),
        long_sum: false,
    }
}

const HEAD: &str = r#"{type: HeadPodReady, status: "True"}"#;
const PROVISIONED: &str = r#"{type: RayClusterProvisioned, status: "True"}"#;

fn ray_clusters() -> Vec<Case> {
    let c = |name: &str, body: &str| case("ray.io/v1", "RayCluster", name, body);
    let mut cases = vec![
        c(
            "head not ready",
            r#"metadata: {generation: 1}
spec: {headGroupSpec: {}}
status: {observedGeneration: 1, conditions: [{type: HeadPodReady, status: "False"}]}"#,
        ),
        c(
            "head ready, not provisioned",
            &format!(
                r#"metadata: {{generation: 1}}
spec: {{headGroupSpec: {{}}}}
status: {{observedGeneration: 1, conditions: [{HEAD}, {{type: RayClusterProvisioned, status: "False"}}]}}"#
            ),
        ),
        c(
            "head ready and provisioned",
            &format!(
                "metadata: {{generation: 1}}\nspec: {{headGroupSpec: {{}}}}\nstatus: {{observedGeneration: 1, conditions: [{HEAD}, {PROVISIONED}]}}"
            ),
        ),
        c(
            "state ready without conditions",
            "metadata: {generation: 1}\nspec: {headGroupSpec: {}}\nstatus: {observedGeneration: 1, state: ready}",
        ),
        c(
            "state suspended",
            "metadata: {generation: 1}\nspec: {headGroupSpec: {}}\nstatus: {state: suspended}",
        ),
        c(
            "neither conditions nor state",
            "metadata: {generation: 1}\nspec: {headGroupSpec: {}}\nstatus: {observedGeneration: 1}",
        ),
        c(
            "an empty status",
            "metadata: {generation: 1}\nspec: {headGroupSpec: {}}\nstatus: {}",
        ),
        c(
            "replica failure",
            r#"metadata: {generation: 1}
spec: {headGroupSpec: {}}
status: {conditions: [{type: ReplicaFailure, status: "True", reason: FailedCreateHeadPod, message: quota exceeded}]}"#,
        ),
        c(
            "replica failure cleared",
            &format!(
                r#"metadata: {{generation: 1}}
spec: {{headGroupSpec: {{}}}}
status: {{conditions: [{{type: ReplicaFailure, status: "False"}}, {HEAD}, {PROVISIONED}]}}"#
            ),
        ),
        c(
            "suspending",
            r#"metadata: {generation: 1}
spec: {suspend: true}
status: {conditions: [{type: RayClusterSuspended, status: "False"}]}"#,
        ),
        c(
            "suspended",
            r#"metadata: {generation: 1}
spec: {suspend: true}
status: {conditions: [{type: RayClusterSuspended, status: "True"}]}"#,
        ),
        c(
            "suspended but failing",
            r#"metadata: {generation: 1}
spec: {suspend: true}
status: {conditions: [{type: ReplicaFailure, status: "True"}, {type: RayClusterSuspended, status: "True"}]}"#,
        ),
        c(
            "conditions without a type",
            &format!(
                r#"metadata: {{generation: 1}}
spec: {{headGroupSpec: {{}}}}
status: {{conditions: [{{status: "True"}}, {HEAD}, {PROVISIONED}]}}"#
            ),
        ),
        c(
            "conditions that are not a list",
            "metadata: {generation: 1}\nspec: {headGroupSpec: {}}\nstatus: {conditions: broken}",
        ),
        c(
            "suspend as text",
            &format!(
                r#"metadata: {{generation: 1}}
spec: {{suspend: "true"}}
status: {{conditions: [{HEAD}, {PROVISIONED}]}}"#
            ),
        ),
        // Plane evaluates every `let` value first: a broken one leaves it progressing even
        // where the expression would not reach it.
        c(
            "suspended with replicas as text",
            r#"metadata: {generation: 1}
spec: {suspend: true, workerGroupSpecs: [{replicas: "2"}]}
status: {conditions: [{type: RayClusterSuspended, status: "True"}]}"#,
        ),
        c(
            "replicas as text",
            &format!(
                r#"metadata: {{generation: 1}}
spec: {{workerGroupSpecs: [{{replicas: "2"}}]}}
status: {{conditions: [{HEAD}, {PROVISIONED}], desiredWorkerReplicas: 2, readyWorkerReplicas: 2}}"#
            ),
        ),
        c(
            "counts as floats",
            &format!(
                r"metadata: {{generation: 1}}
spec: {{workerGroupSpecs: [{{replicas: 2}}]}}
status: {{conditions: [{HEAD}, {PROVISIONED}], desiredWorkerReplicas: 2.0, readyWorkerReplicas: 2.0}}"
            ),
        ),
        c(
            "observedGeneration as text",
            &format!(
                r#"metadata: {{generation: 2}}
spec: {{headGroupSpec: {{}}}}
status: {{observedGeneration: "1", conditions: [{HEAD}, {PROVISIONED}]}}"#
            ),
        ),
        c(
            "a status that is a list",
            "metadata: {generation: 1}\nspec: {headGroupSpec: {}}\nstatus: []",
        ),
        c(
            "ready without a spec",
            &format!(
                "metadata: {{generation: 1}}\nstatus: {{conditions: [{HEAD}, {PROVISIONED}]}}"
            ),
        ),
    ];
    // What KubeRay maintains after `up` changes a cluster (tests/offline_kuberay_readiness.rs),
    // both before it records the new generation and after.
    let sized = [
        (
            "{replicas: 1, minReplicas: 1, maxReplicas: 3}",
            "desiredWorkerReplicas: 1, readyWorkerReplicas: 1",
        ),
        (
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 1, readyWorkerReplicas: 1",
        ),
        (
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 1",
        ),
        (
            "{replicas: 1, minReplicas: 2, maxReplicas: 3}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 2",
        ),
        (
            "{replicas: 9, maxReplicas: 2, numOfHosts: 2}, {replicas: 4, suspend: true}",
            "desiredWorkerReplicas: 4, readyWorkerReplicas: 4",
        ),
        (
            "{minReplicas: 2}",
            "desiredWorkerReplicas: 2, readyWorkerReplicas: 1",
        ),
        ("{replicas: 0}", "state: ready"),
        (
            "{replicas: 1}",
            "desiredWorkerReplicas: 1, readyWorkerReplicas: 2",
        ),
    ];
    for (groups, counts) in sized {
        for observed in [1, 3] {
            cases.push(c(
                &format!("groups [{groups}], {counts}, generation 3 observed {observed}"),
                &format!(
                    "metadata: {{generation: 3}}\nspec: {{workerGroupSpecs: [{groups}]}}\nstatus: {{observedGeneration: {observed}, conditions: [{HEAD}, {PROVISIONED}], {counts}}}"
                ),
            ));
        }
    }
    for groups in [SUM_BOUND, SUM_BOUND + 1] {
        let spec = vec!["{replicas: 1}"; groups].join(", ");
        let mut many = c(
            &format!("{groups} worker groups"),
            &format!(
                "metadata: {{generation: 1}}\nspec: {{workerGroupSpecs: [{spec}]}}\nstatus: {{conditions: [{HEAD}, {PROVISIONED}], desiredWorkerReplicas: {groups}, readyWorkerReplicas: {groups}}}"
            ),
        );
        many.long_sum = groups > SUM_BOUND;
        cases.push(many);
    }
    cases
}

fn ray_jobs() -> Vec<Case> {
    let c = |name: &str, body: &str| case("ray.io/v1", "RayJob", name, body);
    vec![
        c(
            "succeeded",
            "status: {jobDeploymentStatus: Complete, jobStatus: SUCCEEDED}",
        ),
        c(
            "failed validation",
            "status: {jobDeploymentStatus: ValidationFailed, reason: ValidationFailed, message: entrypoint is empty}",
        ),
        c(
            "job failed",
            "status: {jobDeploymentStatus: Complete, jobStatus: FAILED, message: exit 1}",
        ),
        c(
            "job stopped",
            "status: {jobDeploymentStatus: Complete, jobStatus: STOPPED}",
        ),
        c("deployment failed", "status: {jobDeploymentStatus: Failed}"),
        c(
            "running",
            "status: {jobDeploymentStatus: Running, jobStatus: RUNNING}",
        ),
        c(
            "initializing",
            "status: {jobDeploymentStatus: Initializing}",
        ),
        c("an empty status", "status: {}"),
        c(
            "suspended as asked",
            "spec: {suspend: true}\nstatus: {jobDeploymentStatus: Suspended}",
        ),
        c(
            "suspended unasked",
            "spec: {suspend: false}\nstatus: {jobDeploymentStatus: Suspended}",
        ),
        c(
            "suspended without a spec",
            "status: {jobDeploymentStatus: Suspended}",
        ),
        c(
            "a deployment status that is a number",
            "status: {jobDeploymentStatus: 5}",
        ),
        // `why` joins a number: plane cannot evaluate it, so neither may Flux say Current.
        c(
            "succeeded with a numeric reason",
            "status: {jobDeploymentStatus: Complete, jobStatus: SUCCEEDED, reason: 3}",
        ),
        c(
            "succeeded before the new generation is recorded",
            "metadata: {generation: 2}\nstatus: {observedGeneration: 1, jobDeploymentStatus: Complete, jobStatus: SUCCEEDED}",
        ),
        c(
            "failed before the new generation is recorded",
            "metadata: {generation: 2}\nstatus: {observedGeneration: 1, jobDeploymentStatus: Failed}",
        ),
        c(
            "succeeded at the recorded generation",
            "metadata: {generation: 2}\nstatus: {observedGeneration: 2, jobDeploymentStatus: Complete, jobStatus: SUCCEEDED}",
        ),
    ]
}

fn ray_services() -> Vec<Case> {
    let c = |name: &str, body: &str| case("ray.io/v1", "RayService", name, body);
    vec![
        c(
            "ready",
            r#"status: {conditions: [{type: Ready, status: "True"}]}"#,
        ),
        c(
            "upgrading",
            r#"status: {conditions: [{type: Ready, status: "True"}, {type: UpgradeInProgress, status: "True"}]}"#,
        ),
        c(
            "upgrade done",
            r#"status: {conditions: [{type: Ready, status: "True"}, {type: UpgradeInProgress, status: "False"}]}"#,
        ),
        c(
            "no endpoints",
            r#"status: {conditions: [{type: Ready, status: "False", reason: NoEndpoints}]}"#,
        ),
        c("serviceStatus running", "status: {serviceStatus: Running}"),
        c("serviceStatus pending", "status: {serviceStatus: Pending}"),
        c(
            "a Ready condition before serviceStatus",
            r#"status: {serviceStatus: Running, conditions: [{type: Ready, status: "False"}]}"#,
        ),
        c("an empty status", "status: {}"),
        c(
            "conditions that are not a list",
            "status: {conditions: 7, serviceStatus: Running}",
        ),
        c(
            "ready before the new generation is recorded",
            r#"metadata: {generation: 4}
status: {observedGeneration: 3, conditions: [{type: Ready, status: "True"}]}"#,
        ),
    ]
}

fn widgets() -> Vec<Case> {
    let c = |name: &str, body: &str| case("example.com/v1", "Widget", name, body);
    vec![
        c(
            "running, all ready",
            "metadata: {generation: 2}\nspec: {replicas: 3}\nstatus: {observedGeneration: 2, phase: Running, readyReplicas: 3}",
        ),
        c(
            "running, some ready",
            "metadata: {generation: 2}\nspec: {replicas: 3}\nstatus: {observedGeneration: 2, phase: Running, readyReplicas: 2}",
        ),
        c(
            "failed",
            "metadata: {generation: 2}\nspec: {replicas: 3}\nstatus: {observedGeneration: 2, phase: Failed, message: no engine}",
        ),
        c(
            "failed with replicas ready",
            "spec: {replicas: 1}\nstatus: {phase: Failed, readyReplicas: 5}",
        ),
        c("pending", "spec: {replicas: 3}\nstatus: {phase: Pending}"),
        c("an empty status", "spec: {replicas: 3}\nstatus: {}"),
        c(
            "an old generation",
            "metadata: {generation: 3}\nspec: {replicas: 3}\nstatus: {observedGeneration: 2, phase: Running, readyReplicas: 3}",
        ),
        c(
            "failed at an old generation",
            "metadata: {generation: 3}\nspec: {replicas: 3}\nstatus: {observedGeneration: 2, phase: Failed}",
        ),
        c(
            "observedGeneration as text",
            "metadata: {generation: 3}\nspec: {replicas: 3}\nstatus: {observedGeneration: '2', phase: Running, readyReplicas: 3}",
        ),
        c(
            "ready replicas as text",
            "spec: {replicas: 3}\nstatus: {phase: Running, readyReplicas: '3'}",
        ),
        c(
            "running without a spec",
            "status: {phase: Running, readyReplicas: 3}",
        ),
        c(
            "a numeric phase",
            "spec: {replicas: 3}\nstatus: {phase: 7, readyReplicas: 3}",
        ),
    ]
}

/// Every case, with the declarations that judge it.
fn all_cases() -> Vec<(&'static Declared, Case)> {
    let ray = ray_clusters()
        .into_iter()
        .chain(ray_jobs())
        .chain(ray_services())
        .map(|c| (&*RAY, c));
    ray.chain(widgets().into_iter().map(|c| (&*WIDGETS, c)))
        .collect()
}

/// How the verdicts compare.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    /// Flux says what plane says.
    same: usize,
    /// Flux cannot evaluate (Unknown) where plane says progressing: both wait.
    unknown_while_progressing: usize,
    /// Flux waits on a generation plane ignores, where plane is ready or failed.
    generation: usize,
    /// Flux cannot add up a list plane sums, where plane is ready or failed.
    long_sum: usize,
    /// Flux cannot read a field the object lacks, where plane is ready or failed.
    missing_field: usize,
}

#[test]
fn flux_gives_planes_verdicts_but_where_its_caveats_say() {
    let mut tally = Tally::default();
    for (declared, case) in all_cases() {
        let rule = declared.rule_of(&case.object).unwrap();
        let check = flux_check(rule).unwrap();
        let caveats = flux_caveats(rule);
        let plane = plane_status(&case.object, declared);
        let flux = flux_status(&check, &case.object);
        let why = format!("{}: plane {plane:?}, Flux {flux:?}", case.name);
        let generation_differs = matches!(
            (
                case.object["status"]["observedGeneration"].as_i64(),
                case.object["metadata"]["generation"].as_i64(),
            ),
            (Some(observed), Some(generation)) if observed != generation
        );
        let documented = |words: &str| {
            assert!(
                caveats.iter().any(|c| c.contains(words)),
                "{why}: no caveat says `{words}`: {caveats:?}"
            );
            plane != Status::InProgress
        };
        if generation_differs
            && rule.readiness.as_ref().unwrap().observed_generation == Generation::Ignore
        {
            assert_eq!(flux, Status::InProgress, "{why}");
            if documented("observedGeneration: ignore") {
                tally.generation += 1;
            } else {
                tally.same += 1;
            }
        } else if flux == Status::Unknown
            && let Some(field) = ["spec", "status"].into_iter().find(|field| {
                case.object.get(field).is_none()
                    && caveats
                        .iter()
                        .any(|c| c.contains(&format!("without `{field}`")))
            })
        {
            if documented(&format!("without `{field}`")) {
                tally.missing_field += 1;
            } else {
                tally.unknown_while_progressing += 1;
            }
        } else if case.long_sum {
            assert_eq!(flux, Status::Unknown, "{why}");
            if documented("sum()") {
                tally.long_sum += 1;
            } else {
                tally.unknown_while_progressing += 1;
            }
        } else if flux == plane {
            tally.same += 1;
        } else {
            assert_eq!(
                (plane, flux),
                (Status::InProgress, Status::Unknown),
                "{why}"
            );
            tally.unknown_while_progressing += 1;
        }
    }
    assert_eq!(
        tally,
        Tally {
            same: 59,
            unknown_while_progressing: 8,
            generation: 8,
            long_sum: 1,
            missing_field: 1,
        }
    );
}

fn plain(source: &str) -> String {
    let expression = Expression::compile(source).unwrap();
    Printer::plain().top(expression.ast()).unwrap().text
}

/// Whether `a` and `b` evaluate alike over `object`: the same value, or both an error.
fn same_value(a: &Expression, b: &Expression, object: &Value, bindings: &[(String, Expression)]) {
    assert_eq!(
        a.json_of(object, bindings).ok(),
        b.json_of(object, bindings).ok(),
        "`{}` and `{}` over {object}",
        a.text(),
        b.text()
    );
}

#[test]
fn printed_cel_reads_back_as_written() {
    let object = json!({"metadata": {"name": "w", "labels": {"a-b": "c"}},
        "spec": {"size": 3, "items": [1, 2, 3], "in": 5}, "status": {"phase": "Running"}});
    let cases = [
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("1 - 2 - 3", "1 - 2 - 3"),
        ("10 / (4 / 2) % 3", "10 / (4 / 2) % 3"),
        ("!(true && false) || false", "!(true && false) || false"),
        ("-(1 + 2)", "-(1 + 2)"),
        ("-(-1)", "-(-1)"),
        ("!!true", "true"),
        ("(true ? 1 : 2) + 3", "(true ? 1 : 2) + 3"),
        (
            "(true ? false : true) ? 1 : 2",
            "(true ? false : true) ? 1 : 2",
        ),
        ("true ? 1 : false ? 2 : 3", "true ? 1 : false ? 2 : 3"),
        ("true ? (false ? 1 : 2) : 3", "true ? (false ? 1 : 2) : 3"),
        ("1 < 2 == true", "1 < 2 == true"),
        ("true == (1 < 2)", "true == (1 < 2)"),
        (
            "2 in [1, 2] && 'size' in spec",
            "2 in [1, 2] && 'size' in spec",
        ),
        (
            "-7.0 + -2.5 * 1e21 > 0.0 && -7 < 0",
            "-7.0 + -2.5 * 1e21 > 0.0 && -7 < 0",
        ),
        ("0.1 + 2.0 + 1.5e-7", "0.1 + 2.0 + 1.5e-7"),
        ("42u + 1u == 43u", "42u + 1u == 43u"),
        (
            r#"'it\'s "quoted"\n\t\\ é' + "x\u0007""#,
            r#"'it\'s "quoted"\n\t\\ é' + 'x\u0007'"#,
        ),
        (
            r"b'\x00\xffa\'b' == b'\x00\xffa\'b'",
            r"b'\x00\xffa\'b' == b'\x00\xffa\'b'",
        ),
        ("null == null", "null == null"),
        (
            "spec.items.all(x, x > 0) && spec.items.exists(x, x > 2) && spec.items.exists_one(x, x == 1)",
            "spec.items.all(x, x > 0) && spec.items.exists(x, x > 2) && spec.items.exists_one(x, x == 1)",
        ),
        (
            "spec.items.existsOne(x, x == 1)",
            "spec.items.exists_one(x, x == 1)",
        ),
        (
            "spec.items.map(x, x * 2).filter(y, y > 2).map(z, z > 4, z - 1)",
            "spec.items.map(x, x * 2).filter(y, y > 2).map(z, z > 4, z - 1)",
        ),
        ("spec.items.map(x, true, x)", "spec.items.filter(x, true)"),
        (
            "[[1], [2]].exists(l, l.all(x, x > 0))",
            "[[1], [2]].exists(l, l.all(x, x > 0))",
        ),
        (
            "status.?phase.orValue('') == 'Running' && spec[?'in'].orValue(0) == 5 && spec.?size.hasValue()",
            "status.?phase.orValue('') == 'Running' && spec[?'in'].orValue(0) == 5 && spec.?size.hasValue()",
        ),
        (
            "spec['in'] + metadata.labels['a-b'].size()",
            "spec['in'] + metadata.labels['a-b'].size()",
        ),
        (
            "has(spec.size) && !has(status.ready)",
            "has(spec.size) && !has(status.ready)",
        ),
        (
            "[?optional.none(), 1, ?optional.of(2)]",
            "[?optional.none(), 1, ?optional.of(2)]",
        ),
        (
            "{'a': 1, ?'b': optional.none()}.size()",
            "{'a': 1, ?'b': optional.none()}.size()",
        ),
        (
            "optional.of(2).optMap(v, v + 1).value()",
            "optional.of(2).optMap(v, v + 1).value()",
        ),
        (
            "spec.?size.optMap(v, v * 2).orValue(0)",
            "spec.?size.optMap(v, v * 2).orValue(0)",
        ),
        (
            "optional.of(1).optFlatMap(v, optional.of(v + 1)).value()",
            "optional.of(1).optFlatMap(v, optional.of(v + 1)).value()",
        ),
        (
            "[optional.of(3)].map(o, o.optMap(v, v + 1).value())",
            "[optional.of(3)].map(o, o.optMap(v, v + 1).value())",
        ),
        (
            "'a,b'.split(',').join('-') + strings.quote('x') + '%s'.format(['y'])",
            "'a,b'.split(',').join('-') + strings.quote('x') + '%s'.format(['y'])",
        ),
        (
            "spec.items.map(x, x).sum() == 6",
            "spec.items.map(x, x).sum() == 6",
        ),
        (
            "int('5') + size([1]) + [1, 2].size()",
            "int('5') + size([1]) + [1, 2].size()",
        ),
        ("(1).string()", "(1).string()"),
    ];
    for (source, expected) in cases {
        let printed = plain(source);
        assert_eq!(printed, expected, "{source}");
        assert_eq!(plain(&printed), printed, "printing `{printed}` again");
        let original = Expression::compile(source).unwrap();
        let back = Expression::compile(&printed).unwrap();
        same_value(&original, &back, &object, &[]);
        assert!(
            original.json_of(&object, &[]).is_ok() || source == "(1).string()",
            "{source}: {:?}",
            original.json_of(&object, &[])
        );
    }
}

/// Every expression both files declare, with the `let` values it is evaluated with.
fn declared_expressions(
    declared: &'static Declared,
) -> Vec<(String, &'static Expression, &'static crate::cel::Bindings)> {
    let mut all = Vec::new();
    for rule in &declared.kinds {
        let bindings = rule.bindings.as_slice();
        let mut add = |what: &str, e: &'static Expression| {
            all.push((format!("{} {what}", rule.kind), e, bindings));
        };
        for (name, e) in rule.bindings.iter() {
            add(&format!("let {name}"), e);
        }
        if let Some(r) = &rule.readiness {
            add("current", &r.current);
            r.failed.iter().for_each(|e| add("failed", e));
            r.in_progress.iter().for_each(|e| add("inProgress", e));
            r.message.iter().for_each(|e| add("message", e));
        }
        rule.pods.iter().for_each(|e| add("pods", e));
        for not in &rule.not_picked_up {
            add("notPickedUp", &not.message);
        }
    }
    let view = declared.status.as_ref().unwrap();
    for kind in &view.kinds {
        let bindings = declared
            .rule(&kind.api_version, &kind.kind)
            .map_or(&[][..], |r| r.bindings.as_slice());
        let mut add = |what: &str, e: &'static Expression| {
            all.push((format!("status {} {what}", kind.kind), e, bindings));
        };
        kind.fields.values().for_each(|e| add("field", e));
        kind.columns.iter().for_each(|c| add("column", &c.value));
        kind.states
            .iter()
            .filter_map(|s| s.when.as_ref())
            .for_each(|e| add("state", e));
        if let Some(r) = &kind.requests {
            [&r.cpu, &r.memory, &r.gpu]
                .into_iter()
                .flatten()
                .for_each(|e| add("request", e));
        }
    }
    if let Some(pods) = &view.pods {
        all.push(("status pods role".into(), &pods.role, &[][..]));
    }
    all
}

#[test]
fn every_declared_expression_reads_back_the_same() {
    let mut objects: Vec<Value> = all_cases().into_iter().map(|(_, c)| c.object).collect();
    objects.extend([
        yaml("apiVersion: ray.io/v1\nkind: RayCluster\nmetadata: {name: rc, namespace: ray}\n"),
        yaml("kind: Pod\nmetadata: {name: p, labels: {ray.io/node-type: head}}\n"),
        yaml("kind: Pod\nmetadata: {name: p, labels: {ray.io/node-type: worker}}\n"),
        yaml("kind: Widget\nmetadata: {name: w, namespace: n}\nspec: {replicas: 2, engine: v8}\n"),
    ]);
    let mut count = 0;
    for declared in [&*RAY, &*WIDGETS] {
        for (what, original, bindings) in declared_expressions(declared) {
            let printed = Printer::plain().top(original.ast()).unwrap().text;
            let back = Expression::compile(&printed).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                Printer::plain().top(back.ast()).unwrap().text,
                printed,
                "{what}"
            );
            for object in &objects {
                same_value(original, &back, object, bindings);
            }
            count += 1;
        }
    }
    assert_eq!(count, 54);
}

fn rule(text: &str) -> KindRule {
    serde_yaml_ng::from_str(text).unwrap()
}

#[test]
fn let_values_are_written_in_place_without_capturing_names() {
    let gadget = rule(
        "apiVersion: example.com/v1\nkind: Gadget\nlet:\n  want: spec.size\n  seen: status.items.filter(status, status > 0)\nreadiness:\n  observedGeneration: ignore\n  failed: seen.exists(s, s < 0)\n  current: status.items.exists(status, status == want) && [1].all(want, want == 1) && size(seen) == want\n",
    );
    let check = flux_check(&gadget).unwrap();
    assert_eq!(
        check.current,
        "status.items.exists(status_1, status_1 == spec.size) && [1].all(want, want == 1) \
         && size(status.items.filter(status_1, status_1 > 0)) == spec.size"
    );
    assert_eq!(
        check.failed.as_deref(),
        Some(
            "size([status.items.filter(status_1, status_1 > 0), spec.size]) == 2 ? \
             status.items.filter(status_1, status_1 > 0).exists(s, s < 0) : false"
        )
    );
    let declared = Declared {
        kinds: vec![gadget],
        status: None,
    };
    for (body, status) in [
        ("spec: {size: 2}\nstatus: {items: [2, 5]}", Status::Current),
        ("spec: {size: 1}\nstatus: {items: [-1, 1]}", Status::Current),
        (
            "spec: {size: 3}\nstatus: {items: [1, 2]}",
            Status::InProgress,
        ),
        ("spec: {size: 1}\nstatus: {items: [x]}", Status::Unknown),
    ] {
        let object = yaml(&format!("apiVersion: example.com/v1\nkind: Gadget\n{body}"));
        let plane = plane_status(&object, &declared);
        let flux = flux_status(&check, &object);
        assert_eq!(flux, status, "{body}");
        let agreed = if flux == Status::Unknown {
            Status::InProgress
        } else {
            flux
        };
        assert_eq!(plane, agreed, "{body}");
    }
}

#[test]
fn what_flux_lacks_is_refused_by_name() {
    let with = |current: &str| {
        flux_check(&rule(&format!(
            "apiVersion: example.com/v1\nkind: Gadget\nreadiness:\n  current: \"{current}\"\n"
        )))
    };
    assert!(with("status.phase.lowerAscii() == 'ok' && sets.contains([1], [1])").is_ok());
    let refused = [
        (
            "math.greatest(1, 2) == 2",
            "`math.greatest()` is not in Flux's CEL environment",
        ),
        (
            "status.items.sortBy(x, x) == []",
            "`status.items.sortBy()` is not in",
        ),
        ("sum(1, 2) == 3", "`sum()` takes a list and nothing else"),
        ("[1].sum(0) == 1", "`sum()` takes a list"),
        ("now() > 1", "`now()` is not in"),
    ];
    for (current, words) in refused {
        let err = with(current).unwrap_err();
        assert!(err.starts_with("Gadget `current`: "), "{err}");
        assert!(err.contains(words), "{current}: {err}");
    }
    let bare = rule("apiVersion: example.com/v1\nkind: Gadget\n");
    assert!(flux_check(&bare).unwrap_err().contains("no readiness"));
    assert_eq!(flux_caveats(&bare).len(), 1);
}

#[test]
fn sums_are_written_out_up_to_their_bound() {
    let lists = [
        ("[]", true),
        ("[4]", true),
        ("[1, 2, 3]", true),
        ("[0.5, 1.5]", true),
        (&*format!("[{}]", vec!["2"; SUM_BOUND].join(", ")), true),
        (
            &*format!("[{}]", vec!["2"; SUM_BOUND + 1].join(", ")),
            false,
        ),
        ("['a']", true),
        ("['a', 'b']", true),
        ("[1, 0.5]", false),
    ];
    let object = json!({});
    for (list, agrees) in lists {
        let plane = Expression::compile(&format!("{list}.sum()"))
            .unwrap()
            .json_of(&object, &[])
            .ok();
        let context = cel::Context::with_env(Arc::clone(&FLUX_ENV));
        let flux = FLUX_ENV
            .compile(&written_out_sum(list))
            .unwrap()
            .execute(&context)
            .ok()
            .map(|v| crate::cel::to_json(&v));
        if agrees {
            assert_eq!(flux, plane, "{list}");
        } else {
            assert!(
                plane.is_some() && flux.is_none(),
                "{list}: {plane:?} {flux:?}"
            );
        }
    }
}

#[test]
fn checks_serialize_as_flux_reads_them() {
    let widget = WIDGETS.rule("example.com/v1", "Widget").unwrap();
    let check = flux_check(widget).unwrap();
    assert_eq!(
        serde_json::to_value(&check).unwrap(),
        json!({
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "current": "status.?phase.orValue('') == 'Running' && status.?readyReplicas.orValue(0) >= spec.replicas",
            "failed": "size([status.?phase.orValue(''), status.?readyReplicas.orValue(0)]) == 2 ? status.?phase.orValue('') == 'Failed' : false",
        })
    );
    let cluster = flux_check(RAY.rule("ray.io/v1", "RayCluster").unwrap()).unwrap();
    assert!(
        cluster
            .current
            .starts_with("size(status) > 0 && (spec.?suspend.orValue(false) == true ? ")
    );
    assert_eq!(cluster.current.len(), 4778);
}

#[test]
fn caveats_say_what_flux_cannot_honour() {
    let ray = |kind: &str| flux_caveats(RAY.rule("ray.io/v1", kind).unwrap());
    let cluster = ray("RayCluster");
    assert_eq!(cluster.len(), 5, "{cluster:?}");
    for words in [
        "observedGeneration: ignore",
        "`message`",
        "sum()",
        "without `spec`",
        "without `status`",
    ] {
        assert!(
            cluster.iter().any(|c| c.contains(words)),
            "{words}: {cluster:?}"
        );
    }
    assert_eq!(ray("RayJob").len(), 4);
    assert!(!ray("RayService").iter().any(|c| c.contains("`spec`")));
    let widget = flux_caveats(WIDGETS.rule("example.com/v1", "Widget").unwrap());
    assert_eq!(widget.len(), 3, "{widget:?}");
    assert!(!widget.iter().any(|c| c.contains("observedGeneration")));
}
