//! Which owner each job belongs to, as recorded at the job's creation.
//!
//! Bounded (oldest entries leave first), filled when a job is created, and
//! on a miss filled from the store in one round trip. A job the store does
//! not know is never cached: there is no default owner to fall back to.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use gatehouse_domain::Email;
use gatehouse_store::{Store, StoreError};

pub const DEFAULT_CAPACITY: usize = 10_000;

pub struct OwnerCache {
    capacity: usize,
    inner: Mutex<(HashMap<String, Email>, VecDeque<String>)>,
}

impl OwnerCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut (HashMap<String, Email>, VecDeque<String>)) -> T) -> T {
        match self.inner.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    pub fn insert(&self, job_id: &str, owner: &Email) {
        let capacity = self.capacity;
        self.with(|(map, order)| {
            if map.insert(job_id.to_string(), owner.clone()).is_none() {
                order.push_back(job_id.to_string());
            }
            while map.len() > capacity {
                match order.pop_front() {
                    Some(oldest) => {
                        map.remove(&oldest);
                    }
                    None => break,
                }
            }
        });
    }

    pub fn get(&self, job_id: &str) -> Option<Email> {
        self.with(|(map, _)| map.get(job_id).cloned())
    }

    pub fn len(&self) -> usize {
        self.with(|(map, _)| map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The job's owner: from the cache, or from the store on a miss.
    pub async fn resolve(
        &self,
        store: &dyn Store,
        job_id: &str,
    ) -> Result<Option<Email>, StoreError> {
        if let Some(owner) = self.get(job_id) {
            return Ok(Some(owner));
        }
        let owner = store.job_owner(job_id).await?;
        if let Some(o) = &owner {
            self.insert(job_id, o);
        }
        Ok(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_holds_under_fifty_thousand_jobs() {
        let cache = OwnerCache::new(10_000);
        let owner = Email::parse("a@x.org").unwrap();
        for i in 0..50_000 {
            cache.insert(&format!("job-{i}"), &owner);
            assert!(cache.len() <= 10_000);
        }
        assert_eq!(cache.len(), 10_000);
        assert!(cache.get("job-0").is_none(), "oldest evicted");
        assert_eq!(cache.get("job-49999"), Some(owner));
    }

    #[test]
    fn reinserting_does_not_grow_the_order_queue() {
        let cache = OwnerCache::new(2);
        let a = Email::parse("a@x.org").unwrap();
        for _ in 0..10 {
            cache.insert("j1", &a);
        }
        cache.insert("j2", &a);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("j1").is_some());
    }
}
