//! Exports to `s3` and `sftp` destinations against moto's server and
//! OpenSSH's sshd: an output appears at its path whole when committed and
//! not at all before, after an abort or after a failure mid-way (a full
//! disk, a refused permission, a missing bucket).

use std::path::Path;
use std::sync::Arc;

use ferry_core::destination::{Auth, DestinationKind};
use ferry_core::ports::{ExportObject, ExportOutputs, ExportSink};
use serde_json::{Value, json};

use crate::compliance::{catalog, sha256_hex, validated};

/// The outputs of a destination built as the API builds one.
fn outputs(kind: DestinationKind, config: &Value, auth: &Auth) -> Arc<dyn ExportOutputs> {
    let catalog = catalog();
    catalog
        .export_outputs(&validated(&catalog, kind, config, auth))
        .unwrap_or_else(|e| panic!("{kind} takes no exports: {e}"))
}

fn object<'a>(path: &'a str, export_id: &'a str) -> ExportObject<'a> {
    ExportObject {
        path,
        export_id,
        content_type: "application/gzip",
    }
}

/// `len` bytes that do not compress, the same for the same seed.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes `body` in chunks of 256 KiB, as the export runner does.
async fn write_all(sink: &mut dyn ExportSink, body: &[u8]) -> Result<(), String> {
    for chunk in body.chunks(256 * 1024) {
        sink.write(chunk.to_vec()).await?;
    }
    Ok(())
}

#[cfg(feature = "s3")]
mod s3 {
    use ferry_testkit::services::S3Server;

    use super::*;
    use crate::compliance::s3::access_key;

    fn bucket(server: &S3Server) -> (String, Value) {
        let bucket = format!("ferry-{}", ferry_core::ids::unique_token());
        server.create_bucket(&bucket);
        let config = json!({"endpoint": server.endpoint(), "bucket": bucket});
        (bucket, config)
    }

    #[tokio::test]
    async fn an_export_appears_whole_at_commit_and_an_abort_leaves_no_upload() {
        let server = S3Server::start();
        let (bucket, config) = bucket(&server);
        let outputs = outputs(DestinationKind::S3, &config, &access_key());

        // Small: held, then put as one object at commit.
        let mut sink = outputs
            .create(object("reports/small.csv.gz", "exp_1"))
            .await
            .unwrap();
        write_all(sink.as_mut(), b"id,status\r\n1,delivered\r\n")
            .await
            .unwrap();
        assert!(server.objects(&bucket).is_empty());
        let location = sink.commit().await.unwrap();
        assert_eq!(location, format!("s3://{bucket}/reports/small.csv.gz"));

        // 20 MiB: a multipart upload of 8 + 8 + 4 MiB, invisible until
        // completed.
        let large = noise(20 * 1024 * 1024, 7);
        let mut sink = outputs
            .create(object("reports/large.csv.gz", "exp_2"))
            .await
            .unwrap();
        write_all(sink.as_mut(), &large).await.unwrap();
        assert_eq!(server.objects(&bucket).len(), 1, "only the small export");
        sink.commit().await.unwrap();

        // Aborted after parts went up: no object and no unfinished upload.
        let mut sink = outputs
            .create(object("reports/aborted.csv.gz", "exp_3"))
            .await
            .unwrap();
        write_all(sink.as_mut(), &noise(18 * 1024 * 1024, 9))
            .await
            .unwrap();
        assert_eq!(
            server.unfinished_uploads(&bucket),
            ["reports/aborted.csv.gz"]
        );
        sink.abort().await;
        assert!(server.unfinished_uploads(&bucket).is_empty());

        let objects = server.objects(&bucket);
        let keys: Vec<_> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["reports/large.csv.gz", "reports/small.csv.gz"]);
        let large_object = &objects[0];
        assert_eq!(large_object.size, large.len() as u64);
        assert_eq!(large_object.sha256, sha256_hex(&large));
        assert!(large_object.etag.ends_with("-3"), "{}", large_object.etag);
        assert_eq!(
            large_object.content_type.as_deref(),
            Some("application/gzip")
        );
        assert_eq!(
            objects[1].body.as_deref(),
            Some("id,status\r\n1,delivered\r\n")
        );

        // Retention deletes a committed export; deleting it again is fine.
        outputs
            .delete(object("reports/small.csv.gz", "exp_1"))
            .await
            .unwrap();
        outputs
            .delete(object("reports/small.csv.gz", "exp_1"))
            .await
            .unwrap();
        assert_eq!(server.objects(&bucket).len(), 1);
    }

    #[tokio::test]
    async fn a_missing_bucket_fails_the_export_with_the_reason() {
        let server = S3Server::start();
        let config = json!({"endpoint": server.endpoint(), "bucket": "ferry-no-such-bucket"});
        let outputs = outputs(DestinationKind::S3, &config, &access_key());

        let mut sink = outputs.create(object("small.csv", "exp_1")).await.unwrap();
        sink.write(b"a,b\r\n".to_vec()).await.unwrap();
        let error = sink.commit().await.unwrap_err();
        assert!(
            error.contains("bucket ferry-no-such-bucket does not exist"),
            "{error}"
        );

        let mut sink = outputs.create(object("large.csv", "exp_2")).await.unwrap();
        let error = write_all(sink.as_mut(), &noise(9 * 1024 * 1024, 3))
            .await
            .unwrap_err();
        assert!(
            error.starts_with(
                "starting the upload failed: bucket ferry-no-such-bucket does not exist"
            ),
            "{error}"
        );
        sink.abort().await;
    }
}

