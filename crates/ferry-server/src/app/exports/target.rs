//! Where an export's bytes go, never half-written: output is written under
//! a temporary name beside the final one and renamed into place only when
//! the whole export succeeded (after an fsync of the file and then of its
//! directory, so that a crash leaves either the old state or the whole
//! file). A failure or a cancel removes the temporary file; a restart
//! removes what an interrupted run left ([`LocalFile::clean_up`]).

use std::io;
use std::path::{Path, PathBuf};

use ferry_core::ids::ExportId;
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

    pub async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes).await
    }

    /// Flushes the whole output to disk and renames it into place; returns
    /// where it is.
    pub async fn commit(mut self) -> io::Result<PathBuf> {
        let result = async {
            self.file.flush().await?;
            self.file.sync_all().await?;
            fs::rename(&self.temp_path, &self.final_path).await?;
            if let Some(parent) = self.final_path.parent() {
                File::open(parent).await?.sync_all().await?;
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => Ok(self.final_path),
            Err(error) => {
                let _ = fs::remove_file(&self.temp_path).await;
                Err(error)
            }
        }
    }

    /// Removes what was written.
    pub async fn abort(self) {
        drop(self.file);
        remove_if_present(&self.temp_path).await;
    }

    /// Removes the temporary file an interrupted run of job `id` left at
    /// `final_path`, if any.
    pub async fn clean_up(final_path: &Path, id: &ExportId) {
        remove_if_present(&temp_path(final_path, id)).await;
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
        let mut file = LocalFile::create(path.clone(), &id).await.unwrap();
        file.write(b"a,b\n").await.unwrap();
        assert!(!path.exists());
        assert!(temp_path(&path, &id).exists());
        assert_eq!(file.commit().await.unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), b"a,b\n");
        assert!(!temp_path(&path, &id).exists());

        let other = dir.path().join("sub/aborted.csv");
        let mut file = LocalFile::create(other.clone(), &id).await.unwrap();
        file.write(b"half").await.unwrap();
        file.abort().await;
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["out.csv"]);
    }
}
