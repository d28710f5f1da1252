//! The response half of the session: what each server packet means while a command's
//! response is under way, step by step.
//!
//! Spec: "COM_QUERY Response" and "Text Resultset"
//! (<https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_query_response.html>),
//! "Binary Protocol Resultset", "COM_STMT_PREPARE Response", "COM_STMT_FETCH Response",
//! "LOCAL INFILE Request", "COM_FIELD_LIST", "COM_STATISTICS", "COM_CHANGE_USER"; MariaDB's
//! result-set packets (<https://mariadb.com/kb/en/result-set-packets/>).
//!
//! A result set is: column count, column definitions (skipped when MariaDB's metadata cache
//! or MySQL's optional metadata says so), an EOF unless `CLIENT_DEPRECATE_EOF`, rows, and an
//! EOF / OK-as-EOF / ERR; `SERVER_MORE_RESULTS_EXISTS` on an OK or EOF loops back to the
//! next result. With a cursor (COM_STMT_EXECUTE flags) the result set ends right after the
//! column definitions, with `SERVER_STATUS_CURSOR_EXISTS`, and rows come in COM_STMT_FETCH
//! responses.

use super::{unexpected, ChainOwner, Phase, Session, AUTH_MORE_DATA_HEADER, AUTH_NEXT_FACTOR_HEADER};
use crate::mysql::command::CommandKind;
use crate::mysql::error::MysqlError;
use crate::mysql::event::{Event, Events, OkSummary, Outcome};
use crate::mysql::handshake::{AuthMoreData, AuthSwitch};
use crate::mysql::packet::Direction;
use crate::mysql::response::{
    is_eof, is_progress, is_terminator, ColumnCount, Completion, EofPacket, PrepareOk, ServerError, EOF_HEADER,
    ERR_HEADER, LOCAL_INFILE_HEADER, OK_HEADER,
};

/// Where a command's response is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// OK, ERR, LOCAL INFILE request or a column count (also after SERVER_MORE_RESULTS_EXISTS).
    Head,
    Columns {
        left: u64,
    },
    /// The EOF after column definitions (without CLIENT_DEPRECATE_EOF).
    ColumnsEof,
    /// Rows (text or binary) until EOF, OK-as-EOF or ERR.
    Rows,
    /// The client sends the file; an empty packet ends it.
    InfileData,
    InfileResult,
    PrepareHead,
    PrepareParams {
        left: u16,
        columns: u16,
    },
    PrepareParamsEof {
        columns: u16,
    },
    PrepareColumns {
        left: u16,
    },
    PrepareColumnsEof,
    /// COM_FIELD_LIST: column definitions until EOF.
    FieldList,
    /// COM_STATISTICS: one packet, a bare string.
    Single,
    /// OK, EOF or ERR only.
    Simple,
    ChangeUserAuth {
        server_turn: bool,
    },
}

impl Step {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Step::Head => "awaiting a command's result",
            Step::Columns { .. } | Step::ColumnsEof => "reading column definitions",
            Step::Rows => "reading rows",
            Step::InfileData => "awaiting the client's file",
            Step::InfileResult => "awaiting the LOCAL INFILE result",
            Step::PrepareHead => "awaiting COM_STMT_PREPARE_OK",
            Step::PrepareParams { .. } | Step::PrepareParamsEof { .. } => "reading parameter definitions",
            Step::PrepareColumns { .. } | Step::PrepareColumnsEof => "reading prepared column definitions",
            Step::FieldList => "reading a field list",
            Step::Single => "awaiting COM_STATISTICS output",
            Step::Simple => "awaiting OK or ERR",
            Step::ChangeUserAuth { .. } => "re-authenticating (COM_CHANGE_USER)",
        }
    }
}

/// The response being read.
#[derive(Clone, Copy, Debug)]
pub(super) struct Response {
    pub(super) kind: CommandKind,
    pub(super) cursor: bool,
    pub(super) step: Step,
    pub(super) rows: u64,
    pub(super) result_sets: u32,
    pub(super) summary: OkSummary,
}

impl Session {
    pub(super) fn begin_response(&mut self, kind: CommandKind, cursor: bool) {
        let step = match kind {
            CommandKind::Query | CommandKind::StmtExecute | CommandKind::StmtBulkExecute => Step::Head,
            CommandKind::StmtPrepare => Step::PrepareHead,
            CommandKind::StmtFetch => Step::Rows,
            CommandKind::FieldList => Step::FieldList,
            CommandKind::Statistics => Step::Single,
            CommandKind::ChangeUser => Step::ChangeUserAuth { server_turn: true },
            _ => Step::Simple,
        };
        self.phase = Phase::Response;
        self.response = Response { kind, cursor, step, rows: 0, result_sets: 0, summary: OkSummary::default() };
    }

