//! The GroupCoordinator actor: a thin shell over [`Group`] (membership) and the group's
//! committed offsets. It parks JoinGroup/SyncGroup replies until the state machine releases
//! them, expires sessions on a timer, and is the single writer of `meta/groups/{group}.json`:
//! commits queue up while one write is in flight and the next write covers them all; a commit
//! is answered only after its write returned Ok, and becomes visible to OffsetFetch only then.

use super::state::{
    Effects, Group, GroupLimits, JoinRequest, JoinResult, Phase, Reply, SyncResult,
};
use super::{CommittedOffset, GroupDoc, OffsetStore};
use crate::error::code;
use crate::storage::writer::now_ms;
use actix::prelude::*;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How often sessions and join deadlines are checked.
const TICK: Duration = Duration::from_millis(100);

/// An idle coordinator without offsets stops after this long.
const IDLE_STOP: Duration = Duration::from_secs(30);
/// Kafka's offset.metadata.max.bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;

type OffsetChange = (String, i32, CommittedOffset);

/// A change to the group's offsets document. Every change goes through one queue and one
/// write at a time, applied in arrival order to the document as last written, so a deletion
/// can neither be lost under an in-flight commit nor be undone by one.
enum Change {
    Commit(Vec<OffsetChange>),
    /// OffsetDelete.
    Delete(Vec<(String, i32)>),
    /// The topic was deleted.
    DropTopic(String),
}

impl Change {
    fn apply(&self, offsets: &mut BTreeMap<String, BTreeMap<i32, CommittedOffset>>) {
        match self {
            Change::Commit(changes) => {
                for (t, p, c) in changes {
                    offsets.entry(t.clone()).or_default().insert(*p, c.clone());
                }
            }
            Change::Delete(keys) => {
                for (t, p) in keys {
                    if let Some(parts) = offsets.get_mut(t) {
                        parts.remove(p);
                        if parts.is_empty() {
                            offsets.remove(t);
                        }
                    }
                }
            }
            Change::DropTopic(t) => {
                offsets.remove(t);
            }
        }
    }

    fn touches(&self, topic: &str) -> bool {
        match self {
            Change::Commit(c) => c.iter().any(|(t, _, _)| t == topic),
            Change::Delete(k) => k.iter().any(|(t, _)| t == topic),
            Change::DropTopic(t) => t == topic,
        }
    }
}

struct CommitJob {
    change: Change,
    reply: Option<oneshot::Sender<i16>>,
}

pub struct GroupCoordinator {
    group: Group,
    offsets: BTreeMap<String, BTreeMap<i32, CommittedOffset>>,
    store: OffsetStore,
    joins: HashMap<String, oneshot::Sender<JoinResult>>,
    syncs: HashMap<String, oneshot::Sender<SyncResult>>,
    commit_queue: VecDeque<CommitJob>,
    writing: bool,
    published: super::SharedStats,
    /// Since when the group has been idle (see [`IDLE_STOP`]).
    idle_since: Option<Instant>,
}

impl GroupCoordinator {
    pub fn new(
        doc: GroupDoc,
        limits: GroupLimits,
        store: OffsetStore,
        published: super::SharedStats,
    ) -> GroupCoordinator {
        GroupCoordinator {
            group: Group::new(&doc.group, limits),
            offsets: doc.offsets,
            store,
            joins: HashMap::new(),
            syncs: HashMap::new(),
            commit_queue: VecDeque::new(),
            writing: false,
            published,
            idle_since: None,
        }
    }

