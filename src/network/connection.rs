//! The Connection actor: reads length-prefixed frames (capped before allocation), hands each
//! request to the dispatcher, and writes responses strictly in request order while up to
//! `max_in_flight_per_connection` requests (and at most `max_in_flight_bytes_per_connection`
//! bytes of them) run concurrently; beyond either limit the connection stops reading, so TCP
//! pushes back on the client.
//!
//! Reading happens in the actor (a stream of frames); each request becomes a future that is
//! queued, in arrival order, to this connection's writer task, which polls them together
//! (`FuturesOrdered`) and writes each response as soon as it and all earlier ones are done.
//! An invalid frame or a request that must close the connection stops only this connection.

use super::listener::ConnStats;
use super::ListenerInfo;
use crate::auth::session::{SaslSession, Step};
use crate::broker::Broker;
use crate::handlers::{
    dispatch, encode_response, sasl_authenticate, sasl_handshake, Outcome, ProduceGate,
};
use crate::protocol::frame::{FrameCodec, FrameError, FrameLimits};
use actix::prelude::*;
use bytes::{Buf, Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::StreamExt;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::codec::FramedRead;

type Pending = BoxFuture<'static, Outcome>;

pub struct Connection {
    broker: Arc<Broker>,
    peer: SocketAddr,
    /// The listener the client connected through (Metadata advertises its addresses).
    listener: Arc<ListenerInfo>,
    queue: mpsc::Sender<Pending>,
    stats: Arc<ConnStats>,
    sasl: SaslSession,
    limits: Arc<FrameLimits>,
    /// Request bytes in flight, in KiB permits (released when the request is answered).
    in_flight_kib: Arc<Semaphore>,
    budget_kib: u32,
    /// Released once the latest Produce queued its appends (keeps offsets in request order).
    last_produce: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Authentication failed: the connection closes once the failure is written; nothing
    /// more is read from it.
    closing: bool,
    /// Who the client is for authorization (see `auth::principal`): from its TLS client
    /// certificate or `User:ANONYMOUS` at first; `User:` + the user name once SASL
    /// authentication succeeds.
    principal: Arc<str>,
}

/// Frame cap while a connection has not authenticated (Kafka's 512 KiB for SASL tokens).
pub const MAX_PRE_AUTH_FRAME: usize = 512 * 1024;

impl Connection {
    /// Start a Connection actor for an accepted socket (its two halves: TCP, or TLS after the
    /// handshake) on the current arbiter.
    pub fn start_on(
        rd: Box<dyn AsyncRead + Send + Unpin>,
        wr: Box<dyn AsyncWrite + Send + Unpin>,
        peer: SocketAddr,
        listener: Arc<ListenerInfo>,
        broker: Arc<Broker>,
        stats: Arc<ConnStats>,
        principal: Arc<str>,
    ) {
        let sasl = SaslSession::new(broker.users.clone(), listener.protocol.sasl());
        let max_frame = if sasl.required() {
            MAX_PRE_AUTH_FRAME
        } else {
            broker.settings.max_request_bytes
        };
        let limits = FrameLimits::new(max_frame);
        let in_flight = broker.settings.max_in_flight_per_connection;
        let budget_kib = (broker.settings.max_in_flight_bytes_per_connection / 1024)
            .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
            as u32;
        let (tx, rx) = mpsc::channel::<Pending>(in_flight);
        broker.metrics.connections_open.inc();
        Connection::create(move |ctx| {
            ctx.add_stream(FramedRead::new(rd, FrameCodec::with_limits(limits.clone())));
            let addr = ctx.address();
            actix::spawn(write_loop(rx, wr, in_flight, peer, addr));
            Connection {
                broker,
                peer,
                listener,
                queue: tx,
                stats,
                sasl,
                limits,
                in_flight_kib: Arc::new(Semaphore::new(budget_kib as usize)),
                budget_kib,
                last_produce: None,
                closing: false,
                principal,
            }
        });
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.stats.close(self.peer.ip());
        self.broker.metrics.connections_open.dec();
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
        if self.closing {
            return;
        }
        if self.sasl.required() {
            self.pre_auth(frame, ctx);
            return;
        }
        if frame.len() < crate::protocol::frame::MIN_REQUEST_BYTES {
            tracing::info!("closing connection from {}: short frame", self.peer);
            ctx.stop();
            return;
        }
        // Hold the frame's size in permits until it is answered; wait (not reading further)
        // while the connection's budget is used up.
        let kib = ((frame.len() / 1024) as u32 + 1).min(self.budget_kib);
        let (broker, peer, listener) = (self.broker.clone(), self.peer, self.listener.clone());
        let principal = self.principal.clone();
        // Frames arrive here in order: chain each Produce behind the previous one.
        let is_produce = i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::Produce as i16;
        let gate = if is_produce {
            let (gate, next) = ProduceGate::chain(self.last_produce.take());
            self.last_produce = Some(next);
            Some(gate)
        } else {
            None
        };
        // A Produce first takes its size from the broker-wide unflushed-bytes budget; while
        // that is used up, this connection stops reading (TCP pushes back on the producer).
        if is_produce {
            let unflushed = self.broker.unflushed.clone();
            let need = self.broker.unflushed_kib(frame.len());
            let this_conn = self.in_flight_kib.clone();
            let run =
                move |permit: OwnedSemaphorePermit, unflushed: OwnedSemaphorePermit| -> Pending {
                    Box::pin(async move {
                        let out = dispatch(
                            broker,
                            frame,
                            peer,
                            listener,
                            principal,
                            gate,
                            Some(unflushed),
                        )
                        .await;
                        drop(permit);
                        out
                    })
                };
            // Fast path: both budgets have room, no pause of the read loop.
            if let Ok(u) = unflushed.clone().try_acquire_many_owned(need) {
                match this_conn.clone().try_acquire_many_owned(kib) {
                    Ok(c) => return self.enqueue(run(c, u), ctx),
                    Err(TryAcquireError::Closed) => return ctx.stop(),
                    Err(TryAcquireError::NoPermits) => drop(u),
                }
            }
            ctx.wait(
                async move {
                    let u = unflushed.acquire_many_owned(need).await.ok()?;
                    let c = this_conn.acquire_many_owned(kib).await.ok()?;
                    Some((c, u))
                }
                .into_actor(self)
                .map(move |permits, act, ctx| match permits {
                    Some((c, u)) => act.enqueue(run(c, u), ctx),
                    None => ctx.stop(),
                }),
            );
            return;
        }
        let run = move |permit: OwnedSemaphorePermit| -> Pending {
            Box::pin(async move {
                let out = dispatch(broker, frame, peer, listener, principal, gate, None).await;
                drop(permit);
                out
            })
        };
        match self.in_flight_kib.clone().try_acquire_many_owned(kib) {
            Ok(permit) => self.enqueue(run(permit), ctx),
            Err(TryAcquireError::NoPermits) => {
                let sem = self.in_flight_kib.clone();
                ctx.wait(
                    async move { sem.acquire_many_owned(kib).await }
                        .into_actor(self)
                        .map(move |permit, act, ctx| match permit {
                            Ok(p) => act.enqueue(run(p), ctx),
                            Err(_) => ctx.stop(),
                        }),
                );
            }
            Err(TryAcquireError::Closed) => ctx.stop(),
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

impl Connection {
    /// Queue a request's future behind those already in flight (responses stay in order).
    fn enqueue(&mut self, fut: Pending, ctx: &mut Context<Self>) {
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

    fn respond_now(&mut self, out: Outcome, ctx: &mut Context<Self>) {
        self.enqueue(Box::pin(futures::future::ready(out)), ctx);
    }

    fn auth_failed(&mut self, reason: &str, ctx: &mut Context<Self>) {
        self.closing = true;
        self.broker.metrics.sasl_failures.inc();
        tracing::info!("SASL authentication from {} failed: {reason}", self.peer);
        self.respond_now(Outcome::Close("authentication failed".into()), ctx);
    }

    fn authenticated(&mut self) {
        self.limits
            .max_frame
            .store(self.broker.settings.max_request_bytes, Ordering::Relaxed);
        self.limits.raw_tokens.store(false, Ordering::Relaxed);
        if let Some(user) = &self.sasl.principal {
            self.principal = Arc::from(format!("User:{user}"));
        }
        tracing::debug!("{} authenticated as {}", self.peer, self.principal);
    }

    /// Before authentication only ApiVersions, SaslHandshake and SaslAuthenticate (or raw
    /// tokens after a v0 handshake) are served; anything else closes the connection.
    fn pre_auth(&mut self, frame: BytesMut, ctx: &mut Context<Self>) {
        if self.sasl.expects_raw_token() {
            match self.sasl.authenticate(&frame) {
                Step::Continue(tok) => self.respond_now(Outcome::Respond(raw_frame(&tok)), ctx),
                Step::Done(tok) => {
                    self.respond_now(Outcome::Respond(raw_frame(&tok)), ctx);
                    self.authenticated();
                }
                Step::Fail(msg) => self.auth_failed(&msg, ctx),
            }
            return;
        }
        if frame.len() < crate::protocol::frame::MIN_REQUEST_BYTES {
            // Raw tokens may be short; requests may not (the codec's minimum is off while a
            // v0 handshake expects tokens).
            return self.auth_failed("short frame before authentication", ctx);
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        match ApiKey::try_from(key) {
            Ok(ApiKey::ApiVersions) => {
                let fut: Pending = Box::pin(dispatch(
                    self.broker.clone(),
                    frame,
                    self.peer,
                    self.listener.clone(),
                    self.principal.clone(),
                    None,
                    None,
                ));
                self.enqueue(fut, ctx);
            }
            Ok(ApiKey::SaslHandshake) if (0..=1).contains(&version) => {
                let Some(RequestKind::SaslHandshake(req)) =
                    decode(ApiKey::SaslHandshake, version, frame)
                else {
                    return self.respond_now(Outcome::Close("bad SaslHandshake".into()), ctx);
                };
                let resp = sasl_handshake::respond(&mut self.sasl, &req, version);
                let ok = resp.error_code == 0;
                let out = encode_response(
                    ApiKey::SaslHandshake,
                    version,
                    correlation,
                    &ResponseKind::SaslHandshake(resp),
                );
                match out {
                    Ok(b) => self.respond_now(Outcome::Respond(b), ctx),
                    Err(e) => return self.respond_now(Outcome::Close(e.to_string()), ctx),
                }
                if ok && version == 0 {
                    self.limits.raw_tokens.store(true, Ordering::Relaxed);
                }
            }
            Ok(ApiKey::SaslAuthenticate) if (0..=2).contains(&version) => {
                let Some(RequestKind::SaslAuthenticate(req)) =
                    decode(ApiKey::SaslAuthenticate, version, frame)
                else {
                    return self.respond_now(Outcome::Close("bad SaslAuthenticate".into()), ctx);
                };
                let (resp, close) = sasl_authenticate::respond(&mut self.sasl, &req);
                let msg = resp.error_message.as_ref().map(|m| m.to_string());
                match encode_response(
                    ApiKey::SaslAuthenticate,
                    version,
                    correlation,
                    &ResponseKind::SaslAuthenticate(resp),
                ) {
                    Ok(b) => self.respond_now(Outcome::Respond(b), ctx),
                    Err(e) => return self.respond_now(Outcome::Close(e.to_string()), ctx),
                }
                if close {
                    self.auth_failed(msg.as_deref().unwrap_or("failed"), ctx);
                } else if !self.sasl.required() {
                    self.authenticated();
                }
            }
            _ => self.respond_now(
                Outcome::Close(format!("API key {key} before SASL authentication")),
                ctx,
            ),
        }
    }
}

/// A raw SASL token frame (after a v0 SaslHandshake).
fn raw_frame(tok: &[u8]) -> bytes::Bytes {
    let mut b = BytesMut::with_capacity(4 + tok.len());
    b.extend_from_slice(&(tok.len() as i32).to_be_bytes());
    b.extend_from_slice(tok);
    b.freeze()
}

fn decode(key: ApiKey, version: i16, frame: BytesMut) -> Option<RequestKind> {
    let mut buf = frame.freeze();
    crate::handlers::decode_request(key, version, &mut buf)
        .ok()
        .map(|(_, r)| r)
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
    mut wr: Box<dyn AsyncWrite + Send + Unpin>,
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
                    Some(Outcome::RespondChunks(mut chunks)) => {
                        if let Err(e) = write_all_vectored(&mut wr, &mut chunks).await {
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

/// Most buffers handed to one `writev` (Linux allows 1024).
const MAX_IOVECS: usize = 64;

/// Write every chunk, in order, with vectored writes (the chunks are shared record batches:
/// they go to the socket without being copied into one buffer first).
async fn write_all_vectored<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    chunks: &mut [Bytes],
) -> std::io::Result<()> {
    let mut i = 0;
    loop {
        while i < chunks.len() && chunks[i].is_empty() {
            i += 1;
        }
        if i == chunks.len() {
            return Ok(());
        }
        let slices: Vec<IoSlice<'_>> = chunks[i..]
            .iter()
            .take(MAX_IOVECS)
            .map(|c| IoSlice::new(c))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let len = chunks[i].len();
            if n >= len {
                n -= len;
                i += 1;
            } else {
                chunks[i].advance(n);
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `step` bytes per call, to exercise partial writes.
    struct Trickle {
        out: Vec<u8>,
        step: usize,
        calls: usize,
    }

    impl tokio::io::AsyncWrite for Trickle {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.out.extend_from_slice(&buf[..n]);
            self.calls += 1;
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let mut left = self.step;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.out.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
                if left == 0 {
                    break;
                }
            }
            self.calls += 1;
            std::task::Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[actix_rt::test]
    async fn vectored_writes_survive_partial_writes_and_empty_chunks() {
        let mut chunks: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![i as u8; (i % 7) as usize * 3]))
            .collect();
        let want: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        for step in [1, 5, 64, 100_000] {
            let mut w = Trickle {
                out: Vec::new(),
                step,
                calls: 0,
            };
            let mut c = chunks.clone();
            write_all_vectored(&mut w, &mut c).await.unwrap();
            assert_eq!(w.out, want, "step {step}");
            if step == 100_000 {
                // 200 chunks in batches of at most MAX_IOVECS buffers.
                assert!(w.calls <= 200usize.div_ceil(MAX_IOVECS));
            }
        }
        chunks.clear();
        let mut w = Trickle {
            out: Vec::new(),
            step: 3,
            calls: 0,
        };
        write_all_vectored(&mut w, &mut chunks).await.unwrap();
        assert_eq!(w.calls, 0);
    }
}
