//! Data exports, the pure part: what an export asks for (`request`, validated
//! into the `job`'s spec), the cells
//! of an exported row (`value`), how rows are written in each format
//! (`format`), compressed (`compress`) and redacted (`redact`), and the
//! operational log's lines read back (`log_line`). Everything
//! here writes into memory; reading the store and writing the target are the
//! server's, so the same code serves every target and is fuzzed on its own.

pub mod compress;
pub mod format;
pub mod job;
pub mod log_line;
pub mod redact;
pub mod request;
pub mod schedule;
pub mod schedule_request;
pub mod value;

pub use compress::{Compression, Compressor};
pub use format::{Encoder, Format};
pub use job::{
    AttemptContext, ExportJob, ExportOutput, ExportProgress, ExportSource, ExportSpec,
    ExportStatus, ExportTarget, Record, RecordFilter, RecordQuery,
};
pub use log_line::{LogEntry, LogLevel};
pub use redact::{REDACTED, Redactor, mask_secrets};
pub use request::ExportRequest;
pub use schedule::{AfterFailure, ExportSchedule, Retention, RetryPolicy, Run, Trigger};
pub use schedule_request::{SchedulePatch, ScheduleRequest};
pub use value::{RowRef, Value};
