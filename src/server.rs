//! Starting and stopping a whole proxy: telemetry, clusters, listeners bound once per
//! worker, the workers themselves, and a control thread that serves the admin API, does
//! periodic housekeeping and carries out the graceful drain.
//!
//! Drain (SIGTERM/SIGINT in the binary, [`ServerHandle::drain`] in tests): stop accepting,
//! let open connections finish for up to `drain_timeout`, close what is left, exit.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access_log::AccessLogs;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::kafka_brokers::{NewListener, Wiring};
use crate::listener::{bind_reuseport, ListenerRuntime};
use crate::tcp_proxy::Stops;
use crate::{admin, telemetry, worker};

const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10);
/// How often listeners' certificate files are checked for changes.
const TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// State the admin server and the drain share.
pub struct Shared {
    pub config: Config,
    pub listeners: Vec<(Arc<ListenerRuntime>, SocketAddr)>,
    pub clusters: Vec<Arc<Cluster>>,
    pub draining: AtomicBool,
    stops: Stops,
    drain_requested: CancellationToken,
    workers_stop: CancellationToken,
}

pub struct Server;

impl Server {
    /// Binds every socket and starts `workers` worker threads and the control thread.
    /// Fails without side effects left running if any socket cannot be bound.
    pub fn start(config: Config, workers: usize) -> anyhow::Result<ServerHandle> {
        let workers = workers.max(1);
        let prometheus = telemetry::prometheus();
        let clusters: Vec<Arc<Cluster>> = config.clusters.iter().map(|c| Arc::new(Cluster::new(c.clone()))).collect();
        let mut access_logs = AccessLogs::default();
        let mut listeners = Vec::new();
        let mut per_worker: Vec<Vec<_>> = (0..workers).map(|_| Vec::new()).collect();
        for (i, lc) in config.listeners.iter().enumerate() {
            let log = match &lc.access_log {
                Some(target) => Some(
                    access_logs
                        .open(target)
                        .with_context(|| format!("listeners[{i}].access_log: cannot open {target:?}"))?,
                ),
                None => None,
            };
            let query_log = match (lc.mysql.as_ref().and_then(|m| m.query_log.as_ref())).map(|q| ("mysql", q)).or(lc
                .postgres
                .as_ref()
                .and_then(|p| p.query_log.as_ref())
                .map(|q| ("postgres", q)))
            {
                Some((block, q)) => Some(
                    access_logs
                        .open(&q.path)
                        .with_context(|| format!("listeners[{i}].{block}.query_log: cannot open {:?}", q.path))?,
                ),
                None => None,
            };
            let runtime = Arc::new(
                ListenerRuntime::new(lc.clone(), clusters[lc.cluster_index].clone(), log, query_log)
                    .with_http(&clusters)
                    .with_clusters(&clusters),
            );
            let sockets = bind_reuseport(lc.address, lc.protocol, workers)
                .with_context(|| format!("listeners[{i}] ({}): cannot bind {} {}", lc.name, lc.protocol, lc.address))?;
            let bound = sockets[0].local_addr()?.as_socket().unwrap_or(lc.address);
            for (w, socket) in sockets.into_iter().enumerate() {
                per_worker[w].push((runtime.clone(), socket));
            }
            listeners.push((runtime, bound));
        }
        // Listeners opened later (a kafka listener's per-broker ones) reach the workers here.
        let (added_tx, added_rx): (Vec<_>, Vec<_>) =
            (0..workers).map(|_| tokio::sync::mpsc::unbounded_channel::<NewListener>()).unzip();
        for (runtime, bound) in &listeners {
            if let Some(brokers) = &runtime.kafka_brokers {
                brokers.wire(Wiring { parent: Arc::downgrade(runtime), bound: *bound, workers: added_tx.clone() });
            }
        }
        drop(added_tx);
        let admin_listener = std::net::TcpListener::bind(config.admin.address)
            .with_context(|| format!("admin.address: cannot bind {}", config.admin.address))?;
        admin_listener.set_nonblocking(true)?;
        let admin_addr = admin_listener.local_addr()?;

        let shared = Arc::new(Shared {
            config,
            listeners,
            clusters,
            draining: AtomicBool::new(false),
            stops: Stops { accept: CancellationToken::new(), tracker: TaskTracker::new() },
            drain_requested: CancellationToken::new(),
            workers_stop: CancellationToken::new(),
        });
        let mut threads = Vec::new();
        for (id, (sockets, added)) in per_worker.into_iter().zip(added_rx).enumerate() {
            threads.push(worker::spawn(id, sockets, added, shared.stops.clone(), shared.workers_stop.clone())?);
        }
        let control_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let control_shared = shared.clone();
        threads.push(std::thread::Builder::new().name("sluice-control".into()).spawn(move || {
            control_runtime.block_on(control(control_shared, admin_listener, prometheus));
        })?);
        tracing::info!(workers, admin = %admin_addr, listeners = shared.listeners.len(), "sluice started");
        Ok(ServerHandle { shared, admin_addr, threads, access_logs: Some(access_logs) })
    }
}

