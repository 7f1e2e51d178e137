//! One common shape for a route as a router received it (`RouteView`), the attributes
//! a test announces (`Attrs`), and the parsers that turn each router's RIB dump into
//! `RouteView`s: BIRD's `show route all` text, FRR's `show bgp … json` and GoBGP's
//! `gobgp global rib -j`. Parsers reject malformed input with an error naming the
//! offending field instead of guessing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use super::{err, TResult};

/// BGP ORIGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

impl Origin {
    fn from_name(s: &str) -> TResult<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "igp" | "i" => Ok(Self::Igp),
            "egp" | "e" => Ok(Self::Egp),
            "incomplete" | "?" => Ok(Self::Incomplete),
            other => err(format!("unknown ORIGIN value {other:?}")),
        }
    }

    fn from_code(c: u64) -> TResult<Self> {
        match c {
            0 => Ok(Self::Igp),
            1 => Ok(Self::Egp),
            2 => Ok(Self::Incomplete),
            other => err(format!("ORIGIN code {other} out of range 0..=2")),
        }
    }
}

/// Attributes a test asks the announcing side to attach to a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    pub origin: Origin,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<(u32, u32, u32)>,
    /// Extra copies of the local AS prepended to AS_PATH.
    pub as_path_prepend: u8,
}

impl Default for Attrs {
    fn default() -> Self {
        Self {
            origin: Origin::Igp,
            med: None,
            local_pref: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            as_path_prepend: 0,
        }
    }
}

/// Standard community from its two halves.
pub fn community(asn: u16, value: u16) -> u32 {
    (u32::from(asn) << 16) | u32::from(value)
}

/// A route as read back from a router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteView {
    pub prefix: IpNet,
    pub origin: Origin,
    pub as_path: Vec<u32>,
    /// Next hops as the router shows them (IPv6 may add a link-local second hop).
    pub next_hops: Vec<IpAddr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    /// Sorted.
    pub communities: Vec<u32>,
    /// Sorted.
    pub large_communities: Vec<(u32, u32, u32)>,
    /// Route target / route origin extended communities as `rt:ADMIN:VALUE` / `ro:ADMIN:VALUE`
    /// (ADMIN a decimal AS number or an IPv4 address), sorted. Other kinds keep the router's
    /// own name for them.
    pub ext_communities: Vec<String>,
}

/// Routes by prefix.
pub type Rib = BTreeMap<IpNet, RouteView>;

fn parse_prefix(s: &str) -> TResult<IpNet> {
    s.parse::<IpNet>()
        .map_err(|e| format!("bad prefix {s:?}: {e}").into())
}

fn parse_u32(what: &str, s: &str) -> TResult<u32> {
    s.trim()
        .parse::<u32>()
        .map_err(|e| format!("bad {what} {s:?}: {e}").into())
}

fn parse_std_community(s: &str) -> TResult<u32> {
    let (a, v) = s
        .split_once([':', ','])
        .ok_or_else(|| format!("community {s:?} is not ASN:VALUE"))?;
    let a: u16 = a
        .trim()
        .parse()
        .map_err(|e| format!("community {s:?}: bad ASN half: {e}"))?;
    let v: u16 = v
        .trim()
        .parse()
        .map_err(|e| format!("community {s:?}: bad value half: {e}"))?;
    Ok(community(a, v))
}

fn parse_large_community(s: &str) -> TResult<(u32, u32, u32)> {
    let parts: Vec<&str> = s.split([':', ',']).map(str::trim).collect();
    match parts.as_slice() {
        [a, b, c] => Ok((
            parse_u32("large community ASN", a)?,
            parse_u32("large community data1", b)?,
            parse_u32("large community data2", c)?,
        )),
        _ => err(format!("large community {s:?} is not A:B:C")),
    }
}

// ---------------------------------------------------------------- BIRD

/// One prefix block of BIRD output being collected: prefix, BGP attributes (under BIRD 2's
/// names), and whether the route's `Type:` (BIRD 2) or `source:` (BIRD 3) line says BGP.
type BirdBlock = (IpNet, Vec<(String, String)>, bool);

