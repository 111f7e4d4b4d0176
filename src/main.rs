//! The `letterpress` binary; everything is in [`cli`].

mod cli;
#[cfg(feature = "review")]
mod review;
#[cfg(feature = "serve")]
mod serve;
#[cfg(any(feature = "review", feature = "serve"))]
mod web;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // mimalloc with huge pages keeps a third more memory for nothing.
    #[cfg(feature = "mimalloc")]
    letterpress::util::mem::no_transparent_huge_pages();
    cli::main()
}
