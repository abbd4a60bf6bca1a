//! Shard leases: several dashboard instances sharing one fleet through
//! PostgreSQL, each polling, healing and alerting only for the servers of
//! the shards it holds.
//!
//! Servers hash into a fixed number of shards ([`shard_of`]). Each shard
//! has a lease row in the store (owner, epoch, expiry); each instance
//! heartbeats into the store. [`Leases`] is one instance's side of it: it
//! decides which leases to renew, claim and release, and tells its driver
//! when it may act on a shard. It does no I/O and reads no clock. Every
//! judgement of time that crosses machines is made by the database (lease
//! `remaining`, heartbeat liveness); this machine only measures its own
//! elapsed time, from the instant it sent a round.
//!
//! ## The promises
//!
//! - **One owner.** An instance acts on a shard (see [`Leases::owns`]) only
//!   until `sent_at + ttl - fence_margin` of the last round that renewed or
//!   claimed it. The database set the expiry to its `now() + ttl`, and its
//!   `now()` is at or after `sent_at`, so the instance stops *before* its
//!   lease can expire and be claimed by anyone else (self-fencing). The
//!   margin absorbs clock-rate drift between the two machines.
//! - **Fencing tokens.** Every claim bumps the shard's epoch; renewals and
//!   releases are compare-and-set on (owner, epoch), so a stale instance's
//!   writes are refused. The epoch is also the token to stamp on anything
//!   the owner writes for its servers.
//! - **Fast failover.** A dead instance's shards are claimed, all at once,
//!   by their next rendezvous owner in the first round after the leases
//!   expire (a round is scheduled for that very expiry).
//! - **Gradual rebalancing.** When instances join, each holder releases at
//!   most `moves_per_round` shards per round to their new preferred owner,
//!   and takes at most that many expired leases from live instances, so a
//!   join never moves the whole fleet at once.
//!
//! ## The store
//!
//! A round is one transaction; the driver records `sent_at` (it is the
//! `now` given to [`Leases::poll_round`]) before it sends `BEGIN`. A
//! sketch, with `now()` PostgreSQL's transaction start time:
//!
//! ```sql
//! -- once, at start-up: one row per shard
//! INSERT INTO shard_lease (shard, owner, epoch, expires_at)
//!   SELECT s, NULL, 0, now() FROM generate_series(0, $shards - 1) s ON CONFLICT DO NOTHING;
//! -- every round, in this order
//! INSERT INTO shard_instance (id, seen_at) VALUES ($me, now())
//!   ON CONFLICT (id) DO UPDATE SET seen_at = now();
//! UPDATE shard_lease SET owner = NULL, expires_at = now()          -- release (shard, epoch)
//!   WHERE shard = $1 AND owner = $me AND epoch = $2;
//! UPDATE shard_lease SET expires_at = now() + $ttl                  -- renew (shard, epoch)
//!   WHERE shard = $1 AND owner = $me AND epoch = $2 AND expires_at > now() RETURNING shard, epoch;
//! UPDATE shard_lease SET owner = $me, epoch = epoch + 1, expires_at = now() + $ttl   -- claim
//!   WHERE shard = $1 AND epoch = $2 AND (owner IS NULL OR expires_at <= now()) RETURNING shard, epoch;
//! SELECT shard, owner, epoch, GREATEST(expires_at - now(), '0') FROM shard_lease;
//! SELECT id FROM shard_instance WHERE seen_at > now() - $ttl;
//! ```
//!
//! ## Driving it
//!
//! The usual vocabulary: `handle_timeout(now)`, then `poll_round(now)` (send
//! it; at most one is in flight), then `poll_event()` until `None`; sleep
//! until `poll_timeout()` or the answer, which goes to `handle_round`.
//!
//! ```
//! use core::time::Duration;
//! use ipvtl_core::shard::{InstanceId, LeaseRow, Leases, RoundResult, ShardConfig, ShardEvent};
//! use ipvtl_core::Instant;
//!
//! let me = InstanceId::from("dash-a");
//! let mut leases = Leases::new(me.clone(), ShardConfig::new(4, Duration::from_secs(10)), Instant::ZERO);
//! let mut epochs = [0u64; 4]; // a one-instance "database" that grants every claim
//! let mut acquired = 0;
//! let mut now = Instant::ZERO;
//! for _ in 0..3 {
//!     leases.handle_timeout(now);
//!     while let Some(round) = leases.poll_round(now) {
//!         let mut claimed = Vec::new();
//!         for &(shard, expected) in &round.claim {
//!             if epochs[usize::from(shard)] == expected {
//!                 epochs[usize::from(shard)] += 1;
//!                 claimed.push((shard, expected + 1));
//!             }
//!         }
//!         let view = (0..4u16)
//!             .map(|shard| {
//!                 let epoch = epochs[usize::from(shard)];
//!                 let owner = (epoch > 0).then(|| me.clone());
//!                 LeaseRow { shard, owner, epoch, remaining: Some(Duration::from_secs(10)) }
//!             })
//!             .collect();
//!         let result = RoundResult { view, live: vec![me.clone()], renewed: round.renew.clone(), claimed };
//!         leases.handle_round(round.id, Ok(result), now);
//!     }
//!     while let Some(event) = leases.poll_event() {
//!         if let ShardEvent::Acquired { .. } = event {
//!             acquired += 1;
//!         }
//!     }
//!     now = leases.poll_timeout().expect("a round is always due some time");
//! }
//! assert_eq!(acquired, 4);
//! assert_eq!(leases.owned(now).count(), 4);
//! assert_eq!(leases.owns(2, now), Some(1));
//! ```