/// Parses `birdc show route all` output (BGP routes only; others are ignored).
pub fn parse_bird(text: &str) -> TResult<Rib> {
    let mut rib = Rib::new();
    let mut cur: Option<BirdBlock> = None;
    let mut finish = |cur: Option<BirdBlock>| -> TResult<()> {
        if let Some((prefix, attrs, is_bgp)) = cur {
            if is_bgp {
                let r = bird_route(prefix, &attrs)?;
                rib.entry(prefix).or_insert(r);
            }
        }
        Ok(())
    };
    for line in text.lines() {
        if line.starts_with("BIRD ") || line.starts_with("Table ") || line.trim().is_empty() {
            continue;
        }
        let starts_blank = line.starts_with(' ') || line.starts_with('\t');
        let trimmed = line.trim();
        if !starts_blank {
            // New prefix header: "198.51.100.0/24   unicast [proto …] * (100) [AS65000i]"
            finish(cur.take())?;
            let first = trimmed.split_whitespace().next().unwrap_or_default();
            cur = Some((parse_prefix(first)?, Vec::new(), false));
            continue;
        }
        if trimmed.starts_with("unicast [") || trimmed.starts_with("blackhole [") {
            // A second path for the same prefix: keep only the first (best) path.
            finish(cur.take())?;
            continue;
        }
        let Some((_, attrs, is_bgp)) = cur.as_mut() else {
            continue;
        };
        if let Some(t) = trimmed
            .strip_prefix("Type:")
            .or_else(|| trimmed.strip_prefix("source:"))
        {
            *is_bgp = t.trim().starts_with("BGP");
        } else if let Some(rest) = trimmed.strip_prefix("BGP.") {
            let (k, v) = rest
                .split_once(':')
                .ok_or_else(|| format!("BIRD attribute line without ':': {trimmed:?}"))?;
            attrs.push((k.trim().to_owned(), v.trim().to_owned()));
        } else if let Some(rest) = trimmed.strip_prefix("bgp_") {
            // BIRD 3 names attributes as its filter language does (`bgp_path`, not
            // `BGP.as_path`); they are kept under BIRD 2's names.
            let (k, v) = rest
                .split_once(':')
                .ok_or_else(|| format!("BIRD attribute line without ':': {trimmed:?}"))?;
            let k = match k.trim() {
                "path" => "as_path",
                other => other,
            };
            attrs.push((k.to_owned(), v.trim().to_owned()));
        }
    }
    finish(cur.take())?;
    Ok(rib)
}

fn bird_route(prefix: IpNet, attrs: &[(String, String)]) -> TResult<RouteView> {
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let origin = Origin::from_name(
        get("origin").ok_or_else(|| format!("{prefix}: BIRD shows no BGP.origin"))?,
    )?;
    let as_path = get("as_path")
        .unwrap_or_default()
        .split_whitespace()
        .map(|a| parse_u32("AS number", a.trim_matches(|c| c == '{' || c == '}')))
        .collect::<TResult<Vec<u32>>>()?;
    let next_hops = get("next_hop")
        .ok_or_else(|| format!("{prefix}: BIRD shows no BGP.next_hop"))?
        .split_whitespace()
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|e| format!("{prefix}: bad next hop {a:?}: {e}").into())
        })
        .collect::<TResult<Vec<IpAddr>>>()?;
    let med = get("med").map(|v| parse_u32("MED", v)).transpose()?;
    let local_pref = get("local_pref")
        .map(|v| parse_u32("LOCAL_PREF", v))
        .transpose()?;
    let mut communities = bird_tuples(get("community").unwrap_or_default())?
        .iter()
        .map(|t| parse_std_community(t))
        .collect::<TResult<Vec<u32>>>()?;
    communities.sort_unstable();
    let mut large_communities = bird_tuples(get("large_community").unwrap_or_default())?
        .iter()
        .map(|t| parse_large_community(t))
        .collect::<TResult<Vec<_>>>()?;
    large_communities.sort_unstable();
    let mut ext_communities = bird_tuples(get("ext_community").unwrap_or_default())?
        .iter()
        .map(|t| {
            let parts: Vec<&str> = t.split(',').map(str::trim).collect();
            match parts.as_slice() {
                [kind, admin, value] => Ok(format!("{kind}:{admin}:{value}")),
                _ => err(format!(
                    "{prefix}: BIRD extended community ({t}) is not (kind, admin, value)"
                )),
            }
        })
        .collect::<TResult<Vec<String>>>()?;
    ext_communities.sort_unstable();
    Ok(RouteView {
        prefix,
        origin,
        as_path,
        next_hops,
        med,
        local_pref,
        communities,
        large_communities,
        ext_communities,
    })
}

