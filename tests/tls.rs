//! TLS listeners with certificates made by `openssl` in the test (a CA, a server certificate
//! for 127.0.0.1, client certificates): the `heraclitus` binary with PLAINTEXT, SSL and
//! SASL_SSL listeners, spoken to by a rustls client over the raw protocol. Metadata advertises
//! the listener a client came through; a plaintext client, garbage, a stalled handshake, a
//! wrong CA, a missing or expired client certificate are all refused promptly while the broker
//! keeps serving; SIGHUP reloads the certificate without dropping connections. Real clients
//! (confluent-kafka, kafka-python, kcat) over SSL, SASL_SSL and mutual TLS: `tests/smoke/tls.py`,
//! run from here.
//!
//! Ignored by plain `cargo test` (they need the `openssl` command); `.ci/run` runs them.

mod common;

use common::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Run openssl; panic with its output on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`{name}.pem`, `{name}.key`).
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "30",
            "-subj",
            &format!("/CN={name}"),
        ],
    );
}

/// A certificate signed by `ca` (`{name}.pem`, `{name}.key`), valid for `days` (0: expires at
/// once), for 127.0.0.1 (server) or as a client.
fn make_cert(dir: &Path, ca: &str, name: &str, subject: &str, days: &str, server: bool) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    let ext = if server {
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    } else {
        "extendedKeyUsage=clientAuth\n"
    };
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            days,
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        make_ca(p, "ca");
        make_ca(p, "other-ca");
        make_cert(p, "ca", "server", "/CN=127.0.0.1", "30", true);
        make_cert(p, "other-ca", "server2", "/CN=127.0.0.1", "30", true);
        make_cert(p, "ca", "alice", "/CN=alice/OU=eng/O=Example", "30", false);
        make_cert(p, "other-ca", "mallory", "/CN=mallory", "30", false);
        Certs { dir }
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn s(&self, f: &str) -> String {
        self.path(f).to_str().unwrap().to_string()
    }
}

/// A rustls client trusting `ca`, presenting `client` (name of a cert/key pair) if given.
fn client_config(certs: &Certs, ca: &str, client: Option<&str>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(certs.path(&format!("{ca}.pem"))).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client {
        Some(name) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(certs.path(&format!("{name}.pem")))
                    .unwrap()
                    .map(|c| c.unwrap())
                    .collect();
            let key = PrivateKeyDer::from_pem_file(certs.path(&format!("{name}.key"))).unwrap();
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    })
}

type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connect and finish the handshake (a request is needed to surface a refused client
/// certificate with TLS 1.3: send ApiVersions and read its answer).
fn tls_connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsConn> {
    let sock = TcpStream::connect(addr)?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ClientConnection::new(
        config,
        ServerName::try_from("127.0.0.1").unwrap().to_owned(),
    )
    .map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, sock);
    api_versions(&mut s)?;
    Ok(s)
}

fn request<S: Read + Write>(
    s: &mut S,
    key: ApiKey,
    version: i16,
    req: RequestKind,
) -> std::io::Result<ResponseKind> {
    s.write_all(&encode_request(key, version, 7, &req))?;
    s.flush()?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    let mut b = bytes::Bytes::from(body);
    ResponseHeader::decode(&mut b, key.response_header_version(version)).unwrap();
    Ok(ResponseKind::decode(key, &mut b, version).unwrap())
}

fn api_versions<S: Read + Write>(s: &mut S) -> std::io::Result<()> {
    match request(
        s,
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("tls-test"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        ),
    )? {
        ResponseKind::ApiVersions(r) if r.error_code == 0 => Ok(()),
        other => Err(std::io::Error::other(format!("{other:?}"))),
    }
}

/// The brokers Metadata advertises: [(node, host, port)].
fn advertised<S: Read + Write>(s: &mut S) -> Vec<(i32, String, i32)> {
    let ResponseKind::Metadata(md) = request(
        s,
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
    )
    .unwrap() else {
        panic!()
    };
    md.brokers
        .iter()
        .map(|b| (b.node_id.0, b.host.to_string(), b.port))
        .collect()
}

/// A process's resident set (VmRSS) in kB.
fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The peer closed (EOF or reset) within `within`.
fn closed_within(mut s: TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) if t0.elapsed() <= within + Duration::from_millis(200) => {
                return t0.elapsed() <= within || s.read(&mut buf).map(|n| n == 0).unwrap_or(true);
            }
            Ok(0) | Err(_) => return false,
            Ok(_) => continue,
        }
    }
}

fn start(certs: &Certs, client_auth: &str) -> (BinaryBroker, [u16; 3]) {
    start_with(certs, client_auth, &[])
}

