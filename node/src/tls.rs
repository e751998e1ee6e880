//! TLS and mutual TLS on the client API (rustls through tonic): the server's identity and the
//! client CA from files, the client side for the CLI and the load generator, and a
//! development CA with node and client certificates (`quorate tls gen`, rcgen).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Error.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {why}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Certificate generation failed.
    #[error("generating certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads a PEM file and checks it holds at least one `kind` block (`CERTIFICATE`, `PRIVATE KEY`).
fn read_pem(path: &Path, kind: &str) -> Result<Vec<u8>, TlsError> {
    let bytes = read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") || !text.contains(kind) {
        return Err(TlsError::Bad {
            path: path.to_owned(),
            why: format!("not a PEM file holding a {kind}"),
        });
    }
    Ok(bytes)
}

/// The server side: `cert` and `key` (PEM) identify the node; with `client_ca`, only clients
/// with a certificate that CA signed may connect (mutual TLS).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerTlsConfig, TlsError> {
    let identity = Identity::from_pem(
        read_pem(cert, "CERTIFICATE")?,
        read_pem(key, "PRIVATE KEY")?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = client_ca {
        config = config
            .client_ca_root(Certificate::from_pem(read_pem(ca, "CERTIFICATE")?))
            .client_auth_optional(false);
    }
    Ok(config)
}

/// Files `generate` writes.
pub const CA_CERT: &str = "ca.pem";
/// The CA's key.
pub const CA_KEY: &str = "ca.key";
/// The node's certificate.
pub const NODE_CERT: &str = "node.pem";
/// The node's key.
pub const NODE_KEY: &str = "node.key";
/// A client certificate.
pub const CLIENT_CERT: &str = "client.pem";
/// Its key.
pub const CLIENT_KEY: &str = "client.key";

/// Writes `text` to `dir/name`; keys (`.key`) readable by their owner only.
fn write(dir: &Path, name: &str, text: &str) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mode = if name.ends_with(".key") { 0o600 } else { 0o644 };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|source| TlsError::Io { path, source })
}

/// The development CA's certificate parameters (the same every time, so that a CA key read
/// back from `ca.key` signs certificates that chain to the `ca.pem` written with it).
fn ca_params() -> Result<CertificateParams, TlsError> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "quorate development CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(ca)
}

/// Writes a node certificate valid for `hosts` (IP addresses or DNS names) and a client
/// certificate into `dir`, signed by a development CA: a new one written to `dir` too, or with
/// `ca_dir`, the one whose `ca.pem` and `ca.key` are there (one CA for the nodes of several
/// hosts). For test networks and localnets: production deployments use their organisation's CA.
pub fn generate(dir: &Path, hosts: &[String], ca_dir: Option<&Path>) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let (ca_cert, ca_key, ca_pem) = match ca_dir {
        Some(ca_dir) => {
            let key_path = ca_dir.join(CA_KEY);
            let pem = String::from_utf8_lossy(&read_pem(&key_path, "PRIVATE KEY")?).into_owned();
            let key = KeyPair::from_pem(&pem).map_err(|e| TlsError::Bad {
                path: key_path,
                why: e.to_string(),
            })?;
            let ca_pem = String::from_utf8_lossy(&read_pem(&ca_dir.join(CA_CERT), "CERTIFICATE")?)
                .into_owned();
            (ca_params()?.self_signed(&key)?, key, ca_pem)
        }
        None => {
            let key = KeyPair::generate()?;
            let cert = ca_params()?.self_signed(&key)?;
            let pem = cert.pem();
            write(dir, CA_KEY, &key.serialize_pem())?;
            (cert, key, pem)
        }
    };

    let mut node = CertificateParams::new(hosts.to_vec())?;
    node.distinguished_name
        .push(DnType::CommonName, "quorate node");
    node.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let node_key = KeyPair::generate()?;
    let node_cert = node.signed_by(&node_key, &ca_cert, &ca_key)?;

    let mut client = CertificateParams::new(Vec::<String>::new())?;
    client
        .distinguished_name
        .push(DnType::CommonName, "quorate client");
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate()?;
    let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key)?;

    write(dir, CA_CERT, &ca_pem)?;
    write(dir, NODE_CERT, &node_cert.pem())?;
    write(dir, NODE_KEY, &node_key.serialize_pem())?;
    write(dir, CLIENT_CERT, &client_cert.pem())?;
    write(dir, CLIENT_KEY, &client_key.serialize_pem())?;
    Ok(())
}
