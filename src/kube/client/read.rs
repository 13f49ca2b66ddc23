//! The one way plane reads objects: find the kind, then GET one object or LIST many, typed, with
//! what "not there" and "not allowed" mean decided here.

use k8s_openapi::api::authorization::v1::{
    ResourceRule, SelfSubjectRulesReview, SelfSubjectRulesReviewSpec,
};
use kube::api::ListParams;
use serde_json::Value;

use super::Cluster;
use super::ahead::{Answer, Key};
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
        let key = Key::get(&served, id.namespace.as_deref(), &id.name);
        let mut answer = match self.take_ahead(&key).await {
            Some(Answer::Get(answer)) => *answer,
            _ => retry(|| api.get(&id.name)).await,
        };
        if served.cached && unknown_resource(&answer) {
            // The disk cache named a resource the server no longer has: ask it, then read again.
            let Some(served) = self.rediscover(&id.api_version, &id.kind).await? else {
                return Ok(None);
            };
            let api = self.api(&served, id.namespace.as_deref());
            answer = retry(|| api.get(&id.name)).await;
        }
        match answer {
            Ok(found) => Ok(Some(served.typed(found))),
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

    /// [`Cluster::list`] of the objects of `kind` in `namespace` (or in all namespaces), named
    /// in an error as `cannot list KIND objects` (on `Namespace/NS`).
    ///
    /// # Errors
    /// As [`Cluster::list`].
    pub async fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<Listing, KubeError> {
        let what = format!("cannot list {kind} objects");
        let subject = namespace.map(|ns| format!("Namespace/{ns}"));
        let reading = Reading {
            what: &what,
            subject: subject.as_deref(),
        };
        self.list(api_version, kind, namespace, params, reading)
            .await
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
        let read_ahead = match (&params.label_selector, &params.field_selector, params.limit) {
            (Some(selector), None, None) => {
                self.take_ahead(&Key::list(served, namespace, selector))
                    .await
            }
            _ => None,
        };
        let answer = match read_ahead {
            Some(Answer::List(answer)) => answer,
            _ => retry(|| api.list(params)).await,
        };
        if served.cached && unknown_resource(&answer) {
            // The disk cache named a resource the server no longer has: ask it, then list again.
            let Some(fresh) = self
                .rediscover(&served.resource.api_version, &served.resource.kind)
                .await?
            else {
                return Ok(Listing::NotServed);
            };
            return Box::pin(self.list_served(&fresh, namespace, params, reading)).await;
        }
        match answer {
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

    /// The resource rules the caller has in `namespace` (a SelfSubjectRulesReview), or `None`
    /// when the server will not say.
    pub async fn namespace_rules(&self, namespace: &str) -> Option<Vec<ResourceRule>> {
        let key = Key::Rules {
            namespace: namespace.to_owned(),
        };
        match self.take_ahead(&key).await {
            Some(Answer::Rules(rules)) => rules,
            _ => ask_rules(&self.client, namespace).await,
        }
    }
}

/// The server answered that it has no such resource (not that the object is missing): what a
/// stale discovery produces.
fn unknown_resource<T>(answer: &Result<T, kube::Error>) -> bool {
    matches!(answer, Err(kube::Error::Api(status))
        if status.code == 404 && status.message == "the server could not find the requested resource")
}

/// Asks the server for the caller's rules in `namespace`.
pub(super) async fn ask_rules(client: &kube::Client, namespace: &str) -> Option<Vec<ResourceRule>> {
    let api: kube::Api<SelfSubjectRulesReview> = kube::Api::all(client.clone());
    let review = SelfSubjectRulesReview {
        spec: SelfSubjectRulesReviewSpec {
            namespace: Some(namespace.to_owned()),
        },
        ..SelfSubjectRulesReview::default()
    };
    let params = kube::api::PostParams::default();
    let answer = retry(|| api.create(&params, &review)).await.ok()?;
    Some(answer.status?.resource_rules)
}
