//! `ferry config export|import`: the whole configuration (organizations,
//! destinations, sources, alert settings, export schedules) as one YAML or
//! JSON document (`GET /v1/config/export`), and such a document applied to
//! a Ferry, or with `--dry-run` only planned (`POST /v1/config/import`).
//! Admin keys only.
//!
//! Secrets leave the server only sealed with a passphrase. The passphrase
//! is read from a file (or stdin), never taken as an argument, where the
//! process list and the shell history would keep it; it travels in the
//! `ferry-passphrase` header and is printed nowhere. A document saved with
//! `-o` is written beside its name and renamed into place, so a reader
//! never sees half of one, and is private to its owner when it holds
//! sealed secrets.

use std::fmt;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_client::usage;
use indicatif::HumanBytes;
use serde_json::{Value, json};

use super::{Ctx, Output};
use crate::cli::render::text;

/// The header that carries the passphrase.
const PASSPHRASE_HEADER: &str = "ferry-passphrase";

/// The whole configuration as one document: export it, import it.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ConfigCommand {
    /// Write the configuration as YAML or JSON, secrets left out or sealed
    /// with a passphrase (GET /v1/config/export).
    Export(ExportArgs),
    /// Apply a configuration document, or with --dry-run show what it would
    /// create, change and remove (POST /v1/config/import).
    Import(ImportArgs),
}

/// The document's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Self::Yaml => "yaml",
            Self::Json => "json",
        }
    }
}

/// `GET /v1/config/export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// The document's format (`--json` does not change it).
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Include the secrets (credentials, signing keys, source secrets),
    /// sealed with the passphrase in --passphrase-file.
    #[arg(long, requires = "passphrase_file")]
    pub include_secrets: bool,
    /// The passphrase that seals the secrets (at least 12 characters), read
    /// from FILE or - (stdin); a trailing newline is not part of it.
    #[arg(long, value_name = "FILE|-", requires = "include_secrets")]
    pub passphrase_file: Option<PathBuf>,
    /// Save the document to FILE (replaced whole) instead of printing it.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `POST /v1/config/import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The document (YAML or JSON, as `config export` writes it), from FILE
    /// or - (stdin).
    #[arg(value_name = "FILE|-")]
    pub file: PathBuf,
    /// Show what would be created, changed and removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove what the document's organizations hold and it does not
    /// name.
    #[arg(long)]
    pub prune: bool,
    /// Opens the document's sealed secrets: the passphrase it was exported
    /// with, read from FILE or - (stdin); a trailing newline is not part of
    /// it.
    #[arg(long, value_name = "FILE|-")]
    pub passphrase_file: Option<PathBuf>,
}

/// A passphrase: its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
struct Passphrase(String);

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(***)")
    }
}

impl Passphrase {
    /// The request header that carries it.
    fn header(&self) -> (&'static str, String) {
        (PASSPHRASE_HEADER, self.0.clone())
    }
}

pub async fn run(ctx: &Ctx, args: ConfigArgs) -> anyhow::Result<Output> {
    match args.command {
        ConfigCommand::Export(export) => run_export(ctx, export).await,
        ConfigCommand::Import(import) => run_import(ctx, import).await,
    }
}

async fn run_export(ctx: &Ctx, args: ExportArgs) -> anyhow::Result<Output> {
    let passphrase = match (&args.passphrase_file, args.include_secrets) {
        (Some(file), true) => Some(read_passphrase(file, &mut std::io::stdin().lock())?),
        _ => None,
    };
    let headers: Vec<_> = passphrase.iter().map(Passphrase::header).collect();
    let document = ctx
        .api
        .get_text(
            "/v1/config/export",
            &[("format", args.format.as_str().to_owned())],
            &headers,
        )
        .await?;
    let path = match &args.output {
        Some(path) if path.as_os_str() != "-" => path,
        // Exactly as the server wrote it, for `> ferry.yaml`.
        _ => return Ok(Output::ok(document)),
    };
    let sealed = passphrase.is_some();
    write_atomically(path, document.as_bytes(), sealed)?;
    let bytes = document.len();
    let secrets = if sealed { "sealed" } else { "left out" };
    eprintln!(
        "Saved the configuration to {} ({}, {}); secrets {secrets}.",
        path.display(),
        args.format.as_str().to_uppercase(),
        HumanBytes(bytes as u64),
    );
    let summary = json!({
        "path": path.display().to_string(), "format": args.format.as_str(),
        "bytes": bytes, "secrets": if sealed { "sealed" } else { "omitted" },
    });
    Ok(Output::render(ctx.json, &summary, |_| String::new()))
}

