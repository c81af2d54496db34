//! Aligned columns, for people reading an export in a terminal or a mail: a
//! header line, a line of dashes, then one line per row, cells separated by
//! two spaces and padded to their column's width.
//!
//! Widths come from the header and the first [`WIDTH_ROWS`] rows, which are
//! held until then (so memory stays bounded however long the export); later
//! rows keep those widths, and a longer cell pushes the rest of its line
//! right rather than being cut. Nothing is truncated or dropped.
//!
//! Each row is exactly one line: line breaks, tabs and other control
//! characters are written as escapes (`\n`, `\t`, `\r`, `\u{1b}`), and so
//! are the Unicode line and paragraph separators and the bidirectional
//! controls, which would otherwise break a line or reorder what a reader
//! sees. A backslash is written as it is: the text is for reading, not for
//! parsing back. Widths count characters, so wide scripts may misalign.

use super::cell::cell_text;
use super::{Encoder, cell};
use crate::export::value::Value;

/// How many rows size the columns before anything is written.
pub const WIDTH_ROWS: usize = 1000;

/// Between two cells.
const GAP: &str = "  ";

pub(super) struct TextEncoder {
    /// The escaped column names.
    header: Vec<String>,
    widths: Vec<usize>,
    /// The first rows, escaped, until the widths are fixed.
    held: Vec<Vec<String>>,
    /// Whether the header and the held rows were written.
    fixed: bool,
    scratch: Vec<u8>,
    escaped: String,
}

impl TextEncoder {
    pub(super) fn new(columns: Vec<String>) -> Self {
        let header: Vec<String> = columns
            .iter()
            .map(|c| {
                let mut escaped = String::new();
                escape_into(c, &mut escaped);
                escaped
            })
            .collect();
        let widths = header.iter().map(|h| h.chars().count()).collect();
        Self {
            header,
            widths,
            held: Vec::new(),
            fixed: false,
            scratch: Vec::new(),
            escaped: String::new(),
        }
    }

    /// Writes the header, the dashes and the held rows; the widths are fixed
    /// from here on.
    fn fix(&mut self, out: &mut Vec<u8>) {
        let mut line = String::new();
        write_line(
            &mut line,
            self.header.iter().map(String::as_str),
            &self.widths,
        );
        out.extend_from_slice(line.as_bytes());
        line.clear();
        let dashes: Vec<String> = self.widths.iter().map(|&w| "-".repeat(w)).collect();
        write_line(&mut line, dashes.iter().map(String::as_str), &self.widths);
        out.extend_from_slice(line.as_bytes());
        for row in std::mem::take(&mut self.held) {
            line.clear();
            write_line(&mut line, row.iter().map(String::as_str), &self.widths);
            out.extend_from_slice(line.as_bytes());
        }
        self.fixed = true;
    }
}

impl Encoder for TextEncoder {
    fn begin(&mut self, _out: &mut Vec<u8>) {}

    fn row(&mut self, row: &[Value], out: &mut Vec<u8>) {
        debug_assert!(
            row.len() <= self.widths.len(),
            "a row has more cells than columns"
        );
        if self.fixed {
            // Escape each cell into one line buffer, padding as it goes.
            self.escaped.clear();
            let last = self.widths.len().saturating_sub(1);
            for (i, &width) in self.widths.iter().enumerate() {
                let start = self.escaped.len();
                escape_into(
                    &cell_text(cell(row, i), &mut self.scratch).as_str(),
                    &mut self.escaped,
                );
                if i < last {
                    let chars = self.escaped[start..].chars().count();
                    pad(&mut self.escaped, width.saturating_sub(chars));
                    self.escaped.push_str(GAP);
                }
            }
            self.escaped.push('\n');
            out.extend_from_slice(self.escaped.as_bytes());
            return;
        }
        let cells: Vec<String> = (0..self.widths.len())
            .map(|i| {
                let mut escaped = String::new();
                escape_into(
                    &cell_text(cell(row, i), &mut self.scratch).as_str(),
                    &mut escaped,
                );
                escaped
            })
            .collect();
        for (width, escaped) in self.widths.iter_mut().zip(&cells) {
            *width = (*width).max(escaped.chars().count());
        }
        self.held.push(cells);
        if self.held.len() >= WIDTH_ROWS {
            self.fix(out);
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.fixed {
            self.fix(out);
        }
    }
}

/// Appends one line of `cells`, each but the last padded to its width.
fn write_line<'a>(line: &mut String, cells: impl Iterator<Item = &'a str>, widths: &[usize]) {
    let last = widths.len().saturating_sub(1);
    for (i, (cell, &width)) in cells.zip(widths).enumerate() {
        line.push_str(cell);
        if i < last {
            pad(line, width.saturating_sub(cell.chars().count()));
            line.push_str(GAP);
        }
    }
    line.push('\n');
}

