//! `ipvtl-dashboard`: the dashboard binary. Flags and environment (see
//! `--help`), the demo fleet, and the listener; the application itself is
//! `ipvtl_dashboard::app`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ipvtl_client::core::ServersFile;
use ipvtl_client::{load_servers_file, Cluster};
use ipvtl_dashboard::alerts::AlertsFile;
use ipvtl_dashboard::keys::{hash_token, new_token};
use ipvtl_dashboard::options::{self, Command, KeysAction, Options};
use ipvtl_dashboard::store::DEFAULT_STORE;
use ipvtl_dashboard::{app, serve, AppState, AuditLog, StateConfig, Store};
use smol::{Async, Executor};

/// A reason to stop, with the exit code: 2 for usage, 1 for the rest.
struct Fatal(u8, String);

fn main() -> ExitCode {
    let _ = ipvtl_client::raise_fd_limit(); // before anything opens a file: fleets of thousands need > 1 024
    let command = match options::parse(std::env::args().skip(1), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ipvtl-dashboard: {e}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    let options = match command {
        Command::Help => {
            print!("{}", options::USAGE);
            return ExitCode::SUCCESS;
        }
        Command::Version => {
            println!("ipvtl-dashboard {}", ipvtl_dashboard::VERSION);
            return ExitCode::SUCCESS;
        }
        Command::Keys { store, action } => {
            return match smol::block_on(keys(&store, action)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(Fatal(code, message)) => {
                    eprintln!("ipvtl-dashboard: {message}");
                    ExitCode::from(code)
                }
            };
        }
        Command::Run(o) => o,
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(code, message)) => {
            eprintln!("ipvtl-dashboard: {message}");
            ExitCode::from(code)
        }
    }
}

/// `keys add | list | revoke` against a store (offline, or while a
/// dashboard runs on it: it checks keys in the store on every request).
async fn keys(store: &str, action: KeysAction) -> Result<(), Fatal> {
    let store = Store::open(store).await.map_err(|e| Fatal(1, e.to_string()))?;
    let now = ipvtl_dashboard::keys::now();
    match action {
        KeysAction::Add { name, role } => {
            let token = new_token().map_err(|e| Fatal(1, e))?;
            store.add_key(&name, role.as_str(), &hash_token(&token), now).await.map_err(|e| Fatal(1, e.to_string()))?;
            eprintln!("key {name:?} ({role}) added to {}; its token, shown this once:", store.shown());
            println!("{token}");
        }
        KeysAction::List => {
            for k in store.keys().await.map_err(|e| Fatal(1, e.to_string()))? {
                println!("{}\t{}\t{}", k.name, k.role, ipvtl_dashboard::keys::iso(k.created_at));
            }
        }
        KeysAction::Revoke { name } => {
            if !store.revoke_key(&name).await.map_err(|e| Fatal(1, e.to_string()))? {
                return Err(Fatal(1, format!("no key named {name:?} in {}", store.shown())));
            }
            eprintln!("key {name:?} revoked");
        }
    }
    Ok(())
}

