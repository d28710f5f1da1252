//! Transactions in `mode: pool` (https://redis.io/docs/latest/develop/interactions/transactions/):
//! MULTI … EXEC runs on the client's own connection to one server, the server of the
//! first keyed command inside it (or of the keys a WATCH before it named). Commands for
//! another server are refused with CROSSSLOT while queuing, and the transaction then ends
//! as Redis ends one with a queuing error: EXEC answers EXECABORT (and the server gets
//! DISCARD).

use bytes::Bytes;
use sluice_codecs::resp::Command;
use sluice_filters::redis::routing::{Local, Route, Tx};
use sluice_filters::Outcome;

use super::{crossslot, error, Client, Pending, DISCARD, EXECABORT};
use crate::redis_pool::upstream::Slot;
use crate::redis_pool::ServerId;

/// A MULTI in progress: its server is the one of its first keyed command (or of WATCH).
/// Until that is known, MULTI and keyless commands are answered here (`+OK`, `+QUEUED`,
/// as the server would) and wait to be sent ahead of the first keyed one; their server
/// replies are then dropped.
pub(super) struct Transaction {
    server: Option<ServerId>,
    held: Vec<Bytes>,
    /// A command was refused while queuing: EXEC answers EXECABORT, as Redis does.
    aborted: bool,
}

impl Client {
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH (see [`Transaction`]).
    pub(super) fn transaction(&mut self, tx: Tx<'_>, command: &Command<'_>, frame: &Bytes) -> Pending {
        match tx {
            Tx::Watch(_) if self.tx.is_some() => {
                Pending::Ready(error("ERR WATCH inside MULTI is not allowed"), Outcome::Error)
            }
            Tx::Watch(keys) => match self.server_of_all(&keys) {
                Ok(server) if self.pinned.is_none_or(|p| p == server) => {
                    self.pinned = Some(server);
                    let outgoing = self.outgoing(command, frame, &keys);
                    self.send_own(server, outgoing)
                }
                Ok(_) => crossslot(),
                Err(refusal) => refusal,
            },
            Tx::Unwatch => match self.pinned.take() {
                Some(server) if self.tx.is_none() => self.send_own(server, frame.clone()),
                pinned => {
                    self.pinned = pinned;
                    Pending::Ready(Bytes::from_static(b"+OK\r\n"), Outcome::Ok)
                }
            },
            Tx::Multi if self.tx.is_some() => {
                Pending::Ready(error("ERR MULTI calls can not be nested"), Outcome::Error)
            }
            Tx::Multi => {
                self.tx = Some(Transaction { server: self.pinned, held: Vec::new(), aborted: false });
                self.queue_in_transaction(None, frame.clone(), "+OK\r\n")
            }
            Tx::Exec | Tx::Discard => {
                let is_discard = tx == Tx::Discard;
                let Some(mut open) = self.tx.take() else {
                    let name = if is_discard { "DISCARD" } else { "EXEC" };
                    return Pending::Ready(error(&format!("ERR {name} without MULTI")), Outcome::Error);
                };
                self.pinned = None;
                let discard = open.aborted || is_discard;
                let server = match open.server {
                    Some(server) => Some(server),
                    // Nothing keyed was queued: EXEC runs the transaction on any server.
                    None if !discard => Some(ServerId { group: 0, index: 0 }),
                    None => None,
                };
                match server {
                    Some(server) => {
                        let own = self.own(server);
                        for held in open.held.drain(..) {
                            own.send(held, Slot::new(self.notify.clone()));
                        }
                        if open.aborted && !is_discard {
                            own.send(Bytes::from_static(DISCARD), Slot::new(self.notify.clone()));
                            Pending::Ready(Bytes::from_static(EXECABORT), Outcome::Error)
                        } else {
                            self.send_own(server, frame.clone())
                        }
                    }
                    None => {
                        if open.aborted && !is_discard {
                            Pending::Ready(Bytes::from_static(EXECABORT), Outcome::Error)
                        } else {
                            Pending::Ready(Bytes::from_static(b"+OK\r\n"), Outcome::Ok)
                        }
                    }
                }
            }
        }
    }

    /// A command between MULTI and EXEC: queued on the transaction's server.
    pub(super) fn in_transaction(&mut self, command: &Command<'_>, frame: &Bytes, routed: Route<'_>) -> Pending {
        let keys: Vec<&[u8]> = match &routed {
            Route::Key(key) => vec![*key],
            Route::SameServer(keys) | Route::Blocking(keys) => keys.clone(),
            Route::Split { group, .. } => command.args().skip(1).step_by(*group).collect(),
            Route::Publish(channel) => {
                let server = self.pools.channel_server(channel);
                return self.queue_in_transaction(server, frame.clone(), "+QUEUED\r\n");
            }
            // Credentials stay with sluice: they would reach the server inside the queue.
            Route::Local(Local::Auth { .. } | Local::Hello { .. }) => {
                return self
                    .abort_transaction(error("ERR sluice: AUTH and HELLO are not allowed inside MULTI in pool mode"))
            }
            Route::Local(_) => Vec::new(),
            Route::Refuse(message) => return self.abort_transaction(error(message)),
            Route::Subscribe(_) | Route::Transaction(_) => {
                return self.abort_transaction(error("ERR sluice: not allowed inside MULTI in pool mode"))
            }
        };
        let server = if keys.is_empty() {
            None
        } else {
            match self.server_of_all(&keys) {
                Ok(server) => Some(server),
                Err(Pending::Ready(reply, _)) => return self.abort_transaction(reply),
                Err(other) => return other,
            }
        };
        let outgoing = self.outgoing(command, frame, &keys);
        self.queue_in_transaction(server, outgoing, "+QUEUED\r\n")
    }

    fn abort_transaction(&mut self, reply: Bytes) -> Pending {
        if let Some(tx) = self.tx.as_mut() {
            tx.aborted = true;
        }
        Pending::Ready(reply, Outcome::Error)
    }

    /// Sends `frame` on the transaction's server (fixing it to `server` if it had none),
    /// or holds it, answered with `unsent`, until a keyed command says where the
    /// transaction runs.
    fn queue_in_transaction(&mut self, server: Option<ServerId>, frame: Bytes, unsent: &'static str) -> Pending {
        let slot = Slot::new(self.notify.clone());
        let Some(tx) = self.tx.as_mut() else {
            return Pending::Ready(error("ERR sluice: no transaction"), Outcome::Error);
        };
        let target = match (tx.server, server) {
            (Some(current), Some(wanted)) if current != wanted => {
                tx.aborted = true;
                return crossslot();
            }
            (Some(current), _) => current,
            (None, Some(wanted)) => {
                tx.server = Some(wanted);
                wanted
            }
            (None, None) => {
                tx.held.push(frame);
                return Pending::Ready(Bytes::from_static(unsent.as_bytes()), Outcome::Ok);
            }
        };
        let held = std::mem::take(&mut tx.held);
        let own = self.own(target);
        for held in held {
            own.send(held, Slot::new(self.notify.clone()));
        }
        own.send(frame, slot.clone());
        Pending::One(slot)
    }
}