use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::ids::ServerId;
use crate::time::Instant;

mod rendezvous;

pub use rendezvous::{fnv1a64, rendezvous_owner, rendezvous_weight, shard_of, InstanceId};

/// How the fleet is cut into shards and how leases are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardConfig {
    /// How many shards servers hash into (default 256). Every instance
    /// must use the same number.
    pub shards: u16,
    /// Lease length, as the database sets it (default 10 s).
    pub ttl: Duration,
    /// Time between rounds (default `ttl / 4`).
    pub renew_every: Duration,
    /// How long before the lease's earliest possible expiry an instance
    /// stops acting on a shard it could not renew (default `ttl / 5`).
    /// Must cover the clock-rate drift between instance and database over
    /// one `ttl`.
    pub fence_margin: Duration,
    /// At most this many shards change hands between live instances per
    /// round of one instance (default `max(1, shards / 16)`).
    pub moves_per_round: usize,
}

impl ShardConfig {
    /// `shards` shards with leases of `ttl`, the rest derived as documented
    /// on the fields.
    pub fn new(shards: u16, ttl: Duration) -> Self {
        ShardConfig {
            shards,
            ttl,
            renew_every: ttl / 4,
            fence_margin: ttl / 5,
            moves_per_round: usize::from(shards / 16).max(1),
        }
    }

    /// How long a round may take before it counts as failed, and how long
    /// after a round's send an instance may act on what it renewed:
    /// `ttl - fence_margin`.
    pub fn act_window(&self) -> Duration {
        self.ttl.saturating_sub(self.fence_margin)
    }

    /// Checks that the settings can work: shards, a lease, a margin shorter
    /// than the lease, rounds more frequent than the act window.
    pub fn validate(&self) -> Result<(), ShardConfigError> {
        if self.shards == 0 {
            return Err(ShardConfigError::NoShards);
        }
        if self.moves_per_round == 0 {
            return Err(ShardConfigError::NoMoves);
        }
        if self.fence_margin >= self.ttl {
            return Err(ShardConfigError::MarginTooLarge { fence_margin: self.fence_margin, ttl: self.ttl });
        }
        if self.renew_every.is_zero() || self.renew_every >= self.act_window() {
            return Err(ShardConfigError::RenewTooSlow {
                renew_every: self.renew_every,
                act_window: self.act_window(),
            });
        }
        Ok(())
    }
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig::new(256, Duration::from_secs(10))
    }
}

