//! The PostgreSQL session fed arbitrary client bytes, framed as a proxy frames them
//! (`peek` in `Session::phase(Direction::Frontend)`, then one message per feed): it never
//! panics, a framing error is decided by the header before any announced byte, nothing
//! allocates more than the input can justify (a length word alone allocates nothing),
//! and after the first error every feed answers `PgError::Failed`. See
//! `sluice_fuzz::postgres` for the checks on every feed.
//!
//! Input: the first byte picks the limits (bit 0: small ones, so limit errors are reached)
//! and, in bits 1..=3, the opening the client bytes continue from (a fresh session, SASL or
//! MD5 requested, running, in copy-in, skipping to Sync after an error, an SSLRequest
//! pending, running in a transaction with a named statement and portal: see
//! `frontend_opening`); the rest is the client's byte stream.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_codecs::postgres::Direction;
use sluice_fuzz::alloc::{assert_bounded_by, reset_largest, LargestAlloc};
use sluice_fuzz::postgres::{frontend_opening, limits};

#[global_allocator]
static ALLOC: LargestAlloc = LargestAlloc;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let mut run = frontend_opening(mode >> 1, limits(mode & 1 == 1));
    reset_largest();
    run.drive(Direction::Frontend, input);
    assert_bounded_by(input.len());
    run.check_stopped();
});
