//! curl must not wait on sockets with select(): in a process that already
//! holds over a thousand descriptors (the dashboard's in-process demo, an
//! application with many files open), every connect would fail.

mod common;

use ipvtl_client::Health;

#[test]
fn polling_works_when_socket_numbers_exceed_1024() {
    // Hold 1 100 descriptors so every socket curl opens is numbered > 1024.
    let held: Vec<std::fs::File> =
        (0..1_100).map(|_| std::fs::File::open("/dev/null").expect("open /dev/null")).collect();
    let sim = common::sim(40);
    let cluster = common::cluster(&sim, common::settings());
    let fleet = cluster.blocking().poll_all().unwrap();
    let offline: Vec<String> = fleet
        .servers
        .iter()
        .filter(|s| s.state.health != Health::Online)
        .map(|s| format!("{}: {:?}", s.config.id, s.state.error))
        .collect();
    assert!(offline.is_empty(), "{} of 40 not online: {offline:?}", offline.len());
    drop(held);
}
