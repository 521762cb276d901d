//! Handing freed memory back to the system.

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
