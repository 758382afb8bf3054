//! CSV rows to JSON records. A CSV cell is text; the event model says what each known field
//! should be, so `amount` becomes a number, `fraud_detected` a boolean, `indicators` an array.
//! Unknown columns stay text (guessing would turn a zip code like `01234` into a number).
//! Empty cells are absent fields.

use serde_json::{Map, Number, Value};
use sluice_event::schema::{self, FieldKind};
use sluice_event::validate::{FieldIssue, RecordError, RejectCode};
use tokio::io::AsyncRead;

use crate::accept::RawRecord;

/// The records of a CSV file with a header row, read as it streams in.
pub struct CsvRecords<R> {
    reader: csv_async::AsyncReader<R>,
    columns: Columns,
    row: csv_async::ByteRecord,
    number: usize,
}

/// Why reading a CSV file stopped: its bytes could not be read, or it is not CSV.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("reading the file: {0}")]
    Io(std::io::Error),
    #[error("not CSV: {0}")]
    Format(String),
}

impl From<csv_async::Error> for CsvError {
    fn from(e: csv_async::Error) -> CsvError {
        match e.into_kind() {
            csv_async::ErrorKind::Io(io) => CsvError::Io(io),
            other => CsvError::Format(format!("{other:?}")),
        }
    }
}

impl<R: AsyncRead + Unpin + Send> CsvRecords<R> {
    /// Reads the header row; `None` for a file with no rows at all.
    pub async fn open(input: R) -> Result<Option<CsvRecords<R>>, CsvError> {
        let mut reader = csv_async::AsyncReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .create_reader(input);
        let mut row = csv_async::ByteRecord::new();
        if !reader.read_byte_record(&mut row).await? {
            return Ok(None);
        }
        let columns = Columns::from_header(row.iter()).map_err(CsvError::Format)?;
        Ok(Some(CsvRecords {
            reader,
            columns,
            row,
            number: 0,
        }))
    }

    /// The next data row, as a record or as what is wrong with it (numbered as data rows);
    /// `None` at the end. Blank lines are not rows.
    pub async fn next(&mut self) -> Result<Option<Result<RawRecord, RecordError>>, CsvError> {
        loop {
            if !self.reader.read_byte_record(&mut self.row).await? {
                return Ok(None);
            }
            if self.row.len() == 1 && self.row.get(0).is_some_and(|c| c.is_empty()) {
                continue;
            }
            self.number += 1;
            let number = self.number;
            if self.row.len() != self.columns.len() {
                let line = self.row.position().map_or(0, |p| p.line());
                return Ok(Some(Err(FieldIssue::whole_record(
                    RejectCode::MalformedCsv,
                    format!(
                        "row has {} cells but the header has {} columns (line {line})",
                        self.row.len(),
                        self.columns.len()
                    ),
                )
                .at(number))));
            }
            return Ok(Some(self.columns.row_to_json(number, self.row.iter()).map(
                |bytes| RawRecord {
                    number,
                    bytes,
                    id: None,
                },
            )));
        }
    }
}

/// The columns of a file, from its header row.
#[derive(Debug, Clone)]
pub struct Columns {
    columns: Vec<(String, Option<FieldKind>)>,
}

impl Columns {
    /// From the header cells; a UTF-8 byte-order mark before the first one is dropped.
    pub fn from_header<'a>(cells: impl IntoIterator<Item = &'a [u8]>) -> Result<Columns, String> {
        let mut columns = Vec::new();
        for (i, cell) in cells.into_iter().enumerate() {
            let cell = if i == 0 {
                cell.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(cell)
            } else {
                cell
            };
            let name = std::str::from_utf8(cell)
                .map_err(|_| format!("header column {} is not valid UTF-8", i + 1))?
                .trim()
                .to_owned();
            if name.is_empty() {
                return Err(format!("header column {} has no name", i + 1));
            }
            let kind = schema::field(&name).map(|spec| spec.kind);
            columns.push((name, kind));
        }
        if columns.is_empty() {
            return Err("the CSV file has no header row".into());
        }
        columns_checked(columns)
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// One data row as a JSON object (serialised), typed per column.
    pub fn row_to_json<'a>(
        &self,
        record_number: usize,
        cells: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<u8>, RecordError> {
        let mut object = Map::new();
        for ((name, kind), cell) in self.columns.iter().zip(cells) {
            let text = std::str::from_utf8(cell).map_err(|_| {
                FieldIssue::new(name, RejectCode::InvalidEncoding, "cell is not valid UTF-8")
                    .at(record_number)
            })?;
            if text.is_empty() {
                continue;
            }
            object.insert(name.clone(), typed(text, *kind));
        }
        serde_json::to_vec(&Value::Object(object)).map_err(|e| {
            FieldIssue::whole_record(RejectCode::InvalidValue, e.to_string()).at(record_number)
        })
    }
}

