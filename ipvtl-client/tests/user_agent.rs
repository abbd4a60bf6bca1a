//! Several clients on one simulated fleet, told apart by their
//! `User-Agent`: the simulator's records show who polled each server; and
//! two sharing one fleet (each sweeps half, adopts the other's half).

mod common;

use std::collections::BTreeMap;

use ipvtl_client::Settings;

#[test]
fn each_cluster_polls_every_server_once_per_sweep_under_its_own_user_agent() {
    let sim = common::sim(40);
    let with_agent = |ua: Option<&str>| Settings { user_agent: ua.map(str::to_string), ..common::settings() };
    let a = common::cluster(&sim, with_agent(Some("dash-a")));
    let b = common::cluster(&sim, with_agent(Some("dash-b")));
    let plain = common::cluster(&sim, with_agent(None));
    sim.reset_records();
    for _ in 0..2 {
        a.blocking().poll_all().unwrap();
    }
    b.blocking().poll_all().unwrap();
    plain.blocking().poll_all().unwrap();
    for id in sim.ids() {
        let rec = sim.record(&id).unwrap();
        let mut counts: BTreeMap<String, u64> = rec.status_by_client.clone();
        let isahc = counts.keys().find(|k| k.starts_with("curl/") && k.contains("isahc/")).cloned();
        let isahc = isahc.unwrap_or_else(|| panic!("{id}: no poll with isahc's own user agent: {counts:?}"));
        assert_eq!(counts.remove(&isahc), Some(1), "{id}");
        assert_eq!(counts, BTreeMap::from([("dash-a".into(), 2), ("dash-b".into(), 1)]), "{id}");
        assert_eq!(rec.status_times_by_client["dash-a"].len(), 2, "{id}");
    }
}

/// Two clusters share one fleet: each sweeps half and adopts the other's
/// observations of the rest. Each server is polled by one of them only,
/// and both see every server online, with the same status.
#[test]
fn two_clusters_sharing_a_fleet_each_poll_their_half_and_see_it_all() {
    use ipvtl_client::core::poller::Sweeping;
    let sim = common::sim(20);
    let with_agent = |ua: &str| Settings { user_agent: Some(ua.into()), background: false, ..common::settings() };
    let (a, b) = (common::cluster(&sim, with_agent("a")), common::cluster(&sim, with_agent("b")));
    let ids = sim.ids();
    let a_owns =
        |id: &ipvtl_client::core::ServerId| ids.iter().position(|s| s == id.as_str()).is_some_and(|i| i % 2 == 0);
    assert_eq!(a.set_sweeping(|id| if a_owns(id) { Sweeping::Always } else { Sweeping::Never }), 10);
    assert_eq!(b.set_sweeping(|id| if a_owns(id) { Sweeping::Never } else { Sweeping::Always }), 10);
    sim.reset_records();
    for _ in 0..2 {
        a.blocking().poll_all().unwrap();
        b.blocking().poll_all().unwrap();
        assert_eq!(b.adopt(a.observed()), 10, "a's half");
        assert_eq!(a.adopt(b.observed()), 10, "b's half");
    }
    for (i, id) in ids.iter().enumerate() {
        let rec = sim.record(id).unwrap();
        let owner = if i % 2 == 0 { "a" } else { "b" };
        assert_eq!(rec.status_by_client, BTreeMap::from([(owner.to_string(), 2)]), "{id}");
        let (sa, sb) = (a.server(id).unwrap(), b.server(id).unwrap());
        assert_eq!(sa.state.health, ipvtl_client::Health::Online, "{id}");
        assert_eq!((sa.state.health, &sa.state.status), (sb.state.health, &sb.state.status), "{id}");
        assert_eq!(a.sweeps(&ipvtl_client::core::ServerId::from(id.as_str())), i % 2 == 0);
    }
}
