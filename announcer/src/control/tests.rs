//! The control loop against a fake IPVS and a recording route sink, on tokio's paused clock.

use super::*;
use crate::admin::{Reply, Request, Target};
use crate::sink::BoxFuture;
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::model::*;
use herald_shared::reader::ReadError;
use herald_shared::status::{DrainSource, GroupPhase, GroupReport};
use std::sync::Mutex;

/// IPVS as the test sets it: the weights of three real servers behind 192.0.2.10:80.
pub(crate) struct FakeIpvs(pub(crate) Mutex<Option<[i32; 3]>>);

impl IpvsSource for FakeIpvs {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        let Some(w) = *self.0.lock().unwrap() else {
            return Err(ReadError::ModuleNotLoaded);
        };
        let dest = |i: usize| {
            let address: IpAddr = format!("198.51.100.{}", i + 1).parse().unwrap();
            Destination {
                weight: w[i],
                ..Destination::new(address, 80)
            }
        };
        Ok(Snapshot {
            services: vec![Service {
                key: ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    address: "192.0.2.10".parse().unwrap(),
                    port: 80,
                },
                scheduler: "wrr".into(),
                flags: ServiceFlags::default(),
                persistence_timeout: 0,
                netmask: 0,
                pe_name: None,
                stats: Stats::default(),
                destinations: (0..3).map(dest).collect(),
            }],
            ..Snapshot::default()
        })
    }

    fn conn_table(&self, _: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        Ok(ConnTableSummary::default())
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(Duration, String)>>, Mutex<Option<Instant>>);

impl RouteSink for Recorder {
    fn apply<'a>(
        &'a self,
        action: &'a RouteAction,
    ) -> BoxFuture<'a, Result<(), crate::sink::SinkError>> {
        Box::pin(async move {
            let start = self
                .1
                .lock()
                .unwrap()
                .get_or_insert(tokio::time::Instant::now().into_std())
                .to_owned();
            let what = match action {
                RouteAction::Announce { prefix, attrs } => {
                    format!(
                        "announce {prefix} med={:?} comm={:?}",
                        attrs.med, attrs.communities
                    )
                }
                RouteAction::Withdraw { prefix } => format!("withdraw {prefix}"),
                other => format!("{other:?}"),
            };
            self.0
                .lock()
                .unwrap()
                .push((tokio::time::Instant::now().into_std() - start, what));
            Ok(())
        })
    }
}

struct NoAddrs;
impl LocalAddrs for NoAddrs {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, crate::sink::LocalAddrsError> {
        Ok(vec!["192.0.2.10".parse().unwrap()])
    }
}

fn group() -> VipGroupConfig {
    #[derive(serde::Deserialize)]
    struct W {
        g: VipGroupConfig,
    }
    let w: W = toml::from_str(
        "[g]\nname = \"web\"\nprefixes = [\"192.0.2.10/32\"]\ninterval = \"100ms\"\nrise = 2\nfall = 2\nhold_down = \"1s\"\n",
    )
    .unwrap();
    w.g
}

fn events(r: &Recorder) -> Vec<String> {
    r.0.lock().unwrap().iter().map(|(_, s)| s.clone()).collect()
}

/// IPVS whose first read after the file `.1` appears takes 600 ms (a large table, a loaded
/// host), every other read none.
struct SlowIpvs(FakeIpvs, PathBuf, std::sync::atomic::AtomicBool);

impl IpvsSource for SlowIpvs {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        if self.1.exists() && !self.2.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(600));
        }
        self.0.snapshot()
    }

    fn conn_table(&self, l: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        self.0.conn_table(l)
    }
}

