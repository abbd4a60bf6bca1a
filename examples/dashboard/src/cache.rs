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
//!
//! With the body lives its index ([`ListIndex`]: each server's fragment and
//! what the filters read) and, made on first demand and at most once per
//! body, its gzip and br variants ([`ServersCache::encoded`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;

use crate::list::{Encoding, ListIndex, Rendered};

/// One serialized fleet.
#[derive(Debug)]
pub(crate) struct CachedBody {
    pub bytes: Bytes,
    /// The ticket of the snapshot it was built from; served as the ETag.
    pub generation: u64,
    /// Each server's fragment of `bytes`, what filters read, and the
    /// compressed variants once made.
    pub index: ListIndex,
}

impl CachedBody {
    fn new(rendered: Rendered, generation: u64) -> Self {
        CachedBody { bytes: rendered.bytes, generation, index: ListIndex::new(rendered.servers) }
    }
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
    /// Whole bodies compressed (each encoding counts).
    compressions: AtomicU64,
    /// Per encoding (gzip, br), the newest body compressed: its generation
    /// and bytes. Served while a newer body is being compressed, if that
    /// one is not stale.
    latest: Mutex<[Option<(u64, Bytes)>; 2]>,
    /// When the list was last asked for: milliseconds since `born`, plus
    /// one (0: never).
    read_at: AtomicU64,
    born: Instant,
}

/// The whole body in one encoding, as [`ServersCache::variant`] found it.
pub(crate) enum Variant {
    /// Ready: this generation's bytes.
    Ready(u64, Bytes),
    /// This body's variant is not made yet, and an older one that is not
    /// stale is: serve it meanwhile.
    Meanwhile(u64, Bytes),
    /// Nothing to serve yet: wait for this body's variant
    /// ([`ServersCache::encoded`]).
    Wait,
}

