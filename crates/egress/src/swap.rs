//! Placeholders and `inject` rules on an outgoing request. Pure: no I/O,
//! the caller passes the clock's `now`.
//!
//! One rule ([`placeholders_in`]) decides every text of a request (each
//! header value, the request target). For each placeholder in it:
//! - this job's, live, and the host is in its secret's `allowed_hosts`:
//!   usable;
//! - this job's but the host is not bound: the request is refused
//!   (`not_allowed`), never forwarded with or without the placeholder;
//! - this job's but expired, or shaped like a placeholder (configured
//!   prefix and 40 hex digits) but not this job's: refused (`403`).
//!
//! Over TLS that Gatehouse verified ([`apply`], which takes the
//! [`VerifiedTls`] proof), usable placeholders are replaced by the real
//! value and each granted secret with an `inject` rule bound to the host
//! adds its header when the request lacks it. Over plain HTTP
//! ([`refuse_in_clear`]) a usable placeholder is refused too, and nothing
//! is injected: a real value never crosses the network in clear text.
//!
//! Every refusal counts as a failed resolution for the per-source limit.

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::egress::host_allowed;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::directory::{Binding, JobView};
use crate::refusal::Refusal;
use crate::tls::VerifiedTls;

/// Hex digits after the prefix in a placeholder (20 random bytes).
pub const PLACEHOLDER_HEX_LEN: usize = 40;

/// Texts longer than this are searched with a prepared substring finder
/// (its setup costs more than scanning a header value).
const LONG_TEXT: usize = 4096;

/// The first index at or after `from` where `needle` (not empty) starts.
fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    let mut i = from;
    while i <= last_start {
        let at = i + memchr::memchr(first, &hay[i..=last_start])?;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

/// Every start index of `needle` in `hay`, left to right, not
/// overlapping.
pub(crate) fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    // An empty needle would match everywhere without moving on.
    if needle.is_empty() {
        return Vec::new();
    }
    if hay.len() > LONG_TEXT {
        return memchr::memmem::find_iter(hay, needle).collect();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = find_from(hay, needle, i) {
        out.push(at);
        i = at + needle.len();
    }
    out
}

/// `hay` with every `needle` replaced by `with`; `None` when absent.
pub(crate) fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let hits = find_all(hay, needle);
    if hits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut last = 0;
    for i in hits {
        out.extend_from_slice(&hay[last..i]);
        out.extend_from_slice(with);
        last = i + needle.len();
    }
    out.extend_from_slice(&hay[last..]);
    Some(out)
}

/// Whether `text` holds something shaped like a placeholder.
fn has_placeholder_shape(text: &[u8], prefix: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    find_all(text, prefix.as_bytes()).into_iter().any(|i| {
        let rest = &text[i + prefix.len()..];
        rest.len() >= PLACEHOLDER_HEX_LEN
            && rest[..PLACEHOLDER_HEX_LEN]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    })
}

/// The one placeholder rule (see the module doc) for one text of a
/// request towards `host`: the bindings whose placeholders it holds, all
/// live and bound to `host`, or the refusal.
pub fn placeholders_in<'v>(
    text: &[u8],
    view: &'v JobView,
    host: &str,
    prefix: &str,
    now: UnixTime,
) -> Result<Vec<&'v Binding>, Refusal> {
    let mut found = Vec::new();
    // A text shorter than every placeholder of the job and than the
    // placeholder shape holds none (most header values).
    let shortest = view
        .bindings
        .iter()
        .filter_map(|b| b.placeholder.as_ref().map(String::len))
        .fold(prefix.len() + PLACEHOLDER_HEX_LEN, usize::min);
    if text.len() < shortest {
        return Ok(found);
    }
    // The text with the job's placeholders blanked, once any was found:
    // what is left must hold nothing placeholder-shaped.
    let mut rest: Option<Vec<u8>> = None;
    for b in &view.bindings {
        let Some(ph) = &b.placeholder else { continue };
        let Some(blanked) = replace_all(rest.as_deref().unwrap_or(text), ph.as_bytes(), b" ")
        else {
            continue;
        };
        if b.placeholder_expires_at <= now {
            return Err(Refusal::ForeignPlaceholder);
        }
        if !host_allowed(&b.allowed_hosts, host) {
            return Err(Refusal::PlaceholderNotAllowed {
                host: host.to_string(),
            });
        }
        found.push(b);
        rest = Some(blanked);
    }
    if has_placeholder_shape(rest.as_deref().unwrap_or(text), prefix) {
        return Err(Refusal::ForeignPlaceholder);
    }
    Ok(found)
}

