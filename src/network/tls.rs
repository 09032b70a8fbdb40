//! TLS for SSL and SASL_SSL listeners: a rustls server configuration built from PEM files
//! (TLS 1.2 and 1.3 only, the aws-lc-rs provider), client certificates verified against
//! `tls.client_ca_file` when `tls.client_auth` asks for them, and reloading: [`Tls::reload`]
//! rebuilds the configuration when the files changed (called on SIGHUP and every few seconds);
//! new handshakes use the new certificate, established connections keep theirs. A reload that
//! fails (a half-written file) keeps the previous configuration. With `http_tls` the HTTP port
//! serves the same certificate ([`Tls::http_config`]), reloaded with it.

use crate::config::TlsSettings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use tokio_rustls::TlsAcceptor;

/// What identifies a version of the files: (path, modification time, length).
type Stamp = Vec<(String, Option<SystemTime>, u64)>;

pub struct Tls {
    settings: TlsSettings,
    current: RwLock<TlsAcceptor>,
    /// The certificate the HTTP port serves (`http_tls`), swapped on reload like the Kafka
    /// listeners' configuration.
    http_cert: Arc<HttpCert>,
    stamp: Mutex<Stamp>,
}

/// Resolves every HTTPS handshake to the current certificate.
#[derive(Debug)]
struct HttpCert(RwLock<Arc<rustls::sign::CertifiedKey>>);

impl rustls::server::ResolvesServerCert for HttpCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Tls {
    /// Load the certificate, key and client CA; an error names the file at fault.
    pub fn load(settings: &TlsSettings) -> Result<Tls, String> {
        let stamp = stamp(settings);
        let (config, key) = build(settings)?;
        Ok(Tls {
            settings: settings.clone(),
            current: RwLock::new(TlsAcceptor::from(Arc::new(config))),
            http_cert: Arc::new(HttpCert(RwLock::new(Arc::new(key)))),
            stamp: Mutex::new(stamp),
        })
    }

    /// The rustls configuration of the HTTP port: the same certificate (reloaded with it), no
    /// client certificates (the HTTP side has its own token/basic authentication), HTTP/1.1.
    pub fn http_config(&self) -> Result<ServerConfig, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.http_cert.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The acceptor new connections use.
    pub fn acceptor(&self) -> TlsAcceptor {
        self.current
            .read()
            .map(|a| a.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    pub fn handshake_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.settings.handshake_timeout_ms)
    }

    /// Rebuild the configuration if the files changed (or always, with `force`: SIGHUP).
    /// `Ok(true)`: reloaded.
    pub fn reload(&self, force: bool) -> Result<bool, String> {
        let now = stamp(&self.settings);
        let mut last = self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if !force && *last == now {
            return Ok(false);
        }
        let (config, key) = build(&self.settings)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            TlsAcceptor::from(Arc::new(config));
        *self.http_cert.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
        *last = now;
        Ok(true)
    }
}

fn stamp(s: &TlsSettings) -> Stamp {
    [&s.cert_file, &s.key_file, &s.client_ca_file]
        .into_iter()
        .flatten()
        .map(|p| {
            let m = std::fs::metadata(p).ok();
            (
                p.clone(),
                m.as_ref().and_then(|m| m.modified().ok()),
                m.map_or(0, |m| m.len()),
            )
        })
        .collect()
}

/// The PEM certificate chain and private key named by the settings.
fn load_pair(
    s: &TlsSettings,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let cert_file = s.cert_file.as_deref().ok_or("tls.cert_file is not set")?;
    let key_file = s.key_file.as_deref().ok_or("tls.key_file is not set")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| format!("tls.cert_file {cert_file}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls.cert_file {cert_file}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("tls.cert_file {cert_file}: no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("tls.key_file {key_file}: {e}"))?;
    Ok((certs, key))
}

/// The rustls server configuration the settings describe, and the same certificate and key
/// for the HTTP port (the files are read once).
pub fn build(s: &TlsSettings) -> Result<(ServerConfig, rustls::sign::CertifiedKey), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (certs, key) = load_pair(s)?;
    let signer = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| format!("tls.key_file: {e}"))?;
    let http_key = rustls::sign::CertifiedKey::new(certs.clone(), signer);
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match s.client_auth.as_str() {
        "requested" | "required" => {
            let ca_file = s
                .client_ca_file
                .as_deref()
                .ok_or("tls.client_ca_file is not set")?;
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca_file)
                .map_err(|e| format!("tls.client_ca_file {ca_file}: {e}"))?
            {
                let c = c.map_err(|e| format!("tls.client_ca_file {ca_file}: {e}"))?;
                roots
                    .add(c)
                    .map_err(|e| format!("tls.client_ca_file {ca_file}: {e}"))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if s.client_auth == "requested" {
                v.allow_unauthenticated()
            } else {
                v
            };
            let verifier = v
                .build()
                .map_err(|e| format!("tls.client_ca_file {ca_file}: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls.cert_file/tls.key_file: {e}"))?;
    Ok((config, http_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_named() {
        let mut s = TlsSettings {
            cert_file: Some("/nonexistent/cert.pem".into()),
            key_file: Some("/nonexistent/key.pem".into()),
            ..Default::default()
        };
        let e = build(&s).unwrap_err();
        assert!(e.contains("tls.cert_file /nonexistent/cert.pem"), "{e}");
        s.cert_file = None;
        assert!(build(&s).unwrap_err().contains("tls.cert_file"));
    }
}
