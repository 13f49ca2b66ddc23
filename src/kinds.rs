//! The one table of the Kubernetes kinds plane knows by name: the order they are applied in,
//! their scope, how plane tells one is ready, the pods it runs, when `down` deletes it, and
//! whether it is kept from pruning. Every kind list of the render, the cluster work and the
//! tests is read from here.

/// How plane tells that an object of a kind is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// As soon as it exists: it has no status to wait for.
    Exists,
    /// This rule reads its status; `up` watches it until the rule says ready or failed.
    Status(Rule),
    /// No rule: ready when it says `Ready=True` for its current generation, if it says anything.
    Generic,
}

/// The readiness rules of Kubernetes' own kinds (DESIGN §7), one per kind that has one: the table
/// names the rule, so a kind with a rule cannot be left without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Namespace,
    CustomResourceDefinition,
    PersistentVolumeClaim,
    Service,
    DaemonSet,
    Deployment,
    StatefulSet,
    Job,
}

/// The pods an object of a kind runs, whose container states show failures its own status
/// does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pods {
    None,
    /// Those of `spec.selector.matchLabels`.
    Selector,
}

/// The stages of `down`, in deletion order: custom resources go while their operator still
/// runs, and namespaces and CRDs last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    CustomResources,
    Workloads,
    ServicesAndConfiguration,
    RbacAndClusterObjects,
    Namespaces,
    Crds,
}

impl Stage {
    /// Every stage, in deletion order.
    pub const ALL: [Self; 6] = [
        Self::CustomResources,
        Self::Workloads,
        Self::ServicesAndConfiguration,
        Self::RbacAndClusterObjects,
        Self::Namespaces,
        Self::Crds,
    ];

    /// How `down` names it in its progress: `deleting workloads`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::CustomResources => "custom resources",
            Self::Workloads => "workloads",
            Self::ServicesAndConfiguration => "services and configuration",
            Self::RbacAndClusterObjects => "rbac and cluster objects",
            Self::Namespaces => "namespaces",
            Self::Crds => "crds",
        }
    }
}

/// What plane knows of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Applied in table order; other kinds (and custom resources) come after every applied one.
    pub applied: bool,
    pub ready: Ready,
    /// It has a pod template the API server validates like an object's metadata.
    pub pod_template: bool,
    pub pods: Pods,
    pub stage: Stage,
    /// `up` never prunes it unless it opts in, and `down` keeps it when it predates the release
    /// (or, for CRDs and volumes, unless asked).
    pub protected: bool,
    /// Someone's work or data: a namespace holding one that is not the release's stays, and
    /// `down` names such objects in this rank's order. Pods and ReplicaSets are not: their
    /// owners are.
    pub holds_work: Option<u8>,
}

const fn kind(api_version: &'static str, kind: &'static str, stage: Stage) -> Kind {
    Kind {
        api_version,
        kind,
        namespaced: true,
        applied: true,
        ready: Ready::Generic,
        pod_template: false,
        pods: Pods::None,
        stage,
        protected: false,
        holds_work: None,
    }
}

impl Kind {
    const fn cluster_scoped(self) -> Self {
        Self {
            namespaced: false,
            ..self
        }
    }
    const fn ready(self, ready: Ready) -> Self {
        Self { ready, ..self }
    }
    const fn workload(self, rule: Rule, rank: u8) -> Self {
        Self {
            pod_template: true,
            pods: Pods::Selector,
            holds_work: Some(rank),
            ready: Ready::Status(rule),
            ..self
        }
    }
    const fn protected(self) -> Self {
        Self {
            protected: true,
            ..self
        }
    }
    const fn holds_work(self, rank: u8) -> Self {
        Self {
            holds_work: Some(rank),
            ..self
        }
    }
    const fn not_applied(self) -> Self {
        Self {
            applied: false,
            ..self
        }
    }
}

use Stage::{
    Crds, CustomResources, Namespaces, RbacAndClusterObjects as Rbac,
    ServicesAndConfiguration as Services, Workloads,
};

