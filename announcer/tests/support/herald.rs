//! Our BGP speaker (`herald_announcer::bgp::Speaker`) as the announcing side of an
//! interop test. The speaker runs on a dedicated thread that has joined the lab's
//! speaker namespace and drives a current-thread tokio runtime, so every socket it
//! opens lives in that namespace; the test thread talks to it through the
//! `SpeakerHandle`, whose announce/withdraw/peer_states are synchronous.

use std::net::IpAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use herald_announcer::bgp::{
    Backoff, BgpConfig, Family, NextHop, Origin as HOrigin, PeerConfig, RouteAttrs, Speaker,
    SpeakerHandle, State,
};
use ipnet::IpNet;
use prometheus_client::registry::Registry;
use tokio::sync::oneshot;

use super::driver::{Driver, DriverSpec};
use super::lab::{Lab, SPEAKER_V4, SPEAKER_V6};
use super::routes::{Attrs, Origin};
use super::{err, TResult};

/// The RFC 9003 shutdown communication our driver's clean shutdown sends.
pub const SHUTDOWN_MESSAGE: &str = "ipvs-herald interop test shutdown";

/// Our speaker in the lab's speaker namespace.
#[derive(Debug)]
pub struct HeraldDriver {
    handle: SpeakerHandle,
    /// The registry the speaker's metrics are in.
    registry: Arc<Mutex<Registry>>,
    stop: Option<oneshot::Sender<(String, Duration)>>,
    thread: Option<JoinHandle<TResult<()>>>,
    names: Vec<(IpAddr, String)>,
    log: String,
}

/// Builds the speaker configuration the interop tests use: both families on one
/// IPv4 session (IPv6 next hop configured), fast reconnect backoff.
pub fn config(spec: &DriverSpec) -> BgpConfig {
    let peers = spec
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut pc = PeerConfig::new(format!("rtr{i}"), p.address, p.remote_as);
            pc.hold_time = p.hold;
            pc.md5_password = p.md5.clone();
            pc.passive = p.passive;
            pc.ttl_security = p.ttl_security;
            pc.families = Some(vec![Family::Ipv4, Family::Ipv6]);
            pc.next_hop_v4 = NextHop::Addr(IpAddr::V4(SPEAKER_V4));
            pc.next_hop_v6 = NextHop::Addr(IpAddr::V6(SPEAKER_V6));
            pc.connect_retry = Backoff { min: 0.5, max: 2.0 };
            pc
        })
        .collect();
    BgpConfig {
        router_id: SPEAKER_V4,
        local_as: spec.local_as,
        listen: std::net::SocketAddr::new(IpAddr::V4(SPEAKER_V4), 179),
        peers,
    }
}

/// Converts the harness attributes into the speaker's.
pub fn route_attrs(a: &Attrs) -> RouteAttrs {
    RouteAttrs {
        origin: match a.origin {
            Origin::Igp => HOrigin::Igp,
            Origin::Egp => HOrigin::Egp,
            Origin::Incomplete => HOrigin::Incomplete,
        },
        med: a.med,
        local_pref: a.local_pref,
        communities: a.communities.clone(),
        large_communities: a.large_communities.clone(),
        extended_communities: Vec::new(),
        as_path_prepend: a.as_path_prepend,
    }
}

impl HeraldDriver {
    pub fn start(lab: &Lab, spec: &DriverSpec) -> TResult<Self> {
        Self::start_with_config(lab, spec, config(spec))
    }

