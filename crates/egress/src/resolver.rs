//! Name resolution for the proxy: one trait, asked once per target.
//!
//! The proxy resolves a name exactly once, checks every answer, and
//! connects to one of the checked answers; nothing below it resolves
//! again (the socket is opened on an address, never a name). So a
//! rebinding resolver that answers public first and private later gains
//! nothing: the later answer is never asked for, and an answer holding
//! any private address refuses the whole name.
//!
//! [`StaticHosts`] (`egress.static_hosts`) answers configured names
//! before asking the system; its answers are checked like any other.
//! [`StubResolver`] replays scripted answers, for tests.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

#[async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// Every address `name` (a normalised DNS name) resolves to.
    async fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((name, 0)).await?;
        let mut out: Vec<IpAddr> = Vec::new();
        for a in addrs {
            if !out.contains(&a.ip()) {
                out.push(a.ip());
            }
        }
        Ok(out)
    }
}

/// `egress.static_hosts` in front of another resolver.
pub struct StaticHosts {
    hosts: HashMap<String, Vec<IpAddr>>,
    next: Arc<dyn Resolver>,
}

impl StaticHosts {
    /// `hosts` keys must be normalised names (lower case, no trailing dot).
    pub fn new(hosts: HashMap<String, Vec<IpAddr>>, next: Arc<dyn Resolver>) -> Self {
        Self { hosts, next }
    }
}

#[async_trait]
impl Resolver for StaticHosts {
    async fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        match self.hosts.get(name) {
            Some(addrs) => Ok(addrs.clone()),
            None => self.next.resolve(name).await,
        }
    }
}

/// Scripted answers per name, consumed in order (the last one repeats),
/// and a count of lookups, so tests can prove a name was asked once.
#[derive(Default, Clone)]
pub struct StubResolver {
    answers: Arc<Mutex<HashMap<String, VecDeque<Vec<IpAddr>>>>>,
    lookups: Arc<Mutex<Vec<String>>>,
}

impl StubResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one answer for `name`.
    pub fn answer(&self, name: &str, addrs: Vec<IpAddr>) -> &Self {
        if let Ok(mut map) = self.answers.lock() {
            map.entry(name.to_string()).or_default().push_back(addrs);
        }
        self
    }

    /// Names looked up so far, in order.
    pub fn lookups(&self) -> Vec<String> {
        self.lookups.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Resolver for StubResolver {
    async fn resolve(&self, name: &str) -> io::Result<Vec<IpAddr>> {
        if let Ok(mut l) = self.lookups.lock() {
            l.push(name.to_string());
        }
        let mut map = self
            .answers
            .lock()
            .map_err(|_| io::Error::other("stub poisoned"))?;
        let queue = map
            .get_mut(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such name"))?;
        let answer = if queue.len() > 1 {
            queue.pop_front()
        } else {
            queue.front().cloned()
        };
        answer.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no answer"))
    }
}
