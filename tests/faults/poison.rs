//! Hostile records of every kind found, through every door: ingest (NDJSON), the `_bulk` API,
//! and straight into the queue as another producer would write them (the processor validates
//! them again). Whatever the door, a record gets the same verdict — indexed, or refused with
//! the same code — and the valid records beside it are indexed: one record never stops others.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Server, append_to_queue};

/// A hostile record, named by its `poison` field (kept first so even a broken record shows it).
struct Poison {
    name: &'static str,
    bytes: Vec<u8>,
    /// `None`: indexed; `Some(code)`: refused with that code.
    refused: Option<&'static str>,
}

fn poison(name: &'static str, rest: &str, refused: Option<&'static str>) -> Poison {
    let bytes = format!(r#"{{"poison":"{name}","log_type":"error","error_message":"x"{rest}"#);
    Poison {
        name,
        bytes: bytes.into_bytes(),
        refused,
    }
}

fn raw(name: &'static str, bytes: Vec<u8>, refused: Option<&'static str>) -> Poison {
    Poison {
        name,
        bytes,
        refused,
    }
}

fn poisons() -> Vec<Poison> {
    let nested = |depth: usize| format!("{}1{}", "{\"o\":".repeat(depth), "}".repeat(depth));
    let fields: String = (0..1_001).map(|i| format!(",\"f{i}\":{i}")).collect();
    let mut invalid_utf8 =
        br#"{"poison":"invalid_utf8","log_type":"error","error_message":"x"#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\"}");
    let mut nul = br#"{"poison":"raw_nul","log_type":"error","error_message":"x","n":[1"#.to_vec();
    nul.extend_from_slice(b"\x002]}");
    let mut control =
        br#"{"poison":"raw_control_character","log_type":"error","error_message":"a"#.to_vec();
    control.extend_from_slice(b"\x01b\"}");
    vec![
        // Valid JSON that one parser or store would choke on: indexed.
        poison("lone_high_surrogate", r#","n":"\ud800"}"#, None),
        poison("lone_low_surrogate", r#","n":"\udc00x"}"#, None),
        poison("high_surrogate_then_other", r#","n":"\ud800\u0041"}"#, None),
        poison(
            "integer_beyond_64_bits",
            r#","n":123456789012345678901234567890}"#,
            None,
        ),
        poison(
            "negative_beyond_64_bits",
            r#","n":-9223372036854775809}"#,
            None,
        ),
        poison("float_underflow", r#","n":1e-400}"#, None),
        poison("nul_escape", r#","n":"a\u0000b"}"#, None),
        poison("emoji_and_rtl", r#","n":"💳 שלום 🇬🇧"}"#, None),
        poison("nested_arrays", r#","n":[[[[[[[[[[1]]]]]]]]]]}"#, None),
        poison("empty_containers", r#","n":{},"m":[],"k":[{}]}"#, None),
        poison("unicode_keys", r#","ключ":"значение"}"#, None),
        poison(
            "deep_but_allowed",
            &format!(",\"n\":{}}}", nested(18)),
            None,
        ),
        // Refused, with a code that says why.
        poison(
            "float_overflow",
            r#","n":1e400}"#,
            Some("number_out_of_range"),
        ),
        // Found by fuzzing: valid JSON (0, as a double) that simd-json does not read.
        poison(
            "exponent_beyond_ten_digits",
            r#","n":[4E-88666886666]}"#,
            Some("number_out_of_range"),
        ),
        // Found by the agreement property test: simd-json read this long number, serde_json
        // (behind it, in the tantivy adapter) refused it.
        poison(
            "long_number_with_a_trailing_sign",
            r#","n":1000000000000000000+}"#,
            Some("malformed_json"),
        ),
        // Found by fuzzing: serde_json reads this object as the number 5.
        poison(
            "serde_json_raw_value_token",
            r#","n":{"$serde_json::private::RawValue":"5"}}"#,
            Some("invalid_field_name"),
        ),
        poison("duplicate_key", r#","n":1,"n":2}"#, Some("duplicate_field")),
        poison(
            "nested_duplicate_key",
            r#","n":{"a":1,"a":2}}"#,
            Some("duplicate_field"),
        ),
        poison("empty_key", r#","":1}"#, Some("invalid_field_name")),
        poison("dotted_key", r#","a..b":1}"#, Some("invalid_field_name")),
        poison(
            "metadata_key",
            r#","_source":1}"#,
            Some("invalid_field_name"),
        ),
        poison("reserved_object", r#","geo":{}}"#, Some("reserved_field")),
        poison(
            "reserved_path",
            r#","geo.city_name":"x"}"#,
            Some("reserved_field"),
        ),
        poison(
            "deep_objects",
            &format!(",\"n\":{}}}", nested(25)),
            Some("too_deep"),
        ),
        poison(
            "deep_brackets",
            &format!(",\"n\":{}1{}}}", "[".repeat(5_000), "]".repeat(5_000)),
            Some("too_deep"),
        ),
        poison("many_fields", &format!("{fields}}}"), Some("oversized")),
        poison(
            "huge_field",
            &format!(",\"n\":\"{}\"}}", "y".repeat(40_000)),
            Some("oversized"),
        ),
        poison(
            "huge_record",
            &format!(",\"n\":[{}]}}", vec!["\"zzzzzzzz\""; 110_000].join(",")),
            Some("oversized"),
        ),
        poison("truncated", r#","n":"#, Some("malformed_json")),
        poison("trailing_garbage", r#"} x"#, Some("malformed_json")),
        poison("nan_literal", r#","n":NaN}"#, Some("malformed_json")),
        raw("invalid_utf8", invalid_utf8, Some("invalid_encoding")),
        raw("raw_control_character", control, Some("malformed_json")),
        raw(
            "not_an_object",
            br#"["poison","not_an_object"]"#.to_vec(),
            Some("not_an_object"),
        ),
        poison("wrong_type", r#","status_code":"abc"}"#, Some("wrong_type")),
        poison(
            "object_and_value",
            r#","a":1,"a.b":2}"#,
            Some("conflicting_types"),
        ),
        poison(
            "path_into_a_field",
            r#","user_id.first":"a"}"#,
            Some("conflicting_types"),
        ),
        poison(
            "long_number_runs_on",
            r#","n":[1234567890123456789;5]}"#,
            Some("malformed_json"),
        ),
        raw("raw_nul", nul, Some("malformed_json")),
        raw(
            "unknown_log_type",
            br#"{"poison":"unknown_log_type","log_type":"spaceship"}"#.to_vec(),
            Some("unknown_log_type"),
        ),
        poison(
            "future_timestamp",
            r#","timestamp":"2999-01-01T00:00:00Z"}"#,
            Some("future_timestamp"),
        ),
        poison("invalid_ip", r#","ip":"999.1.2.3"}"#, Some("invalid_ip")),
    ]
}

fn sentinel(n: usize) -> Vec<u8> {
    json!({"log_type": "error", "error_message": "sentinel", "event_id": format!("sentinel-{n}")})
        .to_string()
        .into_bytes()
}

/// Indexed documents by their `poison` name, and the number of sentinels indexed.
async fn indexed(server: &Server) -> (HashMap<String, Value>, usize) {
    let response = server
        .http
        .post(server.url("/api/logs/search/export?format=ndjson"))
        .json(&json!({}))
        .send()
        .await
        .expect("export");
    let body = response.text().await.expect("export body");
    let mut poisons = HashMap::new();
    let mut sentinels = 0;
    for line in body.lines() {
        let document: Value = serde_json::from_str(line).expect("document");
        match document["poison"].as_str() {
            Some(name) => {
                poisons.insert(name.to_owned(), document);
            }
            None => sentinels += 1,
        }
    }
    (poisons, sentinels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_get_one_verdict_through_every_door_and_stop_nothing() {
    let poisons = poisons();
    let dir = tempfile::tempdir().expect("tempdir");

    // Ingest: each poison between two valid records, one request each.
    let ingest_data = dir.path().join("ingest");
    let server = Server::start(&ingest_data, None, &[]);
    let mut sentinels = 0;
    for poison in &poisons {
        let mut body = sentinel(sentinels);
        body.push(b'\n');
        body.extend_from_slice(&poison.bytes);
        body.push(b'\n');
        body.extend_from_slice(&sentinel(sentinels + 1));
        sentinels += 2;
        let (status, answer) = server
            .post("/api/logs/ingest", "application/x-ndjson", body)
            .await;
        assert_eq!(status, 202, "{}: {answer}", poison.name);
        let expected_accepted = if poison.refused.is_some() { 2 } else { 3 };
        assert_eq!(
            answer["accepted"], expected_accepted,
            "{}: {answer}",
            poison.name
        );
        if let Some(code) = poison.refused {
            assert_eq!(
                answer["errors"][0]["record"], 2,
                "{}: {answer}",
                poison.name
            );
            assert_eq!(
                answer["errors"][0]["code"], code,
                "{}: {answer}",
                poison.name
            );
        }
    }

    // _bulk: all at once, each item answered on its own.
    let mut bulk = Vec::new();
    for poison in &poisons {
        bulk.extend_from_slice(b"{\"index\":{}}\n");
        bulk.extend_from_slice(&poison.bytes);
        bulk.push(b'\n');
    }
    let (status, answer) = server.post("/_bulk", "application/x-ndjson", bulk).await;
    assert_eq!(status, 200, "{answer}");
    for (item, poison) in answer["items"]
        .as_array()
        .expect("items")
        .iter()
        .zip(&poisons)
    {
        let expected = if poison.refused.is_some() { 400 } else { 201 };
        assert_eq!(item["index"]["status"], expected, "{}: {item}", poison.name);
    }

    let indexed_count = poisons.iter().filter(|p| p.refused.is_none()).count();
    server
        .wait_for_total(
            json!({"size": 0}),
            (sentinels + 2 * indexed_count) as u64,
            Duration::from_secs(60),
        )
        .await;
    let (documents, _) = indexed(&server).await;
    assert_eq!(documents["lone_high_surrogate"]["n"], "\u{fffd}");
    assert_eq!(documents["high_surrogate_then_other"]["n"], "\u{fffd}A");
    assert_eq!(documents["nul_escape"]["n"], "a\u{0}b");
    drop(server);

    // Straight into the queue: the processor's verdicts must be ingest's.
    let queue_data = dir.path().join("queue");
    let server = Server::start(&queue_data, None, &[]);
    let mut server = server;
    server.stop();
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    for (n, poison) in poisons.iter().enumerate() {
        payloads.push(poison.bytes.clone());
        payloads.push(sentinel(n));
    }
    let borrowed: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    append_to_queue(&queue_data, &borrowed).await;
    let server = Server::start(&queue_data, None, &[]);
    server
        .wait_for_total(
            json!({"size": 0}),
            (poisons.len() + indexed_count) as u64,
            Duration::from_secs(60),
        )
        .await;
    let (documents, sentinels) = indexed(&server).await;
    assert_eq!(
        sentinels,
        poisons.len(),
        "every valid record after a poison is indexed"
    );
    let letters = server.get_json("/api/dead-letters?limit=1000").await;
    let letters = letters["dead_letters"].as_array().expect("letters").clone();
    for poison in &poisons {
        let letter = letters.iter().find(|l| {
            l["record"]
                .as_str()
                .is_some_and(|r| r.contains(&format!("\"{}\"", poison.name)))
        });
        match poison.refused {
            None => {
                assert!(
                    documents.contains_key(poison.name),
                    "{} indexed",
                    poison.name
                );
                assert!(
                    letter.is_none(),
                    "{} not dead-lettered: {letter:?}",
                    poison.name
                );
            }
            Some(code) => {
                let letter = letter.unwrap_or_else(|| panic!("{} dead-lettered", poison.name));
                assert_eq!(letter["code"], code, "{}: {letter}", poison.name);
                assert_eq!(letter["stage"], "validate", "{}: {letter}", poison.name);
                assert!(
                    !documents.contains_key(poison.name),
                    "{} not indexed",
                    poison.name
                );
            }
        }
    }
    let ready: Value = server.get_json("/ready").await;
    assert_eq!(ready["status"], "ready", "{ready}");
}