/// Splits "(1,2) (3, 4, 5)" into ["1,2", "3, 4, 5"].
fn bird_tuples(s: &str) -> TResult<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let open = rest
            .strip_prefix('(')
            .ok_or_else(|| format!("community list {s:?}: expected '('"))?;
        let (inner, after) = open
            .split_once(')')
            .ok_or_else(|| format!("community list {s:?}: unterminated '('"))?;
        out.push(inner.to_owned());
        rest = after.trim_start();
    }
    Ok(out)
}

// ---------------------------------------------------------------- JSON helpers

fn as_u32(v: &Value, what: &str) -> TResult<u32> {
    v.as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{what}: expected a u32, got {v}").into())
}

fn as_str<'a>(v: &'a Value, what: &str) -> TResult<&'a str> {
    v.as_str()
        .ok_or_else(|| format!("{what}: expected a string, got {v}").into())
}

fn parse_json(text: &str, what: &str) -> TResult<Value> {
    serde_json::from_str(text).map_err(|e| format!("{what} is not valid JSON: {e}").into())
}

// ---------------------------------------------------------------- FRR

/// Parses FRR `show bgp <afi> unicast <prefix> json` (detail of one prefix); `None`
/// when FRR has no path for it.
pub fn parse_frr_prefix(text: &str) -> TResult<Option<RouteView>> {
    let v = parse_json(text, "FRR prefix detail")?;
    let Some(paths) = v.get("paths").and_then(Value::as_array) else {
        return Ok(None);
    };
    let Some(p) = paths.first() else {
        return Ok(None);
    };
    let prefix = parse_prefix(as_str(
        v.get("prefix").ok_or("FRR detail without \"prefix\"")?,
        "FRR prefix",
    )?)?;
    let origin = Origin::from_name(as_str(
        p.get("origin").ok_or("FRR path without \"origin\"")?,
        "FRR origin",
    )?)?;
    let mut as_path = Vec::new();
    if let Some(segs) = p
        .get("aspath")
        .and_then(|a| a.get("segments"))
        .and_then(Value::as_array)
    {
        for s in segs {
            for a in s
                .get("list")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                as_path.push(as_u32(a, "FRR AS number")?);
            }
        }
    }
    let mut next_hops = Vec::new();
    for nh in p
        .get("nexthops")
        .and_then(Value::as_array)
        .ok_or("FRR path without \"nexthops\"")?
    {
        let ip = as_str(nh.get("ip").ok_or("FRR nexthop without ip")?, "FRR nexthop")?;
        next_hops.push(
            ip.parse::<IpAddr>()
                .map_err(|e| format!("FRR next hop {ip:?}: {e}"))?,
        );
    }
    let med = p
        .get("metric")
        .map(|m| as_u32(m, "FRR metric"))
        .transpose()?;
    let local_pref = p
        .get("locPrf")
        .map(|m| as_u32(m, "FRR locPrf"))
        .transpose()?;
    let mut communities = Vec::new();
    if let Some(list) = p
        .get("community")
        .and_then(|c| c.get("list"))
        .and_then(Value::as_array)
    {
        for c in list {
            communities.push(parse_std_community(as_str(c, "FRR community")?)?);
        }
    }
    communities.sort_unstable();
    let mut large_communities = Vec::new();
    if let Some(list) = p
        .get("largeCommunity")
        .and_then(|c| c.get("list"))
        .and_then(Value::as_array)
    {
        for c in list {
            large_communities.push(parse_large_community(as_str(c, "FRR large community")?)?);
        }
    }
    large_communities.sort_unstable();
    let mut ext_communities = Vec::new();
    if let Some(text) = p.get("extendedCommunity").and_then(|c| c.get("string")) {
        for c in as_str(text, "FRR extendedCommunity string")?.split_whitespace() {
            ext_communities.push(frr_ext_community(c)?);
        }
    }
    ext_communities.sort_unstable();
    Ok(Some(RouteView {
        prefix,
        origin,
        as_path,
        next_hops,
        med,
        local_pref,
        communities,
        large_communities,
        ext_communities,
    }))
}

