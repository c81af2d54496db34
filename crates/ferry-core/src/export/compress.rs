//! How an export's bytes are compressed on their way to the target:
//! streaming, so that memory stays bounded whatever the export's size.
//!
//! Gzip runs at flate2's default level (6): the usual balance, as fast as
//! the encoder on two cores while still shrinking exported JSON and CSV
//! severalfold; nothing else is tunable, so every export of a kind is alike.
//!
//! Zip holds one entry, deflated at the same level, and is written as a
//! stream for a target that cannot seek (an upload, a pipe): the entry's
//! sizes and CRC follow its data in a data descriptor, and the central
//! directory comes at `finish`. The entry is marked ZIP64 from the start,
//! because its size is not known when its header is written and an export
//! may pass 4 GiB; every current unzip tool reads ZIP64. It is dated when
//! the compressor is made.
//!
//! Each compressor writes into a buffer of its own that [`Compressor::take`]
//! drains: the deflate window (32 KiB) and that buffer are all it holds.

use std::io::{self, Write};
use std::mem;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{Datelike, Timelike, Utc};
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use zip::write::{SimpleFileOptions, StreamWriter};
use zip::{CompressionMethod, ZipWriter};

/// An export's compression.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    None,
    Gzip,
    /// A zip archive with one entry, named after the export.
    Zip,
}

impl Compression {
    /// The suffix it adds to a file name (`.gz`), empty for `none`.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zip => ".zip",
        }
    }

    /// The media type of a compressed output (`application/gzip`); `None`
    /// for `none`, whose type is the format's.
    pub fn content_type(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("application/gzip"),
            Compression::Zip => Some("application/zip"),
        }
    }
}

/// Compresses a stream of bytes: `write` what the encoder produced, `take`
/// what is ready for the target, and `finish` for the rest.
pub struct Compressor {
    inner: Inner,
}

enum Inner {
    None(Vec<u8>),
    Gzip(Box<GzEncoder<Vec<u8>>>),
    Zip {
        writer: Box<ZipWriter<StreamWriter<SharedBuf>>>,
        out: SharedBuf,
        /// Why the entry could not be started, told by the next call.
        failed: Option<io::Error>,
    },
}

impl Compressor {
    /// A compressor of `compression`; `entry_name` names the zip entry.
    pub fn new(compression: Compression, entry_name: &str) -> Self {
        let inner = match compression {
            Compression::None => Inner::None(Vec::new()),
            Compression::Gzip => Inner::Gzip(Box::new(GzEncoder::new(
                Vec::new(),
                flate2::Compression::default(),
            ))),
            Compression::Zip => {
                let out = SharedBuf::default();
                let mut writer = Box::new(ZipWriter::new_stream(out.clone()));
                let options = SimpleFileOptions::default()
                    .compression_method(CompressionMethod::Deflated)
                    .large_file(true)
                    .last_modified_time(zip_now());
                let failed = writer
                    .start_file(entry_name, options)
                    .err()
                    .map(io::Error::from);
                Inner::Zip {
                    writer,
                    out,
                    failed,
                }
            }
        };
        Self { inner }
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::None(out) => {
                out.extend_from_slice(bytes);
                Ok(())
            }
            Inner::Gzip(gz) => gz.write_all(bytes),
            Inner::Zip { writer, failed, .. } => match failed.take() {
                Some(error) => Err(error),
                None => writer.write_all(bytes),
            },
        }
    }

    /// The compressed bytes produced so far and not yet taken.
    pub fn take(&mut self) -> Vec<u8> {
        match &mut self.inner {
            Inner::None(out) => mem::take(out),
            // Taking the bytes out of the encoder's `Vec` leaves it
            // appending to an empty one: the stream goes on unchanged.
            Inner::Gzip(gz) => mem::take(gz.get_mut()),
            Inner::Zip { out, .. } => out.take(),
        }
    }

    /// Ends the stream: the last compressed bytes (gzip's trailer, the zip
    /// directory).
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self.inner {
            Inner::None(out) => Ok(out),
            Inner::Gzip(gz) => gz.finish(),
            Inner::Zip {
                writer,
                out,
                failed,
            } => {
                if let Some(error) = failed {
                    return Err(error);
                }
                writer.finish().map_err(io::Error::from)?;
                Ok(out.take())
            }
        }
    }
}

/// The zip writer's output, shared with the compressor so that `take` can
/// drain it while the writer goes on (the zip writer gives its inner writer
/// back only at the end). Uncontended: one thread drives both.
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        // A panic while holding the lock leaves only bytes behind: still
        // a valid buffer, so a poisoned lock is used as it is.
        mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Now, as a zip date (UTC; zip dates have no zone), or zip's default
/// (1980) should the clock be outside what zip can hold.
fn zip_now() -> zip::DateTime {
    let now = Utc::now();
    let year = u16::try_from(now.year()).unwrap_or(0);
    // `hour`, `minute`, `second` are below 60, `month` and `day` below 32.
    let [month, day, hour, minute, second] = [
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
    ]
    .map(|n| n as u8);
    zip::DateTime::from_date_and_time(year, month, day, hour, minute, second).unwrap_or_default()
}

#[cfg(test)]
mod tests;
