//! The kubeconfig a server writes for its clients (kubectl, kube-rs, plane): the server URL, the
//! CA that signed its certificate, and the token.

use std::path::Path;

/// A kubeconfig with one cluster, user and context, all named `plane-test`.
pub fn render(url: &str, token: &str, ca_pem: &str) -> String {
    let ca = crate::tls::base64(ca_pem.as_bytes());
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: plane-test
  cluster:
    server: {url}
    certificate-authority-data: {ca}
contexts:
- name: plane-test
  context:
    cluster: plane-test
    user: plane-test
    namespace: default
current-context: plane-test
users:
- name: plane-test
  user:
    token: {token}
"
    )
}

/// Writes the file whole (temporary file, then rename), so a reader polling for it never sees
/// half a kubeconfig.
pub fn write(path: &Path, url: &str, token: &str, ca_pem: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, render(url, token, ca_pem))?;
    std::fs::rename(&tmp, path)
}

/// One kubeconfig with a context per `(name, kubeconfig)`: the first cluster and user of each
/// file, renamed `name`, under a context `name` (the current context is the first). Several
/// clusters, one file, as a platform engineer's kubeconfig holds its regions.
///
/// # Panics
/// A file that cannot be read or is not a kubeconfig (this is for tests and benches).
pub fn merged(contexts: &[(&str, &Path)]) -> String {
    let mut clusters = Vec::new();
    let mut users = Vec::new();
    let mut named = Vec::new();
    for (name, path) in contexts {
        let own: serde_json::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(path).expect("a readable kubeconfig"))
                .expect("a kubeconfig");
        let mut cluster = own["clusters"][0].clone();
        cluster["name"] = (*name).into();
        clusters.push(cluster);
        let mut user = own["users"][0].clone();
        user["name"] = (*name).into();
        users.push(user);
        named.push(serde_json::json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    serde_yaml_ng::to_string(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": users,
        "contexts": named,
        "current-context": contexts.first().map_or("", |(name, _)| *name),
    }))
    .expect("YAML")
}
