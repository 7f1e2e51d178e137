//! Durations in the configuration file. Every duration key of every section is written the same
//! way, as a string such as `"5s"`, `"500ms"` or `"1m 30s"` (the `humantime` syntax the
//! announcer's keys use too), and `"0s"` where zero means "no bound". These serde helpers read
//! such strings into the plain seconds (`f64`) or milliseconds (`u64`) a section keeps
//! internally; a bare number is refused with a message that shows the expected form.

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

/// A duration string as seconds (`f64`).
pub fn secs_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    duration(d).map(|v| v.as_secs_f64())
}

/// A duration string as whole milliseconds (`u64`, rounded up; saturating).
pub fn millis_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    duration(d).map(|v| {
        let ms = v.as_nanos().div_ceil(1_000_000);
        u64::try_from(ms).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::secs_f64")]
        s: f64,
        #[serde(deserialize_with = "super::millis_u64")]
        ms: u64,
    }

    fn parse(text: &str) -> Result<T, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn strings_are_read_in_their_unit() {
        let t = parse("s = \"1m 30s\"\nms = \"1500us\"\n").unwrap();
        assert_eq!(t.s, 90.0);
        assert_eq!(t.ms, 2, "1.5 ms rounds up to 2 ms");
        let t = parse("s = \"500ms\"\nms = \"0s\"\n").unwrap();
        assert_eq!(t.s, 0.5);
        assert_eq!(t.ms, 0);
    }

    #[test]
    fn numbers_and_garbage_are_refused_with_the_expected_form() {
        let e = parse("s = 5\nms = \"1s\"\n").unwrap_err();
        assert!(e.contains("a duration string such as \"5s\""), "{e}");
        let e = parse("s = \"5 parsecs\"\nms = \"1s\"\n").unwrap_err();
        assert!(e.contains("bad duration \"5 parsecs\""), "{e}");
    }
}