fn columns_checked(columns: Vec<(String, Option<FieldKind>)>) -> Result<Columns, String> {
    for (i, (name, _)) in columns.iter().enumerate() {
        if columns[..i].iter().any(|(other, _)| other == name) {
            return Err(format!("header names column {name:?} twice"));
        }
    }
    Ok(Columns { columns })
}

/// The JSON value of a cell. A cell that does not convert stays text, so validation reports it
/// with the usual "expected a number, got text".
fn typed(text: &str, kind: Option<FieldKind>) -> Value {
    let trimmed = text.trim();
    let as_text = || Value::String(text.to_owned());
    match kind {
        Some(FieldKind::Number { .. }) => trimmed
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(as_text, Value::Number),
        Some(FieldKind::Integer { .. }) => trimmed
            .parse::<i64>()
            .map_or_else(|_| as_text(), Value::from),
        Some(FieldKind::Bool) => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Value::Bool(true),
            "false" | "0" | "no" => Value::Bool(false),
            _ => as_text(),
        },
        Some(FieldKind::Timestamp) if trimmed.bytes().all(|b| b.is_ascii_digit()) => trimmed
            .parse::<i64>()
            .map_or_else(|_| as_text(), Value::from),
        Some(FieldKind::TextList) if trimmed.starts_with('[') => {
            serde_json::from_str(trimmed).unwrap_or_else(|_| as_text())
        }
        Some(FieldKind::TextList) => Value::Array(
            trimmed
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => as_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(header: &[&str]) -> Columns {
        Columns::from_header(header.iter().map(|h| h.as_bytes())).expect("header")
    }

    fn row(columns: &Columns, cells: &[&str]) -> Value {
        let bytes = columns
            .row_to_json(1, cells.iter().map(|c| c.as_bytes()))
            .expect("row");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn known_fields_are_typed_and_unknown_stay_text() {
        let c = columns(&[
            "log_type",
            "amount",
            "quantity",
            "fraud_detected",
            "indicators",
            "zip",
            "timestamp",
        ]);
        let v = row(
            &c,
            &[
                "transaction",
                "12.50",
                "3",
                "yes",
                "a; b",
                "01234",
                "1714564800000",
            ],
        );
        assert_eq!(
            v,
            serde_json::json!({
                "log_type": "transaction", "amount": 12.5, "quantity": 3,
                "fraud_detected": true, "indicators": ["a", "b"], "zip": "01234",
                "timestamp": 1714564800000i64
            })
        );
    }

    #[test]
    fn unconvertible_cells_stay_text_for_validation_to_report() {
        let c = columns(&["amount", "quantity"]);
        assert_eq!(
            row(&c, &["twelve", "1.5"]),
            serde_json::json!({"amount": "twelve", "quantity": "1.5"})
        );
    }

    #[test]
    fn empty_cells_are_absent() {
        let c = columns(&["log_type", "amount"]);
        assert_eq!(
            row(&c, &["error", ""]),
            serde_json::json!({"log_type": "error"})
        );
    }

    #[test]
    fn bom_is_stripped_from_the_first_header() {
        let c = Columns::from_header([&b"\xEF\xBB\xBFlog_type"[..], b"amount"]).expect("header");
        assert_eq!(row(&c, &["error", "1"])["log_type"], "error");
    }

    #[test]
    fn duplicate_or_blank_headers_are_refused() {
        assert!(Columns::from_header([&b"a"[..], b"a"]).is_err());
        assert!(Columns::from_header([&b"a"[..], b" "]).is_err());
    }

    #[test]
    fn invalid_utf8_cell_names_its_column() {
        let c = columns(&["message"]);
        let err = c.row_to_json(7, [&b"\xff\xfe"[..]]).expect_err("not utf-8");
        assert_eq!((err.record, err.field.as_str()), (7, "message"));
    }
}
