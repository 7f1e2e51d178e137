//! The whole announcer path in the lab's speaker namespace, for tests about what a VIP group's
//! configuration makes a router see: the control loop (`herald_announcer::control`, the health
//! policy with rise/fall and `down_action`) reads a test IPVS source whose one real server the
//! test switches between weight 1 and weight 0, and acts through the BGP sink on our speaker.
//! Like `HeraldDriver`, everything runs on one thread inside the speaker namespace with a
//! current-thread tokio runtime; the test thread only flips the pool and reads metrics.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use herald_announcer::bgp::{Speaker, SpeakerHandle, State};
use herald_announcer::control::{Control, ControlLoop, LoopSettings};
use herald_announcer::group_config::VipGroupConfig;
use herald_announcer::sink::{BgpSink, LocalAddrs, LocalAddrsError};
use herald_shared::conntable::{ConnTableLimits, ConnTableSummary};
use herald_shared::model::{
    Destination, Protocol, Service, ServiceFlags, ServiceKey, Snapshot, Stats,
};
use herald_shared::reader::{IpvsSource, ReadError};
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use super::driver::DriverSpec;
use super::herald::config;
use super::lab::Lab;
use super::{err, TResult};

/// One TCP service `vip:80` per VIP, each with one real server (198.51.100.80:80) of weight 1
/// while `healthy` is set and weight 0 otherwise (the pool below the default threshold of one
/// healthy destination).
#[derive(Debug)]
struct SwitchedPool {
    vips: Vec<IpAddr>,
    healthy: Arc<AtomicBool>,
}

impl IpvsSource for SwitchedPool {
    fn snapshot(&self) -> Result<Snapshot, ReadError> {
        let rs: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 80));
        let weight = i32::from(self.healthy.load(Ordering::SeqCst));
        let services = self
            .vips
            .iter()
            .map(|vip| Service {
                key: ServiceKey::Addr {
                    protocol: Protocol::Tcp,
                    address: *vip,
                    port: 80,
                },
                scheduler: "rr".into(),
                flags: ServiceFlags::default(),
                persistence_timeout: 0,
                netmask: 0,
                pe_name: None,
                stats: Stats::default(),
                destinations: vec![Destination {
                    weight,
                    ..Destination::new(rs, 80)
                }],
            })
            .collect();
        Ok(Snapshot {
            services,
            ..Snapshot::default()
        })
    }

    fn conn_table(&self, _: &ConnTableLimits) -> Result<ConnTableSummary, ReadError> {
        Err(ReadError::ModuleNotLoaded)
    }
}

/// The groups use `vip_address = "ignore"`: no local address is needed.
#[derive(Debug)]
struct NoAddrs;

impl LocalAddrs for NoAddrs {
    fn local_addrs(&self) -> Result<Vec<IpAddr>, LocalAddrsError> {
        Ok(Vec::new())
    }
}

/// The control loop and our speaker in the lab's speaker namespace.
#[derive(Debug)]
pub struct AnnouncerDriver {
    handle: SpeakerHandle,
    healthy: Arc<AtomicBool>,
    registry: Arc<Mutex<Registry>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<TResult<()>>>,
}

impl AnnouncerDriver {
    /// Starts the speaker for `spec` (the interop harness's configuration) and a control loop
    /// for `groups`, whose IPVS source shows one service on each of `vips`; the pools start
    /// healthy.
    pub fn start(
        lab: &Lab,
        spec: &DriverSpec,
        groups: Vec<VipGroupConfig>,
        vips: Vec<IpAddr>,
    ) -> TResult<Self> {
        let cfg = config(spec);
        let healthy = Arc::new(AtomicBool::new(true));
        let source = SwitchedPool {
            vips,
            healthy: healthy.clone(),
        };
        type Started = (SpeakerHandle, Arc<Mutex<Registry>>);
        let (tx, rx) = mpsc::channel::<Result<Started, String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = lab.speaker.spawn_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(async move {
                let mut registry = Registry::default();
                let started = Speaker::start(cfg, &mut registry)
                    .map_err(|e| format!("Speaker::start: {e}"))
                    .and_then(|h| {
                        ControlLoop::new(
                            groups,
                            Arc::new(source),
                            Arc::new(BgpSink::new(h.clone())),
                            Arc::new(NoAddrs),
                            LoopSettings {
                                drain_time: Duration::ZERO,
                                maintenance_file: None,
                                state_file: None,
                            },
                            &mut registry,
                        )
                        .map(|l| (h, l))
                        .map_err(|e| format!("ControlLoop::new: {e}"))
                    });
                let (handle, control_loop) = match started {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e.clone()));
                        return err(e);
                    }
                };
                let registry = Arc::new(Mutex::new(registry));
                let _ = tx.send(Ok((handle.clone(), registry)));
                let (ctl_tx, ctl_rx) = tokio::sync::mpsc::channel(4);
                let task = tokio::spawn(control_loop.run(ctl_rx));
                let _ = stop_rx.await;
                let (done, done_rx) = oneshot::channel();
                if ctl_tx
                    .send(Control::Shutdown {
                        drain_time: Duration::ZERO,
                        done,
                    })
                    .await
                    .is_ok()
                {
                    let _ = tokio::time::timeout(Duration::from_secs(5), done_rx).await;
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                handle
                    .shutdown("interop test ended", Duration::from_secs(2))
                    .await;
                Ok(())
            })
        });
        let (handle, registry) = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return err(format!("the announcer did not start: {e}")),
            Err(_) => return err("the announcer thread did not start within 10 s"),
        };
        Ok(Self {
            handle,
            healthy,
            registry,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Gives the pools' real server weight 1 (`true`) or 0 (`false`).
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Whether the speaker's (only) session is Established.
    pub fn established(&self) -> bool {
        self.handle
            .peer_states()
            .first()
            .is_some_and(|s| s.state == State::Established)
    }

    /// The announcer's metrics (control loop and speaker) in the Prometheus text format.
    pub fn metrics_text(&self) -> TResult<String> {
        let reg = self
            .registry
            .lock()
            .map_err(|_| "announcer metrics registry lock poisoned")?;
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg)?;
        Ok(text)
    }

    /// The group's current route phase as its `ipvs_herald_vip_group_phase` gauge says.
    pub fn phase(&self, group: &str) -> TResult<Option<String>> {
        let text = self.metrics_text()?;
        let prefix = format!("ipvs_herald_vip_group_phase{{group=\"{group}\",phase=\"");
        Ok(text.lines().find_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (phase, value) = rest.split_once("\"} ")?;
            (value.trim() == "1").then(|| phase.to_owned())
        }))
    }

    /// Log-like summary for failure reports.
    pub fn logs(&self) -> String {
        let states: Vec<String> = self
            .handle
            .peer_states()
            .into_iter()
            .map(|s| format!("{}: {:?} last_error={:?}", s.name, s.state, s.last_error))
            .collect();
        let groups: Vec<String> = self
            .metrics_text()
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("ipvs_herald_vip_group_phase") && l.ends_with(" 1"))
            .map(str::to_owned)
            .collect();
        format!(
            "--- announcer ---\n{}\n{}",
            states.join("\n"),
            groups.join("\n")
        )
    }

    fn stop_and_join(&mut self) -> TResult<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(r) => r?,
                Err(_) => return err("announcer thread panicked"),
            }
        }
        Ok(())
    }
}

impl Drop for AnnouncerDriver {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}