fn pad(line: &mut String, spaces: usize) {
    line.extend(std::iter::repeat_n(' ', spaces));
}

/// Whether a character would break the line or change how the rest of it
/// reads: controls, the Unicode line separators, and bidirectional controls.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061c}' | '\u{200e}' | '\u{200f}'
        )
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Appends `text` with the characters that [`must_escape`] escaped.
pub(crate) fn escape_into(text: &str, out: &mut String) {
    // Fast path: plain ASCII with no control character, as most cells are.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if must_escape(c) => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::format::{Format, encoder};
    use serde_json::json;

    fn encode(columns: &[&str], rows: &[Vec<Value>]) -> String {
        let mut encoder = encoder(
            Format::Text,
            columns.iter().map(|c| c.to_string()).collect(),
        );
        let mut out = Vec::new();
        encoder.begin(&mut out);
        for row in rows {
            encoder.row(row, &mut out);
        }
        encoder.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn columns_are_aligned_under_a_header() {
        let text = encode(
            &["id", "attempts", "data"],
            &[
                vec![
                    Value::Text("evt_1".into()),
                    Value::Int(3),
                    Value::Json(json!({"a": 1})),
                ],
                vec![
                    Value::Text("evt_200".into()),
                    Value::Null,
                    Value::Bool(true),
                ],
            ],
        );
        assert_eq!(
            text,
            "id       attempts  data\n\
             -------  --------  -------\n\
             evt_1    3         {\"a\":1}\n\
             evt_200            true\n"
        );
    }

    #[test]
    fn no_rows_is_the_header_and_dashes() {
        assert_eq!(encode(&["a", "bc"], &[]), "a  bc\n-  --\n");
    }

    #[test]
    fn each_row_is_one_line_with_its_breaks_escaped() {
        let cell = "a\nb\r\tc\u{1b}[31m\u{2028}\u{202e}d \\ é";
        let text = encode(
            &["x", "y"],
            &[vec![Value::Text(cell.into()), Value::Int(1)]],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[2],
            "a\\nb\\r\\tc\\u{1b}[31m\\u{2028}\\u{202e}d \\ é  1"
        );
    }

    #[test]
    fn widths_come_from_the_first_rows_and_later_rows_overflow() {
        let mut rows: Vec<Vec<Value>> = (0..WIDTH_ROWS)
            .map(|_| vec![Value::Text("ab".into()), Value::Int(1)])
            .collect();
        let long = "x".repeat(10);
        rows.push(vec![Value::Text(long.clone()), Value::Int(2)]);
        rows.push(vec![Value::Text("c".into()), Value::Int(3)]);
        let text = encode(&["k", "v"], &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), WIDTH_ROWS + 4);
        assert_eq!(lines[0], "k   v");
        assert_eq!(lines[2], "ab  1");
        assert_eq!(lines[WIDTH_ROWS + 2], format!("{long}  2"));
        assert_eq!(lines[WIDTH_ROWS + 3], "c   3");
    }

    #[test]
    fn the_first_rows_are_held_then_written_at_once() {
        let mut encoder = encoder(Format::Text, vec!["a".into()]);
        let mut out = Vec::new();
        encoder.begin(&mut out);
        for _ in 0..WIDTH_ROWS - 1 {
            encoder.row(&[Value::Int(1)], &mut out);
        }
        assert!(out.is_empty());
        encoder.row(&[Value::Int(1)], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap().lines().count(),
            WIDTH_ROWS + 2
        );
    }
}
