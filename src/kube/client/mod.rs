//! Talking to any API server: connecting, discovering the kinds it serves, retrying requests.
//! Nothing here knows about releases.

pub(crate) mod ahead;
pub(crate) mod connect;
pub(crate) mod discovery;
pub(crate) mod discovery_disk;
pub(crate) mod read;
pub(crate) mod retry;

use kube::Client;

/// How many requests one step keeps in flight: writes, permission reviews, namespaced lists.
/// Enough to hide the round trips, few enough that API priority and fairness never queues
/// plane behind itself.
pub const IN_FLIGHT: usize = 8;
/// In flight for reads of one object each (health, existence): small, and answered from the
/// server's cache.
pub const READS_IN_FLIGHT: usize = 16;
/// In flight for the lists a command reads before it decides (one per kind and namespace, by
/// plane's labels): all of a bundle's in one wave. API priority and fairness gives a client's
/// read-only requests far more seats than this (kubectl's discovery alone sends one request per
/// group-version at once).
pub const LISTS_IN_FLIGHT: usize = 48;
/// In flight for lists across all namespaces, the heaviest reads plane makes.
pub const WIDE_LISTS_IN_FLIGHT: usize = 4;

/// A connected cluster: the one way to reach its client, with what discovery has learnt of it
/// and how it was named.
pub struct Cluster {
    client: Client,
    cache: discovery::Cache,
    ahead: ahead::Ahead,
    /// The kubeconfig context, or `in-cluster`.
    pub context: String,
    pub server: String,
}

impl Cluster {
    /// A cluster reached through `client`; nothing is discovered yet. `discovery_file` keeps
    /// its discovery between commands (see `discovery_disk`).
    pub fn new(
        client: Client,
        context: String,
        server: String,
        discovery_file: Option<std::path::PathBuf>,
    ) -> Self {
        Self {
            client,
            cache: discovery::Cache::new(discovery_file),
            ahead: ahead::Ahead::default(),
            context,
            server,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}
