//! TLS: a CA and a server certificate for 127.0.0.1 and localhost, generated once per process.
//! kubectl sends bearer tokens only over TLS, so plain HTTP is not an option.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, LazyLock};

/// Why the certificates could not be made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate the test CA and certificate: {message}")]
    Generate { message: String },
}

/// The CA's PEM (for kubeconfigs) and the server's TLS configuration.
pub struct Tls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

static TLS: LazyLock<Result<Tls, TlsError>> = LazyLock::new(generate);

/// The process-wide certificates; generating them once keeps each server start cheap.
pub fn get() -> Result<&'static Tls, TlsError> {
    TLS.as_ref().map_err(Clone::clone)
}

fn generate() -> Result<Tls, TlsError> {
    let err = |e: &dyn std::fmt::Display| TlsError::Generate {
        message: e.to_string(),
    };
    let ca_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "plane-test-apiserver CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| err(&e))?;
    let leaf_key = KeyPair::generate().map_err(|e| err(&e))?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| err(&e))?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.distinguished_name
        .push(DnType::CommonName, "plane-test-apiserver");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = leaf.signed_by(&leaf_key, &ca).map_err(|e| err(&e))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key)
        .map_err(|e| err(&e))?;
    // The server speaks HTTP/1.1 only; clients offering h2 fall back to it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        ca_pem: ca.pem(),
        config: Arc::new(config),
    })
}

/// Standard base64 with padding, for `certificate-authority-data`.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_vectors() {
        let b = super::base64;
        assert_eq!(b(b""), "");
        assert_eq!(b(b"f"), "Zg==");
        assert_eq!(b(b"fo"), "Zm8=");
        assert_eq!(b(b"foo"), "Zm9v");
        assert_eq!(b(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn certificates_are_generated() {
        let tls = super::get().unwrap();
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
