//! Shared test harness: an in-process broker on port 0 (its own actix System on its own
//! thread), a raw Kafka request helper over TCP, and the spawned `heraclitus` binary for
//! kill -9 tests.
#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use heraclitus::config::Settings;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, ProduceRequest, RequestHeader, RequestKind, ResponseHeader,
    ResponseKind, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// A broker running in this process.
pub struct TestBroker {
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub storage: heraclitus::storage::Storage,
    system: actix_rt::System,
    thread: Option<std::thread::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn settings(storage: &str) -> Settings {
    let mut s = Settings {
        bind_host: "127.0.0.1".into(),
        kafka_port: 0,
        http_port: 0,
        ..Default::default()
    };
    s.storage.path = storage.to_string();
    s.performance.buffer_pool_size = 2;
    s
}

impl TestBroker {
    pub fn start(settings: Settings) -> TestBroker {
        let storage = heraclitus::storage::Storage::open(&settings.storage.path).expect("storage");
        Self::start_with(settings, storage)
    }

    pub fn start_with(settings: Settings, storage: heraclitus::storage::Storage) -> TestBroker {
        // TEST_LOG=heraclitus=debug shows the broker's log in a failing test's output.
        if std::env::var("TEST_LOG").is_ok() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
                .with_test_writer()
                .try_init();
        }
        let (tx, rx) = mpsc::channel();
        let st = storage.clone();
        let thread = std::thread::spawn(move || {
            let sys = actix_rt::System::new();
            let system = actix_rt::System::current();
            sys.block_on(async move {
                let running = heraclitus::server::start_with_storage(settings, st)
                    .await
                    .expect("broker starts");
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
                tx.send((running.kafka_addr, running.http_addr, system, stop_tx))
                    .unwrap();
                let _ = stop_rx.await;
                running.shutdown(Duration::from_secs(5)).await;
            });
        });
        let (kafka, http, system, stop) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("broker started");
        TestBroker {
            kafka,
            http,
            storage,
            system,
            thread: Some(thread),
            stop: Some(stop),
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka.port())
    }

    /// Graceful stop; waits for the broker thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.system.stop();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A raw Kafka connection for protocol-level tests.
pub struct Raw {
    pub stream: TcpStream,
    correlation: i32,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Raw {
            stream,
            correlation: 0,
        }
    }

    pub fn send_bytes(&mut self, b: &[u8]) {
        self.stream.write_all(b).expect("write");
    }

    /// Read one response frame; None if the connection was closed.
    pub fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let n = i32::from_be_bytes(len) as usize;
        let mut buf = vec![0u8; n];
        self.stream.read_exact(&mut buf).ok()?;
        Some(Bytes::from(buf))
    }

    /// True when the broker closed the connection (EOF or reset) within the read timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }

    pub fn request(&mut self, key: ApiKey, version: i16, req: RequestKind) -> ResponseKind {
        self.try_request(key, version, req).expect("response")
    }

    pub fn try_request(
        &mut self,
        key: ApiKey,
        version: i16,
        req: RequestKind,
    ) -> Option<ResponseKind> {
        self.correlation += 1;
        let frame = encode_request(key, version, self.correlation, &req);
        self.send_bytes(&frame);
        let (correlation, resp) = self.read_response(key, version)?;
        assert_eq!(correlation, self.correlation);
        Some(resp)
    }

    /// Read and decode one response: (correlation id, body); None if the connection closed.
    pub fn read_response(&mut self, key: ApiKey, version: i16) -> Option<(i32, ResponseKind)> {
        let mut body = self.read_frame()?;
        let header = <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(
            &mut body,
            key.response_header_version(version),
        )
        .expect("response header");
        let resp = ResponseKind::decode(key, &mut body, version).expect("response body");
        Some((header.correlation_id, resp))
    }
}

