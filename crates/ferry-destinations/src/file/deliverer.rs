//! The file adapter (`validate`, `build`) and deliverer: atomic writes
//! (temporary name, fsync, rename, directory fsync) and fsync'd appends,
//! run on the blocking pool under a deadline.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ferry_core::FieldError;
use ferry_core::attempt::Receipt;
use ferry_core::delivery::{Captured, Envelope};
use ferry_core::destination::{Auth, Destination, DestinationKind};
use ferry_core::ports::{AttemptError, Delivered};
use ferry_core::ports::{AttemptReport, CheckReport, Deliverer, DestinationAdapter};
use serde_json::Value;
use serde_json::json;

use super::config::{FileConfig, FileFormat};
use crate::kind_config::KindConfig;
use crate::message::Payload;
use crate::template::{Template, relative_path};

/// Longest a write may take before the attempt is given up as retryable
/// (a hung network file system must not hold a worker for ever).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The `file` kind, with the directories file destinations may write under.
pub struct FileAdapter {
    roots: Arc<Vec<PathBuf>>,
}

impl FileAdapter {
    /// The kind writing only under `roots` (made absolute here, against the
    /// working directory, so that relative roots compare with absolute
    /// destination directories).
    pub fn new(roots: &[PathBuf]) -> Self {
        let roots = roots
            .iter()
            .filter_map(|root| match std::path::absolute(root) {
                Ok(root) => Some(root),
                Err(error) => {
                    tracing::error!(root = %root.display(), %error, "Ignoring a file root that cannot be made absolute.");
                    None
                }
            })
            .collect();
        Self {
            roots: Arc::new(roots),
        }
    }
}

impl DestinationAdapter for FileAdapter {
    fn kind(&self) -> DestinationKind {
        DestinationKind::File
    }

    fn validate(&self, config: &Value, auth: &Auth) -> Result<Value, Vec<FieldError>> {
        FileConfig::validate(config, auth, &self.roots)
    }

    fn build(&self, destination: &Destination) -> Result<Arc<dyn Deliverer>, String> {
        // File destinations take no auth (`validate` refuses any other).
        let config = FileConfig::from_stored(&destination.config, &Auth::None, &self.roots)?;
        Ok(Arc::new(FileDeliverer {
            directory: config.directory,
            file_name: config.file_name,
            format: config.format,
            roots: Arc::clone(&self.roots),
            appending: tokio::sync::Mutex::new(()),
        }))
    }
}

/// Writes events under one directory.
pub struct FileDeliverer {
    directory: PathBuf,
    file_name: Template,
    format: FileFormat,
    roots: Arc<Vec<PathBuf>>,
    /// Serializes this destination's appends, so lines never interleave.
    appending: tokio::sync::Mutex<()>,
}

/// Missing directories and refused permissions need an operator; anything
/// else (a full disk, an I/O error) may pass.
fn io_error(what: &str, error: &io::Error) -> AttemptError {
    let reason = format!("{what}: {error}");
    match error.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
            AttemptError::permanent(reason)
        }
        _ => AttemptError::retryable(reason),
    }
}

impl FileDeliverer {
    /// Runs blocking file work on the blocking pool, under the deadline.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, AttemptError> + Send + 'static,
    ) -> Result<T, AttemptError> {
        match tokio::time::timeout(OPERATION_TIMEOUT, tokio::task::spawn_blocking(work)).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(AttemptError::retryable(format!("the write failed: {join}"))),
            Err(_) => Err(AttemptError::retryable(format!(
                "timed out after {} ms writing to {}",
                OPERATION_TIMEOUT.as_millis(),
                self.directory.display()
            ))),
        }
    }
}

#[async_trait]
impl Deliverer for FileDeliverer {
    /// `json`: writes the event's body to its own file (same name on every
    /// attempt, so a re-delivery replaces it with the same content).
    /// `ndjson`: appends one line; a retry (attempt > 1) first looks for
    /// the event's line and appends nothing when it is there.
    async fn deliver(&self, envelope: &Envelope) -> AttemptReport {
        let event = &envelope.event;
        let name = self.file_name.render(event);
        let mut body = Payload::of(event).to_bytes();
        let mut captured = Captured {
            headers: BTreeMap::from([
                ("file".to_owned(), name.clone()),
                ("bytes".to_owned(), body.len().to_string()),
            ]),
            body: Captured::body_from_bytes(&body),
        };
        let relative = match relative_path(&name) {
            Ok(relative) => relative,
            Err(message) => {
                return report(
                    Err(AttemptError::permanent(format!(
                        "config.file_name {message}"
                    ))),
                    captured,
                );
            }
        };
        let directory = self.directory.clone();
        let roots = Arc::clone(&self.roots);
        let result = match self.format {
            FileFormat::Json => {
                self.blocking(move || {
                    let parent = prepare(&directory, &relative, &roots)?;
                    write_atomically(&parent, &directory.join(&relative), &body)
                })
                .await
            }
            FileFormat::Ndjson => {
                let _appending = self.appending.lock().await;
                let id = event.id.to_string();
                let retry = envelope.attempt > 1;
                body.push(b'\n');
                self.blocking(move || {
                    prepare(&directory, &relative, &roots)?;
                    append_line(&directory.join(&relative), &body, retry.then_some(&id))
                })
                .await
            }
        };
        captured
            .headers
            .insert("format".into(), format!("{:?}", self.format).to_lowercase());
        report(
            result.map(|()| Receipt::of([("path", json!(name))])),
            captured,
        )
    }

