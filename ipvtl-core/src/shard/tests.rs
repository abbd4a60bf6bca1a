//! The shard lease machine: pinned hashes, table-driven transitions in
//! virtual time, and proptests against a simulated PostgreSQL lease table
//! with crashes, pauses (split brain), joins and slow or failing rounds.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn iid(s: &str) -> InstanceId {
    InstanceId::from(s)
}

/// 8 shards, ttl 1 s, a round every 250 ms, fence 200 ms early, 2 moves.
fn cfg() -> ShardConfig {
    ShardConfig { moves_per_round: 2, ..ShardConfig::new(8, ms(1_000)) }
}

fn drain(l: &mut Leases) -> Vec<ShardEvent> {
    let mut out = Vec::new();
    while let Some(e) = l.poll_event() {
        out.push(e);
    }
    out
}

fn row(shard: u16, owner: Option<&str>, epoch: u64, remaining_ms: u64) -> LeaseRow {
    LeaseRow { shard, owner: owner.map(iid), epoch, remaining: Some(ms(remaining_ms)).filter(|d| !d.is_zero()) }
}

fn free_view(shards: u16) -> Vec<LeaseRow> {
    (0..shards).map(|s| row(s, None, 0, 0)).collect()
}

fn answer(view: Vec<LeaseRow>, live: &[&str]) -> RoundResult {
    RoundResult { view, live: live.iter().map(|s| iid(s)).collect(), ..RoundResult::default() }
}

/// The shards of `0..shards` that `who` is preferred for among `live`.
fn preferred(who: &str, live: &[&str], shards: u16) -> Vec<u16> {
    let live: Vec<InstanceId> = live.iter().map(|s| iid(s)).collect();
    (0..shards).filter(|&s| rendezvous_owner(s, &live).map(InstanceId::as_str) == Some(who)).collect()
}

/// Sends the due round at `now` and answers it with `result` at `now`.
fn exchange(l: &mut Leases, now: Instant, f: impl FnOnce(&Round) -> RoundResult) -> Round {
    let round = l.poll_round(now).expect("a round is due");
    let result = f(&round);
    l.handle_round(round.id, Ok(result), now);
    round
}

// ---------------------------------------------------------------- hashing

#[test]
fn fnv1a64_matches_the_reference_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn shard_of_is_pinned() {
    let cases = [("edge-1", 256, 22), ("edge-2", 256, 99), ("42", 256, 35), ("é-1", 256, 79), ("edge-1", 16, 6)];
    for (server, shards, want) in cases {
        assert_eq!(shard_of(&ServerId::from(server), shards), want, "{server} in {shards}");
    }
    assert_eq!(shard_of(&ServerId::from("edge-1"), 1), 0);
    assert_eq!(shard_of(&ServerId::from("edge-1"), 0), 0);
}

#[test]
fn rendezvous_is_pinned_and_ties_break_by_id() {
    assert_eq!(rendezvous_weight(&iid("dash-a"), 0), 0x71ec_a3b1_c8fe_f038);
    assert_eq!(rendezvous_weight(&iid("dash-b"), 7), 0xb80c_2f88_56a7_14ff);
    let live = [iid("dash-a"), iid("dash-b"), iid("dash-c")];
    let owners: Vec<&str> = (0..8).map(|s| rendezvous_owner(s, &live).unwrap().as_str()).collect();
    assert_eq!(owners, ["dash-c", "dash-c", "dash-a", "dash-b", "dash-b", "dash-b", "dash-c", "dash-a"]);
    assert_eq!(rendezvous_owner(3, &[]), None);
    // Duplicates are one instance: the runner-up is someone else.
    let dup = [iid("x"), iid("x"), iid("y")];
    let (first, second) = rendezvous::top_two(5, &dup);
    assert_ne!(first, second);
    assert!(second.is_some());
}

#[test]
fn rendezvous_spreads_shards_evenly() {
    let live: Vec<InstanceId> = (0..4).map(|i| InstanceId::new(format!("dash-{i}"))).collect();
    for who in &live {
        let n = (0..256u16).filter(|&s| rendezvous_owner(s, &live) == Some(who)).count();
        assert!((40..=90).contains(&n), "{who} got {n} of 256");
    }
}

// ---------------------------------------------------------------- config

#[test]
fn config_defaults_and_validation() {
    let c = ShardConfig::default();
    assert_eq!(
        (c.shards, c.ttl, c.renew_every, c.fence_margin, c.moves_per_round),
        (256, ms(10_000), ms(2_500), ms(2_000), 16)
    );
    assert_eq!(c.act_window(), ms(8_000));
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(ShardConfig::new(8, ms(1_000)).moves_per_round, 1);
    assert_eq!(ShardConfig { shards: 0, ..c.clone() }.validate(), Err(ShardConfigError::NoShards));
    assert_eq!(ShardConfig { moves_per_round: 0, ..c.clone() }.validate(), Err(ShardConfigError::NoMoves));
    let bad = ShardConfig { fence_margin: ms(10_000), ..c.clone() };
    assert!(matches!(bad.validate(), Err(ShardConfigError::MarginTooLarge { .. })));
    let slow = ShardConfig { renew_every: ms(8_000), ..c };
    let err = slow.validate().unwrap_err();
    assert!(matches!(err, ShardConfigError::RenewTooSlow { .. }));
    assert!(format!("{err}").contains("more frequent"));
}

// ---------------------------------------------------------------- transitions

