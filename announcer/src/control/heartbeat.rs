//! The control loop's liveness for the binary's fail-safe watchdog ([`Heartbeat`]), and the
//! faults that only tests turn on to prove the fail-safe paths ([`FaultHooks`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the loop may go without a beat before it counts as wedged. A turn waits on a read
/// for at most 250 ms (`READ_SLICE`), so this only has to cover a large batch of route actions or a
/// reload on a slow host; it does not grow with the groups' intervals, which a hung read
/// cannot stretch (see the group watchdog).
pub const LOOP_WEDGE_BOUND: Duration = Duration::from_secs(15);

/// Proof of life of the control loop, for a watcher outside the async runtime.
///
/// The loop [beats](Heartbeat::beat) it on every turn (at least once a second);
/// [`Heartbeat::check`] answers whether it has been silent for longer than its bound
/// ([`LOOP_WEDGE_BOUND`] for the control loop). After the loop has ended on
/// purpose (shutdown) the heartbeat is stopped and always passes.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    inner: Arc<HeartbeatInner>,
}

#[derive(Debug)]
struct HeartbeatInner {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last beat.
    last_ms: AtomicU64,
    /// Longest silence allowed, in milliseconds; `u64::MAX` once stopped.
    bound_ms: AtomicU64,
}

/// A loop that has not beaten its [`Heartbeat`] within its bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no heartbeat for {silent:?} (bound {bound:?})")]
pub struct Wedged {
    pub silent: Duration,
    pub bound: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self::new()
    }
}

impl Heartbeat {
    pub fn new() -> Self {
        Heartbeat {
            inner: Arc::new(HeartbeatInner {
                epoch: Instant::now(),
                last_ms: AtomicU64::new(0),
                bound_ms: AtomicU64::new(millis(LOOP_WEDGE_BOUND)),
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.inner.epoch.elapsed())
    }

    /// A heartbeat that fails when not beaten for longer than `bound`.
    pub fn with_bound(bound: Duration) -> Self {
        let h = Self::new();
        h.set_bound(bound);
        h
    }

    /// Alive now.
    pub fn beat(&self) {
        self.inner.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    pub(super) fn set_bound(&self, bound: Duration) {
        self.inner.bound_ms.store(millis(bound), Ordering::Relaxed);
    }

    /// The loop ended on purpose: no longer watched.
    pub fn stop(&self) {
        self.inner.bound_ms.store(u64::MAX, Ordering::Relaxed);
    }

    /// `Err` when the loop has been silent for longer than its bound.
    pub fn check(&self) -> Result<(), Wedged> {
        let bound = self.inner.bound_ms.load(Ordering::Relaxed);
        let silent = self
            .now_ms()
            .saturating_sub(self.inner.last_ms.load(Ordering::Relaxed));
        if bound != u64::MAX && silent > bound {
            return Err(Wedged {
                silent: Duration::from_millis(silent),
                bound: Duration::from_millis(bound),
            });
        }
        Ok(())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Faults that only tests turn on, to prove the fail-safe paths with the real binary: inert
/// unless the environment variable `IPVS_HERALD_FAULT_DIR` names a directory. Then, while the
/// file `<dir>/stuck-read` exists every IPVS read of the loop blocks; while `<dir>/wedge` exists
/// the loop blocks its thread; when `<dir>/panic` exists the loop panics at its next turn; when
/// `<dir>/metrics-server-exits` appears the binary's metrics server ends as if it had failed.
#[derive(Debug, Clone, Default)]
pub struct FaultHooks {
    dir: Option<PathBuf>,
}

impl FaultHooks {
    /// The environment variable that turns the hooks on.
    pub const ENV: &'static str = "IPVS_HERALD_FAULT_DIR";

    pub fn from_env() -> Self {
        let dir = std::env::var_os(Self::ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        if let Some(d) = &dir {
            tracing::warn!(dir = %d.display(), "fault hooks are on ({}): for tests only", Self::ENV);
        }
        FaultHooks { dir }
    }

    /// Whether the fault `name` is turned on now (`<dir>/<name>` exists).
    pub fn on(&self, name: &str) -> bool {
        self.dir.as_ref().is_some_and(|d| d.join(name).exists())
    }

    /// Complete once the fault `name` is turned on; never when the hooks are off.
    pub async fn turned_on(&self, name: &str) {
        if self.dir.is_none() {
            return std::future::pending().await;
        }
        while !self.on(name) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Block while `<dir>/<name>` exists (bounded: ten minutes at most).
    pub(super) fn hold(&self, name: &str) {
        let start = Instant::now();
        while self.on(name) && start.elapsed() < Duration::from_secs(600) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
