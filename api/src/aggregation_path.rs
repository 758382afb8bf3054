//! Which path answered a request's aggregations, said in the `x-sluice-aggregation` header:
//! `rollups` when the store answered every one from its rollups, `events` when any read the
//! events (a filter or bucket size rollups do not keep, or a store without rollups). A slow
//! dashboard that fell back is then told apart from one that did not, without a profiler.

use std::cell::Cell;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

const PATH_HEADER: &str = "x-sluice-aggregation";

#[derive(Clone, Copy, Default)]
struct Paths {
    rollups: bool,
    events: bool,
}

tokio::task_local! {
    static PATHS: Cell<Paths>;
}

/// Notes how one aggregation of the current request is answered.
pub fn record(from_rollups: bool) {
    // Outside a request (a test calling a handler directly) there is nothing to tell.
    let _ = PATHS.try_with(|paths| {
        let mut seen = paths.get();
        match from_rollups {
            true => seen.rollups = true,
            false => seen.events = true,
        }
        paths.set(seen);
    });
}

pub async fn say_path(request: Request, next: Next) -> Response {
    let (mut response, paths) = PATHS
        .scope(Cell::new(Paths::default()), async {
            let response = next.run(request).await;
            (response, PATHS.with(Cell::get))
        })
        .await;
    let path = match paths {
        Paths { events: true, .. } => Some("events"),
        Paths { rollups: true, .. } => Some("rollups"),
        _ => None,
    };
    if let Some(path) = path {
        response
            .headers_mut()
            .insert(PATH_HEADER, HeaderValue::from_static(path));
    }
    response
}
