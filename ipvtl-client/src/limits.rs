//! The process's limit of open files.

use std::io;
use std::sync::Once;

/// Raises this process's soft limit of open files (`RLIMIT_NOFILE`) to its
/// hard limit, and returns the soft limit now in force.
///
/// Every poll in flight and every connection kept for reuse holds a file
/// descriptor, and many systems start a process with a soft limit of 1 024:
/// too few for a fleet of thousands of servers, or for a dashboard that
/// also serves its clients. The hard limit is the ceiling a process may
/// raise itself to without privilege (on macOS, `kern.maxfilesperproc` as
/// well). It never lowers a limit; calling it again is harmless.
/// [`crate::Cluster::new`] calls it once per process; a program that wants
/// the raise before anything else opens files calls it first thing.
///
/// Where descriptors run out all the same, polls fail with an `io` or
/// `connect` error that says so, and the cluster goes on polling.
///
/// On a platform without such a limit it does nothing and returns
/// `u64::MAX`.
pub fn raise_fd_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// [`raise_fd_limit`], the first time only: a program that lowers its limit
/// on purpose later keeps it, whatever clusters it starts afterwards.
pub(crate) fn raise_fd_limit_once() {
    static RAISED: Once = Once::new();
    RAISED.call_once(|| {
        // Best effort: with the limit as it was, polling still works, up to
        // the number of descriptors it allows.
        let _ = raise_fd_limit();
    });
}