    /// Like `start`, with a speaker configuration the test adjusted (peers in `spec` order).
    pub fn start_with_config(lab: &Lab, spec: &DriverSpec, cfg: BgpConfig) -> TResult<Self> {
        let names = spec
            .peers
            .iter()
            .zip(&cfg.peers)
            .map(|(p, c)| (p.address, c.name.clone()))
            .collect();
        type Started = (SpeakerHandle, Arc<Mutex<Registry>>);
        let (handle_tx, handle_rx) = mpsc::channel::<Result<Started, String>>();
        let (stop_tx, stop_rx) = oneshot::channel::<(String, Duration)>();
        let thread = lab.speaker.spawn_in(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("tokio runtime: {e}"))?;
            rt.block_on(async move {
                let mut registry = Registry::default();
                let handle = match Speaker::start(cfg, &mut registry) {
                    Ok(h) => h,
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                        return err(format!("Speaker::start: {e}"));
                    }
                };
                let registry = Arc::new(Mutex::new(registry));
                let _ = handle_tx.send(Ok((handle.clone(), registry)));
                // Runs the speaker until the test asks for shutdown (or drops the driver).
                let (msg, timeout) = stop_rx
                    .await
                    .unwrap_or_else(|_| ("test ended".to_owned(), Duration::from_secs(2)));
                handle.shutdown(&msg, timeout).await;
                Ok(())
            })
        });
        let (handle, registry) = match handle_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => return err(format!("our speaker did not start: {e}")),
            Err(_) => {
                return err("our speaker thread did not report a handle within 10 s".to_owned())
            }
        };
        Ok(Self {
            handle,
            registry,
            stop: Some(stop_tx),
            thread: Some(thread),
            names,
            log: String::new(),
        })
    }

    fn name_of(&self, peer: IpAddr) -> TResult<&str> {
        self.names
            .iter()
            .find(|(a, _)| *a == peer)
            .map(|(_, n)| n.as_str())
            .ok_or_else(|| format!("no speaker peer configured for {peer}").into())
    }

    /// Direct access to the speaker handle (for benchmarks and extra checks).
    pub fn handle(&self) -> &SpeakerHandle {
        &self.handle
    }

    /// The speaker's metrics in the Prometheus text format.
    pub fn metrics_text(&self) -> TResult<String> {
        let reg = self
            .registry
            .lock()
            .map_err(|_| "speaker metrics registry lock poisoned")?;
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg)?;
        Ok(text)
    }

    fn stop_and_join(&mut self, msg: &str, timeout: Duration) -> TResult<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send((msg.to_owned(), timeout));
        }
        if let Some(t) = self.thread.take() {
            match t.join() {
                Ok(r) => r?,
                Err(_) => return err("speaker thread panicked"),
            }
        }
        Ok(())
    }
}

impl Driver for HeraldDriver {
    fn name(&self) -> &'static str {
        "herald"
    }

    fn announce(&mut self, prefix: IpNet, attrs: &Attrs) -> TResult<()> {
        self.handle.announce(prefix, route_attrs(attrs));
        Ok(())
    }

    fn withdraw(&mut self, prefix: IpNet) -> TResult<()> {
        self.handle.withdraw(prefix);
        Ok(())
    }

    fn established(&self, peer: IpAddr) -> TResult<bool> {
        let name = self.name_of(peer)?;
        let st = self
            .handle
            .peer_states()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("speaker reports no status for peer {name}"))?;
        Ok(st.state == State::Established)
    }

    fn shutdown(&mut self) -> TResult<()> {
        self.stop_and_join(SHUTDOWN_MESSAGE, Duration::from_secs(5))
    }

    fn last_error(&self, peer: IpAddr) -> TResult<Option<String>> {
        let name = self.name_of(peer)?;
        Ok(self
            .handle
            .peer_states()
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.last_error))
    }

    fn shutdown_message(&self) -> Option<&'static str> {
        Some(SHUTDOWN_MESSAGE)
    }

    fn logs(&self) -> String {
        let states: Vec<String> = self
            .handle
            .peer_states()
            .into_iter()
            .map(|s| format!("{}: {:?} last_error={:?}", s.name, s.state, s.last_error))
            .collect();
        format!("--- herald speaker ---\n{}{}", states.join("\n"), self.log)
    }
}

impl Drop for HeraldDriver {
    fn drop(&mut self) {
        let _ = self.stop_and_join("test ended", Duration::from_secs(2));
    }
}