async fn run_import(ctx: &Ctx, args: ImportArgs) -> anyhow::Result<Output> {
    let from_stdin = |p: &Path| p.as_os_str() == "-";
    if from_stdin(&args.file) && args.passphrase_file.as_deref().is_some_and(from_stdin) {
        return Err(usage(
            "the document and --passphrase-file cannot both be read from stdin (-)",
        ));
    }
    let (document, passphrase) = {
        let mut stdin = std::io::stdin().lock();
        let document = read_document(&args.file, &mut stdin)?;
        let passphrase = args
            .passphrase_file
            .as_deref()
            .map(|file| read_passphrase(file, &mut stdin))
            .transpose()?;
        (document, passphrase)
    };
    let content_type = if document.trim_start().starts_with('{') {
        "application/json"
    } else {
        "application/yaml"
    };
    let headers: Vec<_> = passphrase.iter().map(Passphrase::header).collect();
    let query = [
        ("dry_run", args.dry_run.to_string()),
        ("prune", args.prune.to_string()),
    ];
    let answer = ctx
        .api
        .post_text(
            "/v1/config/import",
            &query,
            (content_type, document),
            &headers,
        )
        .await?;
    Ok(Output::render(ctx.json, &answer.body, render_report))
}

/// `file`'s text, or stdin's for `-`.
fn read_text(flag: &str, file: &Path, stdin: &mut dyn Read) -> anyhow::Result<(String, String)> {
    let (bytes, origin) = if file.as_os_str() == "-" {
        let mut bytes = Vec::new();
        stdin
            .read_to_end(&mut bytes)
            .with_context(|| format!("{flag}: cannot read stdin"))?;
        (bytes, "stdin".to_owned())
    } else {
        let bytes = std::fs::read(file)
            .map_err(|e| usage(format!("{flag}: cannot read {}: {e}", file.display())))?;
        (bytes, file.display().to_string())
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| usage(format!("{flag}: {origin} is not UTF-8 text")))?;
    Ok((text, origin))
}

/// The document to import, as text.
fn read_document(file: &Path, stdin: &mut dyn Read) -> anyhow::Result<String> {
    let (text, origin) = read_text("FILE", file, stdin)?;
    if text.trim().is_empty() {
        return Err(usage(format!("FILE: {origin} is empty")));
    }
    Ok(text)
}

/// The passphrase in `file` (`-`: stdin), without its trailing newline. It
/// travels in an HTTP header, so it must be printable ASCII; the server
/// judges its length. No error message shows it.
fn read_passphrase(file: &Path, stdin: &mut dyn Read) -> anyhow::Result<Passphrase> {
    let flag = "--passphrase-file";
    let (text, origin) = read_text(flag, file, stdin)?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(usage(format!("{flag}: {origin} holds no passphrase")));
    }
    if !line.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return Err(usage(format!(
            "{flag}: the passphrase in {origin} must be one line of printable ASCII characters"
        )));
    }
    Ok(Passphrase(line.to_owned()))
}

