//! Dead letters: what the pipeline could not index, newest first, with the reason and the
//! record as it was received (`GET /api/dead-letters`); sent through validation and the
//! processor again once the cause is fixed (`POST /api/dead-letters/replay`), or dropped from
//! the list (`POST /api/dead-letters/purge`), each with the same filters and a dry run that
//! counts; and who did which, when (`GET /api/dead-letters/actions`).

mod actions;

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sluice_event::validate::RejectCode;
use sluice_event::{QueuedRecord, Source, format_rfc3339_ms};
use sluice_http::responses::{BadRequest, Unavailable, UnsupportedMediaType};
use sluice_http::{ApiError, JsonBody, QueryParams};
use sluice_queue::{DeadLetter, DeadLetterFilter, DeadLetterPage, QueueError, Stage};
use utoipa::{IntoParams, ToSchema};

pub use actions::DEAD_LETTER_ACTIONS;
use actions::{Action, ActionKind};

use crate::ApiState;
use crate::auth::CurrentUser;
use crate::search::size;
use crate::time_param::{TimeBound, TimeParam, time_range};

/// Most letters one replay or purge settles; the answer says how many match beyond them.
const MAX_PER_ACTION: usize = 10_000;
/// Records per queue append while replaying.
const REPLAY_CHUNK: usize = 1_000;
/// Record bytes one listing, replay or purge holds: records are up to a megabyte each.
const MAX_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Params {
    /// Dead letters listed, newest first, up to 1,000 (default 50).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<i64>,
    /// Only letters of this stage.
    #[param(value_type = Option<Stage>, inline)]
    stage: Option<Stage>,
    /// Only letters with this reason code.
    #[param(value_type = Option<RejectCode>, inline)]
    code: Option<RejectCode>,
    /// Failed at or after: RFC 3339 or epoch milliseconds.
    #[param(value_type = Option<TimeBound>, inline)]
    from: Option<TimeParam>,
    /// Failed at or before: RFC 3339 or epoch milliseconds.
    #[param(value_type = Option<TimeBound>, inline)]
    to: Option<TimeParam>,
    /// Only these letters: `letter_id`s, comma-separated.
    ids: Option<String>,
}

/// Which letters a replay or a purge is about (all of the conditions given; none: every letter
/// not settled yet), and whether only to count them.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stage: Option<Stage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<RejectCode>,
    /// Failed at or after: RFC 3339 or epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TimeBound>)]
    from: Option<TimeParam>,
    /// Failed at or before: RFC 3339 or epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<TimeBound>)]
    to: Option<TimeParam>,
    /// Only these letters, by `letter_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 10000)]
    ids: Option<Vec<String>>,
    /// Count only: nothing is replayed or purged.
    #[serde(default)]
    dry_run: bool,
}

/// The queue's filter for what a client asked, letters settled already left out.
async fn filter(
    state: &ApiState,
    stage: Option<Stage>,
    code: Option<RejectCode>,
    (from, to): (Option<TimeParam>, Option<TimeParam>),
    ids: Option<BTreeSet<String>>,
) -> Result<DeadLetterFilter, ApiError> {
    let (from_ms, to_ms) = time_range(from, to)?;
    Ok(DeadLetterFilter {
        stage: stage.map(|stage| stage.as_str().to_owned()),
        code: code.map(|code| code.as_str().to_owned()),
        from_ms,
        to_ms,
        letter_ids: ids,
        settled: actions::settled(state.accounts.meta().as_ref()).await?,
        max_bytes: MAX_BYTES,
    })
}