#[test]
fn the_first_round_is_a_bare_heartbeat_and_rounds_go_one_at_a_time() {
    let mut l = Leases::new(iid("a"), cfg(), t(0));
    assert_eq!(l.poll_timeout(), Some(t(0)));
    let r = l.poll_round(t(0)).unwrap();
    assert_eq!((r.id, r.sent_at), (RoundId(0), t(0)));
    assert!(r.renew.is_empty() && r.claim.is_empty() && r.release.is_empty());
    assert_eq!(l.poll_round(t(5_000)), None, "one round in flight");
    assert_eq!(l.in_flight(), Some(RoundId(0)));
}

#[test]
fn free_shards_it_prefers_are_claimed_at_once_and_acted_on_until_the_fence() {
    let mut l = Leases::new(iid("a"), cfg(), t(0));
    exchange(&mut l, t(0), |_| answer(free_view(8), &["b"]));
    assert!(l.live().contains(&iid("a")), "me is always live");
    let mine = preferred("a", &["a", "b"], 8);
    // The view showed claimable shards: the next round is due at once.
    assert_eq!(l.poll_timeout(), Some(t(0)));
    let r = l.poll_round(t(10)).unwrap();
    let claims: Vec<u16> = r.claim.iter().map(|c| c.0).collect();
    assert_eq!(claims, mine);
    assert!(r.claim.iter().all(|c| c.1 == 0));
    let claimed: Vec<(u16, u64)> = mine.iter().map(|&s| (s, 1)).collect();
    let view: Vec<LeaseRow> =
        (0..8).map(|s| if mine.contains(&s) { row(s, Some("a"), 1, 1_000) } else { row(s, None, 0, 0) }).collect();
    l.handle_round(r.id, Ok(RoundResult { claimed: claimed.clone(), ..answer(view, &["a", "b"]) }), t(40));
    let events = drain(&mut l);
    assert_eq!(events, mine.iter().map(|&shard| ShardEvent::Acquired { shard, epoch: 1 }).collect::<Vec<_>>());
    assert_eq!(l.owned(t(40)).collect::<Vec<_>>(), claimed);
    // Act until sent_at + ttl - fence_margin, not from the answer.
    assert_eq!(l.act_until(mine[0]), Some(t(810)));
    assert_eq!(l.owns(mine[0], t(809)), Some(1));
    assert_eq!(l.owns(mine[0], t(810)), None);
    assert_eq!(l.epoch_of(mine[0]), Some(1));
    // The next round is on the beat, and renews everything held.
    assert_eq!(l.poll_round(t(100)), None);
    assert_eq!(l.poll_timeout(), Some(t(260)));
    let r = l.poll_round(t(260)).unwrap();
    assert_eq!(r.renew, claimed);
    assert!(r.claim.is_empty());
}

fn holding(me: &str, live: &[&str]) -> (Leases, Vec<u16>) {
    let mut l = Leases::new(iid(me), cfg(), t(0));
    exchange(&mut l, t(0), |_| answer(free_view(8), live));
    let mine = preferred(me, live, 8);
    let view: Vec<LeaseRow> =
        (0..8).map(|s| if mine.contains(&s) { row(s, Some(me), 1, 1_000) } else { row(s, None, 0, 0) }).collect();
    exchange(&mut l, t(0), |r| RoundResult {
        claimed: r.claim.iter().map(|&(s, e)| (s, e + 1)).collect(),
        ..answer(view, live)
    });
    drain(&mut l);
    assert_eq!(l.owned(t(0)).count(), mine.len());
    (l, mine)
}

#[test]
fn a_failed_round_extends_nothing_and_shards_are_fenced_before_the_lease_can_expire() {
    let (mut l, mine) = holding("a", &["a"]);
    assert_eq!(mine.len(), 8);
    let r = l.poll_round(t(250)).unwrap();
    assert_eq!(r.renew.len(), 8);
    l.handle_round(r.id, Err(()), t(260));
    assert!(drain(&mut l).is_empty());
    // Still acting on the first round's window (the lease, set by the
    // database at or after t=0, lives at least until t=1000).
    assert_eq!(l.poll_timeout(), Some(t(500)));
    let r = l.poll_round(t(500)).unwrap();
    assert_eq!(l.poll_timeout(), Some(t(800)), "the fence comes first");
    l.handle_timeout(t(799));
    assert_eq!(l.owned(t(799)).count(), 8);
    l.handle_timeout(t(800));
    assert_eq!(l.owned(t(800)).count(), 0);
    let events = drain(&mut l);
    assert_eq!(events.len(), 8);
    assert!(events.iter().all(|e| matches!(e, ShardEvent::Lost { why: LostWhy::Fenced, .. })));
    assert_eq!(l.epoch_of(0), None);
    // The round sent at 500 lands in time, renewed: acting again.
    let view: Vec<LeaseRow> = (0..8).map(|s| row(s, Some("a"), 1, 1_000)).collect();
    l.handle_round(r.id, Ok(RoundResult { renewed: r.renew.clone(), ..answer(view, &["a"]) }), t(900));
    let events = drain(&mut l);
    assert_eq!(events.len(), 8);
    assert!(events.iter().all(|e| matches!(e, ShardEvent::Acquired { epoch: 1, .. })));
    assert_eq!(l.act_until(3), Some(t(1_300)));
}

