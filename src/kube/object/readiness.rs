//! Readiness rules (DESIGN §7): is a live object ready, still progressing, or failed for good?

use serde_json::Value;

use crate::bundle::declared::{Declared, Generation, KindRule, ReadinessRule, group_of};
use crate::kinds::{self, Pods, Ready, Rule};

/// What one observation of an object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Not ready yet; the text says what is awaited.
    Progressing(String),
    /// A terminal state: waiting longer will not help.
    Failed(String),
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready)
    }
}

/// Whether `up` waits for objects of this kind: a rule of plane's reads their status, or the
/// bundle declares one.
pub fn has_rule(api_version: &str, kind: &str, declared: &Declared) -> bool {
    match builtin(api_version, kind) {
        Some(known) => matches!(known.ready, Ready::Status(_)),
        None => declared
            .rule(api_version, kind)
            .is_some_and(|rule| rule.readiness.is_some()),
    }
}

/// What plane knows of a kind of Kubernetes' own (or of a custom kind it ships knowledge of),
/// when the object's group is the table's.
fn builtin(api_version: &str, kind: &str) -> Option<&'static kinds::Kind> {
    kinds::lookup(kind).filter(|known| {
        api_version.is_empty() || group_of(known.api_version) == group_of(api_version)
    })
}

/// Container states that waiting will not fix.
const TERMINAL_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A terminal container state of a pod, as `pod NAME: container C: REASON: message`.
pub fn pod_failure(pod: &Value) -> Option<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or("?");
    for field in ["initContainerStatuses", "containerStatuses"] {
        for status in pod["status"][field].as_array().into_iter().flatten() {
            let waiting = &status["state"]["waiting"];
            let Some(reason) = waiting["reason"].as_str() else {
                continue;
            };
            if TERMINAL_WAITING.contains(&reason) {
                let container = status["name"].as_str().unwrap_or("?");
                let message = waiting["message"]
                    .as_str()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                // Why it last exited, in its own words: the kubelet fills this from the
                // container's termination log (say, "forbidden to list persistentvolumeclaims").
                let last = status["lastState"]["terminated"]["message"]
                    .as_str()
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(|m| format!("; it last exited with: {m}"))
                    .unwrap_or_default();
                return Some(format!(
                    "pod {name}: container {container}: {reason}{message}{last}"
                ));
            }
        }
    }
    None
}

/// The label selector of the pods a workload owns: from its spec for Kubernetes' workloads, as
/// its bundle declares for a custom kind.
pub fn pod_selector(object: &Value, declared: &Declared) -> Option<String> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    match builtin(api_version, object["kind"].as_str()?) {
        Some(known) if known.pods == Pods::Selector => {
            let labels = object["spec"]["selector"]["matchLabels"].as_object()?;
            let parts: Vec<String> = labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect();
            (!parts.is_empty()).then(|| parts.join(","))
        }
        Some(_) => None,
        None => declared.rule_of(object)?.pod_selector(object),
    }
}

/// Evaluates the readiness of a live object: by plane's rule for its kind, the rule its bundle
/// declares, or else the generic one.
pub fn evaluate(object: &Value, declared: &Declared) -> Readiness {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    if let Some(known) = builtin(api_version, kind) {
        return match known.ready {
            Ready::Exists => Readiness::Ready,
            Ready::Status(rule) => by_rule(rule, object),
            Ready::Generic => generic(object),
        };
    }
    match declared.rule(api_version, kind) {
        Some(rule) => match &rule.readiness {
            Some(readiness) => by_declaration(object, rule, readiness),
            None => generic(object),
        },
        None => generic(object),
    }
}

/// Plane's rule for one of Kubernetes' kinds.
fn by_rule(rule: Rule, object: &Value) -> Readiness {
    match rule {
        Rule::Namespace => namespace(object),
        Rule::CustomResourceDefinition => crd(object),
        Rule::PersistentVolumeClaim => pvc(object),
        Rule::Service => service(object),
        Rule::DaemonSet => daemon_set(object),
        Rule::Deployment => deployment(object),
        Rule::StatefulSet => stateful_set(object),
        Rule::Job => job(object),
    }
}

