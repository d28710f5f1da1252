//! The operation model: the small vocabulary every protocol filter reduces traffic to, so
//! that one rule language, one stats layout and one log format serve every protocol.
//!
//! An [`Op`] borrows from the frame it was decoded from, so building one on the hot path
//! allocates nothing.

use std::fmt;
use std::net::IpAddr;

use crate::sql::StatementInfo;

/// The protocol a listener speaks; `tcp` and `udp` carry only connection-level ops.
/// Protocol listeners are TCP underneath.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Redis,
    Mysql,
    Postgres,
    Mongodb,
    /// Kafka requests: op = API name, target = topic.
    Kafka,
    /// HTTP/1.1 requests: op = method, target = path.
    Http,
}

impl Protocol {
    /// The label value used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Redis => "redis",
            Protocol::Mysql => "mysql",
            Protocol::Postgres => "postgres",
            Protocol::Mongodb => "mongodb",
            Protocol::Kafka => "kafka",
            Protocol::Http => "http",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Connection-level operation names, shared by every protocol.
pub mod names {
    /// A new downstream connection (TCP) or session (UDP), evaluated before the upstream
    /// is contacted.
    pub const CONNECT: &str = "connect";
    /// The end of a connection or session; its duration is the connection's lifetime.
    pub const CLOSE: &str = "close";
}

/// One operation as seen on the wire: a command, statement, API call or connection event.
#[derive(Clone, Copy, Debug)]
pub struct Op<'a> {
    pub protocol: Protocol,
    pub listener: &'a str,
    /// Command name, SQL verb, API name, HTTP method, or `connect` / `close`.
    pub op: &'a str,
    /// Key, table, collection, topic or path; for connection ops the upstream cluster.
    pub target: Option<&'a [u8]>,
    pub user: Option<&'a str>,
    /// The database (schema) the operation runs in, for SQL protocols and MongoDB (`$db`).
    pub database: Option<&'a str>,
    /// For SQL statements: every table touched (`target` is the first), the digest and
    /// the statement's flags.
    pub statement: Option<&'a StatementInfo>,
    /// The client's own name for itself where the protocol sends one (Kafka's
    /// `client_id` request header field).
    pub client_id: Option<&'a str>,
    pub client: IpAddr,
}

impl<'a> Op<'a> {
    /// A connection-level op (`connect` / `close`) for `cluster` on `listener`.
    pub fn connection(protocol: Protocol, listener: &'a str, op: &'a str, cluster: &'a str, client: IpAddr) -> Self {
        Op {
            protocol,
            listener,
            op,
            target: Some(cluster.as_bytes()),
            user: None,
            database: None,
            statement: None,
            client_id: None,
            client,
        }
    }
}

/// How an operation ended; the `outcome` label of `sluice_ops_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The upstream answered with an error, or the operation failed on the way.
    Error,
    /// A `deny` rule refused it.
    Denied,
    /// A rate limit or a connection limit refused it.
    Limited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
            Outcome::Limited => "limited",
        }
    }
}
