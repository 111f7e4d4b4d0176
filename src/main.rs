//! The `letterpress` binary; everything is in [`cli`].

mod cli;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(all(feature = "mimalloc", target_os = "linux"))]
    no_transparent_huge_pages();
    cli::main()
}

/// Where the system allows transparent huge pages (`madvise` or `always`),
/// mimalloc asks for them, and the kernel then backs each 2 MiB page whole
/// as soon as one byte of it is touched. Typst's caches are many small
/// objects freed in waves, so the pages are mostly empty: 2,000 letters
/// peaked at 117 MiB with them and 82 MiB without, 2,000 statements at
/// 190 and 161 MiB, at the same CPU time (A/B pairs, ratios 0.99 and
/// 1.01). They are turned off for this process only, as
/// `MIMALLOC_ALLOW_THP=0` would (mimalloc reads that before `main`).
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes no pointers; it sets a flag on this
    // process's memory map that the kernel checks at each page fault.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