/// A custom kind by what its bundle declares, read as Flux reads `healthCheckExprs`: a
/// generation not yet observed (unless told to ignore it), then `inProgress`, `failed` and
/// `current` in that order, the first true one deciding; none true is still in progress. An
/// expression that cannot be evaluated leaves the object in progress, saying why.
fn by_declaration(object: &Value, kind: &KindRule, rule: &ReadinessRule) -> Readiness {
    let bindings = kind.bindings.as_slice();
    if rule.observed_generation == Generation::Wait
        && let (Some(generation), Some(observed)) = (
            object["metadata"]["generation"].as_i64(),
            object["status"]["observedGeneration"].as_i64(),
        )
        && observed != generation
    {
        return Readiness::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let say = |fallback: String| match &rule.message {
        Some(message) => message
            .text_of(object, bindings)
            .unwrap_or_else(|err| format!("{fallback} (its message cannot be evaluated: {err})")),
        None => fallback,
    };
    let checks = [
        (rule.in_progress.as_ref(), Outcome::InProgress),
        (rule.failed.as_ref(), Outcome::Failed),
        (Some(&rule.current), Outcome::Current),
    ];
    for (expression, outcome) in checks {
        let Some(expression) = expression else {
            continue;
        };
        match expression.is_true(object, bindings) {
            Ok(false) => {}
            Ok(true) => {
                return match outcome {
                    Outcome::Current => Readiness::Ready,
                    Outcome::Failed => {
                        Readiness::Failed(say(format!("failed: {}", expression.text())))
                    }
                    Outcome::InProgress => {
                        Readiness::Progressing(say(format!("in progress: {}", expression.text())))
                    }
                };
            }
            Err(err) => {
                return Readiness::Progressing(format!("its readiness cannot be evaluated: {err}"));
            }
        }
    }
    Readiness::Progressing(say(format!("waiting for {}", rule.current.text())))
}

/// Which declared expression held.
#[derive(Clone, Copy)]
enum Outcome {
    InProgress,
    Failed,
    Current,
}

fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

fn condition_is(object: &Value, type_: &str, status: &str) -> bool {
    condition(object, type_).is_some_and(|c| c["status"] == status)
}

fn reason_of(condition: &Value) -> String {
    let reason = condition["reason"].as_str().unwrap_or("");
    let message = condition["message"].as_str().unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_owned(),
        (true, false) => message.to_owned(),
        (true, true) => String::new(),
    }
}

