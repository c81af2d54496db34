//! Secrets at rest: XChaCha20-Poly1305 under the master key. A sealed value is
//! `version(1) || nonce(24) || ciphertext+tag`.
//!
//! During a master-key rotation the cipher holds a key ring: it seals with
//! the new key and opens with either, until every secret is re-sealed.

use std::sync::{Arc, RwLock};

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

/// Seals and opens secrets with the master key. Cheap to clone; clones
/// share the key ring, so a rotation is seen by every holder.
#[derive(Clone)]
pub struct Cipher {
    ring: Arc<RwLock<Ring>>,
}

struct Ring {
    primary: XChaCha20Poly1305,
    older: Vec<XChaCha20Poly1305>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(***)")
    }
}

fn aead(key: &[u8]) -> Result<XChaCha20Poly1305, CryptoError> {
    if key.len() != MASTER_KEY_LEN {
        return Err(CryptoError::BadKey);
    }
    XChaCha20Poly1305::new_from_slice(key).map_err(|_| CryptoError::BadKey)
}

impl Cipher {
    pub fn new(master_key: &[u8]) -> Result<Self, CryptoError> {
        let ring = Ring {
            primary: aead(master_key)?,
            older: Vec::new(),
        };
        Ok(Self {
            ring: Arc::new(RwLock::new(ring)),
        })
    }

    /// Starts a rotation: seals with `new_key` from now on, and still opens
    /// what the previous keys sealed.
    pub fn rotate(&self, new_key: &[u8]) -> Result<(), CryptoError> {
        let new = aead(new_key)?;
        let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut ring.primary, new);
        ring.older.push(old);
        Ok(())
    }

    /// Ends a rotation once everything is re-sealed: only the current key
    /// opens secrets from now on.
    pub fn forget_older_keys(&self) {
        self.ring
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .older
            .clear();
    }

    pub fn generate_key() -> [u8; MASTER_KEY_LEN] {
        let mut key = [0u8; MASTER_KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        key
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        let ciphertext = ring
            .primary
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
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        std::iter::once(&ring.primary)
            .chain(ring.older.iter().rev())
            .find_map(|key| key.decrypt(XNonce::from_slice(nonce), ciphertext).ok())
            .ok_or(CryptoError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotation_opens_old_secrets_until_the_old_key_is_forgotten() {
        let cipher = Cipher::new(&[1; 32]).unwrap();
        let old = cipher.seal(b"old");
        let shared = cipher.clone();
        shared.rotate(&[2; 32]).unwrap();
        let new = cipher.seal(b"new");
        assert_eq!(cipher.open(&old).unwrap(), b"old");
        assert_eq!(cipher.open(&new).unwrap(), b"new");
        assert!(
            Cipher::new(&[1; 32]).unwrap().open(&new).is_err(),
            "new secrets use the new key"
        );
        let resealed = cipher.seal(&cipher.open(&old).unwrap());
        cipher.forget_older_keys();
        assert!(cipher.open(&old).is_err());
        assert_eq!(
            Cipher::new(&[2; 32]).unwrap().open(&resealed).unwrap(),
            b"old"
        );
    }

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