/// Why a [`ShardConfig`] cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardConfigError {
    /// `shards` is 0.
    NoShards,
    /// `moves_per_round` is 0: no instance could ever join.
    NoMoves,
    /// The fence margin is not shorter than the lease, so no instance
    /// would ever act.
    MarginTooLarge {
        /// The configured margin.
        fence_margin: Duration,
        /// The configured lease.
        ttl: Duration,
    },
    /// Rounds are not more frequent than the act window: shards would be
    /// fenced between two renewals.
    RenewTooSlow {
        /// The configured round interval.
        renew_every: Duration,
        /// `ttl - fence_margin`.
        act_window: Duration,
    },
}

impl fmt::Display for ShardConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardConfigError::NoShards => f.write_str("shard config: `shards` must be at least 1"),
            ShardConfigError::NoMoves => f.write_str("shard config: `moves_per_round` must be at least 1"),
            ShardConfigError::MarginTooLarge { fence_margin, ttl } => {
                write!(f, "shard config: fence margin {fence_margin:?} must be shorter than the lease ttl {ttl:?}")
            }
            ShardConfigError::RenewTooSlow { renew_every, act_window } => write!(
                f,
                "shard config: rounds every {renew_every:?} must be more frequent than ttl - fence margin \
                 ({act_window:?}), or leases are fenced between renewals"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ShardConfigError {}

/// Identifies one round (one store transaction) of one [`Leases`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoundId(pub u64);

impl fmt::Display for RoundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What to do in one transaction: heartbeat, then release, renew and claim
/// by compare-and-set, then read the lease table and the live instances
/// (see the module docs for the SQL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round {
    /// Give it back to [`Leases::handle_round`].
    pub id: RoundId,
    /// When the round was made; send it after this instant.
    pub sent_at: Instant,
    /// (shard, epoch) leases to extend to `now() + ttl`, if still mine at
    /// that epoch and unexpired.
    pub renew: Vec<(u16, u64)>,
    /// (shard, expected epoch) leases to take, if at that epoch and free or
    /// expired; a claim bumps the epoch.
    pub claim: Vec<(u16, u64)>,
    /// (shard, epoch) leases to give up, if still mine at that epoch. The
    /// machine stopped acting on them when it made the round.
    pub release: Vec<(u16, u64)>,
}

/// One row of the lease table, as the database sees it after a round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    /// The shard.
    pub shard: u16,
    /// Who holds or last held it; `None` once released or never claimed.
    pub owner: Option<InstanceId>,
    /// Bumped by every claim.
    pub epoch: u64,
    /// `expires_at - now()`, computed by the database; `None` or zero once
    /// expired. Never compare clocks across machines.
    pub remaining: Option<Duration>,
}

/// The answer to a round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoundResult {
    /// The whole lease table after the round. Missing rows count as free at
    /// epoch 0.
    pub view: Vec<LeaseRow>,
    /// The instances whose heartbeat the database judges fresh.
    pub live: Vec<InstanceId>,
    /// (shard, epoch) renewals the database accepted.
    pub renewed: Vec<(u16, u64)>,
    /// (shard, new epoch) claims the database accepted.
    pub claimed: Vec<(u16, u64)>,
}

/// Why an instance stopped acting on a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LostWhy {
    /// Not renewed in time: the instance fenced itself before the lease
    /// could expire.
    Fenced,
    /// Given back to its rendezvous owner (rebalancing).
    Released,
    /// The store shows another owner or a newer epoch.
    Taken,
}

/// What changed in the set of shards this instance acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardEvent {
    /// Start polling, healing and alerting for the shard's servers; stamp
    /// writes with `epoch`.
    Acquired {
        /// The shard.
        shard: u16,
        /// The lease's epoch (a fencing token).
        epoch: u64,
    },
    /// Stop acting on the shard's servers now.
    Lost {
        /// The shard.
        shard: u16,
        /// Why.
        why: LostWhy,
    },
}

/// A lease this instance holds.
#[derive(Clone, Copy, Debug)]
struct Held {
    epoch: u64,
    act_until: Instant,
}

/// Who holds a shard, as the last view showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Free,
    Me,
    Live,
    Dead,
}

