//! HTTP basic authentication against the web configuration's bcrypt hashes, with bcrypt's cost
//! bounded: unauthenticated clients cannot make the server spend more than one core on it.
//!
//! A bcrypt verification costs tens of milliseconds of CPU by design. Three things keep that
//! from being a lever for anyone who can reach the port:
//! - outcomes are cached (keyed by a salted SHA-256 of `user \0 password`, bounded in size), so a
//!   scraper with the right password pays bcrypt once, and a client repeating a wrong password
//!   pays it once too;
//! - at most [`VERIFY_PERMITS`] verifications run at a time, on blocking threads;
//! - a request that cannot start its verification within [`VERIFY_WAIT`] is answered
//!   429 Too Many Requests instead of queueing without bound.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// bcrypt verifications running at once (exporter-toolkit runs one at a time).
pub const VERIFY_PERMITS: usize = 1;
/// How long a request waits for a verification slot before it is answered 429.
pub const VERIFY_WAIT: Duration = Duration::from_millis(500);
/// Remembered outcomes; the cache is emptied when full (a new wrong password then costs one
/// bcrypt again, a right one too: never a wrong answer).
const CACHE_MAX: usize = 1024;

/// What a request's credentials came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    Denied,
    /// No verification slot within [`VERIFY_WAIT`]: try again later.
    Busy,
}

/// Checks `Authorization` headers against the configured users.
#[derive(Debug)]
pub(crate) struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Hash verified for unknown users so that they take as long as known ones.
    dummy: String,
    salt: [u8; 32],
    /// Cache key → whether the password was right.
    outcomes: Mutex<HashMap<[u8; 32], bool>>,
    permits: Arc<Semaphore>,
}

impl BasicAuth {
    /// `None` when no users are configured (no authentication).
    pub(crate) fn new(users: &BTreeMap<String, String>) -> Option<Self> {
        if users.is_empty() {
            return None;
        }
        // The highest cost of the configured hashes ($2y$NN$…), 10 if unreadable.
        let cost = users
            .values()
            .filter_map(|h| h.get(4..6).and_then(|c| c.parse::<u32>().ok()))
            .filter(|c| (4..=31).contains(c))
            .max()
            .unwrap_or(10);
        let dummy = bcrypt::hash("ipvs-herald-dummy", cost).unwrap_or_default();
        let mut salt = [0u8; 32];
        // Without randomness the cache is still correct, only its keys are predictable.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt);
        Some(BasicAuth {
            users: users.clone(),
            dummy,
            salt,
            outcomes: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(VERIFY_PERMITS)),
        })
    }

    fn cache_key(&self, user: &str, pass: &str) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(user.as_bytes());
        ctx.update(&[0]);
        ctx.update(pass.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(ctx.finish().as_ref());
        key
    }

    fn outcomes(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        match self.outcomes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether the header value grants access: from the cache, or after one bcrypt
    /// verification on a blocking thread once a slot is free.
    pub(crate) async fn check(self: &Arc<Self>, header: Option<&str>) -> Verdict {
        let Some((user, pass)) = credentials(header) else {
            return Verdict::Denied;
        };
        let key = self.cache_key(&user, &pass);
        if let Some(&ok) = self.outcomes().get(&key) {
            return if ok {
                Verdict::Allowed
            } else {
                Verdict::Denied
            };
        }
        let permit = match tokio::time::timeout(
            VERIFY_WAIT,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        {
            Ok(Ok(p)) => p,
            _ => return Verdict::Busy,
        };
        let me = Arc::clone(self);
        // The permit moves into the job: released when bcrypt is done, even if the request
        // was abandoned meanwhile, so that at most VERIFY_PERMITS computations ever run.
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // Another request may have verified the same pair while this one waited.
            if let Some(&ok) = me.outcomes().get(&key) {
                return ok;
            }
            let ok = match me.users.get(&user) {
                Some(hash) => bcrypt::verify(&pass, hash).unwrap_or(false),
                None => {
                    let _ = bcrypt::verify(&pass, &me.dummy);
                    false
                }
            };
            let mut cache = me.outcomes();
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(key, ok);
            ok
        })
        .await
        .unwrap_or(false);
        if ok {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }
}

/// `Basic base64(user:password)` → (user, password).
fn credentials(header: Option<&str>) -> Option<(String, String)> {
    use base64::Engine;
    let h = header?;
    let b64 = h
        .strip_prefix("Basic ")
        .or_else(|| h.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use base64::Engine;

    fn hdr(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[tokio::test]
    async fn basic_auth_accepts_only_the_right_password() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = BTreeMap::from([("prom".to_string(), hash)]);
        let auth = Arc::new(BasicAuth::new(&users).unwrap());
        assert_eq!(
            auth.check(Some(&hdr("prom:s3cret"))).await,
            Verdict::Allowed
        );
        // Second time from the cache.
        assert_eq!(
            auth.check(Some(&hdr("prom:s3cret"))).await,
            Verdict::Allowed
        );
        assert_eq!(auth.outcomes().len(), 1);
        assert_eq!(auth.check(Some(&hdr("prom:wrong"))).await, Verdict::Denied);
        // A wrong password is remembered as wrong, never as right.
        assert_eq!(auth.check(Some(&hdr("prom:wrong"))).await, Verdict::Denied);
        assert_eq!(
            auth.outcomes().get(&auth.cache_key("prom", "wrong")),
            Some(&false)
        );
        assert_eq!(
            auth.check(Some(&hdr("prom:s3cret "))).await,
            Verdict::Denied
        );
        assert_eq!(
            auth.check(Some(&hdr("other:s3cret"))).await,
            Verdict::Denied
        );
        assert_eq!(auth.check(Some(&hdr("nocolon"))).await, Verdict::Denied);
        assert_eq!(auth.check(Some("Basic !!!")).await, Verdict::Denied);
        assert_eq!(auth.check(Some("Bearer x")).await, Verdict::Denied);
        assert_eq!(auth.check(None).await, Verdict::Denied);
        assert!(BasicAuth::new(&BTreeMap::new()).is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verifications_past_the_bound_are_busy_not_queued() {
        // Cost 12: ~200 ms a verification, so that a few distinct wrong passwords keep the one
        // slot taken past VERIFY_WAIT.
        let hash = bcrypt::hash("s3cret", 12).unwrap();
        let users = BTreeMap::from([("prom".to_string(), hash)]);
        let auth = Arc::new(BasicAuth::new(&users).unwrap());
        let mut tasks = Vec::new();
        for i in 0..20 {
            let a = Arc::clone(&auth);
            tasks.push(tokio::spawn(async move {
                a.check(Some(&hdr(&format!("prom:wrong{i}")))).await
            }));
        }
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Verdict::Busy => busy += 1,
                Verdict::Denied => {}
                Verdict::Allowed => panic!("a wrong password was allowed"),
            }
        }
        assert!(busy >= 10, "only {busy} of 20 were turned away");
        assert!(
            auth.outcomes().len() <= 10,
            "{} bcrypt runs",
            auth.outcomes().len()
        );
    }
}
