//! Rule matchers: every listed field must match (AND); within a field any listed value may
//! match (OR); an empty field matches everything.

use ipnet::IpNet;

use crate::op::Op;

#[derive(Debug, Default, Clone)]
pub struct Matcher {
    /// Operation names, compared ASCII case-insensitively (`get` matches `GET`).
    pub ops: Vec<String>,
    /// Exact targets.
    pub targets: Vec<Vec<u8>>,
    /// Target prefixes (`session:` matches `session:42`).
    pub target_prefixes: Vec<Vec<u8>>,
    pub client_cidrs: Vec<IpNet>,
    pub users: Vec<String>,
    pub listeners: Vec<String>,
}

impl Matcher {
    pub fn matches(&self, op: &Op<'_>) -> bool {
        (self.ops.is_empty() || self.ops.iter().any(|o| o.eq_ignore_ascii_case(op.op)))
            && self.matches_target(op.target)
            && (self.client_cidrs.is_empty() || self.client_cidrs.iter().any(|net| net.contains(&canonical(op.client))))
            && (self.users.is_empty() || op.user.is_some_and(|u| self.users.iter().any(|x| x == u)))
            && (self.listeners.is_empty() || self.listeners.iter().any(|l| l == op.listener))
    }

    fn matches_target(&self, target: Option<&[u8]>) -> bool {
        if self.targets.is_empty() && self.target_prefixes.is_empty() {
            return true;
        }
        let Some(target) = target else { return false };
        self.targets.iter().any(|t| t == target) || self.target_prefixes.iter().any(|p| target.starts_with(p))
    }
}

/// IPv4 clients reaching a dual-stack socket appear as `::ffff:a.b.c.d`; match them
/// against IPv4 CIDRs as the IPv4 address they are.
fn canonical(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    }
}
