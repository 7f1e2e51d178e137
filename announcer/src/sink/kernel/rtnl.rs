//! A small synchronous rtnetlink client for the kernel route backend: links, addresses and
//! routes, built on `neli`'s rtnetlink types.
//!
//! One [`Rtnl`] is one `NETLINK_ROUTE` socket. A netlink socket belongs to the network namespace
//! of the thread that created it, for its whole life; [`Rtnl::open`] therefore creates the socket
//! on a short-lived helper thread that first `setns(2)`s into the requested namespace
//! (`herald_shared::netns`), so the daemon's own threads never change namespace. Every request asks for an ACK and waits for the
//! reply carrying its own sequence number; the kernel's errno and extended-ACK message come back
//! as a [`KernelError::Kernel`] naming the operation and the object.
//!
//! Replies are parsed defensively: a reply this module cannot decode is a
//! [`KernelError::Protocol`], never a panic.

use std::fmt::Debug;
use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use neli::consts::nl::{NlmF, NlmsgerrAttr};
use neli::consts::rtnl::{
    Arphrd, Ifa, IfaF, Iff, Ifla, IflaInfo, RtAddrFamily, RtScope, RtTable, Rta, Rtm, Rtn, Rtprot,
};
use neli::consts::socket::NlFamily;
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::rtnl::{
    Ifaddrmsg, IfaddrmsgBuilder, Ifinfomsg, IfinfomsgBuilder, Rtattr, RtattrBuilder, Rtmsg,
    RtmsgBuilder,
};
use neli::socket::synchronous::NlSocketHandle;
use neli::types::{Buffer, RtBuffer};
use neli::utils::Groups;
use neli::{FromBytesWithInput, Size, ToBytes};

use herald_shared::netns::run_in_netns_file;

use super::error::KernelError;

/// `IFA_FLAGS` bit: do not create a prefix route for this address (`noprefixroute`).
pub(crate) const IFA_F_NOPREFIXROUTE: u32 = 0x200;
/// `IFA_FLAGS` bit: IPv6 duplicate address detection failed.
pub(crate) const IFA_F_DADFAILED: u32 = 0x08;
/// `IFA_FLAGS` bit: skip duplicate address detection (`nodad`), IPv6 only.
pub(crate) const IFA_F_NODAD: u32 = 0x02;
/// `IFA_PROTO` (Linux >= 6.1): the address protocol, our ownership mark on addresses.
const IFA_PROTO: u16 = 11;
/// `RT_TABLE_MAIN`.
pub(crate) const TABLE_MAIN: u32 = 254;

/// One interface as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    /// `IFLA_INFO_KIND` (`dummy`, `veth`, …) when the kernel reports one.
    pub kind: Option<String>,
}

/// One interface address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Addr {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    /// IPv4 label (`IFA_LABEL`), e.g. `herald0:vip`.
    pub label: Option<String>,
    /// `IFA_FLAGS` (or the 8-bit header flags when the attribute is absent).
    pub flags: u32,
    /// `IFA_PROTO` when the kernel reports one.
    pub proto: Option<u8>,
}

/// One route as the kernel reports it (only the fields the backend needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub dst: IpAddr,
    pub dst_len: u8,
    pub table: u32,
    pub protocol: u8,
    pub oif: Option<u32>,
    pub priority: Option<u32>,
    pub kind: u8,
}

/// What a new route looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteSpec {
    pub dst: IpAddr,
    pub dst_len: u8,
    pub table: u32,
    pub protocol: u8,
    pub oif: Option<u32>,
    pub priority: Option<u32>,
}

/// What a new address looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddrSpec {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub label: Option<String>,
    pub flags: u32,
    pub proto: u8,
}

/// A `NETLINK_ROUTE` socket in one network namespace.
pub(crate) struct Rtnl {
    sock: NlSocketHandle,
    seq: u32,
    netns: Option<PathBuf>,
}

