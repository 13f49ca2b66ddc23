//! Reads started before they are needed: what a command will read before it decides goes out in
//! one wave, and the step that needs an answer takes it from here instead of asking again.
//!
//! An answer is taken once; what is read after a write goes to the server, because a command
//! forgets what it read ahead before it writes ([`Cluster::forget_ahead`]).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::authorization::v1::ResourceRule;
use kube::api::{DynamicObject, ListParams, ObjectList};
use tokio::task::JoinHandle;

use super::Cluster;
use super::discovery::ServedKind;
use super::retry::retry;

/// At most this many reads go out ahead; a larger render reads the rest when it needs them.
const MOST: usize = 96;

/// A read to start now.
#[derive(Debug, Clone)]
pub enum ReadAhead {
    /// The objects of a kind in a namespace (or all namespaces) that a label selector selects.
    List {
        served: ServedKind,
        namespace: Option<String>,
        selector: String,
    },
    /// One object by name.
    Get {
        served: ServedKind,
        namespace: Option<String>,
        name: String,
    },
    /// The caller's rules in a namespace (a SelfSubjectRulesReview).
    Rules { namespace: String },
}

/// What identifies a read, so that the step asking for it finds it: the resource's path (a
/// stale discovery's plural is another key than the server's), its namespace, and the selector
/// or name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Key {
    List {
        api_version: String,
        plural: String,
        namespace: Option<String>,
        selector: String,
    },
    Get {
        api_version: String,
        plural: String,
        namespace: Option<String>,
        name: String,
    },
    Rules {
        namespace: String,
    },
}

impl Key {
    pub(super) fn list(served: &ServedKind, namespace: Option<&str>, selector: &str) -> Self {
        Self::List {
            api_version: served.resource.api_version.clone(),
            plural: served.resource.plural.clone(),
            namespace: namespace.filter(|_| served.namespaced).map(str::to_owned),
            selector: selector.to_owned(),
        }
    }

    pub(super) fn get(served: &ServedKind, namespace: Option<&str>, name: &str) -> Self {
        Self::Get {
            api_version: served.resource.api_version.clone(),
            plural: served.resource.plural.clone(),
            namespace: namespace.filter(|_| served.namespaced).map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

/// An answer read ahead.
pub(super) enum Answer {
    List(Result<ObjectList<DynamicObject>, kube::Error>),
    Get(Box<Result<DynamicObject, kube::Error>>),
    Rules(Option<Vec<ResourceRule>>),
}

/// The reads in flight or answered, by key.
#[derive(Default)]
pub(super) struct Ahead(Mutex<HashMap<Key, JoinHandle<Answer>>>);

impl Ahead {
    fn reads(&self) -> std::sync::MutexGuard<'_, HashMap<Key, JoinHandle<Answer>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Cluster {
    /// Starts `reads` now, all at once (up to a bound); a later [`Cluster::list_served`],
    /// [`Cluster::get`] or rules review of the same read takes its answer.
    pub fn read_ahead(&self, reads: impl IntoIterator<Item = ReadAhead>) {
        let mut started = self.ahead.reads();
        for read in reads {
            if started.len() >= MOST {
                break;
            }
            let (key, task) = self.start(read);
            if let std::collections::hash_map::Entry::Vacant(slot) = started.entry(key) {
                slot.insert(tokio::spawn(task));
            }
        }
    }

    /// Forgets every read started ahead (and stops those still in flight): before a write, so
    /// that nothing read before it is taken for the state after it.
    pub fn forget_ahead(&self) {
        for (_, task) in self.ahead.reads().drain() {
            task.abort();
        }
    }

    /// The answer read ahead under `key`, if one was started (and did not fail to run).
    pub(super) async fn take_ahead(&self, key: &Key) -> Option<Answer> {
        let task = self.ahead.reads().remove(key)?;
        task.await.ok()
    }

    fn start(&self, read: ReadAhead) -> (Key, impl Future<Output = Answer> + Send + 'static) {
        let client = self.client.clone();
        let key = match &read {
            ReadAhead::List {
                served,
                namespace,
                selector,
            } => Key::list(served, namespace.as_deref(), selector),
            ReadAhead::Get {
                served,
                namespace,
                name,
            } => Key::get(served, namespace.as_deref(), name),
            ReadAhead::Rules { namespace } => Key::Rules {
                namespace: namespace.clone(),
            },
        };
        let task = async move {
            match read {
                ReadAhead::List {
                    served,
                    namespace,
                    selector,
                } => {
                    let api = super::discovery::api_for(client, &served, namespace.as_deref());
                    let params = ListParams::default().labels(&selector);
                    Answer::List(retry(|| api.list(&params)).await)
                }
                ReadAhead::Get {
                    served,
                    namespace,
                    name,
                } => {
                    let api = super::discovery::api_for(client, &served, namespace.as_deref());
                    Answer::Get(Box::new(retry(|| api.get(&name)).await))
                }
                ReadAhead::Rules { namespace } => {
                    Answer::Rules(super::read::ask_rules(&client, &namespace).await)
                }
            }
        };
        (key, task)
    }
}
