//! A tiny aligned-column table formatter for the CLI's human-readable output.
//!
//! Columns are separated by two spaces, headers are upper-cased, the last
//! column is not padded (so long error messages do not leave trailing blanks),
//! an empty cell is shown as `-`, and a column that is empty in every row can
//! be dropped with [`Table::hide_empty_columns`].

use std::fmt::Write as _;

/// Longest cell kept before it is cut with `…` (the full text is in `--json`).
const DEFAULT_MAX_CELL: usize = 80;

/// Rows of text cells under a header.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    hide_empty: bool,
    max_cell: usize,
    empty: &'static str,
}

impl Table {
    pub fn new<I, S>(headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            headers: headers.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            hide_empty: false,
            max_cell: DEFAULT_MAX_CELL,
            empty: "-",
        }
    }

    /// Adds a row; missing cells are empty and extra cells are ignored.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cells: Vec<String> = cells
            .into_iter()
            .map(|c| clean(&c.into()))
            .take(self.headers.len())
            .collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// Drops the columns that are empty in every row.
    pub fn hide_empty_columns(mut self) -> Self {
        self.hide_empty = true;
        self
    }

    /// Shows empty cells as `text` instead of `-`.
    pub fn empty_as(mut self, text: &'static str) -> Self {
        self.empty = text;
        self
    }

    /// Cuts cells longer than `chars` characters.
    pub fn max_cell(mut self, chars: usize) -> Self {
        self.max_cell = chars.max(2);
        self
    }

    /// The table as text, one line per row, each ending with `\n`.
    pub fn render(&self) -> String {
        let visible: Vec<usize> = (0..self.headers.len())
            .filter(|&col| !self.hide_empty || self.rows.iter().any(|r| !r[col].is_empty()))
            .collect();
        let cell = |row: &[String], col: usize| -> String {
            let text = &row[col];
            if text.is_empty() {
                self.empty.to_owned()
            } else {
                truncate(text, self.max_cell)
            }
        };
        let header_row: Vec<String> = self.headers.iter().map(|h| h.to_uppercase()).collect();
        let body: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| visible.iter().map(|&c| cell(r, c)).collect())
            .collect();
        let header: Vec<String> = visible.iter().map(|&c| header_row[c].clone()).collect();

        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &body {
            for (w, text) in widths.iter_mut().zip(row) {
                *w = (*w).max(text.chars().count());
            }
        }

        let mut out = String::new();
        for line in std::iter::once(&header).chain(body.iter()) {
            let last = line.len().saturating_sub(1);
            for (i, text) in line.iter().enumerate() {
                if i == last {
                    out.push_str(text);
                } else {
                    let pad = widths[i] - text.chars().count();
                    let _ = write!(out, "{text}{:pad$}  ", "");
                }
            }
            out.push('\n');
        }
        out
    }
}

/// `text` cut to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// One line per cell: control characters (newlines, tabs) become spaces.
fn clean(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect()
    } else {
        text.to_owned()
    }
}

/// Aligned `key  value` lines, for one record shown vertically.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let value = if value.is_empty() { "-" } else { value };
        let _ = writeln!(out, "{key:width$}  {}", clean(value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_the_last_is_not_padded() {
        let mut t = Table::new(["id", "status", "error"]);
        t.row(["dlv_1", "delivered", ""]);
        t.row(["dlv_22", "dead", "HTTP 500"]);
        assert_eq!(
            t.render(),
            "ID      STATUS     ERROR\n\
             dlv_1   delivered  -\n\
             dlv_22  dead       HTTP 500\n"
        );
    }

    #[test]
    fn empty_columns_can_be_hidden() {
        let mut t = Table::new(["a", "b", "c"]).hide_empty_columns();
        t.row(["1", "", "x"]);
        t.row(["22", "", ""]);
        assert_eq!(t.render(), "A   C\n1   x\n22  -\n");
    }

    #[test]
    fn empty_cells_can_be_blank() {
        let mut t = Table::new(["a", "b"]).empty_as("");
        t.row(["x", "1"]);
        t.row(["", "2"]);
        assert_eq!(t.render(), "A  B\nx  1\n   2\n");
    }

    #[test]
    fn long_cells_are_cut_and_control_characters_removed() {
        let mut t = Table::new(["msg"]).max_cell(6);
        t.row(["line one\nline two"]);
        assert_eq!(t.render(), "MSG\nline …\n");
    }

    #[test]
    fn rows_are_padded_or_cut_to_the_header() {
        let mut t = Table::new(["a", "b"]);
        t.row(["1"]);
        t.row(["1", "2", "3"]);
        assert_eq!(t.render(), "A  B\n1  -\n1  2\n");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        let mut t = Table::new(["name", "x"]);
        t.row(["héllo", "1"]);
        assert_eq!(t.render(), "NAME   X\nhéllo  1\n");
    }

    #[test]
    fn key_values_align_keys() {
        assert_eq!(
            key_values(&[("id", "evt_1".into()), ("status", String::new())]),
            "id      evt_1\nstatus  -\n"
        );
    }

    #[test]
    fn truncate_keeps_short_text() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
    }
}
