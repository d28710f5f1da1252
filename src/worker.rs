//! Workers: one thread each, running a single-threaded tokio runtime with its own
//! SO_REUSEPORT socket per listener (Envoy's threading model). A connection lives on the
//! worker that accepted it; nothing on the data path crosses threads or takes a lock.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use sluice_filters::Protocol;
use socket2::Socket;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::LocalSet;
use tokio_util::sync::CancellationToken;

use crate::kafka_brokers::NewListener;
use crate::listener::ListenerRuntime;
use crate::tcp_proxy::{self, Stops};
use crate::udp_proxy;

/// Starts worker `id` with its sockets; it runs until `stop` is cancelled. Sockets of
/// listeners opened later (a `kafka` listener's per-broker listeners) arrive on `added`.
pub fn spawn(
    id: usize,
    sockets: Vec<(Arc<ListenerRuntime>, Socket)>,
    mut added: UnboundedReceiver<NewListener>,
    stops: Stops,
    stop: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name(format!("sluice-worker-{id}")).spawn(move || {
        let local = LocalSet::new();
        // The control loop is a task of its own: `run_until` polls its future on every
        // turn of the set, and a join handle costs less to poll than the stop token and
        // the channel, which then are polled only when they are woken.
        let control = async move {
            for (listener, socket) in sockets {
                start(id, listener, socket, &stops);
            }
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    Some((listener, socket)) = added.recv(), if !stops.accept.is_cancelled() => {
                        start(id, listener, socket, &stops);
                    }
                }
            }
        };
        let ended = runtime.block_on(local.run_until(async move { tokio::task::spawn_local(control).await }));
        if let Err(e) = ended {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        // Dropping the set drops the connections still open (drain timeout or stop_now)
        // while the runtime is alive to deregister their sockets.
        drop(local);
    })
}

/// Accepts on one listener socket, on the current worker.
fn start(id: usize, listener: Arc<ListenerRuntime>, socket: Socket, stops: &Stops) {
    let started = match listener.protocol() {
        Protocol::Tcp
        | Protocol::Redis
        | Protocol::Mysql
        | Protocol::Postgres
        | Protocol::Mongodb
        | Protocol::Kafka
        | Protocol::Http => tokio::net::TcpListener::from_std(socket.into())
            .map(|l| tokio::task::spawn_local(tcp_proxy::accept_loop(l, listener.clone(), stops.clone()))),
        Protocol::Udp => tokio::net::UdpSocket::from_std(socket.into())
            .map(|s| tokio::task::spawn_local(udp_proxy::serve(s, listener.clone(), stops.clone()))),
    };
    if let Err(e) = started {
        tracing::error!(worker = id, listener = %listener.name, error = %e, "cannot register listener socket");
    }
}