impl Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtnl")
            .field("pid", &self.sock.pid())
            .field("netns", &self.netns)
            .finish()
    }
}

/// The reply to one request.
enum Reply {
    Ack,
    Dump(Vec<Buffer>),
}

fn io_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Rtnl {
    /// Opens a socket in the namespace at `netns` (a file such as `/run/netns/NAME` or
    /// `/proc/PID/ns/net`), or in the caller's namespace when `None`.
    pub(crate) fn open(netns: Option<&Path>) -> Result<Self, KernelError> {
        let sock = match netns {
            None => connect()?,
            // The socket keeps the namespace it was created in after the helper thread is gone.
            Some(path) => run_in_netns_file(path, connect)?,
        };
        Ok(Rtnl {
            sock,
            seq: 0,
            netns: netns.map(Path::to_path_buf),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    /// Sends one request and collects its reply: an ACK, or the messages of a dump.
    fn transact<P>(
        &mut self,
        ty: Rtm,
        flags: NlmF,
        payload: P,
        op: &'static str,
        target: &str,
    ) -> Result<Reply, KernelError>
    where
        P: Size + ToBytes + Debug,
    {
        let seq = self.next_seq();
        let dump = flags.contains(NlmF::DUMP);
        let msg = NlmsghdrBuilder::default()
            .nl_type(ty)
            .nl_flags(NlmF::REQUEST | NlmF::ACK | flags)
            .nl_seq(seq)
            .nl_payload(NlPayload::Payload(payload))
            .build()
            .map_err(|e| KernelError::Protocol {
                op,
                detail: format!("cannot build request: {e}"),
            })?;
        self.sock
            .send(&msg)
            .map_err(|e| KernelError::Socket(format!("{op} {target}: send: {e}")))?;
        let mut out = Vec::new();
        loop {
            let (iter, _) = self
                .sock
                .recv::<Rtm, Buffer>()
                .map_err(|e| KernelError::Socket(format!("{op} {target}: recv: {e}")))?;
            let mut got_any = false;
            for msg in iter {
                got_any = true;
                let msg = msg.map_err(|e| KernelError::Protocol {
                    op,
                    detail: format!("undecodable reply: {e}"),
                })?;
                if *msg.nl_seq() != seq {
                    // A late reply to an earlier, abandoned request: not ours.
                    continue;
                }
                match msg.nl_payload() {
                    NlPayload::Ack(_) => {
                        // A GET for one object answers with the object, then the ACK.
                        return Ok(if dump || !out.is_empty() {
                            Reply::Dump(out)
                        } else {
                            Reply::Ack
                        });
                    }
                    NlPayload::Err(e) => {
                        let errno = e.error().checked_neg().unwrap_or(i32::MAX);
                        let ext = e
                            .ext_ack()
                            .get_attr_handle()
                            .get_attr_payload_as_with_len::<String>(NlmsgerrAttr::Msg)
                            .ok()
                            .map(|s| s.trim_end_matches('\0').to_string())
                            .filter(|s| !s.is_empty());
                        return Err(KernelError::kernel(op, target, errno, ext));
                    }
                    NlPayload::DumpExtAck(_) | NlPayload::Empty => {
                        if dump {
                            // NLMSG_DONE ends a dump; the ACK we asked for may follow, but the
                            // kernel does not send one after DONE, so stop here.
                            return Ok(Reply::Dump(out));
                        }
                    }
                    NlPayload::Payload(buf) => out.push(buf.clone()),
                }
            }
            if !got_any {
                return Err(KernelError::Protocol {
                    op,
                    detail: "netlink socket returned no data".into(),
                });
            }
        }
    }

    /// Looks an interface up by name; `Ok(None)` when it does not exist.
    pub(crate) fn link_by_name(&mut self, name: &str) -> Result<Option<Link>, KernelError> {
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::Ifname, cstring(name))?);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .rtattrs(attrs)
            .build()
            .map_err(|e| build_err("get link", e))?;
        match self.transact(Rtm::Getlink, NlmF::empty(), msg, "look up interface", name) {
            Ok(Reply::Ack) => Ok(None),
            Ok(Reply::Dump(bufs)) => parse_first_link(&bufs),
            Err(KernelError::Kernel { errno, .. }) if errno == libc::ENODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a dummy interface called `name` (`ip link add NAME type dummy`).
    pub(crate) fn create_dummy(&mut self, name: &str) -> Result<(), KernelError> {
        let kind = rtattr(IflaInfo::Kind, b"dummy\0".to_vec())?;
        let linkinfo = rtattr(Ifla::Linkinfo, Vec::new())?
            .nest(&kind)
            .map_err(|e| build_err("create interface", e))?;
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifla::Ifname, cstring(name))?);
        attrs.push(linkinfo);
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_type(Arphrd::from(0))
            .rtattrs(attrs)
            .build()
            .map_err(|e| build_err("create interface", e))?;
        self.transact(
            Rtm::Newlink,
            NlmF::CREATE | NlmF::EXCL,
            msg,
            "create dummy interface",
            name,
        )
        .map(drop)
    }

    /// Sets an interface administratively up.
    pub(crate) fn set_up(&mut self, link: &Link) -> Result<(), KernelError> {
        let msg = IfinfomsgBuilder::default()
            .ifi_family(RtAddrFamily::Unspecified)
            .ifi_index(link.index as libc::c_int)
            .up()
            .build()
            .map_err(|e| build_err("set link up", e))?;
        self.transact(
            Rtm::Newlink,
            NlmF::empty(),
            msg,
            "set interface up",
            &link.name,
        )
        .map(drop)
    }

    /// Every address of one family (`None`: both) in this namespace.
    pub(crate) fn addresses(&mut self, family: Option<IpFamily>) -> Result<Vec<Addr>, KernelError> {
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(family.map_or(RtAddrFamily::Unspecified, IpFamily::rt))
            .ifa_prefixlen(0)
            .ifa_scope(RtScope::Universe)
            .ifa_index(0)
            .build()
            .map_err(|e| build_err("list addresses", e))?;
        let bufs = match self.transact(Rtm::Getaddr, NlmF::DUMP, msg, "list addresses", "all")? {
            Reply::Dump(b) => b,
            Reply::Ack => Vec::new(),
        };
        let mut out = Vec::with_capacity(bufs.len());
        for buf in &bufs {
            let m = Ifaddrmsg::from_bytes_with_input(&mut Cursor::new(buf.as_ref()), buf.len())
                .map_err(|e| KernelError::Protocol {
                    op: "list addresses",
                    detail: format!("undecodable address message: {e}"),
                })?;
            if let Some(a) = parse_addr(&m)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Adds an address (`ip addr add`); `EEXIST` is an error here, the caller checks first.
    pub(crate) fn add_address(&mut self, spec: &AddrSpec, ifname: &str) -> Result<(), KernelError> {
        let family = IpFamily::of(spec.addr);
        let mut attrs = RtBuffer::new();
        let bytes = ip_bytes(spec.addr);
        attrs.push(rtattr(Ifa::Local, bytes.clone())?);
        attrs.push(rtattr(Ifa::Address, bytes)?);
        if let (Some(label), IpFamily::V4) = (&spec.label, family) {
            attrs.push(rtattr(Ifa::Label, cstring(label))?);
        }
        attrs.push(rtattr(Ifa::Flags, spec.flags.to_ne_bytes().to_vec())?);
        attrs.push(rtattr(Ifa::UnrecognizedConst(IFA_PROTO), vec![spec.proto])?);
        let mut header_flags = IfaF::PERMANENT;
        if spec.flags & IFA_F_NODAD != 0 {
            header_flags |= IfaF::NODAD;
        }
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(family.rt())
            .ifa_prefixlen(spec.prefix_len)
            .ifa_flags(header_flags)
            .ifa_scope(RtScope::Universe)
            .ifa_index(spec.index)
            .rtattrs(attrs)
            .build()
            .map_err(|e| build_err("add address", e))?;
        let target = format!("{}/{} on {ifname}", spec.addr, spec.prefix_len);
        self.transact(
            Rtm::Newaddr,
            NlmF::CREATE | NlmF::EXCL,
            msg,
            "add address",
            &target,
        )
        .map(drop)
    }

    /// Removes an address (`ip addr del`).
    pub(crate) fn del_address(&mut self, a: &Addr, ifname: &str) -> Result<(), KernelError> {
        let family = IpFamily::of(a.addr);
        let mut attrs = RtBuffer::new();
        let bytes = ip_bytes(a.addr);
        attrs.push(rtattr(Ifa::Local, bytes.clone())?);
        attrs.push(rtattr(Ifa::Address, bytes)?);
        let msg = IfaddrmsgBuilder::default()
            .ifa_family(family.rt())
            .ifa_prefixlen(a.prefix_len)
            .ifa_scope(RtScope::Universe)
            .ifa_index(a.index)
            .rtattrs(attrs)
            .build()
            .map_err(|e| build_err("remove address", e))?;
        let target = format!("{}/{} on {ifname}", a.addr, a.prefix_len);
        self.transact(Rtm::Deladdr, NlmF::empty(), msg, "remove address", &target)
            .map(drop)
    }

    /// Every route of one family in one table with one protocol number.
    pub(crate) fn routes(
        &mut self,
        family: IpFamily,
        table: u32,
        protocol: u8,
    ) -> Result<Vec<Route>, KernelError> {
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Rta::Table, table.to_ne_bytes().to_vec())?);
        let msg = RtmsgBuilder::default()
            .rtm_family(family.rt())
            .rtm_dst_len(0)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(RtTable::Unspec)
            .rtm_protocol(Rtprot::from(protocol))
            .rtm_scope(RtScope::Universe)
            .rtm_type(Rtn::Unspec)
            .rtattrs(attrs)
            .build()
            .map_err(|e| build_err("list routes", e))?;
        let target = format!("table {table}");
        let bufs = match self.transact(Rtm::Getroute, NlmF::DUMP, msg, "list routes", &target) {
            Ok(Reply::Dump(b)) => b,
            Ok(Reply::Ack) => Vec::new(),
            // With strict checking, dumping a table that does not exist yet is ENOENT.
            Err(KernelError::Kernel { errno, .. }) if errno == libc::ENOENT => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for buf in &bufs {
            let m = Rtmsg::from_bytes_with_input(&mut Cursor::new(buf.as_ref()), buf.len())
                .map_err(|e| KernelError::Protocol {
                    op: "list routes",
                    detail: format!("undecodable route message: {e}"),
                })?;
            if let Some(r) = parse_route(&m)? {
                if r.table == table && r.protocol == protocol {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    fn route_msg(spec: &RouteSpec, op: &'static str) -> Result<Rtmsg, KernelError> {
        let family = IpFamily::of(spec.dst);
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Rta::Dst, ip_bytes(spec.dst))?);
        attrs.push(rtattr(Rta::Table, spec.table.to_ne_bytes().to_vec())?);
        if let Some(oif) = spec.oif {
            attrs.push(rtattr(Rta::Oif, oif.to_ne_bytes().to_vec())?);
        }
        if let Some(p) = spec.priority {
            attrs.push(rtattr(Rta::Priority, p.to_ne_bytes().to_vec())?);
        }
        // A device route without a gateway is link-scoped for IPv4 (as `ip route` makes it);
        // IPv6 routes are always universe-scoped.
        let scope = match family {
            IpFamily::V4 => RtScope::Link,
            IpFamily::V6 => RtScope::Universe,
        };
        let header_table = u8::try_from(spec.table).map_or(RtTable::Unspec, RtTable::from);
        RtmsgBuilder::default()
            .rtm_family(family.rt())
            .rtm_dst_len(spec.dst_len)
            .rtm_src_len(0)
            .rtm_tos(0)
            .rtm_table(header_table)
            .rtm_protocol(Rtprot::from(spec.protocol))
            .rtm_scope(scope)
            .rtm_type(Rtn::Unicast)
            .rtattrs(attrs)
            .build()
            .map_err(|e| build_err(op, e))
    }

    /// Adds a route (`ip route add … proto P table T dev D [metric M]`).
    pub(crate) fn add_route(&mut self, spec: &RouteSpec, devname: &str) -> Result<(), KernelError> {
        let msg = Self::route_msg(spec, "add route")?;
        let target = format!(
            "{}/{} dev {devname} table {}",
            spec.dst, spec.dst_len, spec.table
        );
        self.transact(
            Rtm::Newroute,
            NlmF::CREATE | NlmF::EXCL,
            msg,
            "add route",
            &target,
        )
        .map(drop)
    }

    /// Deletes one route exactly as listed.
    pub(crate) fn del_route(&mut self, r: &Route) -> Result<(), KernelError> {
        let spec = RouteSpec {
            dst: r.dst,
            dst_len: r.dst_len,
            table: r.table,
            protocol: r.protocol,
            oif: r.oif,
            priority: r.priority,
        };
        let msg = Self::route_msg(&spec, "remove route")?;
        let target = format!("{}/{} table {}", r.dst, r.dst_len, r.table);
        self.transact(Rtm::Delroute, NlmF::empty(), msg, "remove route", &target)
            .map(drop)
    }
}

fn connect() -> Result<NlSocketHandle, KernelError> {
    let sock = NlSocketHandle::connect(NlFamily::Route, None, Groups::empty()).map_err(|e| {
        KernelError::Socket(format!("cannot open NETLINK_ROUTE socket: {}", io_err(e)))
    })?;
    // Extended ACKs carry the kernel's own explanation ("Error: …") of a rejected request.
    // Old kernels lack them; that only makes error messages terser.
    let _ = sock.enable_ext_ack(true);
    // Strict checking (Linux >= 4.20) lets the kernel filter route dumps by table and
    // protocol; without it the dump is complete and we filter here anyway.
    let _ = sock.enable_strict_checking(true);
    Ok(sock)
}

fn build_err(op: &'static str, e: impl std::fmt::Display) -> KernelError {
    KernelError::Protocol {
        op,
        detail: format!("cannot build request: {e}"),
    }
}

fn rtattr<T>(ty: T, payload: Vec<u8>) -> Result<Rtattr<T, Buffer>, KernelError>
where
    T: neli::consts::rtnl::RtaType,
{
    RtattrBuilder::default()
        .rta_type(ty)
        .rta_payload(Buffer::from(payload))
        .build()
        .map_err(|e| build_err("encode attribute", e))
}

fn cstring(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// IP family of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub(crate) fn of(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
    fn rt(self) -> RtAddrFamily {
        match self {
            IpFamily::V4 => RtAddrFamily::Inet,
            IpFamily::V6 => RtAddrFamily::Inet6,
        }
    }
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// A malformed attribute in a kernel reply; the message names the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AttrError {
    /// An address attribute of the wrong length for its family.
    #[error("{what} is {len} bytes, an {family} address needs {need}")]
    AddressLength {
        what: &'static str,
        len: usize,
        family: &'static str,
        need: usize,
    },
    /// A 32-bit attribute of the wrong length.
    #[error("{what} is {len} bytes, expected 4")]
    U32Length { what: &'static str, len: usize },
    /// A string attribute that is not UTF-8.
    #[error("{what} is not valid UTF-8")]
    NotUtf8 { what: &'static str },
}

/// Decodes an address attribute of the given family; names the problem when it is malformed.
pub(crate) fn parse_ip(
    family: IpFamily,
    bytes: &[u8],
    what: &'static str,
) -> Result<IpAddr, AttrError> {
    let bad = |family, need| AttrError::AddressLength {
        what,
        len: bytes.len(),
        family,
        need,
    };
    match family {
        IpFamily::V4 => <[u8; 4]>::try_from(bytes)
            .map(|b| IpAddr::V4(Ipv4Addr::from(b)))
            .map_err(|_| bad("IPv4", 4)),
        IpFamily::V6 => <[u8; 16]>::try_from(bytes)
            .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
            .map_err(|_| bad("IPv6", 16)),
    }
}

/// Decodes a native-endian u32 attribute.
pub(crate) fn parse_u32(bytes: &[u8], what: &'static str) -> Result<u32, AttrError> {
    <[u8; 4]>::try_from(bytes)
        .map(u32::from_ne_bytes)
        .map_err(|_| AttrError::U32Length {
            what,
            len: bytes.len(),
        })
}

/// Decodes a NUL-terminated (or not) string attribute.
pub(crate) fn parse_str(bytes: &[u8], what: &'static str) -> Result<String, AttrError> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let s = bytes.get(..end).unwrap_or_default();
    std::str::from_utf8(s)
        .map(str::to_string)
        .map_err(|_| AttrError::NotUtf8 { what })
}

fn parse_first_link(bufs: &[Buffer]) -> Result<Option<Link>, KernelError> {
    let Some(buf) = bufs.first() else {
        return Ok(None);
    };
    let m = Ifinfomsg::from_bytes_with_input(&mut Cursor::new(buf.as_ref()), buf.len()).map_err(
        |e| KernelError::Protocol {
            op: "look up interface",
            detail: format!("undecodable link message: {e}"),
        },
    )?;
    let proto = |detail: String| KernelError::Protocol {
        op: "look up interface",
        detail,
    };
    let index = u32::try_from(*m.ifi_index())
        .map_err(|_| proto(format!("negative interface index {}", m.ifi_index())))?;
    let mut name = None;
    let mut kind = None;
    for a in m.rtattrs().iter() {
        if *a.rta_type() == Ifla::Ifname {
            name = Some(
                parse_str(a.rta_payload().as_ref(), "IFLA_IFNAME")
                    .map_err(|e| proto(e.to_string()))?,
            );
        } else if *a.rta_type() == Ifla::Linkinfo {
            if let Ok(h) = a.get_attr_handle::<IflaInfo>() {
                if let Some(k) = h.get_attribute(IflaInfo::Kind) {
                    kind = Some(
                        parse_str(k.rta_payload().as_ref(), "IFLA_INFO_KIND")
                            .map_err(|e| proto(e.to_string()))?,
                    );
                }
            }
        }
    }
    let name = name.ok_or_else(|| proto("link message without IFLA_IFNAME".into()))?;
    Ok(Some(Link {
        index,
        name,
        up: m.ifi_flags().contains(Iff::UP),
        kind,
    }))
}

/// Decodes one address message; `Ok(None)` for families other than IPv4/IPv6.
pub(crate) fn parse_addr(m: &Ifaddrmsg) -> Result<Option<Addr>, KernelError> {
    let family = match *m.ifa_family() {
        RtAddrFamily::Inet => IpFamily::V4,
        RtAddrFamily::Inet6 => IpFamily::V6,
        _ => return Ok(None),
    };
    let proto = |detail: String| KernelError::Protocol {
        op: "list addresses",
        detail,
    };
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut flags = None;
    let mut aproto = None;
    for a in m.rtattrs().iter() {
        let p = a.rta_payload().as_ref();
        match *a.rta_type() {
            Ifa::Local => {
                local = Some(parse_ip(family, p, "IFA_LOCAL").map_err(|e| proto(e.to_string()))?)
            }
            Ifa::Address => {
                address =
                    Some(parse_ip(family, p, "IFA_ADDRESS").map_err(|e| proto(e.to_string()))?)
            }
            Ifa::Label => {
                label = Some(parse_str(p, "IFA_LABEL").map_err(|e| proto(e.to_string()))?)
            }
            Ifa::Flags => {
                flags = Some(parse_u32(p, "IFA_FLAGS").map_err(|e| proto(e.to_string()))?)
            }
            Ifa::UnrecognizedConst(IFA_PROTO) => aproto = p.first().copied(),
            _ => {}
        }
    }
    // IFA_LOCAL is the local address for IPv4 (IFA_ADDRESS is the peer on point-to-point
    // links); IPv6 reports only IFA_ADDRESS unless a peer is configured.
    let addr = match family {
        IpFamily::V4 => local.or(address),
        IpFamily::V6 => local.or(address),
    }
    .ok_or_else(|| proto("address message without IFA_LOCAL/IFA_ADDRESS".into()))?;
    Ok(Some(Addr {
        index: *m.ifa_index(),
        addr,
        prefix_len: *m.ifa_prefixlen(),
        label,
        flags: flags.unwrap_or_else(|| u32::from(u8::from(*m.ifa_flags()))),
        proto: aproto,
    }))
}

/// Decodes one route message; `Ok(None)` for families other than IPv4/IPv6.
pub(crate) fn parse_route(m: &Rtmsg) -> Result<Option<Route>, KernelError> {
    let family = match *m.rtm_family() {
        RtAddrFamily::Inet => IpFamily::V4,
        RtAddrFamily::Inet6 => IpFamily::V6,
        _ => return Ok(None),
    };
    let proto = |detail: String| KernelError::Protocol {
        op: "list routes",
        detail,
    };
    let mut dst = None;
    let mut table = u32::from(u8::from(*m.rtm_table()));
    let mut oif = None;
    let mut priority = None;
    for a in m.rtattrs().iter() {
        let p = a.rta_payload().as_ref();
        match *a.rta_type() {
            Rta::Dst => {
                dst = Some(parse_ip(family, p, "RTA_DST").map_err(|e| proto(e.to_string()))?)
            }
            Rta::Table => table = parse_u32(p, "RTA_TABLE").map_err(|e| proto(e.to_string()))?,
            Rta::Oif => oif = Some(parse_u32(p, "RTA_OIF").map_err(|e| proto(e.to_string()))?),
            Rta::Priority => {
                priority = Some(parse_u32(p, "RTA_PRIORITY").map_err(|e| proto(e.to_string()))?)
            }
            _ => {}
        }
    }
    let dst = dst.unwrap_or(match family {
        IpFamily::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpFamily::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    Ok(Some(Route {
        dst,
        dst_len: *m.rtm_dst_len(),
        table,
        protocol: u8::from(*m.rtm_protocol()),
        oif,
        priority,
        kind: u8::from(*m.rtm_type()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ip_names_bad_lengths() {
        assert_eq!(
            parse_ip(IpFamily::V4, &[192, 0, 2, 1], "x"),
            Ok("192.0.2.1"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)))
        );
        let e = parse_ip(IpFamily::V4, &[1, 2, 3], "IFA_LOCAL")
            .unwrap_err()
            .to_string();
        assert!(e.contains("IFA_LOCAL is 3 bytes"), "{e}");
        let e = parse_ip(IpFamily::V6, &[0; 4], "RTA_DST")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("RTA_DST is 4 bytes, an IPv6 address needs 16"),
            "{e}"
        );
    }

    #[test]
    fn parse_u32_and_str() {
        assert_eq!(parse_u32(&7u32.to_ne_bytes(), "t"), Ok(7));
        assert!(parse_u32(&[1, 2], "RTA_TABLE")
            .unwrap_err()
            .to_string()
            .contains("RTA_TABLE is 2 bytes, expected 4"));
        assert_eq!(
            parse_str(b"herald0:vip\0junk", "l"),
            Ok("herald0:vip".into())
        );
        assert_eq!(parse_str(b"lo", "l"), Ok("lo".into()));
        assert_eq!(
            parse_str(&[0xff, 0xfe], "IFA_LABEL")
                .unwrap_err()
                .to_string(),
            "IFA_LABEL is not valid UTF-8"
        );
    }

    #[test]
    fn malformed_address_message_is_an_error_not_a_panic() {
        // An IPv4 address message whose IFA_LOCAL carries 3 bytes.
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifa::Local, vec![1, 2, 3]).unwrap_or_else(|_| unreachable!()));
        let m = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Inet)
            .ifa_prefixlen(32)
            .ifa_scope(RtScope::Universe)
            .ifa_index(1)
            .rtattrs(attrs)
            .build();
        let Ok(m) = m else { panic!("builder failed") };
        let err = parse_addr(&m).unwrap_err().to_string();
        assert!(err.contains("IFA_LOCAL is 3 bytes"), "{err}");
        // And one with no address at all.
        let m = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Inet6)
            .ifa_prefixlen(128)
            .ifa_scope(RtScope::Universe)
            .ifa_index(1)
            .build();
        let Ok(m) = m else { panic!("builder failed") };
        let err = parse_addr(&m).unwrap_err().to_string();
        assert!(err.contains("without IFA_LOCAL/IFA_ADDRESS"), "{err}");
    }

    /// Random and mutated bytes through every decoder the backend uses: errors, never panics.
    #[test]
    fn random_replies_never_panic() {
        // xorshift64*: deterministic, no extra dependency.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        // A valid address message to mutate, so decoding gets past the header.
        let mut attrs = RtBuffer::new();
        attrs.push(rtattr(Ifa::Local, vec![203, 0, 113, 10]).unwrap_or_else(|_| unreachable!()));
        attrs.push(rtattr(Ifa::Label, cstring("herald0:vip")).unwrap_or_else(|_| unreachable!()));
        let valid = IfaddrmsgBuilder::default()
            .ifa_family(RtAddrFamily::Inet)
            .ifa_prefixlen(32)
            .ifa_scope(RtScope::Universe)
            .ifa_index(3)
            .rtattrs(attrs)
            .build();
        let Ok(valid) = valid else {
            panic!("builder failed")
        };
        let mut seed = Cursor::new(Vec::new());
        if valid.to_bytes(&mut seed).is_err() {
            panic!("serialise failed");
        }
        let seed = seed.into_inner();
        let mut decoded = 0;
        for i in 0..20_000u32 {
            let bytes: Vec<u8> = if i % 2 == 0 {
                let len = (next() % 96) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let mut b = seed.clone();
                let flips = 1 + next() % 4;
                for _ in 0..flips {
                    let pos = (next() as usize) % b.len();
                    if let Some(x) = b.get_mut(pos) {
                        *x = next() as u8;
                    }
                }
                let cut = (next() as usize) % (b.len() + 1);
                b.truncate(cut.max(b.len() / 2));
                b
            };
            if let Ok(m) =
                Ifaddrmsg::from_bytes_with_input(&mut Cursor::new(&bytes[..]), bytes.len())
            {
                decoded += 1;
                let _ = parse_addr(&m);
            }
            if let Ok(m) = Rtmsg::from_bytes_with_input(&mut Cursor::new(&bytes[..]), bytes.len()) {
                let _ = parse_route(&m);
            }
            let _ = parse_first_link(&[Buffer::from(bytes)]);
        }
        // The mutations must exercise the attribute decoders, not only the header check.
        assert!(decoded > 1_000, "only {decoded} inputs decoded");
    }

    #[test]
    fn truncated_buffers_do_not_decode() {
        for len in 0..8 {
            let bytes = vec![2u8; len];
            assert!(
                Ifaddrmsg::from_bytes_with_input(&mut Cursor::new(&bytes[..]), bytes.len())
                    .is_err()
            );
        }
    }
}
