//! What a CustomResourceDefinition defines, read once from its JSON: the kind, its group,
//! plural, scope and storage version. Pure; shared by the render checks and the cluster work.

use serde_json::Value;

/// The kind a CRD defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrdSpec {
    pub group: String,
    pub kind: String,
    pub plural: String,
    /// Its objects live in a namespace (`scope: Namespaced`, the default).
    pub namespaced: bool,
    /// The version objects are stored in (else the first listed, else `v1`).
    pub storage_version: String,
}

impl CrdSpec {
    /// The spec of `crd`, or `None` when it is not a CRD or lacks its group or kind.
    pub fn of(crd: &Value) -> Option<Self> {
        if crd["kind"] != "CustomResourceDefinition" {
            return None;
        }
        let spec = &crd["spec"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let versions = spec["versions"].as_array();
        let storage_version = versions
            .and_then(|versions| {
                versions
                    .iter()
                    .find(|v| v["storage"] == true)
                    .or_else(|| versions.first())
            })
            .and_then(|v| v["name"].as_str())
            .unwrap_or("v1")
            .to_owned();
        Some(Self {
            group: text(&spec["group"])?,
            kind: text(&spec["names"]["kind"])?,
            plural: text(&spec["names"]["plural"]).unwrap_or_default(),
            namespaced: spec["scope"] != "Cluster",
            storage_version,
        })
    }

    /// `group/version` of the storage version.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.storage_version)
    }

    /// Whether it defines `kind` in the group of `api_version`.
    pub fn defines(&self, api_version: &str, kind: &str) -> bool {
        self.kind == kind && self.group == super::objects::group_of(api_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_group_kind_plural_scope_and_storage_version() {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets"},
                "scope": "Namespaced",
                "versions": [{"name": "v1alpha1", "storage": false}, {"name": "v1", "storage": true}]
            }
        });
        let spec = CrdSpec::of(&crd).unwrap();
        assert_eq!(spec.kind, "Widget");
        assert_eq!(spec.plural, "widgets");
        assert!(spec.namespaced);
        assert_eq!(spec.api_version(), "example.com/v1");
        assert!(spec.defines("example.com/v1alpha1", "Widget"));
        assert!(!spec.defines("other.io/v1", "Widget"));
        let cluster_scoped = json!({"kind": "CustomResourceDefinition",
            "spec": {"group": "g.io", "names": {"kind": "K"}, "scope": "Cluster"}});
        let spec = CrdSpec::of(&cluster_scoped).unwrap();
        assert!(!spec.namespaced);
        assert_eq!(spec.api_version(), "g.io/v1");
        assert_eq!(CrdSpec::of(&json!({"kind": "ConfigMap"})), None);
    }
}
