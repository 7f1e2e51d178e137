//! Message I/O of a session: a received frame becomes an FSM event (decoded, the peer's OPEN
//! checked, metrics and status updated), and every message we send is encoded and written with
//! a bounded wait; the Adj-RIB-Out is brought in step with the route table as UPDATEs.

use super::{Session, WRITE_TIMEOUT};
use crate::bgp::config::Family;
use crate::bgp::fsm::{Event, OpenParams, State};
use crate::bgp::nexthop;
use crate::bgp::packet::consts::HeaderErrorSubcode;
use crate::bgp::packet::{self, Message, Notification, UpdateCtx};
use crate::bgp::rib::RouteAttrs;
use netgauze_bgp_pkt::BgpMessage;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

impl Session {
    /// Decode one frame into an event.
    pub(super) fn received(&mut self, frame: &[u8]) {
        let peer = self.init.peer.name.clone();
        // Defence in depth: a panic inside the parser must not kill the session task.
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            packet::decode(frame, &mut self.ctx)
        }));
        let decoded = decoded.unwrap_or_else(|_| {
            self.ctx = packet::parsing_context(self.peer_open.as_ref().is_none_or(|o| o.asn4));
            Err(packet::DecodeError {
                kind: packet::ErrorKind::Header,
                notification: Notification::header_error(HeaderErrorSubcode::Unspecific, vec![]),
                detail: "message parser panicked".into(),
            })
        });
        let m = match decoded {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "malformed message from peer");
                self.pending.push_back(e.into());
                return;
            }
        };
        self.metrics.message(&peer, false, m.kind());
        let ev = match m {
            Message::Open(o) => {
                if self.fsm.state() == State::OpenSent {
                    match packet::check_open(
                        &o,
                        self.init.peer.remote_as,
                        self.init.router_id,
                        self.init.peer.is_ibgp(self.init.local_as),
                        &self.families,
                    ) {
                        Ok(p) => {
                            info!(peer_id = %p.bgp_id, hold = p.hold_time, families = ?p.families, asn4 = p.asn4, "OPEN accepted");
                            self.ctx = packet::parsing_context(p.asn4);
                            let ev = Event::BgpOpen((&p).into());
                            self.peer_open = Some(p);
                            ev
                        }
                        Err(e) => {
                            warn!(error = %e, "OPEN rejected");
                            e.into()
                        }
                    }
                } else {
                    Event::BgpOpen(OpenParams {
                        peer_hold_time: o.hold_time(),
                        bgp_id: o.bgp_id(),
                    })
                }
            }
            Message::Update { ignored_errors } => {
                if ignored_errors > 0 {
                    warn!(
                        ignored_errors,
                        "UPDATE with malformed attributes treated as withdraw (RFC 7606)"
                    );
                    self.metrics.ignored_update_errors(&peer, ignored_errors);
                }
                Event::UpdateMsg
            }
            Message::Notification(n) => {
                warn!(notification = %n.describe(), "NOTIFICATION received");
                self.metrics.notification(&peer, false, n.code, n.subcode);
                self.note_error(format!("received {}", n.describe()));
                if (n.code, n.subcode) == (2, 1) {
                    Event::NotifMsgVerErr(n)
                } else {
                    Event::NotifMsg(n)
                }
            }
            Message::Keepalive => Event::KeepAliveMsg,
            Message::RouteRefresh { afi, safi } => match packet::family_of_afi(afi, safi) {
                Some(f) if self.negotiated().contains(&f) => {
                    if !self.refresh.contains(&f) {
                        self.refresh.push(f);
                    }
                    Event::RouteRefreshMsg
                }
                _ => {
                    debug!(
                        afi,
                        safi, "ROUTE-REFRESH for a family not negotiated: ignored"
                    );
                    return;
                }
            },
        };
        self.pending.push_back(ev);
    }

    /// Families both sides offered in their OPENs (none before the peer's OPEN).
    fn negotiated(&self) -> Vec<Family> {
        self.peer_open
            .as_ref()
            .map(|p| p.families.clone())
            .unwrap_or_default()
    }

    /// Bring the peer in step with the table; with `eor`, follow with End-of-RIB markers.
    pub(super) async fn sync_rib(&mut self, eor: bool) {
        if self.fsm.state() != State::Established {
            return;
        }
        let fams = self.negotiated();
        // Diff under the read guard (no copy of the table); the guard is gone before sending.
        let diff = {
            let table = self.table.borrow_and_update();
            self.rib.sync(&table, &fams)
        };
        self.set_prefix_status();
        if !diff.is_empty() {
            debug!(
                announce = diff.announce.len(),
                withdraw = diff.withdraw.len(),
                "sending route changes"
            );
            self.send_diff(&diff.announce, &diff.withdraw).await;
        }
        if eor {
            for f in fams {
                match packet::end_of_rib(f) {
                    Ok(m) => self.send(&m, "update").await,
                    Err(e) => warn!(error = %e, "cannot build End-of-RIB"),
                }
            }
        }
        self.set_prefix_status();
    }

    /// What the UPDATEs of this session depend on: iBGP or eBGP, 4-octet AS, next hops.
    fn update_ctx(&self) -> UpdateCtx {
        let p = &self.init.peer;
        let local = self.conn.as_ref().map(|c| c.local);
        let (nh_v4, nh_v6) = nexthop::next_hops(p, local, &nexthop::interface_v6_addrs());
        UpdateCtx {
            local_as: self.init.local_as,
            ibgp: p.is_ibgp(self.init.local_as),
            asn4: self.peer_open.as_ref().is_some_and(|o| o.asn4),
            nh_v4,
            nh_v6,
        }
    }

    /// Send announcements and withdrawals as packed UPDATEs, stopping if the connection fails.
    pub(super) async fn send_diff(
        &mut self,
        announce: &[(ipnet::IpNet, RouteAttrs)],
        withdraw: &[ipnet::IpNet],
    ) {
        let ctx = self.update_ctx();
        if ctx.nh_v4.is_none() && announce.iter().any(|(p, _)| p.addr().is_ipv4()) {
            warn!("no IPv4 next hop for this session: IPv4 routes are not sent");
        }
        if ctx.nh_v6.is_none() && announce.iter().any(|(p, _)| p.addr().is_ipv6()) {
            warn!("no IPv6 next hop for this session: IPv6 routes are not sent");
        }
        match packet::build_updates(&ctx, announce, withdraw) {
            Ok(msgs) => {
                for m in msgs {
                    self.send(&m, "update").await;
                    if self.conn.is_none() {
                        return;
                    }
                }
            }
            Err(e) => warn!(error = %e, "cannot build UPDATE"),
        }
    }

    /// Encode and write one message within [`WRITE_TIMEOUT`]; a failed or timed-out write drops
    /// the connection and queues `TcpConnectionFails`.
    pub(super) async fn send(&mut self, m: &BgpMessage, kind: &'static str) {
        let Some(c) = self.conn.as_mut() else { return };
        let bytes = match packet::encode(m) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "cannot encode {kind}");
                return;
            }
        };
        match tokio::time::timeout(WRITE_TIMEOUT, c.writer.write_all(&bytes)).await {
            Ok(Ok(())) => self.metrics.message(&self.init.peer.name, true, kind),
            Ok(Err(e)) => {
                info!(error = %e, "write failed");
                self.note_error(format!("write: {e}"));
                self.conn = None;
                self.pending.push_back(Event::TcpConnectionFails);
            }
            Err(_) => {
                info!("write timed out");
                self.note_error("write timed out".into());
                self.conn = None;
                self.pending.push_back(Event::TcpConnectionFails);
            }
        }
    }
}
