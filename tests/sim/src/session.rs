//! One ESL client connection, following mod_event_socket's listener loop:
//! `auth/request` on connect; before `auth` only `auth` and `exit` mean
//! anything (everything else gets `-ERR command not found`, the connection
//! stays); a wrong password gets `-ERR invalid`, the goodbye notice and a
//! close. Subscribed events are written between replies, in firing order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::{SinkExt, StreamExt};
use locus_esl::server::BYE_NOTICE;
use locus_esl::{Command, Frame, Request, ServerCodec};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::api::{self, After};
use crate::bus::Item;
use crate::server::Shared;
use crate::stamp;
use crate::subscription::Subscription;
use crate::templates::at;
use crate::verbs;

/// What to do after a command.
enum Next {
    Continue,
    /// Send the goodbye notice and close.
    Goodbye,
}

struct Session {
    shared: Arc<Shared>,
    wr: FramedWrite<OwnedWriteHalf, ServerCodec>,
    authed: bool,
    sub: Subscription,
}

struct ClientGuard<'a>(&'a Shared);

impl Drop for ClientGuard<'_> {
    fn drop(&mut self) {
        self.0.clients.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves one client until it leaves, is told to, or `kill` fires.
pub async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    kill: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    shared.clients.fetch_add(1, Ordering::SeqCst);
    let _guard = ClientGuard(&shared);
    let mut rx = shared.core().subscribe();
    let (rd, wr) = stream.into_split();
    let mut reader = FramedRead::new(rd, ServerCodec::default());
    let mut s = Session {
        shared: shared.clone(),
        wr: FramedWrite::new(wr, ServerCodec::default()),
        authed: false,
        sub: Subscription::default(),
    };
    tracing::debug!(%peer, "esl client connected");
    if s.send(&Frame::auth_request()).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            biased;
            () = kill.cancelled() => return,
            // The bus before `stop`: a pending shutdown notice goes out first.
            item = rx.recv() => match item {
                Ok(item) => {
                    if !s.deliver(item).await {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    // FreeSWITCH drops a listener that cannot keep up.
                    tracing::warn!(%peer, lost = n, "esl client too slow, disconnecting");
                    return;
                }
                Err(RecvError::Closed) => return,
            },
            () = shared.stop.cancelled() => return,
            cmd = reader.next() => {
                let cmd = match cmd {
                    Some(Ok(c)) => c,
                    Some(Err(e)) => {
                        tracing::warn!(%peer, error = %e, "bad esl input, closing");
                        return;
                    }
                    None => return,
                };
                // Events fired before this command are judged by the
                // subscription as it was when they fired.
                loop {
                    match rx.try_recv() {
                        Ok(item) => {
                            if !s.deliver(item).await {
                                return;
                            }
                        }
                        Err(TryRecvError::Lagged(_)) => return,
                        Err(_) => break,
                    }
                }
                match s.command(cmd).await {
                    Ok(Next::Continue) => {}
                    Ok(Next::Goodbye) => {
                        let _ = s.send(&Frame::disconnect_notice(BYE_NOTICE)).await;
                        s.close().await;
                        return;
                    }
                    Err(()) => return,
                }
            }
        }
    }
}

impl Session {
    async fn send(&mut self, frame: &Frame) -> Result<(), ()> {
        // An encode error means a header would have held a line break (a
        // client-chosen `Job-UUID` or filter value with a CR): the shared
        // encoder refuses to forge frames, so the connection ends instead.
        self.wr.send(frame).await.map_err(|e| {
            tracing::debug!(error = %e, "esl write failed, closing");
        })
    }

    /// Flushes and shuts the socket's write side (FreeSWITCH closes after
    /// a disconnect notice); the peer may be gone already, so errors are moot.
    async fn close(&mut self) {
        let _ = SinkExt::<Frame>::close(&mut self.wr).await;
    }

    /// Writes a bus item; false when the connection must end.
    async fn deliver(&mut self, item: Item) -> bool {
        match item {
            Item::Event(p) => {
                if self.authed && self.sub.wants(&p.event) {
                    return self.send(p.frame(self.sub.format)).await.is_ok();
                }
                true
            }
            Item::Disconnect(notice) => {
                let _ = self.send(&Frame::disconnect_notice(notice.body())).await;
                self.close().await;
                false
            }
        }
    }

    async fn reply(&mut self, text: &str) -> Result<Next, ()> {
        self.send(&Frame::command_reply(text, None)).await?;
        Ok(Next::Continue)
    }

    /// Replies, then says goodbye and closes.
    async fn last_reply(&mut self, text: &str) -> Result<Next, ()> {
        self.send(&Frame::command_reply(text, None)).await?;
        Ok(Next::Goodbye)
    }

    async fn command(&mut self, req: Request) -> Result<Next, ()> {
        match verbs::parse(&req.line) {
            Command::Exit => self.last_reply("+OK bye").await,
            // mod_event_socket compares only the first 4 (or 3) bytes.
            Command::Raw(line) if line.starts_with("exit") || line.starts_with("...") => {
                self.last_reply("+OK bye").await
            }
            Command::Auth(pass) if !self.authed => {
                if pass == self.shared.core().cfg.password {
                    self.authed = true;
                    return self.reply("+OK accepted").await;
                }
                self.last_reply("-ERR invalid").await
            }
            Command::Raw(line) if !self.authed && line.starts_with("userauth ") => {
                self.last_reply("-ERR invalid").await
            }
            _ if !self.authed => self.reply("-ERR command not found").await,
            Command::Api(rest) => self.api(&rest).await,
            Command::BgApi(rest) => self.bgapi(&rest, verbs::job_uuid(&req)).await,
            Command::Event(format, names) => {
                let r = self
                    .sub
                    .subscribe(Some(format), names.iter().map(String::as_str));
                self.reply(&r).await
            }
            Command::Raw(line) => {
                let r = verbs::other(&mut self.sub, &line);
                self.reply(&r).await
            }
            Command::Auth(_) => self.reply("-ERR command not found").await,
        }
    }

    async fn api(&mut self, rest: &str) -> Result<Next, ()> {
        let (cmd, arg) = verbs::split_cmd(rest);
        let out = {
            let mut core = self.shared.core();
            api::execute(&mut core, cmd, arg)
        };
        let after = out.after;
        let body = if out.body.is_empty() {
            "-ERR no reply\n".to_owned()
        } else {
            out.body
        };
        self.send(&Frame::api_response(body)).await?;
        self.after(after);
        Ok(Next::Continue)
    }

    async fn bgapi(&mut self, rest: &str, job: Option<&str>) -> Result<Next, ()> {
        let job = job.map_or_else(stamp::uuid, str::to_owned);
        self.send(&Frame::bgapi_reply(&job)).await?;
        let (cmd, arg) = verbs::split_cmd(rest);
        let after = {
            let mut core = self.shared.core();
            let out = api::execute(&mut core, cmd, arg);
            let mut ev = core.event("BACKGROUND_JOB", at::BACKGROUND_JOB);
            ev.push("Job-UUID", job.as_str());
            ev.push("Job-Command", cmd);
            if let Some(a) = arg {
                ev.push("Job-Command-Arg", a);
            }
            ev.set_body(out.body);
            core.fire(ev);
            out.after
        };
        self.after(after);
        Ok(Next::Continue)
    }

    fn after(&self, after: Option<After>) {
        match after {
            Some(After::Shutdown) => self.shared.shutdown_box(),
            Some(a) => a.run_app(&mut self.shared.core()),
            None => {}
        }
    }
}