/// `status.observedGeneration` has caught up with `metadata.generation` (absent counts as current
/// only when the object has no generation).
fn observed_current(object: &Value) -> bool {
    match (
        object["metadata"]["generation"].as_i64(),
        object["status"]["observedGeneration"].as_i64(),
    ) {
        (Some(generation), Some(observed)) => observed >= generation,
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn int(value: &Value) -> i64 {
    value.as_i64().unwrap_or(0)
}

fn crd(object: &Value) -> Readiness {
    if condition_is(object, "Established", "True") {
        Readiness::Ready
    } else if let Some(c) = condition(object, "NamesAccepted").filter(|c| c["status"] == "False") {
        Readiness::Failed(format!("names not accepted: {}", reason_of(c)))
    } else {
        Readiness::Progressing("waiting for condition Established".into())
    }
}

fn deadline_exceeded(object: &Value) -> Option<String> {
    // A deployer cannot see pods from a Deployment's status; a failing rollout shows as
    // ProgressDeadlineExceeded, or in a condition message naming the container state.
    let progressing = condition(object, "Progressing")?;
    if progressing["status"] == "False" && progressing["reason"] == "ProgressDeadlineExceeded" {
        return Some(reason_of(progressing));
    }
    None
}

fn container_failure(object: &Value) -> Option<String> {
    for type_ in ["Available", "Ready", "ReplicaFailure"] {
        if let Some(c) = condition(object, type_) {
            let text = reason_of(c);
            for terminal in TERMINAL_WAITING {
                if text.contains(terminal) {
                    return Some(text);
                }
            }
        }
    }
    None
}

fn deployment(object: &Value) -> Readiness {
    if let Some(failure) = deadline_exceeded(object).or_else(|| container_failure(object)) {
        return Readiness::Failed(failure);
    }
    if !observed_current(object) {
        return Readiness::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let status = &object["status"];
    let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let (updated, ready, available, total) = (
        int(&status["updatedReplicas"]),
        int(&status["readyReplicas"]),
        int(&status["availableReplicas"]),
        int(&status["replicas"]),
    );
    if updated >= desired && ready >= desired && available >= desired && total <= desired {
        Readiness::Ready
    } else {
        Readiness::Progressing(format!(
            "{ready}/{desired} ready, {updated} updated, {available} available"
        ))
    }
}

fn stateful_set(object: &Value) -> Readiness {
    if !observed_current(object) {
        return Readiness::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let status = &object["status"];
    let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let (ready, updated) = (
        int(&status["readyReplicas"]),
        int(&status["updatedReplicas"]),
    );
    let revision_done =
        status["currentRevision"] == status["updateRevision"] || status["updateRevision"].is_null();
    if ready >= desired && updated >= desired && revision_done {
        Readiness::Ready
    } else {
        Readiness::Progressing(format!("{ready}/{desired} ready, {updated} updated"))
    }
}

fn daemon_set(object: &Value) -> Readiness {
    if !observed_current(object) {
        return Readiness::Progressing(
            "waiting for the controller to observe the new generation".into(),
        );
    }
    let status = &object["status"];
    let desired = int(&status["desiredNumberScheduled"]);
    let (ready, updated) = (
        int(&status["numberReady"]),
        int(&status["updatedNumberScheduled"]),
    );
    if ready >= desired && updated >= desired {
        Readiness::Ready
    } else {
        Readiness::Progressing(format!("{ready}/{desired} ready, {updated} updated"))
    }
}

fn job(object: &Value) -> Readiness {
    if condition_is(object, "Complete", "True") {
        Readiness::Ready
    } else if let Some(c) = condition(object, "Failed").filter(|c| c["status"] == "True") {
        Readiness::Failed(format!("job failed: {}", reason_of(c)))
    } else {
        Readiness::Progressing(format!(
            "{} succeeded, {} active",
            int(&object["status"]["succeeded"]),
            int(&object["status"]["active"])
        ))
    }
}

fn pvc(object: &Value) -> Readiness {
    match object["status"]["phase"].as_str() {
        Some("Bound") => Readiness::Ready,
        Some("Lost") => Readiness::Failed("the volume claim lost its volume".into()),
        other => Readiness::Progressing(format!("phase {}", other.unwrap_or("Pending"))),
    }
}

fn service(object: &Value) -> Readiness {
    if object["spec"]["type"] != "LoadBalancer" {
        return Readiness::Ready;
    }
    let ingress = object["status"]["loadBalancer"]["ingress"].as_array();
    if ingress.is_some_and(|i| !i.is_empty()) {
        Readiness::Ready
    } else {
        Readiness::Progressing("waiting for a load balancer address".into())
    }
}

fn namespace(object: &Value) -> Readiness {
    match object["status"]["phase"].as_str() {
        Some("Terminating") => Readiness::Failed("the namespace is being deleted".into()),
        _ => Readiness::Ready,
    }
}

/// Custom resources without a rule: `Ready=True` and a current `observedGeneration`. A freshly
/// applied resource with no status is not ready.
fn generic(object: &Value) -> Readiness {
    if object.get("status").is_none_or(Value::is_null) {
        return Readiness::Progressing("no status yet".into());
    }
    if let Some(c) = condition(object, "Ready") {
        return if c["status"] == "True" && observed_current(object) {
            Readiness::Ready
        } else {
            Readiness::Progressing(
                format!(
                    "Ready={} {}",
                    c["status"].as_str().unwrap_or("?"),
                    reason_of(c)
                )
                .trim_end()
                .to_owned(),
            )
        };
    }
    // A status without conditions: nothing better to wait on than the generation.
    if observed_current(object) {
        Readiness::Ready
    } else {
        Readiness::Progressing("waiting for observedGeneration".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    fn evaluate(object: &Value) -> Readiness {
        super::evaluate(object, &Declared::default())
    }

    fn pod_selector(object: &Value) -> Option<String> {
        super::pod_selector(object, &Declared::default())
    }

    fn widgets() -> Declared {
        serde_yaml_ng::from_str(
            r#"
kinds:
  - apiVersion: example.com/v1
    kind: Widget
    let:
      phase: status.?phase.orValue('')
    readiness:
      current: phase == 'Running'
      failed: phase == 'Broken'
      inProgress: status.?paused.orValue(false)
      message: "size(status) == 0 ? 'no status yet' : 'phase ' + phase"
    pods: "'example.com/widget=' + metadata.name"
"#,
        )
        .unwrap()
    }

    #[test]
    fn declared_kinds_follow_their_bundle_as_flux_reads_it() {
        let declared = widgets();
        let widget = |status: &str| {
            yaml(&format!(
                "apiVersion: example.com/v2\nkind: Widget\nmetadata: {{name: w, generation: 2}}\nstatus: {status}\n"
            ))
        };
        let read = |status: &str| super::evaluate(&widget(status), &declared);
        assert_eq!(
            super::evaluate(
                &yaml("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"),
                &declared
            ),
            Readiness::Progressing("no status yet".into())
        );
        assert_eq!(read("{phase: Running}"), Readiness::Ready);
        assert_eq!(
            read("{phase: Running, observedGeneration: 1}"),
            Readiness::Progressing(
                "waiting for the controller to observe the new generation".into()
            )
        );
        assert_eq!(
            read("{phase: Broken}"),
            Readiness::Failed("phase Broken".into())
        );
        // inProgress comes first, as in Flux.
        assert_eq!(
            read("{phase: Broken, paused: true}"),
            Readiness::Progressing("phase Broken".into())
        );
        assert_eq!(
            read("{phase: Starting}"),
            Readiness::Progressing("phase Starting".into())
        );
        assert!(super::has_rule("example.com/v1", "Widget", &declared));
        assert!(!super::has_rule("other.com/v1", "Widget", &declared));
        assert!(super::has_rule("apps/v1", "Deployment", &declared));
        assert!(!super::has_rule("v1", "ConfigMap", &declared));
        assert_eq!(
            super::pod_selector(&widget("{}"), &declared).as_deref(),
            Some("example.com/widget=w")
        );
        // A kind of another group is not the bundle's: the generic rule reads it.
        let other = yaml(
            "apiVersion: other.com/v1\nkind: Widget\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1}\n",
        );
        assert_eq!(super::evaluate(&other, &declared), Readiness::Ready);
        // An expression that fails leaves the object in progress and says why.
        let broken: Declared = serde_yaml_ng::from_str(
            "kinds: [{apiVersion: example.com/v1, kind: Widget, readiness: {current: 'status.phase == 1'}}]",
        )
        .unwrap();
        assert!(matches!(
            super::evaluate(&widget("{}"), &broken),
            Readiness::Progressing(why) if why.contains("cannot be evaluated")
        ));
    }

    #[test]
    fn deployments_roll_out_fully_or_fail_on_the_deadline() {
        let rolled = yaml(
            "kind: Deployment\nmetadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}\n",
        );
        assert_eq!(evaluate(&rolled), Readiness::Ready);
        let stale = yaml(
            "kind: Deployment\nmetadata: {generation: 3}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}\n",
        );
        assert!(matches!(evaluate(&stale), Readiness::Progressing(_)));
        let old_pods = yaml(
            "kind: Deployment\nmetadata: {generation: 2}\nspec: {replicas: 2}\nstatus: {observedGeneration: 2, replicas: 3, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2}\n",
        );
        assert!(matches!(evaluate(&old_pods), Readiness::Progressing(_)));
        let stuck = yaml(
            "kind: Deployment\nmetadata: {generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Progressing, status: \"False\", reason: ProgressDeadlineExceeded, message: 'ReplicaSet \"x\" has timed out progressing.'}]}\n",
        );
        assert!(
            matches!(evaluate(&stuck), Readiness::Failed(m) if m.contains("ProgressDeadlineExceeded"))
        );
        let pull = yaml(
            "kind: Deployment\nmetadata: {generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Available, status: \"False\", reason: MinimumReplicasUnavailable, message: 'container api: ImagePullBackOff'}]}\n",
        );
        assert!(matches!(evaluate(&pull), Readiness::Failed(m) if m.contains("ImagePullBackOff")));
        // The same terminal states as a pod's, CreateContainerError included.
        let create = yaml(
            "kind: Deployment\nmetadata: {generation: 1}\nspec: {replicas: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Available, status: \"False\", reason: MinimumReplicasUnavailable, message: 'container api: CreateContainerError'}]}\n",
        );
        assert!(
            matches!(evaluate(&create), Readiness::Failed(m) if m.contains("CreateContainerError"))
        );
    }

    #[test]
    fn pods_reveal_terminal_container_states() {
        let pod = yaml(
            "kind: Pod\nmetadata: {name: api-1}\nstatus: {containerStatuses: [{name: api, state: {waiting: {reason: ImagePullBackOff, message: 'Back-off pulling image'}}}]}\n",
        );
        assert_eq!(
            pod_failure(&pod).as_deref(),
            Some("pod api-1: container api: ImagePullBackOff: Back-off pulling image")
        );
        let crashing = yaml(
            "kind: Pod\nmetadata: {name: op-1}\nstatus: {containerStatuses: [{name: op, state: {waiting: {reason: CrashLoopBackOff, message: 'back-off 10s'}}, lastState: {terminated: {exitCode: 1, message: \"forbidden to list persistentvolumeclaims\\n\"}}}]}\n",
        );
        assert_eq!(
            pod_failure(&crashing).as_deref(),
            Some(
                "pod op-1: container op: CrashLoopBackOff: back-off 10s; it last exited with: forbidden to list persistentvolumeclaims"
            )
        );
        let starting = yaml(
            "kind: Pod\nmetadata: {name: api-1}\nstatus: {containerStatuses: [{name: api, state: {waiting: {reason: ContainerCreating}}}]}\n",
        );
        assert_eq!(pod_failure(&starting), None);
        let deployment =
            yaml("kind: Deployment\nspec: {selector: {matchLabels: {app: api, tier: web}}}\n");
        assert_eq!(
            pod_selector(&deployment).as_deref(),
            Some("app=api,tier=web")
        );
    }

    #[test]
    fn other_rules() {
        assert_eq!(
            evaluate(&yaml(
                "kind: CustomResourceDefinition\nstatus: {conditions: [{type: Established, status: \"True\"}]}\n"
            )),
            Readiness::Ready
        );
        assert!(matches!(
            evaluate(&yaml("kind: CustomResourceDefinition\n")),
            Readiness::Progressing(_)
        ));
        assert_eq!(
            evaluate(&yaml(
                "kind: Job\nstatus: {conditions: [{type: Complete, status: \"True\"}]}\n"
            )),
            Readiness::Ready
        );
        assert!(matches!(
            evaluate(&yaml(
                "kind: Job\nstatus: {conditions: [{type: Failed, status: \"True\", reason: BackoffLimitExceeded}]}\n"
            )),
            Readiness::Failed(_)
        ));
        assert_eq!(
            evaluate(&yaml(
                "kind: PersistentVolumeClaim\nstatus: {phase: Bound}\n"
            )),
            Readiness::Ready
        );
        assert!(matches!(
            evaluate(&yaml("kind: Service\nspec: {type: LoadBalancer}\n")),
            Readiness::Progressing(_)
        ));
        assert_eq!(
            evaluate(&yaml("kind: Service\nspec: {type: ClusterIP}\n")),
            Readiness::Ready
        );
        assert_eq!(evaluate(&yaml("kind: ConfigMap\n")), Readiness::Ready);
        assert!(matches!(
            evaluate(&yaml("kind: Widget\nmetadata: {generation: 1}\n")),
            Readiness::Progressing(_)
        ));
        assert_eq!(
            evaluate(&yaml(
                "kind: Widget\nmetadata: {generation: 1}\nstatus: {observedGeneration: 1, conditions: [{type: Ready, status: \"True\"}]}\n"
            )),
            Readiness::Ready
        );
    }
}