fn start_with(certs: &Certs, client_auth: &str, more: &[(&str, &str)]) -> (BinaryBroker, [u16; 3]) {
    let ports = [free_port(), free_port(), free_port()];
    let dir = certs.s("data");
    let listeners = format!(
        "PLAINTEXT://127.0.0.1:{},SSL://127.0.0.1:{},SASL_SSL://127.0.0.1:{}",
        ports[0], ports[1], ports[2]
    );
    let env = [
        ("HERACLITUS_LISTENERS", listeners),
        ("HERACLITUS_TLS__CERT_FILE", certs.s("server.pem")),
        ("HERACLITUS_TLS__KEY_FILE", certs.s("server.key")),
        ("HERACLITUS_TLS__CLIENT_CA_FILE", certs.s("ca.pem")),
        ("HERACLITUS_TLS__CLIENT_AUTH", client_auth.to_string()),
        ("HERACLITUS_TLS__HANDSHAKE_TIMEOUT_MS", "1000".to_string()),
        ("HERACLITUS_AUTH__ENABLED", "true".to_string()),
        ("HERACLITUS_AUTH__MECHANISM", "PLAIN".to_string()),
        ("HERACLITUS_AUTH__PLAIN_USERNAME", "admin".to_string()),
        (
            "HERACLITUS_AUTH__PLAIN_PASSWORD",
            "admin-secret".to_string(),
        ),
    ];
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(more);
    // --kafka-port is ignored once listeners are given.
    let b = BinaryBroker::start(&dir, ports[0], free_port(), &env);
    (b, ports)
}

fn addr(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

#[test]
#[ignore = "needs the openssl command (run by .ci/run)"]
fn listeners_tls_and_hostile_handshakes() {
    let certs = Certs::new();
    let (b, [plain, ssl, sasl_ssl]) = start(&certs, "requested");
    let trusted = client_config(&certs, "ca", None);

    // Each listener advertises itself.
    let mut s = tls_connect(addr(ssl), trusted.clone()).expect("TLS to the SSL listener");
    assert_eq!(
        advertised(&mut s),
        vec![(1, "127.0.0.1".into(), ssl as i32)]
    );
    let mut raw = Raw::connect(addr(plain));
    let ResponseKind::Metadata(md) = raw.request(
        ApiKey::Metadata,
        12,
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![]))),
    ) else {
        panic!()
    };
    assert_eq!(md.brokers[0].port, plain as i32, "PLAINTEXT needs no SASL");
    // SASL_SSL: TLS, then SASL before anything but ApiVersions/SaslHandshake.
    let mut s2 = tls_connect(addr(sasl_ssl), trusted.clone()).expect("TLS to SASL_SSL");
    let ResponseKind::SaslHandshake(h) = request(
        &mut s2,
        ApiKey::SaslHandshake,
        1,
        RequestKind::SaslHandshake(
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        ),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(h.error_code, 0);
    let ResponseKind::SaslAuthenticate(a) = request(
        &mut s2,
        ApiKey::SaslAuthenticate,
        2,
        RequestKind::SaslAuthenticate(
            SaslAuthenticateRequest::default()
                .with_auth_bytes(bytes::Bytes::from_static(b"\0admin\0admin-secret")),
        ),
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    assert_eq!(
        advertised(&mut s2),
        vec![(1, "127.0.0.1".into(), sasl_ssl as i32)]
    );

    // A plaintext Kafka client on the TLS port: closed promptly.
    let mut p = TcpStream::connect(addr(ssl)).unwrap();
    p.write_all(&encode_request(
        ApiKey::ApiVersions,
        0,
        1,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ))
    .unwrap();
    assert!(closed_within(p, Duration::from_secs(2)), "plaintext on TLS");
    // Garbage.
    let mut g = TcpStream::connect(addr(ssl)).unwrap();
    g.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    assert!(closed_within(g, Duration::from_secs(2)), "garbage");
    // A stalled handshake: closed after the handshake timeout (1 s).
    let t0 = Instant::now();
    let stalled = TcpStream::connect(addr(ssl)).unwrap();
    assert!(closed_within(stalled, Duration::from_secs(3)), "stalled");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "not before the timeout"
    );
    // 500 half-open connections at once: all closed within the timeout, the broker's memory
    // bounded (resident set at most 64 MB above what it was before).
    let rss_before = rss_kb(b.child.id());
    let half: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(addr(ssl)).unwrap())
        .collect();
    let rss_during = rss_kb(b.child.id());
    std::thread::sleep(Duration::from_millis(2500));
    for h in half {
        assert!(closed_within(h, Duration::from_millis(200)), "half-open");
    }
    let rss_after = rss_kb(b.child.id());
    println!(
        "broker RSS: {rss_before} kB, {rss_during} kB with 500 half-open, {rss_after} kB after"
    );
    assert!(
        rss_during.max(rss_after) < rss_before + 64 * 1024,
        "RSS {rss_before} kB -> {rss_during} kB with 500 half-open handshakes"
    );
    // A client trusting another CA refuses the server.
    assert!(tls_connect(addr(ssl), client_config(&certs, "other-ca", None)).is_err());
    // Client certificates (requested): a trusted one is accepted, an untrusted one refused.
    assert!(tls_connect(addr(ssl), client_config(&certs, "ca", Some("alice"))).is_ok());
    assert!(
        tls_connect(addr(ssl), client_config(&certs, "ca", Some("mallory"))).is_err(),
        "a certificate of another CA"
    );
    // The broker kept serving the first connections.
    api_versions(&mut s).unwrap();
    api_versions(&mut s2).unwrap();
    let metrics = http_get(addr(b.http_port), "/metrics").1;
    assert!(
        metrics.contains("tls_handshakes_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("tls_handshakes_total{result=\"failed\"}"));
    assert!(metrics.contains("tls_handshakes_total{result=\"timeout\"}"));
    b.terminate();
}

