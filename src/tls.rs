//! TLS with rustls (ring provider, no OpenSSL): the listeners' server configs, the HTTP client
//! nodes use to call each other, and the local CA that `keyquorum cluster init --tls` writes.
//!
//! The client listener authenticates clients by bearer token, so it asks for no client
//! certificate. The peer listener also requires a client certificate issued by the cluster's
//! CA: peer messages are already signed by the sender's identity key, and mutual TLS keeps
//! anyone outside the cluster from even reaching the envelope parser.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsConfig;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM in {}", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

fn key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    // The error says which file, never what is in it.
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| anyhow!("cannot read a private key from {}: {e}", path.display()))
}

fn roots(ca: &Path) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca)? {
        roots
            .add(cert)
            .with_context(|| format!("unusable CA certificate in {}", ca.display()))?;
    }
    Ok(roots)
}

/// The client listener's config: server certificate only.
pub fn client_listener(tls: &TlsConfig) -> anyhow::Result<ServerConfig> {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs(&tls.cert)?, key(&tls.key)?)
        .context("TLS certificate and key do not match")
}

/// The peer listener's config: server certificate, and a client certificate from the CA.
pub fn peer_listener(tls: &TlsConfig) -> anyhow::Result<ServerConfig> {
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(&tls.ca)?), provider())
            .build()
            .context("client certificate verifier")?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&tls.cert)?, key(&tls.key)?)
        .context("TLS certificate and key do not match")
}

/// Makes `builder` trust only the cluster's CA and present this node's certificate.
pub fn peer_client(
    builder: reqwest::ClientBuilder,
    tls: &TlsConfig,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let ca = std::fs::read(&tls.ca).with_context(|| format!("cannot read {}", tls.ca.display()))?;
    let mut identity =
        std::fs::read(&tls.cert).with_context(|| format!("cannot read {}", tls.cert.display()))?;
    identity.push(b'\n');
    identity.extend(
        zeroize::Zeroizing::new(
            std::fs::read(&tls.key)
                .with_context(|| format!("cannot read {}", tls.key.display()))?,
        )
        .iter(),
    );
    let identity = zeroize::Zeroizing::new(identity);
    let mut builder = builder
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .identity(
            reqwest::Identity::from_pem(&identity)
                .map_err(|e| anyhow!("TLS client identity: {e}"))?,
        );
    for cert in reqwest::Certificate::from_pem_bundle(&ca)
        .map_err(|e| anyhow!("CA file {}: {e}", tls.ca.display()))?
    {
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// A cluster CA and the certificates it issued, PEM.
pub struct ClusterPki {
    pub ca_cert: String,
    pub ca_key: zeroize::Zeroizing<String>,
    /// Per node: (certificate, private key).
    pub nodes: Vec<(String, zeroize::Zeroizing<String>)>,
}

/// Generates a CA and one certificate per node, valid for `localhost`, `127.0.0.1`, the node's
/// name and its host, usable as server and as client certificate (mutual TLS between peers).
pub fn generate(nodes: &[(String, String)]) -> anyhow::Result<ClusterPki> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "keyquorum cluster CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key)?;
    let mut issued = Vec::new();
    for (name, host) in nodes {
        let mut sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        for extra in [name, host] {
            if !sans.contains(extra) {
                sans.push(extra.clone());
            }
        }
        // rcgen turns the entries that parse as IP addresses into IP SANs.
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        issued.push((cert.pem(), zeroize::Zeroizing::new(key.serialize_pem())));
    }
    Ok(ClusterPki {
        ca_cert: ca.pem(),
        ca_key: zeroize::Zeroizing::new(ca_key.serialize_pem()),
        nodes: issued,
    })
}
