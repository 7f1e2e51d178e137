//! HTTP basic authentication against the web configuration's bcrypt hashes, with bcrypt's cost
//! bounded: unauthenticated clients cannot make the server spend more than one core on it.
//!
//! A bcrypt verification costs tens of milliseconds of CPU by design. Three things keep that
//! from being a lever for anyone who can reach the port:
//! - outcomes are cached (keyed by a salted SHA-256 of `user \0 password`, bounded in size), so a
//!   scraper with the right password pays bcrypt once, and a client repeating a wrong password
//!   pays it once too. Right and wrong passwords are kept apart: a flood of distinct wrong
//!   passwords fills and empties only its own table, so it can never push the scraper's
//!   remembered login out and make it queue behind the flood for a verification slot;
//! - at most [`VERIFY_PERMITS`] verifications run at a time, on blocking threads;
//! - a request that cannot start its verification within [`VERIFY_WAIT`] is answered
//!   429 Too Many Requests instead of queueing without bound.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// bcrypt verifications running at once (exporter-toolkit runs one at a time).
pub const VERIFY_PERMITS: usize = 1;
/// How long a request waits for a verification slot before it is answered 429.
pub const VERIFY_WAIT: Duration = Duration::from_millis(500);
/// Remembered wrong passwords; that table is emptied when full (a new wrong password then costs
/// one bcrypt again: never a wrong answer).
const DENIED_MAX: usize = 1024;
/// Remembered right passwords, per configured user. Only someone who knows a password can add
/// one (bcrypt matches a password's first 72 bytes, so a few variants can), and a full table is
/// emptied the same way.
const GRANTED_PER_USER: usize = 4;

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
    outcomes: Mutex<Outcomes>,
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
            outcomes: Mutex::new(Outcomes::default()),
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

    fn outcomes(&self) -> std::sync::MutexGuard<'_, Outcomes> {
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
        if let Some(ok) = self.outcomes().get(&key) {
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
            if let Some(ok) = me.outcomes().get(&key) {
                return ok;
            }
            let ok = match me.users.get(&user) {
                Some(hash) => bcrypt::verify(&pass, hash).unwrap_or(false),
                None => {
                    let _ = bcrypt::verify(&pass, &me.dummy);
                    false
                }
            };
            let granted_max = GRANTED_PER_USER * me.users.len();
            me.outcomes().insert(key, ok, granted_max);
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

/// Remembered verdicts by cache key, right and wrong apart (see the module documentation).
#[derive(Debug, Default)]
struct Outcomes {
    granted: HashSet<[u8; 32]>,
    denied: HashSet<[u8; 32]>,
}

impl Outcomes {
    fn get(&self, key: &[u8; 32]) -> Option<bool> {
        if self.granted.contains(key) {
            Some(true)
        } else if self.denied.contains(key) {
            Some(false)
        } else {
            None
        }
    }

    fn insert(&mut self, key: [u8; 32], ok: bool, granted_max: usize) {
        let (table, max) = if ok {
            (&mut self.granted, granted_max.max(1))
        } else {
            (&mut self.denied, DENIED_MAX)
        };
        if table.len() >= max {
            table.clear();
        }
        table.insert(key);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.granted.len() + self.denied.len()
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

    /// One user `prom` with the password `s3cret`, at bcrypt's lowest cost.
    fn prom_s3cret() -> Arc<BasicAuth> {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let users = BTreeMap::from([("prom".to_string(), hash)]);
        Arc::new(BasicAuth::new(&users).unwrap())
    }

    #[tokio::test]
    async fn basic_auth_accepts_only_the_right_password() {
        let auth = prom_s3cret();
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
            Some(false)
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

    #[tokio::test]
    async fn a_flood_of_wrong_passwords_never_evicts_a_remembered_login() {
        let auth = prom_s3cret();
        assert_eq!(
            auth.check(Some(&hdr("prom:s3cret"))).await,
            Verdict::Allowed
        );
        let right = auth.cache_key("prom", "s3cret");
        // More distinct wrong passwords than the table holds: it empties at least once.
        for i in 0..(DENIED_MAX + 10) {
            let key = auth.cache_key("prom", &format!("wrong{i}"));
            auth.outcomes().insert(key, false, GRANTED_PER_USER);
        }
        assert!(
            auth.outcomes().denied.len() < DENIED_MAX,
            "the table never emptied"
        );
        assert_eq!(auth.outcomes().get(&right), Some(true));
        // Still answered from the cache: with the only slot held, a bcrypt run would be Busy.
        let _held = Arc::clone(&auth.permits).acquire_owned().await.unwrap();
        assert_eq!(
            auth.check(Some(&hdr("prom:s3cret"))).await,
            Verdict::Allowed
        );
        assert_eq!(
            auth.check(Some(&hdr("prom:new-wrong"))).await,
            Verdict::Busy
        );
    }

    #[test]
    fn right_passwords_are_bounded_per_user() {
        let mut o = Outcomes::default();
        for i in 0..10u8 {
            o.insert([i; 32], true, 2 * GRANTED_PER_USER);
        }
        assert!(o.granted.len() <= 2 * GRANTED_PER_USER);
        assert!(o.denied.is_empty());
        assert_eq!(o.get(&[9; 32]), Some(true));
    }
}
