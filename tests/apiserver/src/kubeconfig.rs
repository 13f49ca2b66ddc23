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
