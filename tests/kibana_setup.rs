//! `sluice setup` with `kibana.url`: no Kibana can run here, so a small HTTP server stands where
//! Kibana's saved-objects import API is, checks the request against what Kibana documents for
//! `POST /api/saved_objects/_import` (multipart `file`, `kbn-xsrf`, `overwrite=true`, basic
//! auth) and answers as Kibana does.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Default)]
struct Seen {
    requests: Vec<(HeaderMap, String, String)>,
}

type Shared = Arc<Mutex<Seen>>;

async fn import(
    State(seen): State<Shared>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    mut form: Multipart,
) -> (StatusCode, axum::Json<Value>) {
    let mut file = String::new();
    let mut file_name = String::new();
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("file") {
            file_name = field.file_name().unwrap_or_default().to_owned();
            file = field.text().await.unwrap_or_default();
        }
    }
    seen.lock()
        .expect("lock")
        .requests
        .push((headers.clone(), file.clone(), file_name));
    if !headers.contains_key("kbn-xsrf") {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"statusCode": 400, "error": "Bad Request", "message": "Request must contain a kbn-xsrf header."}),
            ),
        );
    }
    if query.get("overwrite").map(String::as_str) != Some("true") {
        return (
            StatusCode::OK,
            axum::Json(json!({"success": false, "successCount": 0,
            "errors": [{"id": "sluice-overview", "type": "dashboard", "error": {"type": "conflict"}}]})),
        );
    }
    let count = file.lines().filter(|l| !l.trim().is_empty()).count();
    (
        StatusCode::OK,
        axum::Json(json!({"success": true, "successCount": count, "successResults": []})),
    )
}

async fn kibana() -> (String, Shared, tokio::task::JoinHandle<()>) {
    let seen = Shared::default();
    let app = Router::new()
        .route("/api/saved_objects/_import", post(import))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    (url, seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_imports_the_saved_objects_into_kibana() {
    let (url, seen, task) = kibana().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_owned();
    let env_url = url.clone();
    let output = tokio::task::spawn_blocking(move || {
        support::sluice_command(
            &data,
            &["setup"],
            "",
            &[
                ("SLUICE_KIBANA__URL", env_url.as_str()),
                ("SLUICE_KIBANA__USERNAME", "elastic"),
                ("SLUICE_KIBANA__PASSWORD", "changeme"),
                ("SLUICE_STORE__ELASTICSEARCH__INDEX_PREFIX", "shop-logs"),
            ],
        )
    })
    .await
    .expect("setup ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("kibana: 5 saved objects imported"),
        "{stdout}"
    );

    let requests = &seen.lock().expect("lock").requests;
    assert_eq!(requests.len(), 1);
    let (headers, file, file_name) = &requests[0];
    assert!(file_name.ends_with(".ndjson"), "{file_name}");
    assert_eq!(
        headers["authorization"], "Basic ZWxhc3RpYzpjaGFuZ2VtZQ==",
        "basic auth as elastic:changeme"
    );
    let objects: Vec<Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON"))
        .collect();
    let types: Vec<&str> = objects.iter().filter_map(|o| o["type"].as_str()).collect();
    assert_eq!(
        types,
        [
            "index-pattern",
            "visualization",
            "visualization",
            "visualization",
            "dashboard"
        ]
    );
    assert_eq!(
        objects[0]["attributes"]["title"], "shop-logs-*",
        "the configured prefix"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_fails_loudly_when_kibana_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        support::sluice_command(
            &data,
            &["setup"],
            "",
            &[("SLUICE_KIBANA__URL", "http://127.0.0.1:9")],
        )
    })
    .await
    .expect("setup ran");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Kibana at http://127.0.0.1:9 is unreachable"),
        "{stderr}"
    );
}