#[test]
fn an_unanswered_round_fails_at_its_deadline_and_a_late_answer_is_ignored() {
    let (mut l, _) = holding("a", &["a"]);
    let r = l.poll_round(t(250)).unwrap();
    assert_eq!(l.poll_timeout(), Some(t(800)));
    l.handle_timeout(t(400));
    assert_eq!(l.in_flight(), Some(r.id), "early timeouts are harmless");
    l.handle_timeout(t(1_049));
    assert_eq!(l.in_flight(), Some(r.id));
    assert_eq!(l.owned(t(1_049)).count(), 0, "fenced at 800 meanwhile");
    l.handle_timeout(t(1_050));
    assert_eq!(l.in_flight(), None);
    let view: Vec<LeaseRow> = (0..8).map(|s| row(s, Some("a"), 1, 1_000)).collect();
    l.handle_round(r.id, Ok(RoundResult { renewed: r.renew.clone(), ..answer(view.clone(), &["a"]) }), t(1_060));
    assert_eq!(l.owned(t(1_060)).count(), 0);
    // An answer arriving after the deadline, before the timeout fired,
    // counts as failed too.
    let r = l.poll_round(t(1_060)).unwrap();
    l.handle_round(r.id, Ok(answer(view, &["a"])), t(1_860));
    assert_eq!(l.in_flight(), None);
    assert!(drain(&mut l).iter().all(|e| matches!(e, ShardEvent::Lost { why: LostWhy::Fenced, .. })));
}

#[test]
fn a_view_showing_another_owner_or_a_newer_epoch_means_taken() {
    let (mut l, _) = holding("a", &["a"]);
    let mut view: Vec<LeaseRow> = (0..8).map(|s| row(s, Some("a"), 1, 1_000)).collect();
    view[2] = row(2, Some("b"), 2, 1_000);
    view[5] = row(5, Some("a"), 3, 1_000);
    view[6] = row(6, None, 1, 0);
    exchange(&mut l, t(250), |r| RoundResult { renewed: r.renew.clone(), ..answer(view, &["a", "b"]) });
    let lost: Vec<ShardEvent> = drain(&mut l);
    assert_eq!(
        lost,
        [2, 5, 6].map(|shard| ShardEvent::Lost { shard, why: LostWhy::Taken }),
        "a newer epoch is taken even under my own name"
    );
    assert_eq!(l.owns(2, t(260)), None);
    assert_eq!(l.owned(t(260)).count(), 5);
}

#[test]
fn the_view_remaining_bounds_the_act_until_and_an_expired_row_fences() {
    let (mut l, _) = holding("a", &["a"]);
    let mut view: Vec<LeaseRow> = (0..8).map(|s| row(s, Some("a"), 1, 1_000)).collect();
    view[1] = row(1, Some("a"), 1, 500); // a shorter lease than configured
    view[4] = row(4, Some("a"), 1, 0); // already expired in the database
    exchange(&mut l, t(250), |r| RoundResult {
        renewed: r.renew.iter().copied().filter(|c| c.0 != 1 && c.0 != 4).collect(),
        ..answer(view, &["a"])
    });
    assert_eq!(drain(&mut l), [ShardEvent::Lost { shard: 4, why: LostWhy::Fenced }]);
    assert_eq!(l.act_until(1), Some(t(550)), "sent_at 250 + 500 remaining - 200 margin");
    assert_eq!(l.act_until(0), Some(t(1_050)));
}

#[test]
fn unexpired_leases_are_never_claimed_not_even_my_own_and_a_round_waits_for_their_expiry() {
    let live = ["a", "b"];
    let mine = preferred("a", &live, 8);
    assert_eq!(mine, [0, 1]);
    let mut l = Leases::new(iid("a"), cfg(), t(0));
    let mut view = free_view(8);
    view[0] = row(0, Some("b"), 4, 600);
    view[1] = row(1, Some("a"), 7, 900); // a previous life of "a"
    exchange(&mut l, t(0), |_| answer(view, &live));
    assert_eq!(l.poll_timeout(), Some(t(250)), "nothing to claim yet: the beat");
    let r = exchange(&mut l, t(250), |_| {
        let mut v = free_view(8);
        v[0] = row(0, Some("b"), 4, 340);
        v[1] = row(1, Some("a"), 7, 640);
        answer(v, &live)
    });
    assert!(r.claim.is_empty());
    assert_eq!(l.poll_timeout(), Some(t(500)));
    let r = l.poll_round(t(500)).unwrap();
    assert!(r.claim.is_empty(), "b's lease runs until 590 at the latest");
    l.handle_round(r.id, Err(()), t(510));
    // A round right at b's expiry: b is live, so taking its expired lease
    // is a (limited) move; my own old lease is not expired yet.
    assert_eq!(l.poll_timeout(), Some(t(590)));
    let r = l.poll_round(t(590)).unwrap();
    assert_eq!(r.claim, [(0, 4)]);
    l.handle_round(r.id, Err(()), t(600));
    assert_eq!(l.poll_timeout(), Some(t(840)));
    let r = l.poll_round(t(840)).unwrap();
    l.handle_round(r.id, Err(()), t(850));
    assert_eq!(l.poll_timeout(), Some(t(890)), "my own old lease expires");
    let r = l.poll_round(t(890)).unwrap();
    assert_eq!(r.claim, [(0, 4), (1, 7)]);
}

#[test]
fn a_dead_instances_shards_are_claimed_all_at_once_but_a_live_ones_only_moves_per_round() {
    let live = ["a", "b"];
    let mine = preferred("a", &["a"], 8);
    let from_b: Vec<u16> = preferred("b", &live, 8);
    assert!(from_b.len() >= 3, "{from_b:?}");
    // b is dead: every expired b lease is mine now, all in one round.
    let mut l = Leases::new(iid("a"), cfg(), t(0));
    let view: Vec<LeaseRow> = (0..8).map(|s| row(s, Some("b"), 3, 0)).collect();
    exchange(&mut l, t(0), |_| answer(view.clone(), &["a"]));
    let r = l.poll_round(t(0)).unwrap();
    assert_eq!(r.claim.len(), mine.len());
    assert_eq!(r.claim.len(), 8);
    // b is live but its leases expired: at most 2 per round.
    let mut l = Leases::new(iid("a"), cfg(), t(0));
    exchange(&mut l, t(0), |_| answer(view, &["a", "b"]));
    assert_eq!(l.poll_timeout(), Some(t(250)), "not urgent: a move");
    let r = l.poll_round(t(250)).unwrap();
    assert_eq!(r.claim.len(), 2);
    assert!(r.claim.iter().all(|c| !from_b.contains(&c.0)), "b's own shards stay for b");
}