/// A drain announces its draining attributes for the whole drain_time, however long the
/// IPVS read before the announcement took (the lab's maintenance-file step found 0.7 s of a
/// 2 s drain when the timer started before a slow read and the next read was fast).
#[tokio::test]
async fn drain_time_counts_from_the_draining_announcement_not_from_before_the_read() {
    let dir = std::env::temp_dir().join(format!("herald-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let maintenance = dir.join("maintenance");
    let _ = std::fs::remove_file(&maintenance);
    let rec = Arc::new(Recorder::default());
    let ipvs = Arc::new(SlowIpvs(
        FakeIpvs(Mutex::new(Some([1, 1, 1]))),
        maintenance.clone(),
        std::sync::atomic::AtomicBool::new(false),
    ));
    let (_tx, task) = spawn_runtime(
        vec![group()],
        ipvs,
        rec.clone(),
        LoopSettings {
            drain_time: Duration::from_millis(500),
            maintenance_file: Some(maintenance.clone()),
            state_file: None,
        },
        &mut Registry::default(),
    );
    let wait_for = |n: usize| {
        let rec = rec.clone();
        async move {
            for _ in 0..100 {
                if rec.0.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("fewer than {n} actions after 10 s: {:?}", events(&rec));
        }
    };
    wait_for(1).await;
    // The read of the tick that sees the maintenance file takes 600 ms, the later ones none.
    std::fs::write(&maintenance, "").unwrap();
    wait_for(3).await;
    let log = rec.0.lock().unwrap().clone();
    std::fs::remove_dir_all(&dir).unwrap();
    task.abort();
    assert_eq!(
        log[1].1,
        "announce 192.0.2.10/32 med=None comm=[4294901760]"
    );
    assert_eq!(log[2].1, "withdraw 192.0.2.10/32");
    let drained_for = log[2].0 - log[1].0;
    assert!(
        drained_for >= Duration::from_millis(500),
        "draining attributes announced for {drained_for:?} only, drain_time is 500 ms"
    );
}

/// A runtime over `groups` with no local-address check, running in its own task.
fn spawn_runtime(
    groups: Vec<VipGroupConfig>,
    ipvs: Arc<dyn IpvsSource>,
    sink: Arc<dyn RouteSink>,
    settings: LoopSettings,
    registry: &mut Registry,
) -> (mpsc::Sender<Control>, tokio::task::JoinHandle<()>) {
    let rt = ControlLoop::new(groups, ipvs, sink, Arc::new(NoAddrs), settings, registry).unwrap();
    let (tx, rx) = mpsc::channel(8);
    (tx, tokio::spawn(rt.run(rx)))
}

#[tokio::test(start_paused = true)]
async fn flips_drains_and_shuts_down_on_time() {
    let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
    let rec = Arc::new(Recorder::default());
    let mut registry = Registry::default();
    let (tx, task) = spawn_runtime(
        vec![group()],
        ipvs.clone(),
        rec.clone(),
        LoopSettings {
            drain_time: Duration::from_secs(3),
            maintenance_file: None,
            state_file: None,
        },
        &mut registry,
    );

    // Announced after rise = 2 checks.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);

    // Pool empties: withdrawn after fall = 2 checks (within interval x fall).
    *ipvs.0.lock().unwrap() = Some([0, 0, 0]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");

    // Recovers: back only after the 1 s hold-down.
    *ipvs.0.lock().unwrap() = Some([1, 1, 1]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(events(&rec).len(), 2, "held down");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(events(&rec).len(), 3);

    // IPVS module gone: counts as a failed check.
    *ipvs.0.lock().unwrap() = None;
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");
    *ipvs.0.lock().unwrap() = Some([1, 1, 1]);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(events(&rec).len(), 5);

    // Admin drain: graceful-shutdown community, then withdraw after 3 s.
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Admin((
        Request::Drain {
            target: Target::Group("web".into()),
            drain_time: None,
        },
        rtx,
    )))
    .await
    .unwrap();
    assert!(rrx.await.unwrap().ok);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        events(&rec).last().unwrap(),
        "announce 192.0.2.10/32 med=None comm=[4294901760]"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");

    // Unknown group is refused by name.
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Admin((
        Request::Undrain {
            target: Target::Group("nope".into()),
        },
        rtx,
    )))
    .await
    .unwrap();
    assert_eq!(rrx.await.unwrap().message, "no VIP group named \"nope\"");

    // Undrain, re-announce, then shutdown drains for 2 s and withdraws before answering.
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Admin((
        Request::Undrain {
            target: Target::All,
        },
        rtx,
    )))
    .await
    .unwrap();
    rrx.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events(&rec)
        .last()
        .unwrap()
        .starts_with("announce 192.0.2.10/32 med=None comm=[]"));
    let (done_tx, done_rx) = oneshot::channel();
    let t0 = tokio::time::Instant::now();
    tx.send(Control::Shutdown {
        drain_time: Duration::from_secs(2),
        done: done_tx,
    })
    .await
    .unwrap();
    done_rx.await.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(2));
    assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");
    task.await.unwrap();

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("ipvs_herald_vip_group_transitions_total{group=\"web\"}"),
        "{text}"
    );
    assert!(
        text.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"drained\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ipvs_herald_vip_group_checks_failed_total{group=\"web\"} 5"),
        "{text}"
    );
    // Per-service gauges (set through cached handles) carry the last check's counts.
    let line = text
        .lines()
        .find(|l| l.starts_with("ipvs_herald_vip_group_healthy_destinations{group=\"web\""))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with("} 3"), "{line}");
    assert!(
        text.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"announced\"} 0"),
        "{text}"
    );
}
async fn ask(tx: &mpsc::Sender<Control>, req: Request) -> Reply {
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Admin((req, rtx))).await.unwrap();
    rrx.await.unwrap()
}

