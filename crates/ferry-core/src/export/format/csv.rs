//! CSV (RFC 4180) through the `csv` crate's writer, so that quoting is the
//! one every standard reader expects: a field is quoted when it holds a
//! comma, a quote, or a line break, and its quotes are doubled. Lines end in
//! `\r\n`, as the RFC says and as spreadsheets expect.
//!
//! Spreadsheets run a cell that starts with `=`, `+`, `-` or `@` (and, in
//! some, tab or carriage return) as a formula, which an event's payload must
//! never get to do on an operator's machine: such text gets a leading `'`
//! (OWASP's CSV-injection advice). Numbers are written as they are, so that a
//! negative amount stays a number.
//!
//! The writer writes straight into the caller's buffer: it is moved into the
//! writer's sink for a row and back out, so a row costs one copy out of the
//! writer's own small buffer and no allocation.

use std::cell::Cell;
use std::io;
use std::mem;

use ::csv::{QuoteStyle, Terminator, Writer, WriterBuilder};

use super::cell::cell_text;
use super::{Encoder, cell};
use crate::export::value::Value;

/// The characters that make a spreadsheet read a cell as a formula.
const FORMULA_STARTS: [u8; 6] = [b'=', b'+', b'-', b'@', b'\t', b'\r'];

pub(super) struct CsvEncoder {
    columns: Vec<String>,
    writer: Writer<Sink>,
    /// A non-text cell's rendering.
    scratch: Vec<u8>,
    /// A guarded cell: `'` and its text.
    guarded: Vec<u8>,
}

impl CsvEncoder {
    pub(super) fn new(columns: Vec<String>) -> Self {
        let writer = WriterBuilder::new()
            .terminator(Terminator::CRLF)
            .quote_style(QuoteStyle::Necessary)
            .has_headers(false)
            .from_writer(Sink::default());
        Self {
            columns,
            writer,
            scratch: Vec::new(),
            guarded: Vec::new(),
        }
    }

    /// Writes one field, guarded when it is text that starts like a formula.
    fn field(writer: &mut Writer<Sink>, guarded: &mut Vec<u8>, text: &[u8], from_text: bool) {
        let bytes = if from_text && text.first().is_some_and(|b| FORMULA_STARTS.contains(b)) {
            guarded.clear();
            guarded.push(b'\'');
            guarded.extend_from_slice(text);
            guarded.as_slice()
        } else {
            text
        };
        written(writer.write_field(bytes));
    }

    /// Lends `out` to the writer's sink for a record.
    fn start_record(&mut self, out: &mut Vec<u8>) {
        self.writer.get_ref().0.set(mem::take(out));
    }

    /// Ends the record and takes `out` back, the record appended.
    fn end_record(&mut self, out: &mut Vec<u8>) {
        written(self.writer.write_record(None::<&[u8]>));
        written(self.writer.flush().map_err(::csv::Error::from));
        *out = self.writer.get_ref().0.take();
    }
}