#[cfg(feature = "sftp")]
mod sftp {
    use std::os::unix::fs::PermissionsExt;

    use ferry_testkit::Tmpfs;
    use ferry_testkit::services::SftpServer;

    use super::*;
    use crate::compliance::sftp::password;
    use ferry_testkit::services::SFTP_PASSWORD;

    fn config(server: &SftpServer, dir: &Path) -> Value {
        json!({
            "host": "127.0.0.1",
            "port": server.port(),
            "directory": dir,
            "host_key_fingerprint": server.host_key_fingerprint(),
        })
    }

    /// Every file under `dir`, hidden ones too, relative to it.
    fn files(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(at) = stack.pop() {
            for entry in std::fs::read_dir(&at).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let relative = path.strip_prefix(dir).unwrap();
                    found.push(relative.display().to_string());
                }
            }
        }
        found.sort();
        found
    }

    #[tokio::test]
    async fn an_export_is_renamed_into_place_whole_and_replaces_an_older_one() {
        let server = SftpServer::start();
        let dir = server.directory();
        let outputs = outputs(
            DestinationKind::Sftp,
            &config(&server, dir.path()),
            &password(SFTP_PASSWORD),
        );
        let body = noise(3 * 1024 * 1024, 5);
        let mut sink = outputs
            .create(object("daily/deliveries.csv.gz", "exp_1"))
            .await
            .unwrap();
        write_all(sink.as_mut(), &body).await.unwrap();
        assert_eq!(
            files(dir.path()),
            ["daily/.deliveries.csv.gz.exp_1.partial"]
        );
        let location = sink.commit().await.unwrap();
        assert_eq!(
            location,
            format!(
                "sftp://127.0.0.1:{}{}/daily/deliveries.csv.gz",
                server.port(),
                dir.path().display()
            )
        );
        assert_eq!(files(dir.path()), ["daily/deliveries.csv.gz"]);
        let written = std::fs::read(dir.path().join("daily/deliveries.csv.gz")).unwrap();
        assert_eq!(sha256_hex(&written), sha256_hex(&body));

        // The same name again: the new export replaces the old whole.
        let mut sink = outputs
            .create(object("daily/deliveries.csv.gz", "exp_2"))
            .await
            .unwrap();
        write_all(sink.as_mut(), b"newer").await.unwrap();
        sink.commit().await.unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("daily/deliveries.csv.gz")).unwrap(),
            b"newer"
        );

        // An abort removes what was written; so does the clean-up after a
        // process died mid-export (here: a sink dropped unfinished).
        let mut sink = outputs.create(object("a.csv", "exp_3")).await.unwrap();
        write_all(sink.as_mut(), b"half").await.unwrap();
        sink.abort().await;
        let mut sink = outputs.create(object("b.csv", "exp_4")).await.unwrap();
        write_all(sink.as_mut(), b"half").await.unwrap();
        drop(sink);
        assert!(files(dir.path()).contains(&".b.csv.exp_4.partial".to_owned()));
        outputs.clean_up(object("b.csv", "exp_4")).await;
        assert_eq!(files(dir.path()), ["daily/deliveries.csv.gz"]);

        outputs
            .delete(object("daily/deliveries.csv.gz", "exp_2"))
            .await
            .unwrap();
        assert!(files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_full_disk_mid_export_fails_it_and_leaves_nothing() {
        let server = SftpServer::start();
        let dir = server.directory();
        let Some(disk) = Tmpfs::mount(&dir.path().join("small"), 2) else {
            return;
        };
        std::fs::set_permissions(disk.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let outputs = outputs(
            DestinationKind::Sftp,
            &config(&server, disk.path()),
            &password(SFTP_PASSWORD),
        );
        let mut sink = outputs.create(object("big.csv", "exp_1")).await.unwrap();
        let error = write_all(sink.as_mut(), &noise(4 * 1024 * 1024, 11))
            .await
            .unwrap_err();
        assert!(error.contains("no space left on the server"), "{error}");
        sink.abort().await;
        assert!(files(disk.path()).is_empty());
    }

    #[tokio::test]
    async fn a_directory_without_write_permission_fails_at_the_start() {
        let server = SftpServer::start();
        let dir = server.directory();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let outputs = outputs(
            DestinationKind::Sftp,
            &config(&server, dir.path()),
            &password(SFTP_PASSWORD),
        );
        let error = match outputs.create(object("x.csv", "exp_1")).await {
            Err(error) => error,
            Ok(_) => panic!("created a file in a read-only directory"),
        };
        assert!(error.ends_with("permission denied"), "{error}");
        assert!(files(dir.path()).is_empty());
    }
}
