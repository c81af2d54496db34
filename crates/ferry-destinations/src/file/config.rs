//! The file config, `{"directory", "file_name", "format"}`, and its pure
//! validation against the directories file destinations may write under.

use std::path::{Component, Path, PathBuf};

use ferry_core::FieldError;
use ferry_core::destination::Auth;
use serde::Serialize;
use serde_json::Value;

use crate::fields::{Fields, unsupported_auth};
use crate::kind_config::KindConfig;
use crate::template::{MAX_PATH_LEN, Template, relative_path, sample_event};

const KNOWN: &[&str] = &["format", "directory", "file_name"];

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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

/// A file destination's `config`, as stored (after [`KindConfig::validate`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileConfig {
    /// Absolute directory under one of the allowed roots; must exist.
    pub directory: PathBuf,
    /// Name template of the file, relative to `directory` (may contain
    /// `/` for subdirectories, which are created).
    pub file_name: Template,
    pub format: FileFormat,
}

impl KindConfig for FileConfig {
    /// The directories file destinations may write under.
    type Context = [PathBuf];

    /// Checks a file config without I/O. `directory` must be absolute, free of
    /// `.`/`..` parts and inside one of `roots` (the directories the server
    /// lets file destinations write under); `file_name` must be a relative name
    /// template (default `{id}.json` for `json`, `{date}.ndjson` for `ndjson`)
    /// and, for `json`, name each event's own file (contain `{id}`). File
    /// destinations take no auth.
    fn parse(config: &Value, auth: &Auth, roots: &[PathBuf]) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(config, KNOWN);
        if !matches!(auth, Auth::None) {
            fields.extend([unsupported_auth("file", auth.type_name(), "none")]);
        }
        let format = match fields.choice("format", &["json", "ndjson"], Some("json")) {
            Some("ndjson") => Some(FileFormat::Ndjson),
            Some(_) => Some(FileFormat::Json),
            None => None,
        };
        let directory = fields.text("directory", None, MAX_PATH_LEN);
        let directory = fields.checked("directory", directory, |dir| {
            check_directory(Path::new(dir), roots)
        });
        let default_name = format.unwrap_or(FileFormat::Json).default_file_name();
        let file_name = fields
            .text("file_name", Some(default_name), MAX_PATH_LEN)
            .and_then(|name| match check_file_name(&name, format) {
                Ok(template) => Some(template),
                Err(error) => {
                    fields.extend([error]);
                    None
                }
            });
        let config = (|| {
            Some(FileConfig {
                directory: PathBuf::from(directory?),
                file_name: file_name?,
                format: format?,
            })
        })();
        fields.finish(config)
    }

    fn to_json(&self) -> Value {
        // The directory was read from a JSON string, so it is UTF-8 and
        // serializing cannot fail.
        serde_json::to_value(self).expect("the config serializes")
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

fn check_file_name(text: &str, format: Option<FileFormat>) -> Result<Template, FieldError> {
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
    Ok(template)
}
