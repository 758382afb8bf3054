//! Splitting a body into records without parsing them twice: NDJSON by lines, JSON arrays by a
//! byte-level scanner that finds where each element starts and ends. Both work on a stream too,
//! with memory bounded by the largest record, not the body.

use sluice_common::validate::{FieldIssue, RecordError, RejectCode};

use crate::accept::{RawRecord, RecordBatch};

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
                Some(end) => {
                    self.push_bytes(&chunk[..end]);
                    self.end_line(out);
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
            self.end_line(out);
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

    fn end_line(&mut self, out: &mut RecordBatch) {
        self.line_number += 1;
        if std::mem::take(&mut self.oversized) {
            out.issues.push(
                FieldIssue::whole_record(
                    RejectCode::Oversized,
                    format!("line is longer than {} bytes", self.max_record_bytes),
                )
                .at(self.line_number),
            );
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        out.records.push(RawRecord {
            number: self.line_number,
            bytes: line,
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
            out.records.push(RawRecord {
                number: self.count,
                bytes: std::mem::take(&mut self.element),
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
}