    /// Publish what metrics read (state, members, committed offsets).
    fn publish(&self) {
        let committed = self
            .offsets
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, c)| ((t.clone(), *p), c.offset)))
            .collect();
        if let Ok(mut s) = self.published.write() {
            *s = super::GroupStats {
                phase: self.group.phase.name(),
                members: self.group.members.len(),
                committed,
            };
        }
    }

    fn deliver(&mut self, fx: Effects) {
        self.publish();
        for (id, r) in fx.joins {
            if let Some(tx) = self.joins.remove(&id) {
                let _ = tx.send(r);
            }
        }
        for (id, r) in fx.syncs {
            if let Some(tx) = self.syncs.remove(&id) {
                let _ = tx.send(r);
            }
        }
    }

    fn start_write(&mut self, ctx: &mut Context<Self>) {
        if self.writing || self.commit_queue.is_empty() {
            return;
        }
        self.writing = true;
        let jobs: Vec<CommitJob> = self.commit_queue.drain(..).collect();
        let mut next = self.offsets.clone();
        for job in &jobs {
            job.change.apply(&mut next);
        }
        let doc = GroupDoc {
            group: self.group.id.clone(),
            offsets: next.clone(),
        };
        let store = self.store.clone();
        let fut = async move { store.save(&doc).await };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.writing = false;
            let code = match res {
                Ok(()) => {
                    act.offsets = next;
                    act.publish();
                    code::NONE
                }
                Err(e) => {
                    tracing::warn!("group {}: writing offsets failed: {e}", act.group.id);
                    // A deleted topic's offsets are gone from memory at once; the next
                    // successful write persists that.
                    for job in &jobs {
                        if let Change::DropTopic(_) = job.change {
                            job.change.apply(&mut act.offsets);
                        }
                    }
                    act.publish();
                    // Retriable for clients; the commit is not visible. A deposed coordinator
                    // (cluster mode) sends the client to the new one.
                    if matches!(e, crate::error::Error::NotCoordinator) {
                        crate::error::code::NOT_COORDINATOR
                    } else {
                        super::state::COORDINATOR_NOT_AVAILABLE
                    }
                }
            };
            for job in jobs {
                if let Some(r) = job.reply {
                    let _ = r.send(code);
                }
            }
            act.start_write(ctx);
        }));
    }
}

impl Actor for GroupCoordinator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.publish();
        ctx.run_interval(TICK, |act, ctx| {
            if act.group.is_idle() {
                // An idle group with no offsets holds nothing worth an actor: stop after a
                // while (it is recreated on its next request), so group ids that clients merely
                // mention do not each keep an actor and a timer forever.
                let quiet = act.idle_since.get_or_insert_with(Instant::now).elapsed();
                if quiet >= IDLE_STOP
                    && act.offsets.is_empty()
                    && act.commit_queue.is_empty()
                    && !act.writing
                    && act.joins.is_empty()
                    && act.syncs.is_empty()
                {
                    ctx.stop();
                }
                return;
            }
            act.idle_since = None;
            let (expired, fx) = act.group.tick(Instant::now());
            for id in expired {
                tracing::info!("group {}: member {id} session expired", act.group.id);
            }
            act.deliver(fx);
        });
    }
}

#[derive(Message)]
#[rtype(result = "JoinResult")]
pub struct Join(pub JoinRequest);

impl Handler<Join> for GroupCoordinator {
    type Result = ResponseFuture<JoinResult>;

    fn handle(&mut self, msg: Join, _ctx: &mut Context<Self>) -> Self::Result {
        let (reply, fx) = self.group.join(msg.0, Instant::now());
        let out: Self::Result = match reply {
            Reply::Now(r) => Box::pin(async move { r }),
            Reply::Parked(member) => {
                let (tx, rx) = oneshot::channel();
                if let Some(old) = self.joins.insert(member.clone(), tx) {
                    let _ = old.send(JoinResult::error(
                        super::state::REBALANCE_IN_PROGRESS,
                        &member,
                    ));
                }
                Box::pin(async move {
                    rx.await.unwrap_or_else(|_| {
                        JoinResult::error(super::state::COORDINATOR_NOT_AVAILABLE, &member)
                    })
                })
            }
        };
        self.deliver(fx);
        out
    }
}

#[derive(Message)]
#[rtype(result = "SyncResult")]
pub struct Sync {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

impl Handler<Sync> for GroupCoordinator {
    type Result = ResponseFuture<SyncResult>;

