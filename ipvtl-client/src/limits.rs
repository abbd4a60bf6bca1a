//! The process's limit of open files.

use std::io;
use std::sync::OnceLock;

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
/// Returns the soft limit as of that first call.
pub(crate) fn raise_fd_limit_once() -> u64 {
    static RAISED: OnceLock<u64> = OnceLock::new();
    *RAISED.get_or_init(|| {
        // Best effort: with the limit as it was, polling still works, up to
        // the number of descriptors it allows (taken as the usual 1 024).
        raise_fd_limit().unwrap_or(1024)
    })
}
