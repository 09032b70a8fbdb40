//! The Connection actor: reads length-prefixed frames (capped before allocation), hands each
//! request to the dispatcher, and writes responses strictly in request order while up to
//! `max_in_flight_per_connection` requests run concurrently.
//!
//! Reading happens in the actor (a stream of frames); each request becomes a future that is
//! queued, in arrival order, to this connection's writer task, which polls them together
//! (`FuturesOrdered`) and writes each response as soon as it and all earlier ones are done.
//! An invalid frame or a request that must close the connection stops only this connection.

use super::listener::ConnStats;
use crate::broker::Broker;
use crate::handlers::{dispatch, Outcome};
use crate::protocol::frame::{FrameCodec, FrameError};
use actix::prelude::*;
use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;

type Pending = BoxFuture<'static, Outcome>;

pub struct Connection {
    broker: Arc<Broker>,
    peer: SocketAddr,
    queue: mpsc::Sender<Pending>,
    stats: Arc<ConnStats>,
}

impl Connection {
    /// Start a Connection actor for an accepted socket on the current arbiter.
    pub fn start_on(
        stream: TcpStream,
        peer: SocketAddr,
        broker: Arc<Broker>,
        stats: Arc<ConnStats>,
    ) {
        let max_frame = broker.settings.max_request_bytes;
        let in_flight = broker.settings.max_in_flight_per_connection;
        let (rd, wr) = stream.into_split();
        let (tx, rx) = mpsc::channel::<Pending>(in_flight);
        stats.open.fetch_add(1, Ordering::Relaxed);
        Connection::create(move |ctx| {
            ctx.add_stream(FramedRead::new(rd, FrameCodec::new(max_frame)));
            let addr = ctx.address();
            actix::spawn(write_loop(rx, wr, in_flight, peer, addr));
            Connection {
                broker,
                peer,
                queue: tx,
                stats,
            }
        });
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        tracing::debug!("connection from {} closed", self.peer);
    }
}

impl StreamHandler<Result<BytesMut, FrameError>> for Connection {
    fn handle(&mut self, item: Result<BytesMut, FrameError>, ctx: &mut Context<Self>) {
        let frame = match item {
            Ok(f) => f,
            Err(e) => {
                if !matches!(e, FrameError::Io(_)) {
                    tracing::info!("closing connection from {}: {e}", self.peer);
                }
                ctx.stop();
                return;
            }
        };
        let fut: Pending = Box::pin(dispatch(self.broker.clone(), frame, self.peer));
        match self.queue.try_send(fut) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(fut)) => {
                // Too many requests in flight: stop reading until the writer catches up.
                let q = self.queue.clone();
                ctx.wait(
                    async move {
                        let _ = q.send(fut).await;
                    }
                    .into_actor(self),
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => ctx.stop(),
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The client closed its side; the writer finishes what is queued, then stops us.
        let _ = ctx;
        let (tx, _) = mpsc::channel(1);
        // Dropping our sender lets the writer drain and exit.
        self.queue = tx;
    }
}

/// Sent by the writer task when the connection must end.
#[derive(Message)]
#[rtype(result = "()")]
struct WriterDone;

impl Handler<WriterDone> for Connection {
    type Result = ();
    fn handle(&mut self, _: WriterDone, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Pending>,
    mut wr: OwnedWriteHalf,
    max_in_flight: usize,
    peer: SocketAddr,
    conn: Addr<Connection>,
) {
    let mut pending: FuturesOrdered<Pending> = FuturesOrdered::new();
    let mut open = true;
    loop {
        if !open && pending.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            out = pending.next(), if !pending.is_empty() => {
                match out {
                    Some(Outcome::Respond(bytes)) => {
                        if let Err(e) = wr.write_all(&bytes).await {
                            tracing::debug!("write to {peer} failed: {e}");
                            break;
                        }
                    }
                    Some(Outcome::NoResponse) | None => {}
                    Some(Outcome::Close(reason)) => {
                        tracing::info!("closing connection from {peer}: {reason}");
                        break;
                    }
                }
            }
            f = rx.recv(), if open && pending.len() < max_in_flight => {
                match f {
                    Some(f) => pending.push_back(f),
                    None => open = false,
                }
            }
        }
    }
    let _ = wr.shutdown().await;
    conn.do_send(WriterDone);
}
