//! Retries: which requests may be sent again, on what, and how many at once.
//!
//! A request is retried only when sending it twice is safe and possible: its method is
//! idempotent (RFC 9110 §9.2.2: GET, HEAD, OPTIONS, PUT, DELETE, TRACE) and it has no body,
//! so nothing of it was consumed from the client that sluice could not send again. It is
//! retried on what the route's `retries.on` lists: a failed connect (no byte reached any
//! server) or a 502/503/504 answer, at most `attempts` times.
//!
//! A retry budget keeps retries from multiplying load when a cluster is failing (Envoy's
//! `retry_budget`): retries in flight on a listener may be at most 20% of its active
//! requests, and at least 3 are always allowed.

use std::sync::atomic::{AtomicUsize, Ordering};

use sluice_codecs::http1::{BodyKind, Method};

use crate::config::http::RetryConfig;

const BUDGET_PERCENT: usize = 20;
const MIN_RETRY_CONCURRENCY: usize = 3;

/// Why a try failed, as far as retrying is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryFailure {
    Connect,
    Status(u16),
}

/// Whether the request itself can be sent again.
pub fn retryable_request(method: Method, body: BodyKind) -> bool {
    let idempotent =
        matches!(method, Method::Get | Method::Head | Method::Options | Method::Put | Method::Delete | Method::Trace);
    idempotent && matches!(body, BodyKind::None | BodyKind::Length(0))
}

/// Whether the route retries this failure after `tries_so_far` retries.
pub fn route_retries(config: &RetryConfig, failure: TryFailure, retries_so_far: u32) -> bool {
    retries_so_far < config.attempts
        && match failure {
            TryFailure::Connect => config.on_connect_failure,
            TryFailure::Status(s) => config.statuses.contains(&s),
        }
}

/// A listener's active requests and retries.
#[derive(Default)]
pub struct RetryBudget {
    requests: AtomicUsize,
    retries: AtomicUsize,
}

/// Counts one active request until dropped.
pub struct RequestToken<'a>(&'a RetryBudget);

impl Drop for RequestToken<'_> {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one retry in flight until dropped.
pub struct RetryToken<'a>(&'a RetryBudget);

impl Drop for RetryToken<'_> {
    fn drop(&mut self) {
        self.0.retries.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RetryBudget {
    pub fn request(&self) -> RequestToken<'_> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        RequestToken(self)
    }

    /// A retry slot, if the budget has one.
    pub fn try_retry(&self) -> Option<RetryToken<'_>> {
        let allowed = (self.requests.load(Ordering::Relaxed) * BUDGET_PERCENT / 100).max(MIN_RETRY_CONCURRENCY);
        let before = self.retries.fetch_add(1, Ordering::Relaxed);
        if before >= allowed {
            self.retries.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(RetryToken(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_requests_without_body() {
        assert!(retryable_request(Method::Get, BodyKind::None));
        assert!(retryable_request(Method::Put, BodyKind::Length(0)));
        assert!(retryable_request(Method::Delete, BodyKind::None));
        assert!(!retryable_request(Method::Put, BodyKind::Length(3)));
        assert!(!retryable_request(Method::Get, BodyKind::Chunked));
        assert!(!retryable_request(Method::Post, BodyKind::None));
        assert!(!retryable_request(Method::Patch, BodyKind::None));
        assert!(!retryable_request(Method::Connect, BodyKind::None));
    }

    #[test]
    fn route_conditions_and_attempts() {
        let c = RetryConfig { attempts: 2, on_connect_failure: true, statuses: vec![503] };
        assert!(route_retries(&c, TryFailure::Connect, 0));
        assert!(route_retries(&c, TryFailure::Status(503), 1));
        assert!(!route_retries(&c, TryFailure::Status(503), 2));
        assert!(!route_retries(&c, TryFailure::Status(502), 0));
        assert!(!route_retries(&RetryConfig::default(), TryFailure::Connect, 0));
    }

    #[test]
    fn budget_is_a_fifth_of_active_requests_with_a_floor_of_three() {
        let b = RetryBudget::default();
        let requests: Vec<_> = (0..20).map(|_| b.request()).collect();
        let held: Vec<_> = (0..4).filter_map(|_| b.try_retry()).collect();
        assert_eq!(held.len(), 4);
        assert!(b.try_retry().is_none());
        drop(held);
        drop(requests);
        let floor: Vec<_> = (0..5).filter_map(|_| b.try_retry()).collect();
        assert_eq!(floor.len(), 3);
    }
}
