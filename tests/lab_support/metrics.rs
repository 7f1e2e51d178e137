//! A small parser of the Prometheus text exposition format (what `ipvs-herald run` serves), and
//! the comparison of the exporter's IPVS metrics with ipvsadm's views.

use super::compare::{Outcome, Views};
use super::ipvsadm::{ListDest, ViewService};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse the exposition text; comments and blank lines are skipped, anything else must be a
/// well-formed sample.
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(open) => {
                let close = line
                    .rfind('}')
                    .ok_or_else(|| format!("line {n}: unterminated labels: {line:?}"))?;
                if close < open {
                    return Err(format!("line {n}: malformed labels: {line:?}"));
                }
                let inner = line.get(open + 1..close).unwrap_or_default();
                (
                    line.get(..open).unwrap_or_default(),
                    parse_labels(inner).map_err(|e| format!("line {n}: {e}"))?,
                    line.get(close + 1..).unwrap_or_default(),
                )
            }
            None => {
                let (a, b) = line
                    .split_once(' ')
                    .ok_or_else(|| format!("line {n}: no value: {line:?}"))?;
                (a, BTreeMap::new(), b)
            }
        };
        let value_tok = rest
            .split_whitespace()
            .next()
            .ok_or_else(|| format!("line {n}: no value: {line:?}"))?;
        let value = match value_tok {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .map_err(|_| format!("line {n}: value {v:?} is not a number"))?,
        };
        out.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(out)
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek() == Some(&',') || chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next() != Some('"') {
            return Err(format!("label {key:?} without a quoted value"));
        }
        let mut val = String::new();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => val.push('\n'),
                    Some(o) => val.push(o),
                    None => return Err("dangling backslash".into()),
                },
                '"' => {
                    closed = true;
                    break;
                }
                o => val.push(o),
            }
        }
        if !closed {
            return Err(format!("label {key:?}: unterminated value"));
        }
        out.insert(key, val);
    }
}

/// Find the one sample `name` whose labels include every pair of `want` (IP-valued labels are
/// compared as addresses, so `2001:db8::1` matches however it is spelled).
fn find<'a>(samples: &'a [Sample], name: &str, want: &[(&str, String)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            want.iter().all(|(k, v)| match s.labels.get(*k) {
                None => false,
                Some(got) => match (got.parse::<IpAddr>(), v.parse::<IpAddr>()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => got == v,
                },
            })
        })
        .collect()
}

fn one(
    o: &mut Outcome,
    samples: &[Sample],
    what: &str,
    name: &str,
    want: &[(&str, String)],
    expect: u64,
) {
    let found = find(samples, name, want);
    match found.as_slice() {
        [s] => o.eq(format!("{what}: {name}"), expect as f64, s.value),
        [] => o.fail(format!("{what}: {name} missing from the scrape")),
        many => o.fail(format!("{what}: {name} appears {} times", many.len())),
    }
}

const COUNTERS: [&str; 5] = [
    "connections_total",
    "incoming_packets_total",
    "outgoing_packets_total",
    "incoming_bytes_total",
    "outgoing_bytes_total",
];
const RATES: [&str; 5] = [
    "estimated_connections_per_second",
    "estimated_incoming_packets_per_second",
    "estimated_outgoing_packets_per_second",
    "estimated_incoming_bytes_per_second",
    "estimated_outgoing_bytes_per_second",
];

/// Compare the exporter's IPVS metrics with ipvsadm (address services; fwmark services are not
/// in the exporter scenario).
pub fn compare(v: &Views, samples: &[Sample]) -> Outcome {
    let mut o = Outcome::default();
    one(&mut o, samples, "exporter", "ipvs_up", &[], 1);
    global_counter_checks(&mut o, samples, v);
    for (i, r) in RATES.iter().enumerate() {
        one(
            &mut o,
            samples,
            "global",
            &format!("ipvs_{r}"),
            &[],
            v.global.rates[i],
        );
    }
    for (label, val) in [
        ("tcp", v.timeouts.tcp),
        ("tcp_fin", v.timeouts.tcp_fin),
        ("udp", v.timeouts.udp),
    ] {
        one(
            &mut o,
            samples,
            "timeouts",
            "ipvs_timeout_seconds",
            &[("timeout", label.to_string())],
            u64::from(val),
        );
    }
    for ls in &v.list {
        let Some(sl) = service_checks(&mut o, samples, ls) else {
            continue;
        };
        let what = format!("service {}", ls.key);
        if let Some(n) = v
            .stats
            .iter()
            .find(|s| s.key == ls.key)
            .and_then(|s| s.info.numbers)
        {
            for (i, m) in COUNTERS.iter().enumerate() {
                one(
                    &mut o,
                    samples,
                    &what,
                    &format!("ipvs_service_{m}"),
                    &sl,
                    n[i],
                );
            }
        }
        if let Some(n) = v
            .rate
            .iter()
            .find(|s| s.key == ls.key)
            .and_then(|s| s.info.numbers)
        {
            for (i, m) in RATES.iter().enumerate() {
                one(
                    &mut o,
                    samples,
                    &what,
                    &format!("ipvs_service_{m}"),
                    &sl,
                    n[i],
                );
            }
        }
        for d in &ls.dests {
            let dl = dest_checks(&mut o, samples, ls, &sl, d);
            let what = format!("service {} dest {}", ls.key, d.addr);
            if let Some(t) = v
                .thresholds
                .iter()
                .find(|s| s.key == ls.key)
                .and_then(|s| s.dests.iter().find(|x| x.addr == d.addr))
            {
                one(
                    &mut o,
                    samples,
                    &what,
                    "ipvs_destination_upper_threshold_connections",
                    &dl,
                    u64::from(t.upper),
                );
                one(
                    &mut o,
                    samples,
                    &what,
                    "ipvs_destination_lower_threshold_connections",
                    &dl,
                    u64::from(t.lower),
                );
            }
            if let Some(p) = v
                .pconn
                .iter()
                .find(|s| s.key == ls.key)
                .and_then(|s| s.dests.iter().find(|x| x.addr == d.addr))
            {
                one(
                    &mut o,
                    samples,
                    &what,
                    "ipvs_destination_persistent_connections",
                    &dl,
                    u64::from(p.persistent),
                );
            }
            if let Some(n) = v
                .stats
                .iter()
                .find(|s| s.key == ls.key)
                .and_then(|s| s.dests.iter().find(|x| x.addr == d.addr))
            {
                for (i, m) in COUNTERS.iter().enumerate() {
                    one(
                        &mut o,
                        samples,
                        &what,
                        &format!("ipvs_destination_{m}"),
                        &dl,
                        n.numbers[i],
                    );
                }
            }
            if let Some(n) = v
                .rate
                .iter()
                .find(|s| s.key == ls.key)
                .and_then(|s| s.dests.iter().find(|x| x.addr == d.addr))
            {
                for (i, m) in RATES.iter().enumerate() {
                    one(
                        &mut o,
                        samples,
                        &what,
                        &format!("ipvs_destination_{m}"),
                        &dl,
                        n.numbers[i],
                    );
                }
            }
        }
    }
    o
}

