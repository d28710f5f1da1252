//! A global allocator that remembers the largest single allocation, so a target can check
//! that nothing was sized by a length field whose bytes never arrived (the PostgreSQL
//! targets: a 5-byte header announcing 60 MiB must not make anything allocate 60 MiB).
//!
//! A target opts in with `#[global_allocator] static ALLOC: LargestAlloc = LargestAlloc;`
//! and brackets each input with [`reset_largest`] and [`largest`]. libFuzzer's own (C++)
//! allocations do not go through it. The wrapper only forwards to `System`; the `unsafe`
//! is the `GlobalAlloc` contract itself, and it lives in the fuzz harness, not in sluice.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static LARGEST: AtomicUsize = AtomicUsize::new(0);

pub struct LargestAlloc;

fn note(size: usize) {
    LARGEST.fetch_max(size, Ordering::Relaxed);
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a relaxed atomic max of the requested size.
unsafe impl GlobalAlloc for LargestAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

/// Forgets the largest allocation seen so far.
pub fn reset_largest() {
    LARGEST.store(0, Ordering::Relaxed);
}

/// The largest single allocation (or reallocation's new size) since [`reset_largest`].
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// Checks that no single allocation since [`reset_largest`] exceeds what `input_len` bytes
/// can justify: a small constant plus 32 bytes per input byte (hash tables and queues grow
/// by doubling, and their entries are bigger than the bytes that created them).
pub fn assert_bounded_by(input_len: usize) {
    let largest = largest();
    let bound = 4096 + 32 * input_len;
    assert!(largest <= bound, "an allocation of {largest} bytes from {input_len} input bytes (bound {bound})");
}
