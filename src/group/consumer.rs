//! The KIP-848 consumer group protocol as a plain state machine (no actors, no I/O): members
//! and their epochs, the group epoch, the target assignment computed by a server-side assignor
//! ([`super::assignor`]), and each member's reconciliation towards its target — a partition is
//! handed to its new owner only once its previous owner has revoked it.
//!
//! The epochs, as in the KIP: the **group epoch** moves whenever what the assignment depends on
//! changes (a member joins, leaves or changes its subscription; a subscribed topic appears,
//! disappears or grows); the **assignment epoch** is the group epoch the target assignment was
//! computed for; a **member epoch** reaches the assignment epoch once the member holds no
//! partition its target no longer contains. Time is passed in, so tests control it.
//!
//! Membership lives in memory, like the classic protocol's: after a coordinator restart or
//! move, members are told UNKNOWN_MEMBER_ID and rejoin; committed offsets are persisted by the
//! coordinator actor.

use super::assignor::{self, Assignment, MemberSpec, TopicId, ASSIGNORS, DEFAULT_ASSIGNOR};
use super::embedded::{encode_assignment, parse_assignment, parse_subscription};
use super::state::{JoinRequest, JoinResult, SyncResult};
use crate::error::code;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Member epoch of a heartbeat that leaves the group.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member leaving temporarily (it keeps its assignment until its
/// session times out or its instance rejoins).
pub const STATIC_LEAVE_EPOCH: i32 = -2;
/// Longest regular expression a member may subscribe with (bytes).
const MAX_REGEX_BYTES: usize = 4096;
/// Compiled size bound of a subscription regular expression (hostile input stays cheap).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Topics as the group sees them: name → (id, partition count).
pub type Topics = BTreeMap<String, (TopicId, i32)>;

/// Timeouts and limits of consumer groups (Kafka's `group.consumer.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct ConsumerLimits {
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub max_size: usize,
}

/// A ConsumerGroupHeartbeat request, decoded.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub version: i16,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns (`None` when the request does not say).
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What the heartbeat answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartbeatResponse {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed or the request was a full one.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResponse {
    fn error(error: i16, message: impl Into<String>) -> HeartbeatResponse {
        HeartbeatResponse {
            error,
            message: Some(message.into()),
            ..Default::default()
        }
    }
}

/// Where a member stands in its reconciliation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// It holds its target (as of its epoch).
    Stable,
    /// It must give up `pending_revocation` before it moves to the new epoch.
    UnrevokedPartitions,
    /// It moved to the new epoch but some of its target is still held by others.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn name(&self) -> &'static str {
        match self {
            MemberState::Stable => "stable",
            MemberState::UnrevokedPartitions => "unrevoked_partitions",
            MemberState::UnreleasedPartitions => "unreleased_partitions",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_names: Vec<String>,
    pub regex: Option<String>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout: Duration,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// Set for a member speaking the classic protocol (JoinGroup/SyncGroup/Heartbeat) in
    /// this group (a mixed group, KIP-848's online migration).
    pub classic: Option<ClassicMeta>,
    session_deadline: Instant,
    /// The member must have revoked (consumer protocol) or rejoined (classic) by then.
    revocation_deadline: Option<Instant>,
}

impl ConsumerMember {
    /// A member that owns nothing yet, at epoch 0 (callers set what they know beyond that).
    fn new(
        id: &str,
        instance_id: Option<String>,
        client_id: &str,
        client_host: &str,
        rebalance_timeout: Duration,
        session_deadline: Instant,
    ) -> ConsumerMember {
        ConsumerMember {
            id: id.to_string(),
            instance_id,
            rack_id: None,
            client_id: client_id.to_string(),
            client_host: client_host.to_string(),
            subscribed_names: Vec::new(),
            regex: None,
            server_assignor: None,
            rebalance_timeout,
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            classic: None,
            session_deadline,
            revocation_deadline: None,
        }
    }
}

/// What a classic member of a consumer group keeps of its JoinGroup.
#[derive(Debug, Clone)]
pub struct ClassicMeta {
    pub session_timeout: Duration,
    /// Its protocols (name, subscription metadata), in its order of preference.
    pub protocols: Vec<(String, bytes::Bytes)>,
}

impl ClassicMeta {
    /// The version of its subscription (its assignments are written at it).
    fn version(&self) -> i16 {
        self.protocols
            .first()
            .and_then(|(_, md)| md.get(..2))
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .unwrap_or(0)
    }
}

/// A member of a classic group being converted (see [`ConsumerGroup::from_classic`]).
pub struct ClassicImport {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, bytes::Bytes)>,
    /// Its subscription metadata for the group's protocol, and its current assignment.
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

/// The group's state as ConsumerGroupDescribe and ListGroups name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(&self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

pub struct ConsumerGroup {
    pub id: String,
    limits: ConsumerLimits,
    pub members: BTreeMap<String, ConsumerMember>,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    /// Member id → target assignment (as of `assignment_epoch`).
    pub target: BTreeMap<String, Assignment>,
    /// The assignor the target was computed with.
    pub assignor: String,
    /// The topics as last seen.
    topics: Arc<Topics>,
    /// Each subscription regex in use, compiled, with the topics it matches (`None` until
    /// resolved: a new regex is resolved on the group's next heartbeat, as Kafka resolves
    /// them asynchronously — literal topics of the same subscription are assigned first).
    /// Each keeps the topic filter of the member that subscribed it first: a regex matches
    /// the topics that member's principal may DESCRIBE, as Kafka resolves it with the
    /// subscribing member's context.
    regexes: BTreeMap<String, SubscribedRegex>,
    /// What the target depends on: the subscribed topics that exist, with their partitions.
    subscription: Topics,
    /// The topics the principal of the heartbeat being handled may DESCRIBE (`None`
    /// without authorization): given to the regexes that heartbeat subscribes.
    describable: Option<TopicFilter>,
}

/// A subscription regex: compiled, the topics it matches (`None` until resolved), and the
/// filter of the principal that subscribed it first.
type SubscribedRegex = (regex::Regex, Option<BTreeSet<String>>, Option<TopicFilter>);

/// A predicate on topic names (the ACL check of a principal).
#[derive(Clone)]
pub struct TopicFilter(pub Arc<dyn Fn(&str) -> bool + Send + Sync>);

fn invalid(message: &str) -> HeartbeatResponse {
    HeartbeatResponse::error(code::INVALID_REQUEST, message)
}

fn subtract(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(other) => ps.difference(other).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn intersect(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        if let Some(other) = b.get(t) {
            let both: BTreeSet<i32> = ps.intersection(other).copied().collect();
            if !both.is_empty() {
                out.insert(*t, both);
            }
        }
    }
    out
}

fn overlaps(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .any(|(t, ps)| b.get(t).is_some_and(|o| !ps.is_disjoint(o)))
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter()
        .all(|(t, ps)| ps.is_empty() || b.get(t).is_some_and(|o| ps.is_subset(o)))
}

/// Compile a subscription regex as Kafka matches it (the whole topic name), bounded in size.
pub fn compile_regex(re: &str) -> Result<regex::Regex, String> {
    if re.len() > MAX_REGEX_BYTES {
        return Err(format!(
            "SubscribedTopicRegex is longer than {MAX_REGEX_BYTES} bytes."
        ));
    }
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("SubscribedTopicRegex `{re}` is not a valid regular expression: {e}"))
}