/// Compare a scrape of a daemon that read IPVS through procfs (the netlink → procfs fallback)
/// with ipvsadm: what `/proc/net/ip_vs` and `/proc/net/ip_vs_stats` carry (services and their
/// schedulers, destinations with forwarding method, weight, active and inactive connections,
/// the global counters) and that the daemon says it read procfs. Per-service counters, rates,
/// thresholds and timeouts are not in procfs.
pub fn compare_procfs(v: &Views, samples: &[Sample]) -> Outcome {
    let mut o = Outcome::default();
    one(&mut o, samples, "exporter", "ipvs_up", &[], 1);
    one(
        &mut o,
        samples,
        "exporter",
        "ipvs_reader_info",
        &[("source", "procfs".to_string())],
        1,
    );
    global_counter_checks(&mut o, samples, v);
    for ls in &v.list {
        if let Some(sl) = service_checks(&mut o, samples, ls) {
            for d in &ls.dests {
                dest_checks(&mut o, samples, ls, &sl, d);
            }
        }
    }
    o
}

type Labels = Vec<(&'static str, String)>;

/// The global counters (`/proc/net/ip_vs_stats`, which netlink and procfs readers both serve).
fn global_counter_checks(o: &mut Outcome, samples: &[Sample], v: &Views) {
    for (i, m) in COUNTERS.iter().enumerate() {
        one(
            o,
            samples,
            "global",
            &format!("ipvs_{m}"),
            &[],
            v.global.counters[i],
        );
    }
}

/// `ipvs_service_info` (with the scheduler) of an address service; its labels for the
/// service's other series, or `None` (counted as a failure) for a fwmark service.
fn service_checks(
    o: &mut Outcome,
    samples: &[Sample],
    ls: &ViewService<ListDest>,
) -> Option<Labels> {
    let herald_shared::model::ServiceKey::Addr {
        protocol,
        address,
        port,
    } = ls.key
    else {
        o.fail(format!(
            "service {}: fwmark services are not compared",
            ls.key
        ));
        return None;
    };
    let sl = vec![
        ("protocol", protocol.as_str().to_string()),
        ("address", address.to_string()),
        ("port", port.to_string()),
    ];
    let mut info = sl.clone();
    info.push(("scheduler", ls.info.scheduler.clone()));
    one(
        o,
        samples,
        &format!("service {}", ls.key),
        "ipvs_service_info",
        &info,
        1,
    );
    Some(sl)
}

/// What `ipvsadm -Ln` (and procfs) shows of a destination: `ipvs_destination_info` (with the
/// forwarding method), weight, active and inactive connections. Returns its labels.
fn dest_checks(
    o: &mut Outcome,
    samples: &[Sample],
    ls: &ViewService<ListDest>,
    sl: &Labels,
    d: &ListDest,
) -> Labels {
    let mut dl = sl.clone();
    dl.push(("dest_address", d.addr.ip().to_string()));
    dl.push(("dest_port", d.addr.port().to_string()));
    let what = format!("service {} dest {}", ls.key, d.addr);
    let mut di = dl.clone();
    di.push(("forward", d.forward.to_lowercase()));
    one(o, samples, &what, "ipvs_destination_info", &di, 1);
    for (name, want) in [
        ("ipvs_destination_weight", d.weight.max(0) as u64),
        ("ipvs_destination_active_connections", u64::from(d.active)),
        (
            "ipvs_destination_inactive_connections",
            u64::from(d.inactive),
        ),
    ] {
        one(o, samples, &what, name, &dl, want);
    }
    dl
}