/// One shard in the last view, judged against the live set.
#[derive(Clone, Copy, Debug)]
struct Slot {
    holder: Holder,
    epoch: u64,
    /// The database's `remaining`, zero mapped to `None`.
    remaining: Option<Duration>,
    /// The latest local instant the lease can expire: received + remaining.
    expires_by: Option<Instant>,
    /// Rendezvous (over live + me) prefers me.
    preferred: bool,
    /// If this lease expires I may be the one to claim it: a round is
    /// scheduled for its expiry.
    wake: bool,
}

impl Slot {
    const FREE: Slot =
        Slot { holder: Holder::Free, epoch: 0, remaining: None, expires_by: None, preferred: false, wake: false };

    fn claimable(&self, now: Instant) -> bool {
        self.holder == Holder::Free || self.expires_by.is_none_or(|t| t <= now)
    }
}

/// The round in flight.
#[derive(Clone, Debug)]
struct InFlight {
    id: RoundId,
    sent_at: Instant,
    renew: Vec<(u16, u64)>,
    claim: Vec<(u16, u64)>,
}

/// One instance's shard leases: the sans-IO machine. See the module docs.
#[derive(Clone, Debug)]
pub struct Leases {
    me: InstanceId,
    config: ShardConfig,
    next_id: u64,
    in_flight: Option<InFlight>,
    /// When the next round is due (if none is in flight).
    next_round: Instant,
    /// The regular beat: the last round's send + `renew_every`.
    beat: Instant,
    /// When the last round was sent: expiries up to then have had their round.
    last_sent: Option<Instant>,
    /// Claims of the last round sent: not retried at once if refused.
    last_claims: BTreeSet<(u16, u64)>,
    held: BTreeMap<u16, Held>,
    /// The last view, one slot per shard; empty before the first answer.
    slots: Vec<Slot>,
    live: Vec<InstanceId>,
    events: VecDeque<ShardEvent>,
}

