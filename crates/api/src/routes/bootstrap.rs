//! Claiming the installation with the one-time bootstrap code
//! (`app::sessions::claim`).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use gatehouse_domain::clock::rfc3339;

use crate::app::sessions::{self, Session};
use crate::auth::peer_ip_of;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::request_id::RequestId;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// The bootstrap code `serve` printed (or `GATEHOUSE_BOOTSTRAP_CODE`).
    code: String,
    #[schema(schema_with = crate::openapi::grammar::email)]
    email: String,
}

/// Public. 201 with a session; 403 wrong code; 409 already claimed;
/// 429 after more than 5 wrong codes a minute from one address.
pub async fn claim(
    State(st): State<AppState>,
    peer: axum::extract::ConnectInfo<std::net::SocketAddr>,
    request: RequestId,
    ApiJson(body): ApiJson<ClaimRequest>,
) -> ApiResult<Response> {
    let session =
        sessions::claim(&st, peer_ip_of(&peer), &request, &body.code, &body.email).await?;
    Ok(session_response(&st, &session, StatusCode::CREATED))
}

/// `{"email","token","expires_at"}` plus the session cookie.
pub fn session_response(st: &AppState, session: &Session, status: StatusCode) -> Response {
    let body = json!({
        "email": session.email.as_str(),
        "token": session.token,
        "expires_at": rfc3339(session.expires_at),
    });
    (
        status,
        [(header::SET_COOKIE, session.cookie(st))],
        Json(body),
    )
        .into_response()
}
