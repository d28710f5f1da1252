//! What the session tells the proxy filter: at most one [`Event`] per message, borrowing
//! from that message's bytes; SQL remembered across messages (a Bind or Execute of a
//! statement prepared earlier) is shared as `Arc<[u8]>`.

use std::sync::Arc;

use super::backend::{Auth, CommandTag, ServerNotice, TxStatus};
use super::startup::StartupMessage;

/// How a statement (simple Query statement, or Execute) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// CommandComplete: `tag.verb()`, `tag.rows()`.
    Complete(CommandTag<'a>),
    /// EmptyQueryResponse: the SQL held no statement.
    Empty,
    /// PortalSuspended: Execute's row limit was reached; the portal can be executed again.
    Suspended,
    Error(ServerNotice<'a>),
}

/// Which way a COPY runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyDirection {
    /// COPY FROM STDIN: the client sends CopyData.
    In,
    /// COPY TO STDOUT: the server sends CopyData.
    Out,
    /// Replication streams: both send CopyData.
    Both,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The client's StartupMessage (version and every parameter: `message.params()`).
    Startup {
        user: Option<&'a [u8]>,
        database: Option<&'a [u8]>,
        message: StartupMessage<'a>,
    },
    /// SSLRequest (`gss: false`) or GSSENCRequest (`gss: true`).
    EncryptionRequested {
        gss: bool,
    },
    /// The server's 'S' or 'N'. After 'S' the stream is opaque (TLS or GSSAPI).
    EncryptionAnswer {
        gss: bool,
        accepted: bool,
    },
    /// A CancelRequest (sent on its own connection, which then closes).
    CancelRequest {
        pid: u32,
        key: &'a [u8],
    },
    /// The server asks for credentials (any Authentication* but Ok).
    AuthRequest(Auth<'a>),
    /// The client's SASLInitialResponse: the mechanism it picked.
    SaslMechanism {
        mechanism: &'a [u8],
    },
    /// AuthenticationOk, or the server's refusal (which closes the connection).
    AuthResult(Result<(), ServerNotice<'a>>),
    ParameterStatus {
        name: &'a [u8],
        value: &'a [u8],
    },
    BackendKeyData {
        pid: u32,
        key: &'a [u8],
    },
    ReadyForQuery(TxStatus),
    /// A simple Query (it may hold several statements; each ends with a StatementFinished).
    QueryStarted {
        sql: &'a [u8],
    },
    /// Parse: a statement is prepared (`statement` empty for the unnamed one).
    Parse {
        statement: &'a [u8],
        sql: &'a [u8],
    },
    /// Bind: a portal is created from a statement; `sql` when the statement is known.
    Bind {
        portal: &'a [u8],
        statement: &'a [u8],
        sql: Option<Arc<[u8]>>,
    },
    /// Execute of a portal; `sql` when its statement is known.
    Execute {
        portal: &'a [u8],
        sql: Option<Arc<[u8]>>,
    },
    /// A COPY sub-protocol starts.
    CopyStarted {
        direction: CopyDirection,
        columns: u16,
    },
    /// One statement ended. `rows` counts the DataRows seen for it (COPY reports its count in the tag).
    StatementFinished {
        outcome: Outcome<'a>,
        rows: u64,
        extended: bool,
    },
    /// An error in the extended protocol: the server skips everything until Sync. Raised
    /// for errors that do not end an Execute (Parse, Bind, Describe failures).
    ExtendedError(ServerNotice<'a>),
    /// A NoticeResponse (warnings, notices; any time).
    Notice(ServerNotice<'a>),
    /// An unsolicited ErrorResponse (administrator shutdown, idle timeouts).
    Unsolicited(ServerNotice<'a>),
    Notification {
        pid: u32,
        channel: &'a [u8],
        payload: &'a [u8],
    },
    NegotiateProtocolVersion {
        newest_minor: u32,
    },
    /// The client sent Terminate.
    Terminate,
}