/// `text` with each placeholder of `found` replaced by its real value, in
/// one pass (a value is never searched for placeholders itself).
fn substitute(text: &[u8], found: &[&Binding]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    let mut i = 0;
    'scan: while i < text.len() {
        for b in found {
            if let Some(ph) = &b.placeholder {
                if text[i..].starts_with(ph.as_bytes()) {
                    out.extend_from_slice(b.value.expose());
                    i += ph.len();
                    continue 'scan;
                }
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

fn note(used: &mut Vec<String>, secret: &str) {
    if !used.iter().any(|s| s == secret) {
        used.push(secret.to_string());
    }
}

/// Swaps placeholders and applies inject rules for a request to `host`
/// over TLS Gatehouse verified (`_over`). Returns the names of the
/// secrets whose values were put in.
pub fn apply(
    headers: &mut HeaderMap,
    view: &JobView,
    host: &str,
    prefix: &str,
    now: UnixTime,
    _over: &VerifiedTls,
) -> Result<Vec<String>, Refusal> {
    let mut used: Vec<String> = Vec::new();
    // Every value is judged before any is changed; then the swapped ones
    // are replaced where they stand (by their place in the map's order).
    let mut replaced: Vec<(usize, HeaderValue)> = Vec::new();
    for (at, value) in headers.values().enumerate() {
        let found = placeholders_in(value.as_bytes(), view, host, prefix, now)?;
        if found.is_empty() {
            continue;
        }
        let v = HeaderValue::from_bytes(&substitute(value.as_bytes(), &found))
            .map_err(|_| Refusal::Internal("a secret value is not a valid header value".into()))?;
        replaced.push((at, v));
        for b in found {
            note(&mut used, &b.secret);
        }
    }
    if !replaced.is_empty() {
        let mut swaps = replaced.into_iter().peekable();
        for (at, value) in headers.values_mut().enumerate() {
            if let Some((_, new)) = swaps.next_if(|(i, _)| *i == at) {
                *value = new;
            }
        }
    }
    for b in &view.bindings {
        let Some(rule) = &b.inject else { continue };
        if !host_allowed(&b.allowed_hosts, host) {
            continue;
        }
        let Ok(name) = HeaderName::from_bytes(rule.header.as_bytes()) else {
            continue;
        };
        if headers.contains_key(&name) {
            continue;
        }
        let Some(text) = b.value.expose_str() else {
            continue;
        };
        let value = HeaderValue::from_str(&rule.format.replace("{value}", text)).map_err(|_| {
            Refusal::Internal("an injected header is not a valid header value".into())
        })?;
        headers.insert(name, value);
        note(&mut used, &b.secret);
    }
    Ok(used)
}

/// The request target (path and query) is not rewritten, but a
/// placeholder in it is held to the same rule.
pub fn check_target_text(
    text: &str,
    view: &JobView,
    host: &str,
    prefix: &str,
    now: UnixTime,
) -> Result<(), Refusal> {
    placeholders_in(text.as_bytes(), view, host, prefix, now).map(|_| ())
}

/// A plain `http://` request: its target and every header value go
/// through the one rule, and a placeholder the rule would have let
/// through is refused as well (`not_allowed`): swapping it would put the
/// real value on the wire in clear text. Nothing is injected.
pub fn refuse_in_clear(
    headers: &HeaderMap,
    target: &str,
    view: &JobView,
    host: &str,
    prefix: &str,
    now: UnixTime,
) -> Result<(), Refusal> {
    let texts = std::iter::once(target.as_bytes()).chain(headers.values().map(|v| v.as_bytes()));
    for text in texts {
        if !placeholders_in(text, view, host, prefix, now)?.is_empty() {
            return Err(Refusal::PlaceholderInClearText {
                host: host.to_string(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