fn queue_error(e: QueueError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "queue_unavailable",
        e.to_string(),
    )
    .retry_after(5)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLettersAnswer {
    /// Dead letters that match, replayed and purged ones left out (all kept ones, unfiltered).
    total: u64,
    dead_letters: Vec<Letter>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Letter {
    /// Where the letter sits in the dead-letter queue: what `ids` name it by.
    letter_id: String,
    /// The document id the record would have had.
    id: Option<String>,
    /// RFC 3339.
    failed_at: String,
    /// RFC 3339: when ingest took the record.
    received_at: String,
    /// How it came: http, upload, bulk or queue.
    source: &'static str,
    /// Where it failed: `validate`, `document`, `process` or `index`.
    stage: String,
    #[schema(value_type = sluice_event::validate::RejectCode)]
    code: &'static str,
    field: Option<String>,
    reason: String,
    /// The original bytes as text (invalid UTF-8 shown as U+FFFD).
    record: String,
}

impl From<DeadLetter> for Letter {
    fn from(letter: DeadLetter) -> Self {
        Letter {
            letter_id: letter.letter_id,
            id: letter.id,
            failed_at: format_rfc3339_ms(letter.failed_at_ms),
            received_at: format_rfc3339_ms(letter.received_at_ms),
            source: letter.source.as_str(),
            stage: letter.stage,
            code: letter.code.as_str(),
            field: letter.field,
            reason: letter.reason,
            record: String::from_utf8_lossy(&letter.payload).into_owned(),
        }
    }
}

#[utoipa::path(
    get,
    path = "/api/dead-letters",
    tag = "dead letters",
    summary = "What the pipeline could not index, newest first, with the reason and the record",
    params(Params),
    responses((status = 200, body = DeadLettersAnswer), BadRequest, Unavailable)
)]
pub async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<Params>,
) -> Result<Json<DeadLettersAnswer>, ApiError> {
    let limit = size(params.limit, 50, 1_000)?;
    let ids = params.ids.as_deref().map(|ids| {
        ids.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let filter = filter(
        &state,
        params.stage,
        params.code,
        (params.from, params.to),
        ids,
    )
    .await?;
    let page = state
        .dead_letters
        .newest_matching(&filter, limit)
        .await
        .map_err(queue_error)?;
    Ok(Json(DeadLettersAnswer {
        total: page.total,
        dead_letters: page.letters.into_iter().map(Letter::from).collect(),
    }))
}

/// What a replay or a purge did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionAnswer {
    /// Letters the selection matched, up to 10,000 (and 64 MiB of records) at a time.
    matched: usize,
    /// Letters replayed or purged: 0 on a dry run.
    settled: usize,
    /// Letters that match beyond those acted on: send the request again for them.
    remaining: u64,
    dry_run: bool,
    /// The recorded action (`GET /api/dead-letters/actions`); none on a dry run.
    action_id: Option<String>,
}

/// The letters `selection` matches, newest first, at most [`MAX_PER_ACTION`].
async fn selected(state: &ApiState, selection: &Selection) -> Result<DeadLetterPage, ApiError> {
    let ids = selection
        .ids
        .as_ref()
        .map(|ids| ids.iter().cloned().collect());
    let filter = filter(
        state,
        selection.stage,
        selection.code,
        (selection.from.clone(), selection.to.clone()),
        ids,
    )
    .await?;
    state
        .dead_letters
        .newest_matching(&filter, MAX_PER_ACTION)
        .await
        .map_err(queue_error)
}

/// Records the action, when it settled anything, and answers with it.
async fn settle(
    state: &ApiState,
    user: &str,
    kind: ActionKind,
    selection: &Selection,
    page: &DeadLetterPage,
) -> Result<Json<ActionAnswer>, ApiError> {
    let matched = page.letters.len();
    let remaining = page.total.saturating_sub(matched as u64);
    if selection.dry_run || matched == 0 {
        return Ok(Json(ActionAnswer {
            matched,
            settled: 0,
            remaining,
            dry_run: selection.dry_run,
            action_id: None,
        }));
    }
    let action = Action {
        id: String::new(),
        action: kind,
        by: user.to_owned(),
        at: format_rfc3339_ms(sluice_event::now_ms()),
        filter: serde_json::to_value(selection).unwrap_or_default(),
        count: matched,
        letter_ids: page.letters.iter().map(|l| l.letter_id.clone()).collect(),
    };
    let action_id = actions::record(state.accounts.meta().as_ref(), action).await?;
    Ok(Json(ActionAnswer {
        matched,
        settled: matched,
        remaining,
        dry_run: false,
        action_id: Some(action_id),
    }))
}

/// The record of a dead letter as it goes into the queue again: its bytes, its document id and
/// when it was first received (so a record without an id gets the same one again), marked as
/// coming from the queue so that the processor validates it again, whatever queue it is.
fn requeued(letter: &DeadLetter) -> QueuedRecord {
    QueuedRecord {
        id: letter.id.clone(),
        received_at_ms: letter.received_at_ms,
        source: Source::Queue,
        partition_key: None,
        payload: letter.payload.clone(),
    }
}

#[utoipa::path(
    post,
    path = "/api/dead-letters/replay",
    tag = "dead letters",
    summary = "Send dead letters through validation and the processor again",
    description = "For records dead-lettered by a mistake since fixed (a mapping, a limit, a \
                   configuration). Each selected record goes into the queue again with its \
                   document id, so replaying one twice indexes it once. Replayed letters leave \
                   the list; who replayed what and when is recorded. `dry_run` only counts.",
    request_body = Selection,
    responses(
        (status = 200, description = "What was replayed, or would be", body = ActionAnswer),
        BadRequest,
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn replay(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(selection): JsonBody<Selection>,
) -> Result<Json<ActionAnswer>, ApiError> {
    let page = selected(&state, &selection).await?;
    if !selection.dry_run {
        let Some(queue) = &state.queue else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                "this process does not write to the queue",
            ));
        };
        let mut sent = 0;
        for chunk in page.letters.chunks(REPLAY_CHUNK) {
            queue
                .append(chunk.iter().map(requeued).collect())
                .await
                .map_err(|e| {
                    let mut error = queue_error(e);
                    error.message = format!(
                        "{} ({sent} of {} letters were replayed before; replaying again is \
                         safe: each record keeps its document id)",
                        error.message,
                        page.letters.len()
                    );
                    error
                })?;
            sent += chunk.len();
        }
    }
    settle(&state, &claims.name, ActionKind::Replay, &selection, &page).await
}

