//! Allocation counts on the PostgreSQL hot path, with a counting global allocator (which is
//! why this is its own test binary). Once a statement is known, a pgbench round of the
//! extended protocol (Parse/Bind/Describe/Execute/Sync and ParseComplete, BindComplete,
//! RowDescription, DataRow, CommandComplete, ReadyForQuery), its prepared variant and a
//! simple Query cycle go through `peek` and the session without allocating; a header
//! announcing a huge message allocates nothing either. The rounds are the captured ones in
//! fixtures/postgres.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sluice_codecs::postgres::{peek, Direction, PgLimits, Phase, Session, State};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to `System` unchanged; counting touches only a const-initialized
// thread-local `Cell`, which neither allocates nor re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations made by this thread while running `f`.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/postgres");

/// The typed messages of one direction of a capture (after the client's startup packet).
fn messages(name: &str, client: bool) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}.{}", if client { "client" } else { "server" })).unwrap();
    let limits = PgLimits::default();
    let mut at = if client { peek(&bytes, Phase::Startup, &limits).unwrap().unwrap() } else { 0 };
    let mut out = vec![];
    while let Some(n) = peek(&bytes[at..], Phase::Typed, &limits).unwrap() {
        out.push(bytes[at..at + n].to_vec());
        at += n;
    }
    out
}

/// One round of a capture: the client's messages from the first with a tag in `first`
/// through its first Sync or Query, and the server's answers from after its first
/// ReadyForQuery through the next.
fn round(name: &str, first: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let client = messages(name, true);
    let start = client.iter().position(|m| first.contains(&m[0])).unwrap();
    let end = start + client[start..].iter().position(|m| m[0] == b'S' || m[0] == b'Q').unwrap();
    let server = messages(name, false);
    let ready = server.iter().position(|m| m[0] == b'Z').unwrap() + 1;
    let next = ready + server[ready..].iter().position(|m| m[0] == b'Z').unwrap();
    (client[start..=end].to_vec(), server[ready..=next].to_vec())
}

fn running() -> Session {
    let mut s = Session::new(PgLimits::default());
    let mut startup = 16u32.to_be_bytes().to_vec();
    startup.extend_from_slice(b"\0\x03\0\0user\0u\0\0");
    s.feed_frontend(&startup).unwrap();
    s.feed_backend(b"R\0\0\0\x08\0\0\0\0").unwrap();
    s.feed_backend(b"Z\0\0\0\x05I").unwrap();
    assert_eq!(s.state(), State::Running);
    s
}

/// Frames and feeds one round as a proxy does (the messages laid end to end in one
/// buffer per direction), returning how many messages went through.
fn feed_round(s: &mut Session, client: &[u8], server: &[u8]) -> usize {
    let limits = PgLimits::default();
    let mut fed = 0;
    for (dir, bytes) in [(Direction::Frontend, client), (Direction::Backend, server)] {
        let mut at = 0;
        while let Some(n) = peek(&bytes[at..], s.phase(dir), &limits).unwrap() {
            let m = &bytes[at..at + n];
            match dir {
                Direction::Frontend => s.feed_frontend(m).unwrap(),
                Direction::Backend => s.feed_backend(m).unwrap(),
            };
            at += n;
            fed += 1;
        }
        assert_eq!(at, bytes.len());
    }
    fed
}

fn assert_rounds_allocate_nothing(s: &mut Session, client: Vec<Vec<u8>>, server: Vec<Vec<u8>>) {
    let per_round = client.len() + server.len();
    let (client, server) = (client.concat(), server.concat());
    // The first rounds learn the statement and grow the queue and maps.
    for _ in 0..2 {
        feed_round(s, &client, &server);
    }
    let mut fed = 0;
    let n = allocations(|| {
        for _ in 0..100 {
            fed += feed_round(s, &client, &server);
        }
    });
    assert_eq!(fed, 100 * per_round);
    assert_eq!(n, 0, "{n} allocations for {fed} messages");
    assert!(!s.waiting_for_server());
}

#[test]
fn pgbench_extended_rounds_allocate_nothing() {
    let (client, server) = round("pgbench_extended", b"P");
    let tags: Vec<u8> = client.iter().chain(&server).map(|m| m[0]).collect();
    assert_eq!(tags, b"PBDES12TDCZ");
    assert_rounds_allocate_nothing(&mut running(), client, server);
}

#[test]
fn pgbench_prepared_rounds_allocate_nothing() {
    // The named statement is parsed once, before the rounds.
    let mut s = running();
    let (parse, answer) = round("pgbench_prepared", b"P");
    feed_round(&mut s, &parse.concat(), &answer.concat());
    let client = messages("pgbench_prepared", true);
    let start = client.iter().position(|m| m[0] == b'B').unwrap();
    let server = messages("pgbench_prepared", false);
    let start_answer = server.iter().position(|m| m[0] == b'2').unwrap();
    let (client, server) = (client[start..start + 4].to_vec(), server[start_answer..start_answer + 5].to_vec());
    let tags: Vec<u8> = client.iter().chain(&server).map(|m| m[0]).collect();
    assert_eq!(tags, b"BDES2TDCZ");
    assert_rounds_allocate_nothing(&mut s, client, server);
}

#[test]
fn simple_query_rounds_allocate_nothing() {
    let (client, server) = round("psql_simple", b"Q");
    let tags: Vec<u8> = client.iter().chain(&server).map(|m| m[0]).collect();
    assert_eq!(tags, b"QTDCZ");
    assert_rounds_allocate_nothing(&mut running(), client, server);
}

#[test]
fn a_length_word_alone_allocates_nothing() {
    let limits = PgLimits::default();
    let s = running();
    let n = allocations(|| {
        // 60 MiB announced (within the limit: waited for), 2 GiB (refused).
        assert_eq!(peek(b"D\x03\xc0\0\0\0\x01", s.phase(Direction::Backend), &limits), Ok(None));
        assert!(peek(b"D\x7f\xff\xff\xff", Phase::Typed, &limits).is_err());
        assert_eq!(peek(b"\0\0\x27\x10\0\x03", Phase::Startup, &limits), Ok(None));
    });
    assert_eq!(n, 0);
}
