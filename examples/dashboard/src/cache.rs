//! The `GET /api/servers` body, serialized once per change and shared by
//! every request as a `Bytes` clone.
//!
//! Two rules keep it honest:
//!
//! - **Read your writes.** A handler that changes the fleet (reload,
//!   maintenance, refresh, an action) calls [`ServersCache::mark_changed`]
//!   before it answers. A body whose snapshot was taken before that mark is
//!   stale and is never served: the next request rebuilds it first (once,
//!   for every request waiting on it; [`ServersCache::fresh`]).
//! - **Newer wins.** Every body carries a ticket taken together with its
//!   snapshot, under one lock, so tickets order snapshots. A rebuild installs
//!   its body only over an older ticket: a slow rebuild from an old snapshot
//!   never replaces a body built from a newer one.
//!
//! The ticket is also the body's generation, served as its ETag.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;

/// One serialized fleet.
#[derive(Debug)]
pub(crate) struct CachedBody {
    pub bytes: Bytes,
    /// The ticket of the snapshot it was built from; served as the ETag.
    pub generation: u64,
}

#[derive(Debug)]
pub(crate) struct ServersCache {
    current: Mutex<Arc<CachedBody>>,
    /// The last ticket handed out. Held while a snapshot is taken, so
    /// ticket order is snapshot order.
    tickets: Mutex<u64>,
    /// The oldest ticket a body may have and still be served.
    wanted: AtomicU64,
    /// One request-driven rebuild at a time; the others wait and reuse it.
    building: Mutex<()>,
    /// Bodies installed (the first included).
    rebuilds: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ServersCache {
    /// A cache holding `bytes`, the body of the state as of now.
    pub fn new(bytes: Bytes) -> Self {
        ServersCache {
            current: Mutex::new(Arc::new(CachedBody { bytes, generation: 1 })),
            tickets: Mutex::new(1),
            wanted: AtomicU64::new(1),
            building: Mutex::new(()),
            rebuilds: AtomicU64::new(1),
        }
    }

    /// The body installed last, fresh or not.
    pub fn get(&self) -> Arc<CachedBody> {
        lock(&self.current).clone()
    }

    /// True when `body` was built from a snapshot taken before the last
    /// [`mark_changed`](Self::mark_changed).
    pub fn is_stale(&self, body: &CachedBody) -> bool {
        body.generation < self.wanted.load(Ordering::SeqCst)
    }

    /// Records that the fleet has just changed (call it after the change,
    /// before answering): from now on only a body built from a later
    /// snapshot is served.
    pub fn mark_changed(&self) {
        let last = lock(&self.tickets);
        self.wanted.fetch_max(*last + 1, Ordering::SeqCst);
    }

    /// Takes a snapshot with `take` (under the ticket lock: keep it cheap),
    /// renders it with `render` (outside it), and installs the body unless
    /// one from a newer snapshot is already there. Returns the snapshot.
    pub fn rebuild<S>(&self, take: impl FnOnce() -> S, render: impl FnOnce(&S) -> Bytes) -> S {
        let (ticket, snapshot) = {
            let mut last = lock(&self.tickets);
            *last += 1;
            (*last, take())
        };
        let bytes = render(&snapshot);
        let mut current = lock(&self.current);
        if ticket > current.generation {
            *current = Arc::new(CachedBody { bytes, generation: ticket });
            self.rebuilds.fetch_add(1, Ordering::Relaxed);
        }
        snapshot
    }

    /// A body that is not stale: the installed one, or one rebuilt now
    /// (blocking; one rebuild serves every request waiting for it).
    pub fn fresh<S>(&self, take: impl FnOnce() -> S, render: impl FnOnce(&S) -> Bytes) -> Arc<CachedBody> {
        let body = self.get();
        if !self.is_stale(&body) {
            return body;
        }
        let _one_at_a_time = lock(&self.building);
        let body = self.get();
        if !self.is_stale(&body) {
            return body;
        }
        self.rebuild(take, render);
        self.get()
    }

    /// Bodies installed so far (the first included).
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// A stand-in fleet: a counter of changes.
    fn body(n: u32) -> Bytes {
        Bytes::from(n.to_string())
    }

    #[test]
    fn a_change_makes_the_body_stale_until_a_later_snapshot_is_installed() {
        let fleet = AtomicU32::new(0);
        let cache = ServersCache::new(body(0));
        assert!(!cache.is_stale(&cache.get()));
        fleet.store(1, Ordering::SeqCst);
        cache.mark_changed();
        assert!(cache.is_stale(&cache.get()), "built before the change");
        let served = cache.fresh(|| fleet.load(Ordering::SeqCst), |n| body(*n));
        assert_eq!(served.bytes, body(1));
        assert!(!cache.is_stale(&served));
        assert_eq!(cache.rebuilds(), 2);
        // Fresh again: no rebuild for the next reads.
        let again = cache.fresh(|| unreachable!("no rebuild"), |_: &u32| unreachable!());
        assert_eq!(again.generation, served.generation);
        assert_eq!(cache.rebuilds(), 2);
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_body() {
        let cache = ServersCache::new(body(0));
        // A slow rebuild takes its snapshot (0), then renders while the
        // fleet changes and a quick rebuild installs the newer body (1).
        let slow = cache.rebuild(
            || 0u32,
            |n| {
                let quick = cache.rebuild(|| 1u32, |n| body(*n));
                assert_eq!(quick, 1);
                body(*n)
            },
        );
        assert_eq!(slow, 0);
        assert_eq!(cache.get().bytes, body(1), "the newer snapshot stays");
        assert_eq!(cache.rebuilds(), 2, "the older body was dropped");
    }

    #[test]
    fn a_snapshot_taken_before_a_change_is_stale_even_if_installed_after_it() {
        let cache = ServersCache::new(body(0));
        cache.rebuild(
            || 0u32,
            |n| {
                // The change and its mark land while the old snapshot renders.
                cache.mark_changed();
                body(*n)
            },
        );
        assert_eq!(cache.rebuilds(), 2);
        assert!(cache.is_stale(&cache.get()), "installed, but from before the change");
        assert_eq!(cache.fresh(|| 1u32, |n| body(*n)).bytes, body(1));
    }

    #[test]
    fn concurrent_readers_after_a_change_share_one_rebuild() {
        let cache = Arc::new(ServersCache::new(body(0)));
        cache.mark_changed();
        let renders = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, renders) = (cache.clone(), renders.clone());
                std::thread::spawn(move || {
                    cache
                        .fresh(
                            || 1u32,
                            |n| {
                                renders.fetch_add(1, Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(20));
                                body(*n)
                            },
                        )
                        .bytes
                        .clone()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), body(1));
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }
}
