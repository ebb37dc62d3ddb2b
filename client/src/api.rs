//! The HTTP API: create a board, and join one through a link's key. Errors come back as the
//! server's `{code, message}` body, or a message of our own when the server cannot be reached.

use minim_shared::api::{CreateBoard, Join, LinkGrant, LinkKey, LinkQuery, NewParticipantLink, ParticipantLink};
pub use minim_shared::api::{Created, Grant, Joined, Links};
use minim_shared::{Private, Settings};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// The `message` of the server's `{code, message}` error body. The code is not read: the status
/// says enough here, and reading it would bring a second copy of its decoder into the app.
#[derive(Deserialize)]
struct ErrorBody {
    message: String,
}

/// Why a request failed, in words for the person.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// The HTTP status; 0 when the server could not be reached.
    pub status: u16,
    pub message: String,
}

impl ApiError {
    fn network() -> ApiError {
        ApiError { status: 0, message: "Could not reach the minim server. Check your connection and try again.".into() }
    }
}

pub async fn create_board(title: &str, settings: &Settings) -> Result<Created, ApiError> {
    post("/api/boards", &CreateBoard { title: Private::new(title), settings: settings.clone() }).await
}

/// What a link's key grants on `board`, without joining.
pub async fn link_grant(board: &str, key: &str) -> Result<Grant, ApiError> {
    let query = LinkQuery { key: LinkKey(key.to_owned()) };
    post::<_, LinkGrant>(&format!("/api/boards/{board}/link"), &query).await.map(|g| g.grant)
}

/// Joins `board` with a link key. The projector's key needs no name (send an empty one).
pub async fn join(board: &str, key: &str, name: &str) -> Result<Joined, ApiError> {
    let join = Join { key: LinkKey(key.to_owned()), name: Some(Private::new(name)) };
    post(&format!("/api/boards/{board}/join"), &join).await
}

/// Replaces the participant link (the facilitator's session); the new link.
pub async fn new_participant_link(board: &str, token: String) -> Result<String, ApiError> {
    let body = NewParticipantLink { token: minim_shared::wire::SessionToken(token) };
    post::<_, ParticipantLink>(&format!("/api/boards/{board}/participant-link"), &body).await.map(|l| l.participant)
}

async fn post<B: Serialize, R: DeserializeOwned>(url: &str, body: &B) -> Result<R, ApiError> {
    let body = serde_json::to_string(body).map_err(|_| ApiError::network())?;
    let (status, text) = fetch_text(url, &body).await.ok_or_else(ApiError::network)?;
    if (200..300).contains(&status) {
        return serde_json::from_str(&text).map_err(|_| ApiError {
            status,
            message: "The server sent an answer this page does not understand. Reload the page.".into(),
        });
    }
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(e) => ApiError { status, message: e.message },
        Err(_) => ApiError { status, message: format!("The server answered with an error ({status}).") },
    })
}

/// POSTs JSON; the status and the body's text, or `None` when nothing came back.
async fn fetch_text(url: &str, body: &str) -> Option<(u16, String)> {
    let window = web_sys::window()?;
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&wasm_bindgen::JsValue::from_str(body));
    let headers = web_sys::Headers::new().ok()?;
    headers.set("content-type", "application/json").ok()?;
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(url, &init).ok()?;
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_request(&request)).await.ok()?.dyn_into().ok()?;
    let text = JsFuture::from(response.text().ok()?).await.ok()?.as_string()?;
    Some((response.status(), text))
}