fn run(o: &Options) -> Result<(), Fatal> {
    let addr = o.listen_addr().map_err(|e| Fatal(2, e))?;
    o.check_exposure(addr).map_err(|e| Fatal(2, e))?;
    if !addr.ip().is_loopback() && o.api_key.is_none() {
        eprintln!("ipvtl-dashboard: WARNING: serving {addr} without an API key (--allow-unauthenticated)");
    }

    // The alerts file is checked before anything starts.
    let alerts = match &o.alerts {
        Some(path) => AlertsFile::load(path, |k| std::env::var(k).ok()).map_err(|e| Fatal(1, e))?,
        None => AlertsFile::default(),
    };
    // Bound before anything starts: a sharing instance is named after it.
    let listener = Async::<TcpListener>::bind(addr).map_err(|e| Fatal(1, format!("cannot listen on {addr}: {e}")))?;
    let local = listener.get_ref().local_addr().map_err(|e| Fatal(1, e.to_string()))?;
    let sharing = o.sharing.as_ref().map(|s| s.config(local));
    let mut settings = o.settings();
    // Servers (and the simulator's records) tell the instances' polls apart.
    if let Some(config) = &sharing {
        settings.user_agent = Some(format!("ipvtl-dashboard/{} ({})", ipvtl_dashboard::VERSION, config.id));
    }
    let (file, sim, servers_path) = match o.demo {
        Some(n) => {
            let (sim, faults) = ipvtl_dashboard::demo::start(n)
                .map_err(|e| Fatal(1, format!("cannot start the simulated fleet: {e}")))?;
            for (id, fault) in &faults {
                println!("demo: {id} is {fault}");
            }
            settings.interval = o.poll_interval.unwrap_or(Duration::from_secs(2));
            let mut file = ServersFile::default();
            file.servers = sim.servers();
            (file, Some(sim), None)
        }
        None => {
            // The servers, and the desired state and healing declared with them.
            let file = load_servers_file(&o.servers).map_err(|e| Fatal(1, format!("cannot load the servers: {e}")))?;
            (file, None, Some(o.servers.clone()))
        }
    };
    let count = file.servers.len();
    // No sweep before the state's event pump has subscribed: the first
    // sweep's events (a channel already stalled, a server already down) go
    // to the SSE replay and the audit like every later one.
    let background = std::mem::replace(&mut settings.background, false);
    let cluster = Cluster::from_declared(file, settings).map_err(|e| Fatal(1, e.to_string()))?;

    let audit_path = o.audit_log.clone().unwrap_or_else(|| match o.demo {
        Some(_) => std::env::temp_dir().join("ipvtl-dashboard-demo-audit.jsonl"),
        None => PathBuf::from("ipvtl-audit.jsonl"),
    });
    let audit = AuditLog::open(Some(&audit_path))
        .map_err(|e| Fatal(1, format!("cannot open the audit log {}: {e}", audit_path.display())))?;
    // The demo leaves nothing behind unless told where to keep things.
    let store_url = o.store.clone().unwrap_or_else(|| match o.demo {
        Some(_) => "sqlite::memory:".into(),
        None => DEFAULT_STORE.into(),
    });
    let store = smol::block_on(Store::open(&store_url)).map_err(|e| Fatal(1, e.to_string()))?;
    if let Some(config) = &sharing {
        let live = smol::block_on(ipvtl_dashboard::instances::join(&store, config)).map_err(|e| Fatal(1, e))?;
        let others: Vec<&str> = live.iter().map(|i| i.id.as_str()).filter(|id| *id != config.id).collect();
        println!(
            "instance {} ({}): {} shards, leases of {:?}; live with it: {}",
            config.id,
            config.advertise,
            config.shards,
            config.ttl,
            if others.is_empty() { "none".to_string() } else { others.join(", ") }
        );
    }
    let state = AppState::new(
        cluster,
        StateConfig {
            servers_path,
            api_key: o.api_key.clone(),
            store,
            audit,
            history: o.history,
            cors_origins: o.cors_origins.clone(),
            public_origin: o.public_origin.clone(),
            trusted_proxies: o.trusted_proxies.clone(),
            alerts,
            sharing,
        },
    );
    let restored = smol::block_on(state.restore()).map_err(|e| Fatal(1, e.to_string()))?;
    if !restored.maintenance.is_empty() {
        println!("store: {} in maintenance, as before", restored.maintenance.join(", "));
    }
    if !restored.interrupted_batches.is_empty() {
        let ids: Vec<String> = restored.interrupted_batches.iter().map(u64::to_string).collect();
        println!("store: batches {} were running when the dashboard stopped: marked interrupted", ids.join(", "));
    }
    for entry in &restored.interrupted_actions {
        let what = &entry["opened"];
        println!(
            "store: {} of channel {} on {} was under way when the dashboard stopped: audited as interrupted",
            what["action"].as_str().unwrap_or("an action"),
            what["channel_id"],
            what["server_id"].as_str().unwrap_or("?")
        );
    }
    if restored.alerts > 0 || restored.silences > 0 {
        println!("store: {} active alerts and {} silences, as before", restored.alerts, restored.silences);
    }
    let settings = &restored.settings;
    if settings.applied > 0 {
        println!("store: {} desired-state, healing and reconciler settings made through the API", settings.applied);
    }
    for skipped in &settings.skipped {
        eprintln!("ipvtl-dashboard: a stored setting was not applied (kept in the store): {skipped}");
    }
    state.cluster().set_background(background);

    let what = if o.demo.is_some() { "simulated servers" } else { "servers" };
    println!(
        "ipvtl-dashboard {}: {count} {what}, store {}, audit log {}",
        ipvtl_dashboard::VERSION,
        state.store().shown(),
        audit_path.display()
    );
    println!("serving on http://{local}/");

    let executor = Arc::new(Executor::new());
    // A second thread runs tasks too; the first sweep is already under way
    // on the cluster's own driver thread.
    {
        let ex = executor.clone();
        let _ = std::thread::Builder::new()
            .name("ipvtl-dashboard-http".into())
            .spawn(move || smol::block_on(ex.run(smol::future::pending::<()>())));
    }
    // Sharing the fleet: SIGTERM or SIGINT leaves it cleanly.
    ipvtl_dashboard::instances::leave_on_signal(&state);
    let served = smol::block_on(executor.run(serve(executor.clone(), listener, app(state))));
    drop(sim);
    served.map_err(|e| Fatal(1, format!("serving stopped: {e}")))
}
