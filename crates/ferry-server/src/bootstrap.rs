//! First start and every start: the data directory and its lock, the master
//! key, the default organization and the first admin API key.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::Utc;
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::crypto::{Cipher, MASTER_KEY_LEN};
use ferry_core::org::{
    ApiKey, NewKeySecret, Org, Scope, generate_key_secret, hash_key_secret, key_prefix,
};
use ferry_core::page::PageRequest;
use ferry_core::ports::{Resealing, Store};
use ferry_core::secret::Secret;
use ferry_core::{ApiKeyId, OrgId, StoreError};

const MASTER_KEY_FILE: &str = "master.key";
const NEXT_KEY_FILE: &str = "master.key.next";
const LOCK_FILE: &str = "ferry.lock";

/// Creates the data directory if needed and locks it: two servers on one
/// embedded store would hand out each other's deliveries.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .with_context(|| format!("cannot open the lock file in {}", dir.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another Ferry process is using {}; stop it or choose another --data-dir",
            dir.display()
        );
    }
    Ok(lock)
}

/// The master key and where it lives.
pub struct MasterKey {
    pub cipher: Cipher,
    /// The key file; `None` when the key comes from `FERRY_MASTER_KEY`.
    pub file: Option<PathBuf>,
    /// A rotation was interrupted (the next key file exists): it must be
    /// finished before serving.
    pub pending_rotation: bool,
}

