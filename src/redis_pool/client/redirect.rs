//! Following Redis Cluster redirections for a client
//! (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#redirection-and-resharding):
//! a `-MOVED` or `-ASK` reply to a command sent on a pooled connection is not passed on;
//! the command goes to the node named instead, and the client only ever sees the answer.
//! A read sent to a replica whose connection failed goes to the replica's primary.

use bytes::Bytes;
use sluice_filters::redis::cluster_slots::{redirect, Redirect};

use super::{Client, Entry, Pending};
use crate::redis_pool::upstream::Slot;

/// Redirections followed for one command before its reply goes to the client as it is.
const MAX_REDIRECTS: u8 = 5;
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

impl Client {
    /// When the reply at the front is a Redis Cluster MOVED or ASK, sends its command on
    /// to the node named (ASK: after ASKING, on the same connection), at most
    /// [`MAX_REDIRECTS`] times; true when it did. A MOVED also updates the slot map and
    /// has it refreshed in the background.
    pub(super) fn follow_redirect(&mut self) -> bool {
        let Some(Entry { reply: Pending::Routed { slot, command, group, redirects, fallback }, .. }) =
            self.queue.front_mut()
        else {
            return false;
        };
        // A read whose replica failed goes to the primary instead, once.
        if slot.is_failed() {
            let Some(primary) = fallback.take() else { return false };
            let fresh = Slot::new(self.notify.clone());
            self.pools.groups[*group].server(primary).pick(self.resp3, self.lane).send(command.clone(), fresh.clone());
            *slot = fresh;
            return true;
        }
        if *redirects >= MAX_REDIRECTS {
            return false;
        }
        let Some(redirect) = slot.peek(redirect) else { return false };
        let group = &self.pools.groups[*group];
        let (server, asking) = match &redirect {
            Redirect::Moved { slot, node } => {
                group.redirections.moved.increment(1);
                group.refresh_soon();
                (group.moved(*slot, node), false)
            }
            Redirect::Ask { node, .. } => {
                group.redirections.ask.increment(1);
                (group.server_named(node), true)
            }
        };
        let Some(server) = server else { return false };
        let fresh = Slot::new(self.notify.clone());
        let server = group.server(server);
        let connection = server.pick(self.resp3, self.lane);
        if asking {
            connection.send(Bytes::from_static(ASKING), Slot::new(self.notify.clone()));
        }
        connection.send(command.clone(), fresh.clone());
        *slot = fresh;
        *redirects += 1;
        true
    }
}