/// FRR's `RT:65000:100` / `SoO:192.0.2.1:7` to `rt:…` / `ro:…`.
fn frr_ext_community(c: &str) -> TResult<String> {
    let (kind, rest) = c
        .split_once(':')
        .ok_or_else(|| format!("FRR extended community {c:?} is not KIND:ADMIN:VALUE"))?;
    let kind = match kind {
        "RT" => "rt",
        "SoO" => "ro",
        other => {
            return err(format!(
                "FRR extended community {c:?}: unknown kind {other:?}"
            ))
        }
    };
    match rest.split(':').collect::<Vec<_>>().as_slice() {
        [admin, value] => Ok(format!("{kind}:{admin}:{value}")),
        _ => err(format!(
            "FRR extended community {c:?} is not KIND:ADMIN:VALUE"
        )),
    }
}

/// Prefixes in FRR `show bgp <afi> unicast json` (the table summary).
pub fn parse_frr_table_prefixes(text: &str) -> TResult<Vec<IpNet>> {
    let v = parse_json(text, "FRR table")?;
    let Some(routes) = v.get("routes").and_then(Value::as_object) else {
        return err("FRR table JSON has no \"routes\" object");
    };
    routes.keys().map(|k| parse_prefix(k)).collect()
}

// ---------------------------------------------------------------- GoBGP

/// Parses `gobgp global rib -a <afi> -j` (best path per prefix).
pub fn parse_gobgp(text: &str) -> TResult<Rib> {
    let mut rib = Rib::new();
    let t = text.trim();
    if t.is_empty() || t == "null" {
        return Ok(rib);
    }
    let v = parse_json(t, "gobgp rib")?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("gobgp rib JSON is not an object: {t:.200}"))?;
    for (k, paths) in obj {
        let prefix = parse_prefix(k)?;
        let paths = paths
            .as_array()
            .ok_or_else(|| format!("gobgp rib {k}: paths not an array"))?;
        let best = paths
            .iter()
            .find(|p| p.get("best").and_then(Value::as_bool) == Some(true))
            .or_else(|| paths.first());
        if let Some(p) = best {
            rib.insert(prefix, gobgp_path(prefix, p)?);
        }
    }
    Ok(rib)
}

fn gobgp_path(prefix: IpNet, p: &Value) -> TResult<RouteView> {
    let attrs = p
        .get("attrs")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("gobgp {prefix}: no attrs array"))?;
    let mut origin = None;
    let mut as_path = Vec::new();
    let mut next_hops = Vec::new();
    let mut med = None;
    let mut local_pref = None;
    let mut communities = Vec::new();
    let mut large_communities = Vec::new();
    let mut ext_communities = Vec::new();
    for a in attrs {
        let ty = a
            .get("type")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("gobgp {prefix}: attribute without numeric type: {a}"))?;
        match ty {
            1 => {
                origin = Some(Origin::from_code(
                    a.get("value")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| format!("gobgp {prefix}: ORIGIN without value"))?,
                )?)
            }
            2 => {
                for seg in a
                    .get("as_paths")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for asn in seg
                        .get("asns")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        as_path.push(as_u32(asn, "gobgp AS number")?);
                    }
                }
            }
            3 => {
                let nh = as_str(
                    a.get("nexthop").ok_or("gobgp NEXT_HOP without nexthop")?,
                    "gobgp nexthop",
                )?;
                next_hops.push(
                    nh.parse::<IpAddr>()
                        .map_err(|e| format!("gobgp next hop {nh:?}: {e}"))?,
                );
            }
            4 => {
                med = Some(as_u32(
                    a.get("metric").ok_or("gobgp MED without metric")?,
                    "gobgp MED",
                )?)
            }
            5 => {
                local_pref = Some(as_u32(
                    a.get("value").ok_or("gobgp LOCAL_PREF without value")?,
                    "gobgp LOCAL_PREF",
                )?)
            }
            8 => {
                for c in a
                    .get("communities")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    communities.push(as_u32(c, "gobgp community")?);
                }
            }
            14 => {
                for nh in a
                    .get("nexthop")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let s = as_str(nh, "gobgp MP_REACH nexthop")?;
                    next_hops.push(
                        s.parse::<IpAddr>()
                            .map_err(|e| format!("gobgp MP next hop {s:?}: {e}"))?,
                    );
                }
                if let Some(s) = a.get("nexthop").and_then(Value::as_str) {
                    next_hops.push(
                        s.parse::<IpAddr>()
                            .map_err(|e| format!("gobgp MP next hop {s:?}: {e}"))?,
                    );
                }
            }
            16 => {
                for c in a
                    .get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    ext_communities.push(gobgp_ext_community(prefix, c)?);
                }
            }
            32 => {
                for c in a
                    .get("value")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    large_communities.push((
                        as_u32(
                            c.get("ASN").ok_or("gobgp large community without ASN")?,
                            "ASN",
                        )?,
                        as_u32(
                            c.get("LocalData1")
                                .ok_or("gobgp large community without LocalData1")?,
                            "LocalData1",
                        )?,
                        as_u32(
                            c.get("LocalData2")
                                .ok_or("gobgp large community without LocalData2")?,
                            "LocalData2",
                        )?,
                    ));
                }
            }
            _ => {}
        }
    }
    communities.sort_unstable();
    large_communities.sort_unstable();
    ext_communities.sort_unstable();
    Ok(RouteView {
        prefix,
        origin: origin.ok_or_else(|| format!("gobgp {prefix}: no ORIGIN attribute"))?,
        as_path,
        next_hops,
        med,
        local_pref,
        communities,
        large_communities,
        ext_communities,
    })
}