async fn control(
    shared: Arc<Shared>,
    admin_listener: std::net::TcpListener,
    prometheus: &'static metrics_exporter_prometheus::PrometheusHandle,
) {
    match tokio::net::TcpListener::from_std(admin_listener) {
        Ok(listener) => {
            tokio::spawn(admin::serve(listener, shared.clone(), prometheus));
        }
        Err(e) => tracing::error!(error = %e, "admin server cannot start"),
    }
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    let mut tls_reload = tokio::time::interval(TLS_RELOAD_INTERVAL);
    loop {
        tokio::select! {
            _ = shared.workers_stop.cancelled() => return,
            _ = shared.drain_requested.cancelled() => break,
            _ = tls_reload.tick() => {
                for (l, _) in &shared.listeners {
                    l.reload_tls();
                }
            }
            _ = housekeeping.tick() => {
                prometheus.run_upkeep();
                for (l, _) in &shared.listeners {
                    l.housekeep();
                }
            }
        }
    }
    let stops = &shared.stops;
    stops.accept.cancel();
    stops.tracker.close();
    let timeout = shared.config.drain_timeout;
    tracing::info!(open = stops.tracker.len(), timeout = ?timeout, "draining");
    if tokio::time::timeout(timeout, stops.tracker.wait()).await.is_err() {
        // Stopping the workers drops their connections; each one's record logs it as
        // closed by `drain`.
        tracing::warn!(open = stops.tracker.len(), "drain timeout: closing the remaining connections");
    }
    shared.workers_stop.cancel();
}

/// A running proxy. Dropping it stops everything at once.
pub struct ServerHandle {
    shared: Arc<Shared>,
    admin_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
    access_logs: Option<AccessLogs>,
}

impl ServerHandle {
    /// The address a listener is bound to (useful with port 0).
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.shared.listeners.iter().find(|(l, _)| &*l.name == name).map(|(_, a)| *a)
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Begins the graceful drain; [`ServerHandle::wait`] returns when it is over.
    pub fn drain(&self) {
        self.shared.draining.store(true, Ordering::Release);
        self.shared.drain_requested.cancel();
    }

    /// Stops accepting and closes every connection now.
    pub fn stop_now(&self) {
        (self.stop_handle())();
    }

    /// A callback that stops the server at once, usable from another thread.
    pub fn stop_handle(&self) -> impl FnOnce() + Send + 'static {
        let shared = self.shared.clone();
        move || {
            shared.draining.store(true, Ordering::Release);
            shared.stops.accept.cancel();
            shared.workers_stop.cancel();
        }
    }

    /// Waits until the server has stopped (after a drain or `stop_now`) and every
    /// access-log line is written.
    pub fn wait(mut self) {
        self.join();
    }

    fn join(&mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(logs) = self.access_logs.take() {
            logs.close();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.stop_now();
            self.join();
        }
    }
}

/// Raises this process's soft open-file limit towards `want`, as far as the hard limit
/// allows (raising that takes CAP_SYS_RESOURCE, and is the operator's call), and returns
/// the soft limit now in force (0 if it cannot be read). A proxy holds two descriptors per
/// connection, and distributions still start processes with a soft limit of 1024.
pub fn raise_open_file_limit(want: u64) -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < want.min(limit.rlim_max) {
        let raised = libc::rlimit { rlim_cur: want.min(limit.rlim_max), rlim_max: limit.rlim_max };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    limit.rlim_cur
}
