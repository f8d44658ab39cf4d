//! CSRF tokens for the console's forms: bound to the session (its `jti`)
//! under a key derived from the master key, so every replica computes
//! the same token and a token of one session is worthless in another.
//! The rule itself is the domain's `csrf` module.

use gatehouse_api::state::AppState;
use gatehouse_domain::csrf;
use gatehouse_domain::Principal;

/// The field every state-changing form carries.
pub const FIELD: &str = "csrf_token";

/// What a session is known by: its token id; a person vouched for by a
/// trusted proxy has no token, so their identity stands in.
fn binding(p: &Principal) -> String {
    match &p.jti {
        Some(jti) => format!("jti:{jti}"),
        None => format!("header:{}", p.subject),
    }
}

pub fn token(st: &AppState, p: &Principal) -> String {
    csrf::token(st.master.current().expose(), &binding(p))
}

pub fn holds(st: &AppState, p: &Principal, presented: &str) -> bool {
    csrf::matches(st.master.current().expose(), &binding(p), presented)
}
