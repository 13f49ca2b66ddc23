//! Connect like kubectl: --kubeconfig, --context, KUBECONFIG, ~/.kube/config, in-cluster.

use std::path::PathBuf;
use std::time::Duration;

use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tower::timeout::TimeoutLayer;

use super::Cluster;
use crate::kube::error::KubeError;

/// How to find the cluster.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    /// How long one request may wait for the server's answer (its headers; a watch then streams
    /// for as long as it needs). `None` waits forever.
    pub request_timeout: Option<Duration>,
}

/// Builds a client. No request is sent yet.
///
/// # Errors
/// When no configuration can be found or it is invalid.
pub async fn connect(options: &ConnectOptions) -> Result<Cluster, KubeError> {
    let kube_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let (mut config, context) = if let Some(path) = &options.kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path).map_err(|err| KubeError::Connect {
            reason: format!(
                "cannot read kubeconfig {}: {}",
                path.display(),
                crate::kube::error::error_chain(&err)
            ),
            hint: Some("check the --kubeconfig path".into()),
        })?;
        let context = options
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())
            .unwrap_or_default();
        let config = Config::from_custom_kubeconfig(kubeconfig, &kube_options)
            .await
            .map_err(|err| KubeError::Connect {
                reason: format!(
                    "kubeconfig {}: {}",
                    path.display(),
                    crate::kube::error::error_chain(&err)
                ),
                hint: Some("check --context against `kubectl config get-contexts`".into()),
            })?;
        (config, context)
    } else {
        match Kubeconfig::read() {
            Ok(kubeconfig) => {
                let context = options
                    .context
                    .clone()
                    .or_else(|| kubeconfig.current_context.clone())
                    .unwrap_or_default();
                let config = Config::from_kubeconfig(&kube_options)
                    .await
                    .map_err(|err| KubeError::Connect {
                        reason: crate::kube::error::error_chain(&err),
                        hint: Some("check --context against `kubectl config get-contexts`".into()),
                    })?;
                (config, context)
            }
            Err(file_err) => {
                if options.context.is_some() {
                    return Err(KubeError::Connect {
                        reason: format!(
                            "--context needs a kubeconfig: {}",
                            crate::kube::error::error_chain(&file_err)
                        ),
                        hint: Some("pass --kubeconfig FILE or set KUBECONFIG".into()),
                    });
                }
                let config = Config::incluster().map_err(|err| KubeError::Connect {
                    reason: format!(
                        "no kubeconfig ({}) and not in a cluster ({})",
                        crate::kube::error::error_chain(&file_err),
                        crate::kube::error::error_chain(&err)
                    ),
                    hint: Some("pass --kubeconfig FILE or set KUBECONFIG".into()),
                })?;
                (config, "in-cluster".to_owned())
            }
        }
    };
    let server = config
        .cluster_url
        .to_string()
        .trim_end_matches('/')
        .to_owned();
    let discovery_file =
        super::discovery_disk::file_for(&server, config.root_cert.as_deref().unwrap_or_default());
    // One retry policy, bounded and visible: plane's own (see retry.rs). kube's built-in layer
    // retries 429/503 up to 15 times with backoff growing to minutes, under every plane retry.
    config.default_retry = false;
    let builder = ClientBuilder::try_from(config).map_err(|err| KubeError::Connect {
        reason: crate::kube::error::error_chain(&err),
        hint: None,
    })?;
    let client: Client = match options.request_timeout {
        Some(limit) => builder.with_layer(&TimeoutLayer::new(limit)).build(),
        None => builder.build(),
    };
    Ok(Cluster::new(client, context, server, discovery_file))
}

/// The contexts of the kubeconfig (`path`, else KUBECONFIG or ~/.kube/config) whose cluster is
/// `server`; none when the kubeconfig cannot be read.
pub fn contexts_reaching(path: Option<&std::path::Path>, server: &str) -> Vec<String> {
    let config = match path {
        Some(path) => Kubeconfig::read_from(path).ok(),
        None => Kubeconfig::read().ok(),
    };
    let Some(config) = config else {
        return Vec::new();
    };
    let server = server.trim_end_matches('/');
    config
        .contexts
        .iter()
        .filter(|named| {
            let cluster = named.context.as_ref().map(|c| c.cluster.as_str());
            config.clusters.iter().any(|c| {
                Some(c.name.as_str()) == cluster
                    && c.cluster
                        .as_ref()
                        .and_then(|c| c.server.as_deref())
                        .map(|s| s.trim_end_matches('/'))
                        == Some(server)
            })
        })
        .map(|named| named.name.clone())
        .collect()
}
