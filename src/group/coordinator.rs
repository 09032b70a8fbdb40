//! The GroupCoordinator actor: a thin shell over the group's membership — [`Group`] for the
//! classic protocol, [`ConsumerGroup`] for the KIP-848 consumer protocol (a group is one or the
//! other while it has members) — and the group's committed offsets. It parks JoinGroup/SyncGroup replies until the state machine releases
//! them, expires sessions on a timer, and is the single writer of `meta/groups/{group}.json`:
//! commits queue up while one write is in flight and the next write covers them all; a commit
//! is answered only after its write returned Ok, and becomes visible to OffsetFetch only then.

use super::consumer::{self, ConsumerGroup, ConsumerLimits};
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
pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;

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
    limits: GroupLimits,
    group: Group,
    consumer: ConsumerGroup,
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
            limits,
            consumer: ConsumerGroup::new(
                &doc.group,
                ConsumerLimits {
                    session_timeout: limits.consumer_session_timeout,
                    heartbeat_interval: limits.consumer_heartbeat_interval,
                    max_size: limits.max_size,
                },
            ),
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

    /// A consumer-protocol group: it has no classic members and has had consumer ones (it
    /// stays one, Empty, once they leave, until a classic member joins).
    fn is_consumer_group(&self) -> bool {
        self.group.is_empty() && self.consumer.group_epoch > 0
    }

    /// Publish what metrics read (state, members, committed offsets).
    fn publish(&self) {
        let committed = self
            .offsets
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, c)| ((t.clone(), *p), c.offset)))
            .collect();
        if let Ok(mut s) = self.published.write() {
            *s = if !self.is_consumer_group() {
                super::GroupStats {
                    phase: self.group.phase.name(),
                    members: self.group.members.len(),
                    committed,
                }
            } else {
                super::GroupStats {
                    phase: self.consumer.state().name(),
                    members: self.consumer.members.len(),
                    committed,
                }
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

    /// Queue one change of the offsets document and start writing; the receiver gets its
    /// outcome (NONE once written).
    fn queue_write(&mut self, ctx: &mut Context<Self>, change: Change) -> oneshot::Receiver<i16> {
        let (tx, rx) = oneshot::channel();
        self.commit_queue.push_back(CommitJob {
            change,
            reply: Some(tx),
        });
        self.start_write(ctx);
        rx
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
            if !act.consumer.is_empty() {
                act.idle_since = None;
                for id in act.consumer.tick(Instant::now()) {
                    tracing::info!("group {}: member {id} timed out", act.group.id);
                    act.maybe_downgrade();
                    act.publish();
                }
                return;
            }
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
pub struct Join(pub JoinRequest, pub std::sync::Arc<consumer::Topics>);

impl Handler<Join> for GroupCoordinator {
    type Result = ResponseFuture<JoinResult>;

    fn handle(&mut self, msg: Join, _ctx: &mut Context<Self>) -> Self::Result {
        if !self.consumer.is_empty() {
            // A classic member joining a consumer group: a mixed group, answered at once.
            let r = self.consumer.classic_join(
                &msg.0,
                self.limits.min_session_timeout,
                self.limits.max_session_timeout,
                msg.1,
                Instant::now(),
            );
            self.publish();
            return Box::pin(async move { r });
        }
        if self.consumer.group_epoch > 0 {
            // An empty consumer group becomes a classic one (its offsets stay), as in Kafka.
            self.consumer = ConsumerGroup::new(&self.group.id, self.consumer.limits());
        }
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
        if !self.consumer.is_empty() {
            let r = self.consumer.classic_sync(
                &m.member_id,
                m.instance_id.as_deref(),
                m.generation,
                Instant::now(),
            );
            return Box::pin(async move { r });
        }
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
        if !self.consumer.is_empty() {
            return self.consumer.classic_heartbeat(
                &m.member_id,
                m.instance_id.as_deref(),
                m.generation,
                Instant::now(),
            );
        }
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
        if !self.consumer.is_empty() {
            for (member, instance) in m.0 {
                codes.push(self.consumer.classic_leave(&member, instance.as_deref()));
            }
            self.maybe_downgrade();
            return MessageResult(codes);
        }
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
    /// "classic" or "consumer" (ListGroups' group type).
    pub group_type: &'static str,
    /// The state as ListGroups reports it (a consumer group's own states included).
    pub state: &'static str,
    /// The classic state; a consumer-protocol group is Dead to DescribeGroups (as Kafka
    /// answers before v6: it has no classic view).
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
        if self.is_consumer_group() {
            return MessageResult(GroupInfo {
                group_type: "consumer",
                state: self.consumer.state().name(),
                phase: Phase::Dead,
                protocol_type: "consumer".into(),
                protocol_name: String::new(),
                members: Vec::new(),
                has_offsets: !self.offsets.is_empty(),
            });
        }
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
            group_type: "classic",
            state: g.phase.name(),
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
    /// The OffsetCommit version (consumer-protocol members need v9).
    pub api_version: i16,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// (topic, partition, offset, leader epoch, metadata)
    pub offsets: Vec<(String, i32, i64, i32, Option<String>)>,
}

impl Handler<Commit> for GroupCoordinator {
    type Result = ResponseActFuture<Self, Result<Vec<i16>, i16>>;

    fn handle(&mut self, m: Commit, ctx: &mut Context<Self>) -> Self::Result {
        let checked = if self.consumer.is_empty() {
            self.group
                .check_commit(&m.member_id, m.instance_id.as_deref(), m.generation)
        } else {
            self.consumer
                .check_commit(&m.member_id, m.generation, m.api_version)
        };
        if let Err(e) = checked {
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
        let rx = self.queue_write(ctx, Change::Commit(changes));
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

/// TxnOffsetCommit's member check (KIP-447: a consumer fenced by a rebalance cannot commit
/// through a transaction): with a member, instance or generation given, the same checks as
/// OffsetCommit, except that a rebalance in progress is no reason to refuse (Kafka's
/// transactional commit does not check it). Without any, accepted (a commit from outside the
/// group, as Kafka allows for transactions).
#[derive(Message)]
#[rtype(result = "Result<(), i16>")]
pub struct CheckTxnMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
}

impl Handler<CheckTxnMember> for GroupCoordinator {
    type Result = Result<(), i16>;

    fn handle(&mut self, m: CheckTxnMember, _ctx: &mut Context<Self>) -> Self::Result {
        if m.generation < 0 && m.member_id.is_empty() && m.instance_id.is_none() {
            return Ok(());
        }
        let checked = if self.consumer.is_empty() {
            self.group
                .check_commit(&m.member_id, m.instance_id.as_deref(), m.generation)
        } else {
            self.consumer.check_commit(&m.member_id, m.generation, 9)
        };
        match checked {
            Err(super::state::REBALANCE_IN_PROGRESS) => Ok(()),
            other => other,
        }
    }
}

/// An offset a transaction staged (TxnOffsetCommit) and now commits.
#[derive(Debug, Clone)]
pub struct StagedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    /// When it was staged (ms).
    pub staged_ms: i64,
}

/// The offsets of a committed transaction (applied when the transaction coordinator
/// commits): written like OffsetCommit's, without member checks (made when they were staged);
/// a partition committed after the offset was staged keeps that newer commit, as in Kafka.
/// Answered once the offsets document is written.
#[derive(Message)]
#[rtype(result = "Result<(), i16>")]
pub struct CommitTransactional {
    pub offsets: Vec<StagedOffset>,
}

impl Handler<CommitTransactional> for GroupCoordinator {
    type Result = ResponseActFuture<Self, Result<(), i16>>;

    fn handle(&mut self, m: CommitTransactional, ctx: &mut Context<Self>) -> Self::Result {
        let now = now_ms();
        let changes: Vec<_> = m
            .offsets
            .into_iter()
            .filter(|o| {
                self.offsets
                    .get(&o.topic)
                    .and_then(|ps| ps.get(&o.partition))
                    .is_none_or(|c| c.commit_ms <= o.staged_ms)
            })
            .map(|o| {
                (
                    o.topic,
                    o.partition,
                    CommittedOffset {
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata,
                        commit_ms: now,
                    },
                )
            })
            .collect();
        if changes.is_empty() {
            return Box::pin(actix::fut::ready(Ok(())));
        }
        let rx = self.queue_write(ctx, Change::Commit(changes));
        Box::pin(
            async move {
                match rx.await.unwrap_or(super::state::COORDINATOR_NOT_AVAILABLE) {
                    code::NONE => Ok(()),
                    c => Err(c),
                }
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
        let mut subscribed = self.group.subscribed_topics();
        subscribed.extend(self.consumer.subscribed_topics());
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
        let rx = self.queue_write(ctx, Change::Delete(keys));
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
        if !self.group.is_empty() || !self.consumer.is_empty() {
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

/// ConsumerGroupHeartbeat (KIP-848), with the broker's topics as they are now and the group's
/// session timeout and heartbeat interval (its configs, else the broker's settings).
#[derive(Message)]
#[rtype(result = "consumer::HeartbeatResponse")]
pub struct ConsumerHeartbeat {
    pub request: consumer::HeartbeatRequest,
    pub topics: std::sync::Arc<consumer::Topics>,
    pub timeouts: (std::time::Duration, std::time::Duration),
    /// The topics the member's principal may DESCRIBE (regexes match only those); `None`
    /// without authorization.
    pub describable: Option<consumer::TopicFilter>,
}

impl Handler<ConsumerHeartbeat> for GroupCoordinator {
    type Result = MessageResult<ConsumerHeartbeat>;
    fn handle(&mut self, m: ConsumerHeartbeat, _ctx: &mut Context<Self>) -> Self::Result {
        if !self.group.is_empty() {
            if let Err(r) = ConsumerGroup::validate(&m.request) {
                return MessageResult(r);
            }
            if m.request.member_epoch > 0 {
                // Kafka answers GROUP_ID_NOT_FOUND; here membership is not persisted, so this
                // is a member of the group from before a coordinator restart or move while
                // classic members rejoined first: told to rejoin (and upgrade the group).
                return MessageResult(consumer::HeartbeatResponse {
                    error: code::UNKNOWN_MEMBER_ID,
                    message: Some(format!(
                        "Member {} is not a member of group {}.",
                        m.request.member_id, self.group.id
                    )),
                    ..Default::default()
                });
            }
            let upgraded = match m.request.member_epoch {
                0 => self.upgrade(m.topics.clone()),
                _ => Err(format!("Group {} is not a consumer group.", self.group.id)),
            };
            if let Err(message) = upgraded {
                return MessageResult(consumer::HeartbeatResponse {
                    error: code::GROUP_ID_NOT_FOUND,
                    message: Some(message),
                    ..Default::default()
                });
            }
        }
        self.consumer.set_timeouts(m.timeouts.0, m.timeouts.1);
        self.consumer.set_topic_filter(m.describable);
        let r = self.consumer.heartbeat(m.request, m.topics, Instant::now());
        self.maybe_downgrade();
        self.publish();
        MessageResult(r)
    }
}

impl GroupCoordinator {
    /// KIP-848's online upgrade: a live classic group (of the embedded consumer protocol)
    /// becomes a consumer group when a consumer-protocol member joins it. Its members keep
    /// their partitions and rebalance through JoinGroup/SyncGroup inside it (a mixed group).
    fn upgrade(&mut self, topics: std::sync::Arc<consumer::Topics>) -> Result<(), String> {
        let id = self.group.id.clone();
        if self.group.protocol_type.as_deref() != Some("consumer") {
            return Err(format!(
                "Cannot upgrade classic group {id} to consumer group because the group does not use the consumer embedded protocol."
            ));
        }
        if self.group.members.len() > self.limits.max_size {
            return Err(format!(
                "Cannot upgrade classic group {id} to consumer group because the group size exceeds the consumer group maximum size."
            ));
        }
        let imports: Vec<consumer::ClassicImport> = self
            .group
            .members_for_upgrade()
            .into_iter()
            .map(|(m, metadata)| consumer::ClassicImport {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout: m.session_timeout,
                rebalance_timeout: m.rebalance_timeout,
                protocols: m.protocols.clone(),
                metadata,
                assignment: m.assignment.clone(),
            })
            .collect();
        if imports.is_empty() {
            return Err(format!(
                "Cannot upgrade classic group {id} to consumer group because it has not completed a rebalance yet."
            ));
        }
        let converted = ConsumerGroup::from_classic(
            &id,
            self.consumer.limits(),
            self.group.generation,
            imports,
            topics,
            Instant::now(),
        )
        .map_err(|e| {
            format!(
                "Cannot upgrade classic group {id} to consumer group because the embedded consumer protocol is malformed: {e}."
            )
        })?;
        let fx = self.group.release_parked();
        self.deliver(fx);
        self.group = Group::new(&id, self.limits);
        self.consumer = converted;
        tracing::info!("group {id}: converted from the classic to the consumer protocol");
        Ok(())
    }

    /// KIP-848's online downgrade: once only classic members are left, the group is classic
    /// again (at generation = the group epoch, members keeping their target assignments) and
    /// rebalances at once.
    fn maybe_downgrade(&mut self) {
        if !self.consumer.only_classic_left() {
            return;
        }
        let id = self.group.id.clone();
        let (generation, members) = self.consumer.to_classic(Instant::now());
        self.group = Group::from_members(&id, self.limits, generation, members, Instant::now());
        self.consumer = ConsumerGroup::new(&id, self.consumer.limits());
        tracing::info!("group {id}: converted from the consumer to the classic protocol");
        self.publish();
    }
}

/// A consumer-protocol member as ConsumerGroupDescribe reports it.
#[derive(Debug, Clone)]
pub struct ConsumerMemberInfo {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    /// A classic-protocol member of a mixed group.
    pub classic: bool,
    /// (topic id, topic name, partitions)
    pub assignment: Vec<([u8; 16], String, Vec<i32>)>,
    pub target_assignment: Vec<([u8; 16], String, Vec<i32>)>,
}

/// A group as ConsumerGroupDescribe sees it.
#[derive(Debug, Clone)]
pub enum ConsumerGroupInfo {
    /// The group has classic members.
    Classic,
    /// No members and no offsets: the group does not exist.
    Unknown,
    Consumer {
        state: &'static str,
        group_epoch: i32,
        assignment_epoch: i32,
        assignor: String,
        members: Vec<ConsumerMemberInfo>,
    },
}

#[derive(Message)]
#[rtype(result = "ConsumerGroupInfo")]
pub struct ConsumerDescribe;

impl Handler<ConsumerDescribe> for GroupCoordinator {
    type Result = MessageResult<ConsumerDescribe>;
    fn handle(&mut self, _: ConsumerDescribe, _ctx: &mut Context<Self>) -> Self::Result {
        let c = &self.consumer;
        if !self.group.is_empty() {
            return MessageResult(ConsumerGroupInfo::Classic);
        }
        if c.group_epoch == 0 {
            // Never a consumer group: an empty classic group (offsets only) or nothing.
            return MessageResult(match self.offsets.is_empty() {
                true => ConsumerGroupInfo::Unknown,
                false => ConsumerGroupInfo::Classic,
            });
        }
        let named = |a: &super::assignor::Assignment| {
            a.iter()
                .map(|(id, ps)| {
                    let name = c.topic_name(id).unwrap_or_default().to_string();
                    (*id, name, ps.iter().copied().collect())
                })
                .collect::<Vec<_>>()
        };
        let members = c
            .members
            .values()
            .map(|m| ConsumerMemberInfo {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed_names.clone(),
                subscribed_topic_regex: m.regex.clone(),
                classic: m.classic.is_some(),
                assignment: named(&m.assigned),
                target_assignment: named(&c.target.get(&m.id).cloned().unwrap_or_default()),
            })
            .collect();
        MessageResult(ConsumerGroupInfo::Consumer {
            state: c.state().name(),
            group_epoch: c.group_epoch,
            assignment_epoch: c.assignment_epoch,
            assignor: c.assignor.clone(),
            members,
        })
    }
}

/// OffsetFetch v9+ names the fetching member: checked against the consumer-protocol group.
#[derive(Message)]
#[rtype(result = "Result<(), i16>")]
pub struct CheckFetchMember {
    pub member_id: Option<String>,
    pub member_epoch: i32,
}

impl Handler<CheckFetchMember> for GroupCoordinator {
    type Result = Result<(), i16>;
    fn handle(&mut self, m: CheckFetchMember, _ctx: &mut Context<Self>) -> Self::Result {
        if self.consumer.is_empty() {
            return Ok(());
        }
        self.consumer
            .check_fetch(m.member_id.as_deref(), m.member_epoch)
    }
}
