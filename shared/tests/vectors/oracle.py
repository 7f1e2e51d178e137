#!/usr/bin/env python3
"""Independent oracle for the netlink test vectors in this directory.

What it is: a small generic-netlink decoder for the replies ipvs-herald reads (IPVS GET_SERVICE,
GET_DEST, GET_DAEMON, GET_CONFIG, GET_INFO and the controller's reply to CTRL_CMD_GETFAMILY),
written from the kernel's UAPI headers (include/uapi/linux/ip_vs.h,
include/uapi/linux/genetlink.h) and the kernel's fill functions in
net/netfilter/ipvs/ip_vs_ctl.c (which nla_put_* each attribute uses), *not* from the Rust codec
under test. Python 3 standard library only. It writes, for every vector `<name>.bin` / `<name>.hex`,
the `<name>.expected.json` that shared/tests/netlink_vectors.rs compares the Rust decoder with:
the JSON shape is that of the serde serialisation of herald_shared::model (Service, Destination,
SyncDaemon, Timeouts, Info; a bare number for the family id).

It is stricter than the Rust decoder on purpose: every attribute must have the payload size the
kernel puts, a known type, and appear once; the genetlink header must carry the reply command
and version the kernel uses; in captured (`-lab-`) vectors the 32-bit STATS must equal STATS64
truncated to 32 bits (ip_vs_copy_stats + nla_put_u32). Anything else stops the oracle with the
vector's name, so a new capture with something unexpected is looked at by a person.

It also cross-checks the captured vectors against facts the lab recorded independently of
ipvs-herald (see README.md, "Cross-checks"): the kernel's own /proc/net/ip_vs text of the same
scenario (shared/tests/data/kernel-6.1/<NN>-<scenario>/ip_vs) and the ipvsadm commands of the
scenario script (tests/lab/scenarios/<NN>-<scenario>.sh).

Vectors of the other kernels the lab boots (5.10, 6.12) live in
shared/tests/data/kernel-<version>/netlink/, with that kernel's procfs captures one level up;
the oracle walks each such set the same way (write, --check, cross-checks), and fails when a
required kernel has no captures.

Usage (from anywhere; paths are relative to this file):
  python3 shared/tests/vectors/oracle.py            # write missing .expected.json files
  python3 shared/tests/vectors/oracle.py --check    # verify every vector has an expected file
                                                    # equal (as JSON values) to the oracle's
                                                    # decode, and run the cross-checks; exit 1
                                                    # naming each difference
  python3 shared/tests/vectors/oracle.py --force    # also overwrite expected files that differ
  python3 shared/tests/vectors/oracle.py --print    # print every decode (one JSON per line)

Regenerate after `tests/lab/lab.sh vectors` copied new captures here: run it without options,
then with --check, and commit the vectors with their expected files. An existing expected file
that differs is never overwritten without --force: a difference is a question (which side is
right, per the UAPI?), not something to paper over. The `get_daemon-lab-*` expected files are
written by the lab from `ipvsadm -Ln --daemon`, and the `*-handmade-*` ones by hand; --check
confirms the oracle agrees with them too.

Byte order: every vector is from x86-64, so "host order" below means little-endian.
"""

import json
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
DATA_DIR = os.path.join(REPO, "shared", "tests", "data")
# The 6.1 captures live in this directory; their procfs captures in data/kernel-6.1.
PROCFS_DIR = os.path.join(DATA_DIR, "kernel-6.1")
# The other kernels the lab boots (tests/README.md, "Matrix"): each must have its captures.
REQUIRED_KERNELS = ("5.10", "6.12")
SCENARIO_DIR = os.path.join(REPO, "tests", "lab", "scenarios")


class VectorError(Exception):
    """A vector the oracle cannot decode, or a check that failed."""


# --- include/uapi/linux/genetlink.h -------------------------------------------------------------
CTRL_CMD_NEWFAMILY = 1
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
# CTRL_ATTR_VERSION .. CTRL_ATTR_OP: present in a full reply, not needed here.
CTRL_ATTRS_KNOWN = set(range(1, 11))
CTRL_FAMILY_VERSION = 2  # the controller family registers version 0x2 (genetlink.c)

# --- include/uapi/linux/netlink.h ---------------------------------------------------------------
NLA_F_NESTED = 1 << 15
NLA_F_NET_BYTEORDER = 1 << 14
NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF

# --- include/uapi/linux/ip_vs.h -----------------------------------------------------------------
IPVS_GENL_VERSION = 1
# enum ipvs_cmd: the reply command of each GET.
IPVS_CMD_NEW_SERVICE = 1
IPVS_CMD_NEW_DEST = 5
IPVS_CMD_NEW_DAEMON = 9
IPVS_CMD_SET_CONFIG = 12
IPVS_CMD_SET_INFO = 14

# IPVS_CMD_ATTR_*
CMD_ATTR_SERVICE, CMD_ATTR_DEST, CMD_ATTR_DAEMON = 1, 2, 3
CMD_ATTR_TIMEOUT_TCP, CMD_ATTR_TIMEOUT_TCP_FIN, CMD_ATTR_TIMEOUT_UDP = 4, 5, 6

