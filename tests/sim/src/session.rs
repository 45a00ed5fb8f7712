//! One ESL client connection, following mod_event_socket's listener loop:
//! `auth/request` on connect; before `auth` only `auth` and `exit` mean
//! anything (everything else gets `-ERR command not found`, the connection
//! stays); a wrong password gets `-ERR invalid`, the goodbye notice and a
//! close. Subscribed events are written between replies, in firing order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::api::{self, After};
use crate::bus::{GOODBYE, Item};
use crate::server::Shared;
use crate::stamp;
use crate::subscription::Subscription;
use crate::templates::at;
use crate::wire::{self, Command, CommandDecoder};

/// What to do after a command.
enum Next {
    Continue,
    /// Send the goodbye notice and close.
    Goodbye,
}

struct Session {
    shared: Arc<Shared>,
    wr: OwnedWriteHalf,
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
    let mut reader = FramedRead::new(rd, CommandDecoder::default());
    let mut s = Session {
        shared: shared.clone(),
        wr,
        authed: false,
        sub: Subscription::default(),
    };
    tracing::debug!(%peer, "esl client connected");
    if s.write(wire::auth_request()).await.is_err() {
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
                        let _ = s.write(wire::disconnect_notice(GOODBYE)).await;
                        let _ = s.wr.shutdown().await;
                        return;
                    }
                    Err(()) => return,
                }
            }
        }
    }
}

impl Session {
    async fn write(&mut self, b: Bytes) -> Result<(), ()> {
        self.wr.write_all(&b).await.map_err(|_| ())
    }

    /// Writes a bus item; false when the connection must end.
    async fn deliver(&mut self, item: Item) -> bool {
        match item {
            Item::Event(p) => {
                if self.authed && self.sub.wants(&p.event) {
                    return self.write(p.frame(self.sub.format)).await.is_ok();
                }
                true
            }
            Item::Disconnect(notice) => {
                let _ = self.write(wire::disconnect_notice(notice.body())).await;
                let _ = self.wr.shutdown().await;
                false
            }
        }
    }

    async fn reply(&mut self, text: &str) -> Result<Next, ()> {
        self.write(wire::command_reply(text, &[])).await?;
        Ok(Next::Continue)
    }

    async fn command(&mut self, cmd: Command) -> Result<Next, ()> {
        let line = cmd.line.trim_end().to_owned();
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("exit") || lower.starts_with("...") {
            self.write(wire::command_reply("+OK bye", &[])).await?;
            return Ok(Next::Goodbye);
        }
        if !self.authed {
            if let Some(pass) = line.strip_prefix("auth ") {
                if pass == self.shared.core().cfg.password {
                    self.authed = true;
                    return self.reply("+OK accepted").await;
                }
                self.write(wire::command_reply("-ERR invalid", &[])).await?;
                return Ok(Next::Goodbye);
            }
            if lower.starts_with("userauth ") {
                self.write(wire::command_reply("-ERR invalid", &[])).await?;
                return Ok(Next::Goodbye);
            }
            return self.reply("-ERR command not found").await;
        }
        if let Some(rest) = strip_ci(&line, "api ") {
            return self.api(rest).await;
        }
        if let Some(rest) = strip_ci(&line, "bgapi ") {
            return self.bgapi(rest, cmd.header("Job-UUID")).await;
        }
        if let Some(rest) = strip_ci(&line, "filter ") {
            let r = self.sub.filter(rest);
            return self.reply(&r).await;
        }
        if lower.starts_with("nixevent") {
            let r = self.sub.nixevent(line.get(8..).unwrap_or_default());
            return self.reply(&r).await;
        }
        if lower.starts_with("noevents") {
            let r = self.sub.noevents();
            return self.reply(&r).await;
        }
        if lower.starts_with("nolog") {
            return self.reply("-ERR not loging").await;
        }
        if lower.starts_with("linger") || lower.starts_with("nolinger") {
            return self.reply("-ERR not controlling a session").await;
        }
        if lower.starts_with("event") {
            // mod_event_socket reads the words after the first space.
            let words = line.split_once(' ').map_or("", |(_, w)| w);
            let r = self.sub.event(words);
            return self.reply(&r).await;
        }
        self.reply("-ERR command not found").await
    }

    async fn api(&mut self, rest: &str) -> Result<Next, ()> {
        let (cmd, arg) = split_cmd(rest);
        let out = {
            let mut core = self.shared.core();
            api::execute(&mut core, cmd, arg)
        };
        let body = if out.body.is_empty() {
            "-ERR no reply\n"
        } else {
            &out.body
        };
        self.write(wire::api_response(body)).await?;
        self.after(out.after);
        Ok(Next::Continue)
    }

    async fn bgapi(&mut self, rest: &str, job: Option<&str>) -> Result<Next, ()> {
        let job = job.map_or_else(stamp::uuid, str::to_owned);
        let text = format!("+OK Job-UUID: {job}");
        self.write(wire::command_reply(&text, &[("Job-UUID", &job)]))
            .await?;
        let (cmd, arg) = split_cmd(rest);
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

fn strip_ci<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &line[prefix.len()..])
}

/// `cmd arg...` -> (`cmd`, `arg...`), as mod_event_socket splits at the
/// first space.
fn split_cmd(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(' ') {
        Some((c, a)) => (c, Some(a)),
        None => (rest, None),
    }
}
