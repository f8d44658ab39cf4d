//! The page frame: navigation, the sign-out form, notices and error
//! boxes. Everything interpolated goes through maud, which escapes it.
//! State is always said in words (and marked up), never by colour alone.

use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use gatehouse_api::error::ApiError;

use crate::assets;
use crate::csrf::FIELD;
use crate::human::Human;

const NAV: [(&str, &str); 6] = [
    ("/approvals", "Approvals"),
    ("/upstreams", "Upstreams"),
    ("/secrets", "Secrets"),
    ("/agents", "Agents"),
    ("/tokens", "Tokens"),
    ("/audit", "Audit"),
];

/// A full page with the given status.
pub fn frame(
    status: StatusCode,
    title: &str,
    who: Option<&Human>,
    current: &str,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Gatehouse" }
                link rel="stylesheet" href=(assets::css_path());
                script src=(assets::js_path()) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Gatehouse" }
                    @if let Some(who) = who {
                        nav aria-label="Console" {
                            ul {
                                @for (href, label) in NAV {
                                    li {
                                        @if href == current {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { "Signed in as " strong { (who.principal.subject) }
                                @if who.principal.is_operator() { " (operator)" } }
                            form method="post" action="/logout" {
                                (csrf_field(who))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (
        status,
        [(CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

pub fn csrf_field(who: &Human) -> Markup {
    html! { input type="hidden" name=(FIELD) value=(who.csrf); }
}

/// A notice after a successful action (from a fixed list, never from
/// the query string's text).
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text {
            p.notice role="status" { strong { "Done: " } (text) }
        }
    }
}

/// An API error, said plainly: status, code and message.
pub fn error_box(error: Option<&ApiError>) -> Markup {
    html! {
        @if let Some(e) = error {
            div.error role="alert" {
                p { strong { "Refused (" (status_of(e).as_u16()) " " (e.code()) "): " } (e.message()) }
                @if let Some(hint) = hint(e) { p { (hint) } }
            }
        }
    }
}

fn hint(e: &ApiError) -> Option<&'static str> {
    Some(match e.code() {
        "identity_mismatch" => "The upstream says this token belongs to someone else: paste a token of the upstream's owner.",
        "not_upstream_owner" => "Only the owner of this upstream may set its credential.",
        "csrf" => "Nothing was changed.",
        "unauthenticated" => "The email and one-time code do not match an unused, unexpired login code.",
        "conflict" => "Nothing was changed: the current state does not allow this.",
        "too_many_requests" => "Wait a minute before trying again.",
        _ => return None,
    })
}

pub fn status_of(e: &ApiError) -> StatusCode {
    e.status()
}

/// An error page with the API's status for `e`.
pub fn error_page(who: Option<&Human>, e: &ApiError) -> Response {
    frame(
        status_of(e),
        "Something was refused",
        who,
        "",
        html! {
            (error_box(Some(e)))
            p { a href="/" { "Back to the console" } }
        },
    )
}

/// A time as the API writes it (RFC 3339, UTC).
pub fn when(ts: i64) -> String {
    gatehouse_domain::clock::rfc3339(ts)
}
