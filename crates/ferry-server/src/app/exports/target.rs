//! Where an export's bytes go, never half-written: output is written under
//! a temporary name beside the final one and renamed into place only when
//! the whole export succeeded (after an fsync of the file and then of its
//! directory, so that a crash leaves either the old state or the whole
//! file). A failure or a cancel removes the temporary file; a restart
//! removes what an interrupted run left ([`LocalFile::clean_up`]).

use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ferry_core::ids::ExportId;
use ferry_core::ports::ExportSink;
use tokio::fs::{self, File, OpenOptions};
use tokio::io::AsyncWriteExt;

/// An export being written to a local file.
pub struct LocalFile {
    final_path: PathBuf,
    temp_path: PathBuf,
    file: File,
}

/// The temporary name of job `id`'s output beside `final_path`: hidden, and
/// named after the job so that a restart can find and remove it.
pub fn temp_path(final_path: &Path, id: &ExportId) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".{name}.{id}.partial"))
}

impl LocalFile {
    /// Creates the temporary file (and the directories above it, under
    /// the file root the path was checked against).
    pub async fn create(final_path: PathBuf, id: &ExportId) -> io::Result<Self> {
        if let Some(parent) = final_path.parent() {
            fs::create_dir_all(parent).await?;
        }
        let temp_path = temp_path(&final_path, id);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp_path)
            .await?;
        Ok(Self {
            final_path,
            temp_path,
            file,
        })
    }

    /// Flushes the whole output to disk and renames it into place.
    async fn finish(&mut self) -> io::Result<()> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        fs::rename(&self.temp_path, &self.final_path).await?;
        if let Some(parent) = self.final_path.parent() {
            File::open(parent).await?.sync_all().await?;
        }
        Ok(())
    }

    /// Removes the temporary file an interrupted run of job `id` left at
    /// `final_path`, if any.
    pub async fn clean_up(final_path: &Path, id: &ExportId) {
        remove_if_present(&temp_path(final_path, id)).await;
    }
}

#[async_trait]
impl ExportSink for LocalFile {
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
        self.file.write_all(&chunk).await.map_err(|e| e.to_string())
    }

    async fn commit(mut self: Box<Self>) -> Result<String, String> {
        match self.finish().await {
            Ok(()) => Ok(self.final_path.display().to_string()),
            Err(error) => {
                remove_if_present(&self.temp_path).await;
                Err(error.to_string())
            }
        }
    }

    async fn abort(self: Box<Self>) {
        let Self {
            file, temp_path, ..
        } = *self;
        drop(file);
        remove_if_present(&temp_path).await;
    }
}

async fn remove_if_present(path: &Path) {
    if let Err(error) = fs::remove_file(path).await
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %error, "Could not remove an unfinished export file.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_committed_export_is_at_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let id = ExportId::generate();
        let path = dir.path().join("sub/out.csv");
        let mut file: Box<dyn ExportSink> =
            Box::new(LocalFile::create(path.clone(), &id).await.unwrap());
        file.write(b"a,b\n".to_vec()).await.unwrap();
        assert!(!path.exists());
        assert!(temp_path(&path, &id).exists());
        assert_eq!(file.commit().await.unwrap(), path.display().to_string());
        assert_eq!(std::fs::read(&path).unwrap(), b"a,b\n");
        assert!(!temp_path(&path, &id).exists());

        let other = dir.path().join("sub/aborted.csv");
        let mut file: Box<dyn ExportSink> =
            Box::new(LocalFile::create(other.clone(), &id).await.unwrap());
        file.write(b"half".to_vec()).await.unwrap();
        file.abort().await;
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["out.csv"]);
    }
}
