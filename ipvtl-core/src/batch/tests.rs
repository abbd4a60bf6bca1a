//! The batch machine alone, with made-up action ids and reports.

use alloc::format;
use alloc::vec::Vec;

use super::*;
use crate::action::{ActionError, ActionReport};
use crate::ids::{ActionId, BatchId};
use crate::model::PollError;
use crate::time::Instant;

fn targets(n: usize) -> Vec<BatchTarget> {
    (0..n)
        .map(|i| BatchTarget { server: ServerId::from(format!("s{i}")), channel: ChannelId::from_index(i % 16) })
        .collect()
}

fn spec(n: usize, max_parallel: usize) -> BatchSpec {
    BatchSpec { max_parallel, ..BatchSpec::new(ActionKind::Restart, Targets::Channels(targets(n))) }
}

fn report(batch: &Batch, action: ActionId, t: &BatchTarget, ok: bool) -> ActionReport {
    let error = ActionError::StopFailed { cause: PollError::Http { code: 500 } };
    let mut r = ActionReport::refused(
        Some(action),
        t.server.clone(),
        t.channel,
        batch.kind(),
        Some(batch.id()),
        error,
        Instant::ZERO,
    );
    if ok {
        r.outcome = Ok(());
    }
    r
}

/// Starts every target the batch hands out; returns them with their ids.
fn start_all(b: &mut Batch, next_id: &mut u64) -> Vec<(ActionId, BatchTarget)> {
    let mut started = Vec::new();
    while let Some(t) = b.poll_target() {
        *next_id += 1;
        b.handle_started(ActionId(*next_id));
        started.push((ActionId(*next_id), t));
    }
    started
}

#[test]
fn never_more_than_max_parallel_and_every_target_once_in_order() {
    let mut b = Batch::new(BatchId(1), &spec(10, 3), targets(10), Instant::ZERO);
    let mut id = 0;
    let mut running = start_all(&mut b, &mut id);
    assert_eq!(running.len(), 3);
    let mut seen = Vec::new();
    while let Some((action, t)) = running.first().cloned() {
        running.remove(0);
        let r = report(&b, action, &t, true);
        b.handle_finished(r);
        seen.push(t);
        let p = b.poll_event().expect("one progress per finished action");
        assert_eq!((p.done, p.total, p.failed), (seen.len(), 10, 0));
        assert!(b.poll_event().is_none());
        running.extend(start_all(&mut b, &mut id));
        assert!(running.len() <= 3);
    }
    assert_eq!(seen, targets(10));
    assert!(b.is_finished());
    let report = b.take_report(Instant::from_millis(5)).unwrap();
    assert_eq!(report.reports.len(), 10);
    assert!(report.is_ok());
    assert!(b.take_report(Instant::from_millis(6)).is_none(), "the report is handed out once");
}

#[test]
fn stop_on_failure_skips_the_rest_with_a_typed_reason_and_no_action_id() {
    let s = BatchSpec { stop_on_failure: true, ..spec(5, 1) };
    let mut b = Batch::new(BatchId(2), &s, targets(5), Instant::ZERO);
    let mut id = 0;
    let first = start_all(&mut b, &mut id);
    let (action, t) = first[0].clone();
    let r = report(&b, action, &t, false);
    b.handle_finished(r);
    assert!(b.poll_target().is_none(), "nothing starts after the failure");
    assert!(b.is_finished());
    let report = b.take_report(Instant::ZERO).unwrap();
    let stop = BatchStop::FirstFailure { target: targets(5)[0].clone() };
    assert_eq!(report.stopped_early, Some(stop.clone()));
    assert_eq!((report.failed(), report.skipped(), report.ok()), (1, 4, 0));
    for r in &report.reports[1..] {
        assert_eq!(r.action, None);
        assert_eq!(r.outcome, Err(ActionError::Skipped { reason: stop.clone() }));
    }
    assert_eq!(stop.as_str(), "first_failure");
}

#[test]
fn the_threshold_counts_refusals_too() {
    let s = BatchSpec { failure_threshold: Some(2), ..spec(6, 1) };
    let mut b = Batch::new(BatchId(3), &s, targets(6), Instant::ZERO);
    let t = b.poll_target().unwrap();
    b.handle_refused(ActionError::Maintenance { server: t.server.clone() }, Instant::ZERO);
    let t = b.poll_target().unwrap();
    b.handle_refused(ActionError::Maintenance { server: t.server.clone() }, Instant::ZERO);
    assert!(b.poll_target().is_none());
    let report = b.take_report(Instant::ZERO).unwrap();
    assert_eq!(report.stopped_early, Some(BatchStop::Threshold { failed: 2 }));
    assert_eq!((report.failed(), report.skipped()), (2, 4));
    assert!(report.reports.iter().all(|r| r.action.is_none()));
}

#[test]
fn a_report_of_another_action_changes_nothing() {
    let mut b = Batch::new(BatchId(4), &spec(2, 2), targets(2), Instant::ZERO);
    let mut id = 0;
    let started = start_all(&mut b, &mut id);
    let stray = report(&b, ActionId(99), &started[0].1, false);
    b.handle_finished(stray);
    assert_eq!(b.progress().done, 0);
    assert!(b.poll_event().is_none());
}

#[test]
fn an_empty_plan_finishes_at_once() {
    let mut b = Batch::new(BatchId(5), &spec(0, 2), Vec::new(), Instant::ZERO);
    assert!(b.poll_target().is_none());
    assert!(b.take_report(Instant::ZERO).unwrap().reports.is_empty());
}

/// A 10 000-channel batch, 64 at a time, finishing out of order: the work
/// counted (calls and entries visited) grows linearly with the size. A
/// progress recount over all reports after each action would be ~n²/2.
#[test]
fn a_ten_thousand_channel_batch_advances_in_linear_work() {
    for n in [1_000, 10_000] {
        let mut b = Batch::new(BatchId(6), &spec(n, 64), targets(n), Instant::ZERO);
        let mut id = 0;
        let mut running = start_all(&mut b, &mut id);
        let mut finished = 0;
        // Finish from the back: out of start order.
        while let Some((action, t)) = running.pop() {
            let ok = finished % 7 != 0;
            let r = report(&b, action, &t, ok);
            b.handle_finished(r);
            finished += 1;
            while b.poll_event().is_some() {}
            running.extend(start_all(&mut b, &mut id));
        }
        let report = b.take_report(Instant::ZERO).unwrap();
        assert_eq!(report.reports.len(), n);
        assert_eq!(finished, n);
        let work = b.work();
        assert!(work <= 6 * n as u64, "{work} steps for {n} channels");
    }
}
