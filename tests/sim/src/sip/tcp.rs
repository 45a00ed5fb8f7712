//! SIP over TCP on the SIP port too (RFC 3261 18.3): each connection is
//! framed by the proxy crate's [`SipCodec`] and fed to the same handlers
//! as UDP; whatever the box sends to a peer connected by TCP (responses,
//! in-dialog requests) goes back on that connection.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use locus_proxy::sip::{KeepAlive, SipCodec, SipFrame};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

use super::endpoint::Endpoint;

/// Datagrams queued per connection before the box stops reading it.
const QUEUE: usize = 256;

/// Accepts connections until the simulator stops.
pub(super) async fn accept_loop(ep: Arc<Endpoint>, listener: TcpListener) {
    // Runs until the simulator stops; each round accepts one connection.
    loop {
        let got = tokio::select! {
            biased;
            () = ep.shared.stop.cancelled() => return,
            r = listener.accept() => r,
        };
        match got {
            Ok((stream, peer)) => {
                ep.shared
                    .tracker
                    .spawn(connection(ep.clone(), stream, peer));
            }
            Err(e) => {
                tracing::debug!(error = %e, "sip tcp accept failed");
                tokio::task::yield_now().await;
            }
        }
    }
}

async fn connection(ep: Arc<Endpoint>, stream: TcpStream, peer: SocketAddr) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    ep.tcp_conns().insert(peer, tx.clone());
    let stop = ep.shared.stop.clone();
    ep.shared.tracker.spawn(async move {
        // Ends when every sender is gone (connection closed) or on stop.
        loop {
            let next = tokio::select! {
                biased;
                () = stop.cancelled() => return,
                b = rx.recv() => b,
            };
            let Some(bytes) = next else { return };
            if write.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut frames = FramedRead::new(read, SipCodec::default());
    // Ends at EOF, on a framing error, or on stop.
    loop {
        let frame = tokio::select! {
            biased;
            () = ep.shared.stop.cancelled() => break,
            f = frames.next() => f,
        };
        match frame {
            Some(Ok(SipFrame::Message(m))) => {
                let out = ep.handle_message(m, peer);
                ep.send_all(out).await;
            }
            Some(Ok(SipFrame::KeepAlive(KeepAlive::Ping))) => {
                // RFC 5626 4.4.1: a CRLFCRLF ping gets a CRLF pong.
                let _ = tx.send(Bytes::from_static(b"\r\n")).await;
            }
            Some(Ok(SipFrame::KeepAlive(KeepAlive::Pong))) => {}
            Some(Ok(SipFrame::Invalid { error, .. })) => {
                tracing::debug!(peer = %peer, error = %error, "unparsable sip over tcp");
            }
            Some(Err(e)) => {
                tracing::debug!(peer = %peer, error = %e, "sip tcp framing");
                break;
            }
            None => break,
        }
    }
    ep.tcp_conns().remove(&peer);
}
