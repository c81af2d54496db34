//! A page of export records handed over as one JSON value: SQLite builds
//! `[[col, col, …], …]` for the whole page, and [`JsonRow`] reads each row
//! of it through the same [`Columns`] as a driver's row, so that every
//! decoder serves both paths.
//!
//! Why: read row by row, SQLite's driver copies every column of every row
//! into a value of its own, on its connection's thread, and frees it on
//! another. For an export of a million rows that was a third of the CPU
//! (most of it glibc's allocator, taking locks for frees across threads)
//! and tens of MB of allocator arenas that stayed. One value per page is
//! one allocation, and the JSON is parsed on the reading task.

use ferry_core::error::StoreResult;
use serde_json::Value;

use super::decode::{Columns, corrupt};

/// One row of a JSON page: its cells, named like the columns of the
/// statement the page was built from.
pub(crate) struct JsonRow<'a> {
    pub names: &'a [&'a str],
    pub cells: Vec<Value>,
}

/// The rows of a JSON page (`[[…], …]`, each as long as `names`).
pub(crate) fn rows<'a>(names: &'a [&'a str], page: &str) -> StoreResult<Vec<JsonRow<'a>>> {
    let rows: Vec<Vec<Value>> = serde_json::from_str(page).map_err(|e| corrupt("page", e))?;
    rows.into_iter()
        .map(|cells| {
            if cells.len() == names.len() {
                Ok(JsonRow { names, cells })
            } else {
                Err(corrupt("page", "a row has the wrong number of cells"))
            }
        })
        .collect()
}

impl JsonRow<'_> {
    fn cell(&self, column: &str) -> StoreResult<&Value> {
        self.names
            .iter()
            .position(|name| *name == column)
            .map(|i| &self.cells[i])
            .ok_or_else(|| corrupt(column, "not in the page"))
    }
}

impl Columns for JsonRow<'_> {
    fn text(&self, column: &str) -> StoreResult<&str> {
        self.opt_text(column)?
            .ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    fn opt_text(&self, column: &str) -> StoreResult<Option<&str>> {
        match self.cell(column)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            _ => Err(corrupt(column, "not text")),
        }
    }

    fn int(&self, column: &str) -> StoreResult<i64> {
        self.opt_int(column)?
            .ok_or_else(|| corrupt(column, "unexpected NULL"))
    }

    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        match self.cell(column)? {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| corrupt(column, "not an integer")),
            _ => Err(corrupt(column, "not an integer")),
        }
    }

    fn bytes(&self, column: &str) -> StoreResult<&[u8]> {
        // JSON holds no blobs: a page never selects one.
        Err(corrupt(column, "a JSON page holds no blobs"))
    }

    fn flag(&self, column: &str) -> StoreResult<bool> {
        match self.cell(column)? {
            Value::Bool(b) => Ok(*b),
            _ => Ok(self.int(column)? != 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_as_their_columns() {
        let names = ["seq", "id", "error", "flag"];
        let rows = rows(&names, r#"[[7, "dlv_1", null, 1], [8, "dlv_\"2", "x", 0]]"#).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].int("seq").unwrap(), 7);
        assert_eq!(rows[0].opt_text("error").unwrap(), None);
        assert!(rows[0].flag("flag").unwrap());
        assert_eq!(rows[1].text("id").unwrap(), "dlv_\"2");
        assert!(rows[0].text("error").is_err(), "NULL is not text");
        assert!(rows[0].int("id").is_err(), "text is not an integer");
        assert!(rows[0].text("missing").is_err());
        assert!(super::rows(&names, "[[1, 2]]").is_err(), "short row");
        assert!(super::rows(&names, "[[1, ").is_err(), "cut page");
        assert!(super::rows(&names, "[]").unwrap().is_empty());
    }
}
