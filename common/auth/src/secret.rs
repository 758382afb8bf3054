//! The key that signs tokens. Configured (`auth.jwt_secret`, or `SLUICE_AUTH__JWT_SECRET`) it
//! must be at least 32 bytes; `sluice serve` without one generates a random key once and keeps
//! it in the data directory, so a local install works without setup and its tokens survive a
//! restart. Nothing ships with a usable default.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use thiserror::Error;

/// HS256 wants a key at least as long as its hash (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Error)]
pub enum SecretError {
    #[error(
        "auth.jwt_secret is {0} bytes; it must be at least {MIN_SECRET_BYTES} (generate one with \
         `openssl rand -base64 48`)"
    )]
    TooShort(usize),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Checks a configured secret.
pub fn configured(secret: &str) -> Result<Vec<u8>, SecretError> {
    let bytes = secret.trim().as_bytes();
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort(bytes.len()));
    }
    Ok(bytes.to_vec())
}

/// The secret kept at `path`, created (random, readable by the owner only) if missing.
pub fn load_or_create(path: &Path) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => return configured(&text),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        Err(_) => {}
    }
    let mut random = [0u8; 48];
    rand::rng().fill_bytes(&mut random);
    let secret = URL_SAFE_NO_PAD.encode(random);
    sluice_storage::write_durably(path, secret.as_bytes(), Some(0o600)).map_err(io)?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert!(matches!(
            configured("too-short"),
            Err(SecretError::TooShort(9))
        ));
        assert!(configured(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn a_generated_secret_is_kept_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwt-secret");
        let first = load_or_create(&path).expect("created");
        assert!(first.len() >= MIN_SECRET_BYTES);
        assert_eq!(load_or_create(&path).expect("read back"), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
    }
}
