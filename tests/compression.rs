//! Compressed request bodies (`Content-Encoding: gzip`, `deflate`, `zstd`) on ingest, upload
//! and `_bulk`, as shippers send them: taken whole, bounded by their decompressed size as they
//! stream (a bomb is refused with 413 and never held), refused with a reason when the encoding
//! is unknown or the bytes are not what it says. The official Elasticsearch client, with
//! `http_compress=True`, ships through `_bulk` as it would to a cluster.

use crate::support;

use std::io::Write;
use std::time::Duration;

use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};
use serde_json::{Value, json};
use support::{Server, memory, python_report};

const MIB: u64 = 1024 * 1024;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

/// HTTP's `deflate` is the zlib format (RFC 9110, 8.4.1.2).
fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("deflate");
    encoder.finish().expect("deflate")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

fn event(n: usize, via: &str) -> Value {
    json!({"log_type": "error", "error_message": format!("sent {via} #{n}"), "service": via})
}

fn ndjson(via: &str, count: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..count).map(|n| event(n, via)).collect();
    support::ndjson(&events).into_bytes()
}

/// POSTs `body` with `Content-Encoding: encoding`; the status, the JSON answer and its headers.
async fn send(
    server: &Server,
    path: &str,
    content_type: &str,
    encoding: &str,
    body: Vec<u8>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = server
        .http
        .post(server.url(path))
        .header("content-type", content_type)
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

/// POSTs NDJSON to `/api/logs/ingest` with `Content-Encoding: encoding`.
async fn ingest(
    server: &Server,
    encoding: &str,
    body: Vec<u8>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    send(
        server,
        "/api/logs/ingest",
        "application/x-ndjson",
        encoding,
        body,
    )
    .await
}

/// Sends one plain record and waits until it is searchable: whatever was refused before it
/// would have been indexed by then, had any of it been kept.
async fn index_a_plain_record(server: &Server) {
    let (status, _) = server
        .post_ndjson("/api/logs/ingest", &[event(0, "plain")])
        .await;
    assert_eq!(status, 202);
    server
        .wait_for_total(
            json!({"size": 0, "service": "plain"}),
            1,
            Duration::from_secs(30),
        )
        .await;
}

async fn count_from(server: &Server, via: &str) -> u64 {
    server.total(json!({"size": 0, "service": via})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_are_taken_on_every_ingest_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[]);
    let ndjson_type = "application/x-ndjson";
    for (encoding, body) in [
        ("gzip", gzip(&ndjson("gzip", 300))),
        // Codings are case-insensitive, and x-gzip is gzip.
        ("X-GZip", gzip(&ndjson("x-gzip", 300))),
        ("deflate", deflate(&ndjson("deflate", 300))),
        ("zstd", zstd(&ndjson("zstd", 300))),
    ] {
        let (status, answer, _) = ingest(&server, encoding, body).await;
        assert_eq!(status, 202, "{encoding}: {answer}");
        assert_eq!(answer["accepted"], 300, "{encoding}: {answer}");
    }
    let array: Vec<Value> = (0..300).map(|n| event(n, "gzip-array")).collect();
    let array = serde_json::to_vec(&array).expect("json");
    let (status, answer, _) = send(
        &server,
        "/api/logs/ingest",
        "application/json",
        "gzip",
        gzip(&array),
    )
    .await;
    assert_eq!(
        (status, &answer["accepted"]),
        (202, &json!(300)),
        "{answer}"
    );

    let mut bulk = Vec::new();
    for n in 0..300 {
        bulk.extend_from_slice(b"{\"index\":{\"_index\":\"logs\"}}\n");
        bulk.extend_from_slice(event(n, "gzip-bulk").to_string().as_bytes());
        bulk.push(b'\n');
    }
    let (status, answer, _) = send(&server, "/_bulk", ndjson_type, "gzip", gzip(&bulk)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["errors"], false, "{answer}");
    assert_eq!(answer["items"].as_array().map(Vec::len), Some(300));

    // A whole multipart request compressed, as a client that compresses every body sends it.
    let mut form = Vec::new();
    form.extend_from_slice(
        b"--sluice-boundary\r\nContent-Disposition: form-data; name=\"file\"; \
          filename=\"events.ndjson\"\r\nContent-Type: application/x-ndjson\r\n\r\n",
    );
    form.extend_from_slice(&ndjson("zstd-upload", 300));
    form.extend_from_slice(b"\r\n--sluice-boundary--\r\n");
    let (status, answer, _) = send(
        &server,
        "/api/logs/upload",
        "multipart/form-data; boundary=sluice-boundary",
        "zstd",
        zstd(&form),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 300, "{answer}");

    server
        .wait_for_total(json!({"size": 0}), 7 * 300, Duration::from_secs(60))
        .await;
    for via in [
        "gzip",
        "x-gzip",
        "deflate",
        "zstd",
        "gzip-array",
        "gzip-bulk",
        "zstd-upload",
    ] {
        assert_eq!(count_from(&server, via).await, 300, "{via}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compression_bomb_is_refused_at_the_decompressed_limit_and_never_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[]);
    let pid = server.pid().expect("pid");
    // 1 GiB of valid NDJSON in about 4 MB of gzip: fifty times `ingest.max_body_bytes` (20 MiB).
    let line = format!("{}\n", event(0, "bomb"));
    let lines = (1024 * MIB) as usize / line.len();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    for _ in 0..lines {
        encoder.write_all(line.as_bytes()).expect("gzip");
    }
    let bomb = encoder.finish().expect("gzip");
    assert!(bomb.len() < 8 * MIB as usize, "{} bytes", bomb.len());
    let before = memory(pid, "VmHWM");
    let (status, answer, _) = ingest(&server, "gzip", bomb).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large", "{answer}");
    let grown = memory(pid, "VmHWM").saturating_sub(before);
    assert!(
        grown < 160 * MIB,
        "the server grew {} MB for a 1 GiB bomb",
        grown / MIB
    );
    // Nothing of it was acknowledged, so nothing of it is indexed.
    index_a_plain_record(&server).await;
    assert_eq!(count_from(&server, "bomb").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_encodings_and_broken_bodies_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[]);
    let body = ndjson("br", 3);
    let (status, answer, headers) = ingest(&server, "br", body).await;
    assert_eq!(status, 415, "{answer}");
    assert_eq!(answer["error"]["code"], "unsupported_content_encoding");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"br\"") && m.contains("gzip")),
        "{answer}"
    );
    assert_eq!(headers["accept-encoding"], "gzip, deflate, zstd");

    // Plain bytes that say they are gzip: the decoder's reason, nothing kept.
    let plain = ndjson("not-gzip", 3);
    let (status, answer, _) = ingest(&server, "gzip", plain.clone()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "unreadable_body", "{answer}");
    // On `_bulk`, as Elasticsearch words its errors.
    let (status, answer, _) = send(&server, "/_bulk", "application/x-ndjson", "zstd", plain).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["error"]["type"], "illegal_argument_exception",
        "{answer}"
    );
    // A gzip stream cut short.
    let mut cut = gzip(&ndjson("cut", 1_000));
    cut.truncate(cut.len() / 2);
    let (status, answer, _) = ingest(&server, "gzip", cut).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "unreadable_body", "{answer}");
    index_a_plain_record(&server).await;
    assert_eq!(
        server.total(json!({"size": 0})).await,
        1,
        "only the plain one"
    );
}

