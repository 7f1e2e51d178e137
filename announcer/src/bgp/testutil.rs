//! Test utilities: a scripted BGP peer on loopback TCP that sends exactly the bytes a test
//! chooses and reads back what the speaker sends. Used by the malformed-message and session
//! tests; not meant for production use.

use super::packet::{self, Notification};
use netgauze_bgp_pkt::capabilities::{
    BgpCapability, FourOctetAsCapability, MultiProtocolExtensionsCapability,
};
use netgauze_bgp_pkt::open::{BgpOpenMessage, BgpOpenMessageParameter};
use netgauze_bgp_pkt::wire::deserializer::BgpMessageParsingError;
use netgauze_bgp_pkt::BgpMessage;
use netgauze_iana::address_family::AddressType;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A listening scripted peer.
#[derive(Debug)]
pub struct ScriptedPeer {
    listener: TcpListener,
}

impl ScriptedPeer {
    /// Listen on 127.0.0.1 with an ephemeral port.
    pub async fn bind() -> io::Result<Self> {
        Ok(ScriptedPeer {
            listener: TcpListener::bind("127.0.0.1:0").await?,
        })
    }

    /// Listen on 127.0.0.1 with an ephemeral port, requiring TCP MD5 key `key` from `peer`.
    pub async fn bind_md5(peer: std::net::IpAddr, key: &str) -> io::Result<Self> {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        s.set_nonblocking(true)?;
        super::sockopt::set_tcp_md5(&s, peer, 0, key.as_bytes())?;
        s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        s.listen(8)?;
        Ok(ScriptedPeer {
            listener: TcpListener::from_std(s.into())?,
        })
    }

    /// The listening address.
    pub fn addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept the speaker's next connection.
    pub async fn accept(&self, timeout: Duration) -> io::Result<PeerConn> {
        let (s, _) = tokio::time::timeout(timeout, self.listener.accept())
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "no connection from the speaker")
            })??;
        Ok(PeerConn { stream: s })
    }
}

/// Connect to a passive speaker, optionally with a TCP MD5 key, sending with IP TTL `ttl`.
pub async fn connect(
    addr: SocketAddr,
    md5: Option<&str>,
    ttl: u8,
    timeout: Duration,
) -> io::Result<PeerConn> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(k) = md5 {
        super::sockopt::set_tcp_md5(&sock, addr.ip(), 0, k.as_bytes())?;
    }
    let r = socket2::SockRef::from(&sock);
    if addr.is_ipv4() {
        r.set_ttl_v4(u32::from(ttl))?;
    } else {
        r.set_unicast_hops_v6(u32::from(ttl))?;
    }
    let s = tokio::time::timeout(timeout, sock.connect(addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    Ok(PeerConn { stream: s })
}

/// One frame as received: type and body (after the 19-byte header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMsg {
    /// Message type (1 OPEN, 2 UPDATE, 3 NOTIFICATION, 4 KEEPALIVE, 5 ROUTE-REFRESH).
    pub ty: u8,
    /// The whole message including the header.
    pub bytes: Vec<u8>,
}

impl RawMsg {
    /// The NOTIFICATION, if this is one.
    pub fn notification(&self) -> Option<Notification> {
        if self.ty != 3 {
            return None;
        }
        let b = self.bytes.get(19..)?;
        Some(Notification::new(
            *b.first()?,
            *b.get(1)?,
            b.get(2..)?.to_vec(),
        ))
    }

    /// Decode with netgauze (4-octet AS context).
    pub fn parse(&self) -> Result<BgpMessage, BgpMessageParsingError> {
        use netgauze_parse_utils::reader::SliceReader;
        use netgauze_parse_utils::traits::ParseFromWithOneInput;
        let mut ctx = packet::parsing_context(true);
        BgpMessage::parse(&mut SliceReader::new(&self.bytes), &mut ctx)
    }
}

/// A connection from the speaker, driven by the test.
#[derive(Debug)]
pub struct PeerConn {
    stream: TcpStream,
}

impl PeerConn {
    /// Send raw bytes.
    pub async fn send_raw(&mut self, b: &[u8]) -> io::Result<()> {
        self.stream.write_all(b).await
    }

    /// Send a message.
    pub async fn send(&mut self, m: &BgpMessage) -> io::Result<()> {
        let b = packet::encode(m).map_err(io::Error::other)?;
        self.send_raw(&b).await
    }

    /// Receive one message (no validation beyond the length field).
    pub async fn recv(&mut self, timeout: Duration) -> io::Result<RawMsg> {
        tokio::time::timeout(timeout, async {
            let mut hdr = [0u8; 19];
            self.stream.read_exact(&mut hdr).await?;
            let len = usize::from(u16::from_be_bytes([hdr[16], hdr[17]]));
            if len < 19 {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "length < 19"));
            }
            let mut body = vec![0u8; len - 19];
            self.stream.read_exact(&mut body).await?;
            let mut bytes = hdr.to_vec();
            bytes.extend_from_slice(&body);
            Ok(RawMsg { ty: hdr[18], bytes })
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "nothing received"))?
    }

    /// Receive messages until one of type `ty` arrives (others are skipped).
    pub async fn recv_type(&mut self, ty: u8, timeout: Duration) -> io::Result<RawMsg> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.recv(left).await?;
            if m.ty == ty {
                return Ok(m);
            }
        }
    }

    /// Receive until the speaker sends a NOTIFICATION; returns it.
    pub async fn expect_notification(&mut self, timeout: Duration) -> io::Result<Notification> {
        let m = self.recv_type(3, timeout).await?;
        m.notification()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short NOTIFICATION"))
    }

    /// True when the speaker closed the connection within `timeout` (after reading what is left).
    pub async fn closed(&mut self, timeout: Duration) -> bool {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Read the speaker's OPEN, answer with `open` and a KEEPALIVE, and wait for its KEEPALIVE.
    pub async fn handshake(&mut self, open: &[u8], timeout: Duration) -> io::Result<RawMsg> {
        let theirs = self.recv_type(1, timeout).await?;
        self.send_raw(open).await?;
        self.send_raw(&keepalive()).await?;
        self.recv_type(4, timeout).await?;
        Ok(theirs)
    }
}

/// A KEEPALIVE.
pub fn keepalive() -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&19u16.to_be_bytes());
    v.push(4);
    v
}

/// Wrap a body in a header with the right length.
pub fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    v.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    v.push(ty);
    v.extend_from_slice(body);
    v
}

/// A well-formed OPEN from `asn` with IPv4+IPv6 unicast, route refresh and 4-octet AS.
pub fn open(asn: u32, hold: u16, id: Ipv4Addr) -> Vec<u8> {
    let caps = vec![
        BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
            AddressType::Ipv4Unicast,
        )),
        BgpCapability::MultiProtocolExtensions(MultiProtocolExtensionsCapability::new(
            AddressType::Ipv6Unicast,
        )),
        BgpCapability::RouteRefresh,
        BgpCapability::FourOctetAs(FourOctetAsCapability::new(asn)),
    ];
    let m = BgpMessage::Open(BgpOpenMessage::new(
        u16::try_from(asn).unwrap_or(packet::AS_TRANS),
        hold,
        id,
        vec![BgpOpenMessageParameter::new_capabilities(caps)],
    ));
    packet::encode(&m).unwrap_or_default()
}