fn drained_group(reply: &Reply) -> (String, String) {
    let g = &reply.status.as_ref().expect("a status report").groups[0];
    (g.phase.as_str().to_string(), g.reasons.join("; "))
}

/// `drain web`, the daemon dies (no shutdown drain), a new one starts on the same state
/// file with the pool healthy: web is never announced, not even with the draining
/// attributes, until `undrain web`; then it returns under its health policy.
#[tokio::test(start_paused = true)]
async fn a_saved_drain_keeps_a_healthy_group_withdrawn_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("herald-restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state.json");
    let settings = LoopSettings {
        drain_time: Duration::from_secs(1),
        maintenance_file: None,
        state_file: Some(state.clone()),
    };
    let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
    let rec = Arc::new(Recorder::default());
    let (tx, task) = spawn_runtime(
        vec![group()],
        ipvs.clone(),
        rec.clone(),
        settings.clone(),
        &mut Registry::default(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
    let r = ask(
        &tx,
        Request::Drain {
            target: Target::Group("web".into()),
            drain_time: None,
        },
    )
    .await;
    assert!(r.ok, "{}", r.message);
    let saved = StateFile::new(state.clone()).load().unwrap();
    assert_eq!(saved.groups["web"].drain_time, Duration::from_secs(1));
    // Killed in the middle of the drain.
    task.abort();
    let _ = task.await;

    let rec = Arc::new(Recorder::default());
    let mut registry = Registry::default();
    let (tx, task) = spawn_runtime(
        vec![group()],
        ipvs.clone(),
        rec.clone(),
        settings.clone(),
        &mut registry,
    );
    // Ten checks of a healthy pool (rise is 2): nothing announced.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(events(&rec), Vec::<String>::new());
    let (state_now, reasons) = drained_group(&ask(&tx, Request::Status).await);
    assert_eq!(state_now, "drained");
    assert!(
        reasons.contains("drained by `ipvs-herald drain web`"),
        "{reasons}"
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("ipvs_herald_vip_group_drained{group=\"web\"} 1"),
        "{text}"
    );

    let r = ask(
        &tx,
        Request::Undrain {
            target: Target::Group("web".into()),
        },
    )
    .await;
    assert!(r.ok, "{}", r.message);
    assert!(StateFile::new(state.clone()).load().unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
    drop(tx);
    let _ = task.await;

    // Undrained for good: the next start announces as usual.
    let rec = Arc::new(Recorder::default());
    let (tx, task) = spawn_runtime(
        vec![group()],
        ipvs,
        rec.clone(),
        settings,
        &mut Registry::default(),
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
    drop(tx);
    let _ = task.await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A state file that cannot be parsed: every group stays drained (an operator's drain may be
/// in it), `status` names the file, and `undrain --all` ends it and rewrites the file.
#[tokio::test(start_paused = true)]
async fn a_corrupt_state_file_drains_everything_until_undrained() {
    let dir = std::env::temp_dir().join(format!("herald-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    std::fs::write(&state, "{\"version\":1,\"all\":nu").unwrap();
    let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
    let rec = Arc::new(Recorder::default());
    let (tx, task) = spawn_runtime(
        vec![group()],
        ipvs,
        rec.clone(),
        LoopSettings {
            drain_time: Duration::from_secs(1),
            maintenance_file: None,
            state_file: Some(state.clone()),
        },
        &mut Registry::default(),
    );
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(events(&rec), Vec::<String>::new());
    let reply = ask(&tx, Request::Status).await;
    assert_eq!(
        reply.status.as_ref().unwrap().groups[0].drained_by,
        [DrainSource::CorruptState],
        "not an operator's drain"
    );
    let (state_now, reasons) = drained_group(&reply);
    assert_eq!(state_now, "drained");
    assert!(
        reasons.contains(&format!("state file {} is corrupt", state.display()))
            && reasons.contains("undrain --all"),
        "{reasons}"
    );
    // Undraining one group is not enough.
    let r = ask(
        &tx,
        Request::Undrain {
            target: Target::Group("web".into()),
        },
    )
    .await;
    assert!(r.message.contains("still in force"), "{}", r.message);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(events(&rec), Vec::<String>::new());
    let r = ask(
        &tx,
        Request::Undrain {
            target: Target::All,
        },
    )
    .await;
    assert!(r.ok, "{}", r.message);
    assert!(StateFile::new(state.clone()).load().unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
    drop(tx);
    let _ = task.await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A drain whose state cannot be written is in force, but the reply says it is not saved.
#[tokio::test]
async fn a_drain_that_cannot_be_saved_is_reported() {
    let dir = std::env::temp_dir().join(format!("herald-unsaved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The state file's directory is a regular file: no write can succeed.
    std::fs::write(dir.join("file"), "").unwrap();
    let rec = Arc::new(Recorder::default());
    let (tx, task) = spawn_runtime(
        vec![group()],
        Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1])))),
        rec.clone(),
        LoopSettings {
            drain_time: Duration::from_secs(1),
            maintenance_file: None,
            state_file: Some(dir.join("file/state.json")),
        },
        &mut Registry::default(),
    );
    let r = ask(
        &tx,
        Request::Drain {
            target: Target::All,
            drain_time: Some(Duration::ZERO),
        },
    )
    .await;
    assert!(!r.ok);
    assert!(
        r.message
            .starts_with("draining every VIP group (0s); in force now, but NOT saved"),
        "{}",
        r.message
    );
    let (state_now, _) = drained_group(&ask(&tx, Request::Status).await);
    assert_eq!(state_now, "drained");
    drop(tx);
    let _ = task.await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(start_paused = true)]
async fn reload_removes_the_series_of_a_removed_group() {
    let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
    let rec = Arc::new(Recorder::default());
    let mut registry = Registry::default();
    let mut other = group();
    other.name = "api".into();
    other.prefixes = vec!["192.0.2.11/32".parse().unwrap()];
    let (tx, task) = spawn_runtime(
        vec![group(), other.clone()],
        ipvs,
        rec.clone(),
        LoopSettings {
            drain_time: Duration::from_secs(3),
            maintenance_file: None,
            state_file: None,
        },
        &mut registry,
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    let text = |r: &Registry| {
        let mut t = String::new();
        prometheus_client::encoding::text::encode(&mut t, r).unwrap();
        t
    };
    let before = text(&registry);
    // web (healthy, announced) has every kind of series; api (no IPVS service) the rest.
    for m in [
        "healthy",
        "announced",
        "drained",
        "phase",
        "pool_down_count",
        "healthy_destinations",
        "destinations",
        "service_pool_up",
        "transitions_total",
        "last_transition_timestamp_seconds",
    ] {
        assert!(
            before.contains(&format!("ipvs_herald_vip_group_{m}{{group=\"web\"")),
            "{m} of web missing before:\n{before}"
        );
    }
    assert!(before.contains("ipvs_herald_vip_group_checks_failed_total{group=\"api\"}"));
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Reload(vec![other.clone()], rtx))
        .await
        .unwrap();
    rrx.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = text(&registry);
    assert!(!after.contains("group=\"web\""), "stale series:\n{after}");
    assert!(after.contains("ipvs_herald_vip_group_healthy{group=\"api\"} 0"));
    assert!(after.contains("ipvs_herald_vip_group_checks_failed_total{group=\"api\"}"));
    assert_eq!(events(&rec).last().unwrap(), "withdraw 192.0.2.10/32");
    // Added back: its series come back with live values (the metric handles cached for
    // the removed group are not reused: they would update series no longer registered).
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Reload(vec![group(), other], rtx))
        .await
        .unwrap();
    rrx.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    let again = text(&registry);
    assert!(
        again.contains("ipvs_herald_vip_group_healthy{group=\"web\"} 1"),
        "{again}"
    );
    assert!(
        again.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"announced\"} 1"),
        "{again}"
    );
    let line = again
        .lines()
        .find(|l| l.starts_with("ipvs_herald_vip_group_healthy_destinations{group=\"web\""))
        .unwrap_or_else(|| panic!("{again}"));
    assert!(line.ends_with("} 3"), "{line}");
    drop(tx);
    let _ = task.await;
}

/// IPVS that blocks every read while `stuck` is set (a hung kernel read), bounded at 20 s.
struct StuckIpvs(FakeIpvs, std::sync::atomic::AtomicBool);

impl IpvsSource for StuckIpvs {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        let start = Instant::now();
        while self.1.load(std::sync::atomic::Ordering::SeqCst)
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.0.snapshot()
    }

    fn conn_table(&self, l: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        self.0.conn_table(l)
    }
}

/// A read that hangs withdraws the group at its watchdog bound (2 s for a 100 ms interval),
/// not never; the loop answers the admin socket meanwhile and beats its heartbeat; when
/// reads answer again the group comes back through rise and hold-down. Real time: a hung
/// blocking read keeps tokio's paused clock from moving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_read_withdraws_at_the_watchdog_bound_and_the_loop_stays_responsive() {
    let ipvs = Arc::new(StuckIpvs(
        FakeIpvs(Mutex::new(Some([1, 1, 1]))),
        std::sync::atomic::AtomicBool::new(false),
    ));
    let rec = Arc::new(Recorder::default());
    let mut registry = Registry::default();
    let rt = ControlLoop::new(
        vec![group()],
        ipvs.clone(),
        rec.clone(),
        Arc::new(NoAddrs),
        LoopSettings {
            drain_time: Duration::from_secs(3),
            maintenance_file: None,
            state_file: None,
        },
        &mut registry,
    )
    .unwrap();
    let heartbeat = rt.heartbeat();
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(rt.run(rx));
    let wait_for = |n: usize, within: Duration| {
        let rec = rec.clone();
        async move {
            let start = Instant::now();
            while rec.0.lock().unwrap().len() < n {
                assert!(
                    start.elapsed() < within,
                    "fewer than {n} actions after {within:?}: {:?}",
                    events(&rec)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            start.elapsed()
        }
    };
    wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);

    ipvs.1.store(true, std::sync::atomic::Ordering::SeqCst);
    let stuck_at = Instant::now();
    // The loop still answers while the read hangs.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (rtx, rrx) = oneshot::channel();
    let asked = Instant::now();
    tx.send(Control::Admin((Request::Status, rtx)))
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(1), rrx)
        .await
        .expect("status answered while the read hangs")
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(
        reply.status.unwrap().groups[0].phase,
        herald_shared::status::GroupPhase::Announced
    );
    assert!(heartbeat.check().is_ok());

    wait_for(2, Duration::from_secs(4)).await;
    let withdrawn_after = stuck_at.elapsed();
    assert_eq!(events(&rec)[1], "withdraw 192.0.2.10/32");
    // Bound 2 s after the last verdict, which came at most one interval before the hang.
    assert!(
        withdrawn_after >= Duration::from_millis(1800)
            && withdrawn_after < Duration::from_millis(2600),
        "withdrawn {withdrawn_after:?} after the read hung"
    );
    let mut t = String::new();
    prometheus_client::encoding::text::encode(&mut t, &registry).unwrap();
    assert!(
        t.contains("ipvs_herald_vip_group_watchdog_withdrawals_total{group=\"web\"} 1"),
        "{t}"
    );
    assert!(
        t.contains("ipvs_herald_vip_group_phase{group=\"web\",phase=\"withdrawn\"} 1"),
        "{t}"
    );
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Admin((Request::Status, rtx)))
        .await
        .unwrap();
    let reply = rrx.await.unwrap();
    let web = &reply.status.unwrap().groups[0];
    assert!(
        web.reasons[0].starts_with("watchdog: no health verdict within 2s"),
        "{:?}",
        web.reasons
    );
    // The withdrawal is the group's last transition, with the watchdog's reason.
    let t = web.last_transition.as_ref().expect("a transition");
    assert_eq!(
        (t.from, t.to),
        (
            herald_shared::status::GroupPhase::Announced,
            herald_shared::status::GroupPhase::Withdrawn
        )
    );
    assert!(t.reason.starts_with("watchdog: no health verdict"), "{t:?}");
    assert!(heartbeat.check().is_ok());

    // Reads answer again: back after rise (2 x 100 ms) and the 1 s hold-down, which counts
    // from the watchdog's withdrawal.
    ipvs.1.store(false, std::sync::atomic::Ordering::SeqCst);
    wait_for(3, Duration::from_secs(5)).await;
    let log = rec.0.lock().unwrap().clone();
    assert_eq!(log[2].1, "announce 192.0.2.10/32 med=None comm=[]");
    let held = log[2].0 - log[1].0;
    assert!(
        held >= Duration::from_secs(1),
        "back {held:?} after the withdrawal"
    );
    drop(tx);
    let _ = task.await;
    // The loop ended on purpose: nothing to watch any more.
    std::thread::sleep(Duration::from_millis(20));
    assert!(heartbeat.check().is_ok());
}

#[test]
fn heartbeat_fails_after_its_bound_and_passes_once_stopped() {
    let h = Heartbeat::new();
    h.set_bound(Duration::from_millis(50));
    h.beat();
    assert!(h.check().is_ok());
    std::thread::sleep(Duration::from_millis(120));
    let e = h.check().unwrap_err();
    assert!(e.silent >= Duration::from_millis(100), "{e}");
    assert_eq!(e.bound, Duration::from_millis(50));
    h.beat();
    assert!(h.check().is_ok());
    std::thread::sleep(Duration::from_millis(120));
    h.stop();
    assert!(h.check().is_ok());
}

/// The group's report, asked for as `Handle::status` does.
async fn report(tx: &mpsc::Sender<Control>) -> GroupReport {
    let (rtx, rrx) = oneshot::channel();
    tx.send(Control::Status(rtx)).await.unwrap();
    rrx.await.unwrap().remove(0)
}

/// `status` for one group through its life: each transition with its reason, the service
/// against the pool thresholds (with hysteresis: 2 healthy is not enough to come back up at
/// up_count 3), and every drain with who asked for it (maintenance file, admin, shutdown).
#[tokio::test(start_paused = true)]
async fn status_reports_transitions_thresholds_and_drain_sources() {
    let dir = std::env::temp_dir().join(format!("herald-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let maintenance = dir.join("maintenance");
    let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
    let mut g = group();
    g.pool.down_count = 2;
    g.pool.up_count = Some(3);
    let (tx, task) = spawn_runtime(
        vec![g],
        ipvs.clone(),
        Arc::new(Recorder::default()),
        LoopSettings {
            drain_time: Duration::from_secs(3),
            maintenance_file: Some(maintenance.clone()),
            state_file: None,
        },
        &mut Registry::default(),
    );
    // One check passed, rise is 2: still down, and no transition yet.
    let before = report(&tx).await;
    assert_eq!(
        (before.phase, before.health.as_str(), before.last_transition),
        (GroupPhase::Withdrawn, "down", None)
    );

    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = report(&tx).await;
    assert_eq!((r.phase, r.health.as_str()), (GroupPhase::Announced, "up"));
    assert_eq!(
        (r.name.as_str(), r.vips.as_slice()),
        ("web", &["192.0.2.10/32".to_string()][..])
    );
    let t = r.last_transition.unwrap();
    assert_eq!(
        (t.from, t.to),
        (GroupPhase::Withdrawn, GroupPhase::Announced)
    );
    assert_eq!(t.reason, "healthy: every required pool is up");
    let s = &r.services[0];
    assert_eq!(s.service, "TCP 192.0.2.10:80");
    assert_eq!(
        (
            s.present,
            s.healthy,
            s.configured,
            s.down_threshold,
            s.up_threshold,
            s.up
        ),
        (true, 3, 3, 2, 3, true)
    );

    // One of three healthy: below down_count 2, withdrawn after fall = 2 checks.
    *ipvs.0.lock().unwrap() = Some([1, 0, 0]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = report(&tx).await;
    assert_eq!(
        (r.phase, r.health.as_str()),
        (GroupPhase::Withdrawn, "down")
    );
    let t = r.last_transition.unwrap();
    assert_eq!(
        (t.from, t.to),
        (GroupPhase::Announced, GroupPhase::Withdrawn)
    );
    assert_eq!(
        t.reason,
        "unhealthy: TCP 192.0.2.10:80: 1 of 3 destinations healthy, below the pool threshold"
    );
    assert_eq!((r.services[0].healthy, r.services[0].up), (1, false));

    // Two healthy: enough to stay up (down_count 2), not to come back (up_count 3).
    *ipvs.0.lock().unwrap() = Some([1, 1, 0]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = report(&tx).await;
    assert_eq!(r.phase, GroupPhase::Withdrawn);
    assert_eq!((r.services[0].healthy, r.services[0].up), (2, false));
    assert!(r.drained_by.is_empty(), "{:?}", r.drained_by);

    // The maintenance file names the group: drained at once (it was not announced).
    std::fs::write(&maintenance, "web\n").unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = report(&tx).await;
    assert_eq!(r.phase, GroupPhase::Drained);
    assert_eq!(r.drained_by, [DrainSource::MaintenanceFile]);
    let t = r.last_transition.unwrap();
    assert_eq!((t.from, t.to), (GroupPhase::Withdrawn, GroupPhase::Drained));
    assert_eq!(t.reason, "drained by the maintenance file");
    assert!(
        r.reasons.contains(&format!(
            "drained by the maintenance file {}",
            maintenance.display()
        )),
        "{:?}",
        r.reasons
    );

    // An admin drain on top: both named.
    let reply = ask(
        &tx,
        Request::Drain {
            target: Target::Group("web".into()),
            drain_time: None,
        },
    )
    .await;
    assert!(reply.ok, "{}", reply.message);
    let r = report(&tx).await;
    assert_eq!(
        r.drained_by,
        [DrainSource::Admin, DrainSource::MaintenanceFile]
    );

    // Both lifted while the pool is still below up_count: withdrawn, and the report says
    // why it did not come back.
    std::fs::remove_file(&maintenance).unwrap();
    ask(
        &tx,
        Request::Undrain {
            target: Target::All,
        },
    )
    .await;
    let r = report(&tx).await;
    assert_eq!(
        (r.phase, r.drained_by.as_slice()),
        (GroupPhase::Withdrawn, &[][..])
    );
    let t = r.last_transition.unwrap();
    assert_eq!((t.from, t.to), (GroupPhase::Drained, GroupPhase::Withdrawn));
    assert_eq!(
        t.reason,
        "undrained; unhealthy: TCP 192.0.2.10:80: 2 of 3 destinations healthy, below the pool threshold"
    );

    // The pool back to full: announced again (after the 1 s hold-down).
    *ipvs.0.lock().unwrap() = Some([1, 1, 1]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = report(&tx).await;
    assert_eq!(r.phase, GroupPhase::Announced);
    let t = r.last_transition.unwrap();
    assert_eq!(
        (t.from, t.to),
        (GroupPhase::Withdrawn, GroupPhase::Announced)
    );

    // Shutdown drains for its drain time: the report says so while it lasts.
    let (done, done_rx) = oneshot::channel();
    tx.send(Control::Shutdown {
        drain_time: Duration::from_secs(2),
        done,
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = report(&tx).await;
    assert_eq!(r.phase, GroupPhase::Draining);
    assert_eq!(r.drained_by, [DrainSource::Shutdown]);
    assert_eq!(r.last_transition.unwrap().reason, "drained by shutdown");
    done_rx.await.unwrap();
    task.await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// After a graceful restart: a group that was announced and is healthy is announced at the
/// first check (no `rise` from zero), and the first decision is reported only after its
/// actions went to the sink; without the graceful start the same check announces nothing.
#[tokio::test(start_paused = true)]
async fn graceful_start_first_check_announces_a_healthy_group_before_the_decision() {
    let ipvs = Arc::new(FakeIpvs(Mutex::new(Some([1, 1, 1]))));
    let rec = Arc::new(Recorder::default());
    let (decided, decided_rx) = oneshot::channel();
    let rt = ControlLoop::new(
        vec![group()],
        ipvs.clone(),
        rec.clone(),
        Arc::new(NoAddrs),
        LoopSettings {
            drain_time: Duration::from_secs(3),
            maintenance_file: None,
            state_file: None,
        },
        &mut Registry::default(),
    )
    .unwrap()
    .with_graceful_start(&["web".to_string()].into(), decided);
    let (tx, rx) = mpsc::channel(8);
    let task = tokio::spawn(rt.run(rx));
    let t0 = tokio::time::Instant::now();
    decided_rx.await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO, "decided at the first check");
    assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
    drop(tx);
    task.await.unwrap();

    // The same start without the graceful restart: nothing at the first check (rise = 2).
    let rec = Arc::new(Recorder::default());
    let (tx, task) = spawn_runtime(
        vec![group()],
        ipvs,
        rec.clone(),
        LoopSettings {
            drain_time: Duration::from_secs(3),
            maintenance_file: None,
            state_file: None,
        },
        &mut Registry::default(),
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(events(&rec).is_empty());
    drop(tx);
    task.await.unwrap();
}

/// After a graceful restart: a group whose pool died while the daemon was away is not
/// announced (the router drops its stale route at End-of-RIB); it comes back through `rise` and
/// the hold-down. A group drained before the restart (state file) stays withdrawn, healthy or
/// not. Both count for the first decision.
#[tokio::test(start_paused = true)]
async fn graceful_start_keeps_dead_and_drained_groups_withdrawn() {
    let dir = std::env::temp_dir().join(format!("herald-gr-loop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    let mut drains = crate::state::DrainState::default();
    drains.groups.insert(
        "drained".into(),
        crate::state::Drain::now(Duration::from_secs(1)),
    );
    crate::state::StateFile::new(state.clone())
        .store(1, &drains)
        .unwrap();
    let mut drained = group();
    drained.name = "drained".into();
    drained.prefixes = vec!["192.0.2.10/32".parse().unwrap()];
    let mut dead = group();
    dead.prefixes = vec!["192.0.2.10/32".parse().unwrap()];
    // One group at a time: the same prefix may not be in two groups.
    for (g, weights) in [(dead, [0, 0, 0]), (drained, [1, 1, 1])] {
        let ipvs = Arc::new(FakeIpvs(Mutex::new(Some(weights))));
        let rec = Arc::new(Recorder::default());
        let (decided, decided_rx) = oneshot::channel();
        let name = g.name.clone();
        let rt = ControlLoop::new(
            vec![g],
            ipvs.clone(),
            rec.clone(),
            Arc::new(NoAddrs),
            LoopSettings {
                drain_time: Duration::from_secs(3),
                maintenance_file: None,
                state_file: Some(state.clone()),
            },
            &mut Registry::default(),
        )
        .unwrap()
        .with_graceful_start(&[name.clone()].into(), decided);
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(rt.run(rx));
        decided_rx.await.unwrap();
        assert!(events(&rec).is_empty(), "{name}: {:?}", events(&rec));
        *ipvs.0.lock().unwrap() = Some([1, 1, 1]);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(
            events(&rec).is_empty(),
            "{name}: held down or drained: {:?}",
            events(&rec)
        );
        if name == "web" {
            tokio::time::sleep(Duration::from_millis(900)).await;
            assert_eq!(events(&rec), ["announce 192.0.2.10/32 med=None comm=[]"]);
        }
        drop(tx);
        task.await.unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// After a graceful restart the managed addresses of resumed groups were kept at start; a
/// resumed group that is not announced after its first check gives them up (after
/// address_linger), one that is announced keeps them.
#[tokio::test(start_paused = true)]
async fn graceful_start_releases_kept_addresses_of_groups_left_out() {
    for (weights, want) in [
        (
            [0, 0, 0],
            vec!["RemoveAddress { prefix: 192.0.2.10/32, interface: \"herald0\", linger: 1s }"],
        ),
        (
            [1, 1, 1],
            vec![
                "AddAddress { prefix: 192.0.2.10/32, interface: \"herald0\" }",
                "announce 192.0.2.10/32 med=None comm=[]",
            ],
        ),
    ] {
        let mut g = group();
        g.vip_address = crate::group_config::VipAddressMode::Manage;
        let rec = Arc::new(Recorder::default());
        let (decided, decided_rx) = oneshot::channel();
        let rt = ControlLoop::new(
            vec![g],
            Arc::new(FakeIpvs(Mutex::new(Some(weights)))),
            rec.clone(),
            Arc::new(NoAddrs),
            LoopSettings {
                drain_time: Duration::from_secs(3),
                maintenance_file: None,
                state_file: None,
            },
            &mut Registry::default(),
        )
        .unwrap()
        .with_graceful_start(&["web".to_string()].into(), decided);
        let (tx, rx) = mpsc::channel(8);
        let task = tokio::spawn(rt.run(rx));
        decided_rx.await.unwrap();
        assert_eq!(events(&rec), want);
        drop(tx);
        task.await.unwrap();
    }
}