/// Where the writer writes: the caller's buffer while a record is written.
/// The writer gives only a shared reference to its sink, hence the `Cell`.
#[derive(Default)]
struct Sink(Cell<Vec<u8>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Invariant: the writer writes into a `Vec`, which cannot fail, and every
/// record has the same number of fields (the columns'), so no write errs.
fn written(result: Result<(), ::csv::Error>) {
    result.expect("CSV written into memory, with a fixed number of fields");
}

impl Encoder for CsvEncoder {
    fn begin(&mut self, out: &mut Vec<u8>) {
        self.start_record(out);
        for column in &self.columns {
            Self::field(&mut self.writer, &mut self.guarded, column.as_bytes(), true);
        }
        self.end_record(out);
    }

    fn row(&mut self, row: &[Value], out: &mut Vec<u8>) {
        debug_assert!(
            row.len() <= self.columns.len(),
            "a row has more cells than columns"
        );
        self.start_record(out);
        for i in 0..self.columns.len() {
            let text = cell_text(cell(row, i), &mut self.scratch);
            Self::field(
                &mut self.writer,
                &mut self.guarded,
                text.bytes,
                text.from_text,
            );
        }
        self.end_record(out);
    }

    fn finish(&mut self, _out: &mut Vec<u8>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::format::{Format, encoder};
    use proptest::prelude::*;
    use serde_json::json;

    fn encode(columns: &[&str], rows: &[Vec<Value>]) -> Vec<u8> {
        let mut encoder = encoder(Format::Csv, columns.iter().map(|c| c.to_string()).collect());
        let mut out = Vec::new();
        encoder.begin(&mut out);
        for row in rows {
            encoder.row(row, &mut out);
        }
        encoder.finish(&mut out);
        out
    }

    fn parse(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        let headers = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| r.unwrap().iter().map(String::from).collect())
            .collect();
        (headers, rows)
    }

    #[test]
    fn a_header_then_one_crlf_line_per_row() {
        let out = encode(
            &["id", "n", "data"],
            &[
                vec![
                    Value::Text("evt_1".into()),
                    Value::Int(3),
                    Value::Json(json!({"a": [1, 2]})),
                ],
                vec![Value::Null, Value::Float(0.5), Value::Json(json!(null))],
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "id,n,data\r\nevt_1,3,\"{\"\"a\"\":[1,2]}\"\r\n,0.5,null\r\n"
        );
    }

    #[test]
    fn no_rows_is_the_header_alone() {
        assert_eq!(encode(&["a", "b"], &[]), b"a,b\r\n");
    }

    #[test]
    fn formulas_are_guarded_and_numbers_are_not() {
        let cells = [
            "=SUM(A1)", "+1", "-2+3", "@cmd", "\tx", "\rx", "a=b", " =x", "'q",
        ];
        let mut row: Vec<Value> = cells.iter().map(|c| Value::Text(c.to_string())).collect();
        row.extend([
            Value::Int(-5),
            Value::Float(-1.5),
            Value::Json(json!(-7)),
            Value::Json(json!("=x")),
        ]);
        let columns: Vec<String> = (0..row.len()).map(|i| format!("c{i}")).collect();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        let (_, rows) = parse(&encode(&columns, &[row]));
        assert_eq!(
            rows[0],
            [
                "'=SUM(A1)",
                "'+1",
                "'-2+3",
                "'@cmd",
                "'\tx",
                "'\rx",
                "a=b",
                " =x",
                "'q",
                "-5",
                "-1.5",
                "-7",
                "\"=x\""
            ]
        );
    }

    #[test]
    fn a_header_that_looks_like_a_formula_is_guarded_too() {
        let (headers, _) = parse(&encode(&["=x", "ok"], &[]));
        assert_eq!(headers, ["'=x", "ok"]);
    }

    #[test]
    fn a_short_row_is_padded_with_empty_cells() {
        let (_, rows) = parse(&encode(&["a", "b", "c"], &[vec![Value::Int(1)]]));
        assert_eq!(rows, [["1", "", ""]]);
    }

    #[test]
    fn a_lone_empty_cell_still_reads_as_a_row() {
        let (_, rows) = parse(&encode(
            &["a"],
            &[vec![Value::Null], vec![Value::Text(String::new())]],
        ));
        assert_eq!(rows, [[""], [""]]);
    }

    /// What a reader gets back for a text cell: the text, `'`-guarded when
    /// it starts like a formula.
    fn expected(text: &str) -> String {
        if text
            .bytes()
            .next()
            .is_some_and(|b| FORMULA_STARTS.contains(&b))
        {
            format!("'{text}")
        } else {
            text.to_owned()
        }
    }

    proptest! {
        #[test]
        fn any_text_reads_back_the_same(cells in proptest::collection::vec(any::<String>(), 1..6), rows in 0usize..4) {
            let columns: Vec<String> = (0..cells.len()).map(|i| format!("c{i}")).collect();
            let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
            let row: Vec<Value> = cells.iter().map(|c| Value::Text(c.clone())).collect();
            let (_, parsed) = parse(&encode(&columns, &vec![row; rows]));
            prop_assert_eq!(parsed.len(), rows);
            let want: Vec<String> = cells.iter().map(|c| expected(c)).collect();
            for got in parsed {
                prop_assert_eq!(&got, &want);
            }
        }

        #[test]
        fn tricky_text_reads_back_the_same(cell in "[\"',\r\n =+@a\t-]{0,12}") {
            let (_, parsed) = parse(&encode(&["a", "b"], &[vec![Value::Text(cell.clone()), Value::Int(1)]]));
            prop_assert_eq!(&parsed[0][0], &expected(&cell));
            prop_assert_eq!(&parsed[0][1], "1");
        }
    }
}
