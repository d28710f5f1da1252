//! AUTH and HELLO in `mode: pool`, answered by sluice against the pool's `users`
//! (https://redis.io/docs/latest/commands/auth/, https://redis.io/docs/latest/commands/hello/):
//! the shared connections log in with the pool's own `upstream_auth`, so a client's
//! credentials are checked here and never reach a server.

use bytes::Bytes;
use sluice_filters::Outcome;

use super::{error, Client, Pending};
use crate::config::RedisUser;
use crate::listener::ListenerRuntime;

impl Client {
    /// AUTH against the pool's users.
    pub(super) fn auth(&mut self, user: &[u8], password: &[u8]) -> Pending {
        let users = pool_users(&self.runtime);
        if users.is_empty() {
            let message = "ERR AUTH <password> called without any password configured for the default user. \
                           Are you sure your configuration is correct?";
            return Pending::Ready(error(message), Outcome::Error);
        }
        match users.iter().find(|u| u.user.as_bytes() == user && u.password.as_bytes() == password) {
            Some(found) => {
                self.authenticated = true;
                self.user = Some(found.user.clone());
                Pending::Ready(Bytes::from_static(b"+OK\r\n"), Outcome::Ok)
            }
            None => {
                Pending::Ready(error("WRONGPASS invalid username-password pair or user is disabled."), Outcome::Denied)
            }
        }
    }

    /// HELLO [2|3] with its optional AUTH, answered as a server does (a flat array in
    /// RESP2, a map in RESP3). HELLO 3 moves the client's later commands to RESP3 pooled
    /// connections; its own connections (kept for WATCH or a transaction) cannot change
    /// protocol, so HELLO may not switch while one is in use.
    pub(super) fn hello(&mut self, protover: Option<&[u8]>, auth: Option<(&[u8], &[u8])>) -> Pending {
        let resp3 = match protover {
            None => self.resp3,
            Some(b"2") => false,
            Some(b"3") => true,
            Some(_) => return Pending::Ready(error("NOPROTO unsupported protocol version"), Outcome::Error),
        };
        if let Some((user, password)) = auth {
            if let refused @ Pending::Ready(_, Outcome::Error | Outcome::Denied) = self.auth(user, password) {
                return refused;
            }
        }
        if !self.authenticated {
            let message = "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                           HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
                           select the RESP protocol version at the same time";
            return Pending::Ready(error(message), Outcome::Denied);
        }
        if resp3 != self.resp3 {
            if self.pinned.is_some() {
                let message = "ERR sluice: HELLO cannot change the protocol while WATCH holds a connection";
                return Pending::Ready(error(message), Outcome::Error);
            }
            for (_, own) in self.own.drain(..) {
                own.close();
            }
            self.resp3 = resp3;
        }
        const FIELDS: &str = "$6\r\nserver\r\n$6\r\nsluice\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n";
        const REST: &str = "$2\r\nid\r\n:0\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n\
                            $7\r\nmodules\r\n*0\r\n";
        let reply = match resp3 {
            true => format!("%7\r\n{FIELDS}:3\r\n{REST}"),
            false => format!("*14\r\n{FIELDS}:2\r\n{REST}"),
        };
        Pending::Ready(Bytes::from(reply), Outcome::Ok)
    }
}

/// The users clients may AUTH as (none: no AUTH needed).
pub(super) fn pool_users(runtime: &ListenerRuntime) -> &[RedisUser] {
    runtime.config.redis.as_ref().and_then(|r| r.pool.as_ref()).map_or(&[], |p| &p.users)
}