/// What [`ServersCache::variant`] found, and whether the caller is the
/// first to ask for this body's variant: then it starts making it, on a
/// task of its own that a dropped request does not cancel.
pub(crate) struct Found {
    pub variant: Variant,
    pub first: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where `encoding`'s newest variant is kept in `ServersCache::latest`.
fn latest_index(encoding: Encoding) -> Option<usize> {
    match encoding {
        Encoding::Identity => None,
        Encoding::Gzip => Some(0),
        Encoding::Br => Some(1),
    }
}

impl ServersCache {
    /// A cache holding `body`, the body of the state as of now.
    pub fn new(body: impl Into<Rendered>) -> Self {
        ServersCache {
            current: Mutex::new(Arc::new(CachedBody::new(body.into(), 1))),
            tickets: Mutex::new(1),
            wanted: AtomicU64::new(1),
            building: Mutex::new(()),
            rebuilds: AtomicU64::new(1),
            compressions: AtomicU64::new(0),
            latest: Mutex::new([None, None]),
            read_at: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// Records that a client asked for the list now (see
    /// [`read_within`](Self::read_within)).
    pub fn note_read(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.read_at.store(ms + 1, Ordering::Relaxed);
    }

    /// True when a client asked for the list within `window`: someone is
    /// watching, so bodies are worth making ahead of their requests.
    pub fn read_within(&self, window: Duration) -> bool {
        match self.read_at.load(Ordering::Relaxed) {
            0 => false,
            at => self.born.elapsed().as_millis() < u128::from(at - 1) + window.as_millis(),
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

    /// Marks the body stale ([`mark_changed`](Self::mark_changed)) and lets
    /// its bytes go: nobody reads the list, so none is kept (at fleet size
    /// the body and its variants are a few KiB a server). The next request
    /// renders a new one.
    pub fn release(&self) {
        self.mark_changed();
        let mut current = lock(&self.current);
        if !current.bytes.is_empty() && self.is_stale(&current) {
            *current = Arc::new(CachedBody::new(Rendered::empty(), current.generation));
        }
        drop(current);
        *lock(&self.latest) = [None, None];
    }

    /// Takes a snapshot with `take` (under the ticket lock: keep it cheap),
    /// renders it with `render` (outside it), and installs the body unless
    /// one from a newer snapshot is already there. Returns the snapshot.
    pub fn rebuild<S, R: Into<Rendered>>(&self, take: impl FnOnce() -> S, render: impl FnOnce(&S) -> R) -> S {
        let (ticket, snapshot) = {
            let mut last = lock(&self.tickets);
            *last += 1;
            (*last, take())
        };
        let rendered = render(&snapshot).into();
        let mut current = lock(&self.current);
        if ticket > current.generation {
            *current = Arc::new(CachedBody::new(rendered, ticket));
            self.rebuilds.fetch_add(1, Ordering::Relaxed);
        }
        snapshot
    }

    /// A body that is not stale: the installed one, or one rebuilt now
    /// (blocking; one rebuild serves every request waiting for it).
    pub fn fresh<S, R: Into<Rendered>>(
        &self,
        take: impl FnOnce() -> S,
        render: impl FnOnce(&S) -> R,
    ) -> Arc<CachedBody> {
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

    /// `body` compressed in `encoding` (identity: the body itself): made by
    /// the first caller, at most once per body and encoding; concurrent
    /// callers wait for that one and share it. Blocks while compressing:
    /// call it off the executor unless [`ListIndex::encoded`] has it.
    pub fn encoded(&self, body: &CachedBody, encoding: Encoding) -> Bytes {
        let Some(slot) = body.index.slot(encoding) else { return body.bytes.clone() };
        slot.get_or_init(|| {
            self.compressions.fetch_add(1, Ordering::Relaxed);
            let bytes = crate::list::compress(encoding, &body.bytes);
            if let Some(k) = latest_index(encoding) {
                let latest = &mut lock(&self.latest)[k];
                if latest.as_ref().is_none_or(|(generation, _)| *generation < body.generation) {
                    *latest = Some((body.generation, bytes.clone()));
                }
            }
            bytes
        })
        .clone()
    }

    /// What to serve of `body` (installed, not stale) in `encoding`
    /// (compressed): its variant if made; else, while it is made, the
    /// newest variant of an older body that is not stale, so compressing a
    /// large fleet after each sweep does not hold up every client polling
    /// it. A change made through the API ([`mark_changed`](Self::mark_changed))
    /// makes older variants stale: then requests wait for the new one.
    pub fn variant(&self, body: &CachedBody, encoding: Encoding) -> Found {
        if let Some(bytes) = body.index.encoded(encoding) {
            return Found { variant: Variant::Ready(body.generation, bytes), first: false };
        }
        let first = body.index.start(encoding);
        let wanted = self.wanted.load(Ordering::SeqCst);
        if let Some(k) = latest_index(encoding) {
            if let Some((generation, bytes)) = &lock(&self.latest)[k] {
                if *generation >= wanted && *generation < body.generation {
                    return Found { variant: Variant::Meanwhile(*generation, bytes.clone()), first };
                }
            }
        }
        Found { variant: Variant::Wait, first }
    }

    /// Whole bodies compressed so far (each encoding counts).
    pub fn compressions(&self) -> u64 {
        self.compressions.load(Ordering::Relaxed)
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
        let again = cache.fresh(|| unreachable!("no rebuild"), |_: &u32| -> Bytes { unreachable!() });
        assert_eq!(again.generation, served.generation);
        assert_eq!(cache.rebuilds(), 2);
    }

    #[test]
    fn a_released_body_is_gone_and_the_next_request_renders_one() {
        let cache = ServersCache::new(body(7));
        let held = cache.get();
        cache.release();
        assert!(cache.get().bytes.is_empty(), "nobody reads the list: no body kept");
        assert!(cache.is_stale(&cache.get()));
        assert_eq!(held.bytes, body(7), "a request that had it still serves it");
        let served = cache.fresh(|| 8, |n| body(*n));
        assert_eq!(served.bytes, body(8));
        assert!(served.generation > held.generation);
        assert!(!cache.is_stale(&cache.get()), "and keeps it while it is fresh");
        assert_eq!(cache.get().bytes, body(8));
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
    fn an_older_compressed_body_is_served_while_a_newer_one_is_made_unless_stale() {
        let cache = ServersCache::new(body(0));
        let first = cache.get();
        let br = cache.encoded(&first, Encoding::Br);
        assert_eq!(cache.compressions(), 1);
        // A sweep (no change through the API): the old variant may stand in.
        cache.rebuild(|| 1u32, |n| body(*n));
        let second = cache.get();
        let found = cache.variant(&second, Encoding::Br);
        assert!(found.first, "the first to ask starts compressing");
        assert!(matches!(found.variant, Variant::Meanwhile(1, ref b) if *b == br));
        let found = cache.variant(&second, Encoding::Br);
        assert!(!found.first);
        assert!(matches!(found.variant, Variant::Meanwhile(1, _)));
        assert!(matches!(cache.variant(&second, Encoding::Gzip).variant, Variant::Wait), "no gzip yet");
        cache.encoded(&second, Encoding::Br);
        assert!(matches!(cache.variant(&second, Encoding::Br).variant, Variant::Ready(2, _)));
        assert_eq!(cache.compressions(), 2);
        // A change through the API: older variants are stale.
        cache.mark_changed();
        cache.rebuild(|| 2u32, |n| body(*n));
        let third = cache.get();
        assert!(matches!(cache.variant(&third, Encoding::Br).variant, Variant::Wait));
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
