//! Placeholder swapping and `inject` rules on an outgoing request's
//! headers. Pure: no I/O, the caller passes the clock's `now`.
//!
//! For each placeholder in a header value:
//! - this job's, live, and the host is in its secret's `allowed_hosts`:
//!   replaced by the real value;
//! - this job's but the host is not bound: the request is refused
//!   (`not_allowed`), never forwarded with or without the placeholder;
//! - this job's but expired, or shaped like a placeholder (configured
//!   prefix and 40 hex digits) but not this job's: refused (`403`).
//!
//! Both refusals count as failed resolutions for the per-source limit.
//! Then each granted secret with an `inject` rule bound to the host adds
//! its header when the request lacks it.

use gatehouse_domain::clock::UnixTime;
use gatehouse_domain::egress::host_allowed;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::directory::JobView;
use crate::refusal::Refusal;

/// Hex digits after the prefix in a placeholder (20 random bytes).
pub const PLACEHOLDER_HEX_LEN: usize = 40;

/// Every start index of `needle` in `hay`.
pub(crate) fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    if needle.is_empty() || hay.len() < needle.len() {
        return out;
    }
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        if hay[i..].starts_with(needle) {
            out.push(i);
            i += needle.len();
        } else {
            i += 1;
        }
    }
    out
}

/// `hay` with every `needle` replaced by `with`; `None` when absent.
pub(crate) fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    let hits = find_all(hay, needle);
    if hits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(hay.len() + hits.len() * with.len());
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

/// Swaps placeholders and applies inject rules for a request to `host`.
/// Returns the names of the secrets whose values were put in.
pub fn apply(
    headers: &mut HeaderMap,
    view: &JobView,
    host: &str,
    prefix: &str,
    now: UnixTime,
) -> Result<Vec<String>, Refusal> {
    let mut used: Vec<String> = Vec::new();
    let mut replaced: Vec<(HeaderName, usize, HeaderValue)> = Vec::new();
    let names: Vec<HeaderName> = headers.keys().cloned().collect();
    for name in names {
        for (index, value) in headers.get_all(&name).iter().enumerate() {
            let mut bytes = value.as_bytes().to_vec();
            let mut changed = false;
            for b in &view.bindings {
                let Some(ph) = &b.placeholder else { continue };
                if find_all(&bytes, ph.as_bytes()).is_empty() {
                    continue;
                }
                if b.placeholder_expires_at <= now {
                    return Err(Refusal::ForeignPlaceholder);
                }
                if !host_allowed(&b.allowed_hosts, host) {
                    return Err(Refusal::PlaceholderNotAllowed {
                        host: host.to_string(),
                    });
                }
                if let Some(new) = replace_all(&bytes, ph.as_bytes(), b.value.expose()) {
                    bytes = new;
                }
                changed = true;
                if !used.contains(&b.secret) {
                    used.push(b.secret.clone());
                }
            }
            // Anything still shaped like a placeholder is someone else's.
            let visible: Vec<u8> = if changed {
                strip_values(&bytes, view)
            } else {
                bytes.clone()
            };
            if has_placeholder_shape(&visible, prefix) {
                return Err(Refusal::ForeignPlaceholder);
            }
            if changed {
                let v = HeaderValue::from_bytes(&bytes).map_err(|_| {
                    Refusal::Internal("a secret value is not a valid header value".into())
                })?;
                replaced.push((name.clone(), index, v));
            }
        }
    }
    for (name, index, value) in replaced {
        let mut all: Vec<HeaderValue> = headers.get_all(&name).iter().cloned().collect();
        if let Some(slot) = all.get_mut(index) {
            *slot = value;
        }
        headers.remove(&name);
        for v in all {
            headers.append(name.clone(), v);
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
        if !used.contains(&b.secret) {
            used.push(b.secret.clone());
        }
    }
    Ok(used)
}

/// The request target (path and query) is not rewritten, but a placeholder
/// in it is held to the same rule: the job's own placeholder only towards
/// a host it is bound to (and not expired), nothing placeholder-shaped
/// that is not the job's.
pub fn check_target_text(
    text: &str,
    view: &JobView,
    host: &str,
    prefix: &str,
    now: UnixTime,
) -> Result<(), Refusal> {
    let mut rest = text.as_bytes().to_vec();
    for b in &view.bindings {
        let Some(ph) = &b.placeholder else { continue };
        if find_all(&rest, ph.as_bytes()).is_empty() {
            continue;
        }
        if b.placeholder_expires_at <= now {
            return Err(Refusal::ForeignPlaceholder);
        }
        if !host_allowed(&b.allowed_hosts, host) {
            return Err(Refusal::PlaceholderNotAllowed {
                host: host.to_string(),
            });
        }
        rest = replace_all(&rest, ph.as_bytes(), b" ").unwrap_or(rest);
    }
    if has_placeholder_shape(&rest, prefix) {
        return Err(Refusal::ForeignPlaceholder);
    }
    Ok(())
}

/// `bytes` with the job's real values blanked, so a value that happens to
/// look like a placeholder is not mistaken for one.
fn strip_values(bytes: &[u8], view: &JobView) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for b in &view.bindings {
        if let Some(new) = replace_all(&out, b.value.expose(), b" ") {
            out = new;
        }
    }
    out
}

#[cfg(test)]
mod tests;