    fn handle(&mut self, m: Sync, _ctx: &mut Context<Self>) -> Self::Result {
        let (reply, fx) = self.group.sync(
            &m.member_id,
            m.instance_id.as_deref(),
            m.generation,
            m.protocol_type.as_deref(),
            m.protocol_name.as_deref(),
            m.assignments,
            Instant::now(),
        );
        let out: Self::Result = match reply {
            Reply::Now(r) => Box::pin(async move { r }),
            Reply::Parked(member) => {
                let (tx, rx) = oneshot::channel();
                if let Some(old) = self.syncs.insert(member, tx) {
                    let _ = old.send(SyncResult {
                        error: super::state::REBALANCE_IN_PROGRESS,
                        assignment: Bytes::new(),
                    });
                }
                Box::pin(async move {
                    rx.await.unwrap_or(SyncResult {
                        error: super::state::COORDINATOR_NOT_AVAILABLE,
                        assignment: Bytes::new(),
                    })
                })
            }
        };
        self.deliver(fx);
        out
    }
}

#[derive(Message)]
#[rtype(result = "i16")]
pub struct Heartbeat {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
}

impl Handler<Heartbeat> for GroupCoordinator {
    type Result = i16;
    fn handle(&mut self, m: Heartbeat, _ctx: &mut Context<Self>) -> i16 {
        self.group.heartbeat(
            &m.member_id,
            m.instance_id.as_deref(),
            m.generation,
            Instant::now(),
        )
    }
}

/// Members leaving: (member id, instance id) → error code each.
#[derive(Message)]
#[rtype(result = "Vec<i16>")]
pub struct Leave(pub Vec<(String, Option<String>)>);

impl Handler<Leave> for GroupCoordinator {
    type Result = MessageResult<Leave>;
    fn handle(&mut self, m: Leave, _ctx: &mut Context<Self>) -> Self::Result {
        let mut codes = Vec::new();
        for (member, instance) in m.0 {
            let (c, fx) = self
                .group
                .leave(&member, instance.as_deref(), Instant::now());
            self.deliver(fx);
            codes.push(c);
        }
        MessageResult(codes)
    }
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct MemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupInfo {
    pub phase: Phase,
    pub protocol_type: String,
    pub protocol_name: String,
    pub members: Vec<MemberInfo>,
    pub has_offsets: bool,
}

#[derive(Message)]
#[rtype(result = "GroupInfo")]
pub struct Describe;

impl Handler<Describe> for GroupCoordinator {
    type Result = MessageResult<Describe>;
    fn handle(&mut self, _: Describe, _ctx: &mut Context<Self>) -> Self::Result {
        let g = &self.group;
        let proto = g.protocol_name.clone().unwrap_or_default();
        // Members are reported only once the group is Stable (as Kafka does).
        let members = if g.phase == Phase::Stable {
            g.members
                .values()
                .map(|m| MemberInfo {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(&proto),
                    assignment: m.assignment.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        MessageResult(GroupInfo {
            phase: g.phase,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if g.phase == Phase::Stable {
                proto
            } else {
                String::new()
            },
            members,
            has_offsets: !self.offsets.is_empty(),
        })
    }
}

/// OffsetCommit for one group. `Err(code)` rejects the whole request.
#[derive(Message)]
#[rtype(result = "Result<Vec<i16>, i16>")]
pub struct Commit {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// (topic, partition, offset, leader epoch, metadata)
    pub offsets: Vec<(String, i32, i64, i32, Option<String>)>,
}

impl Handler<Commit> for GroupCoordinator {
    type Result = ResponseActFuture<Self, Result<Vec<i16>, i16>>;

    fn handle(&mut self, m: Commit, ctx: &mut Context<Self>) -> Self::Result {
        if let Err(e) =
            self.group
                .check_commit(&m.member_id, m.instance_id.as_deref(), m.generation)
        {
            return Box::pin(actix::fut::ready(Err(e)));
        }
        let now = now_ms();
        let mut codes = Vec::with_capacity(m.offsets.len());
        let mut changes = Vec::new();
        for (t, p, offset, epoch, md) in m.offsets {
            if md.as_ref().is_some_and(|s| s.len() > MAX_METADATA_BYTES) {
                codes.push(OFFSET_METADATA_TOO_LARGE);
                continue;
            }
            codes.push(code::NONE);
            changes.push((
                t,
                p,
                CommittedOffset {
                    offset,
                    leader_epoch: epoch,
                    metadata: md,
                    commit_ms: now,
                },
            ));
        }
        if changes.is_empty() {
            return Box::pin(actix::fut::ready(Ok(codes)));
        }
        let (tx, rx) = oneshot::channel();
        self.commit_queue.push_back(CommitJob {
            change: Change::Commit(changes),
            reply: Some(tx),
        });
        self.start_write(ctx);
        Box::pin(
            async move {
                let c = rx.await.unwrap_or(super::state::COORDINATOR_NOT_AVAILABLE);
                Ok(codes
                    .into_iter()
                    .map(|x| if x == code::NONE { c } else { x })
                    .collect())
            }
            .into_actor(self),
        )
    }
}

/// OffsetFetch: `None` = every committed partition.
#[derive(Message)]
#[rtype(result = "Vec<(String, i32, Option<CommittedOffset>)>")]
pub struct FetchOffsets(pub Option<Vec<(String, Vec<i32>)>>);

impl Handler<FetchOffsets> for GroupCoordinator {
    type Result = MessageResult<FetchOffsets>;
    fn handle(&mut self, m: FetchOffsets, _ctx: &mut Context<Self>) -> Self::Result {
        let mut out = Vec::new();
        match m.0 {
            None => {
                for (t, parts) in &self.offsets {
                    for (p, c) in parts {
                        out.push((t.clone(), *p, Some(c.clone())));
                    }
                }
            }
            Some(req) => {
                for (t, parts) in req {
                    for p in parts {
                        let c = self.offsets.get(&t).and_then(|m| m.get(&p)).cloned();
                        out.push((t.clone(), p, c));
                    }
                }
            }
        }
        MessageResult(out)
    }
}

/// OffsetDelete: per-partition error codes, in request order.
#[derive(Message)]
#[rtype(result = "Result<Vec<i16>, i16>")]
pub struct DeleteOffsets(pub Vec<(String, i32)>);

const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

impl Handler<DeleteOffsets> for GroupCoordinator {
    type Result = ResponseActFuture<Self, Result<Vec<i16>, i16>>;
    fn handle(&mut self, m: DeleteOffsets, ctx: &mut Context<Self>) -> Self::Result {
        let subscribed = self.group.subscribed_topics();
        let mut codes = Vec::new();
        let mut keys = Vec::new();
        for (t, p) in m.0 {
            if subscribed.contains(&t) {
                codes.push(GROUP_SUBSCRIBED_TO_TOPIC);
                continue;
            }
            codes.push(code::NONE);
            keys.push((t, p));
        }
        if keys.is_empty() {
            return Box::pin(actix::fut::ready(Ok(codes)));
        }
        let (tx, rx) = oneshot::channel();
        self.commit_queue.push_back(CommitJob {
            change: Change::Delete(keys),
            reply: Some(tx),
        });
        self.start_write(ctx);
        Box::pin(
            async move {
                match rx.await.unwrap_or(super::state::COORDINATOR_NOT_AVAILABLE) {
                    code::NONE => Ok(codes),
                    c => Err(c),
                }
            }
            .into_actor(self),
        )
    }
}

/// A topic was deleted: forget its offsets (queued behind any write in flight, like commits).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DropTopic(pub String);

impl Handler<DropTopic> for GroupCoordinator {
    type Result = ();
    fn handle(&mut self, m: DropTopic, ctx: &mut Context<Self>) {
        let known = self.offsets.contains_key(&m.0)
            || self.commit_queue.iter().any(|j| j.change.touches(&m.0));
        if !known && !self.writing {
            return;
        }
        self.commit_queue.push_back(CommitJob {
            change: Change::DropTopic(m.0),
            reply: None,
        });
        self.start_write(ctx);
    }
}

/// DeleteGroups: only an empty group can go; its offsets document is deleted.
#[derive(Message)]
#[rtype(result = "i16")]
pub struct DeleteGroup;

const NON_EMPTY_GROUP: i16 = 68;

impl Handler<DeleteGroup> for GroupCoordinator {
    type Result = ResponseActFuture<Self, i16>;
    fn handle(&mut self, _: DeleteGroup, _ctx: &mut Context<Self>) -> Self::Result {
        if !self.group.is_empty() {
            return Box::pin(actix::fut::ready(NON_EMPTY_GROUP));
        }
        let store = self.store.clone();
        let id = self.group.id.clone();
        Box::pin(
            async move { store.delete(&id).await }.into_actor(self).map(
                |res, act, ctx| match res {
                    Ok(()) => {
                        act.group.phase = Phase::Dead;
                        act.offsets.clear();
                        ctx.stop();
                        code::NONE
                    }
                    Err(_) => super::state::COORDINATOR_NOT_AVAILABLE,
                },
            ),
        )
    }
}

/// Cluster mode: the group's coordinator slot moved to another broker (or to a new epoch
/// here). Parked joins and syncs are answered NOT_COORDINATOR (the members find the new
/// coordinator and rejoin) and the actor stops.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Retire;

impl Handler<Retire> for GroupCoordinator {
    type Result = ();
    fn handle(&mut self, _: Retire, ctx: &mut Context<Self>) {
        for (id, tx) in self.joins.drain() {
            let _ = tx.send(super::state::JoinResult::error(code::NOT_COORDINATOR, &id));
        }
        for (_, tx) in self.syncs.drain() {
            let _ = tx.send(super::state::SyncResult {
                error: code::NOT_COORDINATOR,
                assignment: Bytes::new(),
            });
        }
        for job in self.commit_queue.drain(..) {
            if let Some(r) = job.reply {
                let _ = r.send(code::NOT_COORDINATOR);
            }
        }
        ctx.stop();
    }
}
