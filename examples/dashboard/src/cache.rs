//! The `GET /api/servers` body, serialized once per change burst and shared
//! by every request as a `Bytes` clone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;

/// One serialized fleet.
#[derive(Debug)]
pub(crate) struct CachedBody {
    pub bytes: Bytes,
    /// Increases with every rebuild; served as the ETag.
    pub generation: u64,
}

#[derive(Debug)]
pub(crate) struct ServersCache {
    current: Mutex<Arc<CachedBody>>,
    rebuilds: AtomicU64,
}

impl ServersCache {
    pub fn new(bytes: Bytes) -> Self {
        ServersCache { current: Mutex::new(Arc::new(CachedBody { bytes, generation: 1 })), rebuilds: AtomicU64::new(1) }
    }

    pub fn get(&self) -> Arc<CachedBody> {
        self.current.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, bytes: Bytes) {
        let generation = self.rebuilds.fetch_add(1, Ordering::Relaxed) + 1;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(CachedBody { bytes, generation });
    }

    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }
}