impl ConsumerGroup {
    pub fn new(id: &str, limits: ConsumerLimits) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            limits,
            members: BTreeMap::new(),
            group_epoch: 0,
            assignment_epoch: 0,
            target: BTreeMap::new(),
            assignor: DEFAULT_ASSIGNOR.to_string(),
            topics: Arc::new(Topics::new()),
            regexes: BTreeMap::new(),
            subscription: Topics::new(),
            describable: None,
        }
    }

    /// The topics the next heartbeat's principal may DESCRIBE (`None`: every topic); a regex
    /// that heartbeat subscribes first matches only those, also when topics change later.
    pub fn set_topic_filter(&mut self, filter: Option<TopicFilter>) {
        self.describable = filter;
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Use this session timeout and heartbeat interval from now on (the group's configs may
    /// have changed): a member's session is re-armed with it on its next heartbeat.
    pub fn set_timeouts(&mut self, session_timeout: Duration, heartbeat_interval: Duration) {
        self.limits.session_timeout = session_timeout;
        self.limits.heartbeat_interval = heartbeat_interval;
    }

    pub fn limits(&self) -> ConsumerLimits {
        self.limits
    }

    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().any(|m| {
            m.epoch != STATIC_LEAVE_EPOCH
                && (m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        }) {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Names of the topics any member subscribes to (by name or by regex).
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for m in self.members.values() {
            out.extend(self.member_topics(m));
        }
        out
    }

    /// The topic name of an id, as last seen.
    pub fn topic_name(&self, id: &TopicId) -> Option<&str> {
        self.topics
            .iter()
            .find(|(_, (tid, _))| tid == id)
            .map(|(n, _)| n.as_str())
    }

    fn member_topics(&self, m: &ConsumerMember) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = m.subscribed_names.iter().cloned().collect();
        if let Some((_, Some(matched), _)) = m.regex.as_ref().and_then(|r| self.regexes.get(r)) {
            out.extend(matched.iter().cloned());
        }
        out
    }

    fn bump(&mut self) {
        self.group_epoch += 1;
    }

    /// Take in the topics as they are now; a change of what the group subscribes to (a
    /// regex matching a new topic, a subscribed topic created, deleted or grown) moves the
    /// group epoch.
    pub fn refresh_topics(&mut self, topics: Arc<Topics>) {
        let mut dirty = !Arc::ptr_eq(&topics, &self.topics) && *topics != *self.topics;
        let topics_changed = dirty;
        if topics_changed {
            self.topics = topics;
        }
        for (re, matched, describable) in self.regexes.values_mut() {
            if topics_changed || matched.is_none() {
                *matched = Some(
                    self.topics
                        .keys()
                        .filter(|t| re.is_match(t) && describable.as_ref().is_none_or(|f| (f.0)(t)))
                        .cloned()
                        .collect(),
                );
                dirty = true;
            }
        }
        if dirty && self.update_subscription() && !self.members.is_empty() {
            self.bump();
        }
    }

    /// Recompute what the target depends on; true when it changed.
    fn update_subscription(&mut self) -> bool {
        let mut now = Topics::new();
        for name in self.subscribed_topics() {
            if let Some(t) = self.topics.get(&name) {
                now.insert(name, *t);
            }
        }
        if now == self.subscription {
            return false;
        }
        self.subscription = now;
        true
    }

    /// Drop regexes no member uses any more.
    fn forget_unused_regexes(&mut self) {
        let used: BTreeSet<&String> = self
            .members
            .values()
            .filter_map(|m| m.regex.as_ref())
            .collect();
        self.regexes.retain(|r, _| used.contains(r));
    }

    /// Kafka's request validation (INVALID_REQUEST, UNSUPPORTED_ASSIGNOR,
    /// INVALID_REGULAR_EXPRESSION).
    pub fn validate(req: &HeartbeatRequest) -> Result<(), HeartbeatResponse> {
        let blank = |s: &Option<String>| s.as_ref().is_some_and(|s| s.trim().is_empty());
        if blank(&req.instance_id) {
            return Err(invalid("InstanceId can't be empty."));
        }
        if blank(&req.rack_id) {
            return Err(invalid("RackId can't be empty."));
        }
        // v1 (KIP-1082): the client names itself; v0 lets the coordinator name a joiner.
        if req.member_id.trim().is_empty()
            && (req.version >= 1 || req.member_epoch > 0 || req.member_epoch == LEAVE_EPOCH)
        {
            return Err(invalid("MemberId can't be empty."));
        }
        if req.member_epoch == 0 {
            if req.rebalance_timeout_ms == -1 {
                return Err(invalid(
                    "RebalanceTimeoutMs must be provided in first request.",
                ));
            }
            if req.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return Err(invalid("TopicPartitions must be empty when (re-)joining."));
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return Err(invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                ));
            }
        } else if req.member_epoch == STATIC_LEAVE_EPOCH {
            if req.instance_id.is_none() {
                return Err(invalid("InstanceId can't be null."));
            }
        } else if req.member_epoch < STATIC_LEAVE_EPOCH {
            return Err(invalid("MemberEpoch is invalid."));
        }
        if let Some(a) = &req.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err(HeartbeatResponse::error(
                    code::UNSUPPORTED_ASSIGNOR,
                    format!(
                        "ServerAssignor {a} is not supported. Supported assignors: {}.",
                        ASSIGNORS.join(", ")
                    ),
                ));
            }
        }
        if let Some(re) = &req.subscribed_topic_regex {
            if !re.is_empty() {
                compile_regex(re)
                    .map_err(|m| HeartbeatResponse::error(code::INVALID_REGULAR_EXPRESSION, m))?;
            }
        }
        Ok(())
    }

    /// One ConsumerGroupHeartbeat. `topics` is the broker's view of the topics now.
    pub fn heartbeat(
        &mut self,
        mut req: HeartbeatRequest,
        topics: Arc<Topics>,
        now: Instant,
    ) -> HeartbeatResponse {
        if let Err(r) = Self::validate(&req) {
            return r;
        }
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(&req);
        }
        self.refresh_topics(topics);
        if req.member_id.is_empty() {
            // v0 lets the coordinator name a joining member.
            req.member_id = uuid::Uuid::new_v4().simple().to_string();
        }
        // A full request (a join, or a client resending its whole state after an error) gets
        // the assignment even when it did not change.
        let full_request = req.member_epoch == 0
            || (req.rebalance_timeout_ms != -1
                && (req.subscribed_topic_names.is_some() || req.subscribed_topic_regex.is_some())
                && req.owned.is_some());
        let joined = match self.admit(&req, now) {
            Ok(joined) => joined,
            Err(r) => return r,
        };
        let member_id = req.member_id.clone();
        // Subscription changes.
        let (changed, new_regex) = {
            let m = self.members.get_mut(&member_id).expect("admitted");
            let mut changed = false;
            if let Some(names) = &req.subscribed_topic_names {
                let mut names = names.clone();
                names.sort();
                names.dedup();
                if names != m.subscribed_names {
                    m.subscribed_names = names;
                    changed = true;
                }
            }
            let mut new_regex = None;
            if let Some(re) = &req.subscribed_topic_regex {
                let re = (!re.is_empty()).then(|| re.clone());
                if re != m.regex {
                    m.regex = re.clone();
                    new_regex = re;
                    changed = true;
                }
            }
            if let Some(a) = &req.server_assignor {
                if m.server_assignor.as_deref() != Some(a.as_str()) {
                    m.server_assignor = Some(a.clone());
                    changed = true;
                }
            }
            if req.rebalance_timeout_ms > 0 {
                m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms as u64);
            }
            if req.rack_id.is_some() {
                m.rack_id = req.rack_id.clone();
            }
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
            m.session_deadline = now + self.limits.session_timeout;
            (changed, new_regex)
        };
        if let Some(re) = new_regex {
            if let std::collections::btree_map::Entry::Vacant(e) = self.regexes.entry(re) {
                let compiled = compile_regex(e.key()).expect("validated");
                e.insert((compiled, None, self.describable.clone()));
            }
        }
        if changed || joined {
            // One new group epoch for the whole change, as Kafka records it.
            self.forget_unused_regexes();
            self.update_subscription();
            self.bump();
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }
        let before = self.members[&member_id].assigned.clone();
        self.reconcile(&member_id, req.owned.as_ref(), now);
        let m = &self.members[&member_id];
        HeartbeatResponse {
            error: code::NONE,
            message: None,
            member_id: Some(member_id.clone()),
            member_epoch: m.epoch,
            heartbeat_interval_ms: self.limits.heartbeat_interval.as_millis() as i32,
            assignment: (full_request || m.assigned != before).then(|| m.assigned.clone()),
        }
    }

    /// Find or create the heartbeat's member and check its epoch (and instance). True when
    /// a new member joined.
    fn admit(&mut self, req: &HeartbeatRequest, now: Instant) -> Result<bool, HeartbeatResponse> {
        let id = &req.member_id;
        if self.members.get(id).is_some_and(|m| m.classic.is_some()) {
            return Err(HeartbeatResponse::error(
                code::UNKNOWN_MEMBER_ID,
                format!(
                    "Member {id} uses the classic protocol in group {}.",
                    self.id
                ),
            ));
        }
        if req.member_epoch == 0 {
            if let Some(instance) = &req.instance_id {
                let owner = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(instance))
                    .map(|m| (m.id.clone(), m.epoch));
                if let Some((owner, epoch)) = owner {
                    if owner != *id {
                        if epoch != STATIC_LEAVE_EPOCH {
                            return Err(HeartbeatResponse::error(
                                code::UNRELEASED_INSTANCE_ID,
                                format!(
                                    "Static member {id} with instance id {instance} cannot join the group because the instance id is owned by {owner} member."
                                ),
                            ));
                        }
                        // The instance comes back: the new member takes over the old one's
                        // assignment and epoch, without a rebalance.
                        let mut m = self.members.remove(&owner).expect("owner");
                        m.id = id.clone();
                        m.epoch = m.previous_epoch.max(0);
                        if let Some(t) = self.target.remove(&owner) {
                            self.target.insert(id.clone(), t);
                        }
                        self.members.insert(id.clone(), m);
                        return Ok(false);
                    }
                }
            }
            if let Some(m) = self.members.get_mut(id) {
                // A rejoin of a known member: it keeps what the group gave it.
                if m.epoch == STATIC_LEAVE_EPOCH {
                    m.epoch = m.previous_epoch.max(0);
                }
                return Ok(false);
            }
            if self.members.len() >= self.limits.max_size {
                return Err(HeartbeatResponse::error(
                    code::GROUP_MAX_SIZE_REACHED,
                    format!(
                        "The consumer group has reached its maximum capacity of {} members.",
                        self.limits.max_size
                    ),
                ));
            }
            self.members.insert(
                id.clone(),
                ConsumerMember {
                    rack_id: req.rack_id.clone(),
                    ..ConsumerMember::new(
                        id,
                        req.instance_id.clone(),
                        &req.client_id,
                        &req.client_host,
                        Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
                        now + self.limits.session_timeout,
                    )
                },
            );
            return Ok(true);
        }
        if let Some(instance) = &req.instance_id {
            match self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance))
            {
                None => {
                    return Err(HeartbeatResponse::error(
                        code::UNKNOWN_MEMBER_ID,
                        format!("Instance id {instance} is unknown."),
                    ))
                }
                Some(m) if m.id != *id => {
                    return Err(HeartbeatResponse::error(
                        code::FENCED_INSTANCE_ID,
                        format!(
                        "Static member {id} with instance id {instance} was fenced by member {}.",
                        m.id
                    ),
                    ))
                }
                Some(_) => {}
            }
        }
        let Some(m) = self.members.get(id) else {
            return Err(HeartbeatResponse::error(
                code::UNKNOWN_MEMBER_ID,
                format!("Member {id} is not a member of group {}.", self.id),
            ));
        };
        if req.member_epoch > m.epoch {
            return Err(HeartbeatResponse::error(
                code::FENCED_MEMBER_EPOCH,
                format!(
                    "The consumer group member has a greater member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                    req.member_epoch, m.epoch
                ),
            ));
        }
        if req.member_epoch < m.epoch {
            // The member may have missed the response that moved it to its current epoch:
            // accepted if it owns nothing beyond what it holds now.
            let lost_response = req.member_epoch == m.previous_epoch
                && req
                    .owned
                    .as_ref()
                    .is_some_and(|o| is_subset(o, &m.assigned));
            if !lost_response {
                return Err(HeartbeatResponse::error(
                    code::FENCED_MEMBER_EPOCH,
                    format!(
                        "The consumer group member has a smaller member epoch ({}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                        req.member_epoch, m.epoch
                    ),
                ));
            }
        }
        Ok(false)
    }

    fn leave(&mut self, req: &HeartbeatRequest) -> HeartbeatResponse {
        let id = req.member_id.clone();
        let epoch = req.member_epoch;
        let known = match &req.instance_id {
            Some(instance) => self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance.as_str()))
                .map(|m| m.id.clone()),
            None => self.members.contains_key(&id).then(|| id.clone()),
        };
        let Some(known) = known else {
            return HeartbeatResponse::error(
                code::UNKNOWN_MEMBER_ID,
                format!("Member {id} is not a member of group {}.", self.id),
            );
        };
        if known != id {
            return HeartbeatResponse::error(
                code::FENCED_INSTANCE_ID,
                format!("Member {id} was fenced by member {known} of the same instance."),
            );
        }
        if epoch == STATIC_LEAVE_EPOCH {
            // Kept, with its assignment, until its session (running since its last
            // heartbeat) times out or its instance rejoins.
            let m = self.members.get_mut(&id).expect("known");
            if m.epoch != STATIC_LEAVE_EPOCH {
                m.previous_epoch = m.epoch;
            }
            m.epoch = STATIC_LEAVE_EPOCH;
            m.pending_revocation.clear();
            m.revocation_deadline = None;
        } else {
            self.remove_member(&id);
        }
        HeartbeatResponse {
            member_id: Some(id),
            member_epoch: epoch,
            heartbeat_interval_ms: 0,
            ..Default::default()
        }
    }

    fn remove_member(&mut self, id: &str) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.forget_unused_regexes();
            self.update_subscription();
            self.bump();
        }
    }

    /// The assignor the members ask for most (ties: in Kafka's order of preference).
    fn chosen_assignor(&self) -> &'static str {
        let mut best = (0usize, DEFAULT_ASSIGNOR);
        for name in ASSIGNORS {
            let n = self
                .members
                .values()
                .filter(|m| m.server_assignor.as_deref() == Some(name))
                .count();
            if n > best.0 {
                best = (n, name);
            }
        }
        best.1
    }

    /// A new target assignment for the current group epoch.
    fn compute_target(&mut self) {
        let partitions: BTreeMap<TopicId, i32> = self
            .subscription
            .values()
            .map(|(id, n)| (*id, *n))
            .collect();
        let specs: Vec<MemberSpec<'_>> = self
            .members
            .values()
            .map(|m| MemberSpec {
                id: &m.id,
                topics: self
                    .member_topics(m)
                    .iter()
                    .filter_map(|n| self.subscription.get(n).map(|(id, _)| *id))
                    .collect(),
                previous: self.target.get(&m.id),
            })
            .collect();
        let name = self.chosen_assignor();
        let target = assignor::assign(name, &specs, &partitions);
        self.target = target;
        self.assignor = name.to_string();
        self.assignment_epoch = self.group_epoch;
    }

    /// Partitions held (assigned or still being revoked) by members other than `id`.
    fn held_by_others(&self, id: &str) -> Assignment {
        let mut out = Assignment::new();
        for m in self.members.values().filter(|m| m.id != id) {
            for a in [&m.assigned, &m.pending_revocation] {
                for (t, ps) in a {
                    out.entry(*t).or_default().extend(ps.iter().copied());
                }
            }
        }
        out
    }

    /// Move a member towards its target (Kafka's CurrentAssignmentBuilder).
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target_epoch = self.assignment_epoch;
        let target = self.target.get(id).cloned().unwrap_or_default();
        let m = &self.members[id];
        let advance = match m.state {
            MemberState::Stable => m.epoch != target_epoch,
            // It may move on once it reports owning none of what it must revoke.
            MemberState::UnrevokedPartitions => {
                owned.is_some_and(|o| !overlaps(o, &m.pending_revocation))
            }
            MemberState::UnreleasedPartitions => true,
        };
        if !advance {
            return;
        }
        let m = &self.members[id];
        let keep = intersect(&m.assigned, &target);
        let revoke = subtract(&m.assigned, &target);
        let adding = subtract(&target, &m.assigned);
        // A member that already reports owning none of them (an eager classic member rejoins
        // having revoked everything) moves on at once.
        let must_revoke = !revoke.is_empty() && owned.is_none_or(|o| overlaps(o, &revoke));
        // Only while partitions move does anyone else's holding matter.
        let held = match !must_revoke && !adding.is_empty() {
            true => self.held_by_others(id),
            false => Assignment::new(),
        };
        let m = self.members.get_mut(id).expect("member");
        if must_revoke {
            m.assigned = keep;
            m.pending_revocation = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revocation_deadline = Some(now + m.rebalance_timeout);
            return;
        }
        let free = subtract(&adding, &held);
        let unreleased = free != adding;
        let mut assigned = keep;
        for (t, ps) in free {
            assigned.entry(t).or_default().extend(ps);
        }
        m.assigned = assigned;
        m.pending_revocation.clear();
        m.revocation_deadline = None;
        m.state = if unreleased {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
        if m.epoch != target_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = target_epoch;
        }
    }

    /// Expire sessions and fence members that did not revoke within their rebalance timeout.
    /// Returns the removed members' ids.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now >= m.session_deadline || m.revocation_deadline.is_some_and(|d| now >= d)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove_member(id);
        }
        gone
    }

    /// OffsetCommit from this group (Kafka's validateOffsetCommit): an admin or simple
    /// client (negative epoch) may commit only while the group is empty; a member needs its
    /// current epoch (else STALE_MEMBER_EPOCH) and OffsetCommit v9+.
    pub fn check_commit(&self, member_id: &str, epoch: i32, api_version: i16) -> Result<(), i16> {
        if epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        let m = self.members.get(member_id).ok_or(code::UNKNOWN_MEMBER_ID)?;
        if m.classic.is_some() {
            // A classic member commits with its generation: the member epoch.
            return match epoch == m.epoch {
                true => Ok(()),
                false => Err(super::state::ILLEGAL_GENERATION),
            };
        }
        if api_version < 9 {
            return Err(code::UNSUPPORTED_VERSION);
        }
        Self::check_epoch(epoch, m.epoch)
    }

    /// OffsetFetch v9+ naming a member (Kafka's validateOffsetFetch).
    pub fn check_fetch(&self, member_id: Option<&str>, epoch: i32) -> Result<(), i16> {
        if epoch < 0 {
            return Ok(());
        }
        let m = self
            .members
            .get(member_id.unwrap_or_default())
            .ok_or(code::UNKNOWN_MEMBER_ID)?;
        Self::check_epoch(epoch, m.epoch)
    }

    fn check_epoch(received: i32, expected: i32) -> Result<(), i16> {
        match received == expected {
            true => Ok(()),
            false => Err(code::STALE_MEMBER_EPOCH),
        }
    }
}