# Payload kinds: an int is a fixed size (struct.unpack format chosen by the reader), "str" a
# NUL-terminated string (nla_put_string), "nest" a nested set.
# IPVS_SVC_ATTR_*  (ip_vs_genl_fill_service)
SVC = {
    1: ("AF", 2),  # nla_put_u16
    2: ("PROTOCOL", 2),  # nla_put_u16
    3: ("ADDR", 16),  # nla_put(sizeof(union nf_inet_addr))
    4: ("PORT", 2),  # nla_put_be16
    5: ("FWMARK", 4),  # nla_put_u32
    6: ("SCHED_NAME", "str"),
    7: ("FLAGS", 8),  # struct ip_vs_flags { __u32 flags; __u32 mask; }
    8: ("TIMEOUT", 4),  # nla_put_u32 (seconds: svc->timeout / HZ)
    9: ("NETMASK", 4),  # nla_put_be32 (svc->netmask, stored as the user sent it)
    10: ("STATS", "nest"),
    11: ("PE_NAME", "str"),
    12: ("STATS64", "nest"),
}
# IPVS_DEST_ATTR_*  (ip_vs_genl_fill_dest)
DEST = {
    1: ("ADDR", 16),
    2: ("PORT", 2),  # nla_put_be16
    3: ("FWD_METHOD", 4),  # nla_put_u32 (conn_flags & IP_VS_CONN_F_FWD_MASK)
    4: ("WEIGHT", 4),  # nla_put_u32 of an int
    5: ("U_THRESH", 4),
    6: ("L_THRESH", 4),
    7: ("ACTIVE_CONNS", 4),
    8: ("INACT_CONNS", 4),
    9: ("PERSIST_CONNS", 4),
    10: ("STATS", "nest"),
    11: ("ADDR_FAMILY", 2),  # nla_put_u16
    12: ("STATS64", "nest"),
    13: ("TUN_TYPE", 1),  # nla_put_u8
    14: ("TUN_PORT", 2),  # nla_put_be16
    15: ("TUN_FLAGS", 2),  # nla_put_u16
}
# IPVS_DAEMON_ATTR_*  (ip_vs_genl_fill_daemon)
DAEMON = {
    1: ("STATE", 4),  # nla_put_u32
    2: ("MCAST_IFN", "str"),
    3: ("SYNC_ID", 4),  # nla_put_u32
    4: ("SYNC_MAXLEN", 2),  # nla_put_u16
    5: ("MCAST_GROUP", 4),  # nla_put_in_addr (network order)
    6: ("MCAST_GROUP6", 16),  # nla_put_in6_addr
    7: ("MCAST_PORT", 2),  # nla_put_u16: host order
    8: ("MCAST_TTL", 1),  # nla_put_u8
}
# IPVS_STATS_ATTR_*: name, size inside STATS (ip_vs_genl_fill_stats), size inside STATS64
# (ip_vs_genl_fill_stats64: every one nla_put_u64). IPVS_STATS_ATTR_PAD (11) is alignment.
STATS = {
    1: ("conns", 4, 8),
    2: ("in_packets", 4, 8),
    3: ("out_packets", 4, 8),
    4: ("in_bytes", 8, 8),
    5: ("out_bytes", 8, 8),
    6: ("conns_per_second", 4, 8),
    7: ("in_packets_per_second", 4, 8),
    8: ("out_packets_per_second", 4, 8),
    9: ("in_bytes_per_second", 4, 8),
    10: ("out_bytes_per_second", 4, 8),
}
STATS_ATTR_PAD = 11
COUNTERS = ["conns", "in_packets", "out_packets", "in_bytes", "out_bytes"]
RATES = [
    "conns_per_second",
    "in_packets_per_second",
    "out_packets_per_second",
    "in_bytes_per_second",
    "out_bytes_per_second",
]

IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP = 1, 2
IP_VS_SVC_F = [  # IP_VS_SVC_F_*: JSON name, bit
    ("persistent", 0x0001),
    ("hashed", 0x0002),
    ("one_packet", 0x0004),
    ("sched_flag_1", 0x0008),
    ("sched_flag_2", 0x0010),
    ("sched_flag_3", 0x0020),
]
# IP_VS_CONN_F_MASQ .. IP_VS_CONN_F_BYPASS
FWD = {0: "masq", 1: "local", 2: "tunnel", 3: "route", 4: "bypass"}
# IP_VS_CONN_F_TUNNEL_TYPE_*
TUN = {0: "ipip", 1: "gue", 2: "gre"}
AF = {2: "inet", 10: "inet6"}  # AF_INET, AF_INET6 (linux/socket.h)
PROTO = {6: "tcp", 17: "udp", 132: "sctp"}  # IPPROTO_*


# --- netlink attributes -------------------------------------------------------------------------
def walk(buf, where):
    """[(type, payload)] of one attribute set: nla_len includes the 4-byte header, not the
    padding to 4 bytes that follows each attribute (NLA_ALIGN)."""
    out = []
    off = 0
    while off < len(buf):
        if len(buf) - off < 4:
            raise VectorError(f"{where}: {len(buf) - off} trailing byte(s), not an attribute")
        nla_len, nla_type = struct.unpack_from("<HH", buf, off)
        if nla_len < 4 or off + nla_len > len(buf):
            raise VectorError(f"{where}: attribute at +{off} has bad length {nla_len}")
        out.append((nla_type & NLA_TYPE_MASK, bytes(buf[off + 4 : off + nla_len])))
        off += (nla_len + 3) & ~3
    return out


def table(buf, spec, where):
    """Attribute set -> {NAME: payload}, checking that every type is known, appears once and
    has the size the kernel puts."""
    return table_of(walk(buf, where), spec, where)


def table_of(attrs, spec, where):
    """`table` of an already walked attribute list."""
    got = {}
    for t, p in attrs:
        if t not in spec:
            raise VectorError(f"{where}: unknown attribute type {t}")
        name, kind = spec[t]
        if name in got:
            raise VectorError(f"{where}: {name} appears twice")
        if kind == "str":
            if not p.endswith(b"\0"):
                raise VectorError(f"{where}: {name} is not NUL-terminated")
            p = p[: p.index(b"\0")].decode("utf-8")
        elif kind != "nest" and len(p) != kind:
            raise VectorError(f"{where}: {name} has {len(p)} byte(s), the kernel puts {kind}")
        got[name] = p
    return got


