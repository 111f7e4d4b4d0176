//! Helpers that know nothing of letters: digests, atomic files, JSON
//! Lines logs, dates, locks, the allocator's arenas, the stop flag, a seeded random generator, HTML escaping, counts in words. The
//! bottom of the data path: nothing here imports another part of the crate
//! but [`crate::error`].

pub mod clock;
pub mod digest;
pub mod fs;
pub mod html;
pub mod jsonl;
pub mod lock;
pub mod mem;
pub mod rng;
pub mod stop;
pub mod text;
