//! Keeping the process small: fewer allocator arenas, and freed memory handed back. Rust's
//! allocations go through mimalloc (the binary's global allocator); SQLite's through glibc.

/// mimalloc 3's options by their position in `mi_option_t` (its mimalloc.h), which the Rust
/// binding does not name; a test checks each against its default.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Limits glibc to two malloc arenas. By default every thread that meets contention gets its
/// own (up to eight per core), and the sync's short-lived copies then leave memory spread over
/// arenas no other thread reuses. Called once, first thing at start-up.
pub fn configure() {
    // mimalloc: freed memory goes back to the system at once (by default after a second, and
    // ten times that for its arenas), and arena memory is committed as it is used. Measured on
    // the `large` demo: 220 MB resident after the first read with the defaults, 122 MB with
    // these.
    // SAFETY: mi_option_set only changes a setting of the allocator; both are documented.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
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
    crate::anthropic::shared::purge();
    // SAFETY: mi_collect frees and purges only what mimalloc holds unused.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it touches no live
    // allocation and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_numbers_are_mimallocs_purge_delay_and_arena_commit() {
        // Their defaults in mimalloc 3 (options.c): a purge after 1000 ms; eager arena commit
        // "2", on systems that overcommit. Tests never call `configure`.
        // SAFETY: mi_option_get only reads a setting.
        unsafe {
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 1000);
            assert_eq!(libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT), 2);
        }
    }
}
