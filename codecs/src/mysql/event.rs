//! What the session tells the proxy filter: one or two [`Event`]s per packet, borrowing
//! from that packet's bytes (use `Bytes::slice_ref` on the packet to keep one zero-copy).

use super::command::{Command, CommandKind};
use super::flags::{Capabilities, StatusFlags};
use super::response::{PrepareOk, ServerError};

/// Why the stream stopped being plain MySQL packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Opaque {
    /// The client sent an SSLRequest: TLS records follow in both directions.
    Tls,
    /// The compressed protocol (`CLIENT_COMPRESS` or zstd) starts after authentication.
    Compression,
}

/// Counters and status of a successful command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OkSummary {
    /// Summed over every OK of the response (one per statement of a multi-statement query).
    pub affected_rows: u64,
    /// From the last OK packet.
    pub last_insert_id: u64,
    /// From the final packet (OK or EOF).
    pub status: StatusFlags,
    /// From the final packet.
    pub warnings: u16,
}

/// How a command ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome<'a> {
    Ok(OkSummary),
    /// The server's ERR packet (it ends the whole response, even mid-result-set).
    Err(ServerError<'a>),
    /// The command gets no response (COM_QUIT, COM_STMT_CLOSE, COM_STMT_SEND_LONG_DATA).
    NoResponse,
    /// An unknown command's response did not start with OK, ERR or EOF; the session ignores
    /// server packets until the client's next command.
    Unrecognized {
        first_byte: u8,
    },
}

/// Something the proxy filter may want to act on or count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The server's greeting (Protocol::HandshakeV10).
    Greeting {
        server_version: &'a [u8],
        connection_id: u32,
        /// The server's capabilities (MariaDB extended ones in the high 32 bits).
        capabilities: Capabilities,
        auth_plugin: Option<&'a [u8]>,
    },
    /// The client's SSLRequest: from the next byte on, both directions are TLS. The
    /// session reports [`Opaque::Tls`] until [`super::Session::resume_after_tls`].
    TlsUpgrade { capabilities: Capabilities },
    /// The client's login (HandshakeResponse).
    Login {
        user: &'a [u8],
        database: Option<&'a [u8]>,
        auth_plugin: Option<&'a [u8]>,
        /// Negotiated: client ∧ server.
        capabilities: Capabilities,
        /// An SSLRequest came first (seen only when the proxy terminates TLS itself).
        tls_requested: bool,
    },
    /// The server asks for another authentication plugin (during login or COM_CHANGE_USER).
    AuthSwitch { plugin: &'a [u8] },
    /// The login's end: OK, or the server's refusal (which closes the connection). Also
    /// sent for an ERR instead of a greeting ("Too many connections", "Host blocked").
    AuthResult(Result<(), ServerError<'a>>),
    /// The compressed protocol starts with the next packet (both directions).
    CompressionStarted,
    /// A client command. `complete` is false when the payload continues in 0xFFFFFF
    /// continuation packets (the SQL text is then only the first ~16 MiB).
    CommandStarted { command: Command<'a>, complete: bool },
    /// The server asks the client for a local file (LOAD DATA LOCAL INFILE).
    LocalInfile { filename: &'a [u8] },
    /// COM_STMT_PREPARE succeeded (its parameter and column definitions follow).
    PrepareOk(PrepareOk),
    /// The last packet of a command's response: one per started command, in order.
    CommandFinished {
        command: CommandKind,
        outcome: Outcome<'a>,
        /// Rows counted in every result set (text or binary; for COM_FIELD_LIST, fields).
        rows: u64,
        /// Result sets seen (each column-count packet opens one).
        result_sets: u32,
    },
    /// An ERR while no command was running (e.g. the server killing an idle connection).
    Unsolicited(ServerError<'a>),
}

/// The events of one packet: none, one or two (inline, never allocated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events<'a> {
    slots: [Option<Event<'a>>; 2],
}

impl<'a> Events<'a> {
    pub const fn none() -> Self {
        Events { slots: [None, None] }
    }

    pub const fn one(event: Event<'a>) -> Self {
        Events { slots: [Some(event), None] }
    }

    pub(crate) fn push(&mut self, event: Event<'a>) {
        // The session never produces more than two per packet; a third would be a bug,
        // and keeping the first two is the harmless way to survive it.
        if let Some(slot) = self.slots.iter_mut().find(|s| s.is_none()) {
            *slot = Some(event);
        } else {
            debug_assert!(false, "more than two events for one packet");
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots[0].is_none()
    }

    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Event<'a>> {
        self.slots.iter().flatten()
    }
}

impl<'a> IntoIterator for Events<'a> {
    type Item = Event<'a>;
    type IntoIter = std::iter::Flatten<std::array::IntoIter<Option<Event<'a>>, 2>>;

    fn into_iter(self) -> Self::IntoIter {
        self.slots.into_iter().flatten()
    }
}