/// The Python client Elasticsearch publishes, as a shipper runs it: `http_compress=True`
/// gzips every request body, and its bulk helper checks each item's answer.
const ELASTICSEARCH_CLIENT: &str = r#"
import json, sys
from elasticsearch import Elasticsearch, helpers
client = Elasticsearch(sys.argv[1], api_key=sys.argv[2], http_compress=True)
assert client.transport.node_pool.get().config.http_compress
info = client.info()
actions = ({"_index": "shop", "_id": f"py-{n}", "_source": {"log_type": "error",
            "error_message": f"from the python client #{n}", "service": "python-client"}}
           for n in range(500))
ok, errors = helpers.bulk(client, actions, chunk_size=100)
print(json.dumps({"version": info["version"]["number"], "ok": ok, "errors": errors}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_elasticsearch_client_ships_gzipped_bulks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), None, &[]);
    let (status, created) = server
        .post(
            "/api/auth/api-keys",
            "application/json",
            json!({"name": "python client"}).to_string(),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["encoded"].as_str().expect("encoded key").to_owned();
    let report = python_report(ELASTICSEARCH_CLIENT, vec![server.base.clone(), key]).await;
    assert_eq!(report["ok"], 500, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    server
        .wait_for_total(json!({"size": 0}), 500, Duration::from_secs(60))
        .await;
    assert_eq!(count_from(&server, "python-client").await, 500);
}
