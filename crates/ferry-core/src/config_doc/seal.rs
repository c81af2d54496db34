//! Sealing a configuration document's secrets with a passphrase: a key is
//! derived with Argon2id from the passphrase and a random salt (the
//! parameters travel in the document), and each value is sealed with
//! XChaCha20-Poly1305 under it. A known value sealed alongside (`check`)
//! tells a wrong passphrase at once, before anything is imported.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::crypto::{Cipher, MASTER_KEY_LEN};

/// What `check` holds once opened.
const CHECK: &[u8] = b"ferry-config";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the passphrase does not open this document's secrets")]
    WrongPassphrase,
    #[error("a passphrase must be at least 12 characters")]
    WeakPassphrase,
    #[error("the document's sealing parameters are invalid: {0}")]
    BadParams(String),
    #[error("a sealed value is damaged: {0}")]
    Damaged(String),
}

/// How the key was derived (`kdf` is `argon2id`; costs as Argon2 names
/// them: memory in KiB, iterations, lanes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealParams {
    pub kdf: String,
    pub cipher: String,
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    /// Base64.
    pub salt: String,
    /// A known value sealed with the key, base64.
    pub check: String,
}

/// Seals and opens values with a key derived from a passphrase.
pub struct Sealer {
    cipher: Cipher,
    params: SealParams,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(***)")
    }
}

fn derive(passphrase: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<Cipher, SealError> {
    let params = Params::new(m, t, p, Some(MASTER_KEY_LEN))
        .map_err(|e| SealError::BadParams(e.to_string()))?;
    let mut key = [0u8; MASTER_KEY_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| SealError::BadParams(e.to_string()))?;
    Cipher::new(&key).map_err(|e| SealError::BadParams(e.to_string()))
}

impl Sealer {
    /// A new key from `passphrase` with a fresh salt (OWASP's Argon2id
    /// costs: 19 MiB, 2 iterations, 1 lane).
    pub fn new(passphrase: &str) -> Result<Self, SealError> {
        Self::with_costs(passphrase, 19 * 1024, 2, 1)
    }

    pub fn with_costs(passphrase: &str, m: u32, t: u32, p: u32) -> Result<Self, SealError> {
        if passphrase.chars().count() < 12 {
            return Err(SealError::WeakPassphrase);
        }
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let cipher = derive(passphrase, &salt, m, t, p)?;
        let check = B64.encode(cipher.seal(CHECK));
        Ok(Self {
            params: SealParams {
                kdf: "argon2id".into(),
                cipher: "xchacha20poly1305".into(),
                m_cost: m,
                t_cost: t,
                p_cost: p,
                salt: B64.encode(salt),
                check,
            },
            cipher,
        })
    }

    /// The key of a document sealed with `params`, if `passphrase` is its.
    pub fn unlock(passphrase: &str, params: &SealParams) -> Result<Self, SealError> {
        if params.kdf != "argon2id" || params.cipher != "xchacha20poly1305" {
            return Err(SealError::BadParams(format!(
                "unknown kdf `{}` or cipher `{}`",
                params.kdf, params.cipher
            )));
        }
        // Bounds that keep a hostile document from exhausting memory or time.
        if params.m_cost > 256 * 1024 || params.t_cost > 10 || params.p_cost > 8 {
            return Err(SealError::BadParams("costs too high".into()));
        }
        let salt = B64
            .decode(&params.salt)
            .map_err(|e| SealError::BadParams(format!("salt: {e}")))?;
        let cipher = derive(
            passphrase,
            &salt,
            params.m_cost,
            params.t_cost,
            params.p_cost,
        )?;
        let check = B64
            .decode(&params.check)
            .map_err(|e| SealError::BadParams(format!("check: {e}")))?;
        match cipher.open(&check) {
            Ok(v) if v == CHECK => Ok(Self {
                cipher,
                params: params.clone(),
            }),
            _ => Err(SealError::WrongPassphrase),
        }
    }

    pub fn params(&self) -> &SealParams {
        &self.params
    }

    /// `plaintext` sealed, as base64.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        B64.encode(self.cipher.seal(plaintext))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = B64
            .decode(sealed)
            .map_err(|e| SealError::Damaged(e.to_string()))?;
        self.cipher
            .open(&bytes)
            .map_err(|_| SealError::Damaged("it does not open with this document's key".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(passphrase: &str) -> Sealer {
        Sealer::with_costs(passphrase, 64, 1, 1).unwrap()
    }

    #[test]
    fn only_the_passphrase_opens_what_it_sealed() {
        let sealer = cheap("correct horse battery");
        let sealed = sealer.seal(b"whsec_secret");
        assert!(!sealed.contains("whsec"));
        let again = Sealer::unlock("correct horse battery", sealer.params()).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"whsec_secret");
        assert_eq!(
            Sealer::unlock("wrong horse battery", sealer.params()).unwrap_err(),
            SealError::WrongPassphrase
        );
        let other = cheap("correct horse battery");
        assert!(
            matches!(other.open(&sealed), Err(SealError::Damaged(_))),
            "another salt"
        );
        assert_eq!(Sealer::new("short").unwrap_err(), SealError::WeakPassphrase);
    }

    #[test]
    fn hostile_parameters_are_refused_before_any_work() {
        let mut params = cheap("correct horse battery").params().clone();
        params.m_cost = u32::MAX;
        assert!(matches!(
            Sealer::unlock("correct horse battery", &params),
            Err(SealError::BadParams(_))
        ));
        params.m_cost = 64;
        params.kdf = "md5".into();
        assert!(matches!(
            Sealer::unlock("correct horse battery", &params),
            Err(SealError::BadParams(_))
        ));
    }
}
