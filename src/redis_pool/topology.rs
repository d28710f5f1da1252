//! The slot map of a Redis Cluster behind a `mode: pool` listener
//! (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/): learnt
//! from `CLUSTER SLOTS` on the first client and after every `MOVED`, corrected slot by slot
//! by the `MOVED` replies themselves in between. Nodes are named as the cluster announces
//! them (`ip:port`), and join the pool's servers the first time the map names them.
//! The map is also asked for every 5 s, and a failed pooled connection asks for it too (a failover moves slots to a
//! replica without any MOVED until a command is sent).
//!
//! Replicas are remembered per primary; with `read_from: prefer_replica` or `any`, read
//! commands go to them (whose connections said READONLY), in turn, skipping a replica in
//! its backoff after a failure.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use sluice_codecs::resp::FrameScanner;
use sluice_filters::redis::cluster_slots::{parse_cluster_slots, SlotRange};
use sluice_filters::WriteQueue;

use super::group::{Group, Placement};
use crate::config::ReadFrom;

/// How often the slot map is asked for anyway (Envoy redis_proxy's default).
const REFRESH_EVERY: Duration = Duration::from_secs(5);
const CLUSTER_SLOTS: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

/// The server of each hash slot, as last learnt, and the replicas of each primary.
pub struct SlotMap {
    slots: Vec<Option<usize>>,
    /// By primary server index: its replicas' server indexes.
    replicas: Vec<Vec<usize>>,
    /// Turns for spreading reads over a primary's replicas.
    next_reader: Cell<usize>,
    known: bool,
    refreshing: bool,
}

impl SlotMap {
    pub fn new(slots: usize) -> SlotMap {
        SlotMap {
            slots: vec![None; slots],
            replicas: Vec::new(),
            next_reader: Cell::new(0),
            known: false,
            refreshing: false,
        }
    }

    pub fn server_of(&self, slot: u16) -> Option<usize> {
        self.slots.get(usize::from(slot)).copied().flatten()
    }

    /// The server a read of `slot` goes to under `policy`: one of the primary's replicas
    /// that is up, in turn (`prefer_replica`: the primary only when none is; `any`: the
    /// primary takes its turn too).
    pub fn reader_of(&self, slot: u16, policy: ReadFrom, is_up: impl Fn(usize) -> bool) -> Option<usize> {
        let primary = self.server_of(slot)?;
        let replicas = self.replicas.get(primary).map_or(&[][..], Vec::as_slice);
        let mut candidates: Vec<usize> = replicas.iter().copied().filter(|&r| is_up(r)).collect();
        if policy == ReadFrom::Any || candidates.is_empty() {
            candidates.push(primary);
        }
        let turn = self.next_reader.get();
        self.next_reader.set(turn.wrapping_add(1));
        Some(candidates[turn % candidates.len()])
    }

    pub fn set(&mut self, slot: u16, server: usize) {
        if let Some(entry) = self.slots.get_mut(usize::from(slot)) {
            *entry = Some(server);
        }
    }
}

impl Group {
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
        let candidates: Vec<(String, SocketAddr)> =
            self.servers.borrow().iter().map(|s| (s.name.clone(), s.address)).collect();
        let mut learnt = None;
        for (name, address) in candidates {
            if let Some(ranges) = self.ask_slots(&name, address).await {
                learnt = Some(ranges);
                break;
            }
        }
        map.borrow_mut().refreshing = false;
        let Some(ranges) = learnt else { return map.borrow().known };
        let reads_replicas = self.settings.read_from != ReadFrom::Primary;
        let servers: Vec<(Option<usize>, Vec<usize>)> = ranges
            .iter()
            .map(|r| {
                let replicas = match reads_replicas {
                    true => r.replicas.iter().filter_map(|name| self.server_named(name)).collect(),
                    false => Vec::new(),
                };
                (self.server_named(&r.primary), replicas)
            })
            .collect();
        let mut map = map.borrow_mut();
        map.replicas.clear();
        for (range, (server, replicas)) in ranges.iter().zip(servers) {
            let Some(server) = server else { continue };
            for slot in range.start..=range.end {
                map.set(slot, server);
            }
            if map.replicas.len() <= server {
                map.replicas.resize(server + 1, Vec::new());
            }
            map.replicas[server] = replicas;
        }
        map.known = true;
        self.redirections.refresh.increment(1);
        true
    }

    /// Asks for the slot map every [`REFRESH_EVERY`] while the group lives: replicas that
    /// join, and slots that move without any command of ours being redirected.
    pub(super) fn refresh_periodically(self: &Rc<Self>) {
        if !matches!(self.placement, Placement::Slots(_)) {
            return;
        }
        let group = Rc::downgrade(self);
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                let Some(group) = group.upgrade() else { return };
                group.refresh().await;
            }
        });
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

    async fn ask_slots(&self, name: &str, address: SocketAddr) -> Option<Vec<SlotRange>> {
        let s = &self.settings;
        let target = self.target(name, address, false);
        let exchange = async {
            let mut wire = target.open().await.ok()?;
            let mut out = WriteQueue::default();
            out.push(Bytes::from_static(CLUSTER_SLOTS));
            wire.write_all(&mut out).await.ok()?;
            let mut reply = BytesMut::with_capacity(4096);
            let mut scanner = FrameScanner::new(s.limits);
            loop {
                if wire.read_some(&mut reply).await.ok()? == 0 {
                    return None;
                }
                if let Some(n) = scanner.scan(&reply).ok()? {
                    return parse_cluster_slots(&reply.split_to(n).freeze());
                }
            }
        };
        tokio::time::timeout(s.connect_timeout + Duration::from_secs(1), exchange).await.ok().flatten()
    }
}
