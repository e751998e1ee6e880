//! A gRPC channel to a node: plaintext for `http://`, TLS for `https://` (the CA that signed
//! the node's certificate, and for mutual TLS a client certificate and key).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::error::{chain, fix_for, ClientError};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a call may take (a wait for a commit is capped at 300 s by the node).
const CALL_TIMEOUT: Duration = Duration::from_secs(310);

/// TLS for a connection: the CA that signed the node's certificate, and a client identity
/// (certificate and key, PEM) for a node that requires mutual TLS.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The client certificate and its key (PEM), for mutual TLS.
    pub identity: Option<(PathBuf, PathBuf)>,
}

impl Tls {
    /// The configuration for a node whose certificate names `domain`.
    pub fn config(&self, domain: &str) -> Result<ClientTlsConfig, ClientError> {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_pem(&self.ca, "CERTIFICATE")?))
            .domain_name(domain);
        if let Some((cert, key)) = &self.identity {
            config = config.identity(Identity::from_pem(
                read_pem(cert, "CERTIFICATE")?,
                read_pem(key, "PRIVATE KEY")?,
            ));
        }
        Ok(config)
    }
}

/// The PEM file `path`, which must hold a `kind`.
fn read_pem(path: &Path, kind: &str) -> Result<Vec<u8>, ClientError> {
    let bytes =
        std::fs::read(path).map_err(|e| ClientError::Tls(format!("{}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") || !text.contains(kind) {
        return Err(ClientError::Tls(format!(
            "{}: not a PEM file holding a {kind}",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Connects to the node at `url` (`http://host:port` or, with `tls`, `https://host:port`).
pub async fn connect(url: &str, tls: Option<&Tls>) -> Result<Channel, ClientError> {
    let bad = |why: String| ClientError::BadUrl {
        url: url.to_owned(),
        why,
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| bad(e.to_string()))?;
    match (url.starts_with("https://"), tls) {
        (true, Some(tls)) => {
            let domain = endpoint.uri().host().unwrap_or("localhost").to_owned();
            endpoint = endpoint
                .tls_config(tls.config(&domain)?)
                .map_err(|e| ClientError::Tls(chain(&e)))?;
        }
        (true, None) => {
            return Err(bad(
                "an https:// node needs the CA that signed its certificate (--ca)".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(bad(
                "TLS options given for a plaintext URL: use https://".into()
            ))
        }
        (false, None) if !url.starts_with("http://") => {
            return Err(bad("use http://host:port or https://host:port".into()))
        }
        (false, None) => {}
    }
    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(|e| {
            let cause = chain(&e);
            ClientError::Unreachable {
                url: url.to_owned(),
                fix: fix_for(&cause),
                cause,
            }
        })
}
