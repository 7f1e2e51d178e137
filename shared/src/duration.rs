//! Durations in the configuration file. Every duration key of every section is written the same
//! way, as a string such as `"5s"`, `"500ms"` or `"1m 30s"` (the `humantime` syntax the
//! announcer's keys use too), and `"0s"` where zero means "no bound". These serde helpers read
//! such strings into a [`Duration`] (exact, or rounded up to whole milliseconds) or into the
//! plain seconds (`f64`) a section keeps internally; a bare number is refused with a message that
//! shows the expected form.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration string such as \"5s\", \"500ms\" or \"1m 30s\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v.trim()).map_err(|e| {
            E::custom(format!(
                "bad duration {v:?}: {e} (write e.g. \"5s\" or \"500ms\")"
            ))
        })
    }
}

/// A duration string as a [`Duration`].
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

/// A duration string as a [`Duration`] of whole milliseconds (rounded up; saturating).
pub fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration(d).map(|v| {
        let ms = v.as_nanos().div_ceil(1_000_000);
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    })
}

/// A duration string as seconds (`f64`).
pub fn secs_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    duration(d).map(|v| v.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use std::time::Duration;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::secs_f64")]
        s: f64,
        #[serde(deserialize_with = "super::millis")]
        ms: Duration,
        #[serde(default, deserialize_with = "super::duration")]
        exact: Duration,
    }

    fn parse(text: &str) -> Result<T, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn strings_are_read_in_their_unit() {
        let t = parse("s = \"1m 30s\"\nms = \"1500us\"\nexact = \"1500us\"\n").unwrap();
        assert_eq!(t.s, 90.0);
        assert_eq!(t.ms, Duration::from_millis(2), "1.5 ms rounds up to 2 ms");
        assert_eq!(t.exact, Duration::from_micros(1500));
        let t = parse("s = \"500ms\"\nms = \"0s\"\n").unwrap();
        assert_eq!(t.s, 0.5);
        assert_eq!(t.ms, Duration::ZERO);
        let t = parse("s = \"0s\"\nms = \"500000000000y\"\n").unwrap();
        assert_eq!(t.ms, Duration::from_millis(u64::MAX), "saturates");
    }

    #[test]
    fn numbers_and_garbage_are_refused_with_the_expected_form() {
        let e = parse("s = 5\nms = \"1s\"\n").unwrap_err().to_string();
        assert!(e.contains("a duration string such as \"5s\""), "{e}");
        let e = parse("s = \"5 parsecs\"\nms = \"1s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad duration \"5 parsecs\""), "{e}");
    }
}
