//! Files in a temporary directory, one `{id}.json` per event, read back
//! from the disk.

use async_trait::async_trait;
use ferry_core::destination::{Auth, DestinationKind};
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{Received, Target};

pub struct Files {
    dir: TempDir,
}

#[async_trait]
impl Target for Files {
    const KIND: DestinationKind = DestinationKind::File;
    const RECEIPT: &'static [&'static str] = &["path"];
    const DEDUPLICATES: bool = true;
    const NETWORKED: bool = false;

    async fn provision() -> (Self, Value, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let config = json!({"directory": dir.path(), "file_name": "{id}.json"});
        (Self { dir }, config, Auth::None)
    }

    async fn received(&mut self) -> Vec<Received> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // Hidden names are temporary files, never complete events.
            if name.starts_with('.') {
                continue;
            }
            let id = name.strip_suffix(".json").unwrap().to_owned();
            let payload = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            found.push(Received {
                id,
                payload,
                traceparent: None,
            });
        }
        found
    }

    fn wrong_credentials(&self, _config: &Value, _auth: &Auth) -> Option<(Value, Auth)> {
        None
    }

    fn unreachable(&self, config: &Value) -> Value {
        // Never called: files are not reached over a network.
        config.clone()
    }
}

compliance!(Files);
