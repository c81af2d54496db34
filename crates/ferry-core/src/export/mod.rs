//! Data exports, the pure part: what an export asks for (`spec`), the cells
//! of an exported row (`value`), how rows are written in each format
//! (`format`), compressed (`compress`) and redacted (`redact`). Everything
//! here writes into memory; reading the store and writing the target are the
//! server's, so the same code serves every target and is fuzzed on its own.

pub mod compress;
pub mod format;
pub mod job;
pub mod redact;
pub mod value;

pub use compress::{Compression, Compressor};
pub use format::{Encoder, Format};
pub use job::{
    AttemptContext, ExportJob, ExportOutput, ExportProgress, ExportSource, ExportSpec,
    ExportStatus, ExportTarget, Record, RecordFilter, RecordQuery,
};
pub use redact::{REDACTED, Redactor, mask_secrets};
pub use value::{RowRef, Value};
