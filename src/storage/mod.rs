//! Object storage: DSN parsing, the storage layout of DESIGN.md, and the one wrapper through
//! which every object-store call goes (so failures can be injected and operations counted).
//!
//! Layout under the root:
//! `meta/topics/{topic}.json`, `meta/groups/{group}.json`,
//! `data/topic={topic}/partition={p}/{base:020}-{last:020}.parquet`.

pub mod cache;
pub mod clean;
pub mod merge;
pub mod segment;
pub mod wal;
pub mod writer;

use crate::error::{Error, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

/// Named failure points, for tests that break one kind of I/O on purpose.
#[derive(Debug, Default)]
pub struct FailPoints {
    /// Every put (segment and metadata writes) fails.
    pub put: AtomicBool,
    /// Every get fails.
    pub get: AtomicBool,
    /// The next N puts land and then report a server error, as an S3 PUT whose response was
    /// lost (a 500 or a timeout after the object was stored).
    pub put_lands_then_fails: AtomicU32,
    /// The next N puts land and then report `AlreadyExists`, as object_store's retry of such a
    /// PUT does (the conditional retry gets 412).
    pub put_lands_then_exists: AtomicU32,
    /// Every put first waits this many milliseconds (a slow or stalled store).
    pub put_delay_ms: AtomicU64,
}

/// Crash points, for kill -9 tests of multi-step operations: when the environment variable
/// `CRASH_AT` names this step (comma-separated), the process SIGKILLs itself right
/// there. Steps: `flush.after_put`, `compact.before_put`, `compact.after_put`,
/// `compact.after_swap`, `compact.after_delete`; `txn.before_markers` (a transaction's
/// outcome is persisted, no marker written yet) and `txn.after_markers` (its markers are
/// durable, its completion is not persisted).
pub fn crash_point(step: &str) {
    static AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| std::env::var("CRASH_AT").ok());
    if at
        .as_deref()
        .is_some_and(|a| a.split(',').any(|s| s == step))
    {
        tracing::error!("crash point {step} reached: killing the process (CRASH_AT)");
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// Take one from a failure-point counter; true when it was armed.
fn take_one(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// A listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    pub path: String,
    pub size: u64,
    pub last_modified_ms: i64,
}

/// The broker's handle on its object store.
#[derive(Clone, Debug)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// For a local folder: its path, so segment writes can be fsynced.
    local_root: Option<std::path::PathBuf>,
    pub failpoints: Arc<FailPoints>,
    description: String,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Storage {
    /// Open a storage DSN: a folder path, `file:///abs/path`, `memory://`, or
    /// `s3://bucket/prefix` (credentials and endpoint from the standard `AWS_*` variables;
    /// plain-http endpoints are allowed for MinIO and local S3 servers).
    pub fn open(dsn: &str) -> Result<Storage> {
        let dsn = dsn.trim();
        if dsn.starts_with("memory://") {
            return Ok(Storage::from_store(
                Arc::new(InMemory::new()),
                None,
                "memory://".into(),
            ));
        }
        if let Some(rest) = dsn.strip_prefix("s3://") {
            let (bucket, prefix) = match rest.split_once('/') {
                Some((b, p)) => (b, p.trim_matches('/')),
                None => (rest, ""),
            };
            if bucket.is_empty() {
                return Err(Error::Storage(format!("no bucket in {dsn}")));
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_allow_http(true);
            if let Ok(ep) = std::env::var("AWS_ENDPOINT_URL") {
                b = b.with_endpoint(ep);
            }
            if std::env::var("AWS_DEFAULT_REGION").is_err() && std::env::var("AWS_REGION").is_err()
            {
                b = b.with_region("us-east-1");
            }
            let s3 = b.build()?;
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                Arc::new(s3)
            } else {
                Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
            };
            return Ok(Storage::from_store(store, None, dsn.to_string()));
        }
        let path = dsn.strip_prefix("file://").unwrap_or(dsn);
        std::fs::create_dir_all(path)
            .map_err(|e| Error::Storage(format!("cannot create storage folder {path}: {e}")))?;
        let root = std::fs::canonicalize(path)
            .map_err(|e| Error::Storage(format!("cannot open storage folder {path}: {e}")))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(&root)?;
        Ok(Storage::from_store(
            Arc::new(local),
            Some(root.clone()),
            format!("file://{}", root.display()),
        ))
    }

    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        local_root: Option<std::path::PathBuf>,
        description: String,
    ) -> Storage {
        Storage {
            store,
            local_root,
            failpoints: Arc::new(FailPoints::default()),
            description,
            metrics: None,
        }
    }

    /// Count operations, bytes, latency and errors in these metrics.
    pub fn with_metrics(mut self, m: Arc<crate::metrics::Metrics>) -> Storage {
        self.metrics = Some(m);
        self
    }

    fn observe(&self, op: &str, bytes: usize, started: std::time::Instant, ok: bool) {
        if let Some(m) = &self.metrics {
            m.store_op(op, bytes, started.elapsed().as_secs_f64(), ok);
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    /// Write a new immutable object; fails if it already exists. On a local folder the file is
    /// fsynced before this returns, so "Ok" means on disk.
    pub async fn put_create(&self, path: &str, data: Bytes) -> Result<()> {
        self.put_mode(path, data, PutMode::Create).await
    }

    /// Write or replace an object (metadata documents).
    pub async fn put_overwrite(&self, path: &str, data: Bytes) -> Result<()> {
        self.put_mode(path, data, PutMode::Overwrite).await
    }

    async fn put_mode(&self, path: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let started = std::time::Instant::now();
        let len = data.len();
        let res = self.put_inner(path, data, mode).await;
        self.observe("put", len, started, res.is_ok());
        res
    }

    async fn put_inner(&self, path: &str, data: Bytes, mode: PutMode) -> Result<()> {
        if self.failpoints.put.load(Ordering::Relaxed) {
            return Err(Error::Storage(format!("injected put failure at {path}")));
        }
        let delay = self.failpoints.put_delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
        let lands_then_fails = take_one(&self.failpoints.put_lands_then_fails);
        let lands_then_exists = take_one(&self.failpoints.put_lands_then_exists);
        if let Some(root) = &self.local_root {
            let file = root.join(path);
            let create = matches!(mode, PutMode::Create);
            tokio::task::spawn_blocking(move || local_put(&file, &data, create))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => Error::AlreadyExists(path.to_string()),
                    _ => Error::Storage(format!("write {path}: {e}")),
                })?;
        } else {
            let opts = PutOptions {
                mode,
                ..Default::default()
            };
            match self
                .store
                .put_opts(&Path::from(path), PutPayload::from_bytes(data), opts)
                .await
            {
                Ok(_) => {}
                Err(object_store::Error::AlreadyExists { .. }) => {
                    return Err(Error::AlreadyExists(path.to_string()))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if lands_then_fails {
            return Err(Error::Storage(format!(
                "injected 500 after the put of {path} landed"
            )));
        }
        if lands_then_exists {
            return Err(Error::AlreadyExists(path.to_string()));
        }
        Ok(())
    }

    pub async fn get(&self, path: &str) -> Result<Bytes> {
        let started = std::time::Instant::now();
        let res = self.get_inner(path).await;
        self.observe(
            "get",
            res.as_ref().map_or(0, |b| b.len()),
            started,
            res.is_ok(),
        );
        res
    }

    async fn get_inner(&self, path: &str) -> Result<Bytes> {
        if self.failpoints.get.load(Ordering::Relaxed) {
            return Err(Error::Storage(format!("injected get failure at {path}")));
        }
        let r = self.store.get(&Path::from(path)).await?;
        Ok(r.bytes().await?)
    }

    /// Bytes `range` of an object (a row group of a segment or write-ahead object).
    pub async fn get_range(&self, path: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        let started = std::time::Instant::now();
        let res = async {
            if self.failpoints.get.load(Ordering::Relaxed) {
                return Err(Error::Storage(format!("injected get failure at {path}")));
            }
            Ok(self.store.get_range(&Path::from(path), range).await?)
        }
        .await;
        self.observe(
            "get",
            res.as_ref().map_or(0, |b| b.len()),
            started,
            res.is_ok(),
        );
        res
    }

    /// Get an object, `None` if it does not exist.
    pub async fn get_opt(&self, path: &str) -> Result<Option<Bytes>> {
        if self.failpoints.get.load(Ordering::Relaxed) {
            return Err(Error::Storage(format!("injected get failure at {path}")));
        }
        match self.store.get(&Path::from(path)).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        let started = std::time::Instant::now();
        let res = match self.store.delete(&Path::from(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        };
        self.observe("delete", 0, started, res.is_ok());
        res
    }

    /// List every object under `prefix` (start-up and administrative paths only, never per
    /// request).
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let p = Path::from(prefix);
        let started = std::time::Instant::now();
        let items: std::result::Result<Vec<_>, _> = self.store.list(Some(&p)).try_collect().await;
        self.observe("list", 0, started, items.is_ok());
        let items = items?;
        Ok(items
            .into_iter()
            .map(|m| Listed {
                path: m.location.to_string(),
                size: m.size,
                last_modified_ms: m.last_modified.timestamp_millis(),
            })
            .collect())
    }

    /// A real write/read/delete round trip, for readiness.
    pub async fn probe(&self) -> Result<()> {
        let path = "meta/.probe";
        let token = Bytes::from(format!("{}", std::process::id()));
        self.put_overwrite(path, token.clone()).await?;
        let got = self.get(path).await?;
        if got != token {
            return Err(Error::Storage("probe read back different bytes".into()));
        }
        Ok(())
    }
}

/// Write a file durably on a local folder: the bytes go to a temporary file in the target
/// folder, which is fsynced *before* it is linked (create: fails if the target exists) or
/// renamed (overwrite) into place; then the folder is fsynced, and so is every folder this
/// write created, so the new name survives a power loss, not just a crash of the process.
fn local_put(file: &std::path::Path, data: &[u8], create: bool) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file
        .parent()
        .ok_or_else(|| std::io::Error::other("no parent folder"))?;
    // Folders to create, outermost first, and fsync after (their parents hold the new names).
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d.to_path_buf());
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("object"),
        uuid::Uuid::new_v4().simple()
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        if create {
            std::fs::hard_link(&tmp, file)?;
            std::fs::remove_file(&tmp)?;
        } else {
            std::fs::rename(&tmp, file)?;
        }
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res?;
    for m in missing.iter().rev() {
        if let Some(parent) = m.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

/// `meta/topics/{topic}.json`
pub fn topic_meta_path(topic: &str) -> String {
    format!("meta/topics/{topic}.json")
}

/// `meta/deleted/{topic_id}.json`: a topic deletion in progress (its metadata may already be
/// gone). Recovery finishes the deletion of exactly that id's objects; objects of topics that
/// have neither metadata nor a tombstone are kept, never guessed to be garbage.
pub fn tombstone_path(topic_id: &[u8; 16]) -> String {
    format!("meta/deleted/{}.json", hex_id(topic_id))
}

/// `meta/quarantine/{file}.{ms}`: where an unreadable metadata document is moved aside.
pub fn quarantine_path(path: &str, now_ms: i64) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    format!("meta/quarantine/{file}.{now_ms}")
}

/// A topic id as 32 lowercase hex digits (the form used in paths and metadata).
pub fn hex_id(id: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*id).simple().to_string()
}

/// `data/topic={topic}/`: every incarnation of a topic name.
pub fn topic_prefix(topic: &str) -> String {
    format!("data/topic={topic}")
}

/// `data/topic={topic}/topic_id={id}/`: one incarnation's objects (legacy paths without an id
/// are `data/topic={topic}/partition={p}/`).
pub fn topic_id_prefix(topic: &str, topic_id: &[u8; 16]) -> String {
    format!("{}/topic_id={}", topic_prefix(topic), hex_id(topic_id))
}

/// The folder of a partition's segments.
pub fn partition_prefix(tp: &crate::log::TopicPartition) -> String {
    if tp.topic_id == [0; 16] {
        format!("{}/partition={}", topic_prefix(&tp.topic), tp.partition)
    } else {
        format!(
            "{}/partition={}",
            topic_id_prefix(&tp.topic, &tp.topic_id),
            tp.partition
        )
    }
}

/// `data/topic={topic}/topic_id={id}/partition={p}/{base:020}-{last:020}.parquet`
pub fn segment_path(tp: &crate::log::TopicPartition, base: i64, last: i64) -> String {
    format!("{}/{base:020}-{last:020}.parquet", partition_prefix(tp))
}

/// A compacted topic's cleaned segment: `…/{base:020}-{last:020}.c{generation}.parquet`
/// (cleaning may rewrite the same offset range again; the generation tells them apart and
/// the highest wins at recovery).
pub fn cleaned_segment_path(
    tp: &crate::log::TopicPartition,
    base: i64,
    last: i64,
    generation: i64,
) -> String {
    format!(
        "{}/{base:020}-{last:020}.c{generation}.parquet",
        partition_prefix(tp)
    )
}

/// Whether a segment path is a cleaned segment of a compacted topic.
pub fn is_cleaned_segment(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".parquet"))
        .is_some_and(|f| f.contains(".c"))
}