impl Raw {
    /// A connection authenticated with SASL/PLAIN (SaslHandshake v1, SaslAuthenticate v2);
    /// panics if authentication fails.
    pub fn connect_plain(addr: SocketAddr, user: &str, password: &str) -> Raw {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let mut raw = Raw::connect(addr);
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str("PLAIN");
        let ResponseKind::SaslHandshake(h) =
            raw.request(ApiKey::SaslHandshake, 1, RequestKind::SaslHandshake(hs))
        else {
            panic!("SaslHandshake")
        };
        assert_eq!(h.error_code, 0, "PLAIN enabled");
        let mut au = SaslAuthenticateRequest::default();
        au.auth_bytes = Bytes::from(format!("\0{user}\0{password}").into_bytes());
        let ResponseKind::SaslAuthenticate(a) = raw.request(
            ApiKey::SaslAuthenticate,
            2,
            RequestKind::SaslAuthenticate(au),
        ) else {
            panic!("SaslAuthenticate")
        };
        assert_eq!(a.error_code, 0, "{user} authenticates");
        raw
    }

    /// CreateTopics v5 for one single-partition topic with configs; asserts success.
    pub fn create_topic(&mut self, topic: &str, configs: &[(&str, &str)]) {
        let (code, msg) = self.create_topic_with(topic, 1, configs);
        assert_eq!(code, 0, "{msg:?}");
    }

    /// CreateTopics v5 for one topic: (error code, error message).
    pub fn create_topic_with(
        &mut self,
        topic: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> (i16, Option<String>) {
        use kafka_protocol::messages::create_topics_request::{
            CreatableTopic, CreatableTopicConfig,
        };
        let mut t = CreatableTopic::default();
        t.name = TopicName(StrBytes::from_string(topic.to_string()));
        t.num_partitions = partitions;
        t.replication_factor = 1;
        t.configs = configs
            .iter()
            .map(|(k, v)| {
                let mut c = CreatableTopicConfig::default();
                c.name = StrBytes::from_string(k.to_string());
                c.value = Some(StrBytes::from_string(v.to_string()));
                c
            })
            .collect();
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 5000;
        let ResponseKind::CreateTopics(r) =
            self.request(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(req))
        else {
            panic!()
        };
        let t = &r.topics[0];
        (
            t.error_code,
            t.error_message.as_ref().map(|m| m.to_string()),
        )
    }

    /// Produce v9, acks=-1, one batch to one partition: (error code, base offset).
    pub fn produce_batch(&mut self, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
        let req = produce_request(topic, partition, records);
        let ResponseKind::Produce(r) = self.request(ApiKey::Produce, 9, RequestKind::Produce(req))
        else {
            panic!()
        };
        let p = &r.responses[0].partition_responses[0];
        (p.error_code, p.base_offset)
    }
}

/// A Produce request (acks=-1, 10 s timeout) of one batch to one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    let mut pd = PartitionProduceData::default();
    pd.index = partition;
    pd.records = Some(records);
    let mut td = TopicProduceData::default();
    td.name = TopicName(StrBytes::from_string(topic.to_string()));
    td.partition_data = vec![pd];
    let mut req = ProduceRequest::default();
    req.acks = -1;
    req.timeout_ms = 10_000;
    req.topic_data = vec![td];
    req
}

pub fn encode_request(key: ApiKey, version: i16, correlation: i32, req: &RequestKind) -> Vec<u8> {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let mut h = RequestHeader::default();
    h.request_api_key = key as i16;
    h.request_api_version = version;
    h.correlation_id = correlation;
    h.client_id = Some(StrBytes::from_static_str("raw-test"));
    h.encode(&mut buf, key.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    let n = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&n.to_be_bytes());
    buf.to_vec()
}

/// GET an HTTP path on the broker's HTTP port; (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_with(addr, path, None)
}