#[test]
#[ignore = "needs the openssl command (run by .ci/run)"]
fn mutual_tls_required_and_certificate_reload() {
    let certs = Certs::new();
    // An expired client certificate: valid for 0 days.
    make_cert(certs.dir.path(), "ca", "expired", "/CN=old", "0", false);
    let (b, [_, ssl, _]) = start(&certs, "required");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        tls_connect(addr(ssl), client_config(&certs, "ca", None)).is_err(),
        "no client certificate"
    );
    assert!(
        tls_connect(addr(ssl), client_config(&certs, "ca", Some("expired"))).is_err(),
        "expired"
    );
    let mut kept =
        tls_connect(addr(ssl), client_config(&certs, "ca", Some("alice"))).expect("alice");

    // Reload: the server certificate is replaced by one of another CA; after SIGHUP new
    // clients see it, the established connection goes on.
    let new_ca = client_config(&certs, "other-ca", Some("alice"));
    assert!(
        tls_connect(addr(ssl), new_ca.clone()).is_err(),
        "old certificate"
    );
    std::fs::copy(certs.path("server2.pem"), certs.path("server.pem")).unwrap();
    std::fs::copy(certs.path("server2.key"), certs.path("server.key")).unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &b.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t0 = Instant::now();
    while tls_connect(addr(ssl), new_ca.clone()).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(5), "reloaded on SIGHUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    api_versions(&mut kept).expect("established connection kept");
    b.terminate();
}

/// GET `path` over HTTPS (trusting `ca`): the status line and body.
fn https_get(port: u16, certs: &Certs, ca: &str, path: &str) -> std::io::Result<String> {
    let sock = TcpStream::connect(addr(port))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ClientConnection::new(
        client_config(certs, ca, None),
        ServerName::try_from("127.0.0.1").unwrap().to_owned(),
    )
    .map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, sock);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    s.flush()?;
    let mut out = String::new();
    match s.read_to_string(&mut out) {
        Ok(_) => Ok(out),
        // A server that closes without close_notify still answered in full.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(out),
        Err(e) => Err(e),
    }
}

