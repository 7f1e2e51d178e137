//! The BGP timer keys of the configuration (`hold_time`, `keepalive`, `connect_retry.min` /
//! `.max`, `graceful_restart.restart_time`): each is a bare number of seconds, as it has always
//! been, or a duration string such as `"90s"` or `"1m 30s"`, the form every other duration of
//! the file takes. Hold time and restart time travel in whole seconds in the OPEN, and the
//! keepalive interval is counted in them, so a string that is not whole seconds is refused
//! there with a message naming the key; the backoff delays take fractions (`"500ms"`). Range
//! checks beyond the field's type stay in [`super::config::BgpConfig::validate`], the same for
//! both forms.

use humantime_serde::re::humantime;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use std::fmt;
use std::time::Duration;

/// A timer key as written: a number, or a parsed duration string with its text.
enum Written {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String, Duration),
}

struct WrittenVisitor {
    key: &'static str,
    example: &'static str,
}

impl Visitor<'_> for WrittenVisitor {
    type Value = Written;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a number of seconds or a duration string such as {:?}",
            self.example
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Written, E> {
        Ok(Written::Unsigned(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Written, E> {
        Ok(Written::Signed(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Written, E> {
        Ok(Written::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Written, E> {
        humantime::parse_duration(v.trim())
            .map(|d| Written::Text(v.to_string(), d))
            .map_err(|e| {
                E::custom(format!(
                    "{}: bad duration {v:?}: {e} (write a number of seconds or e.g. {:?})",
                    self.key, self.example
                ))
            })
    }
}

fn written<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    example: &'static str,
) -> Result<Written, D::Error> {
    d.deserialize_any(WrittenVisitor { key, example })
}

/// Whole seconds that fit a `u16`; `why` says why fractions cannot be kept.
fn whole_u16<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    example: &'static str,
    why: &'static str,
) -> Result<u16, D::Error> {
    // Numbers are refused exactly as a plain `u16` field refuses them.
    let expected = &"u16";
    match written(d, key, example)? {
        Written::Unsigned(v) => u16::try_from(v)
            .map_err(|_| de::Error::invalid_value(Unexpected::Unsigned(v), expected)),
        Written::Signed(v) => {
            u16::try_from(v).map_err(|_| de::Error::invalid_value(Unexpected::Signed(v), expected))
        }
        Written::Float(v) => Err(de::Error::invalid_type(Unexpected::Float(v), expected)),
        Written::Text(text, dur) => {
            if dur.subsec_nanos() != 0 {
                return Err(de::Error::custom(format!(
                    "{key}: {text:?} is not a whole number of seconds ({why})"
                )));
            }
            u16::try_from(dur.as_secs()).map_err(|_| {
                de::Error::custom(format!("{key}: {text:?} is more than {} seconds", u16::MAX))
            })
        }
    }
}

/// Seconds, fractions allowed.
fn secs_f64<'de, D: Deserializer<'de>>(
    d: D,
    key: &'static str,
    example: &'static str,
) -> Result<f64, D::Error> {
    Ok(match written(d, key, example)? {
        Written::Unsigned(v) => v as f64,
        Written::Signed(v) => v as f64,
        Written::Float(v) => v,
        Written::Text(_, dur) => dur.as_secs_f64(),
    })
}

/// `hold_time`: whole seconds (the OPEN's field).
pub(crate) fn hold_time<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    whole_u16(d, "hold_time", "90s", "the OPEN carries whole seconds")
}

/// `keepalive`: whole seconds (the negotiated timers are counted in them).
pub(crate) fn keepalive<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    whole_u16(d, "keepalive", "30s", "BGP timers count whole seconds").map(Some)
}

/// `graceful_restart.restart_time`: whole seconds (the capability's field).
pub(crate) fn restart_time<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    whole_u16(
        d,
        "graceful_restart.restart_time",
        "2m",
        "the graceful restart capability carries whole seconds",
    )
}

/// `connect_retry.min`: seconds, fractions allowed.
pub(crate) fn backoff_min<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    secs_f64(d, "connect_retry.min", "500ms")
}

/// `connect_retry.max`: seconds, fractions allowed.
pub(crate) fn backoff_max<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    secs_f64(d, "connect_retry.max", "1m")
}
