//! Prepared statements of one connection: statement id → the statement it was prepared
//! from, so each COM_STMT_EXECUTE is counted under its verb, tables and digest.
//!
//! Bounded: a connection that prepares more than [`MAX_PREPARED`] statements without
//! closing them (a client leak) gets its later ones counted as plain `COM_STMT_EXECUTE`.
//! Looked up once per execution, so the map hashes its `u32` ids with seeded foldhash,
//! not SipHash: the ids are the server's, and their number is capped.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sql::StatementInfo;

/// Statements remembered per connection (MySQL's own default `max_prepared_stmt_count`
/// is 16382 per server).
pub const MAX_PREPARED: usize = 16_384;

/// MariaDB's statement id for "the statement prepared just before" (pipelined
/// COM_STMT_PREPARE + COM_STMT_EXECUTE).
const LAST_PREPARED: u32 = u32::MAX;

#[derive(Default)]
pub struct Prepared {
    statements: HashMap<u32, Arc<StatementInfo>, foldhash::fast::RandomState>,
    /// The statement of the most recent COM_STMT_PREPARE, whether or not it has been
    /// answered yet.
    last: Option<Arc<StatementInfo>>,
}

impl Prepared {
    /// A COM_STMT_PREPARE was sent for `statement`.
    pub fn preparing(&mut self, statement: &Arc<StatementInfo>) {
        self.last = Some(Arc::clone(statement));
    }

    /// The server prepared `statement` as `id`.
    pub fn prepared(&mut self, id: u32, statement: Arc<StatementInfo>) {
        if self.statements.len() < MAX_PREPARED || self.statements.contains_key(&id) {
            self.statements.insert(id, statement);
        }
    }

    pub fn get(&self, id: u32) -> Option<&Arc<StatementInfo>> {
        if id == LAST_PREPARED {
            return self.last.as_ref();
        }
        self.statements.get(&id)
    }

    pub fn close(&mut self, id: u32) {
        self.statements.remove(&id);
    }

    /// COM_RESET_CONNECTION and COM_CHANGE_USER deallocate every statement.
    pub fn clear(&mut self) {
        self.statements.clear();
        self.last = None;
    }
}
