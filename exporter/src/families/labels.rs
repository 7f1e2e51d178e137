//! Label values and label sets of the IPVS families: how a service, a destination and their
//! `_info` series are labelled, and the value spellings (`ipv4`, `none`, `unknown`, `csum`...).
//! No label value is ever empty.

use herald_shared::model::{AddressFamily, Destination, Service, ServiceKey, SyncRole};
use prometheus_client::encoding::{
    EncodeLabel, EncodeLabelSet, EncodeLabelValue, LabelSetEncoder, LabelValueEncoder,
};

/// Label value of an address family.
pub(super) fn family_label(f: AddressFamily) -> &'static str {
    match f {
        AddressFamily::Inet => "ipv4",
        AddressFamily::Inet6 => "ipv6",
    }
}

/// IPv4 persistence netmask (host-order bits) as dotted quad; IPv6 as prefix length.
pub(super) fn netmask_label(key: &ServiceKey, netmask: u32) -> String {
    match key.family() {
        AddressFamily::Inet => std::net::Ipv4Addr::from(netmask).to_string(),
        AddressFamily::Inet6 => netmask.to_string(),
    }
}

/// Comma-separated names of the service flags that are set, or `none`.
pub(super) fn flags_label(s: &Service) -> String {
    let f = &s.flags;
    let mut v = Vec::new();
    for (set, name) in [
        (f.persistent, "persistent"),
        (f.hashed, "hashed"),
        (f.one_packet, "one-packet"),
        (f.sched_flag_1, "flag-1"),
        (f.sched_flag_2, "flag-2"),
        (f.sched_flag_3, "flag-3"),
    ] {
        if set {
            v.push(name);
        }
    }
    if v.is_empty() {
        "none".to_string()
    } else {
        v.join(",")
    }
}

/// A label value written with `Display`, without an intermediate `String` (escaped like any
/// other value by the encoder).
pub(super) struct Shown<T>(pub(super) T);

impl<T: std::fmt::Display> EncodeLabelValue for Shown<T> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        write!(encoder, "{}", self.0)
    }
}

pub(super) fn label(
    encoder: &mut LabelSetEncoder,
    key: &'static str,
    value: impl EncodeLabelValue,
) -> Result<(), std::fmt::Error> {
    (key, value).encode(encoder.encode_label())
}

/// The labels identifying a service: `protocol`, `address`, `port` or `protocol="fwm"`,
/// `family`, `mark`; plus `name` when one is configured.
#[derive(Clone, Copy)]
pub(super) struct SvcLabels<'a> {
    pub(super) key: &'a ServiceKey,
    pub(super) name: Option<&'a str>,
}

impl EncodeLabelSet for SvcLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        match *self.key {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => {
                label(e, "protocol", protocol.as_str())?;
                label(e, "address", Shown(address))?;
                label(e, "port", Shown(port))?;
            }
            ServiceKey::Fwmark { family, mark } => {
                label(e, "protocol", "fwm")?;
                label(e, "family", family_label(family))?;
                label(e, "mark", Shown(mark))?;
            }
        }
        if let Some(name) = self.name {
            label(e, "name", name)?;
        }
        Ok(())
    }
}

/// `ipvs_service_info` labels: the service's, then scheduler, flags, netmask, pe.
pub(super) struct SvcInfoLabels<'a> {
    pub(super) svc: SvcLabels<'a>,
    pub(super) s: &'a Service,
}

impl EncodeLabelSet for SvcInfoLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let s = self.s;
        self.svc.encode(e)?;
        label(e, "scheduler", non_empty_str(&s.scheduler))?;
        label(e, "flags", flags_label(s).as_str())?;
        if s.flags.persistent {
            label(e, "netmask", netmask_label(&s.key, s.netmask).as_str())?;
        }
        if let Some(pe) = s.pe_name.as_deref().filter(|p| !p.is_empty()) {
            label(e, "pe", pe)?;
        }
        Ok(())
    }
}

/// The labels identifying a destination: its service's, then `dest_address`, `dest_port`.
#[derive(Clone, Copy)]
pub(super) struct DestLabels<'a> {
    pub(super) svc: SvcLabels<'a>,
    pub(super) d: &'a Destination,
}

impl EncodeLabelSet for DestLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        self.svc.encode(e)?;
        label(e, "dest_address", Shown(self.d.address))?;
        label(e, "dest_port", Shown(self.d.port))
    }
}

/// `ipvs_destination_info` labels: the destination's, then forward, family and tunnel.
pub(super) struct DestInfoLabels<'a> {
    pub(super) dest: DestLabels<'a>,
    pub(super) d: &'a Destination,
}

impl EncodeLabelSet for DestInfoLabels<'_> {
    fn encode(&self, e: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        let d = self.d;
        self.dest.encode(e)?;
        label(e, "forward", d.forward.as_str())?;
        label(e, "dest_family", family_label(d.family))?;
        if let Some(t) = &d.tunnel {
            label(e, "tunnel_type", t.kind.as_str())?;
            if t.port != 0 {
                label(e, "tunnel_port", Shown(t.port))?;
            }
            label(e, "tunnel_flags", tunnel_flags_label(t.flags).as_str())?;
        }
        Ok(())
    }
}

pub(super) fn non_empty_str(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

pub(super) fn role_label(r: SyncRole) -> &'static str {
    match r {
        SyncRole::Master => "master",
        SyncRole::Backup => "backup",
    }
}

pub(super) fn tunnel_flags_label(flags: u16) -> String {
    let mut v = Vec::new();
    if flags & 1 != 0 {
        v.push("csum");
    }
    if flags & 2 != 0 {
        v.push("remcsum");
    }
    if v.is_empty() {
        "nocsum".to_string()
    } else {
        v.join(",")
    }
}

/// Empty strings become `unknown` so that no label value is ever empty.
pub(super) fn non_empty(s: &str) -> String {
    if s.is_empty() {
        "unknown".to_string()
    } else {
        s.to_string()
    }
}