/// Writes `bytes` to a hidden file beside `path` (readable by its owner
/// only when `private`), flushed to disk, then renamed to `path`.
fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| usage(format!("-o {}: not a file name", path.display())))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = dir.join(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    // The rename itself survives a crash once the directory is synced.
    let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// The import's plan for people: a line per change, its note, the
/// warnings, then the counts.
pub fn render_report(report: &Value) -> String {
    let mut out = String::new();
    let changes = report["changes"].as_array().map_or(&[][..], Vec::as_slice);
    for item in changes {
        let entity = text(item, "/entity").replace('_', " ");
        let what = format!("{entity} {} {:?}", text(item, "/id"), text(item, "/name"));
        let note = item["note"].as_str();
        let line = match text(item, "/action").as_str() {
            "create" => format!("+ create {what}"),
            "change" => {
                let fields: Vec<&str> = item["fields"]
                    .as_array()
                    .map(|f| f.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if fields.is_empty() {
                    format!("~ change {what}")
                } else {
                    format!("~ change {what}: {}", fields.join(", "))
                }
            }
            "remove" => format!("- remove {what}"),
            "skip" => match note {
                Some(note) => format!("! skip {what}: {note}"),
                None => format!("! skip {what}"),
            },
            other => format!("? {other} {what}"),
        };
        out.push_str(&line);
        out.push('\n');
        if let Some(note) = note.filter(|_| text(item, "/action") != "skip") {
            out.push_str(&format!("    {note}\n"));
        }
    }
    for warning in report["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "warning: {}\n",
            warning.as_str().unwrap_or_default()
        ));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    let count = |name: &str| report["summary"][name].as_u64().unwrap_or(0);
    let counts = format!(
        "{} created, {} changed, {} unchanged, {} removed, {} skipped",
        count("created"),
        count("changed"),
        count("unchanged"),
        count("removed"),
        count("skipped"),
    );
    let summary = if report["dry_run"] == true {
        format!("Dry run: {counts} (nothing was changed)")
    } else if report["applied"] == true {
        format!("Applied: {counts}")
    } else {
        format!("Nothing to apply: {counts}")
    };
    out.push_str(&summary);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use clap::error::ErrorKind;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: ConfigCommand,
    }

    fn parse(args: &[&str]) -> Result<ConfigCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied())).map(|c| c.command)
    }

    fn export(args: &[&str]) -> ExportArgs {
        match parse(&[&["export"][..], args].concat()) {
            Ok(ConfigCommand::Export(e)) => e,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn export_defaults_to_yaml_on_stdout_without_secrets() {
        let e = export(&[]);
        assert_eq!(e.format, Format::Yaml);
        assert!(!e.include_secrets);
        assert_eq!((e.passphrase_file, e.output), (None, None));
        let e = export(&[
            "--format",
            "json",
            "--include-secrets",
            "--passphrase-file",
            "-",
            "-o",
            "ferry.json",
        ]);
        assert_eq!(e.format, Format::Json);
        assert!(e.include_secrets);
        assert_eq!(e.passphrase_file.as_deref(), Some(Path::new("-")));
        assert_eq!(e.output.as_deref(), Some(Path::new("ferry.json")));
    }

    #[test]
    fn secrets_and_the_passphrase_file_come_together() {
        let kind = |args: &[&str]| parse(args).unwrap_err().kind();
        assert_eq!(
            kind(&["export", "--include-secrets"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["export", "--passphrase-file", "pass.txt"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["export", "--format", "toml"]),
            ErrorKind::InvalidValue
        );
        assert_eq!(kind(&["import"]), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn import_takes_a_file_and_plans_or_applies() {
        let Ok(ConfigCommand::Import(i)) = parse(&["import", "ferry.yaml"]) else {
            panic!("not import");
        };
        assert_eq!(i.file, Path::new("ferry.yaml"));
        assert!(!i.dry_run && !i.prune && i.passphrase_file.is_none());
        let Ok(ConfigCommand::Import(i)) = parse(&[
            "import",
            "-",
            "--dry-run",
            "--prune",
            "--passphrase-file",
            "pass.txt",
        ]) else {
            panic!("not import");
        };
        assert_eq!(i.file, Path::new("-"));
        assert!(i.dry_run && i.prune);
        assert_eq!(i.passphrase_file.as_deref(), Some(Path::new("pass.txt")));
    }

    #[test]
    fn a_passphrase_loses_its_trailing_newline_only() {
        let read =
            |text: &str| read_passphrase(Path::new("-"), &mut text.as_bytes()).map(|p| p.0.clone());
        assert_eq!(
            read("correct horse battery\n").unwrap(),
            "correct horse battery"
        );
        assert_eq!(
            read("correct horse battery\r\n").unwrap(),
            "correct horse battery"
        );
        assert_eq!(read(" spaces count ").unwrap(), " spaces count ");
        for bad in ["", "\n", "two\nlines\n", "tab\there", "naïve passphrase"] {
            let e = read(bad).unwrap_err();
            assert!(
                e.downcast_ref::<ferry_client::UsageError>().is_some(),
                "{bad:?}"
            );
            assert!(
                !e.to_string().contains(bad.trim()) || bad.trim().is_empty(),
                "{e}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass.txt");
        std::fs::write(&file, "from a file, 0123\n").unwrap();
        let got = read_passphrase(&file, &mut std::io::empty()).unwrap();
        assert_eq!(got.0, "from a file, 0123");
        assert_eq!(format!("{got:?}"), "Passphrase(***)");
        let e = read_passphrase(&dir.path().join("none"), &mut std::io::empty()).unwrap_err();
        assert!(
            e.to_string().starts_with("--passphrase-file: cannot read "),
            "{e}"
        );
    }

    #[test]
    fn an_empty_document_is_a_usage_error() {
        let e = read_document(Path::new("-"), &mut " \n".as_bytes()).unwrap_err();
        assert!(e.downcast_ref::<ferry_client::UsageError>().is_some());
        assert_eq!(e.to_string(), "FILE: stdin is empty");
        let doc = read_document(Path::new("-"), &mut "ferry_config: 1\n".as_bytes()).unwrap();
        assert_eq!(doc, "ferry_config: 1\n");
    }

    #[test]
    fn a_saved_document_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.yaml");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, b"new: 1\n", true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new: 1\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ferry.yaml"], "no temporary file is left");
        let e = write_atomically(&dir.path().join("no/such/dir.yaml"), b"x", false).unwrap_err();
        assert!(format!("{e:#}").starts_with("cannot write "), "{e:#}");
    }

    fn report(dry_run: bool, applied: bool) -> Value {
        json!({
            "dry_run": dry_run, "applied": applied,
            "summary": {"created": 3, "changed": 1, "unchanged": 7, "removed": 1, "skipped": 1},
            "changes": [
                {"action": "create", "entity": "destination", "id": "dst_1", "name": "orders"},
                {"action": "create", "entity": "destination", "id": "dst_2", "name": "crm",
                 "note": "created disabled: its secrets are not in the document"},
                {"action": "create", "entity": "export_schedule", "id": "sch_1", "name": "nightly"},
                {"action": "change", "entity": "destination", "id": "dst_3", "name": "billing",
                 "fields": ["name", "filter"]},
                {"action": "remove", "entity": "destination", "id": "dst_4", "name": "old",
                 "note": "its unfinished deliveries become failed"},
                {"action": "skip", "entity": "source", "id": "src_1", "name": "courier",
                 "note": "its verification secrets are not in the document"},
            ],
            "warnings": ["the document's secrets are sealed and no passphrase was given"],
        })
    }

    #[test]
    fn the_plan_reads_one_line_per_change_then_the_counts() {
        assert_eq!(
            render_report(&report(false, true)),
            "+ create destination dst_1 \"orders\"\n\
             + create destination dst_2 \"crm\"\n    \
             created disabled: its secrets are not in the document\n\
             + create export schedule sch_1 \"nightly\"\n\
             ~ change destination dst_3 \"billing\": name, filter\n\
             - remove destination dst_4 \"old\"\n    \
             its unfinished deliveries become failed\n\
             ! skip source src_1 \"courier\": its verification secrets are not in the document\n\
             warning: the document's secrets are sealed and no passphrase was given\n\
             \n\
             Applied: 3 created, 1 changed, 7 unchanged, 1 removed, 1 skipped\n"
        );
        let dry = render_report(&report(true, false));
        assert!(
            dry.ends_with(
                "\nDry run: 3 created, 1 changed, 7 unchanged, 1 removed, 1 skipped \
                 (nothing was changed)\n"
            ),
            "{dry}"
        );
    }

    #[test]
    fn an_import_that_changes_nothing_says_so() {
        let unchanged = json!({
            "dry_run": false, "applied": false,
            "summary": {"created": 0, "changed": 0, "unchanged": 4, "removed": 0, "skipped": 0},
            "changes": [], "warnings": [],
        });
        assert_eq!(
            render_report(&unchanged),
            "Nothing to apply: 0 created, 0 changed, 4 unchanged, 0 removed, 0 skipped\n"
        );
    }
}
