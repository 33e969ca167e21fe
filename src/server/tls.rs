//! HTTPS, with HTTP/2 for browsers and HTTP/1.1 for everyone else.
//!
//! A browser opens at most six HTTP/1.1 connections to one host, so a page with more cameras
//! than that stalls unless its streams share a connection. HTTP/2 multiplexes every request
//! of a page over one connection, and browsers only speak it over TLS: with `--tls-cert` and
//! `--tls-key`, framecast serves HTTPS and offers `h2` and `http/1.1` by ALPN.
//!
//! Certificates and keys are read once at start (PEM; the key as PKCS#8, PKCS#1 or SEC1), with
//! rustls on the `ring` provider, so a mistake stops the start with a clear error.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;

/// What turns an accepted connection into a TLS one; cloning it is cheap.
#[derive(Clone)]
pub struct Tls(pub TlsAcceptor);

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls(..)")
    }
}

/// Reads `cert` (a PEM chain, leaf first) and `key` (its PEM private key) into an acceptor
/// that offers HTTP/2 and HTTP/1.1.
pub fn acceptor(cert: &Path, key: &Path) -> Result<Tls, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("cannot read the TLS certificate {}: {err}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "the TLS certificate file {} holds no certificate",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|err| format!("cannot read the TLS key {}: {err}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS setup failed: {err}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|err| {
            format!(
                "the TLS key {} does not fit the certificate {}: {err}",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls(TlsAcceptor::from(Arc::new(config))))
}
