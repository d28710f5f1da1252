//! The PostgreSQL session fed arbitrary server bytes after a fixed client opening, framed
//! as a proxy frames them (`peek` in `Session::phase(Direction::Backend)`, then one
//! message per feed): it never panics, a framing error is decided by the header before any
//! announced byte, nothing allocates more than the input can justify, and after the first
//! error every feed answers `PgError::Failed`. See `sluice_fuzz::postgres` for the checks
//! on every feed.
//!
//! Input: the first byte picks the limits (bit 0: small ones) and, in bits 1..=3, the
//! client messages already sent, so the server bytes meet states beyond start-up:
//! authentication, an SSLRequest's one-byte answer, pipelined simple Queries, extended
//! batches (unnamed, and prepared as pgbench sends them), copy-in, copy-out and a mixed
//! pipeline (see `backend_opening`); the rest is the server's byte stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_codecs::postgres::Direction;
use sluice_fuzz::alloc::{assert_bounded_by, reset_largest, LargestAlloc};
use sluice_fuzz::postgres::{backend_opening, limits};

#[global_allocator]
static ALLOC: LargestAlloc = LargestAlloc;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let mut run = backend_opening(mode >> 1, limits(mode & 1 == 1));
    reset_largest();
    run.drive(Direction::Backend, input);
    assert_bounded_by(input.len());
    run.check_stopped();
});