/// [`http_get`] with an `Authorization` header.
pub fn http_get_with(addr: SocketAddr, path: &str, authorization: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("http connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// Build an uncompressed magic-2 record batch with the given values.
pub fn batch(values: &[&[u8]]) -> Bytes {
    batch_idempotent(values, -1, -1, -1)
}

/// Build a batch carrying producer id, epoch and base sequence (idempotent producers).
pub fn batch_idempotent(values: &[&[u8]], pid: i64, epoch: i16, seq: i32) -> Bytes {
    let mut body = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut rec = Vec::new();
        rec.push(0u8);
        put_varint(&mut rec, 0); // ts delta (varlong 0)
        put_varint(&mut rec, i as i64);
        put_varint(&mut rec, -1); // key null
        put_varint(&mut rec, v.len() as i64);
        rec.extend_from_slice(v);
        put_varint(&mut rec, 0);
        put_varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let mut b = BytesMut::new();
    b.put_i64(0);
    b.put_i32((49 + body.len()) as i32);
    b.put_i32(0);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(values.len() as i32 - 1);
    b.put_i64(1_700_000_000_000);
    b.put_i64(1_700_000_000_000);
    b.put_i64(pid);
    b.put_i16(epoch);
    b.put_i32(seq);
    b.put_i32(values.len() as i32);
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

/// Number of batches in a records blob.
pub fn count_batches(mut b: Bytes) -> usize {
    let mut n = 0;
    while b.remaining() >= 12 {
        let len = i32::from_be_bytes(b[8..12].try_into().unwrap()) as usize;
        if b.remaining() < 12 + len {
            break;
        }
        b.advance(12 + len);
        n += 1;
    }
    n
}

/// The folder of a partition's segments on a local store:
/// `data/topic={topic}/topic_id={id}/partition={p}` (the one incarnation of the topic there).
pub fn partition_dir(root: &std::path::Path, topic: &str, partition: i32) -> std::path::PathBuf {
    let topic_dir = root.join(format!("data/topic={topic}"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(entries) = std::fs::read_dir(&topic_dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("topic_id=") {
                    return e.path().join(format!("partition={partition}"));
                }
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no segments of {topic} under {}",
            topic_dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real `heraclitus` binary as a child process.
pub struct BinaryBroker {
    pub child: std::process::Child,
    pub kafka_port: u16,
    pub http_port: u16,
}

impl BinaryBroker {
    /// Start the binary on `storage` and wait until `/ready` answers 200.
    pub fn start(
        storage: &str,
        kafka_port: u16,
        http_port: u16,
        env: &[(&str, &str)],
    ) -> BinaryBroker {
        Self::start_with_args(storage, kafka_port, http_port, env, &[])
    }

    /// [`BinaryBroker::start`] with more command-line arguments (e.g. `--config FILE`).
    pub fn start_with_args(
        storage: &str,
        kafka_port: u16,
        http_port: u16,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> BinaryBroker {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::env::temp_dir().join(format!("heraclitus-test-{kafka_port}.log")))
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_heraclitus"));
        cmd.args([
            "--storage-path",
            storage,
            "--kafka-port",
            &kafka_port.to_string(),
            "--http-port",
            &http_port.to_string(),
        ])
        .args(args)
        .env("HERACLITUS_BIND_HOST", "127.0.0.1")
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn heraclitus");
        let b = BinaryBroker {
            child,
            kafka_port,
            http_port,
        };
        let http: SocketAddr = format!("127.0.0.1:{http_port}").parse().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if std::net::TcpStream::connect(http).is_ok() && http_get(http, "/ready").0 == 200 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "broker did not become ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.kafka_port)
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        unsafe_sigterm(self.child.id());
        self.child.wait().expect("wait")
    }
}

fn unsafe_sigterm(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

impl Drop for BinaryBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Find a tool installed by `.ci/run` (its venv) or on PATH.
pub fn find_tool(name: &str) -> Option<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    if let Ok(v) = std::env::var("CI_VENV") {
        dirs.push(std::path::Path::new(&v).join("bin"));
    }
    dirs.push("/var/tmp/heraclitus-venv/bin".into());
    if let Ok(p) = std::env::var("PATH") {
        dirs.extend(std::env::split_paths(&p));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// A Python interpreter with pyarrow (the CI venv, or python3 on PATH).
pub fn python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("CI_PYTHON") {
        return p.into();
    }
    find_tool("python")
        .filter(|p| p.to_string_lossy().contains("venv"))
        .or_else(|| find_tool("python3"))
        .expect("python3 with pyarrow is needed: pip install pyarrow (or run bash .ci/run)")
}

/// Access key and secret that [`S3Server`] accepts (SigV4-signed requests only).
pub const S3_ACCESS_KEY: &str = "testing";
pub const S3_SECRET_KEY: &str = "testing";

/// A real S3 HTTP server on loopback, in this process: `s3s-fs` (the `s3s` S3 protocol layer
/// over a temp folder, one sub-folder per bucket) served by hyper on its own thread and tokio
/// runtime, checking SigV4 signatures against [`S3_ACCESS_KEY`]/[`S3_SECRET_KEY`]. Conditional
/// PUTs (`If-None-Match: *`, `If-Match`) are answered by s3s-fs and made atomic per key by
/// [`ExclusiveConditionalPuts`]. Dropping it stops the server and removes the folder.
pub struct S3Server {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    root: tempfile::TempDir,
}

impl S3Server {
    /// Start a server holding one empty bucket.
    pub fn start(bucket: &str) -> S3Server {
        let root = tempfile::tempdir().expect("S3 server folder");
        std::fs::create_dir(root.path().join(bucket)).expect("create bucket");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs over the folder");
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(ExclusiveConditionalPuts::new(fs));
            b.set_auth(s3s::auth::SimpleAuth::from_single(
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
            ));
            b.build()
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("s3-server".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("S3 server runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("S3 server bind");
                    ready_tx
                        .send(listener.local_addr().unwrap().port())
                        .unwrap();
                    loop {
                        let socket = tokio::select! {
                            r = listener.accept() => match r {
                                Ok((socket, _)) => socket,
                                Err(_) => continue,
                            },
                            _ = &mut stop_rx => break,
                        };
                        let service = service.clone();
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                                .await;
                        });
                    }
                });
                // Open connections are dropped with the runtime.
                rt.shutdown_timeout(Duration::from_secs(5));
            })
            .expect("spawn S3 server thread");
        let port = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("S3 server started");
        S3Server {
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
            root,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder behind the server (bucket `b`'s objects are under `root()/b`).
    pub fn root(&self) -> &std::path::Path {
        self.root.path()
    }

    /// Environment for a broker using this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// s3s-fs with its conditional writes made atomic. s3s-fs answers `If-None-Match: *` and
/// `If-Match` with 412 Precondition Failed, but checks the condition before it streams the body
/// and renames it into place, so two concurrent `If-None-Match: *` PUTs of one key could both
/// succeed. Here conditional writes of the same key (hashed into one of a fixed set of locks)
/// run one at a time, as on S3. Every operation s3s-fs implements is passed through.
pub struct ExclusiveConditionalPuts {
    fs: s3s_fs::FileSystem,
    locks: Vec<tokio::sync::Mutex<()>>,
}

impl ExclusiveConditionalPuts {
    pub fn new(fs: s3s_fs::FileSystem) -> Self {
        ExclusiveConditionalPuts {
            fs,
            locks: (0..64).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn lock_for(&self, bucket: &str, key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut h);
        &self.locks[(h.finish() % self.locks.len() as u64) as usize]
    }
}

/// `impl S3` with the given methods plus pass-throughs to s3s-fs (one macro around the whole
/// impl, so `async_trait` sees every method).
macro_rules! s3_impl_passing_through {
    ({ $($own:item)* } $($op:ident: $input:ident => $output:ident),* $(,)?) => {
        #[async_trait::async_trait]
        impl s3s::S3 for ExclusiveConditionalPuts {
            $($own)*
            $(
                async fn $op(
                    &self,
                    req: s3s::S3Request<s3s::dto::$input>,
                ) -> s3s::S3Result<s3s::S3Response<s3s::dto::$output>> {
                    self.fs.$op(req).await
                }
            )*
        }
    };
}

s3_impl_passing_through! {
    {
        async fn put_object(
            &self,
            req: s3s::S3Request<s3s::dto::PutObjectInput>,
        ) -> s3s::S3Result<s3s::S3Response<s3s::dto::PutObjectOutput>> {
            if req.input.if_none_match.is_none() && req.input.if_match.is_none() {
                return self.fs.put_object(req).await;
            }
            let _guard = self.lock_for(&req.input.bucket, &req.input.key).lock().await;
            self.fs.put_object(req).await
        }

        async fn complete_multipart_upload(
            &self,
            req: s3s::S3Request<s3s::dto::CompleteMultipartUploadInput>,
        ) -> s3s::S3Result<s3s::S3Response<s3s::dto::CompleteMultipartUploadOutput>> {
            if req.input.if_none_match.is_none() && req.input.if_match.is_none() {
                return self.fs.complete_multipart_upload(req).await;
            }
            let _guard = self.lock_for(&req.input.bucket, &req.input.key).lock().await;
            self.fs.complete_multipart_upload(req).await
        }
    }
    create_bucket: CreateBucketInput => CreateBucketOutput,
    copy_object: CopyObjectInput => CopyObjectOutput,
    delete_bucket: DeleteBucketInput => DeleteBucketOutput,
    delete_object: DeleteObjectInput => DeleteObjectOutput,
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
    get_object: GetObjectInput => GetObjectOutput,
    head_bucket: HeadBucketInput => HeadBucketOutput,
    head_object: HeadObjectInput => HeadObjectOutput,
    list_buckets: ListBucketsInput => ListBucketsOutput,
    list_objects: ListObjectsInput => ListObjectsOutput,
    list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
    upload_part: UploadPartInput => UploadPartOutput,
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
    list_parts: ListPartsInput => ListPartsOutput,
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
}

impl S3Server {
    /// Stop serving for `down` (connections refused), then serve the same folder again on the
    /// same port: a restart of the S3 server.
    pub fn restart(&mut self, down: Duration) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::thread::sleep(down);
        let fs = s3s_fs::FileSystem::new(self.root.path()).expect("s3s-fs over the folder");
        let service = {
            let mut b = s3s::service::S3ServiceBuilder::new(ExclusiveConditionalPuts::new(fs));
            b.set_auth(s3s::auth::SimpleAuth::from_single(
                S3_ACCESS_KEY,
                S3_SECRET_KEY,
            ));
            b.build()
        };
        let port = self.port;
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("S3 server runtime");
            rt.block_on(async move {
                let listener = loop {
                    match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                        Ok(l) => break l,
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                };
                ready_tx.send(()).unwrap();
                loop {
                    let socket = tokio::select! {
                        r = listener.accept() => match r {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        _ = &mut stop_rx => break,
                    };
                    let service = service.clone();
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                            .await;
                    });
                }
            });
            rt.shutdown_timeout(Duration::from_secs(5));
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("S3 server restarted");
        self.stop = Some(stop_tx);
        self.thread = Some(thread);
    }
}

/// A real PostgreSQL server on loopback from the system's packages (Debian's `postgresql`:
/// `/usr/lib/postgresql/<version>/bin`), in a temp folder, for cluster-mode tests. As root it
/// runs as the `postgres` user (PostgreSQL refuses root). Dropping it stops the server
/// (immediate mode) and removes the folder.
pub struct Postgres {
    pub port: u16,
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    as_postgres: bool,
}

impl Postgres {
    /// The folder of PostgreSQL's server programs, if installed.
    pub fn bin_dir() -> Option<std::path::PathBuf> {
        if let Ok(d) = std::env::var("PG_BIN") {
            return Some(d.into());
        }
        let mut versions: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    }

    /// initdb, start on a free loopback port, create database `heraclitus`.
    pub fn start() -> Postgres {
        let bin = Self::bin_dir().expect(
            "PostgreSQL server programs not found (apt-get install postgresql, or set PG_BIN)",
        );
        let as_postgres = running_as_root();
        let dir = std::path::PathBuf::from(format!(
            "/tmp/heraclitus-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let pg = Postgres {
            port: free_port(),
            bin,
            dir,
            as_postgres,
        };
        if as_postgres {
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres", pg.dir.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown the PostgreSQL folder to postgres");
        }
        let data = pg.dir.join("data");
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "--auth=trust",
                "-U",
                "heraclitus",
                "--no-sync",
            ],
        );
        pg.start_server();
        pg.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "heraclitus",
                "heraclitus",
            ],
        );
        pg
    }

    fn run(&self, prog: &str, args: &[&str]) {
        let exe = self.bin.join(prog);
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL program");
        assert!(
            out.status.success(),
            "{prog} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Start the server (after [`Postgres::stop_immediate`]).
    pub fn start_server(&self) {
        let data = self.dir.join("data");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// Crash the server (`pg_ctl stop -m immediate`: no shutdown checkpoint).
    pub fn stop_immediate(&self) {
        let data = self.dir.join("data");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// Crash, stay down for `down`, start again.
    pub fn restart(&self, down: Duration) {
        self.stop_immediate();
        std::thread::sleep(down);
        self.start_server();
    }

    pub fn dsn(&self) -> String {
        format!("postgres://heraclitus@127.0.0.1:{}/heraclitus", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            std::process::Command::new(&exe)
        };
        let _ = cmd
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