/// `http_tls`: the HTTP port serves the listeners' certificate (a plain HTTP request gets no
/// answer), and a certificate reload applies to it too.
#[test]
#[ignore = "needs the openssl command (run by .ci/run)"]
fn http_port_over_tls_with_reload() {
    let certs = Certs::new();
    let http = free_port();
    // Started by hand: BinaryBroker waits for /ready over plain HTTP.
    let mut child = Command::new(env!("CARGO_BIN_EXE_heraclitus"))
        .args(["--storage-path", &certs.s("data"), "--kafka-port"])
        .arg(free_port().to_string())
        .args(["--http-port", &http.to_string()])
        .env("HERACLITUS_BIND_HOST", "127.0.0.1")
        .env("HERACLITUS_HTTP_TLS", "true")
        .env("HERACLITUS_TLS__CERT_FILE", certs.s("server.pem"))
        .env("HERACLITUS_TLS__KEY_FILE", certs.s("server.key"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn heraclitus");
    let t0 = Instant::now();
    while !https_get(http, &certs, "ca", "/ready").is_ok_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(t0.elapsed() < Duration::from_secs(30), "ready over https");
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = https_get(http, &certs, "ca", "/health").expect("https");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let metrics = https_get(http, &certs, "ca", "/metrics").expect("https");
    assert!(metrics.contains("heraclitus_connections_open"), "{metrics}");
    let plain = std::panic::catch_unwind(|| http_get(addr(http), "/health"));
    assert!(
        plain.map_or(true, |(status, _)| status != 200),
        "plain HTTP is not served"
    );
    assert!(https_get(http, &certs, "other-ca", "/health").is_err());
    std::fs::copy(certs.path("server2.pem"), certs.path("server.pem")).unwrap();
    std::fs::copy(certs.path("server2.key"), certs.path("server.key")).unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    while https_get(http, &certs, "other-ca", "/health").is_err() {
        assert!(t0.elapsed() < Duration::from_secs(5), "reloaded on SIGHUP");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// CreateTopics v5 of a one-partition topic over `s`: its error code.
fn create_topic<S: Read + Write>(s: &mut S, name: &str) -> i16 {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.to_string())))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let ResponseKind::CreateTopics(r) =
        request(s, ApiKey::CreateTopics, 5, RequestKind::CreateTopics(req)).unwrap()
    else {
        panic!()
    };
    r.topics[0].error_code
}

/// With mutual TLS the client certificate's subject is the principal ACLs see: Kafka's RFC 2253
/// form by default, the common name with `ssl_principal: cn`; a client without a certificate
/// is ANONYMOUS.
#[test]
#[ignore = "needs the openssl command (run by .ci/run)"]
fn certificate_subject_is_the_principal() {
    let certs = Certs::new();
    for (rule, super_user) in [
        // openssl -subj /CN=alice/OU=eng/O=Example: RFC 2253 writes the last RDN first.
        ("dn", "User:O=Example,OU=eng,CN=alice"),
        ("cn", "User:alice"),
    ] {
        let (b, [_, ssl, _]) = start_with(
            &certs,
            "requested",
            &[
                ("HERACLITUS_AUTHORIZATION__ENABLED", "true"),
                ("HERACLITUS_AUTHORIZATION__SSL_PRINCIPAL", rule),
                ("HERACLITUS_AUTHORIZATION__SUPER_USERS", super_user),
            ],
        );
        let mut alice =
            tls_connect(addr(ssl), client_config(&certs, "ca", Some("alice"))).expect("alice");
        assert_eq!(create_topic(&mut alice, &format!("by-{rule}")), 0, "{rule}");
        let mut anonymous =
            tls_connect(addr(ssl), client_config(&certs, "ca", None)).expect("no certificate");
        assert_eq!(
            create_topic(&mut anonymous, &format!("anon-{rule}")),
            29,
            "ANONYMOUS may not create topics"
        );
        b.terminate();
    }
}

/// confluent-kafka, kafka-python and kcat over SSL, SASL_SSL (PLAIN, SCRAM-SHA-512) and
/// mutual TLS.
#[test]
#[ignore = "needs openssl, Python clients and kcat (run by .ci/run)"]
fn real_clients_over_tls() {
    let certs = Certs::new();
    let ports = [free_port(), free_port(), free_port()];
    let scram = Command::new(env!("CARGO_BIN_EXE_heraclitus"))
        .args([
            "scram-credential",
            "--mechanism",
            "SCRAM-SHA-512",
            "--password",
            "s3cret",
        ])
        .output()
        .unwrap();
    assert!(
        scram.status.success(),
        "{}",
        String::from_utf8_lossy(&scram.stderr)
    );
    let scram = String::from_utf8(scram.stdout).unwrap().trim().to_string();
    let config = format!(
        "listeners: \"SSL://127.0.0.1:{ssl},SASL_SSL://127.0.0.1:{sasl},PLAINTEXT://127.0.0.1:{plain}\"\n\
         tls:\n  cert_file: {cert}\n  key_file: {key}\n  client_ca_file: {ca}\n  client_auth: requested\n\
         auth:\n  enabled: true\n  mechanisms: [PLAIN, SCRAM-SHA-512]\n  plain_username: admin\n  plain_password: admin-secret\n\
         \x20 users:\n    - username: carol\n      scram_sha_512: \"{scram}\"\n",
        ssl = ports[0],
        sasl = ports[1],
        plain = ports[2],
        cert = certs.s("server.pem"),
        key = certs.s("server.key"),
        ca = certs.s("ca.pem"),
    );
    std::fs::write(certs.path("broker.yaml"), config).unwrap();
    let b = BinaryBroker::start_with_args(
        &certs.s("data"),
        ports[2],
        free_port(),
        &[],
        &["--config", certs.s("broker.yaml").as_str()],
    );
    let out = Command::new(python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smoke/tls.py"))
        .args([
            format!("127.0.0.1:{}", ports[0]),
            format!("127.0.0.1:{}", ports[1]),
            certs.s("ca.pem"),
            certs.s("alice.pem"),
            certs.s("alice.key"),
            certs.s("other-ca.pem"),
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("tls: "), "{text}");
    b.terminate();
}
