//! HTTP routes: create a board, join it through a link, open its WebSocket, and health.

use crate::auth::{self, Tokens};
use crate::board_task::{BoardError, BoardHub, wire_error};
use crate::clock;
use crate::outbox;
use crate::session::{self, SessionContext};
use crate::store::BoardMeta;
use actix_web::body::MessageBody;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use minim_shared::api::{
    CreateBoard, Created, Join, Joined, LinkGrant, LinkKey, LinkQuery, Links, NewParticipantLink, ParticipantLink,
};
use minim_shared::wire::{ErrorCode, SessionToken};
use minim_shared::{Actor, Board, BoardId, Command, decide};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Largest JSON body accepted on the HTTP API.
const MAX_JSON_BODY_BYTES: usize = 16 * 1024;

/// What every handler shares.
pub struct AppState {
    pub hub: Arc<BoardHub>,
    pub tokens: Tokens,
    /// Base of the links handed out, without a trailing slash.
    pub public_url: String,
    pub shutdown: CancellationToken,
    pub client_timeout: std::time::Duration,
    /// Which WebSocket upgrades are let in (origin, connections per address).
    pub admission: Arc<crate::admission::Admission>,
}

/// An HTTP API error: a status and the same `{code, message}` shape as the WebSocket's errors.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody { code: self.code, message: &self.message })
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl From<BoardError> for ApiError {
    fn from(e: BoardError) -> ApiError {
        let status = match &e {
            BoardError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            BoardError::NotFound => StatusCode::NOT_FOUND,
            BoardError::Deleted => StatusCode::GONE,
            BoardError::BadKey | BoardError::NotMember => StatusCode::FORBIDDEN,
            BoardError::Unavailable | BoardError::Gone => StatusCode::SERVICE_UNAVAILABLE,
        };
        let (code, message) = wire_error(&e);
        ApiError::new(status, code, message)
    }
}

fn internal(e: anyhow::Error) -> ApiError {
    tracing::error!(error = %e, "internal error");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "Something went wrong on the server; try again.",
    )
}

fn board_id(raw: &str) -> Result<BoardId, ApiError> {
    if auth::is_board_id(raw) { Ok(BoardId(raw.to_owned())) } else { Err(BoardError::NotFound.into()) }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default().limit(MAX_JSON_BODY_BYTES).error_handler(|e, _| {
        let message = match &e {
            actix_web::error::JsonPayloadError::OverflowKnownLength { .. }
            | actix_web::error::JsonPayloadError::Overflow { .. } => {
                format!("The request body is larger than {MAX_JSON_BODY_BYTES} bytes.")
            }
            actix_web::error::JsonPayloadError::ContentType => "Send JSON with Content-Type: application/json.".into(),
            _ => "The request body is not valid JSON for this request.".into(),
        };
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, message).into()
    });
    cfg.app_data(json)
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/api/boards", web::post().to(create_board))
        .route("/api/boards/{board}/link", web::post().to(link))
        .route("/api/boards/{board}/join", web::post().to(join))
        .route("/api/boards/{board}/participant-link", web::post().to(new_participant_link))
        .route("/api/boards/{board}/ws", web::get().to(websocket))
        .service(web::scope("/api").default_service(web::to(not_found)));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(StatusCode::NOT_FOUND, minim_shared::RejectCode::NotFound.into(), "There is nothing here."))
}

/// The process is alive.
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// The node can serve: its store takes writes and, with several nodes, it hears the others.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let not_ready =
        |why: &str| HttpResponse::ServiceUnavailable().content_type("text/plain").body(format!("not ready: {why}\n"));
    if let Err(e) = state.hub.store().ready().await {
        tracing::warn!(error = %e, "not ready");
        return not_ready("the event store is unavailable");
    }
    let metrics = state.hub.metrics();
    if metrics.fanout_enabled.load(Ordering::Relaxed) && !metrics.fanout_up.load(Ordering::Relaxed) {
        return not_ready("the fan-out subscription to other nodes is down");
    }
    HttpResponse::Ok().content_type("text/plain").body("ready\n")
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state.hub.metrics().render(state.hub.live_boards());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}

