//! Cursor pagination shared by every list.

/// Default and maximum page sizes (API.md).
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;

/// A page request: rows strictly after `after` (an opaque, store-assigned
/// sequence number), newest first unless a list says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<i64>,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// A page of rows and the cursor of the next page, if there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched with their sequence
    /// numbers: the extra row only tells that another page exists.
    pub fn from_rows(mut rows: Vec<(i64, T)>, limit: u32) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more {
            rows.last().map(|(seq, _)| *seq)
        } else {
            None
        };
        Self {
            items: rows.into_iter().map(|(_, item)| item).collect(),
            next,
        }
    }
}
