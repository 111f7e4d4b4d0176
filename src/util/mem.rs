//! The process's memory allocator.

/// Caps the C library's malloc arenas at `workers` (at least 2), on Linux
/// with glibc; elsewhere it does nothing. Call it before threads start.
///
/// glibc gives threads up to eight arenas a core and keeps what a thread
/// freed in its arena: with Typst laying out on the workers and on its own
/// threads, the freed memory is spread over many arenas and the process
/// grows while the live heap stays small. Measured on 20,000 welcome
/// letters with `--print` (2 cores, 2 workers): live heap at most 60 MB;
/// peak RSS 192 MB with glibc's default and with 4 arenas, 138 MB with 2
/// (and 3% less CPU); one arena costs 35% more time in lock waits.
pub fn cap_malloc_arenas(workers: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let n = i32::try_from(workers.max(2)).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets a tunable of the allocator.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, n);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = workers;
}

/// Turns transparent huge pages off for this process (Linux; elsewhere it
/// does nothing), as `MIMALLOC_ALLOW_THP=0` would: call it first thing in
/// `main` of a program whose global allocator is mimalloc.
///
/// Where the system allows them (`madvise` or `always`), mimalloc asks for
/// huge pages, and the kernel then backs each 2 MiB page whole as soon as
/// one byte of it is touched. Typst's caches are many small objects freed
/// in waves, so the pages are mostly empty: 2,000 letters peaked at 117 MiB
/// with them and 82 MiB without, 2,000 statements at 190 and 161 MiB, at
/// the same CPU time (A/B pairs, ratios 0.99 and 1.01).
pub fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets a flag on this
    // process's memory map that the kernel checks at each page fault.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Returns the allocators' free memory to the system: mimalloc's (with
/// the `mimalloc` feature) and glibc's (`malloc_trim`, on Linux with
/// glibc). Called where Typst's memoised results are evicted.
pub fn trim() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: mi_collect only returns free memory to the system.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's resident memory in bytes (Linux: `/proc/self/statm`);
/// `None` where it cannot be read.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system setting.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
