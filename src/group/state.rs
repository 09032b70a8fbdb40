//! The classic consumer-group protocol as a plain state machine (no actors, no I/O): membership,
//! the join barrier, generations, protocol selection, SyncGroup assignment hand-out, heartbeats,
//! session expiry, static membership (KIP-345) and the checks OffsetCommit needs.
//!
//! Calls return [`Effects`]: responses owed to requests that were parked (JoinGroup waiting for
//! the barrier, SyncGroup waiting for the leader). The actor keeps the reply channels; this
//! struct only names the member each response is for. Time is passed in, so tests control it.

use crate::error::code;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub const MEMBER_ID_REQUIRED: i16 = 79;
pub const FENCED_INSTANCE_ID: i16 = 82;
pub const UNKNOWN_MEMBER_ID: i16 = 25;
pub const ILLEGAL_GENERATION: i16 = 22;
pub const REBALANCE_IN_PROGRESS: i16 = 27;
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
pub const INVALID_SESSION_TIMEOUT: i16 = 26;
pub const INVALID_GROUP_ID: i16 = 24;
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
pub const GROUP_MAX_SIZE_REACHED: i16 = 81;

/// Characters of the client id kept at the front of a generated member id.
const MEMBER_ID_PREFIX_CHARS: usize = 64;

/// Group states, named as DescribeGroups/ListGroups report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl Phase {
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::PreparingRebalance => "PreparingRebalance",
            Phase::CompletingRebalance => "CompletingRebalance",
            Phase::Stable => "Stable",
            Phase::Dead => "Dead",
        }
    }
}

/// Limits on session timeouts and group size (Kafka's group.* broker settings).
#[derive(Debug, Clone, Copy)]
pub struct GroupLimits {
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
    pub max_size: usize,
    /// Delay of the first rebalance of an empty group, to let members join together.
    pub initial_rebalance_delay: Duration,
    /// Consumer-protocol (KIP-848) members: session timeout and heartbeat interval.
    pub consumer_session_timeout: Duration,
    pub consumer_heartbeat_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    pub awaiting_join: bool,
    pub awaiting_sync: bool,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A JoinGroup request, decoded.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join without a member id gets MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
}

/// What a JoinGroup is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: (member id, instance id, metadata of the chosen protocol).
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: i16, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup answer: error and the member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub error: i16,
    pub assignment: Bytes,
}

/// Responses owed to parked requests, by member id.
#[derive(Debug, Default)]
pub struct Effects {
    pub joins: Vec<(String, JoinResult)>,
    pub syncs: Vec<(String, SyncResult)>,
}

impl Effects {
    fn merge(&mut self, other: Effects) {
        self.joins.extend(other.joins);
        self.syncs.extend(other.syncs);
    }
}

/// An immediate answer, or "parked: the answer comes through Effects later".
#[derive(Debug)]
pub enum Reply<T> {
    Now(T),
    Parked(String),
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub phase: Phase,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Members in join order (the first is the preferred leader).
    pub members: BTreeMap<String, Member>,
    join_order: Vec<String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with when they expire.
    pending_ids: BTreeMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    initial_delay_until: Option<Instant>,
    limits: GroupLimits,
    next_id: u64,
}