impl Leases {
    /// A machine for instance `me`, holding nothing; its first round (a
    /// heartbeat and a read) is due at `now`. `config` should pass
    /// [`ShardConfig::validate`]; an invalid one is safe but useless.
    pub fn new(me: InstanceId, config: ShardConfig, now: Instant) -> Self {
        Leases {
            me,
            config,
            next_id: 0,
            in_flight: None,
            next_round: now,
            beat: now,
            last_sent: None,
            last_claims: BTreeSet::new(),
            held: BTreeMap::new(),
            slots: Vec::new(),
            live: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// This instance.
    pub fn me(&self) -> &InstanceId {
        &self.me
    }

    /// The settings.
    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// The live instances of the last view, this one included, sorted.
    pub fn live(&self) -> &[InstanceId] {
        &self.live
    }

    /// The round in flight, if any.
    pub fn in_flight(&self) -> Option<RoundId> {
        self.in_flight.as_ref().map(|f| f.id)
    }

    /// The next round to send, if one is due and none is in flight. The
    /// shards it releases are dropped (and reported lost) right now, before
    /// the store can hand them to anyone else.
    pub fn poll_round(&mut self, now: Instant) -> Option<Round> {
        self.fence(now);
        if self.in_flight.is_some() || now < self.next_round {
            return None;
        }
        let moves = self.config.moves_per_round.max(1);
        let mut renew = Vec::new();
        let mut release = Vec::new();
        for (&shard, held) in &self.held {
            let stay = self.slots.get(usize::from(shard)).is_none_or(|slot| slot.preferred);
            if !stay && release.len() < moves {
                release.push((shard, held.epoch));
            } else {
                renew.push((shard, held.epoch));
            }
        }
        for &(shard, _) in &release {
            self.held.remove(&shard);
            self.events.push_back(ShardEvent::Lost { shard, why: LostWhy::Released });
        }
        let mut claim = Vec::new();
        let mut taken = 0;
        for (shard, slot) in self.slots.iter().enumerate() {
            let Ok(shard) = u16::try_from(shard) else { break };
            if !slot.preferred || self.held.contains_key(&shard) || !slot.claimable(now) {
                continue;
            }
            if slot.holder == Holder::Live {
                // Taking an expired lease from a live instance is a move.
                if taken >= moves {
                    continue;
                }
                taken += 1;
            }
            claim.push((shard, slot.epoch));
        }
        let id = RoundId(self.next_id);
        self.next_id += 1;
        self.beat = now + self.config.renew_every;
        self.last_sent = Some(now);
        self.last_claims = claim.iter().copied().collect();
        self.in_flight = Some(InFlight { id, sent_at: now, renew: renew.clone(), claim: claim.clone() });
        self.reschedule(now, false);
        Some(Round { id, sent_at: now, renew, claim, release })
    }

    /// The answer to round `id`: `Err(())` when the transaction failed or
    /// its outcome is unknown. Nothing is extended on failure, nor for an
    /// answer that comes after the round's deadline (`sent_at + ttl -
    /// fence_margin`); answers to other rounds are ignored.
    pub fn handle_round(&mut self, id: RoundId, result: Result<RoundResult, ()>, now: Instant) {
        let Some(flight) = self.in_flight.take_if(|f| f.id == id) else { return };
        let act_until = flight.sent_at + self.config.act_window();
        let result = match result {
            Ok(result) if now < act_until => result,
            _ => {
                self.fence(now);
                return;
            }
        };
        self.install_view(&result, now);
        for &(shard, epoch) in &result.claimed {
            if flight.claim.iter().any(|c| c.0 == shard) {
                self.held.insert(shard, Held { epoch, act_until });
                self.events.push_back(ShardEvent::Acquired { shard, epoch });
            }
        }
        for &(shard, epoch) in &result.renewed {
            if !flight.renew.contains(&(shard, epoch)) {
                continue;
            }
            match self.held.get_mut(&shard) {
                Some(held) if held.epoch == epoch => held.act_until = held.act_until.max(act_until),
                Some(_) => {}
                None => {
                    // Fenced while the round was in flight, yet renewed in
                    // time: acting is safe again until the new deadline.
                    self.held.insert(shard, Held { epoch, act_until });
                    self.events.push_back(ShardEvent::Acquired { shard, epoch });
                }
            }
        }
        // The view is the authority: drop what it shows taken or expired,
        // and never act past what its `remaining` allows.
        let mut lost = Vec::new();
        for (&shard, held) in self.held.iter_mut() {
            let slot = self.slots.get(usize::from(shard)).copied().unwrap_or(Slot::FREE);
            if slot.holder != Holder::Me || slot.epoch != held.epoch {
                lost.push((shard, LostWhy::Taken));
            } else if let Some(remaining) = slot.remaining {
                let bound = flight.sent_at + remaining.saturating_sub(self.config.fence_margin);
                held.act_until = held.act_until.min(bound);
            } else {
                lost.push((shard, LostWhy::Fenced));
            }
        }
        for (shard, why) in lost {
            self.held.remove(&shard);
            self.events.push_back(ShardEvent::Lost { shard, why });
        }
        self.fence(now);
        self.schedule(now);
    }

    /// Fences shards whose act-until has passed and fails a round that is
    /// overdue. Safe to call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.fence(now);
        if self.in_flight.as_ref().is_some_and(|f| now >= f.sent_at + self.config.act_window()) {
            self.in_flight = None;
        }
    }

    /// When to call [`Leases::handle_timeout`] and [`Leases::poll_round`]
    /// next: the next round (or the deadline of the one in flight), or the
    /// first act-until to fence.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let round = match &self.in_flight {
            Some(f) => f.sent_at + self.config.act_window(),
            None => self.next_round,
        };
        let fence = self.held.values().map(|h| h.act_until).min();
        Some(fence.map_or(round, |f| f.min(round)))
    }

    /// The next change to the shards acted on.
    pub fn poll_event(&mut self) -> Option<ShardEvent> {
        self.events.pop_front()
    }

    /// The lease epoch if this instance may act on `shard` at `now`: held,
    /// and `now` before its act-until.
    pub fn owns(&self, shard: u16, now: Instant) -> Option<u64> {
        self.held.get(&shard).filter(|h| now < h.act_until).map(|h| h.epoch)
    }

    /// The (shard, epoch) of the server's shard, if this instance may act
    /// on it at `now`.
    pub fn owns_server(&self, server: &ServerId, now: Instant) -> Option<(u16, u64)> {
        let shard = shard_of(server, self.config.shards);
        self.owns(shard, now).map(|epoch| (shard, epoch))
    }

    /// Every (shard, epoch) this instance may act on at `now`, by shard.
    pub fn owned(&self, now: Instant) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.held.iter().filter(move |(_, h)| now < h.act_until).map(|(&s, h)| (s, h.epoch))
    }

    /// The epoch of the lease held on `shard`, even if its act-until has
    /// passed and it has not been fenced yet (use [`Leases::owns`] to act).
    pub fn epoch_of(&self, shard: u16) -> Option<u64> {
        self.held.get(&shard).map(|h| h.epoch)
    }

    /// Until when this instance may act on `shard`, if it holds it.
    pub fn act_until(&self, shard: u16) -> Option<Instant> {
        self.held.get(&shard).map(|h| h.act_until)
    }

    /// Drops every held shard whose act-until has passed.
    fn fence(&mut self, now: Instant) {
        let due: Vec<u16> = self.held.iter().filter(|(_, h)| now >= h.act_until).map(|(&s, _)| s).collect();
        for shard in due {
            self.held.remove(&shard);
            self.events.push_back(ShardEvent::Lost { shard, why: LostWhy::Fenced });
        }
    }

    /// Replaces the last view with the answer's, received at `now`.
    fn install_view(&mut self, result: &RoundResult, now: Instant) {
        let mut live = result.live.clone();
        live.push(self.me.clone());
        live.sort();
        live.dedup();
        let n = usize::from(self.config.shards);
        let mut rows: Vec<Option<&LeaseRow>> = vec![None; n];
        for row in &result.view {
            if let Some(r) = rows.get_mut(usize::from(row.shard)) {
                *r = Some(row);
            }
        }
        let mut slots = Vec::with_capacity(n);
        for (shard, row) in (0..self.config.shards).zip(rows) {
            let (first, second) = rendezvous::top_two(shard, &live);
            let preferred = first == Some(&self.me);
            let Some(row) = row else {
                slots.push(Slot { preferred, ..Slot::FREE });
                continue;
            };
            let holder = match &row.owner {
                None => Holder::Free,
                Some(o) if *o == self.me => Holder::Me,
                Some(o) if live.binary_search(o).is_ok() => Holder::Live,
                Some(_) => Holder::Dead,
            };
            let wake = match holder {
                Holder::Free => false,
                Holder::Me => preferred,
                Holder::Live | Holder::Dead => {
                    let heir = if first == row.owner.as_ref() { second } else { first };
                    heir == Some(&self.me)
                }
            };
            let remaining = row.remaining.filter(|r| !r.is_zero());
            slots.push(Slot {
                holder,
                epoch: row.epoch,
                remaining,
                expires_by: remaining.map(|r| now + r),
                preferred,
                wake,
            });
        }
        self.slots = slots;
        self.live = live;
    }

    /// After a view: is a failover claim waiting that was not just tried?
    fn schedule(&mut self, now: Instant) {
        let urgent = self.slots.iter().enumerate().any(|(shard, slot)| {
            let shard = u16::try_from(shard).unwrap_or(u16::MAX);
            slot.preferred
                && slot.holder != Holder::Live
                && slot.claimable(now)
                && !self.held.contains_key(&shard)
                && !self.last_claims.contains(&(shard, slot.epoch))
        });
        self.reschedule(now, urgent);
    }

    /// The next round: at once if `urgent`, else at the first expiry (not
    /// yet given a round) that may let me claim, else on the beat.
    fn reschedule(&mut self, now: Instant, urgent: bool) {
        let mut next = if urgent { now.min(self.beat) } else { self.beat };
        for (shard, slot) in self.slots.iter().enumerate() {
            let Some(at) = slot.expires_by.filter(|_| slot.wake) else { continue };
            let fresh = self.last_sent.is_none_or(|sent| at > sent);
            let held = u16::try_from(shard).is_ok_and(|s| self.held.contains_key(&s));
            if fresh && !held {
                next = next.min(at);
            }
        }
        self.next_round = next;
    }
}

#[cfg(test)]
mod tests;
