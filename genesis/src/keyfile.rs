//! Key files: an ed25519 key on disk as JSON, readable only by its owner.

use std::path::Path;

use quorate_proto::crypto::{Address, KeyError};
use quorate_proto::Keypair;
use serde::{Deserialize, Serialize};

/// An ed25519 key as stored on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Account address, hex.
    pub address: String,
    /// ed25519 public key, hex.
    pub public_key: String,
    /// ed25519 secret seed, hex. Keep this file private.
    pub secret_key: String,
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Could not read or write.
    #[error("key file {path}: {source}")]
    Io {
        /// Path.
        path: String,
        /// Error.
        source: std::io::Error,
    },
    /// Not the key file format.
    #[error("key file {path} is not valid: {source}")]
    Parse {
        /// Path.
        path: String,
        /// Error.
        source: serde_json::Error,
    },
    /// A field is not a valid key.
    #[error("key file {path}: {source}")]
    Key {
        /// Path.
        path: String,
        /// Error.
        source: KeyError,
    },
    /// The public key or address does not belong to the secret key.
    #[error("key file {path}: public key or address does not match the secret key")]
    Mismatch {
        /// Path.
        path: String,
    },
}

impl KeyFile {
    /// The file form of `key`.
    pub fn from_keypair(key: &Keypair) -> Self {
        Self {
            address: key.address().to_hex(),
            public_key: key.public().to_hex(),
            secret_key: hex::encode(key.secret_bytes()),
        }
    }

    /// Reads a key file and checks that its parts agree.
    pub fn load(path: &Path) -> Result<Keypair, KeyFileError> {
        let p = || path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| KeyFileError::Io { path: p(), source })?;
        let file: KeyFile = serde_json::from_str(&text)
            .map_err(|source| KeyFileError::Parse { path: p(), source })?;
        let secret = hex::decode(file.secret_key.trim()).map_err(|e| KeyFileError::Key {
            path: p(),
            source: KeyError::Hex(e.to_string()),
        })?;
        let secret: [u8; 32] = secret
            .as_slice()
            .try_into()
            .map_err(|_| KeyFileError::Key {
                path: p(),
                source: KeyError::Length {
                    expected: 32,
                    got: secret.len(),
                },
            })?;
        let key = Keypair::from_secret(&secret);
        let addr = Address::from_hex(&file.address)
            .map_err(|source| KeyFileError::Key { path: p(), source })?;
        if key.public().to_hex() != file.public_key.trim().to_lowercase() || key.address() != addr {
            return Err(KeyFileError::Mismatch { path: p() });
        }
        Ok(key)
    }

    /// Writes `key` to `path` with owner-only permissions (0600 on Unix).
    pub fn save(key: &Keypair, path: &Path) -> Result<(), KeyFileError> {
        let p = || path.display().to_string();
        let text =
            serde_json::to_string_pretty(&Self::from_keypair(key)).expect("key file serializes");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts
            .open(path)
            .map_err(|source| KeyFileError::Io { path: p(), source })?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(|source| KeyFileError::Io { path: p(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_roundtrip_and_tamper_detection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.json");
        let key = Keypair::generate();
        KeyFile::save(&key, &path).expect("save");
        assert_eq!(KeyFile::load(&path).expect("load").public(), key.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = Keypair::generate();
        let mut file = KeyFile::from_keypair(&key);
        file.address = other.address().to_hex();
        std::fs::write(&path, serde_json::to_string(&file).expect("json")).expect("write");
        assert!(matches!(
            KeyFile::load(&path),
            Err(KeyFileError::Mismatch { .. })
        ));
    }
}
