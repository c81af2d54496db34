//! Secrets at rest: XChaCha20-Poly1305 under the master key. A sealed value is
//! `version(1) || nonce(24) || ciphertext+tag`.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
pub const MASTER_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key must be {MASTER_KEY_LEN} bytes")]
    BadKey,
    #[error("sealed secret cannot be opened (wrong master key or corrupted data)")]
    Open,
}

/// Seals and opens secrets with the master key. Cheap to clone.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

impl Cipher {
    pub fn new(master_key: &[u8]) -> Result<Self, CryptoError> {
        if master_key.len() != MASTER_KEY_LEN {
            return Err(CryptoError::BadKey);
        }
        let aead =
            XChaCha20Poly1305::new_from_slice(master_key).map_err(|_| CryptoError::BadKey)?;
        Ok(Self { aead })
    }

    pub fn generate_key() -> [u8; MASTER_KEY_LEN] {
        let mut key = [0u8; MASTER_KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        key
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(XNonce::from_slice(&nonce), plaintext)
            // Invariant: encryption only fails for plaintexts larger than
            // 256 GiB, far beyond any secret.
            .expect("XChaCha20-Poly1305 encryption of a small buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(CryptoError::Open);
        }
        let (nonce, ciphertext) = sealed[1..].split_at(NONCE_LEN);
        self.aead
            .decrypt(XNonce::from_slice(nonce), ciphertext)
            .map_err(|_| CryptoError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_tampering_is_detected() {
        let cipher = Cipher::new(&Cipher::generate_key()).unwrap();
        let sealed = cipher.seal(b"whsec_secret");
        assert!(!sealed.windows(6).any(|w| w == b"whsec_"));
        assert_eq!(cipher.open(&sealed).unwrap(), b"whsec_secret");
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(cipher.open(&tampered).is_err());
        let other = Cipher::new(&Cipher::generate_key()).unwrap();
        assert!(other.open(&sealed).is_err());
    }
}