    /// A server packet of the current response; its sequence id is already checked.
    pub(super) fn server_in_response<'a>(&mut self, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        let step = self.response.step;
        let Some(&first) = payload.first() else {
            if step == Step::Single {
                return Ok(Events::one(self.finish(Outcome::Ok(OkSummary::default()))));
            }
            return Err(MysqlError::EmptyPacket { direction: Direction::Server, state: step.describe() });
        };
        // The hot path: a row is anything that is not a terminator or an error.
        if step == Step::Rows && first != EOF_HEADER && first != ERR_HEADER {
            self.response.rows += 1;
            return Ok(Events::none());
        }
        if let CommandKind::Other(_) = self.response.kind {
            return Ok(self.other_response(first, payload));
        }
        if first == ERR_HEADER && step != Step::InfileData {
            return self.error(payload);
        }
        let deprecate_eof = self.deprecate_eof();
        match step {
            Step::Rows | Step::FieldList if is_terminator(payload, deprecate_eof) => {
                let done = Completion::parse(payload, self.caps)?;
                Ok(self.completed(done))
            }
            Step::Rows | Step::FieldList => {
                // 0xFE starting a text row whose first value is 2^24 bytes or more.
                self.response.rows += 1;
                Ok(Events::none())
            }
            Step::Head => self.head(first, payload),
            Step::Columns { left } => {
                self.response.step = if left > 1 { Step::Columns { left: left - 1 } } else { self.after_columns() };
                Ok(Events::none())
            }
            Step::ColumnsEof => {
                let eof = self.expect_eof(payload, step)?;
                if self.response.cursor && eof.status.cursor_exists() {
                    // A cursor was opened: no rows now, they come with COM_STMT_FETCH.
                    let done = Completion { status: eof.status, warnings: eof.warnings, ..Completion::default() };
                    return Ok(self.completed(done));
                }
                self.response.step = Step::Rows;
                Ok(Events::none())
            }
            Step::InfileResult if first == OK_HEADER => {
                let done = Completion::parse(payload, self.caps)?;
                Ok(self.completed(done))
            }
            Step::PrepareHead if first == OK_HEADER => {
                let ok = PrepareOk::parse(payload, self.caps)?;
                self.response.summary.warnings = ok.warnings;
                let mut events = Events::one(Event::PrepareOk(ok));
                self.response.step = match (ok.metadata_follows, ok.num_params, ok.num_columns) {
                    (true, 1.., columns) => Step::PrepareParams { left: ok.num_params, columns },
                    (true, 0, 1..) => Step::PrepareColumns { left: ok.num_columns },
                    _ => {
                        events.push(self.finish(Outcome::Ok(self.response.summary)));
                        return Ok(events);
                    }
                };
                Ok(events)
            }
            Step::PrepareParams { left, columns } => {
                self.response.step = match (left, deprecate_eof) {
                    (2.., _) => Step::PrepareParams { left: left - 1, columns },
                    (_, false) => Step::PrepareParamsEof { columns },
                    (_, true) => return Ok(self.prepare_columns(columns)),
                };
                Ok(Events::none())
            }
            Step::PrepareParamsEof { columns } => {
                self.expect_eof(payload, step)?;
                Ok(self.prepare_columns(columns))
            }
            Step::PrepareColumns { left } => {
                if left > 1 {
                    self.response.step = Step::PrepareColumns { left: left - 1 };
                } else if !deprecate_eof {
                    self.response.step = Step::PrepareColumnsEof;
                } else {
                    return Ok(Events::one(self.finish(Outcome::Ok(self.response.summary))));
                }
                Ok(Events::none())
            }
            Step::PrepareColumnsEof => {
                let eof = self.expect_eof(payload, step)?;
                self.response.summary.status = eof.status;
                Ok(Events::one(self.finish(Outcome::Ok(self.response.summary))))
            }
            Step::Single => Ok(Events::one(self.finish(Outcome::Ok(OkSummary::default())))),
            Step::Simple if first == OK_HEADER || is_terminator(payload, true) => {
                let done = Completion::parse(payload, self.caps)?;
                Ok(Events::one(self.finish_ok(done)))
            }
            Step::ChangeUserAuth { .. } => self.change_user_auth(first, payload),
            Step::InfileData | Step::InfileResult | Step::PrepareHead | Step::Simple => {
                Err(unexpected(Direction::Server, step.describe(), payload))
            }
        }
    }

    /// The first packet of a result: OK, LOCAL INFILE request, or a result set's column count.
    fn head<'a>(&mut self, first: u8, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        match first {
            OK_HEADER | EOF_HEADER if first == OK_HEADER || is_terminator(payload, true) => {
                let done = Completion::parse(payload, self.caps)?;
                Ok(self.completed(done))
            }
            LOCAL_INFILE_HEADER if self.response.kind == CommandKind::Query => {
                self.response.step = Step::InfileData;
                Ok(Events::one(Event::LocalInfile { filename: &payload[1..] }))
            }
            _ => {
                let count = ColumnCount::parse(payload, self.caps, self.limits.max_columns)?;
                self.response.result_sets = self.response.result_sets.saturating_add(1);
                self.response.step =
                    if count.metadata_follows { Step::Columns { left: count.columns } } else { self.after_columns() };
                Ok(Events::none())
            }
        }
    }

    fn after_columns(&self) -> Step {
        if self.deprecate_eof() {
            Step::Rows
        } else {
            Step::ColumnsEof
        }
    }

    fn prepare_columns<'a>(&mut self, columns: u16) -> Events<'a> {
        if columns == 0 {
            return Events::one(self.finish(Outcome::Ok(self.response.summary)));
        }
        self.response.step = Step::PrepareColumns { left: columns };
        Events::none()
    }

    fn expect_eof(&self, payload: &[u8], step: Step) -> Result<EofPacket, MysqlError> {
        if !is_eof(payload) {
            return Err(unexpected(Direction::Server, step.describe(), payload));
        }
        EofPacket::parse(payload, self.caps)
    }

    fn change_user_auth<'a>(&mut self, first: u8, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        self.check_handshake_len(payload)?;
        match first {
            OK_HEADER => {
                let done = Completion::parse(payload, self.caps)?;
                Ok(Events::one(self.finish_ok(done)))
            }
            EOF_HEADER | AUTH_NEXT_FACTOR_HEADER if self.switch_allowed(payload) => {
                let switch = AuthSwitch::parse(payload)?;
                self.response.step = Step::ChangeUserAuth { server_turn: false };
                Ok(Events::one(Event::AuthSwitch { plugin: switch.plugin }))
            }
            AUTH_MORE_DATA_HEADER => {
                let fast = AuthMoreData::parse(payload)? == AuthMoreData::FastAuthSuccess;
                self.response.step = Step::ChangeUserAuth { server_turn: fast };
                Ok(Events::none())
            }
            _ => Err(unexpected(Direction::Server, "re-authenticating (COM_CHANGE_USER)", payload)),
        }
    }

    /// An ERR packet: the end of the response, unless it is a MariaDB progress report.
    fn error<'a>(&mut self, payload: &'a [u8]) -> Result<Events<'a>, MysqlError> {
        if is_progress(payload) {
            return Ok(Events::none());
        }
        let err = ServerError::parse(payload)?;
        Ok(Events::one(self.finish(Outcome::Err(err))))
    }

    /// An OK or EOF ending a result: another result follows if the server says so.
    fn completed<'a>(&mut self, done: Completion) -> Events<'a> {
        if done.status.more_results() {
            self.accumulate(done);
            self.response.step = Step::Head;
            return Events::none();
        }
        Events::one(self.finish_ok(done))
    }

    /// Ends the response with its final OK or EOF (whatever its status flags say).
    fn finish_ok<'a>(&mut self, done: Completion) -> Event<'a> {
        self.accumulate(done);
        self.finish(Outcome::Ok(self.response.summary))
    }

    fn accumulate(&mut self, done: Completion) {
        let s = &mut self.response.summary;
        s.affected_rows = s.affected_rows.saturating_add(done.affected_rows);
        if done.last_insert_id != 0 {
            s.last_insert_id = done.last_insert_id;
        }
        s.status = done.status;
        s.warnings = done.warnings;
    }

    /// An unknown command's response: OK, EOF or ERR end it; anything else (or one that does
    /// not parse) is unrecognized. Either way the session then resyncs on the next command,
    /// since an unknown command may go on answering (a binlog dump streams events).
    fn other_response<'a>(&mut self, first: u8, payload: &'a [u8]) -> Events<'a> {
        let outcome = match first {
            ERR_HEADER if is_progress(payload) => return Events::none(),
            ERR_HEADER => ServerError::parse(payload).map(Outcome::Err).ok(),
            OK_HEADER | EOF_HEADER if first == OK_HEADER || is_terminator(payload, true) => {
                Completion::parse(payload, self.caps).ok().map(|done| {
                    self.accumulate(done);
                    Outcome::Ok(self.response.summary)
                })
            }
            _ => None,
        };
        Events::one(self.finish(outcome.unwrap_or(Outcome::Unrecognized { first_byte: first })))
    }

    /// Ends the current response and starts the next pipelined one, if any.
    fn finish<'a>(&mut self, outcome: Outcome<'a>) -> Event<'a> {
        let r = self.response;
        if let Some(next) = self.queue.pop_front() {
            self.begin_response(next.kind, next.cursor);
            self.seq = next.last_seq;
            if self.queue.is_empty() && self.client_chain_owner == ChainOwner::Queued {
                self.client_chain_owner = ChainOwner::Current;
            }
        } else if matches!(r.kind, CommandKind::Other(_)) {
            self.phase = Phase::Resync;
            self.server_chain = None;
        } else {
            self.phase = Phase::Idle;
        }
        Event::CommandFinished { command: r.kind, outcome, rows: r.rows, result_sets: r.result_sets }
    }
}
