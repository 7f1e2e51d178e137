//! Fail safe by construction: whatever goes wrong inside the daemon ends with its routes
//! withdrawn, never with a VIP announced for a pool that nobody checks any more.
//!
//! - **A panic is a withdrawal.** The panic hook logs the panic, runs the last-gasp actions
//!   (withdrawing kernel routes, which outlive the process), and aborts. The kernel then closes
//!   every BGP session, so routers drop our routes at once, and systemd restarts us
//!   (`Restart=on-failure`); a restarted daemon announces nothing before `rise` fresh checks.
//!   Tokio would otherwise catch a task's panic and let the BGP sessions live on without it.
//! - **A wedged loop is a withdrawal.** A thread outside the async runtime watches the
//!   heartbeats of the announcer's control loop and of the runtime itself, and ends the process
//!   the same way when one falls silent past its bound.
//! - **systemd knows.** `READY=1` once serving, `RELOADING=1`/`READY=1` around a SIGHUP,
//!   `STOPPING=1` at SIGTERM, and `WATCHDOG=1` only while every heartbeat is fresh, so a
//!   process wedged beyond our own watchdog (stuck in the kernel) is killed by systemd's.

use herald_announcer::control::Heartbeat;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the last-gasp actions may take before the process aborts anyway.
const LAST_GASP_BOUND: Duration = Duration::from_secs(3);

/// How often the watchdog thread looks at the heartbeats.
const WATCH_PERIOD: Duration = Duration::from_millis(250);

type Action = Box<dyn Fn() + Send + Sync>;

fn last_gasp() -> &'static Mutex<Vec<Action>> {
    static ACTIONS: OnceLock<Mutex<Vec<Action>>> = OnceLock::new();
    ACTIONS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Set once the process has started to die: a second fault (a panic inside a last-gasp
/// action) aborts at once instead of recursing.
static DYING: AtomicBool = AtomicBool::new(false);

/// Register an action to run before the process dies of a fault: undo what outlives the
/// process (kernel routes). It must be quick and must not need the async runtime, which may
/// be the thing that is wedged.
pub fn on_fatal(action: impl Fn() + Send + Sync + 'static) {
    let mut actions = last_gasp().lock().unwrap_or_else(|p| p.into_inner());
    actions.push(Box::new(action));
}

/// End the process after a fault: log why, run the last-gasp actions (bounded), abort.
pub fn fatal(reason: &str) -> ! {
    if DYING.swap(true, Ordering::SeqCst) {
        std::process::abort();
    }
    tracing::error!(
        %reason,
        "fatal fault: withdrawing what outlives the process and aborting (the kernel closes the BGP sessions)"
    );
    eprintln!("ipvs-herald: fatal: {reason}");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("herald-last-gasp".into())
        .spawn(move || {
            let actions = last_gasp().lock().unwrap_or_else(|p| p.into_inner());
            for action in actions.iter() {
                action();
            }
            let _ = done_tx.send(());
        });
    if spawned.is_ok() && done_rx.recv_timeout(LAST_GASP_BOUND).is_err() {
        eprintln!("ipvs-herald: last-gasp actions did not finish within {LAST_GASP_BOUND:?}");
    }
    std::process::abort();
}

/// Every panic, on any thread, ends the process through [`fatal`].
pub fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        fatal(&format!("panic: {info}"));
    }));
}

/// A heartbeat beaten by a task of the async runtime: proves the runtime still runs tasks
/// (the exporter's server, the BGP sessions), whether or not the announcer is on.
pub fn runtime_heartbeat() -> Heartbeat {
    let heartbeat = Heartbeat::with_bound(herald_announcer::control::LOOP_WEDGE_BOUND);
    let beat = heartbeat.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(500));
        loop {
            every.tick().await;
            beat.beat();
        }
    });
    heartbeat
}

/// Watch `heartbeats` from a thread of its own: end the process when one is silent past its
/// bound; tell systemd's watchdog we are alive while all are fresh (when it asks for that).
pub fn spawn_watchdog(heartbeats: Vec<(&'static str, Heartbeat)>) -> std::io::Result<()> {
    let ping_every = sd_notify::watchdog_enabled().map(|d| d / 2);
    if let Some(p) = ping_every {
        tracing::info!(every = ?p, "systemd watchdog on");
    }
    std::thread::Builder::new()
        .name("herald-watchdog".into())
        .spawn(move || {
            let mut last_ping: Option<Instant> = None;
            loop {
                std::thread::sleep(WATCH_PERIOD);
                // Every silent heartbeat is named: a thread blocked inside the runtime stalls
                // the runtime's own beat and the control loop's at once.
                let silent: Vec<String> = heartbeats
                    .iter()
                    .filter_map(|(what, h)| h.check().err().map(|w| format!("{what}: {w}")))
                    .collect();
                if !silent.is_empty() {
                    fatal(&silent.join("; "));
                }
                if let Some(p) = ping_every {
                    if last_ping.is_none_or(|t| t.elapsed() >= p) {
                        notify(&[sd_notify::NotifyState::Watchdog]);
                        last_ping = Some(Instant::now());
                    }
                }
            }
        })
        .map(|_| ())
}

/// Tell systemd (when started by it with `Type=notify`). Sent from a thread of its own: a
/// datagram to a notification socket nobody reads blocks once its queue is full, and neither
/// the watchdog thread nor the async runtime may ever wait on that. A message that finds the
/// queue to that thread full is dropped with a warning.
pub fn notify(state: &[sd_notify::NotifyState<'static>]) {
    static SENDER: OnceLock<Option<SyncSender<Vec<sd_notify::NotifyState<'static>>>>> =
        OnceLock::new();
    let sender = SENDER.get_or_init(|| {
        std::env::var_os("NOTIFY_SOCKET")?;
        let (tx, rx) = sync_channel::<Vec<sd_notify::NotifyState<'static>>>(16);
        std::thread::Builder::new()
            .name("herald-sd-notify".into())
            .spawn(move || {
                for state in rx {
                    if let Err(e) = sd_notify::notify(&state) {
                        tracing::warn!(error = %e, "cannot notify systemd");
                    }
                }
            })
            .ok()?;
        Some(tx)
    });
    if let Some(tx) = sender {
        if tx.try_send(state.to_vec()).is_err() {
            tracing::warn!(
                ?state,
                "systemd notification dropped: the notification socket is not read"
            );
        }
    }
}

/// `RELOADING=1` with the monotonic time systemd wants beside it.
pub fn notify_reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[sd_notify::NotifyState::Reloading, now]),
        Err(_) => notify(&[sd_notify::NotifyState::Reloading]),
    }
}
