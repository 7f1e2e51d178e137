//! Netlink message framing (`struct nlmsghdr`), pure: building a request and walking the
//! messages of one received datagram. Unit-tested with bytes; never panics on bad input.

use super::attr::CodecError;

/// Length of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_OVERRUN`.
pub const NLMSG_OVERRUN: u16 = 4;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`.
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_DUMP_INTR`.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;

/// One netlink message, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// The payload after the 16-byte header (padding excluded).
    pub payload: &'a [u8],
}

impl NlMsg<'_> {
    /// For `NLMSG_ERROR` (and `NLMSG_DONE` of a dump): the signed error code in front of the
    /// payload (0 = ACK, negative errno otherwise).
    pub fn error_code(&self) -> Result<i32, CodecError> {
        match self.payload.first_chunk::<4>() {
            Some(b) => Ok(i32::from_ne_bytes(*b)),
            None => Err(CodecError(format!(
                "netlink message type {} carries {} byte(s), too short for an error code",
                self.ty,
                self.payload.len()
            ))),
        }
    }
}

/// A request: header (`NLM_F_REQUEST` added to `flags`) followed by `payload`.
pub fn request(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = NLMSG_HDRLEN + payload.len();
    let mut v = Vec::with_capacity((len + 3) & !3);
    v.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
    v.extend_from_slice(&seq.to_ne_bytes());
    v.extend_from_slice(&0u32.to_ne_bytes());
    v.extend_from_slice(payload);
    v.resize((len + 3) & !3, 0);
    v
}

/// Iterator over the messages of one datagram; yields one error, then stops, at a header that
/// is truncated or whose length is impossible.
#[derive(Debug, Clone)]
pub struct NlMsgs<'a> {
    rest: &'a [u8],
    failed: bool,
}

/// Walk the messages in `buf`.
pub fn messages(buf: &[u8]) -> NlMsgs<'_> {
    NlMsgs {
        rest: buf,
        failed: false,
    }
}

impl<'a> Iterator for NlMsgs<'a> {
    type Item = Result<NlMsg<'a>, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let Some((hdr, _)) = self.rest.split_first_chunk::<NLMSG_HDRLEN>() else {
            self.failed = true;
            return Some(Err(CodecError(format!(
                "truncated netlink header: {} byte(s) left, 16 needed",
                self.rest.len()
            ))));
        };
        let len = u32::from_ne_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
        let ty = u16::from_ne_bytes([hdr[4], hdr[5]]);
        let flags = u16::from_ne_bytes([hdr[6], hdr[7]]);
        let seq = u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
        let pid = u32::from_ne_bytes([hdr[12], hdr[13], hdr[14], hdr[15]]);
        if len < NLMSG_HDRLEN {
            self.failed = true;
            return Some(Err(CodecError(format!(
                "netlink message type {ty}: length {len} is shorter than its header"
            ))));
        }
        let Some(payload) = self.rest.get(NLMSG_HDRLEN..len) else {
            self.failed = true;
            return Some(Err(CodecError(format!(
                "netlink message type {ty}: length {len} runs past the end of the datagram ({} byte(s) left)",
                self.rest.len()
            ))));
        };
        let advance = ((len + 3) & !3).min(self.rest.len());
        self.rest = self.rest.get(advance..).unwrap_or(&[]);
        Some(Ok(NlMsg {
            ty,
            flags,
            seq,
            pid,
            payload,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = request(ty, flags, seq, payload);
        // Replies do not carry NLM_F_REQUEST.
        let f = (flags & !NLM_F_REQUEST).to_ne_bytes();
        m[6] = f[0];
        m[7] = f[1];
        m
    }

    #[test]
    fn request_layout() {
        let r = request(0x10, NLM_F_DUMP, 7, &[3, 1, 0, 0, 9]);
        assert_eq!(r.len(), 24);
        assert_eq!(&r[..4], &21u32.to_ne_bytes());
        assert_eq!(&r[4..6], &0x10u16.to_ne_bytes());
        assert_eq!(&r[6..8], &(NLM_F_DUMP | NLM_F_REQUEST).to_ne_bytes());
        assert_eq!(&r[8..12], &7u32.to_ne_bytes());
        assert_eq!(&r[16..21], &[3, 1, 0, 0, 9]);
        assert_eq!(&r[21..], &[0, 0, 0]);
    }

    #[test]
    fn walks_several_messages_and_errors() {
        let mut d = msg(26, NLM_F_MULTI, 5, &[1, 2, 3, 4, 5]);
        d.extend(msg(26, NLM_F_MULTI, 5, &[6, 7, 8, 9]));
        d.extend(msg(NLMSG_DONE, NLM_F_MULTI, 5, &0i32.to_ne_bytes()));
        let m: Vec<_> = messages(&d).collect::<Result<_, _>>().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].payload, &[1, 2, 3, 4, 5]);
        assert_eq!(m[1].payload, &[6, 7, 8, 9]);
        assert_eq!((m[2].ty, m[2].error_code().unwrap()), (NLMSG_DONE, 0));
        let mut e = (-1i32).to_ne_bytes().to_vec();
        e.extend(request(26, 0, 5, &[15, 1, 0, 0]));
        let err = msg(NLMSG_ERROR, 0, 5, &e);
        let m: Vec<_> = messages(&err).collect::<Result<_, _>>().unwrap();
        assert_eq!(m[0].error_code().unwrap(), -1);
        assert!(NlMsg {
            payload: &[1, 2],
            ..m[0]
        }
        .error_code()
        .is_err());
    }

    #[test]
    fn bad_framing_is_an_error() {
        let good = msg(26, 0, 1, &[1, 2, 3, 4]);
        for cut in 1..good.len() {
            let r: Result<Vec<_>, _> = messages(&good[..cut]).collect();
            assert!(r.is_err(), "cut {cut}");
        }
        let mut short = good.clone();
        short[..4].copy_from_slice(&8u32.to_ne_bytes());
        let e = messages(&short).next().unwrap().unwrap_err().to_string();
        assert!(e.contains("shorter than its header"), "{e}");
        let mut long = good.clone();
        long[..4].copy_from_slice(&4000u32.to_ne_bytes());
        let e = messages(&long).next().unwrap().unwrap_err().to_string();
        assert!(e.contains("runs past the end"), "{e}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0xdead_beef_cafe_f00d;
        for _ in 0..20_000 {
            let mut b = Vec::new();
            for _ in 0..(x % 80) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            if b.len() >= 4 && x % 2 == 0 {
                let l = (x >> 20) as u32 % 64;
                b[..4].copy_from_slice(&l.to_ne_bytes());
            }
            for m in messages(&b).flatten() {
                let _ = m.error_code();
            }
        }
    }
}