/// One GoBGP extended community (`{"type":T,"subtype":S,"value":"ADMIN:VALUE"}`, a four-octet
/// AS printed as `HIGH.LOW`) to `rt:…` / `ro:…`. GoBGP reports the wire type, so this also
/// checks that the form on the wire is the one the administrator implies: type 0 for an AS up
/// to 65535, 1 for an IPv4 address, 2 for a larger AS (RFC 4360, RFC 5668).
fn gobgp_ext_community(prefix: IpNet, c: &Value) -> TResult<String> {
    let num = |k: &str| {
        c.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("gobgp {prefix}: extended community without numeric {k}: {c}"))
    };
    let (ty, sub) = (num("type")?, num("subtype")?);
    let value = as_str(
        c.get("value")
            .ok_or_else(|| format!("gobgp {prefix}: extended community without value: {c}"))?,
        "gobgp extended community value",
    )?;
    let kind = match sub {
        2 => "rt",
        3 => "ro",
        _ => return Ok(format!("gobgp-{ty}-{sub}:{value}")),
    };
    let (admin, local) = value
        .rsplit_once(':')
        .ok_or_else(|| format!("gobgp {prefix}: extended community value {value:?}"))?;
    let (admin, implied) = if let Ok(a) = admin.parse::<std::net::Ipv4Addr>() {
        (a.to_string(), 1)
    } else if let Some((hi, lo)) = admin.split_once('.') {
        let asn = u64::from(parse_u32("AS high half", hi)?) * 65536
            + u64::from(parse_u32("AS low half", lo)?);
        (asn.to_string(), if asn > 65535 { 2 } else { 0 })
    } else {
        let asn = parse_u32("AS number", admin)?;
        (asn.to_string(), if asn > 65535 { 2 } else { 0 })
    };
    if ty != implied {
        return err(format!(
            "gobgp {prefix}: extended community {value:?} came with type {ty}, but its administrator \
             implies type {implied}"
        ));
    }
    Ok(format!("{kind}:{admin}:{local}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bird_sample() {
        let text = "BIRD 2.0.12 ready.\nTable master4:\n198.51.100.0/24      unicast [up 05:19:17.136] * (100) [AS65000i]\n\tvia 192.0.2.1 on vb\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.as_path: 65000 65000 65000\n\tBGP.next_hop: 192.0.2.1\n\tBGP.med: 50\n\tBGP.local_pref: 100\n\tBGP.community: (65000,100)\n\tBGP.large_community: (65000, 1, 2)\n";
        let rib = parse_bird(text).unwrap();
        let r = rib.values().next().unwrap();
        assert_eq!(r.as_path, vec![65000, 65000, 65000]);
        assert_eq!(r.large_communities, vec![(65000, 1, 2)]);
        assert_eq!(r.communities, vec![community(65000, 100)]);
        assert!(parse_bird("10.0.0.0/8 unicast\n\tType: BGP univ\n\tBGP.origin: weird\n").is_err());
    }

    /// BIRD 3.1's layout (trixie's `bird3`): lower-case `source:` instead of `Type:`, and
    /// attributes named `bgp_*` as in filters. Captured from BIRD 3.1.8 (the `bgp_med` and
    /// `bgp_ext_community` lines added in the format BIRD 2 uses for their values).
    #[test]
    fn bird3_sample() {
        let text = "BIRD 3.1.8 ready.\nTable master4:\n198.51.100.0/24      unicast [spk4 18:39:38.808] * (100) [AS65000i]\n\tvia 192.0.2.1 on eth0\n\tpreference: 100\n\tigp_metric: 0\n\tfrom: 192.0.2.1\n\tsource: BGP\n\tbgp_origin: IGP\n\tbgp_path: 65000 65000\n\tbgp_next_hop: 192.0.2.1\n\tbgp_med: 50\n\tbgp_local_pref: 100\n\tbgp_community: (65000,100)\n\tbgp_large_community: (65000, 1, 2)\n\tbgp_ext_community: (rt, 65000, 5)\n\tInternal route handling values: 0L 2G 0S id 1\n";
        let rib = parse_bird(text).unwrap();
        let r = rib.get(&"198.51.100.0/24".parse().unwrap()).unwrap();
        assert_eq!(r.origin, Origin::Igp);
        assert_eq!(r.as_path, vec![65000, 65000]);
        assert_eq!(r.next_hops, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert_eq!(r.med, Some(50));
        assert_eq!(r.local_pref, Some(100));
        assert_eq!(r.communities, vec![community(65000, 100)]);
        assert_eq!(r.large_communities, vec![(65000, 1, 2)]);
        assert_eq!(r.ext_communities.len(), 1);
        // Non-BGP routes are ignored; a bad BIRD 3 attribute is named.
        let static_route = "192.0.2.0/24 unicast [s1]\n\tsource: static\n";
        assert!(parse_bird(static_route).unwrap().is_empty());
        let bad = "192.0.2.0/24 unicast [x]\n\tsource: BGP\n\tbgp_origin: IGP\n\tbgp_next_hop: 192.0.2.1\n\tbgp_path: 65000 x\n";
        let e = parse_bird(bad).unwrap_err().to_string();
        assert!(e.contains("AS number"), "{e}");
    }

    #[test]
    fn bird_rejects_bad_input_with_named_field() {
        let bad_comm = "192.0.2.0/24 unicast [x]\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.next_hop: 192.0.2.1\n\tBGP.community: (65000,100\n";
        let e = parse_bird(bad_comm).unwrap_err().to_string();
        assert!(e.contains("unterminated"), "{e}");
        let bad_nh = "192.0.2.0/24 unicast [x]\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.next_hop: 192.0.2.999\n";
        let e = parse_bird(bad_nh).unwrap_err().to_string();
        assert!(e.contains("next hop"), "{e}");
        let no_nh = "192.0.2.0/24 unicast [x]\n\tType: BGP univ\n\tBGP.origin: IGP\n";
        assert!(parse_bird(no_nh)
            .unwrap_err()
            .to_string()
            .contains("next_hop"));
        // Non-BGP routes are ignored, not misparsed.
        let device = "192.0.2.0/24 unicast [direct1]\n\tType: device univ\n";
        assert!(parse_bird(device).unwrap().is_empty());
    }

    #[test]
    fn frr_prefix_detail() {
        let text = r#"{"prefix":"198.51.100.0/24","paths":[{"aspath":{"segments":[{"type":"as-sequence","list":[65000,65000]}]},
            "origin":"IGP","metric":50,"locPrf":120,"community":{"list":["65000:100","65000:7"]},
            "largeCommunity":{"list":["65000:1:2"]},"nexthops":[{"ip":"192.0.2.1"}]}]}"#;
        let r = parse_frr_prefix(text).unwrap().unwrap();
        assert_eq!(r.as_path, vec![65000, 65000]);
        assert_eq!(r.med, Some(50));
        assert_eq!(r.local_pref, Some(120));
        assert_eq!(
            r.communities,
            vec![community(65000, 7), community(65000, 100)]
        );
        assert_eq!(r.large_communities, vec![(65000, 1, 2)]);
        assert_eq!(parse_frr_prefix("{}").unwrap(), None);
        assert!(parse_frr_prefix("{\"prefix\":").is_err());
        let bad = r#"{"prefix":"198.51.100.0/24","paths":[{"origin":"IGP","community":{"list":["70000:1"]},"nexthops":[]}]}"#;
        assert!(parse_frr_prefix(bad)
            .unwrap_err()
            .to_string()
            .contains("ASN half"));
    }

    #[test]
    fn extended_communities_of_each_router_normalise_alike() {
        let want = vec![
            "ro:192.0.2.1:7".to_owned(),
            "rt:4200000001:5".to_owned(),
            "rt:65000:100".to_owned(),
        ];
        let bird = "198.51.100.0/24 unicast [x]\n\tType: BGP univ\n\tBGP.origin: IGP\n\tBGP.next_hop: 192.0.2.1\n\tBGP.ext_community: (rt, 65000, 100) (ro, 192.0.2.1, 7) (rt, 4200000001, 5)\n";
        let rib = parse_bird(bird).unwrap();
        assert_eq!(rib.values().next().unwrap().ext_communities, want);
        let bad = bird.replace("(ro, 192.0.2.1, 7)", "(ro, 192.0.2.1)");
        assert!(parse_bird(&bad)
            .unwrap_err()
            .to_string()
            .contains("(kind, admin, value)"));

        let frr = r#"{"prefix":"198.51.100.0/24","paths":[{"origin":"IGP","nexthops":[{"ip":"192.0.2.1"}],
            "extendedCommunity":{"string":"RT:65000:100 SoO:192.0.2.1:7 RT:4200000001:5"}}]}"#;
        assert_eq!(
            parse_frr_prefix(frr).unwrap().unwrap().ext_communities,
            want
        );
        let bad = frr.replace("SoO:", "LB:");
        assert!(parse_frr_prefix(&bad)
            .unwrap_err()
            .to_string()
            .contains("unknown kind"));

        let gobgp = r#"{"198.51.100.0/24":[{"best":true,"attrs":[{"type":1,"value":0},{"type":3,"nexthop":"192.0.2.1"},
            {"type":16,"value":[{"type":0,"subtype":2,"value":"65000:100"},{"type":1,"subtype":3,"value":"192.0.2.1:7"},
            {"type":2,"subtype":2,"value":"64086.59905:5"}]}]}]}"#;
        let rib = parse_gobgp(gobgp).unwrap();
        assert_eq!(rib.values().next().unwrap().ext_communities, want);
        // GoBGP reports the wire type: the form must match the administrator.
        let wrong_form = gobgp.replace(r#"{"type":0,"subtype":2"#, r#"{"type":2,"subtype":2"#);
        assert!(parse_gobgp(&wrong_form)
            .unwrap_err()
            .to_string()
            .contains("implies type 0"));
    }

    #[test]
    fn gobgp_rib() {
        let text = r#"{"198.51.100.0/24":[{"best":true,"attrs":[{"type":1,"value":0},
            {"type":2,"as_paths":[{"segment_type":2,"num":2,"asns":[65000,65000]}]},{"type":4,"metric":50},
            {"type":5,"value":300},{"type":8,"communities":[4259840100]},
            {"type":32,"value":[{"ASN":65000,"LocalData1":1,"LocalData2":2}]},{"type":3,"nexthop":"192.0.2.1"}]}]}"#;
        let rib = parse_gobgp(text).unwrap();
        let r = rib.values().next().unwrap();
        assert_eq!(r.communities, vec![community(65000, 100)]);
        assert_eq!(r.local_pref, Some(300));
        assert_eq!(r.next_hops, vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
        assert!(parse_gobgp("null").unwrap().is_empty());
        let bad = r#"{"198.51.100.0/24":[{"attrs":[{"type":1,"value":9}]}]}"#;
        assert!(parse_gobgp(bad).unwrap_err().to_string().contains("ORIGIN"));
        assert!(parse_gobgp("[1]").is_err());
    }
}