def u8(p):
    return p[0]


def u16(p):  # host order
    return struct.unpack("<H", p)[0]


def be16(p):
    return struct.unpack(">H", p)[0]


def u32(p):  # host order
    return struct.unpack("<I", p)[0]


def s32(p):
    return struct.unpack("<i", p)[0]


def need(tab, name, where):
    if name not in tab:
        raise VectorError(f"{where}: no {name}")
    return tab[name]


# --- addresses as Rust's std::net formats them (serde serialises IpAddr with Display) ----------
def ipv4(b):
    return ".".join(str(x) for x in b)


def ipv6(b):
    """RFC 5952 text, which is what Rust's Ipv6Addr Display prints: an IPv4-mapped address as
    ::ffff:a.b.c.d, otherwise lower-case hex groups with the longest run (the first of equal
    ones) of two or more zero groups written as ::. Written out rather than taken from the
    ipaddress module, whose text for mapped addresses changed between Python versions."""
    g = struct.unpack(">8H", b)
    if g[:6] == (0, 0, 0, 0, 0, 0xFFFF):
        return "::ffff:" + ipv4(b[12:])
    best, best_len, i = -1, 0, 0
    while i < 8:
        if g[i] == 0:
            j = i
            while j < 8 and g[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        else:
            i += 1
    if best_len < 2:
        return ":".join(f"{x:x}" for x in g)
    left = ":".join(f"{x:x}" for x in g[:best])
    right = ":".join(f"{x:x}" for x in g[best + best_len :])
    return f"{left}::{right}"


def addr(p, family):
    """union nf_inet_addr: the IPv4 address in its first 4 bytes, or all 16 for IPv6."""
    return ipv4(p[:4]) if family == "inet" else ipv6(p)


# --- decoders, one per reply ----------------------------------------------------------------------
def stats(buf, is64, where):
    vals = {}
    for t, p in walk(buf, where):
        if t == STATS_ATTR_PAD:
            continue
        if t not in STATS:
            raise VectorError(f"{where}: unknown statistics attribute {t}")
        name, size32, size64 = STATS[t]
        size = size64 if is64 else size32
        if len(p) != size:
            raise VectorError(f"{where}: {name} has {len(p)} byte(s), the kernel puts {size}")
        if name in vals:
            raise VectorError(f"{where}: {name} appears twice")
        vals[name] = struct.unpack("<Q" if size == 8 else "<I", p)[0]
    missing = [n for n, _, _ in STATS.values() if n not in vals]
    if missing:
        raise VectorError(f"{where}: statistics without {', '.join(missing)}")
    return vals


def pick_stats(tab, where, captured):
    """STATS64 when present (is_64bit true), else STATS widened (is_64bit false). In a capture
    both are present and STATS must be STATS64 cut to its attribute's width."""
    s32_ = stats(tab["STATS"], False, where + " STATS") if "STATS" in tab else None
    s64 = stats(tab["STATS64"], True, where + " STATS64") if "STATS64" in tab else None
    if s64 is None and s32_ is None:
        raise VectorError(f"{where}: neither STATS64 nor STATS")
    if captured:
        if s64 is None or s32_ is None:
            raise VectorError(f"{where}: a kernel capture must carry STATS and STATS64")
        for t, (name, size32, _) in STATS.items():
            if s32_[name] != s64[name] & ((1 << (8 * size32)) - 1):
                raise VectorError(
                    f"{where}: STATS {name}={s32_[name]} is not STATS64 {name}={s64[name]} "
                    f"cut to {8 * size32} bits"
                )
    v, is64 = (s64, True) if s64 is not None else (s32_, False)
    return {
        "counters": {k: v[k] for k in COUNTERS},
        "rates": {k: v[k] for k in RATES},
        "is_64bit": is64,
    }


def nested_one(attrs, kind, name, where):
    """The payload of the one top-level attribute `kind`; nothing else may be at the top."""
    found = [p for t, p in attrs if t == kind]
    others = [t for t, _ in attrs if t != kind]
    if len(found) != 1 or others:
        raise VectorError(
            f"{where}: expected exactly one {name} at the top level, got types "
            f"{[t for t, _ in attrs]}"
        )
    return found[0]


def decode_service(attrs, where, captured):
    t = table(nested_one(attrs, CMD_ATTR_SERVICE, "IPVS_CMD_ATTR_SERVICE", where), SVC, where)
    af = u16(need(t, "AF", where))
    if af not in AF:
        raise VectorError(f"{where}: unknown AF {af}")
    family = AF[af]
    if "FWMARK" in t:
        # The kernel puts FWMARK instead of PROTOCOL/ADDR/PORT when svc->fwmark != 0.
        if any(k in t for k in ("PROTOCOL", "ADDR", "PORT")):
            raise VectorError(f"{where}: FWMARK together with PROTOCOL/ADDR/PORT")
        mark = u32(t["FWMARK"])
        if mark == 0:
            raise VectorError(f"{where}: FWMARK 0")
        key = {"kind": "fwmark", "family": family, "mark": mark}
    else:
        proto = u16(need(t, "PROTOCOL", where))
        if proto not in PROTO:
            raise VectorError(f"{where}: unknown protocol {proto}")
        key = {
            "kind": "addr",
            "protocol": PROTO[proto],
            "address": addr(need(t, "ADDR", where), family),
            "port": be16(need(t, "PORT", where)),
        }
    flags = u32(need(t, "FLAGS", where)[:4])
    mask = u32(t["FLAGS"][4:])
    if mask != 0xFFFFFFFF:
        raise VectorError(f"{where}: FLAGS mask {mask:#x}, the kernel puts ~0")
    nm = need(t, "NETMASK", where)
    # IPv4: a mask in network order (ipvsadm sends the dotted mask as be32). IPv6: the prefix
    # length, which ipvsadm sends as a host-order u32 and the kernel stores and echoes as is
    # (its /proc/net/ip_vs prints ntohl() of it: 64 shows as 40000000 on x86-64).
    netmask = struct.unpack(">I" if family == "inet" else "<I", nm)[0]
    flag_json = {"raw": flags}
    flag_json.update({name: bool(flags & bit) for name, bit in IP_VS_SVC_F})
    return {
        "key": key,
        "scheduler": need(t, "SCHED_NAME", where),
        "flags": flag_json,
        "persistence_timeout": u32(need(t, "TIMEOUT", where)),
        "netmask": netmask,
        "pe_name": t.get("PE_NAME") or None,
        "stats": pick_stats(t, where, captured),
        "destinations": [],
    }


def decode_dest(attrs, where, captured):
    t = table(nested_one(attrs, CMD_ATTR_DEST, "IPVS_CMD_ATTR_DEST", where), DEST, where)
    af = u16(need(t, "ADDR_FAMILY", where))
    if af not in AF:
        raise VectorError(f"{where}: unknown ADDR_FAMILY {af}")
    family = AF[af]
    fwd = u32(need(t, "FWD_METHOD", where))
    if fwd not in FWD:
        raise VectorError(f"{where}: unknown FWD_METHOD {fwd}")
    tunnel = None
    # The model carries tunnel details only for a tunnel destination (the kernel puts the three
    # attributes for every destination, zero unless set).
    if FWD[fwd] == "tunnel" and "TUN_TYPE" in t:
        tt = u8(t["TUN_TYPE"])
        if tt not in TUN:
            raise VectorError(f"{where}: unknown TUN_TYPE {tt}")
        tunnel = {
            "kind": TUN[tt],
            "port": be16(t["TUN_PORT"]) if "TUN_PORT" in t else 0,
            "flags": u16(t["TUN_FLAGS"]) if "TUN_FLAGS" in t else 0,
        }
    return {
        "address": addr(need(t, "ADDR", where), family),
        "family": family,
        "port": be16(need(t, "PORT", where)),
        "forward": FWD[fwd],
        "weight": s32(need(t, "WEIGHT", where)),
        "upper_threshold": u32(need(t, "U_THRESH", where)),
        "lower_threshold": u32(need(t, "L_THRESH", where)),
        "active_conns": u32(need(t, "ACTIVE_CONNS", where)),
        "inactive_conns": u32(need(t, "INACT_CONNS", where)),
        "persistent_conns": u32(need(t, "PERSIST_CONNS", where)),
        "tunnel": tunnel,
        "stats": pick_stats(t, where, captured),
    }


def decode_daemon(attrs, where, captured):
    t = table(nested_one(attrs, CMD_ATTR_DAEMON, "IPVS_CMD_ATTR_DAEMON", where), DAEMON, where)
    state = u32(need(t, "STATE", where))
    roles = {IP_VS_STATE_MASTER: "master", IP_VS_STATE_BACKUP: "backup"}
    if state not in roles:
        raise VectorError(f"{where}: unknown STATE {state}")
    group = None
    if "MCAST_GROUP" in t and "MCAST_GROUP6" in t:
        raise VectorError(f"{where}: both MCAST_GROUP and MCAST_GROUP6")
    if "MCAST_GROUP" in t:
        group = ipv4(t["MCAST_GROUP"])
    elif "MCAST_GROUP6" in t:
        group = ipv6(t["MCAST_GROUP6"])
    if group in ("0.0.0.0", "::"):  # the model's None: no group configured
        group = None
    return {
        "role": roles[state],
        "interface": need(t, "MCAST_IFN", where),
        "sync_id": u32(need(t, "SYNC_ID", where)),
        "max_len": u16(t["SYNC_MAXLEN"]) if "SYNC_MAXLEN" in t else 0,
        "mcast_group": group,
        "mcast_port": u16(t["MCAST_PORT"]) if "MCAST_PORT" in t else 0,
        "mcast_ttl": u8(t["MCAST_TTL"]) if "MCAST_TTL" in t else 0,
    }


def decode_config(attrs, where, captured):
    spec = {
        CMD_ATTR_TIMEOUT_TCP: ("tcp", 4),
        CMD_ATTR_TIMEOUT_TCP_FIN: ("tcp_fin", 4),
        CMD_ATTR_TIMEOUT_UDP: ("udp", 4),
    }
    t = table_of(attrs, spec, where)
    if captured and len(t) != 3:
        raise VectorError(f"{where}: the kernel puts all three timeouts, got {sorted(t)}")
    return {name: u32(t[name]) if name in t else 0 for name in ("tcp", "tcp_fin", "udp")}


def decode_info(attrs, where, captured):
    spec = {1: ("version", 4), 2: ("conn_table_size", 4)}  # IPVS_INFO_ATTR_*
    t = table_of(attrs, spec, where)
    return {
        "version": u32(need(t, "version", where)),
        "conn_table_size": u32(need(t, "conn_table_size", where)),
    }


def decode_ctrl(attrs, where, captured):
    ids = [p for k, p in attrs if k == CTRL_ATTR_FAMILY_ID]
    names = [p for k, p in attrs if k == CTRL_ATTR_FAMILY_NAME]
    unknown = [k for k, _ in attrs if k not in CTRL_ATTRS_KNOWN]
    if unknown:
        raise VectorError(f"{where}: unknown controller attribute(s) {unknown}")
    if len(ids) != 1 or len(ids[0]) != 2:
        raise VectorError(f"{where}: expected one 2-byte CTRL_ATTR_FAMILY_ID")
    if len(names) != 1 or names[0] != b"IPVS\0":
        raise VectorError(f"{where}: CTRL_ATTR_FAMILY_NAME is not \"IPVS\": {names}")
    return u16(ids[0])


# command in the file name -> (decoder, genlmsghdr cmd of the reply, genlmsghdr version)
COMMANDS = {
    "get_service": (decode_service, IPVS_CMD_NEW_SERVICE, IPVS_GENL_VERSION),
    "get_dest": (decode_dest, IPVS_CMD_NEW_DEST, IPVS_GENL_VERSION),
    "get_daemon": (decode_daemon, IPVS_CMD_NEW_DAEMON, IPVS_GENL_VERSION),
    "get_config": (decode_config, IPVS_CMD_SET_CONFIG, IPVS_GENL_VERSION),
    "get_info": (decode_info, IPVS_CMD_SET_INFO, IPVS_GENL_VERSION),
    "ctrl_getfamily": (decode_ctrl, CTRL_CMD_NEWFAMILY, CTRL_FAMILY_VERSION),
}


def read_vector(path):
    if path.endswith(".bin"):
        with open(path, "rb") as f:
            return f.read()
    out = bytearray()
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            for tok in line.split("#", 1)[0].split():
                if not re.fullmatch(r"[0-9a-fA-F]{2}", tok):
                    raise VectorError(f"{path}:{n}: {tok!r} is not a hex byte")
                out.append(int(tok, 16))
    return bytes(out)


def decode_file(path):
    name = os.path.basename(path)
    command = name.split("-", 1)[0]
    if command not in COMMANDS:
        raise VectorError(f"{name}: unknown command {command!r} in the name")
    decoder, cmd, version = COMMANDS[command]
    data = read_vector(path)
    if len(data) < 4:
        raise VectorError(f"{name}: shorter than the genetlink header")
    if (data[0], data[1]) != (cmd, version):
        raise VectorError(
            f"{name}: genetlink header cmd={data[0]} version={data[1]}, "
            f"the reply to {command} is cmd={cmd} version={version}"
        )
    return decoder(walk(data[4:], name), name, "-lab-" in name)


def vectors(vdir=HERE):
    return sorted(
        f for f in os.listdir(vdir) if f.endswith(".bin") or f.endswith(".hex")
    )


def vector_sets():
    """(label, vector dir, procfs capture dir, services removed since capture) of every set of
    vectors: this directory (Debian's 6.1 and the hand-built ones), then each other kernel's
    captures, shared/tests/data/kernel-<version>/netlink, whose procfs captures are its parent.
    A kernel-<version> directory without netlink vectors is an error: every kernel the lab
    boots brings its captures."""
    sets = [("kernel-6.1", HERE, PROCFS_DIR, REMOVED_SINCE_CAPTURE)]
    problems = []
    for d in sorted(os.listdir(DATA_DIR)):
        full = os.path.join(DATA_DIR, d)
        if not d.startswith("kernel-") or d == "kernel-6.1" or not os.path.isdir(full):
            continue
        nl = os.path.join(full, "netlink")
        if not os.path.isdir(nl) or not vectors(nl):
            problems.append(f"{d}: no captured netlink vectors in {nl}")
            continue
        sets.append((d, nl, full, set()))
    for k in REQUIRED_KERNELS:
        if not any(label == f"kernel-{k}" for label, _, _, _ in sets):
            problems.append(f"kernel-{k}: no captures (tests/lab/lab.sh vectors with LAB_KERNEL={k})")
    return sets, problems


# --- cross-checks against what the lab recorded independently -----------------------------------
# Debian's amd64 kernels are built with CONFIG_HZ=250; /proc/net/ip_vs prints the persistence
# timeout in jiffies.
KERNEL_HZ = 250
# Kernel defaults of `ipvsadm --set` (tcp = IP_VS_TCP_S_ESTABLISHED 15 min, tcpfin =
# IP_VS_TCP_S_FIN_WAIT 2 min, udp = IP_VS_UDP_S_NORMAL 5 min; ip_vs_proto_tcp.c / _udp.c).
DEFAULT_TIMEOUTS = {"tcp": 900, "tcp_fin": 120, "udp": 300}
# Services the lab made when the vectors were captured (commit ba7565e) that a later change of
# the scenario script removed: checked against the procfs capture only.
REMOVED_SINCE_CAPTURE = {
    # b34ed1b moved the persistent traffic into its own scenario (23-persistent-traffic).
    ("nat-traffic", ("tcp", "203.0.113.20", 8080)),
}
PROC_FWD = {w: w.lower() for w in ("Masq", "Local", "Tunnel", "Route", "Bypass")}


def scenario_files(scenario, procfs_dir=PROCFS_DIR):
    """(procfs capture dir or None, scenario script path or None) of a scenario name."""
    pat = re.compile(r"\d\d-" + re.escape(scenario))
    proc = [d for d in sorted(os.listdir(procfs_dir)) if pat.fullmatch(d)]
    scripts = [
        f for f in sorted(os.listdir(SCENARIO_DIR)) if f.endswith(".sh") and pat.fullmatch(f[:-3])
    ]
    return (
        os.path.join(procfs_dir, proc[0]) if proc else None,
        os.path.join(SCENARIO_DIR, scripts[0]) if scripts else None,
    )


def proc_addr(text):
    """A /proc/net/ip_vs address: 8 hex digits (IPv4, ntohl) or [xxxx:...:xxxx] (IPv6)."""
    if text.startswith("["):
        return ipv6(bytes.fromhex(text[1:-1].replace(":", "")))
    return ipv4(bytes.fromhex(text))


def parse_proc_ip_vs(path):
    """/proc/net/ip_vs (ip_vs_info_seq_show) -> (version, size, {key: service}) where key is
    ("fwmark", mark) or (protocol, address, port) and service is {"sched", "timeout" (jiffies
    or None), "mask" (the printed ntohl(netmask) or None), "dests": {(addr, port): (fwd,
    weight, active, inactive)}}."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    m = re.fullmatch(r"IP Virtual Server version (\d+)\.(\d+)\.(\d+) \(size=(\d+)\)", lines[0])
    if not m:
        raise VectorError(f"{path}: unexpected first line {lines[0]!r}")
    version = (int(m.group(1)) << 16) | (int(m.group(2)) << 8) | int(m.group(3))
    services, cur = {}, None
    for line in lines[3:]:
        w = line.split()
        if not w:
            continue
        if w[0] == "->":
            a, port = w[1].rsplit(":", 1)
            cur["dests"][(proc_addr(a), int(port, 16))] = (
                PROC_FWD[w[2]], int(w[3]), int(w[4]), int(w[5]))
            continue
        if w[0] == "FWM":
            key = ("fwmark", int(w[1], 16))
        else:
            a, port = w[1].rsplit(":", 1)
            key = (w[0].lower(), proc_addr(a), int(port, 16))
        rest = w[2:]
        cur = {"sched": rest[0], "timeout": None, "mask": None, "dests": {}}
        if "persistent" in rest:
            i = rest.index("persistent")
            cur["timeout"], cur["mask"] = int(rest[i + 1]), int(rest[i + 2], 16)
        services[key] = cur
    return version, int(m.group(4)), services


def canonical(a):
    """An address as a script writes it -> the decoder's text (IPv6 through ipv6())."""
    a = a.strip("[]")
    if ":" not in a:
        return a
    if a.startswith("::ffff:") and "." in a:
        return a
    head, _, tail = a.partition("::")
    h = [int(x, 16) for x in head.split(":") if x]
    t = [int(x, 16) for x in tail.split(":") if x]
    return ipv6(struct.pack(">8H", *(h + [0] * (8 - len(h) - len(t)) + t)))


def parse_script(path):
    """The state a scenario script asks for: services {key: {"sched", "timeout", "mask"}},
    destinations {(key, addr, port): (fwd, weight, tunnel)}, daemons [{option: value}],
    traffic {(proto, vip, port): requests}, and whether it changes the timeouts. Only the
    ipvsadm options the lab scripts use are understood; another one stops the oracle."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    svcs, dests, daemons, traffic, sets_timeouts = {}, {}, [], {}, False
    for line in text.splitlines():
        w = [t for t in line.split("||")[0].split() if not re.match(r"\d?>", t)]
        if len(w) == 4 and w[0] in ("client_http", "client_http_all", "client_udp"):
            proto = "udp" if w[0] == "client_udp" else "tcp"
            key = (proto, w[1], int(w[2]))
            traffic[key] = traffic.get(key, 0) + int(w[3])
            continue
        if len(w) < 2 or w[0] != "ipvsadm":
            continue
        if w[1] == "--set":
            sets_timeouts = True
            continue
        if w[1] == "--start-daemon":
            opts = {"role": w[2]}
            for i in range(3, len(w), 2):
                opts[w[i]] = w[i + 1]
            daemons.append(opts)
            continue
        if w[1] not in ("-A", "-a"):
            continue
        key, opts, v6, i = None, {}, False, 2
        while i < len(w):
            o = w[i]
            if o in ("-t", "-u", "--sctp-service"):
                a, port = w[i + 1].rsplit(":", 1)
                proto = {"-t": "tcp", "-u": "udp", "--sctp-service": "sctp"}[o]
                key = (proto, canonical(a), int(port))
                i += 2
            elif o == "-f":
                key = ("fwmark", int(w[i + 1]))
                i += 2
            elif o == "-6":
                v6 = True
                i += 1
            elif o in ("-m", "-g", "-i"):
                opts["fwd"] = {"-m": "masq", "-g": "route", "-i": "tunnel"}[o]
                i += 1
            elif o in ("--tun-nocsum", "--tun-csum", "--tun-remcsum"):
                opts["csum"] = o
                i += 1
            elif o in ("-s", "-p", "-M", "-r", "-w", "--tun-type", "--tun-port"):
                opts[o] = w[i + 1]
                i += 2
            else:
                raise VectorError(f"{path}: ipvsadm option {o} is not understood by the oracle")
        if key is None:
            raise VectorError(f"{path}: no service in {line!r}")
        if key[0] == "fwmark":
            key = ("fwmark", "inet6" if v6 else "inet", key[1])
        if w[1] == "-A":
            svcs[key] = {
                "sched": opts.get("-s", "wlc"),
                "timeout": opts.get("-p"),
                "mask": opts.get("-M"),
            }
            continue
        a, port = opts["-r"].rsplit(":", 1)
        tunnel = None
        if opts.get("fwd") == "tunnel":  # ipvsadm's defaults: ipip, port 0, nocsum
            csum = {None: 0, "--tun-nocsum": 0, "--tun-csum": 1, "--tun-remcsum": 2}
            tunnel = {
                "kind": opts.get("--tun-type", "ipip"),
                "port": int(opts.get("--tun-port", 0)),
                "flags": csum[opts.get("csum")],
            }
        fwd_weight = (opts.get("fwd", "route"), int(opts.get("-w", 1)))
        dests[(key, canonical(a), int(port))] = fwd_weight + (tunnel,)
    return svcs, dests, daemons, traffic, sets_timeouts


def service_key(svc):
    k = svc["key"]
    if k["kind"] == "fwmark":
        return ("fwmark", k["family"], k["mark"])
    return (k["protocol"], k["address"], k["port"])


def proc_key(key):
    """/proc/net/ip_vs does not print the family of a fwmark service."""
    return ("fwmark", key[2]) if key[0] == "fwmark" else key


def family_of(key):
    return key[1] if key[0] == "fwmark" else ("inet6" if ":" in key[1] else "inet")


class Checker:
    """Collects problems, and which vectors each independent source confirmed."""

    def __init__(self):
        self.problems = []
        self.checked = {}

    def expect(self, cond, name, source, msg):
        if cond:
            self.checked.setdefault(name, set()).add(source)
        else:
            self.problems.append(f"{name}: {msg} ({source})")
        return cond


def cross_check(decoded, procfs_dir=PROCFS_DIR, removed=REMOVED_SINCE_CAPTURE):
    """Compare the decoded captured vectors of each lab scenario with that scenario's
    /proc/net/ip_vs capture (under procfs_dir) and its script. Returns (problems,
    {vector: {sources}})."""
    ck = Checker()
    by = {}
    for name in sorted(decoded):
        m = re.fullmatch(r"(\w+)-lab-(.+)-(\d{4})\.bin", name)
        if m:
            by.setdefault(m.group(2), {}).setdefault(m.group(1), []).append((name, decoded[name]))
    for scenario, cmds in sorted(by.items()):
        proc_dir, script = scenario_files(scenario, procfs_dir)
        if script is None:
            ck.problems.append(f"{scenario}: no tests/lab/scenarios/NN-{scenario}.sh")
            continue
        want, want_dests, want_daemons, traffic, sets_timeouts = parse_script(script)
        src_s = "script " + os.path.basename(script)
        proc = None
        if proc_dir:
            version, size, proc = parse_proc_ip_vs(os.path.join(proc_dir, "ip_vs"))
            src_p = "procfs " + os.path.basename(proc_dir) + "/ip_vs"
            for name, v in cmds.get("get_info", []):
                ck.expect(v == {"version": version, "conn_table_size": size}, name, src_p,
                          f"{v}, procfs says version {version:#x} size {size}")
        for name, v in cmds.get("get_config", []):
            if not sets_timeouts:
                ck.expect(v == DEFAULT_TIMEOUTS, name, "kernel defaults",
                          f"{v}, the script sets no timeouts: kernel defaults {DEFAULT_TIMEOUTS}")
        services = cmds.get("get_service", [])
        dests = list(cmds.get("get_dest", []))
        got = {service_key(s): (n, s) for n, s in services}
        exempt = {k for sc, k in removed if sc == scenario}
        for key in sorted(set(want) - set(got), key=str):
            ck.problems.append(f"{scenario}: the script's service {key} has no get_service vector")
        if proc is not None:
            for key in sorted(set(proc) - {proc_key(k) for k in got}, key=str):
                ck.problems.append(f"{scenario}: procfs service {key} has no get_service vector")
        # The dump asks for each service's destinations in service order, so the get_dest
        # vectors come in runs, one per service, as long as procfs's list for that service.
        pos = 0
        for name, s in services:
            key = service_key(s)
            fam = family_of(key)
            if key in exempt:
                pass
            elif ck.expect(key in want, name, src_s, f"service {key} is not made by the script"):
                w = want[key]
                ck.expect(s["scheduler"] == w["sched"], name, src_s,
                          f"scheduler {s['scheduler']}, script -s {w['sched']}")
                want_t = int(w["timeout"]) if w["timeout"] is not None else None
                got_t = s["persistence_timeout"] if s["flags"]["persistent"] else None
                ck.expect(got_t == want_t, name, src_s, f"persistence {got_t}, script -p {want_t}")
                if w["mask"] is not None:
                    ck.expect(s["netmask"] == int(w["mask"]), name, src_s,
                              f"netmask {s['netmask']}, script -M {w['mask']}")
            if proc is None:
                continue
            p = proc.get(proc_key(key))
            if not ck.expect(p is not None, name, src_p, f"service {key} is not in procfs"):
                continue
            ck.expect(s["scheduler"] == p["sched"], name, src_p,
                      f"scheduler {s['scheduler']}, procfs {p['sched']}")
            if p["timeout"] is None:
                ck.expect(not s["flags"]["persistent"], name, src_p, "persistent, procfs says not")
            else:
                jiffies = s["persistence_timeout"] * KERNEL_HZ
                ck.expect(s["flags"]["persistent"] and jiffies == p["timeout"],
                          name, src_p, f"persistence {s['persistence_timeout']} s, procfs "
                          f"{p['timeout']} jiffies at HZ={KERNEL_HZ}")
                # procfs prints ntohl() of the stored bytes; read them as the decoder must.
                raw = struct.pack(">I", p["mask"])
                mask = struct.unpack(">I" if fam == "inet" else "<I", raw)[0]
                ck.expect(s["netmask"] == mask, name, src_p,
                          f"netmask {s['netmask']}, procfs {p['mask']:08X}")
            run = dests[pos : pos + len(p["dests"])]
            pos += len(p["dests"])
            sums = dict.fromkeys(COUNTERS, 0)
            for dname, d in run:
                dk = (d["address"], d["port"])
                pd = p["dests"].get(dk)
                row = (d["forward"], d["weight"], d["active_conns"], d["inactive_conns"])
                if ck.expect(pd is not None, dname, src_p, f"{dk} is not a destination of {key}"):
                    ck.expect(row == pd, dname, src_p,
                              f"forward/weight/active/inactive {row}, procfs {pd}")
                for c in COUNTERS:
                    sums[c] += d["stats"]["counters"][c]
                if key in exempt:
                    continue
                wd = want_dests.get((key, d["address"], d["port"]))
                row = (d["forward"], d["weight"], d["tunnel"])
                if ck.expect(wd is not None, dname, src_s, f"{dk} is not added to {key}"):
                    ck.expect(row == wd, dname, src_s, f"forward/weight/tunnel {row}, script {wd}")
            # The kernel counts every packet and connection on the destination and on its
            # service (ip_vs_in_stats, ip_vs_out_stats, ip_vs_conn_stats).
            ck.expect(sums == s["stats"]["counters"], name, "sum of its destinations",
                      f"counters {s['stats']['counters']}, its destinations add up to {sums}")
            if key in traffic:
                ck.expect(s["stats"]["counters"]["conns"] == traffic[key], name, src_s,
                          f"{s['stats']['counters']['conns']} connections, "
                          f"the script makes {traffic[key]}")
        if proc is not None and pos != len(dests):
            ck.problems.append(f"{scenario}: {len(dests)} get_dest vector(s), procfs lists {pos}")
        daemons = cmds.get("get_daemon", [])
        ck.expect(len(daemons) == len(want_daemons), scenario, src_s,
                  f"{len(daemons)} get_daemon vector(s), the script starts {len(want_daemons)}")
        for (name, d), w in zip(daemons, want_daemons):
            opt = {
                "--mcast-interface": "interface",
                "--syncid": "sync_id",
                "--sync-maxlen": "max_len",
                "--mcast-group": "mcast_group",
                "--mcast-port": "mcast_port",
                "--mcast-ttl": "mcast_ttl",
            }
            have = {"role": d["role"]}
            have.update({o: str(d[f]) for o, f in opt.items() if o in w})
            ck.expect(have == w, name, src_s, f"{have}, script --start-daemon {w}")
    return ck.problems, ck.checked


def check_set(mode, label, vdir, procfs_dir, removed):
    """Decode, write or check the expected files of one vector set, and cross-check it; returns
    the failures."""
    failures = []
    decoded = {}
    for name in vectors(vdir):
        try:
            decoded[name] = decode_file(os.path.join(vdir, name))
        except VectorError as e:
            failures.append(str(e))
        except (struct.error, UnicodeDecodeError, IndexError) as e:
            failures.append(f"{name}: {e}")
    if mode == "print":
        for name, v in decoded.items():
            print(f"{name}: {json.dumps(v)}")
    wrote = same = 0
    for name, value in decoded.items():
        exp = os.path.join(vdir, name.rsplit(".", 1)[0] + ".expected.json")
        if os.path.exists(exp):
            with open(exp, encoding="utf-8") as f:
                try:
                    have = json.load(f)
                except ValueError as e:
                    failures.append(f"{os.path.basename(exp)}: not JSON ({e})")
                    continue
            if have == value:
                same += 1
                continue
            if mode != "force":
                failures.append(
                    f"{os.path.basename(exp)} differs from the oracle's decode:\n"
                    f"  file:   {json.dumps(have, sort_keys=True)}\n"
                    f"  oracle: {json.dumps(value, sort_keys=True)}"
                )
                continue
        elif mode in ("check", "print"):
            failures.append(f"{name}: no {os.path.basename(exp)} (run oracle.py to write it)")
            continue
        with open(exp, "w", encoding="utf-8") as f:
            json.dump(value, f)
            f.write("\n")
        wrote += 1
    stems = {v.rsplit(".", 1)[0] for v in vectors(vdir)}
    for f in sorted(os.listdir(vdir)):
        if f.endswith(".expected.json") and f[: -len(".expected.json")] not in stems:
            failures.append(f"{f}: no vector of that name")
    try:
        problems, checked = cross_check(decoded, procfs_dir, removed)
    except (VectorError, OSError, ValueError, KeyError, IndexError) as e:
        problems, checked = [f"cross-check: {e!r}"], {}
    failures += problems
    lab = sorted(n for n in decoded if "-lab-" in n)

    def with_source(prefix):
        return sum(1 for n in lab if any(x.startswith(prefix) for x in checked.get(n, ())))

    print(
        f"oracle: {label}: {len(decoded)} vector(s) decoded, {same} expected file(s) equal, "
        f"{wrote} written; "
        f"of {len(lab)} captured: {sum(1 for n in lab if checked.get(n))} cross-checked, "
        f"{with_source('procfs')} with /proc/net/ip_vs, {with_source('script')} with the "
        f"scenario script, {with_source('sum')} with the sum of their destinations, "
        f"{with_source('kernel')} with kernel defaults"
    )
    if mode == "print":
        for n in lab:
            print(f"  {n}: {'; '.join(sorted(checked.get(n, ()))) or 'not cross-checked'}")
    return [f"{label}: {m}" for m in failures]


def main(argv):
    mode = "write"
    for a in argv[1:]:
        if a in ("--check", "--force", "--print"):
            mode = a[2:]
        else:
            print(__doc__)
            return 2
    sets, failures = vector_sets()
    for label, vdir, procfs_dir, removed in sets:
        failures += check_set(mode, label, vdir, procfs_dir, removed)
    for msg in failures:
        print(f"oracle: FAIL {msg}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