const RBAC: &str = "rbac.authorization.k8s.io/v1";
const ADMISSION: &str = "admissionregistration.k8s.io/v1";
const MONITORING: &str = "monitoring.coreos.com/v1";

/// Every kind plane knows by name, in apply order: what other objects need comes first.
pub const KINDS: &[Kind] = &[
    kind("v1", "Namespace", Namespaces)
        .cluster_scoped()
        .ready(Ready::Status(Rule::Namespace))
        .protected(),
    kind("apiextensions.k8s.io/v1", "CustomResourceDefinition", Crds)
        .cluster_scoped()
        .ready(Ready::Status(Rule::CustomResourceDefinition))
        .protected(),
    kind("scheduling.k8s.io/v1", "PriorityClass", Rbac)
        .cluster_scoped()
        .ready(Ready::Exists),
    kind("storage.k8s.io/v1", "StorageClass", Rbac)
        .cluster_scoped()
        .ready(Ready::Exists),
    kind("networking.k8s.io/v1", "IngressClass", Rbac)
        .cluster_scoped()
        .ready(Ready::Exists),
    kind("node.k8s.io/v1", "RuntimeClass", Rbac).cluster_scoped(),
    kind("v1", "ServiceAccount", Rbac).ready(Ready::Exists),
    kind(RBAC, "ClusterRole", Rbac)
        .cluster_scoped()
        .ready(Ready::Exists),
    kind(RBAC, "ClusterRoleBinding", Rbac)
        .cluster_scoped()
        .ready(Ready::Exists),
    kind(RBAC, "Role", Rbac).ready(Ready::Exists),
    kind(RBAC, "RoleBinding", Rbac).ready(Ready::Exists),
    kind("networking.k8s.io/v1", "NetworkPolicy", Services).ready(Ready::Exists),
    kind("v1", "ResourceQuota", Services).ready(Ready::Exists),
    kind("v1", "LimitRange", Services).ready(Ready::Exists),
    kind("policy/v1", "PodDisruptionBudget", Workloads).ready(Ready::Exists),
    kind("v1", "ConfigMap", Services)
        .ready(Ready::Exists)
        .holds_work(7),
    kind("v1", "Secret", Services)
        .ready(Ready::Exists)
        .holds_work(8),
    kind("v1", "PersistentVolume", Rbac).cluster_scoped(),
    kind("v1", "PersistentVolumeClaim", Services)
        .ready(Ready::Status(Rule::PersistentVolumeClaim))
        .protected()
        .holds_work(6),
    kind("v1", "Service", Services)
        .ready(Ready::Status(Rule::Service))
        .holds_work(5),
    kind("apps/v1", "DaemonSet", Workloads).workload(Rule::DaemonSet, 2),
    kind("apps/v1", "Deployment", Workloads).workload(Rule::Deployment, 0),
    kind("apps/v1", "StatefulSet", Workloads).workload(Rule::StatefulSet, 1),
    Kind {
        pod_template: true,
        ..kind("apps/v1", "ReplicaSet", Workloads)
    },
    kind("v1", "Pod", Workloads),
    kind("batch/v1", "Job", Workloads).workload(Rule::Job, 3),
    kind("batch/v1", "CronJob", Workloads)
        .ready(Ready::Exists)
        .holds_work(4),
    kind("autoscaling/v2", "HorizontalPodAutoscaler", Workloads).ready(Ready::Exists),
    kind("networking.k8s.io/v1", "Ingress", Services).ready(Ready::Exists),
    kind(ADMISSION, "ValidatingWebhookConfiguration", Rbac).cluster_scoped(),
    kind(ADMISSION, "MutatingWebhookConfiguration", Rbac).cluster_scoped(),
    kind("apiregistration.k8s.io/v1", "APIService", Rbac).cluster_scoped(),
    // Known, but applied after everything above, as custom resources are.
    kind(ADMISSION, "ValidatingAdmissionPolicy", Rbac)
        .cluster_scoped()
        .not_applied(),
    kind(ADMISSION, "ValidatingAdmissionPolicyBinding", Rbac)
        .cluster_scoped()
        .not_applied(),
    kind("storage.k8s.io/v1", "CSIDriver", Rbac)
        .cluster_scoped()
        .not_applied(),
    kind("v1", "Node", Rbac).cluster_scoped().not_applied(),
    kind("coordination.k8s.io/v1", "Lease", Services)
        .ready(Ready::Exists)
        .not_applied(),
    kind(MONITORING, "PodMonitor", CustomResources)
        .ready(Ready::Exists)
        .not_applied(),
    kind(MONITORING, "ServiceMonitor", CustomResources)
        .ready(Ready::Exists)
        .not_applied(),
    kind(MONITORING, "PrometheusRule", CustomResources)
        .ready(Ready::Exists)
        .not_applied(),
];