async fn create_board(state: web::Data<AppState>, body: web::Json<CreateBoard>) -> Result<HttpResponse, ApiError> {
    let CreateBoard { title, settings } = body.into_inner();
    let now = clock::now();
    let events = decide(&Board::default(), Actor::System, &Command::CreateBoard { title, settings }, now)
        .map_err(|r| ApiError::from(BoardError::Rejected(r)))?;
    let events = Board::default().sequence(events);
    let id = auth::new_board_id().map_err(internal)?;
    let facilitator = auth::new_link_key().map_err(internal)?;
    let participant = auth::new_link_key().map_err(internal)?;
    let projector = auth::new_link_key().map_err(internal)?;
    let meta = BoardMeta {
        created_at: now,
        facilitator_key_sha256: auth::key_hash(&facilitator),
        participant_key_sha256: auth::key_hash(&participant),
        projector_key_sha256: auth::key_hash(&projector),
    };
    state.hub.store().create(&id, &meta, &events).await.map_err(|e| internal(e.into()))?;
    crate::metrics::Metrics::add(&state.hub.metrics().boards_created, 1);
    crate::metrics::Metrics::add(&state.hub.metrics().events, events.len() as u64);
    tracing::info!(board = %id, "board created");
    let link = |key: &LinkKey| board_link(&state.public_url, &id, key);
    let links = Links { facilitator: link(&facilitator), participant: link(&participant), projector: link(&projector) };
    Ok(HttpResponse::Created().json(Created { board: id, links }))
}

/// What a link grants, without joining: the app asks for a name only when the link is for a person.
async fn link(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<LinkQuery>,
) -> Result<HttpResponse, ApiError> {
    let board = board_id(&path)?;
    let key = body.into_inner().key;
    let grant = state
        .hub
        .with_board(&board, |handle| {
            let key = key.clone();
            async move { handle.grant(key).await }
        })
        .await?;
    Ok(HttpResponse::Ok().json(LinkGrant { grant }))
}

/// A new participant link, for the facilitator (by their session); the old link stops working.
async fn new_participant_link(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<NewParticipantLink>,
) -> Result<HttpResponse, ApiError> {
    let board = board_id(&path)?;
    let refused = || {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "Your session is not valid for this board.")
    };
    let claims = state.tokens.verify(&body.token.0, &board).map_err(|_| refused())?;
    let person = claims.person.ok_or_else(refused)?;
    let key = state
        .hub
        .with_board(&board, |handle| async move { handle.rotate_participant_link(Actor::Person(person)).await })
        .await?;
    tracing::info!(board = %board, "participant link replaced");
    Ok(HttpResponse::Ok().json(ParticipantLink { participant: board_link(&state.public_url, &board, &key) }))
}

/// A link to `board` with `key` (the key travels in the fragment, which browsers never send).
fn board_link(public_url: &str, board: &BoardId, key: &LinkKey) -> String {
    format!("{public_url}/b/{board}#k={}", key.0)
}

async fn join(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<Join>,
) -> Result<HttpResponse, ApiError> {
    let board = board_id(&path)?;
    let Join { key, name } = body.into_inner();
    let admitted = state
        .hub
        .with_board(&board, |handle| {
            let (key, name) = (key.clone(), name.clone());
            async move { handle.join(key, name).await }
        })
        .await?;
    let (token, expires_at) = state.tokens.issue(&board, admitted.person, admitted.grant, clock::now());
    tracing::info!(board = %board, grant = ?admitted.grant, "joined");
    Ok(HttpResponse::Ok().json(Joined {
        token: SessionToken(token),
        board,
        person: admitted.person,
        grant: admitted.grant,
        expires_at,
    }))
}

async fn websocket(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, actix_web::Error> {
    let board = board_id(&path)?;
    if !state.admission.origin_allowed(&req) {
        tracing::info!(board = %board, "websocket refused: origin not allowed");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Unauthorized,
            "This page may not open a connection to minim: its origin is not allowed.",
        )
        .into());
    }
    let too_many = || {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooMany,
            "Too many connections from this address; close some and try again.",
        )
    };
    let ip = state.admission.client_ip(&req).ok_or_else(|| {
        tracing::warn!("websocket refused: no client address (is --client-ip-header set by the proxy?)");
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, "The client's address is unknown.")
    })?;
    let slot = state.admission.take_slot(ip).ok_or_else(|| {
        tracing::info!(board = %board, "websocket refused: too many connections from one address");
        state.hub.metrics().rejected(ErrorCode::TooMany);
        too_many()
    })?;
    // The body written to the client is the outbox, which carries the board's messages and the
    // session's alike; actix-ws's own session and body are not used to write.
    let (response, _, stream) = actix_ws::handle(&req, body)?;
    let (response, actix_ws_body) = response.into_parts();
    let (outbox, feed) = outbox::outbox(actix_ws_body, state.hub.metrics().clone());
    let response = response.set_body(outbox.boxed());
    let ctx = SessionContext {
        _slot: slot,
        hub: state.hub.clone(),
        tokens: state.tokens.clone(),
        board,
        shutdown: state.shutdown.clone(),
        client_timeout: state.client_timeout,
    };
    // The WebSocket stream is not `Send`, so the session runs on this worker's local set.
    actix_web::rt::spawn(session::run(stream, feed, ctx));
    Ok(response)
}
