//! Fault injection: for a percentage of the operations a matcher selects, add a delay or
//! answer with an error instead of the upstream (Envoy's redis_proxy and mongo_proxy
//! faults). Faults apply after the rules have let an operation through.

use std::time::Duration;

use super::Matcher;
use crate::op::Op;

/// What an injected fault does to the operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Hold the operation this long, then forward it.
    Delay(Duration),
    /// Answer with this error message (in the protocol's own error format) without
    /// forwarding the operation.
    Error(String),
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub matcher: Matcher,
    /// Share of matching operations affected, 0 to 100.
    pub percentage: f64,
    pub action: FaultAction,
}

/// The faults of one listener, tried in order; the first whose matcher matches and whose
/// dice roll hits applies.
#[derive(Clone, Debug, Default)]
pub struct FaultSet {
    faults: Vec<Fault>,
}

impl FaultSet {
    pub fn new(faults: Vec<Fault>) -> Self {
        FaultSet { faults }
    }

    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// The fault to inject into `op`, if any. `roll` gives a uniform number in [0, 100).
    pub fn pick(&self, op: &Op<'_>, mut roll: impl FnMut() -> f64) -> Option<&FaultAction> {
        self.faults.iter().find(|f| f.matcher.matches(op) && roll() < f.percentage).map(|f| &f.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Protocol;

    fn op(name: &str) -> Op<'_> {
        Op {
            protocol: Protocol::Redis,
            listener: "l",
            op: name,
            target: None,
            user: None,
            database: None,
            statement: None,
            client_id: None,
            client: "127.0.0.1".parse().unwrap(),
        }
    }

    #[test]
    fn faults_apply_to_their_share_of_matching_ops() {
        let set = FaultSet::new(vec![Fault {
            matcher: Matcher { ops: vec!["GET".into()], ..Default::default() },
            percentage: 25.0,
            action: FaultAction::Error("ERR boom".into()),
        }]);
        assert_eq!(set.pick(&op("GET"), || 10.0), Some(&FaultAction::Error("ERR boom".into())));
        assert_eq!(set.pick(&op("GET"), || 25.0), None, "25% means rolls below 25");
        assert_eq!(set.pick(&op("SET"), || 0.0), None, "other ops are untouched");
        let mut rng = fastrand::Rng::with_seed(7);
        let hits = (0..10_000).filter(|_| set.pick(&op("GET"), || rng.f64() * 100.0).is_some()).count();
        assert!((2_200..2_800).contains(&hits), "{hits} of 10000");
    }
}
