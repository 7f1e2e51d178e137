#!/usr/bin/env python3
"""Write seed inputs (valid BGP messages of every type, BFD Control packets) for the fuzz
targets into seeds/."""
import os
import struct

def msg(ty, body):
    return b"\xff" * 16 + struct.pack("!HB", 19 + len(body), ty) + body

def attr(flags, code, value):
    if len(value) > 255:
        return struct.pack("!BBH", flags | 0x10, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value

caps = (bytes([1, 4, 0, 1, 0, 1]) + bytes([1, 4, 0, 2, 0, 1]) + bytes([2, 0])
        + bytes([65, 4]) + struct.pack("!I", 4200000002) + bytes([64, 6, 0, 120, 0, 1, 1, 0]))
open_ = msg(1, struct.pack("!BHH4sB", 4, 23456, 90, bytes([192, 0, 2, 2]), len(caps) + 2)
            + bytes([2, len(caps)]) + caps)
common = (attr(0x40, 1, b"\x00") + attr(0x40, 2, b"\x02\x02" + struct.pack("!II", 65002, 4200000002))
          + attr(0x80, 4, struct.pack("!I", 10)) + attr(0x40, 5, struct.pack("!I", 100))
          + attr(0xC0, 8, struct.pack("!I", (65001 << 16) | 1))
          + attr(0xC0, 32, struct.pack("!III", 65001, 1, 2)))
v4 = common + attr(0x40, 3, bytes([192, 0, 2, 2]))
nlri4 = bytes([24, 198, 51, 100, 32, 192, 0, 2, 80])
update4 = msg(2, struct.pack("!H", 3) + bytes([24, 203, 0, 113]) + struct.pack("!H", len(v4)) + v4 + nlri4)
nh6 = bytes.fromhex("20010db8000000000000000000000001") + bytes.fromhex("fe800000000000000000000000000001")
reach = struct.pack("!HBB", 2, 1, 32) + nh6 + b"\x00" + bytes([64]) + bytes.fromhex("20010db800000000") + bytes([128]) + bytes.fromhex("20010db8000000000000000000000080")
update6 = msg(2, struct.pack("!H", 0) + struct.pack("!H", len(reach) + 4 + len(common)) + attr(0x90, 14, reach) + common)
unreach = struct.pack("!HB", 2, 1) + bytes([64]) + bytes.fromhex("20010db800000000")
withdraw6 = msg(2, struct.pack("!HH", 0, len(unreach) + 4) + attr(0x90, 15, unreach))
eor4 = msg(2, struct.pack("!HH", 0, 0))
text = "maintenance".encode()
notification = msg(3, bytes([6, 2, len(text)]) + text)
refresh = msg(5, struct.pack("!HBB", 2, 0, 1))
keepalive = msg(4, b"")

seeds = {"open": open_, "update4": update4, "update6": update6, "withdraw6": withdraw6,
         "eor4": eor4, "notification": notification, "refresh": refresh, "keepalive": keepalive}
here = os.path.dirname(os.path.abspath(__file__))
for target in ("decode", "framing"):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    for name, b in seeds.items():
        data = b if target == "decode" else bytes([7]) + b + keepalive
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    if target == "framing":
        with open(os.path.join(d, "stream"), "wb") as f:
            f.write(bytes([13]) + open_ + keepalive + update4 + update6 + withdraw6 + eor4 + refresh + notification)

# BFD Control packets (RFC 5880 section 4.1): version 1, each state, Poll and Final.
def bfd(diag, state, flags, mult, my, your, tx, rx):
    return struct.pack("!BBBBIIIII", 0x20 | diag, (state << 6) | flags, mult, 24, my, your, tx, rx, 0)

bfd_seeds = {"down": bfd(0, 1, 0, 3, 1, 0, 1000000, 300000),
             "init": bfd(0, 2, 0, 3, 1, 2, 1000000, 300000),
             "up_poll": bfd(0, 3, 0x20, 3, 1, 2, 300000, 300000),
             "up_final": bfd(0, 3, 0x10, 5, 1, 2, 100000, 100000),
             "admindown": bfd(7, 0, 0, 1, 1, 0, 1000000, 0)}
d = os.path.join(here, "seeds", "bfd")
os.makedirs(d, exist_ok=True)
for name, b in bfd_seeds.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(b)
