//! Several clients on one simulated fleet, told apart by their
//! `User-Agent`: the simulator's records show who polled each server.

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