#[test]
fn a_holder_releases_at_most_moves_per_round_and_stops_acting_at_once() {
    let (mut l, _) = holding("a", &["a"]);
    let to_b = preferred("b", &["a", "b"], 8);
    assert!(to_b.len() >= 3, "{to_b:?}");
    let view: Vec<LeaseRow> = (0..8).map(|s| row(s, Some("a"), 1, 1_000)).collect();
    exchange(&mut l, t(250), |r| RoundResult { renewed: r.renew.clone(), ..answer(view.clone(), &["a", "b"]) });
    let r = l.poll_round(t(500)).unwrap();
    assert_eq!(r.release, to_b[..2].iter().map(|&s| (s, 1)).collect::<Vec<_>>());
    assert_eq!(r.renew.len(), 6);
    assert_eq!(l.owns(to_b[0], t(500)), None, "released before the store sees it");
    assert_eq!(
        drain(&mut l),
        to_b[..2].iter().map(|&shard| ShardEvent::Lost { shard, why: LostWhy::Released }).collect::<Vec<_>>()
    );
}

#[test]
fn a_refused_claim_is_not_retried_in_a_hot_loop() {
    let mut l = Leases::new(iid("a"), cfg(), t(0));
    // A table with no rows: everything looks free at epoch 0, but the
    // store refuses every claim.
    exchange(&mut l, t(0), |_| answer(Vec::new(), &["a"]));
    let r = exchange(&mut l, t(1), |_| answer(Vec::new(), &["a"]));
    assert_eq!(r.claim.len(), 8);
    assert_eq!(l.poll_timeout(), Some(t(251)), "back on the beat");
    assert_eq!(l.poll_round(t(2)), None);
}

#[test]
fn a_stale_instance_is_refused_by_epoch_and_learns_it_lost() {
    // "a" holds shard 0 at epoch 1, pauses; its lease expires and "b"
    // claims it (epoch 2). a's renewal of epoch 1 is refused.
    let config = ShardConfig { shards: 1, ..cfg() };
    let mut db = Db::new(1, 1_000);
    let mut a = Leases::new(iid("a"), config.clone(), t(0));
    let step = |l: &mut Leases, db: &mut Db, at: u64| {
        let r = l.poll_round(t(at)).unwrap();
        let (res, _) = db.execute(l.me(), &r, at);
        l.handle_round(r.id, Ok(res), t(at));
        r
    };
    step(&mut a, &mut db, 0);
    step(&mut a, &mut db, 0);
    assert_eq!(a.owns(0, t(0)), Some(1));
    drain(&mut a);
    let stale = a.poll_round(t(250)).unwrap(); // sent, then the process pauses
    let mut b = Leases::new(iid("b"), config, t(0));
    step(&mut b, &mut db, 1_100);
    step(&mut b, &mut db, 1_100);
    assert_eq!(b.owns(0, t(1_100)), Some(2));
    let (res, _) = db.execute(&iid("a"), &stale, 1_200);
    assert!(res.renewed.is_empty(), "renewal of epoch 1 refused");
    a.handle_timeout(t(1_200));
    assert_eq!(a.owns(0, t(1_200)), None);
    assert_eq!(drain(&mut a), [ShardEvent::Lost { shard: 0, why: LostWhy::Fenced }]);
    // Even a view that lands in time shows b's epoch: taken.
    let (mut a2, _) = holding("a", &["a"]);
    let view: Vec<LeaseRow> = (0..8).map(|s| row(s, Some("a"), 1, 1_000)).collect();
    let mut v = view.clone();
    v[0] = row(0, Some("b"), 2, 1_000);
    exchange(&mut a2, t(250), |_| answer(v, &["a", "b"]));
    assert!(drain(&mut a2).contains(&ShardEvent::Lost { shard: 0, why: LostWhy::Taken }));
}

#[test]
fn owns_server_maps_through_the_shard() {
    let (l, _) = holding("a", &["a"]);
    let server = ServerId::from("edge-1");
    let shard = shard_of(&server, 8);
    assert_eq!(l.owns_server(&server, t(1)), Some((shard, 1)));
    assert_eq!(l.owns_server(&server, t(800)), None);
}

// ---------------------------------------------------------------- simulated store

/// One lease row, the database's way: times on the database's clock.
#[derive(Clone, Debug)]
struct DbRow {
    owner: Option<InstanceId>,
    /// Who released it last (to tell a hand-over from a fresh claim).
    released_by: Option<InstanceId>,
    epoch: u64,
    expires: u64,
}

/// What one transaction did, for the GRADUAL checks.
#[derive(Clone, Debug, Default)]
struct TxnStats {
    released: usize,
    /// Claims of an expired lease of another live instance.
    taken_live: usize,
    /// Claims of a lease last held or released by another live instance:
    /// (from, to).
    handoffs: Vec<(InstanceId, InstanceId)>,
}

/// A lease table and heartbeat table executing rounds as the module docs'
/// SQL does, on its own clock.
#[derive(Clone, Debug)]
struct Db {
    ttl: u64,
    rows: Vec<DbRow>,
    seen: BTreeMap<InstanceId, u64>,
}