#[utoipa::path(
    post,
    path = "/api/dead-letters/purge",
    tag = "dead letters",
    summary = "Drop dead letters from the list",
    description = "The letters leave the list and are never replayed; the queue forgets their \
                   bytes with its own retention. Who purged what and when is recorded. \
                   `dry_run` only counts.",
    request_body = Selection,
    responses(
        (status = 200, description = "What was purged, or would be", body = ActionAnswer),
        BadRequest,
        UnsupportedMediaType,
        Unavailable,
    )
)]
pub async fn purge(
    State(state): State<ApiState>,
    CurrentUser(claims): CurrentUser,
    JsonBody(selection): JsonBody<Selection>,
) -> Result<Json<ActionAnswer>, ApiError> {
    let page = selected(&state, &selection).await?;
    settle(&state, &claims.name, ActionKind::Purge, &selection, &page).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionParams {
    /// Actions listed, newest first, up to 1,000 (default 50).
    #[param(minimum = 0, maximum = 1000)]
    limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionsAnswer {
    actions: Vec<Action>,
}

#[utoipa::path(
    get,
    path = "/api/dead-letters/actions",
    tag = "dead letters",
    summary = "Who replayed or purged which dead letters, and when, newest first",
    params(ActionParams),
    responses((status = 200, body = ActionsAnswer), BadRequest, Unavailable)
)]
pub async fn list_actions(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams<ActionParams>,
) -> Result<Json<ActionsAnswer>, ApiError> {
    let limit = size(params.limit, 50, 1_000)?;
    let actions = actions::newest(state.accounts.meta().as_ref(), limit).await?;
    Ok(Json(ActionsAnswer { actions }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What makes a replay idempotent: the record goes back with the id it had and the time it
    /// was first received (from which a record without an id gets its id), so replaying it
    /// twice writes one document twice.
    #[test]
    fn a_requeued_letter_keeps_what_its_document_id_comes_from() {
        let letter = DeadLetter {
            letter_id: "w7".into(),
            id: None,
            failed_at_ms: 2_000,
            received_at_ms: 1_000,
            source: Source::Http,
            stage: "index".into(),
            code: RejectCode::StoreRefused,
            field: None,
            reason: "mapping".into(),
            payload: b"{\"log_type\":\"error\"}".to_vec(),
        };
        let record = requeued(&letter);
        assert_eq!(record.id, None);
        assert_eq!(record.received_at_ms, 1_000);
        assert_eq!(record.payload, letter.payload);
        assert_eq!(record.source, Source::Queue, "validated again");
        let named = DeadLetter {
            id: Some("doc-1".into()),
            ..letter
        };
        assert_eq!(requeued(&named).id.as_deref(), Some("doc-1"));
    }
}