/// Mixed groups (KIP-848's online migration): members speaking the classic protocol inside a
/// consumer group. Their JoinGroup is answered at once with their share of the target (they
/// are never the leader, the coordinator assigns); a rejoin is how they revoke — eager members
/// report owning nothing, cooperative ones report what they still own — and their Heartbeat
/// answers REBALANCE_IN_PROGRESS whenever they have something to give up or take.
impl ConsumerGroup {
    /// A classic group (protocol type "consumer") converted when its first consumer-protocol
    /// member arrives: members keep their subscriptions and assignments, at epoch
    /// `generation`. `Err` when a member's embedded protocol does not parse.
    pub fn from_classic(
        id: &str,
        limits: ConsumerLimits,
        generation: i32,
        imports: Vec<ClassicImport>,
        topics: Arc<Topics>,
        now: Instant,
    ) -> Result<ConsumerGroup, String> {
        let mut g = ConsumerGroup::new(id, limits);
        g.topics = topics;
        for c in imports {
            let sub = parse_subscription(&c.metadata)
                .ok_or_else(|| format!("member {}: malformed subscription", c.id))?;
            let parts = parse_assignment(&c.assignment)
                .ok_or_else(|| format!("member {}: malformed or custom assignment", c.id))?;
            let assigned = g.to_ids(&parts);
            let mut names = sub.topics;
            names.sort();
            names.dedup();
            g.target.insert(c.id.clone(), assigned.clone());
            g.members.insert(
                c.id.clone(),
                ConsumerMember {
                    rack_id: sub.rack_id,
                    subscribed_names: names,
                    epoch: generation,
                    previous_epoch: generation,
                    assigned,
                    classic: Some(ClassicMeta {
                        session_timeout: c.session_timeout,
                        protocols: c.protocols,
                    }),
                    ..ConsumerMember::new(
                        &c.id,
                        c.instance_id,
                        &c.client_id,
                        &c.client_host,
                        c.rebalance_timeout,
                        now + c.session_timeout,
                    )
                },
            );
        }
        g.group_epoch = generation;
        g.assignment_epoch = generation;
        g.update_subscription();
        Ok(g)
    }

