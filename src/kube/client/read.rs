//! The one way plane reads objects: find the kind, then GET one object or LIST many, typed, with
//! what "not there" and "not allowed" mean decided here.

use kube::api::ListParams;
use serde_json::Value;

use super::Cluster;
use super::discovery::ServedKind;
use super::retry::retry;
use crate::bundle::ObjectRef;
use crate::kube::error::KubeError;

/// What a LIST found.
#[derive(Debug)]
pub enum Listing {
    /// The objects, each typed with its kind.
    Objects(Vec<Value>),
    /// The cluster does not serve the kind (or its CRD went a moment ago): there are none.
    NotServed,
    /// The credentials may not list it: what it holds is unknown. The refusal, described.
    Forbidden(KubeError),
}

impl Listing {
    /// The objects; none when the kind is not served.
    ///
    /// # Errors
    /// The refusal, when the credentials may not list the kind.
    pub fn objects(self) -> Result<Vec<Value>, KubeError> {
        match self {
            Self::Objects(objects) => Ok(objects),
            Self::NotServed => Ok(Vec::new()),
            Self::Forbidden(err) => Err(err),
        }
    }
}

/// What a failed read was for, to name it in the error: `cannot list Widget objects` on
/// `Namespace/ns`.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub what: &'a str,
    pub subject: Option<&'a str>,
}

impl Cluster {
    /// The UID of the `kube-system` Namespace: the cluster's identity, which a context or server
    /// name cannot fake (a rebuilt cluster at the same address has another). One GET.
    ///
    /// # Errors
    /// The read failing or refused; a cluster without `kube-system` (not Kubernetes).
    pub async fn identity(&self) -> Result<String, KubeError> {
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(self.client().clone());
        let namespace = retry(|| api.get("kube-system")).await.map_err(|err| {
            KubeError::api(
                "cannot read the cluster's identity",
                Some("Namespace/kube-system"),
                &err,
            )
        })?;
        namespace.metadata.uid.ok_or_else(|| KubeError::Connect {
            reason: "Namespace/kube-system has no uid".to_owned(),
            hint: None,
        })
    }

    /// One object, typed; `None` when it or its kind does not exist.
    ///
    /// # Errors
    /// Discovery failures, and reads the server refuses or fails, naming the object.
    pub async fn get(&self, id: &ObjectRef) -> Result<Option<Value>, KubeError> {
        let Some(served) = self.find(&id.api_version, &id.kind).await? else {
            return Ok(None);
        };
        let api = self.api(&served, id.namespace.as_deref());
        match retry(|| api.get_opt(&id.name)).await {
            Ok(found) => Ok(found.map(|object| served.typed(object))),
            // Also what a kind whose CRD was just deleted answers, before discovery knows.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(err) => Err(KubeError::api(
                "cannot read object",
                Some(&id.subject()),
                &err,
            )),
        }
    }

    /// The objects of a kind in `namespace` (or in all namespaces) that `params` select.
    ///
    /// # Errors
    /// Discovery failures, and lists the server fails for a reason other than a refusal,
    /// named by `reading`.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        params: &ListParams,
        reading: Reading<'_>,
    ) -> Result<Listing, KubeError> {
        let Some(served) = self.find(api_version, kind).await? else {
            return Ok(Listing::NotServed);
        };
        self.list_served(&served, namespace, params, reading).await
    }

    /// [`Cluster::list`] of a kind already found.
    ///
    /// # Errors
    /// As [`Cluster::list`].
    pub async fn list_served(
        &self,
        served: &ServedKind,
        namespace: Option<&str>,
        params: &ListParams,
        reading: Reading<'_>,
    ) -> Result<Listing, KubeError> {
        let api = self.api(served, namespace);
        match retry(|| api.list(params)).await {
            Ok(list) => Ok(Listing::Objects(
                list.items.into_iter().map(|o| served.typed(o)).collect(),
            )),
            // A namespace that does not exist yet holds nothing; a kind whose CRD just went
            // has nothing.
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(Listing::NotServed),
            Err(err) => {
                let described = KubeError::api(reading.what, reading.subject, &err);
                if described.code() == Some(403) {
                    Ok(Listing::Forbidden(described))
                } else {
                    Err(described)
                }
            }
        }
    }
}