    /// Writes, fsyncs and removes a hidden test file in the directory.
    async fn check(&self) -> CheckReport {
        let directory = self.directory.clone();
        let roots = Arc::clone(&self.roots);
        let started = Instant::now();
        let result = self
            .blocking(move || {
                let parent = prepare(&directory, Path::new("probe"), &roots)?;
                let probe = parent.join(format!(
                    ".ferry-check.{}.tmp",
                    ferry_core::ids::unique_token()
                ));
                let written = File::create_new(&probe)
                    .and_then(|mut file| {
                        file.write_all(b"ferry connection test\n")?;
                        file.sync_all()
                    })
                    .map_err(|e| io_error("cannot write a file in the directory", &e));
                let _ = fs::remove_file(&probe);
                written
            })
            .await;
        match result {
            Ok(()) => CheckReport {
                ok: true,
                message: format!(
                    "wrote and removed a test file in {} in {} ms",
                    self.directory.display(),
                    started.elapsed().as_millis()
                ),
            },
            Err(failure) => CheckReport {
                ok: false,
                message: failure.into_reason(),
            },
        }
    }
}

fn report(result: Result<Receipt, AttemptError>, request: Captured) -> AttemptReport {
    AttemptReport {
        result: result.map(|receipt| Delivered {
            receipt: Some(receipt),
        }),
        status_code: None,
        request: Some(request),
        response: None,
    }
}

/// Checks that `directory` exists, creates the subdirectories of
/// `relative`, and checks that the file's parent really is under an
/// allowed root once symbolic links are resolved. Returns that parent.
fn prepare(directory: &Path, relative: &Path, roots: &[PathBuf]) -> Result<PathBuf, AttemptError> {
    match fs::metadata(directory) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(AttemptError::permanent(format!(
                "{} is not a directory",
                directory.display()
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(AttemptError::permanent(format!(
                "directory {} does not exist",
                directory.display()
            )));
        }
        Err(e) => {
            return Err(io_error(
                &format!("cannot read {}", directory.display()),
                &e,
            ));
        }
    }
    let parent = directory.join(relative.parent().unwrap_or(Path::new("")));
    fs::create_dir_all(&parent)
        .map_err(|e| io_error(&format!("cannot create {}", parent.display()), &e))?;
    let real = parent
        .canonicalize()
        .map_err(|e| io_error(&format!("cannot resolve {}", parent.display()), &e))?;
    let inside = roots
        .iter()
        .any(|root| root.canonicalize().is_ok_and(|root| real.starts_with(root)));
    if !inside {
        return Err(AttemptError::permanent(format!(
            "{} resolves to {}, outside the directories file destinations may write under",
            parent.display(),
            real.display()
        )));
    }
    Ok(parent)
}

/// Writes `body` to a hidden temporary file next to `target`, fsyncs it,
/// renames it over `target` and fsyncs the directory: a reader sees either
/// no file or the whole file, and after a crash the rename is durable.
fn write_atomically(parent: &Path, target: &Path, body: &[u8]) -> Result<(), AttemptError> {
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = parent.join(format!(
        ".{file_name}.{}.tmp",
        ferry_core::ids::unique_token()
    ));
    let written = File::create_new(&temporary).and_then(|mut file| {
        file.write_all(body)?;
        file.sync_all()
    });
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(
            &format!("cannot write {}", temporary.display()),
            &error,
        ));
    }
    if let Err(error) = fs::rename(&temporary, target) {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(
            &format!("cannot rename into {}", target.display()),
            &error,
        ));
    }
    sync_directory(parent)
}

/// Appends `line` (one JSON body and `\n`) to `target` and fsyncs it. When
/// `skip_if_present` names an event id, a line of that event already in the
/// file is kept and nothing is appended. A line cut short by an earlier
/// crash is ended first, so the new line stays whole.
fn append_line(
    target: &Path,
    line: &[u8],
    skip_if_present: Option<&String>,
) -> Result<(), AttemptError> {
    let what = || format!("cannot append to {}", target.display());
    let created = !target.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(target)
        .map_err(|e| io_error(&what(), &e))?;
    if let Some(id) = skip_if_present
        && has_line_of(&mut file, id).map_err(|e| io_error(&what(), &e))?
    {
        return Ok(());
    }
    let length = file.metadata().map_err(|e| io_error(&what(), &e))?.len();
    let mut bytes = Vec::with_capacity(line.len() + 1);
    if length > 0 {
        let mut last = [0u8];
        file.seek(SeekFrom::Start(length - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(|e| io_error(&what(), &e))?;
        if last[0] != b'\n' {
            bytes.push(b'\n');
        }
    }
    bytes.extend_from_slice(line);
    file.write_all(&bytes)
        .and_then(|()| file.sync_data())
        .map_err(|e| io_error(&what(), &e))?;
    if created && let Some(parent) = target.parent() {
        sync_directory(parent)?;
    }
    Ok(())
}

/// Whether a line of the file is the body of event `id` (bodies start
/// with `{"id":"<id>",`).
fn has_line_of(file: &mut File, id: &str) -> io::Result<bool> {
    let prefix = format!("{{\"id\":\"{id}\",");
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&*file);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(false);
        }
        if line.starts_with(prefix.as_bytes()) {
            return Ok(true);
        }
    }
}

/// Makes a rename or a new file in `directory` durable.
fn sync_directory(directory: &Path) -> Result<(), AttemptError> {
    File::open(directory)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| io_error(&format!("cannot sync {}", directory.display()), &e))
}
