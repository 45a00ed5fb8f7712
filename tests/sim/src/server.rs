//! The ESL listener: accepts clients, starts a session per connection, and
//! can stop and resume listening (a killed or restarted FreeSWITCH) on the
//! same address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bus::Notice;
use crate::session;
use crate::state::Core;
use crate::templates::at;

/// Attempts to re-bind the listener after a restart (the port may linger).
const REBIND_ATTEMPTS: u32 = 50;

/// State shared by the handle, the listener and the sessions.
#[derive(Debug)]
pub struct Shared {
    core: Mutex<Core>,
    /// Bound ESL address (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// Whether the listener should accept.
    pub listening: watch::Sender<bool>,
    conns: Mutex<CancellationToken>,
    /// Stops everything.
    pub stop: CancellationToken,
    /// Session and listener tasks.
    pub tracker: TaskTracker,
    /// Connected ESL clients.
    pub clients: AtomicUsize,
}

impl Shared {
    /// Shared state around a core, for a listener bound at `addr`.
    pub fn new(core: Core, addr: SocketAddr) -> Self {
        Self {
            core: Mutex::new(core),
            addr,
            listening: watch::Sender::new(true),
            conns: Mutex::new(CancellationToken::new()),
            stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            clients: AtomicUsize::new(0),
        }
    }

    /// The core, locked. A panic while locked cannot leave it half-updated
    /// in a way worse than a crashed FreeSWITCH, so poisoning is ignored.
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Token cancelled when connections must drop without notice.
    pub fn conn_token(&self) -> CancellationToken {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Drops every connection without a notice (process killed).
    pub fn drop_connections(&self) {
        let mut t = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        t.cancel();
        *t = CancellationToken::new();
    }

    /// `fsctl shutdown`: SHUTDOWN event, "being shut down" notice to every
    /// client, listener closed.
    pub fn shutdown_box(&self) {
        {
            let mut core = self.core();
            let mut ev = core.event("SHUTDOWN", at::SHUTDOWN);
            ev.push("Event-Info", "System Shutting Down");
            core.fire(ev);
            core.disconnect_all(Notice::Shutdown);
        }
        self.listening.send_replace(false);
    }

    /// Number of connected ESL clients.
    pub fn client_count(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }
}

/// The next value of the listening switch, or `None` once the handle that
/// flips it is gone (the simulator is shutting down).
async fn next_listening(rx: &mut watch::Receiver<bool>) -> Option<bool> {
    rx.changed().await.ok()?;
    Some(*rx.borrow_and_update())
}

/// Accepts connections until `shared.stop`, following `shared.listening`.
pub async fn accept_loop(shared: Arc<Shared>, first: TcpListener) {
    let mut listening = shared.listening.subscribe();
    let mut listener = Some(first);
    loop {
        let Some(l) = listener.as_ref() else {
            tokio::select! {
                biased;
                () = shared.stop.cancelled() => return,
                now = next_listening(&mut listening) => match now {
                    None => return,
                    Some(true) => listener = rebind(&shared).await,
                    Some(false) => {}
                },
            }
            continue;
        };
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            now = next_listening(&mut listening) => match now {
                None => return,
                Some(false) => {
                    tracing::info!(esl.addr = %shared.addr, "esl listener closed");
                    listener = None;
                }
                Some(true) => {}
            },
            accepted = l.accept() => match accepted {
                Ok((stream, peer)) => {
                    let token = shared.conn_token();
                    let s = shared.clone();
                    shared.tracker.spawn(session::run(stream, peer, s, token));
                }
                Err(e) => tracing::warn!(error = %e, "esl accept failed"),
            },
        }
    }
}

async fn rebind(shared: &Shared) -> Option<TcpListener> {
    for attempt in 0..REBIND_ATTEMPTS {
        match TcpListener::bind(shared.addr).await {
            Ok(l) => {
                tracing::info!(esl.addr = %shared.addr, "esl listener open again");
                return Some(l);
            }
            Err(e) => {
                tracing::debug!(error = %e, attempt, "esl re-bind failed, retrying");
                tokio::select! {
                    () = shared.stop.cancelled() => return None,
                    () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                }
            }
        }
    }
    tracing::error!(esl.addr = %shared.addr, "esl listener could not be re-bound");
    None
}
