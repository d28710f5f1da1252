//! Workers: one thread each, running a single-threaded tokio runtime with its own
//! SO_REUSEPORT socket per listener (Envoy's threading model). A connection lives on the
//! worker that accepted it; nothing on the data path crosses threads or takes a lock.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
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
        // turn of the set (every wakeup of any connection), so that future is a flag the
        // control task sets when it ends, and the stop token and the channel are polled
        // only when they are woken.
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
        let ended = Rc::new(ControlEnded::default());
        let signal = EndOnDrop(ended.clone());
        let handle = local.spawn_local(async move {
            let _signal = signal;
            control.await
        });
        runtime.block_on(local.run_until(std::future::poll_fn(|cx| ended.poll(cx))));
        // The control task has ended: its outcome, a panic included, is ready.
        if let Err(e) = runtime.block_on(local.run_until(handle)) {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        // Dropping the set drops the connections still open (drain timeout or stop_now)
        // while the runtime is alive to deregister their sockets.
        drop(local);
    })
}

/// Whether the worker's control task has ended, and the waker of the block waiting for it.
#[derive(Default)]
struct ControlEnded {
    done: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl ControlEnded {
    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.done.get() {
            return Poll::Ready(());
        }
        let waker = match self.waker.take() {
            Some(waker) if waker.will_wake(cx.waker()) => waker,
            _ => cx.waker().clone(),
        };
        self.waker.set(Some(waker));
        Poll::Pending
    }
}

/// Held by the control task: marks it ended when dropped, also by a panic.
struct EndOnDrop(Rc<ControlEnded>);

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.0.done.set(true);
        if let Some(waker) = self.0.waker.take() {
            waker.wake();
        }
    }
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
