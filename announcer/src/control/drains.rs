//! The admin drains: requests from the admin socket (`drain`, `undrain`, `status`), the state
//! file that keeps the drains across restarts, and their restoration at start.

use super::{ControlLoop, LoopSettings};
use crate::admin::{Reply, Request, Target};
use crate::group::GroupState;
use crate::state::{Drain, DrainState, StateFile};
use herald_shared::status::{StatusReport, SCHEMA_VERSION};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long an admin request waits for its drain to reach the state file before the reply says
/// it was not saved.
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

impl ControlLoop {
    /// The admin drains saved by an earlier run, restored before the first tick so that a drained
    /// group is never announced after a restart. A restored drain goes straight to drained (the
    /// group starts withdrawn, and the route was withdrawn before the restart): announcing it again
    /// with the draining attributes would draw traffic back to a director taken out of service.
    ///
    /// A state file that exists but cannot be read or parsed drains every group (fail safe: an
    /// operator's drain is never lost), logs an error naming the file, and `status` says why; the
    /// returned fault is that reason. Drains of groups no longer configured are dropped, as a reload
    /// does.
    pub(super) fn restore_drains(
        file: Option<&StateFile>,
        groups: &[(GroupState, Instant)],
        settings: &LoopSettings,
    ) -> (DrainState, Option<String>) {
        let Some(file) = file else {
            return (DrainState::default(), None);
        };
        match file.load() {
            Ok(mut state) => {
                state.groups.retain(|name, _| {
                    let known = groups.iter().any(|(g, _)| g.name() == name);
                    if !known {
                        tracing::warn!(group = %name, state_file = %file.path().display(), "saved drain of a VIP group that is no longer configured: dropped");
                    }
                    known
                });
                if state.all.is_some() {
                    tracing::info!(state_file = %file.path().display(), "restored the drain of every VIP group");
                }
                for name in state.groups.keys() {
                    tracing::info!(group = %name, state_file = %file.path().display(), "restored admin drain");
                }
                (state, None)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot restore the admin drains: draining every VIP group until `ipvs-herald undrain --all`");
                (
                    DrainState {
                        all: Some(Drain::now(settings.drain_time)),
                        groups: BTreeMap::new(),
                    },
                    Some(format!("{e} at start")),
                )
            }
        }
    }

    /// Answer an admin request; the flag is set when the admin drains changed (to be saved).
    pub(super) fn admin(&mut self, req: Request) -> (Reply, bool) {
        let ok = |message: String| Reply {
            ok: true,
            message,
            status: None,
        };
        let unknown = |name: &str| Reply {
            ok: false,
            message: format!("no VIP group named {name:?}"),
            status: None,
        };
        let known = |s: &Self, name: &str| s.groups.iter().any(|(g, _)| g.name() == name);
        match req {
            Request::Drain { target, drain_time } => {
                let d = drain_time.unwrap_or(self.settings.drain_time);
                match target {
                    Target::All => {
                        self.admin_drain_all = Some(Drain::now(d));
                        (
                            ok(format!("draining every VIP group ({}s)", d.as_secs_f64())),
                            true,
                        )
                    }
                    Target::Group(name) if known(self, &name) => {
                        self.admin_drains.insert(name.clone(), Drain::now(d));
                        (ok(format!("draining {name} ({}s)", d.as_secs_f64())), true)
                    }
                    Target::Group(name) => (unknown(&name), false),
                }
            }
            Request::Undrain { target } => match target {
                Target::All => {
                    self.admin_drain_all = None;
                    self.admin_drains.clear();
                    self.drain_fault = None;
                    (ok("undrained every VIP group".into()), true)
                }
                Target::Group(name) if known(self, &name) => {
                    self.admin_drains.remove(&name);
                    let note = if self.admin_drain_all.is_some() {
                        " (but a drain of all groups is still in force)"
                    } else {
                        ""
                    };
                    (ok(format!("undrained {name}{note}")), true)
                }
                Target::Group(name) => (unknown(&name), false),
            },
            Request::Stop { .. } => (
                // The process's business: `crate::service` answers it before it gets here.
                Reply {
                    ok: false,
                    message: "stop is not handled by the control loop".into(),
                    status: None,
                },
                false,
            ),
            Request::Status => {
                // The BGP peers are the speaker's: `crate::service` answers `status` from the
                // admin socket with [`Control::Status`] and adds them; here the report has none.
                let report = StatusReport {
                    schema: SCHEMA_VERSION,
                    generated_at: super::unix_now(),
                    groups: self.group_reports(),
                    peers: Vec::new(),
                };
                (
                    Reply {
                        ok: true,
                        message: format!("{} VIP groups", self.groups.len()),
                        status: Some(report),
                    },
                    false,
                )
            }
        }
    }

    /// Why the admin drains hold group `name`, for `status`.
    pub(super) fn admin_drain_reason(&self, name: &str) -> Option<String> {
        if let Some(fault) = &self.drain_fault {
            return Some(format!(
                "drained: {fault}; `ipvs-herald undrain --all` ends it"
            ));
        }
        let (what, d) = match (self.admin_drains.get(name), &self.admin_drain_all) {
            (Some(d), _) => (format!("ipvs-herald drain {name}"), d),
            (None, Some(d)) => ("ipvs-herald drain --all".to_string(), d),
            (None, None) => return None,
        };
        Some(format!("drained by `{what}` (unix time {})", d.since))
    }

    /// The admin drains as the state file keeps them.
    fn drain_state(&self) -> DrainState {
        DrainState {
            all: self.admin_drain_all,
            groups: self.admin_drains.clone(),
        }
    }

    /// Write the admin drains to the state file off the loop (a slow disk must not hold up the
    /// health checks), then send `reply`, turned into an error if the drains could not be
    /// saved: they are in force, but a restart would bring back the ones saved before.
    pub(super) fn save_drains(&mut self, reply: Option<(Reply, oneshot::Sender<Reply>)>) {
        let Some(file) = self.state_file.clone() else {
            if let Some((r, tx)) = reply {
                let _ = tx.send(r);
            }
            return;
        };
        self.state_generation += 1;
        let generation = self.state_generation;
        let state = self.drain_state();
        tokio::spawn(async move {
            let path = file.path().display().to_string();
            let write = tokio::task::spawn_blocking(move || file.store(generation, &state));
            let failed = match tokio::time::timeout(STATE_WRITE_TIMEOUT, write).await {
                Ok(Ok(Ok(()))) => None,
                Ok(Ok(Err(e))) => Some(e.to_string()),
                Ok(Err(e)) => Some(format!("state file {path}: write task failed: {e}")),
                Err(_) => Some(format!(
                    "state file {path}: not written within {STATE_WRITE_TIMEOUT:?}"
                )),
            };
            if let Some(e) = &failed {
                tracing::error!(error = %e, "admin drains not saved: a restart would restore the drains saved before");
            }
            if let Some((mut r, tx)) = reply {
                if let Some(e) = failed {
                    r.ok = false;
                    r.message = format!(
                        "{}; in force now, but NOT saved ({e}): a restart would restore the drains saved before",
                        r.message
                    );
                }
                let _ = tx.send(r);
            }
        });
    }
}