impl Group {
    pub fn new(id: &str, limits: GroupLimits) -> Group {
        Group {
            id: id.to_string(),
            phase: Phase::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            join_order: Vec::new(),
            pending_ids: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            limits,
            next_id: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// A mixed group's classic members taking the group back when its last consumer-protocol
    /// member left (KIP-848's downgrade): Stable at `generation` with the given assignments,
    /// then at once into a rebalance so that they rejoin under the classic protocol.
    pub fn from_members(
        id: &str,
        limits: GroupLimits,
        generation: i32,
        members: Vec<Member>,
        now: Instant,
    ) -> Group {
        let mut g = Group::new(id, limits);
        g.generation = generation;
        g.protocol_type = Some("consumer".to_string());
        g.join_order = members.iter().map(|m| m.id.clone()).collect();
        g.leader = g.join_order.first().cloned();
        g.members = members.into_iter().map(|m| (m.id.clone(), m)).collect();
        g.protocol_name = g.select_protocol();
        g.phase = Phase::Stable;
        let _ = g.prepare_rebalance(now); // nobody is parked in SyncGroup yet
        g
    }

    /// Members as a consumer group takes them (KIP-848's upgrade): (member, metadata for the
    /// group's protocol). Empty before a protocol was ever chosen.
    pub fn members_for_upgrade(&self) -> Vec<(&Member, Bytes)> {
        let Some(proto) = &self.protocol_name else {
            return Vec::new();
        };
        self.members
            .values()
            .map(|m| (m, m.metadata(proto)))
            .collect()
    }

    /// Every parked JoinGroup and SyncGroup answered REBALANCE_IN_PROGRESS (the group is
    /// being converted: its members rejoin the new one).
    pub fn release_parked(&mut self) -> Effects {
        let mut fx = Effects::default();
        for m in self.members.values_mut() {
            if m.awaiting_join {
                m.awaiting_join = false;
                fx.joins.push((
                    m.id.clone(),
                    JoinResult::error(REBALANCE_IN_PROGRESS, &m.id),
                ));
            }
            if m.awaiting_sync {
                m.awaiting_sync = false;
                fx.syncs.push((
                    m.id.clone(),
                    SyncResult {
                        error: REBALANCE_IN_PROGRESS,
                        assignment: Bytes::new(),
                    },
                ));
            }
        }
        fx
    }

    fn new_member_id(&mut self, client_id: &str) -> String {
        self.next_id += 1;
        // The client id only makes member ids readable: a few dozen characters of it are
        // enough, and a 30 KB client id must not make every member id 30 KB.
        let prefix: String = if client_id.is_empty() {
            "member".into()
        } else {
            client_id.chars().take(MEMBER_ID_PREFIX_CHARS).collect()
        };
        format!("{prefix}-{}", uuid::Uuid::new_v4())
    }

    /// Nothing lives here: no member, no pending member id (the actor may stop when it also
    /// has no committed offsets).
    pub fn is_idle(&self) -> bool {
        self.members.is_empty() && self.pending_ids.is_empty() && self.phase == Phase::Empty
    }

    /// Member ids handed out with MEMBER_ID_REQUIRED and not used yet.
    pub fn pending_members(&self) -> usize {
        self.pending_ids.len()
    }

    fn instance_owner(&self, instance: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
    }

    /// Validate a (member, instance, generation) triple for Heartbeat/Sync/Commit.
    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if let Some(inst) = instance_id {
            if let Some(owner) = self.instance_owner(inst) {
                if owner.id != member_id {
                    return Err(FENCED_INSTANCE_ID);
                }
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(UNKNOWN_MEMBER_ID);
        }
        Ok(())
    }

    /// Protocols every member supports, chosen by each member's first preference.
    fn select_protocol(&self) -> Option<String> {
        let mut candidates: Option<Vec<String>> = None;
        for m in self.members.values() {
            let names: Vec<String> = m.protocols.iter().map(|(n, _)| n.clone()).collect();
            candidates = Some(match candidates {
                None => names,
                Some(c) => c.into_iter().filter(|n| names.contains(n)).collect(),
            });
        }
        let candidates = candidates?;
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| c == n) {
                    v.1 += 1;
                }
            }
        }
        let max = votes.iter().map(|(_, v)| *v).max()?;
        votes.into_iter().find(|(_, v)| *v == max).map(|(n, _)| n)
    }

    fn supports_common_protocol(&self, req: &JoinRequest) -> bool {
        if self.members.is_empty()
            || (self.members.len() == 1 && self.members.contains_key(&req.member_id))
        {
            return !req.protocols.is_empty();
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != req.protocol_type)
        {
            return false;
        }
        req.protocols.iter().any(|(n, _)| {
            self.members
                .values()
                .filter(|m| m.id != req.member_id)
                .all(|m| m.protocols.iter().any(|(mn, _)| mn == n))
        })
    }

    /// JoinGroup.
    pub fn join(&mut self, req: JoinRequest, now: Instant) -> (Reply<JoinResult>, Effects) {
        let mut fx = Effects::default();
        if self.phase == Phase::Dead {
            return (
                Reply::Now(JoinResult::error(COORDINATOR_NOT_AVAILABLE, &req.member_id)),
                fx,
            );
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if req.session_timeout_ms < 0
            || session < self.limits.min_session_timeout
            || session > self.limits.max_session_timeout
        {
            return (
                Reply::Now(JoinResult::error(INVALID_SESSION_TIMEOUT, &req.member_id)),
                fx,
            );
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return (
                Reply::Now(JoinResult::error(
                    INCONSISTENT_GROUP_PROTOCOL,
                    &req.member_id,
                )),
                fx,
            );
        }
        let mut req = req;
        let fresh = req.member_id.is_empty();
        if fresh {
            // Static member rejoining: take over the instance's membership.
            if let Some(inst) = req.instance_id.clone() {
                if let Some(old) = self.instance_owner(&inst).map(|m| m.id.clone()) {
                    return self.static_rejoin(old, req, now);
                }
                req.member_id = self.new_member_id(&req.client_id);
            } else {
                if req.require_known_member_id
                    && self.members.len() + self.pending_ids.len() >= self.limits.max_size
                {
                    // Pending members count toward group.max.size (as in Kafka, KIP-394):
                    // otherwise empty JoinGroups could grow the pending set without bound.
                    return (
                        Reply::Now(JoinResult::error(GROUP_MAX_SIZE_REACHED, "")),
                        fx,
                    );
                }
                let id = self.new_member_id(&req.client_id);
                if req.require_known_member_id {
                    self.pending_ids.insert(id.clone(), now + session);
                    return (Reply::Now(JoinResult::error(MEMBER_ID_REQUIRED, &id)), fx);
                }
                req.member_id = id;
            }
        } else if let Some(inst) = req.instance_id.as_deref() {
            if let Some(owner) = self.instance_owner(inst) {
                if owner.id != req.member_id {
                    return (
                        Reply::Now(JoinResult::error(FENCED_INSTANCE_ID, &req.member_id)),
                        fx,
                    );
                }
            }
        }
        let known = self.members.contains_key(&req.member_id);
        let pending = self.pending_ids.remove(&req.member_id).is_some();
        if !fresh && !known && !pending && req.instance_id.is_none() {
            // A member id we never handed out (or that expired).
            return (
                Reply::Now(JoinResult::error(UNKNOWN_MEMBER_ID, &req.member_id)),
                fx,
            );
        }
        if !self.supports_common_protocol(&req) {
            return (
                Reply::Now(JoinResult::error(
                    INCONSISTENT_GROUP_PROTOCOL,
                    &req.member_id,
                )),
                fx,
            );
        }
        if !known && self.members.len() >= self.limits.max_size {
            return (
                Reply::Now(JoinResult::error(GROUP_MAX_SIZE_REACHED, &req.member_id)),
                fx,
            );
        }
        let member_id = req.member_id.clone();
        if known {
            let leader = self.leader.as_deref() == Some(member_id.as_str());
            let same = self
                .members
                .get(&member_id)
                .is_some_and(|m| m.protocols == req.protocols);
            match self.phase {
                Phase::Stable if same && !leader => {
                    self.touch(&member_id, now);
                    return (Reply::Now(self.join_result(&member_id, false)), fx);
                }
                Phase::CompletingRebalance if same => {
                    self.touch(&member_id, now);
                    let is_leader = leader;
                    return (Reply::Now(self.join_result(&member_id, is_leader)), fx);
                }
                _ => {}
            }
        }
        let m = Member {
            id: member_id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout: session,
            rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            last_heartbeat: now,
            awaiting_join: true,
            awaiting_sync: false,
        };
        if !known {
            self.join_order.push(member_id.clone());
        }
        if self.protocol_type.is_none() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        self.members.insert(member_id.clone(), m);
        if self.phase != Phase::PreparingRebalance {
            fx.merge(self.prepare_rebalance(now));
        }
        fx.merge(self.try_complete_join(now));
        // The member's own answer may have been produced by the completion above.
        if let Some(pos) = fx.joins.iter().position(|(id, _)| *id == member_id) {
            let (_, r) = fx.joins.remove(pos);
            return (Reply::Now(r), fx);
        }
        (Reply::Parked(member_id), fx)
    }

    fn static_rejoin(
        &mut self,
        old_id: String,
        req: JoinRequest,
        now: Instant,
    ) -> (Reply<JoinResult>, Effects) {
        let mut fx = Effects::default();
        let new_id = self.new_member_id(&req.client_id);
        let Some(mut m) = self.members.remove(&old_id) else {
            return (Reply::Now(JoinResult::error(UNKNOWN_MEMBER_ID, "")), fx);
        };
        // The old incarnation is fenced: answer anything it had parked.
        if m.awaiting_join {
            fx.joins.push((
                old_id.clone(),
                JoinResult::error(FENCED_INSTANCE_ID, &old_id),
            ));
        }
        if m.awaiting_sync {
            fx.syncs.push((
                old_id.clone(),
                SyncResult {
                    error: FENCED_INSTANCE_ID,
                    assignment: Bytes::new(),
                },
            ));
        }
        let same = m.protocols == req.protocols;
        m.id = new_id.clone();
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        m.protocols = req.protocols.clone();
        m.last_heartbeat = now;
        m.awaiting_join = false;
        m.awaiting_sync = false;
        for id in self.join_order.iter_mut() {
            if *id == old_id {
                *id = new_id.clone();
            }
        }
        if self.leader.as_deref() == Some(old_id.as_str()) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), m);
        if self.phase == Phase::Stable && same {
            // KIP-345: a known static member coming back with the same subscription gets its
            // generation back without a rebalance.
            let is_leader = self.leader.as_deref() == Some(new_id.as_str());
            return (Reply::Now(self.join_result(&new_id, is_leader)), fx);
        }
        if let Some(m) = self.members.get_mut(&new_id) {
            m.awaiting_join = true;
        }
        if self.phase != Phase::PreparingRebalance {
            fx.merge(self.prepare_rebalance(now));
        }
        fx.merge(self.try_complete_join(now));
        if let Some(pos) = fx.joins.iter().position(|(id, _)| *id == new_id) {
            let (_, r) = fx.joins.remove(pos);
            return (Reply::Now(r), fx);
        }
        (Reply::Parked(new_id), fx)
    }

    fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
    }

    fn join_result(&self, member_id: &str, with_members: bool) -> JoinResult {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        JoinResult {
            error: code::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members: if with_members {
                self.join_order
                    .iter()
                    .filter_map(|id| self.members.get(id))
                    .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol)))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Enter PreparingRebalance: parked syncs are answered REBALANCE_IN_PROGRESS.
    fn prepare_rebalance(&mut self, now: Instant) -> Effects {
        let mut fx = Effects::default();
        for m in self.members.values_mut() {
            if m.awaiting_sync {
                m.awaiting_sync = false;
                fx.syncs.push((
                    m.id.clone(),
                    SyncResult {
                        error: REBALANCE_IN_PROGRESS,
                        assignment: Bytes::new(),
                    },
                ));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let delay = if self.phase == Phase::Empty {
            self.limits.initial_rebalance_delay
        } else {
            Duration::ZERO
        };
        self.phase = Phase::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout.max(delay));
        self.initial_delay_until = if delay.is_zero() {
            None
        } else {
            Some(now + delay)
        };
        fx
    }

    /// Complete the join barrier when every member has rejoined, or the deadline passed (members
    /// that did not rejoin are removed).
    pub fn try_complete_join(&mut self, now: Instant) -> Effects {
        let mut fx = Effects::default();
        if self.phase != Phase::PreparingRebalance {
            return fx;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join);
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| now >= d);
        let delayed = self.initial_delay_until.is_some_and(|d| now < d);
        if (!all_joined || delayed) && !deadline_passed {
            return fx;
        }
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.awaiting_join)
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.generation += 1;
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.protocol_name = None;
            self.leader = None;
            return fx;
        }
        self.protocol_name = self.select_protocol();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.join_order.first().cloned();
        }
        self.phase = Phase::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let r = self.join_result(&id, id == leader);
            if let Some(m) = self.members.get_mut(&id) {
                m.awaiting_join = false;
                m.last_heartbeat = now;
                m.assignment = Bytes::new();
            }
            fx.joins.push((id, r));
        }
        fx
    }

    fn remove_member(&mut self, id: &str) -> Option<Member> {
        self.join_order.retain(|m| m != id);
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        self.members.remove(id)
    }

    /// SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> (Reply<SyncResult>, Effects) {
        let fx = Effects::default();
        let err = |e| {
            (
                Reply::Now(SyncResult {
                    error: e,
                    assignment: Bytes::new(),
                }),
                Effects::default(),
            )
        };
        if let Err(e) = self.check_member(member_id, instance_id) {
            return err(e);
        }
        if generation != self.generation {
            return err(ILLEGAL_GENERATION);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return err(INCONSISTENT_GROUP_PROTOCOL);
        }
        self.touch(member_id, now);
        match self.phase {
            Phase::PreparingRebalance => err(REBALANCE_IN_PROGRESS),
            Phase::Stable => {
                let a = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                (
                    Reply::Now(SyncResult {
                        error: code::NONE,
                        assignment: a,
                    }),
                    fx,
                )
            }
            Phase::CompletingRebalance => {
                if self.leader.as_deref() != Some(member_id) {
                    if let Some(m) = self.members.get_mut(member_id) {
                        m.awaiting_sync = true;
                    }
                    return (Reply::Parked(member_id.to_string()), fx);
                }
                let mut fx = Effects::default();
                let given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                    if m.awaiting_sync {
                        m.awaiting_sync = false;
                        fx.syncs.push((
                            m.id.clone(),
                            SyncResult {
                                error: code::NONE,
                                assignment: m.assignment.clone(),
                            },
                        ));
                    }
                }
                self.phase = Phase::Stable;
                let mine = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                (
                    Reply::Now(SyncResult {
                        error: code::NONE,
                        assignment: mine,
                    }),
                    fx,
                )
            }
            Phase::Empty | Phase::Dead => err(UNKNOWN_MEMBER_ID),
        }
    }

    /// Heartbeat.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        match self.phase {
            Phase::Dead => return COORDINATOR_NOT_AVAILABLE,
            Phase::Empty => return UNKNOWN_MEMBER_ID,
            _ => {}
        }
        if let Err(e) = self.check_member(member_id, instance_id) {
            return e;
        }
        self.touch(member_id, now);
        if self.phase == Phase::PreparingRebalance {
            return REBALANCE_IN_PROGRESS;
        }
        if generation != self.generation {
            return ILLEGAL_GENERATION;
        }
        code::NONE
    }

    /// LeaveGroup for one member (by id, or by instance id for static members).
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> (i16, Effects) {
        let mut fx = Effects::default();
        let id = match instance_id {
            Some(inst) => match self.instance_owner(inst) {
                Some(owner) if member_id.is_empty() || owner.id == member_id => owner.id.clone(),
                Some(_) => return (FENCED_INSTANCE_ID, fx),
                None => return (UNKNOWN_MEMBER_ID, fx),
            },
            None => {
                if !self.members.contains_key(member_id) {
                    return (UNKNOWN_MEMBER_ID, fx);
                }
                member_id.to_string()
            }
        };
        fx.merge(self.remove_and_rebalance(&id, UNKNOWN_MEMBER_ID, now));
        (code::NONE, fx)
    }

    fn remove_and_rebalance(&mut self, id: &str, parked_error: i16, now: Instant) -> Effects {
        let mut fx = Effects::default();
        if let Some(m) = self.remove_member(id) {
            if m.awaiting_join {
                fx.joins
                    .push((id.to_string(), JoinResult::error(parked_error, id)));
            }
            if m.awaiting_sync {
                fx.syncs.push((
                    id.to_string(),
                    SyncResult {
                        error: parked_error,
                        assignment: Bytes::new(),
                    },
                ));
            }
        }
        match self.phase {
            Phase::Stable | Phase::CompletingRebalance => {
                if self.members.is_empty() {
                    self.phase = Phase::Empty;
                    self.generation += 1;
                    self.leader = None;
                    self.protocol_name = None;
                } else {
                    fx.merge(self.prepare_rebalance(now));
                }
            }
            Phase::PreparingRebalance => fx.merge(self.try_complete_join(now)),
            Phase::Empty | Phase::Dead => {}
        }
        fx
    }

    /// Expire members whose session timed out (and stale pending member ids); complete a
    /// barrier whose deadline passed.
    pub fn tick(&mut self, now: Instant) -> (Vec<String>, Effects) {
        let mut fx = Effects::default();
        self.pending_ids.retain(|_, exp| *exp > now);
        let expired: Vec<String> = self
            .members
            .values()
            // A member parked in JoinGroup is governed by the rebalance deadline instead.
            .filter(|m| {
                !m.awaiting_join
                    && now.saturating_duration_since(m.last_heartbeat) > m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            fx.merge(self.remove_and_rebalance(id, UNKNOWN_MEMBER_ID, now));
        }
        fx.merge(self.try_complete_join(now));
        (expired, fx)
    }

    /// May an OffsetCommit with this identity be accepted?
    pub fn check_commit(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        if generation < 0 && self.members.is_empty() {
            // Simple (non-group) commits, from an admin client or a consumer that assigns
            // its partitions itself: accepted while nobody is a member, whatever member id
            // the client names (librdkafka 2.12 sends the id it made up for itself).
            return Ok(());
        }
        if generation < 0 && member_id.is_empty() {
            return Err(UNKNOWN_MEMBER_ID);
        }
        self.check_member(member_id, instance_id)?;
        if self.phase == Phase::CompletingRebalance {
            return Err(REBALANCE_IN_PROGRESS);
        }
        if generation != self.generation {
            return Err(ILLEGAL_GENERATION);
        }
        Ok(())
    }

    /// Topics the members subscribe to (consumer protocol metadata), for OffsetDelete.
    pub fn subscribed_topics(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return out;
        }
        for m in self.members.values() {
            for (_, md) in &m.protocols {
                out.extend(parse_subscription_topics(md));
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Topics from a ConsumerProtocolSubscription (version i16, topics: [string], …).
pub fn parse_subscription_topics(md: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    if md.len() < 6 {
        return out;
    }
    let n = i32::from_be_bytes([md[2], md[3], md[4], md[5]]);
    let mut pos = 6usize;
    for _ in 0..n.max(0) {
        let Some(len) = md
            .get(pos..pos + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
        else {
            break;
        };
        pos += 2;
        if len < 0 {
            continue;
        }
        let Some(s) = md.get(pos..pos + len as usize) else {
            break;
        };
        out.push(String::from_utf8_lossy(s).into_owned());
        pos += len as usize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GroupLimits {
        GroupLimits {
            min_session_timeout: Duration::from_millis(100),
            max_session_timeout: Duration::from_secs(600),
            max_size: 100,
            initial_rebalance_delay: Duration::ZERO,
            consumer_session_timeout: Duration::from_secs(45),
            consumer_heartbeat_interval: Duration::from_secs(5),
        }
    }

    fn req(member: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member.to_string(),
            instance_id: instance.map(String::from),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![
                ("range".into(), Bytes::from_static(b"m")),
                ("roundrobin".into(), Bytes::new()),
            ],
            require_known_member_id: true,
        }
    }

    /// Join with MEMBER_ID_REQUIRED, then with the id; returns the member id and its result.
    fn join_new(g: &mut Group, now: Instant) -> (String, Reply<JoinResult>, Effects) {
        let (r, _) = g.join(req("", None), now);
        let Reply::Now(r) = r else {
            panic!("expected MEMBER_ID_REQUIRED")
        };
        assert_eq!(r.error, MEMBER_ID_REQUIRED);
        let (r2, fx) = g.join(req(&r.member_id, None), now);
        (r.member_id, r2, fx)
    }

    /// 3,000 JoinGroups with empty member ids and 30 KB client ids used to keep 93 MB: pending
    /// member ids now count toward max_size, member ids keep 64 characters of the client id,
    /// and pending ids expire with the session timeout.
    #[test]
    fn pending_members_are_bounded_and_expire() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        let mut huge = req("", None);
        huge.client_id = "x".repeat(30_000);
        let mut ids = Vec::new();
        for _ in 0..100 {
            let (r, _) = g.join(huge.clone(), t);
            let Reply::Now(r) = r else { panic!() };
            assert_eq!(r.error, MEMBER_ID_REQUIRED);
            assert!(r.member_id.len() < 64 + 40, "{}", r.member_id.len());
            ids.push(r.member_id);
        }
        assert_eq!(g.pending_members(), 100);
        let (r, _) = g.join(huge.clone(), t);
        let Reply::Now(r) = r else { panic!() };
        assert_eq!(
            r.error, GROUP_MAX_SIZE_REACHED,
            "pending ids count toward max_size"
        );
        g.tick(t + Duration::from_secs(11));
        assert_eq!(g.pending_members(), 0, "expired with the session timeout");
        assert!(g.is_idle());
    }

    #[test]
    fn single_member_completes_immediately_and_syncs() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        let (id, r, _) = join_new(&mut g, t);
        let Reply::Now(j) = r else { panic!() };
        assert_eq!(
            (j.error, j.generation, j.leader.as_str()),
            (0, 1, id.as_str())
        );
        assert_eq!(j.members.len(), 1, "leader gets the member list");
        assert_eq!(j.protocol_name.as_deref(), Some("range"));
        let (s, _) = g.sync(
            &id,
            None,
            1,
            None,
            None,
            vec![(id.clone(), Bytes::from_static(b"a"))],
            t,
        );
        let Reply::Now(s) = s else { panic!() };
        assert_eq!(s.assignment, Bytes::from_static(b"a"));
        assert_eq!(g.phase, Phase::Stable);
        assert_eq!(g.heartbeat(&id, None, 1, t), 0);
        assert_eq!(g.heartbeat(&id, None, 0, t), ILLEGAL_GENERATION);
        assert_eq!(g.heartbeat("nobody", None, 1, t), UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn second_member_triggers_one_rebalance_with_one_generation_bump() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        let (a, _, _) = join_new(&mut g, t);
        g.sync(&a, None, 1, None, None, vec![], t);
        let (b, r, _) = join_new(&mut g, t);
        assert!(
            matches!(r, Reply::Parked(_)),
            "waits for the existing member to rejoin"
        );
        assert_eq!(g.phase, Phase::PreparingRebalance);
        assert_eq!(g.heartbeat(&a, None, 1, t), REBALANCE_IN_PROGRESS);
        let (r, fx) = g.join(req(&a, None), t);
        let Reply::Now(ja) = r else { panic!() };
        assert_eq!(ja.generation, 2);
        assert_eq!(ja.members.len(), 2, "a stays leader and sees both members");
        assert_eq!(fx.joins.len(), 1);
        assert_eq!(fx.joins[0].0, b);
        assert!(
            fx.joins[0].1.members.is_empty(),
            "followers get no member list"
        );
        // Follower parks in sync until the leader syncs.
        let (s, _) = g.sync(&b, None, 2, None, None, vec![], t);
        assert!(matches!(s, Reply::Parked(_)));
        let (s, fx) = g.sync(
            &a,
            None,
            2,
            None,
            None,
            vec![(a.clone(), "A".into()), (b.clone(), "B".into())],
            t,
        );
        assert!(matches!(s, Reply::Now(SyncResult { error: 0, .. })));
        assert_eq!(
            fx.syncs,
            vec![(
                b.clone(),
                SyncResult {
                    error: 0,
                    assignment: "B".into()
                }
            )]
        );
    }

    #[test]
    fn member_that_does_not_rejoin_is_dropped_at_the_deadline() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        let (a, _, _) = join_new(&mut g, t);
        g.sync(&a, None, 1, None, None, vec![], t);
        let (b, _, _) = join_new(&mut g, t);
        let (_, fx) = g.tick(t + Duration::from_secs(31));
        assert_eq!(fx.joins.len(), 1);
        assert_eq!(fx.joins[0].1.leader, b, "b leads after a was dropped");
        assert!(!g.members.contains_key(&a));
    }

    #[test]
    fn session_expiry_and_leave_rebalance() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        let (a, _, _) = join_new(&mut g, t);
        g.sync(&a, None, 1, None, None, vec![], t);
        let (expired, _) = g.tick(t + Duration::from_secs(11));
        assert_eq!(expired, vec![a.clone()]);
        assert_eq!(g.phase, Phase::Empty);
        let (b, _, _) = join_new(&mut g, t);
        assert_eq!(g.leave(&b, None, t).0, 0);
        assert_eq!(g.phase, Phase::Empty);
        assert_eq!(g.leave(&b, None, t).0, UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn static_member_rejoins_without_rebalance_and_old_id_is_fenced() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        let (r, _) = g.join(req("", Some("i1")), t);
        let Reply::Now(j) = r else { panic!() };
        let old = j.member_id.clone();
        g.sync(
            &old,
            Some("i1"),
            1,
            None,
            None,
            vec![(old.clone(), "A".into())],
            t,
        );
        let gen = g.generation;
        let (r, _) = g.join(req("", Some("i1")), t);
        let Reply::Now(j) = r else { panic!() };
        assert_eq!(j.generation, gen, "no rebalance");
        assert_ne!(j.member_id, old);
        assert_eq!(g.phase, Phase::Stable);
        assert_eq!(g.heartbeat(&old, Some("i1"), gen, t), FENCED_INSTANCE_ID);
        assert_eq!(g.heartbeat(&j.member_id, Some("i1"), gen, t), 0);
        let (s, _) = g.sync(&j.member_id, Some("i1"), gen, None, None, vec![], t);
        assert!(
            matches!(s, Reply::Now(SyncResult { error: 0, ref assignment }) if assignment == &Bytes::from("A"))
        );
    }

    #[test]
    fn commits_need_a_valid_generation_or_an_empty_group() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        assert_eq!(g.check_commit("", None, -1), Ok(()));
        let (a, _, _) = join_new(&mut g, t);
        assert_eq!(g.check_commit(&a, None, 1), Err(REBALANCE_IN_PROGRESS));
        g.sync(&a, None, 1, None, None, vec![], t);
        assert_eq!(g.check_commit(&a, None, 1), Ok(()));
        assert_eq!(g.check_commit(&a, None, 0), Err(ILLEGAL_GENERATION));
        assert_eq!(g.check_commit("", None, -1), Err(UNKNOWN_MEMBER_ID));
    }

    #[test]
    fn protocol_must_be_shared() {
        let mut g = Group::new("g", limits());
        let t = Instant::now();
        join_new(&mut g, t);
        let mut r = req("", None);
        r.protocols = vec![("sticky-only".into(), Bytes::new())];
        r.require_known_member_id = false;
        let (res, _) = g.join(r, t);
        assert!(matches!(
            res,
            Reply::Now(JoinResult {
                error: INCONSISTENT_GROUP_PROTOCOL,
                ..
            })
        ));
    }

    #[test]
    fn subscription_topics_parse() {
        let md = [0u8, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0, 0, 0, 0];
        assert_eq!(
            parse_subscription_topics(&md),
            vec!["a".to_string(), "bc".to_string()]
        );
        assert!(parse_subscription_topics(&[0, 1, 0x7f, 0xff, 0xff, 0xff]).is_empty());
    }
}
