//! `ferry export download`: a succeeded export's bytes, streamed to a file
//! (or stdout) and checked against the SHA-256 the server sends in
//! `x-ferry-sha256`. A file is written under a hidden temporary name beside
//! its own and renamed into place only once the whole body arrived and
//! matched, so an interrupted or corrupt download never sits at the name a
//! script waits for; an existing file is kept unless `--force`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ferry_client::usage;
use ferry_core::ExportId;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncWrite, AsyncWriteExt as _, BufWriter};

use super::render::size;
use crate::cli::commands::{Ctx, Output};

/// The header carrying the export's checksum (lower-case hex).
const SHA256_HEADER: &str = "x-ferry-sha256";

/// Bytes gathered before a write to the file.
const WRITE_BUFFER: usize = 256 * 1024;

/// `GET /v1/exports/{id}/download`.
#[derive(Debug, Clone, clap::Args)]
pub struct DownloadArgs {
    /// The export (exp_…); it must have succeeded.
    #[arg(value_name = "EXP")]
    pub id: ExportId,
    /// Where to save it: a file, a directory, or - for stdout
    /// [default: the server's name for it, in the current directory].
    #[arg(short = 'o', long, value_name = "FILE|-")]
    pub output: Option<PathBuf>,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Where the bytes go.
enum Sink {
    Stdout,
    /// This file.
    File(PathBuf),
    /// The server's name for it, in this directory.
    Into(PathBuf),
}

pub async fn run(ctx: &Ctx, args: DownloadArgs) -> anyhow::Result<Output> {
    let id = &args.id;
    let sink = match &args.output {
        Some(path) if path.as_os_str() == "-" => Sink::Stdout,
        Some(path) if path.is_dir() => Sink::Into(path.clone()),
        Some(path) => Sink::File(path.clone()),
        None => Sink::Into(PathBuf::new()),
    };
    if let Sink::File(path) = &sink {
        refuse_to_overwrite(path, args.force)?;
    }
    let mut response = ctx
        .api
        .get_stream(&format!("/v1/exports/{id}/download"), &[])
        .await?;
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let expected = header(SHA256_HEADER).map(|h| h.trim().to_ascii_lowercase());
    let suggested = suggested_name(header("content-disposition").as_deref());
    let path = match sink {
        Sink::Stdout => {
            let mut stdout = tokio::io::stdout();
            let copied = until_interrupted(copy(ctx, &mut response, &mut stdout)).await;
            if let Some((_, sha256)) = stopped_reading(copied)? {
                verify(expected.as_deref(), &sha256)
                    .context("the bytes written to stdout are not the export's")?;
                warn_unverified(expected.as_deref());
            }
            return Ok(Output::ok(String::new()));
        }
        Sink::File(path) => path,
        Sink::Into(dir) => {
            let path = dir.join(suggested.unwrap_or_else(|| id.to_string()));
            refuse_to_overwrite(&path, args.force)?;
            path
        }
    };
    let temp = temp_path(&path);
    let saved = until_interrupted(save(ctx, &mut response, &temp)).await;
    let kept = saved.and_then(|(bytes, sha256)| {
        verify(expected.as_deref(), &sha256)
            .with_context(|| format!("nothing was saved to {}", path.display()))?;
        if !args.force {
            // It may have appeared meanwhile.
            refuse_to_overwrite(&path, false)?;
        }
        std::fs::rename(&temp, &path)
            .with_context(|| format!("cannot move the download to {}", path.display()))?;
        Ok((bytes, sha256))
    });
    let (bytes, sha256) = match kept {
        Ok(kept) => kept,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    let verified = expected.is_some();
    warn_unverified(expected.as_deref());
    let body = json!({
        "id": id, "path": path.display().to_string(), "bytes": bytes,
        "sha256": sha256, "verified": verified,
    });
    Ok(Output::render(ctx.json, &body, |_| {
        let check = if verified {
            "; its SHA-256 matches"
        } else {
            ""
        };
        format!(
            "Saved export {id} to {}: {}{check}.\n",
            path.display(),
            size(bytes)
        )
    }))
}

/// A usage error when `path` exists and may not be replaced.
fn refuse_to_overwrite(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.exists() {
        return Err(usage(format!(
            "{} exists; pass --force to replace it, or -o to save elsewhere",
            path.display()
        )));
    }
    Ok(())
}

/// The hidden name a download is written under beside `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// Runs `work` until it ends, or fails it when Ctrl-C is pressed (so that
/// the caller removes what was written).
async fn until_interrupted<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::select! {
        done = work => done,
        Ok(()) = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; the download stopped")),
    }
}

/// Writes the body to a new file at `temp`, flushed to disk.
async fn save(
    ctx: &Ctx,
    response: &mut reqwest::Response,
    temp: &Path,
) -> anyhow::Result<(u64, String)> {
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)
        .await
        .with_context(|| format!("cannot create {}", temp.display()))?;
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
    let copied = copy(ctx, response, &mut out)
        .await
        .with_context(|| format!("cannot write {}", temp.display()))?;
    out.into_inner()
        .sync_all()
        .await
        .with_context(|| format!("cannot write {}", temp.display()))?;
    Ok(copied)
}

