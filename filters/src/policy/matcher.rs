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
    /// Client ids (Kafka's `client_id` header field), compared exactly.
    pub client_ids: Vec<String>,
    pub listeners: Vec<String>,
    /// Databases (schemas) of SQL statements, compared exactly.
    pub databases: Vec<String>,
    /// Digest hashes of SQL statements (the hash of the normalized text).
    pub digests: Vec<u64>,
    /// Matches only `DELETE` and `UPDATE` statements without a `WHERE` clause.
    pub without_where: bool,
}

impl Matcher {
    pub fn matches(&self, op: &Op<'_>) -> bool {
        (self.ops.is_empty() || self.ops.iter().any(|o| o.eq_ignore_ascii_case(op.op)))
            && self.matches_target(op)
            && (self.client_cidrs.is_empty() || self.client_cidrs.iter().any(|net| net.contains(&canonical(op.client))))
            && (self.users.is_empty() || op.user.is_some_and(|u| self.users.iter().any(|x| x == u)))
            && (self.client_ids.is_empty() || op.client_id.is_some_and(|c| self.client_ids.iter().any(|x| x == c)))
            && (self.listeners.is_empty() || self.listeners.iter().any(|l| l == op.listener))
            && (self.databases.is_empty() || op.database.is_some_and(|d| self.databases.iter().any(|x| x == d)))
            && self.matches_statement(op)
    }

    fn matches_statement(&self, op: &Op<'_>) -> bool {
        if self.digests.is_empty() && !self.without_where {
            return true;
        }
        let Some(statement) = op.statement else { return false };
        (self.digests.is_empty() || self.digests.contains(&statement.digest_hash))
            && (!self.without_where || statement.flags.delete_or_update_without_where)
    }

    /// A SQL statement matches when any table it touches does.
    fn matches_target(&self, op: &Op<'_>) -> bool {
        if self.targets.is_empty() && self.target_prefixes.is_empty() {
            return true;
        }
        let matches = |target: &[u8]| {
            self.targets.iter().any(|t| t == target) || self.target_prefixes.iter().any(|p| target.starts_with(p))
        };
        match op.statement {
            Some(statement) => statement.tables.iter().any(|t| matches(t.as_bytes())),
            None => op.target.is_some_and(matches),
        }
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
