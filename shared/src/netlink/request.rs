//! Generic-netlink requests for the IPVS reader, pure: the controller's family lookup and the
//! IPVS GET commands, as the kernel's parsers expect them. Tested against the kernel layout here
//! and against the real kernel in `tests/netns.rs`.

use super::attr::{genl_payload, put_attr};
use super::consts::*;
use crate::model::ServiceKey;
use std::net::IpAddr;

/// CTRL_CMD_GETFAMILY for `name` (send to [`GENL_ID_CTRL`]).
pub fn request_get_family(name: &str) -> Vec<u8> {
    let mut a = Vec::new();
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    put_attr(&mut a, CTRL_ATTR_FAMILY_NAME, &n);
    genl_payload(CTRL_CMD_GETFAMILY, 1, &a)
}

/// A request with no attributes (GET_INFO, GET_CONFIG, GET_SERVICE dump, GET_DAEMON dump).
pub fn request_simple(cmd: u8) -> Vec<u8> {
    genl_payload(cmd, IPVS_GENL_VERSION, &[])
}

/// The attribute set identifying a service, as the kernel's `ip_vs_genl_parse_service` wants
/// it for a lookup: AF plus FWMARK, or AF plus PROTOCOL, ADDR (16 bytes) and PORT.
pub fn service_id_attrs(key: &ServiceKey) -> Vec<u8> {
    let mut s = Vec::new();
    put_attr(
        &mut s,
        IPVS_SVC_ATTR_AF,
        &key.family().as_raw().to_ne_bytes(),
    );
    match key {
        ServiceKey::Fwmark { mark, .. } => {
            put_attr(&mut s, IPVS_SVC_ATTR_FWMARK, &mark.to_ne_bytes());
        }
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            put_attr(
                &mut s,
                IPVS_SVC_ATTR_PROTOCOL,
                &protocol.as_raw().to_ne_bytes(),
            );
            let mut addr = [0u8; 16];
            match address {
                IpAddr::V4(a) => {
                    let (head, _) = addr.split_at_mut(4);
                    head.copy_from_slice(&a.octets());
                }
                IpAddr::V6(a) => addr = a.octets(),
            }
            put_attr(&mut s, IPVS_SVC_ATTR_ADDR, &addr);
            put_attr(&mut s, IPVS_SVC_ATTR_PORT, &port.to_be_bytes());
        }
    }
    s
}

/// IPVS_CMD_GET_DEST (dump) for the destinations of one service.
pub fn request_get_dests(key: &ServiceKey) -> Vec<u8> {
    let mut a = Vec::new();
    put_attr(&mut a, IPVS_CMD_ATTR_SERVICE, &service_id_attrs(key));
    genl_payload(IPVS_CMD_GET_DEST, IPVS_GENL_VERSION, &a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AddressFamily, Protocol};
    use crate::netlink::attr::{attrs, split_genl};

    #[test]
    fn request_builders_match_the_kernel_layout() {
        assert_eq!(request_simple(IPVS_CMD_GET_INFO), vec![15, 1, 0, 0]);
        let fam = request_get_family("IPVS");
        assert_eq!(
            fam,
            vec![3, 1, 0, 0, 9, 0, 2, 0, b'I', b'P', b'V', b'S', 0, 0, 0, 0]
        );
        let key = ServiceKey::Addr {
            protocol: Protocol::Udp,
            address: "198.51.100.5".parse().unwrap(),
            port: 53,
        };
        let req = request_get_dests(&key);
        let (cmd, ver, a) = split_genl(&req).unwrap();
        assert_eq!((cmd, ver), (IPVS_CMD_GET_DEST, 1));
        let top: Vec<_> = attrs(a).collect::<Result<_, _>>().unwrap();
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].kind, IPVS_CMD_ATTR_SERVICE);
        let inner: Vec<_> = attrs(top[0].payload).collect::<Result<_, _>>().unwrap();
        let kinds: Vec<u16> = inner.iter().map(|a| a.kind).collect();
        assert_eq!(kinds, vec![1, 2, 3, 4]);
        assert_eq!(inner[0].payload, &2u16.to_ne_bytes());
        assert_eq!(inner[1].payload, &17u16.to_ne_bytes());
        assert_eq!(&inner[2].payload[..4], &[198, 51, 100, 5]);
        assert_eq!(inner[2].payload.len(), 16);
        assert_eq!(inner[3].payload, &[0, 53]);
        let fw = service_id_attrs(&ServiceKey::Fwmark {
            family: AddressFamily::Inet6,
            mark: 3,
        });
        let kinds: Vec<u16> = attrs(&fw).map(|a| a.unwrap().kind).collect();
        assert_eq!(kinds, vec![IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_FWMARK]);
    }
}