/// Streams the body into `out`, hashing it; returns its length and SHA-256.
async fn copy(
    ctx: &Ctx,
    response: &mut reqwest::Response,
    out: &mut (impl AsyncWrite + Unpin),
) -> anyhow::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ctx.api.transport_error(e))?
    {
        hasher.update(&chunk);
        out.write_all(&chunk).await?;
        bytes += chunk.len() as u64;
    }
    out.flush().await?;
    Ok((bytes, format!("{:x}", hasher.finalize())))
}

/// `None` when the reader of stdout went away (`| head`): nothing more to do.
fn stopped_reading(copied: anyhow::Result<(u64, String)>) -> anyhow::Result<Option<(u64, String)>> {
    match copied {
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            Ok(None)
        }
        other => other.map(Some),
    }
}

/// An error when the server's checksum is known and `actual` is not it.
fn verify(expected: Option<&str>, actual: &str) -> anyhow::Result<()> {
    match expected {
        Some(expected) if expected != actual => Err(anyhow::anyhow!(
            "the download is corrupt: its SHA-256 is {actual}, the export's is {expected}"
        )),
        _ => Ok(()),
    }
}

/// Says on stderr that there was nothing to check the bytes against.
fn warn_unverified(expected: Option<&str>) {
    if expected.is_none() {
        eprintln!("warning: Ferry sent no {SHA256_HEADER}; the download is not verified.");
    }
}

/// The file name a `content-disposition` header suggests, as a plain name
/// for the current directory: no directories, not hidden, no control
/// characters; `None` when it names nothing usable.
pub fn suggested_name(header: Option<&str>) -> Option<String> {
    let raw = filename_param(header?)?;
    let name = raw.rsplit(['/', '\\']).next()?.trim();
    if name.is_empty() || name.starts_with('.') || name.chars().any(char::is_control) {
        return None;
    }
    Some(name.to_owned())
}

/// The `filename` parameter of `attachment; filename="…"`, quoted (with
/// `\` escapes) or not.
fn filename_param(header: &str) -> Option<String> {
    let (_, mut rest) = header.split_once(';')?;
    loop {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next()? {
                        (_, '\\') => value.push(chars.next()?.1),
                        (i, '"') => break i + 1,
                        (_, c) => value.push(c),
                    }
                };
                let next = quoted[end..].split_once(';').map(|(_, n)| n);
                (value, next)
            }
            None => match after.split_once(';') {
                Some((value, next)) => (value.trim().to_owned(), Some(next)),
                None => (after.trim().to_owned(), None),
            },
        };
        if key.trim().eq_ignore_ascii_case("filename") {
            return Some(value);
        }
        rest = next?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_comes_from_content_disposition() {
        let name = |h: &str| suggested_name(Some(h));
        assert_eq!(
            name(r#"attachment; filename="deliveries-exp_1.csv.gz""#).as_deref(),
            Some("deliveries-exp_1.csv.gz")
        );
        assert_eq!(name("attachment; filename=a.csv").as_deref(), Some("a.csv"));
        assert_eq!(
            name(r#"attachment; size=3; FileName="a;b \"c\".csv"; x=y"#).as_deref(),
            Some(r#"a;b "c".csv"#)
        );
        assert_eq!(
            name(r#"attachment; filename*=UTF-8''x.csv; filename="y.csv""#).as_deref(),
            Some("y.csv")
        );
    }

    #[test]
    fn a_suggested_name_stays_in_the_directory_and_visible() {
        let name = |h: &str| suggested_name(Some(h));
        assert_eq!(
            name(r#"attachment; filename="../../etc/passwd""#).as_deref(),
            Some("passwd")
        );
        assert_eq!(
            name(r#"attachment; filename="C:\\x\\out.csv""#).as_deref(),
            Some("out.csv")
        );
        for unusable in [
            r#"attachment; filename=".bashrc""#,
            r#"attachment; filename="dir/""#,
            r#"attachment; filename="""#,
            r#"attachment; filename="unterminated"#,
            "attachment; filename=\"a\u{7}b\"",
            "attachment",
            "inline; name=x",
        ] {
            assert_eq!(name(unusable), None, "{unusable}");
        }
        assert_eq!(suggested_name(None), None);
    }

    #[test]
    fn temp_files_are_hidden_beside_the_target() {
        let temp = temp_path(Path::new("out/a.csv.gz"));
        assert_eq!(temp.parent(), Some(Path::new("out")));
        let name = temp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".a.csv.gz.") && name.ends_with(".partial"),
            "{name}"
        );
    }

    #[test]
    fn a_mismatch_is_refused_and_a_match_kept() {
        assert!(verify(Some("ab"), "ab").is_ok());
        assert!(verify(None, "ab").is_ok());
        let e = verify(Some("ab"), "cd").unwrap_err().to_string();
        assert_eq!(
            e,
            "the download is corrupt: its SHA-256 is cd, the export's is ab"
        );
    }

    #[test]
    fn an_existing_file_is_kept_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        assert!(refuse_to_overwrite(&path, false).is_ok());
        std::fs::write(&path, "x").unwrap();
        let e = refuse_to_overwrite(&path, false).unwrap_err();
        assert!(e.downcast_ref::<ferry_client::UsageError>().is_some());
        assert!(e.to_string().contains("--force"), "{e}");
        assert!(refuse_to_overwrite(&path, true).is_ok());
    }
}