impl Db {
    fn new(shards: u16, ttl: u64) -> Self {
        let row = DbRow { owner: None, released_by: None, epoch: 0, expires: 0 };
        Db { ttl, rows: vec![row; usize::from(shards)], seen: BTreeMap::new() }
    }

    fn is_live(&self, id: &InstanceId, at: u64) -> bool {
        self.seen.get(id).is_some_and(|&s| s + self.ttl > at)
    }

    fn execute(&mut self, me: &InstanceId, round: &Round, at: u64) -> (RoundResult, TxnStats) {
        let mut stats = TxnStats::default();
        self.seen.insert(me.clone(), at);
        for &(s, e) in &round.release {
            let row = &mut self.rows[usize::from(s)];
            if row.owner.as_ref() == Some(me) && row.epoch == e {
                row.owner = None;
                row.released_by = Some(me.clone());
                row.expires = row.expires.min(at);
                stats.released += 1;
            }
        }
        let mut renewed = Vec::new();
        for &(s, e) in &round.renew {
            let row = &mut self.rows[usize::from(s)];
            if row.owner.as_ref() == Some(me) && row.epoch == e && row.expires > at {
                row.expires = at + self.ttl;
                renewed.push((s, e));
            }
        }
        let mut claimed = Vec::new();
        for &(s, e) in &round.claim {
            let row = self.rows[usize::from(s)].clone();
            if row.epoch == e && (row.owner.is_none() || row.expires <= at) {
                if row.owner.as_ref().is_some_and(|o| o != me && self.is_live(o, at)) {
                    stats.taken_live += 1;
                }
                if let Some(from) = row.owner.or(row.released_by).filter(|o| o != me && self.is_live(o, at)) {
                    stats.handoffs.push((from, me.clone()));
                }
                let row = &mut self.rows[usize::from(s)];
                *row = DbRow { owner: Some(me.clone()), released_by: None, epoch: e + 1, expires: at + self.ttl };
                claimed.push((s, e + 1));
            }
        }
        let view = self
            .rows
            .iter()
            .enumerate()
            .map(|(s, r)| LeaseRow {
                shard: s as u16,
                owner: r.owner.clone(),
                epoch: r.epoch,
                remaining: Some(ms(r.expires.saturating_sub(at))).filter(|d| !d.is_zero()),
            })
            .collect();
        let live = self.seen.keys().filter(|id| self.is_live(id, at)).cloned().collect();
        (RoundResult { view, live, renewed, claimed }, stats)
    }
}

/// A round on the wire.
#[derive(Debug)]
struct Pending {
    round: Round,
    /// When the database runs it; `None` once run or if it never will.
    exec_at: Option<u64>,
    /// When the instance hears back; `None`: never (it times out).
    reply_at: Option<u64>,
    /// The answer is an error even if the transaction ran.
    fails: bool,
    result: Option<RoundResult>,
}

/// One dashboard process.
#[derive(Debug)]
struct Node {
    id: InstanceId,
    /// Local clock = base + (global - joined) · (1 + ppm/10⁶): every
    /// process has its own epoch and its own rate (within the fence margin).
    base: u64,
    joined: u64,
    ppm: i64,
    machine: Option<Leases>,
    paused_until: Option<u64>,
    pending: Vec<Pending>,
    /// What the events told the driver to act on.
    acting: BTreeMap<u16, u64>,
}

impl Node {
    fn local(&self, global: u64) -> Instant {
        let elapsed = i128::from(global - self.joined) * i128::from(1_000_000 + self.ppm) / 1_000_000;
        t(self.base + elapsed as u64)
    }

    /// The first global instant at which the local clock reads `local`.
    fn global(&self, local: Instant) -> u64 {
        let want = i128::from(local.as_millis().saturating_sub(self.base));
        let rate = i128::from(1_000_000 + self.ppm);
        let mut g = self.joined + ((want * 1_000_000 + rate - 1) / rate) as u64;
        while self.local(g) < local {
            g += 1;
        }
        while g > self.joined && self.local(g - 1) >= local {
            g -= 1;
        }
        g
    }

    fn running(&self) -> bool {
        self.machine.is_some() && self.paused_until.is_none()
    }
}

/// How the network and database misbehave.
#[derive(Clone, Copy, Debug)]
struct Chaos {
    /// Each leg (to the database, back) takes 1..=max_leg ms.
    max_leg: u64,
    /// Percent of rounds with one leg slowed by up to `slow_max` ms.
    slow_pct: u64,
    slow_max: u64,
    /// Percent of rounds that fail (before running, after running, or
    /// with the answer lost).
    fail_pct: u64,
}

const CALM: Chaos = Chaos { max_leg: 20, slow_pct: 0, slow_max: 0, fail_pct: 0 };

struct World {
    config: ShardConfig,
    now: u64,
    db: Db,
    nodes: Vec<Node>,
    chaos: Chaos,
    rng: u64,
    /// Every transaction's stats, with its time.
    txns: Vec<(u64, TxnStats)>,
    /// Per shard: since when nobody acts on it (None: someone does, or it
    /// was never acted on yet).
    gap_since: Vec<Option<u64>>,
    ever_owned: Vec<bool>,
    max_gap: u64,
}

type Check = Result<(), String>;

impl World {
    fn new(config: ShardConfig, chaos: Chaos, seed: u64) -> Self {
        let n = usize::from(config.shards);
        World {
            db: Db::new(config.shards, config.ttl.as_millis() as u64),
            config,
            now: 0,
            nodes: Vec::new(),
            chaos,
            rng: seed | 1,
            txns: Vec::new(),
            gap_since: vec![None; n],
            ever_owned: vec![false; n],
            max_gap: 0,
        }
    }

