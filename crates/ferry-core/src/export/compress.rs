//! How an export's bytes are compressed on their way to the target:
//! streaming, so that memory stays bounded whatever the export's size.

use std::io;

use serde::{Deserialize, Serialize};

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
}

impl Compression {
    /// The media type of a compressed output; none for `none`.
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
    _private: (),
}

impl Compressor {
    /// A compressor of `compression`; `entry_name` names the zip entry.
    pub fn new(compression: Compression, entry_name: &str) -> Self {
        let _ = (compression, entry_name);
        todo!("filled in by the compressors")
    }

    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let _ = bytes;
        todo!()
    }

    /// The compressed bytes produced so far and not yet taken.
    pub fn take(&mut self) -> Vec<u8> {
        todo!()
    }

    /// Ends the stream: the last compressed bytes (gzip's trailer, the zip
    /// directory).
    pub fn finish(self) -> io::Result<Vec<u8>> {
        todo!()
    }
}
