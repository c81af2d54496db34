//! First start and every start: the data directory and its lock, the master
//! key, the default organization and the first admin API key.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, bail};
use chrono::Utc;
use ferry_core::audit::{AuditRecord, SYSTEM_ACTOR};
use ferry_core::crypto::{Cipher, MASTER_KEY_LEN};
use ferry_core::org::{
    ApiKey, NewKeySecret, Org, Scope, generate_key_secret, hash_key_secret, key_prefix,
};
use ferry_core::page::PageRequest;
use ferry_core::ports::Store;
use ferry_core::secret::Secret;
use ferry_core::{ApiKeyId, OrgId};

const MASTER_KEY_FILE: &str = "master.key";
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

/// The master key from `FERRY_MASTER_KEY` (64 hex characters), else from
/// the key file, which is created (mode 0600) on first start.
pub fn master_key(dir: &Path, configured: Option<&str>) -> anyhow::Result<Cipher> {
    let bytes = match configured {
        Some(hex) => {
            decode_hex(hex.trim()).context("FERRY_MASTER_KEY must be 64 hexadecimal characters")?
        }
        None => {
            let path = dir.join(MASTER_KEY_FILE);
            if path.exists() {
                let text = fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                decode_hex(text.trim())
                    .with_context(|| format!("{} is not a valid master key", path.display()))?
            } else {
                let key = Cipher::generate_key();
                let mut file = OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                file.write_all(encode_hex(&key).as_bytes())?;
                file.sync_all()?;
                key.to_vec()
            }
        }
    };
    Cipher::new(&bytes).map_err(|e| anyhow::anyhow!("{e}"))
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
    let org = Org {
        id: OrgId::generate(),
        name: "default".into(),
        created_at: Utc::now(),
    };
    store.create_org(&org).await?;
    Ok(org)
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
    store.insert_api_key(&key, &audit).await?;
    Ok(generated.then_some(secret))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_master_key_file_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = master_key(dir.path(), None).unwrap();
        let mode = fs::metadata(dir.path().join(MASTER_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let sealed = a.seal(b"x");
        assert_eq!(
            master_key(dir.path(), None).unwrap().open(&sealed).unwrap(),
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