    fn rand(&mut self, below: u64) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
    }

    fn join(&mut self, id: InstanceId) {
        let base = self.rand(1_000_000);
        // ±5 %: 50 ms over a 1 s lease, well inside the 200 ms margin.
        let ppm = self.rand(100_001) as i64 - 50_000;
        let machine = Leases::new(id.clone(), self.config.clone(), t(base));
        self.nodes.push(Node {
            id,
            base,
            joined: self.now,
            ppm,
            machine: Some(machine),
            paused_until: None,
            pending: Vec::new(),
            acting: BTreeMap::new(),
        });
    }

    /// The nodes still running (paused or not), by index.
    fn alive(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].machine.is_some()).collect()
    }

    fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.machine = None;
        node.paused_until = None;
        node.acting.clear();
        for p in &mut node.pending {
            p.reply_at = None;
        }
    }

    fn pause(&mut self, i: usize, ms: u64) {
        if self.nodes[i].machine.is_some() {
            let until = self.now + ms;
            let node = &mut self.nodes[i];
            node.paused_until = Some(node.paused_until.map_or(until, |u| u.max(until)));
        }
    }

    fn next_time(&self) -> u64 {
        let mut next = u64::MAX;
        for node in &self.nodes {
            for p in &node.pending {
                next = next.min(p.exec_at.unwrap_or(u64::MAX));
                if node.running() {
                    next = next.min(p.reply_at.unwrap_or(u64::MAX));
                }
            }
            if let Some(until) = node.paused_until {
                next = next.min(until);
            } else if let Some(m) = &node.machine {
                if let Some(at) = m.poll_timeout() {
                    next = next.min(node.global(at));
                }
            }
        }
        for row in &self.db.rows {
            if row.expires > self.now {
                next = next.min(row.expires);
            }
        }
        next.max(self.now + 1)
    }

    fn run_until(&mut self, end: u64) -> Check {
        loop {
            let at = self.next_time();
            if at > end {
                self.now = end;
                return Ok(());
            }
            self.now = at;
            self.tick()?;
        }
    }

    fn tick(&mut self) -> Check {
        let now = self.now;
        // The database first: what ran at `now` can be answered at `now`.
        for i in 0..self.nodes.len() {
            let id = self.nodes[i].id.clone();
            for k in 0..self.nodes[i].pending.len() {
                if self.nodes[i].pending[k].exec_at.is_some_and(|x| x <= now) {
                    let (result, stats) = self.db.execute(&id, &self.nodes[i].pending[k].round, now);
                    let p = &mut self.nodes[i].pending[k];
                    p.exec_at = None;
                    p.result = Some(result);
                    self.txns.push((now, stats));
                }
            }
            self.nodes[i].pending.retain(|p| p.exec_at.is_some() || p.reply_at.is_some());
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused_until.is_some_and(|u| u <= now) {
                self.nodes[i].paused_until = None;
            }
            if !self.nodes[i].running() {
                continue;
            }
            // Each node runs to idle at `now`; twice in a row would be a hot loop.
            self.step(i)?;
            let node = &self.nodes[i];
            let wake = node.machine.as_ref().and_then(|m| m.poll_timeout()).map(|at| node.global(at));
            if wake.is_some_and(|w| w <= now) {
                return Err(format!("{} wants to run again at {now}: a hot loop", node.id));
            }
        }
        self.check()
    }

    fn step(&mut self, i: usize) -> Check {
        let now = self.now;
        let local = self.nodes[i].local(now);
        let due: Vec<Pending> = {
            let node = &mut self.nodes[i];
            let (due, keep) = node.pending.drain(..).partition(|p| p.reply_at.is_some_and(|r| r <= now));
            node.pending = keep;
            due
        };
        let mut sent = Vec::new();
        {
            let node = &mut self.nodes[i];
            let machine = node.machine.as_mut().unwrap();
            for p in due {
                let result = match p.result {
                    Some(r) if !p.fails => Ok(r),
                    _ => Err(()),
                };
                machine.handle_round(p.round.id, result, local);
            }
            machine.handle_timeout(local);
            while let Some(round) = machine.poll_round(local) {
                if round.sent_at != local {
                    return Err(format!("sent_at {} is not now {local}", round.sent_at));
                }
                sent.push(round);
            }
        }
        for round in sent {
            let p = self.wire(round);
            self.nodes[i].pending.push(p);
        }
        let node = &mut self.nodes[i];
        let machine = node.machine.as_mut().unwrap();
        while let Some(event) = machine.poll_event() {
            match event {
                ShardEvent::Acquired { shard, epoch } => {
                    if node.acting.insert(shard, epoch).is_some() {
                        return Err(format!("{} acquired {shard} twice", node.id));
                    }
                }
                ShardEvent::Lost { shard, .. } => {
                    if node.acting.remove(&shard).is_none() {
                        return Err(format!("{} lost {shard} it did not have", node.id));
                    }
                }
            }
        }
        let owned: BTreeMap<u16, u64> = machine.owned(local).collect();
        if owned != node.acting {
            return Err(format!("{} at {now}: events say {:?}, owns says {owned:?}", node.id, node.acting));
        }
        Ok(())
    }

    fn wire(&mut self, round: Round) -> Pending {
        let c = self.chaos;
        let mut go = 1 + self.rand(c.max_leg);
        let mut back = 1 + self.rand(c.max_leg);
        if self.rand(100) < c.slow_pct {
            let extra = self.rand(c.slow_max + 1);
            if self.rand(2) == 0 {
                go += extra;
            } else {
                back += extra;
            }
        }
        let exec = self.now + go;
        let mut p = Pending { round, exec_at: Some(exec), reply_at: Some(exec + back), fails: false, result: None };
        if self.rand(100) < c.fail_pct {
            match self.rand(3) {
                0 => {
                    // Refused before running.
                    p.exec_at = None;
                    p.reply_at = Some(self.now + go);
                    p.fails = true;
                }
                1 => p.fails = true,    // ran, then the connection broke
                _ => p.reply_at = None, // ran, the answer never came
            }
        }
        p
    }

    /// SAFETY and FENCING at `now`, plus the gap bookkeeping.
    fn check(&mut self) -> Check {
        let now = self.now;
        let mut owner_of: Vec<Option<usize>> = vec![None; usize::from(self.config.shards)];
        for (i, node) in self.nodes.iter().enumerate() {
            let Some(m) = &node.machine else { continue };
            for (s, e) in m.owned(node.local(now)) {
                let row = &self.db.rows[usize::from(s)];
                if row.owner.as_ref() != Some(&node.id) || row.epoch != e || row.expires <= now {
                    return Err(format!("FENCING: {} owns {s}@{e} at {now} but the store has {row:?}", node.id));
                }
                if let Some(j) = owner_of[usize::from(s)].replace(i) {
                    return Err(format!("SAFETY: {} and {} both own {s} at {now}", self.nodes[j].id, node.id));
                }
            }
        }
        for (s, owner) in owner_of.iter().enumerate() {
            match (owner, self.gap_since[s]) {
                (Some(_), Some(since)) => {
                    self.max_gap = self.max_gap.max(now - since);
                    self.gap_since[s] = None;
                }
                (Some(_), None) => self.ever_owned[s] = true,
                (None, None) if self.ever_owned[s] => self.gap_since[s] = Some(now),
                _ => {}
            }
        }
        Ok(())
    }

    /// LIVENESS: every shard is acted on by its rendezvous owner among the
    /// running instances, and by nobody else.
    fn converged(&self) -> Check {
        let alive = self.alive();
        let live: Vec<InstanceId> = alive.iter().map(|&i| self.nodes[i].id.clone()).collect();
        for s in 0..self.config.shards {
            let want = rendezvous_owner(s, &live).unwrap();
            for &i in &alive {
                let node = &self.nodes[i];
                let owns = node.machine.as_ref().unwrap().owns(s, node.local(self.now)).is_some();
                if owns != (node.id == *want) {
                    return Err(format!("LIVENESS: shard {s} at {}: {} owns={owns}, want {want}", self.now, node.id));
                }
            }
        }
        Ok(())
    }

    fn ms(&self, d: Duration) -> u64 {
        d.as_millis() as u64
    }

    /// Time for rebalancing to finish once membership is stable.
    fn settle(&self) -> u64 {
        let c = &self.config;
        let rounds = u64::from(c.shards).div_ceil(c.moves_per_round as u64) + 4;
        let round = self.ms(c.renew_every) + 4 * self.chaos.max_leg;
        self.ms(c.ttl) + rounds * round
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Join,
        Crash(usize),
        /// Stop calling for this long (ms), then resume: split brain.
        Pause(usize, u64),
        /// Restart a crashed process under its old id.
        Rejoin(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::Join),
            2 => (0usize..8).prop_map(Op::Crash),
            3 => (0usize..8, 100u64..3_000).prop_map(|(i, d)| Op::Pause(i, d)),
            1 => (0usize..8).prop_map(Op::Rejoin),
        ]
    }

    fn chaos() -> impl Strategy<Value = Chaos> {
        (1u64..150, 0u64..25, 0u64..2_000, 0u64..25).prop_map(|(max_leg, slow_pct, slow_max, fail_pct)| Chaos {
            max_leg,
            slow_pct,
            slow_max,
            fail_pct,
        })
    }

    fn config() -> impl Strategy<Value = ShardConfig> {
        (1u16..=24, 1usize..=4).prop_map(|(shards, moves)| ShardConfig {
            moves_per_round: moves,
            ..ShardConfig::new(shards, Duration::from_millis(1_000))
        })
    }

    fn nth_alive(w: &World, i: usize) -> Option<usize> {
        let alive = w.alive();
        (!alive.is_empty()).then(|| alive[i % alive.len()])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// Random joins, crashes, pauses and restarts over a slow, lossy
        /// store: no two instances ever act on one shard, none acts past
        /// its lease (the store's row, on the store's clock), events match
        /// `owns`, no hot loop, releases ≤ moves_per_round per round; once
        /// calm, every shard ends up with its rendezvous owner.
        #[test]
        fn chaos_never_breaks_safety_and_calm_converges(
            config in config(),
            chaos in chaos(),
            first in 1usize..=4,
            ops in prop::collection::vec((0u64..2_500, op()), 0..14),
            seed in any::<u64>(),
        ) {
            let mut w = World::new(config.clone(), chaos, seed);
            let mut names = 0;
            for _ in 0..first {
                w.join(InstanceId::new(format!("dash-{names}")));
                names += 1;
            }
            let mut pause_end = 0;
            for (gap, op) in &ops {
                let at = w.now + gap;
                w.run_until(at).map_err(TestCaseError::fail)?;
                match *op {
                    Op::Join => {
                        w.join(InstanceId::new(format!("dash-{names}")));
                        names += 1;
                    }
                    Op::Crash(i) => {
                        if let Some(i) = nth_alive(&w, i) {
                            w.crash(i);
                        }
                    }
                    Op::Pause(i, d) => {
                        if let Some(i) = nth_alive(&w, i) {
                            w.pause(i, d);
                            pause_end = pause_end.max(w.now + d);
                        }
                    }
                    Op::Rejoin(i) => {
                        let dead: Vec<InstanceId> = w.nodes.iter().filter(|n| n.machine.is_none()).map(|n| n.id.clone()).collect();
                        let live: Vec<InstanceId> = w.alive().iter().map(|&k| w.nodes[k].id.clone()).collect();
                        if let Some(id) = dead.iter().filter(|d| !live.contains(d)).nth(i % dead.len().max(1)) {
                            w.join(id.clone());
                        }
                    }
                }
            }
            for (_, stats) in &w.txns {
                prop_assert!(stats.released <= config.moves_per_round);
            }
            // Handing shards over is bounded: each released shard was one
            // of ≤ moves_per_round of some round.
            let released: usize = w.txns.iter().map(|(_, s)| s.released).sum();
            let handed: usize = w.txns.iter().map(|(_, s)| s.handoffs.len() - s.taken_live.min(s.handoffs.len())).sum();
            prop_assert!(handed <= released);
            // Calm: the last slow rounds land, pauses end, then membership
            // stays put.
            let chaos_end = w.now.max(pause_end) + chaos.slow_max + 4 * chaos.max_leg;
            w.run_until(chaos_end).map_err(TestCaseError::fail)?;
            w.chaos = CALM;
            if w.alive().is_empty() {
                w.join(InstanceId::new("dash-last"));
            }
            let end = w.now + 2 * w.config.ttl.as_millis() as u64 + w.settle();
            w.run_until(end).map_err(TestCaseError::fail)?;
            w.converged().map_err(TestCaseError::fail)?;
        }

        /// A healthy cluster on a quick store: it converges; a joiner gets
        /// its shards gradually (≤ moves_per_round per round, only toward
        /// the joiner); a crash is failed over within ttl + renew_every +
        /// three rounds; no shard goes unpolled longer than that.
        #[test]
        fn joins_move_gradually_and_crashes_fail_over_in_time(
            shards in 8u16..=64,
            moves in 1usize..=4,
            n in 2usize..=4,
            max_leg in 1u64..=60,
            join_at in 0u64..1_000,
            crash_at in 0u64..1_000,
            victim in 0usize..5,
            seed in any::<u64>(),
        ) {
            let config = ShardConfig { moves_per_round: moves, ..ShardConfig::new(shards, Duration::from_millis(1_000)) };
            let chaos = Chaos { max_leg, ..CALM };
            let mut w = World::new(config.clone(), chaos, seed);
            for i in 0..n {
                w.join(InstanceId::new(format!("dash-{i}")));
            }
            let settle = w.settle();
            w.run_until(settle).map_err(TestCaseError::fail)?;
            w.converged().map_err(TestCaseError::fail)?;

            // A join.
            w.run_until(w.now + join_at).map_err(TestCaseError::fail)?;
            let joiner = InstanceId::new("dash-new");
            w.join(joiner.clone());
            let from = w.txns.len();
            w.run_until(w.now + settle).map_err(TestCaseError::fail)?;
            w.converged().map_err(TestCaseError::fail)?;
            for (at, stats) in &w.txns[from..] {
                prop_assert!(stats.released <= moves, "{} released at {}", stats.released, at);
                prop_assert!(stats.taken_live <= moves, "{:?} at {}", stats, at);
                for (a, b) in &stats.handoffs {
                    prop_assert_eq!(b, &joiner, "{} -> {} at {}: only shards for the joiner move", a, b, at);
                }
            }

            // A crash.
            w.run_until(w.now + crash_at).map_err(TestCaseError::fail)?;
            let alive = w.alive();
            let v = alive[victim % alive.len()];
            let vid = w.nodes[v].id.clone();
            let held: Vec<u16> = {
                let node = &w.nodes[v];
                node.machine.as_ref().unwrap().owned(node.local(w.now)).map(|(s, _)| s).collect()
            };
            w.crash(v);
            let round = 2 * max_leg;
            let deadline = w.now + config.ttl.as_millis() as u64 + config.renew_every.as_millis() as u64 + 3 * round;
            w.run_until(deadline).map_err(TestCaseError::fail)?;
            for s in held {
                let owned = w.alive().iter().any(|&i| {
                    let node = &w.nodes[i];
                    node.machine.as_ref().unwrap().owns(s, node.local(w.now)).is_some()
                });
                prop_assert!(owned, "FAILOVER: shard {} of {} unowned at {}", s, vid, w.now);
            }
            w.run_until(w.now + settle).map_err(TestCaseError::fail)?;
            w.converged().map_err(TestCaseError::fail)?;
            let bound = config.ttl.as_millis() as u64 + config.renew_every.as_millis() as u64 + 3 * round;
            prop_assert!(w.max_gap <= bound, "a shard went {} ms unpolled (bound {})", w.max_gap, bound);
        }

        /// Rendezvous moves only what it must: dropping an instance moves
        /// only its shards, adding one moves shards only to it.
        #[test]
        fn rendezvous_disrupts_minimally(n in 1usize..8, drop in 0usize..8, shard in any::<u16>()) {
            let live: Vec<InstanceId> = (0..n).map(|i| InstanceId::new(format!("i{i}"))).collect();
            let owner = rendezvous_owner(shard, &live).unwrap().clone();
            let gone = &live[drop % n];
            let rest: Vec<InstanceId> = live.iter().filter(|x| *x != gone).cloned().collect();
            if *gone != owner {
                prop_assert_eq!(rendezvous_owner(shard, &rest), Some(&owner));
            }
            let mut more = live.clone();
            more.push(InstanceId::new("new"));
            let after = rendezvous_owner(shard, &more).unwrap();
            prop_assert!(*after == owner || after.as_str() == "new");
        }
    }
}
