//! The slot map of a Redis Cluster behind a `mode: pool` listener
//! (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/): learnt
//! from `CLUSTER SLOTS` on the first client and after every `MOVED`, corrected slot by slot
//! by the `MOVED` replies themselves in between. Nodes are named as the cluster announces
//! them (`ip:port`), and join the pool's servers the first time the map names them.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_codecs::resp::FrameScanner;
use sluice_filters::redis::cluster_slots::{parse_cluster_slots, SlotRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::upstream::login;
use super::{Placement, Pools};

const CLUSTER_SLOTS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/// The server of each hash slot, as last learnt.
pub struct SlotMap {
    slots: Vec<Option<usize>>,
    known: bool,
    refreshing: bool,
}

impl SlotMap {
    pub fn new(slots: usize) -> SlotMap {
        SlotMap { slots: vec![None; slots], known: false, refreshing: false }
    }

    pub fn server_of(&self, slot: u16) -> Option<usize> {
        self.slots.get(usize::from(slot)).copied().flatten()
    }

    pub fn set(&mut self, slot: u16, server: usize) {
        if let Some(entry) = self.slots.get_mut(usize::from(slot)) {
            *entry = Some(server);
        }
    }
}

impl Pools {
    /// Whether the slot map is known (always, for a ring of servers).
    pub(super) fn placement_known(&self) -> bool {
        match &self.placement {
            Placement::Ring(_) => true,
            Placement::Slots(map) => map.borrow().known,
        }
    }

    /// Learns the slot map from the first server that answers `CLUSTER SLOTS`, unless a
    /// refresh is already under way. Returns whether the map is known afterwards.
    pub(super) async fn refresh(self: &Rc<Self>) -> bool {
        let Placement::Slots(map) = &self.placement else { return true };
        if std::mem::replace(&mut map.borrow_mut().refreshing, true) {
            return map.borrow().known;
        }
        let candidates: Vec<SocketAddr> = self.servers.borrow().iter().map(|s| s.address).collect();
        let mut learnt = None;
        for address in candidates {
            if let Some(ranges) = self.ask_slots(address).await {
                learnt = Some(ranges);
                break;
            }
        }
        map.borrow_mut().refreshing = false;
        let Some(ranges) = learnt else { return map.borrow().known };
        let servers: Vec<Option<usize>> = ranges.iter().map(|r| self.server_named(&r.primary)).collect();
        let mut map = map.borrow_mut();
        for (range, server) in ranges.iter().zip(servers) {
            for slot in range.start..=range.end {
                if let Some(server) = server {
                    map.set(slot, server);
                }
            }
        }
        map.known = true;
        self.redirections.refresh.increment(1);
        true
    }

    /// Refreshes in the background (after a MOVED: more slots may have moved with it).
    pub(super) fn refresh_soon(self: &Rc<Self>) {
        let pools = self.clone();
        tokio::task::spawn_local(async move {
            pools.refresh().await;
        });
    }

    /// Records that `slot` now lives on `node`; the index of that node's server.
    pub(super) fn moved(&self, slot: u16, node: &str) -> Option<usize> {
        let server = self.server_named(node)?;
        if let Placement::Slots(map) = &self.placement {
            map.borrow_mut().set(slot, server);
        }
        Some(server)
    }

    async fn ask_slots(&self, address: SocketAddr) -> Option<Vec<SlotRange>> {
        let exchange = async {
            let mut stream = TcpStream::connect(address).await.ok()?;
            if let Some(auth) = &self.auth {
                login(&mut stream, auth, self.limits, self.connect_timeout).await.ok()?;
            }
            stream.write_all(CLUSTER_SLOTS).await.ok()?;
            let mut reply = BytesMut::with_capacity(4096);
            let mut scanner = FrameScanner::new(self.limits);
            loop {
                if stream.read_buf(&mut reply).await.ok()? == 0 {
                    return None;
                }
                if let Some(n) = scanner.scan(&reply).ok()? {
                    return parse_cluster_slots(&reply.split_to(n).freeze());
                }
            }
        };
        tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), exchange).await.ok().flatten()
    }
}
