//! Exports to an S3 bucket, never half-written: an output that stays under
//! one part is held and put as one object at commit; a larger one goes up
//! as a multipart upload (a few parts in flight at once, so memory stays
//! bounded), completed at commit and aborted on a failure or a cancel. S3
//! shows an object only once its upload is complete, so a reader sees the
//! whole export or none. An upload left by a process that died is
//! invisible but kept (and billed) by S3 until aborted: a lifecycle rule
//! with `AbortIncompleteMultipartUpload` on the bucket removes those.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use ferry_core::ports::{ExportObject, ExportOutputs, ExportSink};
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{
    Attribute, Attributes, MultipartUpload, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload,
};
use tokio::task::JoinSet;

use super::config::object_key;
use super::deliverer::{S3Guard, classify};

/// Size of each part of an export's upload (S3 wants 5 MiB or more but
/// for the last; 10,000 parts of 8 MiB hold 80 GB).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts of one export in flight at once.
const PARALLEL_PARTS: usize = 2;

/// Where a destination's exports go: its bucket, with its client.
pub(super) struct S3Exports {
    pub store: AmazonS3,
    pub bucket: String,
    pub storage_class: Option<String>,
    /// Bounds each request.
    pub timeout: Duration,
    pub guard: S3Guard,
}

#[async_trait]
impl ExportOutputs for S3Exports {
    async fn create(&self, object: ExportObject<'_>) -> Result<Box<dyn ExportSink>, String> {
        self.guard.check().map_err(|e| e.into_reason())?;
        let key = object_key(object.path).map_err(|e| format!("the path {e}"))?;
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            object.content_type.to_owned().into(),
        );
        if let Some(class) = &self.storage_class {
            attributes.insert(Attribute::StorageClass, class.clone().into());
        }
        Ok(Box::new(S3Sink {
            store: self.store.clone(),
            bucket: self.bucket.clone(),
            key,
            attributes,
            timeout: self.timeout,
            buffer: Vec::new(),
            upload: None,
        }))
    }

    /// Nothing to find: an unfinished upload is invisible (see the module
    /// documentation for the lifecycle rule that removes it).
    async fn clean_up(&self, _object: ExportObject<'_>) {}

    async fn delete(&self, object: ExportObject<'_>) -> Result<(), String> {
        self.guard.check().map_err(|e| e.into_reason())?;
        let key = object_key(object.path).map_err(|e| format!("the path {e}"))?;
        let delete = self.store.delete(&key);
        match tokio::time::timeout(self.timeout, delete).await {
            Ok(Ok(()) | Err(object_store::Error::NotFound { .. })) => Ok(()),
            Ok(Err(error)) => Err(format!(
                "deleting s3://{}/{key} failed: {}",
                self.bucket,
                classify(&error, &self.bucket).into_reason()
            )),
            Err(_) => Err(format!(
                "deleting s3://{}/{key} timed out after {} ms",
                self.bucket,
                self.timeout.as_millis()
            )),
        }
    }
}

/// One export on its way to a bucket.
struct S3Sink {
    store: AmazonS3,
    bucket: String,
    key: ObjectPath,
    attributes: Attributes,
    timeout: Duration,
    /// Bytes not yet sent as a part (less than [`PART_SIZE`] between
    /// writes).
    buffer: Vec<u8>,
    upload: Option<Upload>,
}

/// A multipart upload under way.
struct Upload {
    parts: Box<dyn MultipartUpload>,
    in_flight: JoinSet<Result<(), String>>,
}

impl S3Sink {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// Sends the buffer's first [`PART_SIZE`] bytes as the next part,
    /// starting the upload first when there is none, and waiting while
    /// [`PARALLEL_PARTS`] are in flight.
    async fn send_part(&mut self) -> Result<(), String> {
        if self.upload.is_none() {
            let options = PutMultipartOptions {
                attributes: self.attributes.clone(),
                ..PutMultipartOptions::default()
            };
            let start = self.store.put_multipart_opts(&self.key, options);
            let parts = within(self.timeout, &self.bucket, "starting the upload", start).await?;
            self.upload = Some(Upload {
                parts,
                in_flight: JoinSet::new(),
            });
        }
        let rest = self.buffer.split_off(PART_SIZE.min(self.buffer.len()));
        let part = Bytes::from(std::mem::replace(&mut self.buffer, rest));
        let (timeout, bucket) = (self.timeout, self.bucket.clone());
        let upload = self.upload.as_mut().expect("started above");
        while upload.in_flight.len() >= PARALLEL_PARTS {
            joined(upload.in_flight.join_next().await)?;
        }
        let put = upload.parts.put_part(PutPayload::from(part));
        upload
            .in_flight
            .spawn(async move { within(timeout, &bucket, "uploading a part", put).await });
        Ok(())
    }

    /// Puts the held output as one object, or waits for the parts in
    /// flight and completes the upload (kept for the abort when that
    /// fails).
    async fn finish(&mut self) -> Result<(), String> {
        let Some(mut upload) = self.upload.take() else {
            let body = PutPayload::from(Bytes::from(std::mem::take(&mut self.buffer)));
            let options = PutOptions {
                attributes: self.attributes.clone(),
                ..PutOptions::default()
            };
            let put = self.store.put_opts(&self.key, body, options);
            return within(self.timeout, &self.bucket, "writing the object", put)
                .await
                .map(drop);
        };
        let result = async {
            while let Some(done) = upload.in_flight.join_next().await {
                joined(Some(done))?;
            }
            let complete = upload.parts.complete();
            within(
                self.timeout,
                &self.bucket,
                "completing the upload",
                complete,
            )
            .await
            .map(drop)
        }
        .await;
        if result.is_err() {
            self.upload = Some(upload);
        }
        result
    }
}

#[async_trait]
impl ExportSink for S3Sink {
    async fn write(&mut self, chunk: Vec<u8>) -> Result<(), String> {
        if self.buffer.is_empty() {
            self.buffer = chunk;
        } else {
            self.buffer.extend_from_slice(&chunk);
        }
        while self.buffer.len() >= PART_SIZE {
            self.send_part().await?;
        }
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<String, String> {
        let finished = async {
            if self.upload.is_some() && !self.buffer.is_empty() {
                self.send_part().await?;
            }
            self.finish().await
        };
        match finished.await {
            Ok(()) => Ok(self.location()),
            Err(error) => {
                self.abort().await;
                Err(error)
            }
        }
    }

    async fn abort(mut self: Box<Self>) {
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        upload.in_flight.shutdown().await;
        let abort = upload.parts.abort();
        if let Err(error) = within(self.timeout, &self.bucket, "aborting the upload", abort).await {
            tracing::warn!(location = %self.location(), %error, "Could not abort an export's multipart upload; a lifecycle rule with AbortIncompleteMultipartUpload removes it.");
        }
    }
}

/// `work`, within `timeout`, its error explained.
async fn within<T>(
    timeout: Duration,
    bucket: &str,
    what: &str,
    work: impl Future<Output = object_store::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!(
            "{what} failed: {}",
            classify(&error, bucket).into_reason()
        )),
        Err(_) => Err(format!("{what} timed out after {} ms", timeout.as_millis())),
    }
}

/// A part's upload, as its task ended.
fn joined(done: Option<Result<Result<(), String>, tokio::task::JoinError>>) -> Result<(), String> {
    match done {
        None | Some(Ok(Ok(()))) => Ok(()),
        Some(Ok(Err(error))) => Err(error),
        Some(Err(error)) => Err(format!("uploading a part failed: {error}")),
    }
}
