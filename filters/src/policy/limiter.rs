//! GCRA rate limits (governor), keyed by the op field the rule names in `per`.
//!
//! Keys are 64-bit SipHash digests of the field under a per-process random key, so a
//! lookup allocates nothing and clients cannot aim collisions at each other's buckets.

use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::op::Op;

/// Which field of the op a limit is counted per.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    ClientIp,
    Listener,
    Target,
    User,
    Op,
    /// The database (schema) of a SQL statement.
    Database,
    /// The normalized text of a SQL statement (its digest hash).
    Digest,
    /// The client's own name (Kafka's `client_id`).
    ClientId,
}

/// The time between two cells of a `count` per `period` limit, at least 1 ns.
fn emission_interval(count: NonZeroU32, period: Duration) -> Duration {
    (period / count.get()).max(Duration::from_nanos(1))
}

/// The largest burst allowed for a rate. Governor keeps the bucket's depth,
/// interval × (burst − 1), in a u64 of nanoseconds and adds timestamps to it, so the
/// depth is held to a quarter of that range (about 146 years).
pub fn max_burst(count: NonZeroU32, period: Duration) -> NonZeroU32 {
    let interval = u64::try_from(emission_interval(count, period).as_nanos()).unwrap_or(u64::MAX);
    let max = (u64::MAX / 4 / interval).saturating_add(1);
    NonZeroU32::new(u32::try_from(max).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
}

impl LimitKind {
    /// The name used for it in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::ClientIp => "client_ip",
            LimitKind::Listener => "listener",
            LimitKind::Target => "target",
            LimitKind::User => "user",
            LimitKind::Op => "op",
            LimitKind::Database => "database",
            LimitKind::Digest => "digest",
            LimitKind::ClientId => "client_id",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            LimitKind::ClientIp,
            LimitKind::Listener,
            LimitKind::Target,
            LimitKind::User,
            LimitKind::Op,
            LimitKind::Database,
            LimitKind::Digest,
            LimitKind::ClientId,
        ]
        .into_iter()
        .find(|k| k.as_str() == name)
    }
}

/// How the excess is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnLimit {
    Reject,
    /// Hold the op until its slot, unless that is further away than `max_delay`.
    Delay {
        max_delay: Duration,
    },
}

pub enum RateLimitError {
    Reject,
    RetryAfter(Duration),
}

pub struct RateLimit {
    per: LimitKind,
    on_limit: OnLimit,
    hasher: RandomState,
    limiter: RateLimiter<u64, DefaultKeyedStateStore<u64>, DefaultClock>,
    /// The most cells one check may take (a weighted check beyond it takes this many).
    burst: NonZeroU32,
    /// Cells are bytes (`cost: bytes`): an op takes as many as it is long.
    counts_bytes: bool,
    description: String,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl RateLimit {
    /// `count` operations per `period`, bursts of up to `burst`, counted `per` key.
    ///
    /// A burst larger than [`max_burst`] is clamped to it (configuration validation
    /// refuses such values first).
    pub fn new(count: NonZeroU32, period: Duration, burst: NonZeroU32, per: LimitKind, on_limit: OnLimit) -> Self {
        let burst = burst.min(max_burst(count, period));
        let quota =
            Quota::with_period(emission_interval(count, period)).expect("interval is non-zero").allow_burst(burst);
        RateLimit {
            per,
            on_limit,
            hasher: RandomState::new(),
            limiter: RateLimiter::dashmap(quota),
            burst,
            counts_bytes: false,
            description: format!("{count} per {period:?}, burst {burst}, per {per:?}, {on_limit:?}"),
        }
    }

    /// The same limit counted in bytes: each op takes as many cells as its size (Kafka
    /// produce quotas, `cost: bytes`).
    pub fn counting_bytes(mut self) -> Self {
        self.counts_bytes = true;
        self.description.push_str(", in bytes");
        self
    }

    /// Whether the cells of this limit are bytes.
    pub fn counts_bytes(&self) -> bool {
        self.counts_bytes
    }

    /// The cells an op of `bytes` bytes takes: 1, or its size for a limit in bytes.
    pub fn cost(&self, bytes: u64) -> NonZeroU32 {
        if !self.counts_bytes {
            return NonZeroU32::MIN;
        }
        NonZeroU32::new(u32::try_from(bytes).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN)
    }

    pub fn check(&self, op: &Op<'_>) -> Result<(), RateLimitError> {
        self.check_n(op, NonZeroU32::MIN)
    }

    /// As [`RateLimit::check`] for an op that takes `cost` cells (a limit counted in bytes:
    /// the op's size). A cost above the burst takes the whole burst, so an op larger than
    /// the bucket waits for a full bucket instead of never passing.
    pub fn check_n(&self, op: &Op<'_>, cost: NonZeroU32) -> Result<(), RateLimitError> {
        let key = self.key(op);
        let checked = self.limiter.check_key_n(&key, cost.min(self.burst)).unwrap_or(Ok(()));
        match checked {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                match self.on_limit {
                    OnLimit::Delay { max_delay } if wait <= max_delay => {
                        Err(RateLimitError::RetryAfter(wait.max(Duration::from_micros(1))))
                    }
                    _ => Err(RateLimitError::Reject),
                }
            }
        }
    }

    fn key(&self, op: &Op<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        match self.per {
            LimitKind::ClientIp => op.client.hash(&mut h),
            LimitKind::Listener => op.listener.hash(&mut h),
            LimitKind::Target => op.target.hash(&mut h),
            LimitKind::User => op.user.hash(&mut h),
            LimitKind::Database => op.database.hash(&mut h),
            LimitKind::Digest => op.statement.map(|s| s.digest_hash).hash(&mut h),
            LimitKind::ClientId => op.client_id.hash(&mut h),
            LimitKind::Op => {
                // Case-insensitive, like rule matching, without allocating.
                for b in op.op.bytes() {
                    h.write_u8(b.to_ascii_uppercase());
                }
            }
        }
        h.finish()
    }

    pub(super) fn housekeep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}
