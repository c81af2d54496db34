//! The file config, `{"directory", "file_name", "format"}`, and its pure
//! validation against the directories file destinations may write under.

use std::path::{Component, Path, PathBuf};

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config_reader::{ConfigReader, unsupported_auth};
use crate::template::{Template, relative_path, sample_event};

use crate::template::MAX_PATH_LEN;

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// One file per event holding its JSON body, written to a temporary
    /// name and renamed into place.
    Json,
    /// One JSON body per line, appended and fsync'd.
    Ndjson,
}

impl FileFormat {
    fn default_file_name(self) -> &'static str {
        match self {
            FileFormat::Json => "{id}.json",
            FileFormat::Ndjson => "{date}.ndjson",
        }
    }
}

/// A file destination's `config`, as stored (after [`validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Absolute directory under one of the allowed roots; must exist.
    pub directory: PathBuf,
    /// Name template of the file, relative to `directory` (may contain
    /// `/` for subdirectories, which are created).
    pub file_name: String,
    pub format: FileFormat,
}

impl FileConfig {
    /// Reads a stored config, validating it again against `roots`.
    pub fn from_stored(config: &Value, roots: &[PathBuf]) -> Result<Self, String> {
        let normalized = validate(config, &Auth::None, roots)
            .map_err(|errors| crate::config_reader::describe(&errors))?;
        serde_json::from_value(normalized).map_err(|e| format!("config: {e}"))
    }
}

/// Checks a file config without I/O. `directory` must be absolute, free of
/// `.`/`..` parts and inside one of `roots` (the directories the server
/// lets file destinations write under); `file_name` must be a relative
/// name template (default `{id}.json` for `json`, `{date}.ndjson` for
/// `ndjson`) and, for `json`, name each event's own file (contain `{id}`).
/// File destinations take no auth.
pub fn validate(config: &Value, auth: &Auth, roots: &[PathBuf]) -> Result<Value, Vec<FieldError>> {
    let mut reader = ConfigReader::new(config);
    if !matches!(auth, Auth::None) {
        reader
            .errors
            .push(unsupported_auth("file", auth.type_name(), "none"));
    }
    let format = match reader.choice("format", &["json", "ndjson"], Some("json")) {
        Some("ndjson") => Some(FileFormat::Ndjson),
        Some(_) => Some(FileFormat::Json),
        None => None,
    };
    let directory = reader
        .string("directory", None, MAX_PATH_LEN)
        .and_then(|dir| match check_directory(Path::new(&dir), roots) {
            Ok(()) => Some(dir),
            Err(message) => {
                reader.error("directory", message);
                None
            }
        });
    let default_name = format.unwrap_or(FileFormat::Json).default_file_name();
    let file_name = reader
        .string("file_name", Some(default_name), MAX_PATH_LEN)
        .and_then(|name| match check_file_name(&name, format) {
            Ok(()) => Some(name),
            Err(error) => {
                reader.errors.push(error);
                None
            }
        });
    let errors = reader.finish();
    match (directory, file_name, format) {
        (Some(directory), Some(file_name), Some(format)) if errors.is_empty() => {
            Ok(serde_json::json!({
                "directory": directory,
                "file_name": file_name,
                "format": format,
            }))
        }
        _ => Err(errors),
    }
}

fn check_directory(dir: &Path, roots: &[PathBuf]) -> Result<(), String> {
    if !dir.is_absolute() {
        return Err("must be an absolute path".into());
    }
    if dir
        .components()
        .any(|c| !matches!(c, Component::RootDir | Component::Normal(_)))
    {
        return Err("must not contain `.` or `..` parts".into());
    }
    if roots.is_empty() {
        return Err(
            "file destinations are disabled on this server (no directory is allowed: see the server's `file_roots` option)"
                .into(),
        );
    }
    if !roots.iter().any(|root| dir.starts_with(root)) {
        let allowed: Vec<_> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(format!(
            "must be inside a directory file destinations may write under ({})",
            allowed.join(", ")
        ));
    }
    Ok(())
}

fn check_file_name(text: &str, format: Option<FileFormat>) -> Result<(), FieldError> {
    let template = Template::parse("config.file_name", text)?;
    let (first, second) = (sample_event(), sample_event());
    let rendered = template.render(&first);
    relative_path(&rendered).map_err(|m| FieldError::new("config.file_name", m))?;
    if format == Some(FileFormat::Json) && rendered == template.render(&second) {
        return Err(FieldError::new(
            "config.file_name",
            "must contain {id}: with the json format each event has its own file",
        ));
    }
    Ok(())
}