/// API groups of Kubernetes itself; objects of any other group are custom resources.
pub const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "admissionregistration.k8s.io",
    "apiregistration.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "events.k8s.io",
    "flowcontrol.apiserver.k8s.io",
];

/// What plane knows of `kind`, by its name.
pub fn lookup(kind: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.kind == kind)
}

/// The kinds that hold someone's work or data, in the order `down` names such objects.
pub fn work_kinds() -> Vec<&'static Kind> {
    let mut kinds: Vec<&Kind> = KINDS.iter().filter(|k| k.holds_work.is_some()).collect();
    kinds.sort_by_key(|k| k.holds_work);
    kinds
}

/// The rank of a kind in apply order; kinds applied after the table's (custom resources among
/// them) share the last rank.
pub fn apply_rank(kind: &str) -> usize {
    KINDS
        .iter()
        .filter(|k| k.applied)
        .position(|k| k.kind == kind)
        .unwrap_or(KINDS.len())
}

/// Namespaces and CRDs: applied first, in a stage of their own, since other objects cannot be
/// dry-run or applied until the namespaces they live in and the kinds they are exist.
pub fn comes_first(kind: &str) -> bool {
    matches!(kind, "Namespace" | "CustomResourceDefinition")
}

/// The built-in kinds that are not namespaced (CRDs in a render add theirs).
pub fn is_cluster_scoped(kind: &str) -> bool {
    scope_of(kind) == Some(false)
}

/// Kubernetes' own cluster-scoped kinds that plane does not otherwise know (none of them is
/// applied by a bundle plane ships; a render that holds one is still checked as cluster-scoped).
const OTHER_CLUSTER_SCOPED: &[&str] = &[
    "Node",
    "PersistentVolume",
    "ComponentStatus",
    "CertificateSigningRequest",
    "ClusterTrustBundle",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "CSINode",
    "VolumeAttachment",
    "VolumeAttributesClass",
    "DeviceClass",
    "ResourceSlice",
    "IPAddress",
    "ServiceCIDR",
    "StorageVersionMigration",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "TokenReview",
    "SubjectAccessReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "SelfSubjectReview",
];

/// Whether objects of `kind` are namespaced, when plane knows: `Some(true)` namespaced,
/// `Some(false)` cluster-scoped, `None` a kind it does not know (a custom resource whose CRD is
/// not in the render).
pub fn scope_of(kind: &str) -> Option<bool> {
    if let Some(known) = lookup(kind) {
        return Some(known.namespaced);
    }
    OTHER_CLUSTER_SCOPED.contains(&kind).then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_once_and_the_apply_order_starts_with_what_others_need() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len(), "a kind is listed twice");
        assert_eq!(apply_rank("Namespace"), 0);
        assert_eq!(apply_rank("CustomResourceDefinition"), 1);
        assert!(apply_rank("ServiceAccount") < apply_rank("Deployment"));
        assert!(apply_rank("APIService") < apply_rank("Widget"));
        assert_eq!(apply_rank("Widget"), apply_rank("SomeCustomKind"));
    }

    #[test]
    fn every_kind_of_a_builtin_group_is_builtin_and_custom_kinds_go_first_in_down() {
        for kind in KINDS {
            let group = kind.api_version.rsplit_once('/').map_or("", |(g, _)| g);
            assert_eq!(
                BUILTIN_GROUPS.contains(&group),
                kind.stage != Stage::CustomResources,
                "{}",
                kind.kind
            );
        }
    }
}