    fn to_ids(&self, parts: &[(String, Vec<i32>)]) -> Assignment {
        let mut out = Assignment::new();
        for (name, ps) in parts {
            if let Some((id, count)) = self.topics.get(name) {
                let valid = ps.iter().copied().filter(|p| *p >= 0 && p < count);
                out.entry(*id).or_default().extend(valid);
            }
        }
        out.retain(|_, ps| !ps.is_empty());
        out
    }

    fn to_names(&self, a: &Assignment) -> Vec<(String, Vec<i32>)> {
        a.iter()
            .filter_map(|(id, ps)| {
                let name = self.topic_name(id)?;
                Some((name.to_string(), ps.iter().copied().collect()))
            })
            .collect()
    }

    /// Only classic members are left: the group goes back to the classic protocol.
    pub fn only_classic_left(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.classic.is_some())
    }

    /// The members as a classic group takes them back (at generation = the group epoch),
    /// each with its target assignment in the embedded format.
    pub fn to_classic(&mut self, now: Instant) -> (i32, Vec<super::state::Member>) {
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }
        let members = self
            .members
            .values()
            .filter_map(|m| {
                let c = m.classic.as_ref()?;
                let target = self.target.get(&m.id).cloned().unwrap_or_default();
                Some(super::state::Member {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: c.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocol_type: "consumer".to_string(),
                    protocols: c.protocols.clone(),
                    assignment: encode_assignment(c.version(), &self.to_names(&target)),
                    last_heartbeat: now,
                    awaiting_join: false,
                    awaiting_sync: false,
                })
            })
            .collect();
        (self.group_epoch, members)
    }

    /// A classic member must rejoin: to give up partitions, to move to the group's epoch, or
    /// to take partitions that were released meanwhile.
    fn classic_must_rejoin(&self, m: &ConsumerMember) -> bool {
        m.epoch < self.group_epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions && {
                let target = self.target.get(&m.id).cloned().unwrap_or_default();
                let missing = subtract(&target, &m.assigned);
                !overlaps(&missing, &self.held_by_others(&m.id))
            })
    }

    /// Find a classic member by id (and instance): UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID.
    fn classic_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if let Some(instance) = instance_id {
            match self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance))
            {
                Some(m) if m.id != member_id => return Err(code::FENCED_INSTANCE_ID),
                None => return Err(code::UNKNOWN_MEMBER_ID),
                Some(_) => {}
            }
        }
        match self.members.get(member_id) {
            Some(m) if m.classic.is_some() => Ok(()),
            _ => Err(code::UNKNOWN_MEMBER_ID),
        }
    }

    /// JoinGroup from a classic member: answered at once, with the member's epoch as the
    /// generation.
    pub fn classic_join(
        &mut self,
        req: &JoinRequest,
        min_session: Duration,
        max_session: Duration,
        topics: Arc<Topics>,
        now: Instant,
    ) -> JoinResult {
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if req.session_timeout_ms < 0 || session < min_session || session > max_session {
            return JoinResult::error(super::state::INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        if req.protocol_type != "consumer" || req.protocols.is_empty() {
            return JoinResult::error(super::state::INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
        }
        // Every classic member must share one protocol name with the others.
        let shared = self
            .members
            .values()
            .filter(|m| m.id != req.member_id)
            .filter_map(|m| m.classic.as_ref())
            .all(|c| {
                req.protocols
                    .iter()
                    .any(|(n, _)| c.protocols.iter().any(|(o, _)| o == n))
            });
        if !shared {
            return JoinResult::error(super::state::INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
        }
        let Some(sub) = parse_subscription(&req.protocols[0].1) else {
            return JoinResult::error(super::state::INCONSISTENT_GROUP_PROTOCOL, &req.member_id);
        };
        let mut member_id = req.member_id.clone();
        if member_id.is_empty() {
            member_id = format!(
                "{}-{}",
                req.client_id.chars().take(64).collect::<String>(),
                uuid::Uuid::new_v4()
            );
            if req.require_known_member_id && req.instance_id.is_none() {
                return JoinResult::error(super::state::MEMBER_ID_REQUIRED, &member_id);
            }
        }
        self.refresh_topics(topics);
        // A static member coming back under a new id takes over its instance's place.
        if let Some(instance) = &req.instance_id {
            let owner = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance))
                .map(|m| m.id.clone());
            if let Some(owner) = owner.filter(|o| *o != member_id) {
                let mut m = self.members.remove(&owner).expect("owner");
                m.id = member_id.clone();
                if let Some(t) = self.target.remove(&owner) {
                    self.target.insert(member_id.clone(), t);
                }
                self.members.insert(member_id.clone(), m);
            }
        }
        let mut names = sub.topics.clone();
        names.sort();
        names.dedup();
        if self
            .members
            .get(&member_id)
            .is_some_and(|m| m.classic.is_none())
        {
            // A consumer-protocol member's id: not a classic member of this group.
            return JoinResult::error(code::UNKNOWN_MEMBER_ID, &member_id);
        }
        let joined = !self.members.contains_key(&member_id);
        if joined && self.members.len() >= self.limits.max_size {
            return JoinResult::error(super::state::GROUP_MAX_SIZE_REACHED, &member_id);
        }
        let m = self.members.entry(member_id.clone()).or_insert_with(|| {
            ConsumerMember::new(
                &member_id,
                req.instance_id.clone(),
                &req.client_id,
                &req.client_host,
                Duration::ZERO,
                now,
            )
        });
        let changed = m.subscribed_names != names;
        m.subscribed_names = names;
        m.rack_id = sub.rack_id.clone();
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
        m.classic = Some(ClassicMeta {
            session_timeout: session,
            protocols: req.protocols.clone(),
        });
        m.session_deadline = now + session;
        m.revocation_deadline = None;
        if changed || joined {
            self.update_subscription();
            self.bump();
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target();
        }
        // What it reports owning is its revocation: eager members own nothing on a rejoin.
        let owned = self.to_ids(&sub.owned);
        self.reconcile(&member_id, Some(&owned), now);
        let m = &self.members[&member_id];
        JoinResult {
            error: code::NONE,
            generation: m.epoch,
            protocol_type: Some("consumer".to_string()),
            protocol_name: Some(req.protocols[0].0.clone()),
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }

    /// SyncGroup from a classic member: its assigned partitions (never those it must still
    /// give up or that others still hold).
    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> SyncResult {
        let fail = |error| SyncResult {
            error,
            assignment: bytes::Bytes::new(),
        };
        if let Err(e) = self.classic_member(member_id, instance_id) {
            return fail(e);
        }
        let m = &self.members[member_id];
        if generation != m.epoch {
            return fail(super::state::ILLEGAL_GENERATION);
        }
        if self.group_epoch > m.epoch && m.state != MemberState::UnrevokedPartitions {
            let deadline = now + m.rebalance_timeout;
            let m = self.members.get_mut(member_id).expect("member");
            m.revocation_deadline.get_or_insert(deadline);
            return fail(super::state::REBALANCE_IN_PROGRESS);
        }
        let c = m.classic.as_ref().expect("classic");
        let assignment = encode_assignment(c.version(), &self.to_names(&m.assigned));
        let session = c.session_timeout;
        self.members
            .get_mut(member_id)
            .expect("member")
            .session_deadline = now + session;
        SyncResult {
            error: code::NONE,
            assignment,
        }
    }

    /// Heartbeat from a classic member.
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if let Err(e) = self.classic_member(member_id, instance_id) {
            return e;
        }
        let m = &self.members[member_id];
        if generation != m.epoch {
            return super::state::ILLEGAL_GENERATION;
        }
        let rejoin = self.classic_must_rejoin(m);
        let m = self.members.get_mut(member_id).expect("member");
        let c = m.classic.as_ref().expect("classic");
        m.session_deadline = now + c.session_timeout;
        if rejoin {
            m.revocation_deadline
                .get_or_insert(now + m.rebalance_timeout);
            return super::state::REBALANCE_IN_PROGRESS;
        }
        code::NONE
    }

    /// LeaveGroup from a classic member.
    pub fn classic_leave(&mut self, member_id: &str, instance_id: Option<&str>) -> i16 {
        let id = match (instance_id, member_id.is_empty()) {
            // An admin removing a static member names only its instance.
            (Some(instance), true) => match self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance))
            {
                Some(m) => m.id.clone(),
                None => return code::UNKNOWN_MEMBER_ID,
            },
            _ => {
                if let Err(e) = self.classic_member(member_id, instance_id) {
                    return e;
                }
                member_id.to_string()
            }
        };
        self.remove_member(&id);
        code::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TopicId = [7; 16];
    const U: TopicId = [8; 16];

    fn limits() -> ConsumerLimits {
        ConsumerLimits {
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(5),
            max_size: 3,
        }
    }

    fn topics(list: &[(&str, TopicId, i32)]) -> Arc<Topics> {
        Arc::new(
            list.iter()
                .map(|(n, id, p)| (n.to_string(), (*id, *p)))
                .collect(),
        )
    }

    fn join(id: &str, names: &[&str]) -> HeartbeatRequest {
        HeartbeatRequest {
            version: 1,
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(names.iter().map(|s| s.to_string()).collect()),
            owned: Some(Assignment::new()),
            ..Default::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: Option<&Assignment>) -> HeartbeatRequest {
        HeartbeatRequest {
            version: 1,
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: owned.cloned(),
            ..Default::default()
        }
    }

    impl HeartbeatRequest {
        fn with_epoch(mut self, epoch: i32) -> HeartbeatRequest {
            self.member_epoch = epoch;
            self
        }
    }

    fn parts(a: &Option<Assignment>, t: TopicId) -> Vec<i32> {
        a.as_ref()
            .and_then(|a| a.get(&t))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    #[test]
    fn first_member_gets_everything_at_once() {
        let mut g = ConsumerGroup::new("g", limits());
        let tp = topics(&[("t", T, 4)]);
        let now = Instant::now();
        let r = g.heartbeat(join("a", &["t"]), tp.clone(), now);
        assert_eq!(r.error, 0);
        assert_eq!(r.member_epoch, 1, "a join is one new group epoch");
        assert_eq!(parts(&r.assignment, T), vec![0, 1, 2, 3]);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        // A plain heartbeat carries no assignment.
        let owned = r.assignment.clone();
        let r = g.heartbeat(beat("a", 1, None), tp, now);
        assert_eq!((r.error, r.member_epoch, r.assignment), (0, 1, None));
        assert!(owned.is_some());
    }

    #[test]
    fn partitions_move_only_after_revocation() {
        let mut g = ConsumerGroup::new("g", limits());
        let tp = topics(&[("t", T, 4)]);
        let now = Instant::now();
        let a = g.heartbeat(join("a", &["t"]), tp.clone(), now);
        let a_owned = a.assignment.clone().unwrap();
        let b = g.heartbeat(join("b", &["t"]), tp.clone(), now);
        // b moved to the new epoch but gets nothing a still holds.
        assert_eq!(b.error, 0);
        assert_eq!(parts(&b.assignment, T), Vec::<i32>::new());
        assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
        assert_eq!(g.state(), ConsumerGroupState::Reconciling);
        // a is told to keep two: its epoch stays until it confirms.
        let r = g.heartbeat(beat("a", a.member_epoch, Some(&a_owned)), tp.clone(), now);
        assert_eq!(r.member_epoch, a.member_epoch);
        let kept = r.assignment.clone().unwrap();
        assert_eq!(kept[&T].len(), 2);
        assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
        // Still owning the revoked ones: nothing moves.
        let r = g.heartbeat(beat("a", a.member_epoch, Some(&a_owned)), tp.clone(), now);
        assert_eq!((r.member_epoch, r.assignment), (a.member_epoch, None));
        let r = g.heartbeat(
            beat("b", b.member_epoch, Some(&Assignment::new())),
            tp.clone(),
            now,
        );
        assert_eq!(r.assignment, None, "b still waits");
        // a revoked: it moves to the group's epoch, b gets the released partitions.
        let r = g.heartbeat(beat("a", a.member_epoch, Some(&kept)), tp.clone(), now);
        assert_eq!(r.member_epoch, g.assignment_epoch);
        let r = g.heartbeat(beat("b", b.member_epoch, Some(&Assignment::new())), tp, now);
        assert_eq!(parts(&r.assignment, T).len(), 2);
        let all: BTreeSet<i32> = g
            .members
            .values()
            .flat_map(|m| m.assigned[&T].clone())
            .collect();
        assert_eq!(all.len(), 4);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
    }

    #[test]
    fn epochs_are_validated() {
        let mut g = ConsumerGroup::new("g", limits());
        let tp = topics(&[("t", T, 2), ("u", U, 1)]);
        let now = Instant::now();
        g.heartbeat(join("a", &["t"]), tp.clone(), now);
        // A new subscription: a new epoch.
        let mut r = beat("a", 1, None);
        r.subscribed_topic_names = Some(vec!["t".into(), "u".into()]);
        let a = g.heartbeat(r, tp.clone(), now);
        let e = a.member_epoch;
        assert_eq!((e, g.members["a"].previous_epoch), (2, 1));
        assert_eq!(
            g.heartbeat(beat("a", e + 1, None), tp.clone(), now).error,
            code::FENCED_MEMBER_EPOCH
        );
        assert_eq!(
            g.heartbeat(beat("a", e - 1, None), tp.clone(), now).error,
            code::FENCED_MEMBER_EPOCH
        );
        assert_eq!(
            g.heartbeat(beat("zz", 3, None), tp.clone(), now).error,
            code::UNKNOWN_MEMBER_ID
        );
        // A lost response: the previous epoch with owned ⊆ assigned is accepted.
        let prev = g.members["a"].previous_epoch;
        let owned = g.members["a"].assigned.clone();
        assert_eq!(
            g.heartbeat(beat("a", prev, Some(&owned)), tp.clone(), now)
                .error,
            0
        );
        // Commits need the current epoch and v9.
        assert_eq!(g.check_commit("a", e, 9), Ok(()));
        assert_eq!(g.check_commit("a", e - 1, 9), Err(code::STALE_MEMBER_EPOCH));
        assert_eq!(g.check_commit("a", e + 1, 9), Err(code::STALE_MEMBER_EPOCH));
        assert_eq!(g.check_commit("a", e, 8), Err(code::UNSUPPORTED_VERSION));
        assert_eq!(g.check_commit("", -1, 9), Err(code::UNKNOWN_MEMBER_ID));
        assert_eq!(
            g.check_fetch(Some("a"), e - 1),
            Err(code::STALE_MEMBER_EPOCH)
        );
        assert_eq!(g.check_fetch(None, -1), Ok(()));
        // Leaving empties the group; then anyone may commit.
        let r = g.heartbeat(beat("a", LEAVE_EPOCH, None), tp, now);
        assert_eq!((r.error, r.member_epoch), (0, LEAVE_EPOCH));
        assert!(g.is_empty());
        assert_eq!(g.check_commit("", -1, 2), Ok(()));
    }

    #[test]
    fn requests_are_validated() {
        let mut g = ConsumerGroup::new("g", limits());
        let tp = topics(&[("t", T, 2)]);
        let now = Instant::now();
        let mut r = join("a", &["t"]);
        r.rebalance_timeout_ms = -1;
        assert_eq!(g.heartbeat(r, tp.clone(), now).error, code::INVALID_REQUEST);
        let mut r = join("a", &["t"]);
        r.subscribed_topic_names = None;
        assert_eq!(g.heartbeat(r, tp.clone(), now).error, code::INVALID_REQUEST);
        let mut r = join("", &["t"]);
        assert_eq!(
            g.heartbeat(r.clone(), tp.clone(), now).error,
            code::INVALID_REQUEST
        );
        r.version = 0;
        let ok = g.heartbeat(r, tp.clone(), now);
        assert_eq!(ok.error, 0, "v0 names the member");
        assert!(!ok.member_id.unwrap().is_empty());
        let mut r = join("b", &["t"]);
        r.server_assignor = Some("sticky".into());
        assert_eq!(
            g.heartbeat(r, tp.clone(), now).error,
            code::UNSUPPORTED_ASSIGNOR
        );
        let mut r = join("b", &[]);
        r.subscribed_topic_regex = Some("(unclosed".into());
        assert_eq!(
            g.heartbeat(r, tp.clone(), now).error,
            code::INVALID_REGULAR_EXPRESSION
        );
        let mut r = join("b", &[]);
        r.subscribed_topic_regex = Some("a{1000}{1000}{1000}".into());
        assert_eq!(
            g.heartbeat(r, tp.clone(), now).error,
            code::INVALID_REGULAR_EXPRESSION
        );
        let mut r = beat("b", -3, None);
        r.instance_id = Some("i".into());
        assert_eq!(g.heartbeat(r, tp.clone(), now).error, code::INVALID_REQUEST);
        // The group's size is bounded.
        for id in ["b", "c"] {
            assert_eq!(g.heartbeat(join(id, &["t"]), tp.clone(), now).error, 0);
        }
        assert_eq!(
            g.heartbeat(join("d", &["t"]), tp, now).error,
            code::GROUP_MAX_SIZE_REACHED
        );
    }

    #[test]
    fn regex_subscription_follows_topic_creation() {
        let mut g = ConsumerGroup::new("g", limits());
        let now = Instant::now();
        let mut r = join("a", &[]);
        r.subscribed_topic_regex = Some("orders-.*".into());
        let tp = topics(&[("orders-eu", T, 2), ("other", U, 2)]);
        let a = g.heartbeat(r, tp.clone(), now);
        // The new regex is resolved on the next heartbeat.
        assert_eq!(parts(&a.assignment, T), Vec::<i32>::new());
        let a = g.heartbeat(beat("a", a.member_epoch, None), tp, now);
        assert_eq!(parts(&a.assignment, T), vec![0, 1]);
        assert!(a.assignment.as_ref().unwrap().get(&U).is_none());
        // A matching topic appears: the next heartbeat brings it.
        let tp = topics(&[("orders-eu", T, 2), ("orders-us", U, 3)]);
        let r = g.heartbeat(beat("a", a.member_epoch, None), tp, now);
        assert!(r.member_epoch > a.member_epoch);
        assert_eq!(parts(&r.assignment, U), vec![0, 1, 2]);
        assert_eq!(g.subscribed_topics().len(), 2);
    }

    #[test]
    fn regex_matches_only_describable_topics() {
        let mut g = ConsumerGroup::new("g", limits());
        g.set_topic_filter(Some(TopicFilter(Arc::new(|t: &str| t != "orders-secret"))));
        let now = Instant::now();
        let mut r = join("a", &[]);
        r.subscribed_topic_regex = Some("orders-.*".into());
        let tp = topics(&[("orders-eu", T, 2), ("orders-secret", U, 2)]);
        let a = g.heartbeat(r, tp.clone(), now);
        let a = g.heartbeat(beat("a", a.member_epoch, None), tp, now);
        assert_eq!(parts(&a.assignment, T), vec![0, 1]);
        assert!(a.assignment.as_ref().unwrap().get(&U).is_none());
        assert_eq!(g.subscribed_topics().len(), 1);
    }

    #[test]
    fn static_member_leaves_and_comes_back_without_rebalance() {
        let mut g = ConsumerGroup::new("g", limits());
        let tp = topics(&[("t", T, 2)]);
        let now = Instant::now();
        let mut r = join("a1", &["t"]);
        r.instance_id = Some("i".into());
        let a = g.heartbeat(r, tp.clone(), now);
        let epoch = g.group_epoch;
        let mut leave = beat("a1", STATIC_LEAVE_EPOCH, None);
        leave.instance_id = Some("i".into());
        assert_eq!(
            g.heartbeat(leave, tp.clone(), now).member_epoch,
            STATIC_LEAVE_EPOCH
        );
        assert_eq!(g.group_epoch, epoch, "no rebalance");
        // Another member id takes the instance back, with the same partitions.
        let mut r = join("a2", &["t"]);
        r.instance_id = Some("i".into());
        let back = g.heartbeat(r, tp.clone(), now);
        assert_eq!(back.error, 0);
        assert_eq!(back.assignment, a.assignment);
        assert_eq!(g.group_epoch, epoch);
        // The old id is fenced; a third one is refused while a2 holds the instance.
        let mut old = beat("a1", a.member_epoch, None);
        old.instance_id = Some("i".into());
        assert_eq!(
            g.heartbeat(old, tp.clone(), now).error,
            code::FENCED_INSTANCE_ID
        );
        let mut r = join("a3", &["t"]);
        r.instance_id = Some("i".into());
        assert_eq!(g.heartbeat(r, tp, now).error, code::UNRELEASED_INSTANCE_ID);
    }

    #[test]
    fn timeouts_remove_members() {
        let mut g = ConsumerGroup::new("g", limits());
        let tp = topics(&[("t", T, 4)]);
        let now = Instant::now();
        let a = g.heartbeat(join("a", &["t"]), tp.clone(), now);
        g.heartbeat(join("b", &["t"]), tp.clone(), now);
        // a is asked to revoke and never does: fenced after its rebalance timeout (30 s).
        let owned = a.assignment.clone().unwrap();
        g.heartbeat(beat("a", a.member_epoch, Some(&owned)), tp.clone(), now);
        assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);
        g.heartbeat(
            beat("b", g.members["b"].epoch, None),
            tp.clone(),
            now + Duration::from_secs(20),
        );
        assert_eq!(g.tick(now + Duration::from_secs(31)), vec!["a".to_string()]);
        // b gets everything; then its session expires too.
        let r = g.heartbeat(
            beat("b", g.members["b"].epoch, Some(&Assignment::new())),
            tp,
            now + Duration::from_secs(32),
        );
        assert_eq!(parts(&r.assignment, T), vec![0, 1, 2, 3]);
        assert_eq!(g.tick(now + Duration::from_secs(78)), vec!["b".to_string()]);
        assert_eq!(g.state(), ConsumerGroupState::Empty);
    }
    fn subscription(topics: &[&str], owned: &[(&str, Vec<i32>)]) -> bytes::Bytes {
        use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as Owned;
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let mut s = kafka_protocol::messages::ConsumerProtocolSubscription::default();
        s.topics = topics
            .iter()
            .map(|t| StrBytes::from_string(t.to_string()))
            .collect();
        s.owned_partitions = owned
            .iter()
            .map(|(t, ps)| {
                let mut o = Owned::default();
                o.topic = kafka_protocol::messages::TopicName(StrBytes::from_string(t.to_string()));
                o.partitions = ps.clone();
                o
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        bytes::BufMut::put_i16(&mut buf, 1);
        s.encode(&mut buf, 1).unwrap();
        buf.freeze()
    }

    fn classic_join(id: &str, owned: &[(&str, Vec<i32>)]) -> JoinRequest {
        JoinRequest {
            member_id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(&["t"], owned))],
            require_known_member_id: false,
        }
    }

    fn import(id: &str, parts: Vec<i32>) -> ClassicImport {
        let md = subscription(&["t"], &[]);
        ClassicImport {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocols: vec![("range".into(), md.clone())],
            metadata: md,
            assignment: encode_assignment(1, &[("t".into(), parts)]),
        }
    }

    fn sync_parts(r: &SyncResult) -> Vec<i32> {
        parse_assignment(&r.assignment)
            .unwrap()
            .into_iter()
            .flat_map(|(_, ps)| ps)
            .collect()
    }

    /// A live classic group upgraded by a consumer-protocol member: classic members keep
    /// their partitions, rebalance through JoinGroup/SyncGroup (an eager one revokes by
    /// rejoining, a cooperative one in two joins), and the group turns classic again when
    /// the consumer-protocol member leaves.
    #[test]
    fn mixed_group_upgrade_and_downgrade() {
        let now = Instant::now();
        let tp = topics(&[("t", T, 4)]);
        let mut g = ConsumerGroup::from_classic(
            "g",
            limits(),
            5,
            vec![import("a", vec![0, 1]), import("b", vec![2, 3])],
            tp.clone(),
            now,
        )
        .unwrap();
        assert_eq!((g.group_epoch, g.members["a"].epoch), (5, 5));
        assert_eq!(g.classic_heartbeat("a", None, 5, now), 0);
        // The consumer-protocol member joins: a new epoch; it waits for what b still holds.
        let c = g.heartbeat(join("c", &["t"]), tp.clone(), now);
        assert_eq!((c.error, c.member_epoch), (0, 6));
        assert_eq!(g.members["c"].state, MemberState::UnreleasedPartitions);
        // The classic members are told to rejoin.
        assert_eq!(
            g.classic_heartbeat("a", None, 5, now),
            super::super::state::REBALANCE_IN_PROGRESS
        );
        assert_eq!(
            g.classic_heartbeat("b", None, 5, now),
            super::super::state::REBALANCE_IN_PROGRESS
        );
        // b is cooperative: it first reports owning both, keeps one, and gives up the other
        // on its second join.
        let r = g.classic_join(
            &classic_join("b", &[("t", vec![2, 3])]),
            Duration::ZERO,
            Duration::MAX,
            tp.clone(),
            now,
        );
        assert_eq!((r.error, r.generation, r.leader.as_str()), (0, 5, ""));
        let s = g.classic_sync("b", None, 5, now);
        assert_eq!(s.error, 0);
        assert_eq!(sync_parts(&s).len(), 1);
        let kept = sync_parts(&s);
        assert_eq!(
            g.classic_heartbeat("b", None, 5, now),
            super::super::state::REBALANCE_IN_PROGRESS
        );
        let r = g.classic_join(
            &classic_join("b", &[("t", kept.clone())]),
            Duration::ZERO,
            Duration::MAX,
            tp.clone(),
            now,
        );
        assert_eq!(r.generation, 6);
        assert_eq!(sync_parts(&g.classic_sync("b", None, 6, now)), kept);
        assert_eq!(g.classic_heartbeat("b", None, 6, now), 0);
        // c now gets the released partition.
        let r = g.heartbeat(beat("c", 6, Some(&Assignment::new())), tp.clone(), now);
        assert_eq!(parts(&r.assignment, T).len(), 1);
        // a is eager: it rejoins owning nothing and moves to the epoch at once.
        let r = g.classic_join(
            &classic_join("a", &[]),
            Duration::ZERO,
            Duration::MAX,
            tp.clone(),
            now,
        );
        assert_eq!(r.generation, 6);
        assert_eq!(sync_parts(&g.classic_sync("a", None, 6, now)), vec![0, 1]);
        assert_eq!(g.classic_heartbeat("a", None, 6, now), 0);
        assert_eq!(g.state(), ConsumerGroupState::Stable);
        // Classic commits carry the generation (= member epoch).
        assert_eq!(g.check_commit("a", 6, 2), Ok(()));
        assert_eq!(
            g.check_commit("a", 5, 2),
            Err(super::super::state::ILLEGAL_GENERATION)
        );
        assert_eq!(
            g.classic_sync("a", None, 5, now).error,
            super::super::state::ILLEGAL_GENERATION
        );
        assert_eq!(
            g.classic_heartbeat("zz", None, 6, now),
            code::UNKNOWN_MEMBER_ID
        );
        // Each protocol only for its own members.
        assert_eq!(
            g.classic_heartbeat("c", None, 6, now),
            code::UNKNOWN_MEMBER_ID
        );
        let r = g.classic_join(
            &classic_join("c", &[]),
            Duration::ZERO,
            Duration::MAX,
            tp.clone(),
            now,
        );
        assert_eq!(r.error, code::UNKNOWN_MEMBER_ID);
        assert_eq!(
            g.heartbeat(beat("a", 6, None), tp.clone(), now).error,
            code::UNKNOWN_MEMBER_ID
        );
        // c leaves: only classic members are left, the group goes back to classic with their
        // target assignments.
        g.heartbeat(beat("c", 6, None).with_epoch(LEAVE_EPOCH), tp, now);
        assert!(g.only_classic_left());
        let (generation, members) = g.to_classic(now);
        assert_eq!(generation, 7);
        let total: usize = members
            .iter()
            .map(|m| {
                parse_assignment(&m.assignment)
                    .unwrap()
                    .iter()
                    .map(|(_, p)| p.len())
                    .sum::<usize>()
            })
            .sum();
        assert_eq!(total, 4, "every partition handed back");
    }
}
