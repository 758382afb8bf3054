//! Splitting a body into records without parsing them twice: NDJSON by lines, JSON arrays by a
//! byte-level scanner that finds where each element starts and ends. Both work on a stream too,
//! with memory bounded by the largest record, not the body.

use sluice_event::validate::{FieldIssue, RecordError, RejectCode};

use crate::accept::{RawRecord, RecordBatch};
use crate::body::BodyFormat;

/// Feeds NDJSON bytes, chunk by chunk; complete lines come out as records.
#[derive(Debug)]
pub struct NdjsonSplitter {
    line: Vec<u8>,
    line_number: usize,
    max_record_bytes: usize,
    oversized: bool,
}

impl NdjsonSplitter {
    pub fn new(max_record_bytes: usize) -> Self {
        NdjsonSplitter {
            line: Vec::new(),
            line_number: 0,
            max_record_bytes,
            oversized: false,
        }
    }

    pub fn feed(&mut self, mut chunk: &[u8], out: &mut RecordBatch) {
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                // A line wholly inside the chunk is copied once, straight into its record.
                Some(end) if self.line.is_empty() && !self.oversized => {
                    self.end_line(&chunk[..end], out);
                    chunk = &chunk[end + 1..];
                }
                Some(end) => {
                    self.push_bytes(&chunk[..end]);
                    self.end_partial_line(out);
                    chunk = &chunk[end + 1..];
                }
                None => {
                    self.push_bytes(chunk);
                    chunk = &[];
                }
            }
        }
    }

    /// Ends the input: a last line without a newline is a record too.
    pub fn finish(&mut self, out: &mut RecordBatch) {
        if !self.line.is_empty() || self.oversized {
            self.end_partial_line(out);
        }
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        if self.oversized {
            return;
        }
        if self.line.len() + bytes.len() > self.max_record_bytes {
            self.oversized = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// Ends a line gathered across chunks. The buffer, grown amortised, keeps its capacity for
    /// the next such line; the record gets a copy of exactly the line's size, so what a request
    /// holds in flight is its records, not twice them.
    fn end_partial_line(&mut self, out: &mut RecordBatch) {
        let line = std::mem::take(&mut self.line);
        self.end_line(&line, out);
        self.line = line;
        self.line.clear();
    }

    fn end_line(&mut self, line: &[u8], out: &mut RecordBatch) {
        self.line_number += 1;
        if std::mem::take(&mut self.oversized) || line.len() > self.max_record_bytes {
            out.issues.push(
                FieldIssue::whole_record(
                    RejectCode::Oversized,
                    format!("line is longer than {} bytes", self.max_record_bytes),
                )
                .at(self.line_number),
            );
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        out.records.push(RawRecord {
            number: self.line_number,
            bytes: line.to_vec(),
            id: None,
        });
    }
}

/// Feeds the bytes of one JSON array, chunk by chunk; complete elements come out as records.
/// Only structure is tracked (strings, escapes, nesting); each element is validated later.
#[derive(Debug)]
pub struct ArraySplitter {
    state: ArrayState,
    depth: usize,
    in_string: bool,
    escaped: bool,
    element: Vec<u8>,
    count: usize,
    max_record_bytes: usize,
    oversized: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    BeforeArray,
    BeforeElement,
    InElement,
    AfterElement,
    Done,
}

impl ArraySplitter {
    pub fn new(max_record_bytes: usize) -> Self {
        ArraySplitter {
            state: ArrayState::BeforeArray,
            depth: 0,
            in_string: false,
            escaped: false,
            element: Vec::new(),
            count: 0,
            max_record_bytes,
            oversized: false,
        }
    }

    /// Feeds bytes; `Err` means the body is not a JSON array and splitting cannot go on.
    pub fn feed(&mut self, chunk: &[u8], out: &mut RecordBatch) -> Result<(), String> {
        for &b in chunk {
            match self.state {
                ArrayState::BeforeArray => match b {
                    b'[' => self.state = ArrayState::BeforeElement,
                    b if b.is_ascii_whitespace() => {}
                    0xEF | 0xBB | 0xBF if self.count == 0 => {}
                    other => {
                        return Err(format!(
                            "expected `[` to open a JSON array, found `{}`",
                            other as char
                        ));
                    }
                },
                ArrayState::BeforeElement => match b {
                    b if b.is_ascii_whitespace() => {}
                    b']' if self.count == 0 => self.state = ArrayState::Done,
                    b',' | b']' => {
                        return Err(format!(
                            "unexpected `{}` after element {}",
                            b as char, self.count
                        ));
                    }
                    _ => {
                        self.state = ArrayState::InElement;
                        self.count += 1;
                        self.element_byte(b, out);
                    }
                },
                ArrayState::InElement => self.element_byte(b, out),
                ArrayState::AfterElement => match b {
                    b',' => self.state = ArrayState::BeforeElement,
                    b']' => self.state = ArrayState::Done,
                    b if b.is_ascii_whitespace() => {}
                    other => {
                        return Err(format!(
                            "expected `,` or `]` after element {}, found `{}`",
                            self.count, other as char
                        ));
                    }
                },
                ArrayState::Done => {
                    if !b.is_ascii_whitespace() {
                        return Err("data after the end of the JSON array".into());
                    }
                }
            }
        }
        Ok(())
    }

    pub fn finish(&mut self, out: &mut RecordBatch) -> Result<(), String> {
        match self.state {
            ArrayState::Done => Ok(()),
            ArrayState::BeforeArray => Err("empty body: expected a JSON array".into()),
            ArrayState::InElement if self.depth == 0 && !self.in_string => {
                // A scalar element running to the end: the array was never closed.
                self.emit(out);
                Err("the JSON array is not closed with `]`".into())
            }
            _ => Err(format!(
                "the JSON array ends in the middle (after element {}); records before it were read",
                self.count
            )),
        }
    }

    fn element_byte(&mut self, b: u8, out: &mut RecordBatch) {
        let mut element_done = false;
        let mut keep = true;
        if self.in_string {
            match (self.escaped, b) {
                (true, _) => self.escaped = false,
                (false, b'\\') => self.escaped = true,
                (false, b'"') => self.in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth > 0 => {
                    self.depth -= 1;
                    element_done = self.depth == 0;
                }
                // A scalar element (or garbage) ends at the separator.
                b',' | b']' if self.depth == 0 => {
                    keep = false;
                    element_done = true;
                }
                _ => {}
            }
        }
        if keep && !self.oversized {
            if self.element.len() >= self.max_record_bytes {
                self.oversized = true;
                self.element = Vec::new();
            } else {
                self.element.push(b);
            }
        }
        if element_done {
            self.emit(out);
            self.state = if keep {
                ArrayState::AfterElement
            } else if b == b']' {
                ArrayState::Done
            } else {
                ArrayState::BeforeElement
            };
        }
    }

    fn emit(&mut self, out: &mut RecordBatch) {
        if std::mem::take(&mut self.oversized) {
            out.issues
                .push(oversized(self.count, self.max_record_bytes));
        } else {
            // A copy of exactly the element's size: the buffer, grown byte by byte, keeps its
            // spare capacity for the next element instead of handing it to the queue.
            out.records.push(RawRecord {
                number: self.count,
                bytes: self.element.clone(),
                id: None,
            });
        }
        self.element.clear();
    }
}

/// What the streaming upload needs of a splitter: bytes in, records out, and an error when the
/// input cannot be split any further.
pub trait Splitter {
    fn feed_chunk(&mut self, chunk: &[u8], out: &mut RecordBatch) -> Result<(), String>;
    fn finish_input(&mut self, out: &mut RecordBatch) -> Result<(), String>;
}

impl Splitter for NdjsonSplitter {
    fn feed_chunk(&mut self, chunk: &[u8], out: &mut RecordBatch) -> Result<(), String> {
        self.feed(chunk, out);
        Ok(())
    }

    fn finish_input(&mut self, out: &mut RecordBatch) -> Result<(), String> {
        self.finish(out);
        Ok(())
    }
}

impl Splitter for ArraySplitter {
    fn feed_chunk(&mut self, chunk: &[u8], out: &mut RecordBatch) -> Result<(), String> {
        self.feed(chunk, out)
    }

    fn finish_input(&mut self, out: &mut RecordBatch) -> Result<(), String> {
        self.finish(out)
    }
}

/// Splits a `POST /api/logs/ingest` body as it arrives. For JSON the first byte that is not
/// whitespace or part of a byte-order mark tells an array (split element by element) from a
/// single record (kept whole); NDJSON is split by lines. A body of nothing but whitespace
/// holds no records, whatever its format.
#[derive(Debug)]
pub enum BodySplitter {
    /// Nothing significant seen yet: the bytes so far, handed on once the shape is known.
    Undecided {
        format: BodyFormat,
        seen: Vec<u8>,
        max_record_bytes: usize,
    },
    Array(ArraySplitter),
    Single(Vec<u8>),
    Ndjson(NdjsonSplitter),
}

const BYTE_ORDER_MARK: [u8; 3] = [0xEF, 0xBB, 0xBF];

impl BodySplitter {
    pub fn new(format: BodyFormat, max_record_bytes: usize) -> BodySplitter {
        BodySplitter::Undecided {
            format,
            seen: Vec::new(),
            max_record_bytes,
        }
    }

    /// Leaves `Undecided` when `chunk` holds a significant byte; the bytes seen so far then
    /// go first, as if the body had come in one piece.
    fn decide(&mut self, chunk: &[u8], out: &mut RecordBatch) -> Result<(), String> {
        let BodySplitter::Undecided {
            format,
            seen,
            max_record_bytes,
        } = self
        else {
            return Ok(());
        };
        let Some(first) = chunk
            .iter()
            .copied()
            .find(|b| !b.is_ascii_whitespace() && !BYTE_ORDER_MARK.contains(b))
        else {
            return Ok(());
        };
        let seen = std::mem::take(seen);
        *self = match (*format, first) {
            (BodyFormat::Json, b'[') => BodySplitter::Array(ArraySplitter::new(*max_record_bytes)),
            (BodyFormat::Json, _) => BodySplitter::Single(Vec::new()),
            (BodyFormat::Ndjson, _) => BodySplitter::Ndjson(NdjsonSplitter::new(*max_record_bytes)),
        };
        self.feed_chunk(&seen, out)
    }
}

impl Splitter for BodySplitter {
    fn feed_chunk(&mut self, chunk: &[u8], out: &mut RecordBatch) -> Result<(), String> {
        self.decide(chunk, out)?;
        match self {
            BodySplitter::Undecided { seen, .. } => {
                seen.extend_from_slice(chunk);
                Ok(())
            }
            BodySplitter::Array(splitter) => splitter.feed_chunk(chunk, out),
            BodySplitter::Single(bytes) => {
                bytes.extend_from_slice(chunk);
                Ok(())
            }
            BodySplitter::Ndjson(splitter) => splitter.feed_chunk(chunk, out),
        }
    }

    fn finish_input(&mut self, out: &mut RecordBatch) -> Result<(), String> {
        match self {
            BodySplitter::Undecided { .. } => Ok(()),
            BodySplitter::Array(splitter) => splitter.finish_input(out),
            BodySplitter::Single(bytes) => {
                let mut bytes = std::mem::take(bytes);
                if bytes.starts_with(&BYTE_ORDER_MARK) {
                    bytes.drain(..BYTE_ORDER_MARK.len());
                }
                out.records.push(RawRecord {
                    number: 1,
                    bytes,
                    id: None,
                });
                Ok(())
            }
            BodySplitter::Ndjson(splitter) => splitter.finish_input(out),
        }
    }
}

fn oversized(number: usize, limit: usize) -> RecordError {
    FieldIssue::whole_record(
        RejectCode::Oversized,
        format!("record is larger than {limit} bytes"),
    )
    .at(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(batch: &RecordBatch) -> Vec<(usize, String)> {
        batch
            .records
            .iter()
            .map(|r| (r.number, String::from_utf8_lossy(&r.bytes).into_owned()))
            .collect()
    }

    #[test]
    fn ndjson_lines_in_any_chunking_with_crlf_and_blank_lines() {
        let body = b"{\"a\":1}\r\n\n{\"b\":\"x\\ny\"}\n{\"c\":3}";
        for chunk_size in [1, 3, body.len()] {
            let mut splitter = NdjsonSplitter::new(100);
            let mut out = RecordBatch::default();
            for chunk in body.chunks(chunk_size) {
                splitter.feed(chunk, &mut out);
            }
            splitter.finish(&mut out);
            assert_eq!(
                texts(&out),
                [
                    (1, "{\"a\":1}".into()),
                    (3, "{\"b\":\"x\\ny\"}".into()),
                    (4, "{\"c\":3}".into())
                ]
            );
        }
    }

    #[test]
    fn ndjson_overlong_line_is_reported_and_skipped() {
        let mut splitter = NdjsonSplitter::new(10);
        let mut out = RecordBatch::default();
        splitter.feed(b"{\"a\":\"0123456789\"}\n{\"b\":2}\n", &mut out);
        splitter.finish(&mut out);
        assert_eq!(texts(&out), [(2, "{\"b\":2}".into())]);
        assert_eq!(out.issues[0].record, 1);
        assert_eq!(out.issues[0].code, RejectCode::Oversized);
    }

    /// Records go to the queue as they are: spare capacity would be held by every request in
    /// flight, near twice its body at worst.
    #[test]
    fn ndjson_records_hold_exactly_their_bytes_however_the_body_is_chunked() {
        let line = format!("{{\"m\":\"{}\"}}", "x".repeat(300));
        let body = format!("{line}\n{line}\r\n{line}");
        for chunk_size in [1, 7, 64, body.len()] {
            let mut splitter = NdjsonSplitter::new(1000);
            let mut out = RecordBatch::default();
            for chunk in body.as_bytes().chunks(chunk_size) {
                splitter.feed(chunk, &mut out);
            }
            splitter.finish(&mut out);
            assert_eq!(out.records.len(), 3);
            for record in &out.records {
                assert_eq!(record.bytes, line.as_bytes());
                assert_eq!(
                    record.bytes.capacity(),
                    line.len(),
                    "chunks of {chunk_size}"
                );
            }
        }
    }

    fn split_array(body: &[u8], chunk_size: usize) -> (RecordBatch, Result<(), String>) {
        let mut splitter = ArraySplitter::new(1000);
        let mut out = RecordBatch::default();
        for chunk in body.chunks(chunk_size) {
            if let Err(e) = splitter.feed(chunk, &mut out) {
                return (out, Err(e));
            }
        }
        let end = splitter.finish(&mut out);
        (out, end)
    }

    #[test]
    fn array_elements_with_nested_brackets_in_strings() {
        let body = br#" [ {"a":"]},[{"}, {"b":[1,{"c":2}]} ,3 ,"x"] "#;
        for chunk_size in [1, 2, 7, body.len()] {
            let (out, end) = split_array(body, chunk_size);
            assert_eq!(end, Ok(()));
            assert_eq!(
                texts(&out),
                [
                    (1, r#"{"a":"]},[{"}"#.into()),
                    (2, r#"{"b":[1,{"c":2}]}"#.into()),
                    (3, "3 ".into()),
                    (4, "\"x\"".into()),
                ]
            );
        }
    }

    #[test]
    fn empty_array_has_no_records() {
        let (out, end) = split_array(b"[ ]", 1);
        assert_eq!(end, Ok(()));
        assert!(out.records.is_empty());
    }

    #[test]
    fn truncated_array_keeps_complete_elements_and_says_so() {
        let (out, end) = split_array(br#"[{"a":1},{"b":"#, 4);
        assert_eq!(texts(&out), [(1, r#"{"a":1}"#.into())]);
        assert!(end.expect_err("truncated").contains("after element 2"));
    }

    #[test]
    fn not_an_array_is_an_error() {
        let (_, end) = split_array(br#"{"a":1}"#, 4);
        assert!(end.is_err());
    }

    #[test]
    fn oversized_element_is_reported_and_skipped() {
        let big = format!(r#"[{{"a":"{}"}},{{"b":1}}]"#, "x".repeat(2000));
        let (out, end) = split_array(big.as_bytes(), 64);
        assert_eq!(end, Ok(()));
        assert_eq!(texts(&out), [(2, r#"{"b":1}"#.into())]);
        assert_eq!(out.issues[0].record, 1);
    }

    /// Records by number and text.
    type Texts = Vec<(usize, String)>;

    fn split_body(format: BodyFormat, body: &[u8], chunk_size: usize) -> Texts {
        let mut splitter = BodySplitter::new(format, 1000);
        let mut out = RecordBatch::default();
        for chunk in body.chunks(chunk_size) {
            splitter.feed_chunk(chunk, &mut out).expect("splits");
        }
        splitter.finish_input(&mut out).expect("ends");
        texts(&out)
    }

    #[test]
    fn a_body_split_as_it_arrives_gives_the_records_of_the_whole_body() {
        let cases: [(BodyFormat, &[u8], Texts); 5] = [
            (
                BodyFormat::Json,
                b"\xEF\xBB\xBF {\"a\": [1, 2]}\n",
                vec![(1, " {\"a\": [1, 2]}\n".into())],
            ),
            (
                BodyFormat::Json,
                b" \n [{\"a\":1}, {\"b\":\"]\"}]",
                vec![(1, r#"{"a":1}"#.into()), (2, r#"{"b":"]"}"#.into())],
            ),
            (BodyFormat::Json, b" \r\n\t ", vec![]),
            (BodyFormat::Ndjson, b"\xEF\xBB\xBF\n\n", vec![]),
            (
                BodyFormat::Ndjson,
                b"\n{\"a\":1}\r\n{\"b\":2}",
                vec![(2, r#"{"a":1}"#.into()), (3, r#"{"b":2}"#.into())],
            ),
        ];
        for (format, body, expected) in cases {
            for chunk_size in [1, 2, 3, 5, body.len().max(1)] {
                assert_eq!(
                    split_body(format, body, chunk_size),
                    expected,
                    "{format:?} {:?} in chunks of {chunk_size}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }
}
