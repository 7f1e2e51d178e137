//! Test harness for the BGP interop suite: network namespaces joined by veth, real
//! router daemons (BIRD 2, FRR bgpd+zebra, GoBGP) started inside them with private
//! control sockets, parsers that read the routers' RIBs back into one common shape,
//! and "drivers" that play the announcing side (our speaker, or GoBGP as a reference).
//!
//! Everything a test creates is owned by a value whose `Drop` tears it down (processes
//! killed by pid, namespaces deleted), so a failing test leaves nothing behind.
#![allow(dead_code)]

pub mod announcer;
pub mod deps;
pub mod driver;
pub mod herald;
pub mod lab;
pub mod multibird;
pub mod process;
pub mod routers;
pub mod routes;

use std::time::{Duration, Instant};

/// Error type of the harness: every failure carries a sentence naming what went wrong.
pub type TResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Builds a harness error from a message.
pub fn err<T>(msg: impl Into<String>) -> TResult<T> {
    Err(msg.into().into())
}

/// Polls `check` every `every` until it returns `Ok(true)` or `timeout` passes.
/// Errors from `check` are remembered and reported if the deadline passes, so a
/// transient "daemon not ready" error does not abort the wait.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> TResult<bool>,
) -> TResult<()> {
    let start = Instant::now();
    let mut last_err = String::new();
    loop {
        match check() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = e.to_string(),
        }
        if start.elapsed() >= timeout {
            let detail = if last_err.is_empty() {
                String::new()
            } else {
                format!(" (last error: {last_err})")
            };
            return err(format!(
                "timed out after {:.1}s waiting for {what}{detail}",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(every);
    }
}

/// Asserts that `check` stays `Ok(false)` for the whole of `period` (used for
/// "the session must NOT come up" checks).
pub fn stays_false(
    what: &str,
    period: Duration,
    every: Duration,
    mut check: impl FnMut() -> TResult<bool>,
) -> TResult<()> {
    let start = Instant::now();
    while start.elapsed() < period {
        if check()? {
            return err(format!(
                "{what} became true after {:.1}s but must stay false for {:.1}s",
                start.elapsed().as_secs_f64(),
                period.as_secs_f64()
            ));
        }
        std::thread::sleep(every);
    }
    Ok(())
}