/// A segment path, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPath {
    pub topic: String,
    /// `None` for legacy paths written before topic ids were part of the layout.
    pub topic_id: Option<[u8; 16]>,
    pub partition: i32,
    pub base: i64,
    pub last: i64,
}

/// Parse a segment path (with or without the `topic_id=` level).
pub fn parse_segment_path(path: &str) -> Option<SegmentPath> {
    let rest = path.strip_prefix("data/topic=")?;
    let (topic, mut rest) = rest.split_once('/')?;
    let mut topic_id = None;
    if let Some(r) = rest.strip_prefix("topic_id=") {
        let (id, r) = r.split_once('/')?;
        topic_id = Some(*uuid::Uuid::parse_str(id).ok()?.as_bytes());
        rest = r;
    }
    let rest = rest.strip_prefix("partition=")?;
    let (partition, file) = rest.split_once('/')?;
    let file = file.strip_suffix(".parquet")?;
    // A cleaned segment's generation suffix: `{base}-{last}.c{generation}`.
    let file = match file.split_once(".c") {
        Some((range, generation)) if generation.parse::<i64>().is_ok() => range,
        Some(_) => return None,
        None => file,
    };
    let (base, last) = file.split_once('-')?;
    let (base, last): (i64, i64) = (base.parse().ok()?, last.parse().ok()?);
    if last < base || base < 0 {
        return None;
    }
    Some(SegmentPath {
        topic: topic.to_string(),
        topic_id,
        partition: partition.parse().ok()?,
        base,
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_paths_round_trip() {
        let legacy = crate::log::TopicPartition::new("orders", 3);
        let p = segment_path(&legacy, 10, 99);
        assert_eq!(
            p,
            "data/topic=orders/partition=3/00000000000000000010-00000000000000000099.parquet"
        );
        let parsed = parse_segment_path(&p).unwrap();
        assert_eq!((parsed.topic.as_str(), parsed.topic_id), ("orders", None));
        assert_eq!((parsed.partition, parsed.base, parsed.last), (3, 10, 99));
        let id = [7u8; 16];
        let tp = crate::log::TopicPartition::with_id("orders", id, 3);
        let p = segment_path(&tp, 10, 99);
        assert_eq!(
            p,
            "data/topic=orders/topic_id=07070707070707070707070707070707/partition=3/\
             00000000000000000010-00000000000000000099.parquet"
        );
        let parsed = parse_segment_path(&p).unwrap();
        assert_eq!(parsed.topic_id, Some(id));
        assert_eq!((parsed.partition, parsed.base, parsed.last), (3, 10, 99));
        assert_eq!(
            parse_segment_path("data/topic=x/partition=1/junk.parquet"),
            None
        );
        let c = cleaned_segment_path(&tp, 10, 99, 1234);
        assert!(c.ends_with("00000000000000000010-00000000000000000099.c1234.parquet"));
        let parsed = parse_segment_path(&c).unwrap();
        assert_eq!((parsed.base, parsed.last), (10, 99));
        assert!(is_cleaned_segment(&c) && !is_cleaned_segment(&p));
    }

    #[actix_rt::test]
    async fn memory_store_put_create_is_exclusive_and_probe_works() {
        let s = Storage::open("memory://").unwrap();
        s.put_create("a", Bytes::from_static(b"1")).await.unwrap();
        assert!(s.put_create("a", Bytes::from_static(b"2")).await.is_err());
        assert_eq!(s.get("a").await.unwrap(), Bytes::from_static(b"1"));
        s.probe().await.unwrap();
        assert_eq!(s.get_opt("missing").await.unwrap(), None);
        s.failpoints.put.store(true, Ordering::Relaxed);
        assert!(s.probe().await.is_err());
    }

    #[actix_rt::test]
    async fn local_folder_writes_files_in_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path().to_str().unwrap()).unwrap();
        let p = segment_path(&crate::log::TopicPartition::new("t", 0), 0, 1);
        s.put_create(&p, Bytes::from_static(b"x")).await.unwrap();
        assert!(dir.path().join(&p).exists());
        let listed = s.list("data").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].path, p);
        s.delete(&p).await.unwrap();
        s.delete(&p).await.unwrap();
    }
}
