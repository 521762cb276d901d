//! Keeping the process small: fewer allocator arenas, and freed memory handed back.

/// Limits glibc to two malloc arenas. By default every thread that meets contention gets its
/// own (up to eight per core), and the sync's short-lived copies then leave memory spread over
/// arenas no other thread reuses. Called once, first thing at start-up.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting; M_ARENA_MAX is a documented option.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Gives back memory a large round of work freed. A sync holds the organization several times
/// over for a moment (the read, the merge, the rows to store) and glibc keeps what is freed in
/// per-thread arenas, so without this the process would keep its peak size for good.
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no live
    // allocation and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