/// The master key from `FERRY_MASTER_KEY` (64 hex characters), else from
/// the key file, which is created (mode 0600) on first start.
pub fn master_key(dir: &Path, configured: Option<&str>) -> anyhow::Result<MasterKey> {
    if let Some(hex) = configured {
        let bytes =
            decode_hex(hex.trim()).context("FERRY_MASTER_KEY must be 64 hexadecimal characters")?;
        let cipher = Cipher::new(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok(MasterKey {
            cipher,
            file: None,
            pending_rotation: false,
        });
    }
    let path = dir.join(MASTER_KEY_FILE);
    let bytes = if path.exists() {
        read_key(&path)?
    } else {
        let key = Cipher::generate_key();
        write_key(&path, &key)?;
        key.to_vec()
    };
    let cipher = Cipher::new(&bytes).map_err(|e| anyhow::anyhow!("{e}"))?;
    let next = dir.join(NEXT_KEY_FILE);
    let pending_rotation = next.exists();
    if pending_rotation {
        cipher
            .rotate(&read_key(&next)?)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(MasterKey {
        cipher,
        file: Some(path),
        pending_rotation,
    })
}

fn read_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_hex(text.trim()).with_context(|| format!("{} is not a valid master key", path.display()))
}

/// Writes a key file (mode 0600) durably: the file and its directory are
/// fsync'd before this returns.
fn write_key(path: &Path, key: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(encode_hex(key).as_bytes())?;
    file.sync_all()?;
    sync_dir(path)
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Rotates the master key without downtime: the new key is written first
/// (`master.key.next`), every secret is re-sealed with it in one transaction
/// while both keys can open, then the new key replaces the old file. A crash
/// at any point leaves a state the next start finishes. With the key in
/// `FERRY_MASTER_KEY`, the operator supplies the new key and must put it in
/// the environment before the next start.
pub async fn rotate_master_key(
    key: &MasterKey,
    store: &dyn Resealing,
    supplied: Option<&str>,
) -> anyhow::Result<u64> {
    let new_key = match (supplied, &key.file) {
        (Some(hex), _) => {
            decode_hex(hex.trim()).context("new_key must be 64 hexadecimal characters")?
        }
        (None, Some(_)) => Cipher::generate_key().to_vec(),
        (None, None) => bail!(
            "the master key comes from FERRY_MASTER_KEY: supply the new key (new_key), then set it in the environment"
        ),
    };
    if let Some(file) = &key.file {
        write_key(&file.with_file_name(NEXT_KEY_FILE), &new_key)?;
    }
    key.cipher
        .rotate(&new_key)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    finish_rotation(key, store).await
}

/// Re-seals everything with the current key and retires the old key file.
pub async fn finish_rotation(key: &MasterKey, store: &dyn Resealing) -> anyhow::Result<u64> {
    let resealed = store
        .reseal_secrets()
        .await
        .context("re-sealing secrets failed; the old key still opens them")?;
    if let Some(file) = &key.file {
        let next = file.with_file_name(NEXT_KEY_FILE);
        if next.exists() {
            fs::rename(&next, file)
                .with_context(|| format!("cannot replace {}", file.display()))?;
            sync_dir(file)?;
        }
    }
    key.cipher.forget_older_keys();
    Ok(resealed)
}

/// The master key as the API holds it: one rotation at a time.
pub struct MasterKeyControl {
    key: MasterKey,
    store: std::sync::Arc<dyn Resealing>,
    running: tokio::sync::Mutex<()>,
}

impl MasterKeyControl {
    pub fn new(key: MasterKey, store: std::sync::Arc<dyn Resealing>) -> Self {
        Self {
            key,
            store,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Rotates now; returns how many secrets were re-sealed and where the
    /// new key was written (`None`: the operator keeps it).
    pub async fn rotate(&self, supplied: Option<&str>) -> anyhow::Result<(u64, Option<PathBuf>)> {
        let _one_at_a_time = self.running.lock().await;
        let n = rotate_master_key(&self.key, self.store.as_ref(), supplied).await?;
        Ok((n, self.key.file.clone()))
    }

    pub fn from_env(&self) -> bool {
        self.key.file.is_none()
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    if text.len() != MASTER_KEY_LEN * 2 || !text.is_ascii() {
        bail!("expected {} hexadecimal characters", MASTER_KEY_LEN * 2);
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| anyhow::anyhow!("not hexadecimal"))
        })
        .collect()
}

/// The default organization, created on first start.
pub async fn default_org(store: &dyn Store) -> anyhow::Result<Org> {
    let first = store
        .list_orgs(PageRequest {
            limit: 1000,
            after: None,
        })
        .await?;
    if let Some(org) = first.items.into_iter().min_by_key(|o| o.created_at) {
        return Ok(org);
    }
    // A fixed id: processes starting together on one database agree on it.
    let org = Org {
        alert_destinations: Vec::new(),
        alerts: Default::default(),
        id: OrgId::parse("org_default").map_err(|e| anyhow::anyhow!("{e}"))?,
        name: "default".into(),
        created_at: Utc::now(),
    };
    match store.create_org(&org).await {
        Ok(()) => Ok(org),
        Err(StoreError::Conflict(_)) => store
            .get_org(&org.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the default organization vanished")),
        Err(e) => Err(e.into()),
    }
}

/// Makes sure an admin key exists. Returns a generated key to print once.
pub async fn admin_key(
    store: &dyn Store,
    org: &Org,
    configured: Option<&str>,
) -> anyhow::Result<Option<Secret<String>>> {
    let (secret, generated) = match configured {
        Some(key) => {
            if key.len() < 32 {
                bail!("FERRY_BOOTSTRAP_ADMIN_KEY must be at least 32 characters");
            }
            if store
                .api_key_by_hash(&hash_key_secret(key))
                .await?
                .is_some()
            {
                return Ok(None);
            }
            (Secret::new(key.to_owned()), false)
        }
        None => {
            let existing = store
                .list_api_keys(
                    &org.id,
                    PageRequest {
                        limit: 1,
                        after: None,
                    },
                )
                .await?;
            if !existing.items.is_empty() {
                return Ok(None);
            }
            let NewKeySecret(secret) = generate_key_secret();
            (secret, true)
        }
    };
    let key = ApiKey {
        id: ApiKeyId::generate(),
        org_id: org.id.clone(),
        name: "bootstrap admin".into(),
        prefix: key_prefix(secret.expose()),
        hash: hash_key_secret(secret.expose()),
        scopes: vec![Scope::Admin],
        created_at: Utc::now(),
        last_used_at: None,
    };
    let audit = AuditRecord::new(
        org.id.clone(),
        SYSTEM_ACTOR,
        "api_key",
        key.id.to_string(),
        "api_key.created",
    )
    .after(serde_json::json!({"name": key.name, "scopes": key.scopes, "prefix": key.prefix}));
    match store.insert_api_key(&key, &audit).await {
        Ok(()) => {}
        // Another process starting at the same time inserted the same key.
        Err(StoreError::Conflict(_)) if !generated => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(generated.then_some(secret))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_master_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = master_key(dir.path(), None).unwrap().cipher;
        let mode = fs::metadata(dir.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = a.seal(b"x");
        assert_eq!(
            master_key(dir.path(), None)
                .unwrap()
                .cipher
                .open(&sealed)
                .unwrap(),
            b"x"
        );
        assert!(master_key(dir.path(), Some("abc")).is_err());
    }

    #[test]
    fn a_data_dir_is_locked_by_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let _held = lock_data_dir(dir.path()).unwrap();
        let second = lock_data_dir(dir.path()).unwrap_err().to_string();
        assert!(second.contains("another Ferry process"), "{second}");
    }
}
