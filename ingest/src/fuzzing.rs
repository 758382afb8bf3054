//! What the fuzz targets (`fuzz/`, run by hand for hours) and the suite's property tests
//! (run briefly on every build) check of ingest's parsers, with any bytes as input. Each
//! function panics when an invariant breaks; nothing here may panic otherwise.

use serde_json::Value;

use crate::accept::RecordBatch;
use crate::bulk::{in_order, pair_actions};
use crate::csv::CsvRecords;
use crate::split::{ArraySplitter, NdjsonSplitter};

const MAX_RECORD: usize = 4096;

/// Lines of `data` split whole and in chunks of `chunk` bytes come out the same, in order, each
/// without a line break, within the record limit or reported.
pub fn ndjson(data: &[u8], chunk: usize) {
    let split = |size: usize| {
        let mut splitter = NdjsonSplitter::new(MAX_RECORD);
        let mut out = RecordBatch::default();
        for piece in data.chunks(size.max(1)) {
            splitter.feed(piece, &mut out);
        }
        splitter.finish(&mut out);
        out
    };
    let whole = split(data.len());
    let chunked = split(chunk);
    assert_eq!(
        summary(&whole),
        summary(&chunked),
        "chunking changed the records"
    );
    let mut last = 0;
    for record in &whole.records {
        assert!(
            !record.bytes.contains(&b'\n'),
            "a record holds a line break"
        );
        assert!(record.bytes.len() <= MAX_RECORD, "a record over the limit");
        assert!(record.number > last, "records out of order");
        last = record.number;
    }
}

/// Elements of a JSON array split whole and in chunks come out the same; every element of a
/// body serde_json reads as an array of objects is an element serde_json reads too.
pub fn array(data: &[u8], chunk: usize) {
    let split = |size: usize| {
        let mut splitter = ArraySplitter::new(MAX_RECORD);
        let mut out = RecordBatch::default();
        let fed = data
            .chunks(size.max(1))
            .try_for_each(|piece| splitter.feed(piece, &mut out))
            .and_then(|()| splitter.finish(&mut out));
        (out, fed.is_ok())
    };
    let (whole, whole_ok) = split(data.len());
    let (chunked, chunked_ok) = split(chunk);
    assert_eq!(
        whole_ok, chunked_ok,
        "chunking changed whether the body splits"
    );
    assert_eq!(
        summary(&whole),
        summary(&chunked),
        "chunking changed the records"
    );
    if let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(data)
        && data.len() <= MAX_RECORD
    {
        assert!(whole_ok, "serde_json reads an array the splitter refuses");
        assert_eq!(whole.records.len(), items.len(), "elements lost or made up");
        for (record, item) in whole.records.iter().zip(&items) {
            let element: Value =
                serde_json::from_slice(&record.bytes).expect("an element of a JSON array");
            assert_eq!(&element, item, "an element changed");
        }
    }
}

/// Every CSV row becomes JSON serde_json reads, or a numbered error.
pub fn csv(data: &[u8]) {
    futures::executor::block_on(async {
        let Ok(Some(mut rows)) = CsvRecords::open(data).await else {
            return;
        };
        let mut last = 0;
        while let Ok(Some(row)) = rows.next().await {
            let number = match row {
                Ok(record) => {
                    // As a map, not a `Value`: serde_json reads an object whose first name
                    // is its RawValue token as the token's value (see validate::keys), and
                    // such a header is validation's to refuse, not the reader's.
                    let parsed: Result<serde_json::Map<String, Value>, _> =
                        serde_json::from_slice(&record.bytes);
                    assert!(parsed.is_ok(), "a row that is not a JSON object");
                    record.number
                }
                Err(issue) => issue.record,
            };
            assert!(number > last, "rows out of order");
            last = number;
        }
    });
}

/// A `_bulk` body is answered item by item or refused whole, never half-read: every
/// index/create item has its source, in order.
pub fn bulk(data: &[u8]) {
    let mut lines = RecordBatch::default();
    let mut splitter = NdjsonSplitter::new(MAX_RECORD);
    splitter.feed(data, &mut lines);
    splitter.finish(&mut lines);
    if let Ok((items, batch)) = pair_actions(in_order(lines), None) {
        assert!(
            batch.records.len() <= items.len(),
            "more sources than items"
        );
        let mut last = 0;
        for record in &batch.records {
            assert!(
                record.number > last && record.number <= items.len(),
                "item numbers"
            );
            last = record.number;
        }
    }
}

/// What a split produced, comparable across chunkings: each record's number and bytes, each
/// refusal's record number and code.
#[derive(Debug, PartialEq)]
struct Summary {
    records: Vec<(usize, Vec<u8>)>,
    issues: Vec<(usize, String)>,
}

fn summary(batch: &RecordBatch) -> Summary {
    Summary {
        records: batch
            .records
            .iter()
            .map(|r| (r.number, r.bytes.clone()))
            .collect(),
        issues: batch
            .issues
            .iter()
            .map(|i| (i.record, i.code.as_str().to_owned()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Bytes that look like what each parser reads, so the properties reach past the first
    /// byte: JSON-ish and CSV-ish fragments, line breaks, quotes and escapes.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(&b"{\"a\":1}"[..]),
            Just(&b"{\"index\":{}}"[..]),
            Just(&b"{\"create\":{\"_id\":\"x\"}}"[..]),
            Just(&b"{\"delete\":{}}"[..]),
            Just(&b"\n"[..]),
            Just(&b"\r\n"[..]),
            Just(&b"["[..]),
            Just(&b"]"[..]),
            Just(&b","[..]),
            Just(&b"\""[..]),
            Just(&b"\\"[..]),
            Just(&b"\"a,b\""[..]),
            Just(&b"log_type,amount"[..]),
            Just(&b"error,12.5"[..]),
            Just(&b"{\"s\":\"]}\\\"[{\"}"[..]),
            Just(&b"\xef\xbb\xbf"[..]),
            Just(&b"\xff"[..]),
        ];
        prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn any_body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![body(), prop::collection::vec(any::<u8>(), 0..200)]
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(500),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn ndjson_splitting_holds(data in any_body(), chunk in 1usize..64) {
            super::ndjson(&data, chunk);
        }

        #[test]
        fn array_splitting_holds(data in any_body(), chunk in 1usize..64) {
            super::array(&data, chunk);
        }

        #[test]
        fn csv_reading_holds(data in any_body()) {
            super::csv(&data);
        }

        #[test]
        fn bulk_pairing_holds(data in any_body()) {
            super::bulk(&data);
        }
    }
}
