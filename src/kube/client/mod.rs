//! Talking to any API server: connecting, discovering the kinds it serves, retrying requests.
//! Nothing here knows about releases.

pub(crate) mod connect;
pub(crate) mod discovery;
pub(crate) mod read;
pub(crate) mod retry;

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;

/// How many requests one step keeps in flight: writes, permission reviews, namespaced lists.
/// Enough to hide the round trips, few enough that API priority and fairness never queues
/// plane behind itself.
pub const IN_FLIGHT: usize = 8;
/// In flight for reads of one object each (health, existence): small, and answered from the
/// server's cache.
pub const READS_IN_FLIGHT: usize = 16;
/// In flight for lists across all namespaces, the heaviest reads plane makes.
pub const WIDE_LISTS_IN_FLIGHT: usize = 4;

/// A connected cluster: the one way to reach its client, with what discovery has learnt of it
/// and how it was named.
pub struct Cluster {
    client: Client,
    cache: discovery::Cache,
    /// The kubeconfig context, or `in-cluster`.
    pub context: String,
    pub server: String,
}

impl Cluster {
    /// A cluster reached through `client`; nothing is discovered yet.
    pub fn new(client: Client, context: String, server: String) -> Self {
        Self {
            client,
            cache: Mutex::new(HashMap::new()),
            context,
            server,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}
