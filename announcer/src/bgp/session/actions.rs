//! The session's side of the FSM's [`Action`]s: connect, drop, timers, the Adj-RIB-Out sends,
//! and the incoming connections the FSM accepts, holds or rejects (RFC 4271 §6.8 collisions are
//! decided in the FSM; here they are only carried out).

use super::{timer_index, Conn, Session};
use crate::bgp::fsm::{Action, Event, Incoming};
use crate::bgp::network::{apply_gtsm, connect};
use crate::bgp::packet::consts::CeaseSubcode;
use crate::bgp::packet::{self, Notification};
use crate::bgp::rib::family_of;
use netgauze_bgp_pkt::BgpMessage;
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tracing::{debug, info, warn};

impl Session {
    /// Carry out one action of [`crate::bgp::fsm::Fsm::step`]; results that are events (a
    /// connection set up, a write that failed) are queued in `pending`.
    pub(super) async fn act(&mut self, a: Action) {
        match a {
            Action::Connect => {
                self.metrics.connect_attempt(&self.init.peer.name);
                let peer = self.init.peer.clone();
                self.connecting = Some(Box::pin(async move { connect(&peer).await }));
            }
            Action::Listen => {}
            Action::SendOpen => {
                let restarting = match self.init.restart_until {
                    Some(t) if Instant::now() < t => {
                        info!("OPEN after a graceful restart: Restart State and Forwarding State bits set");
                        true
                    }
                    Some(_) => {
                        // The peer has flushed our routes already: this is a fresh start.
                        warn!("restart time over before the session came up: OPEN without the Restart State bit");
                        self.init.restart_until = None;
                        false
                    }
                    None => false,
                };
                let open = packet::build_open(&packet::LocalOpen {
                    local_as: self.init.local_as,
                    router_id: self.init.router_id,
                    hold_time: self.init.peer.hold_time,
                    families: self.families.clone(),
                    graceful_restart: self.init.peer.graceful_restart.map(|g| g.restart_time),
                    restarting,
                    suppress: self.suppress.clone(),
                });
                self.send(&open, "open").await;
            }
            Action::SendKeepalive => self.send(&BgpMessage::KeepAlive, "keepalive").await,
            Action::SendNotification(n) => {
                warn!(notification = %n.describe(), "sending NOTIFICATION");
                self.metrics
                    .notification(&self.init.peer.name, true, n.code, n.subcode);
                self.note_error(format!("sent {}", n.describe()));
                self.send(&BgpMessage::Notification(n.to_netgauze()), "notification")
                    .await;
            }
            Action::DropConnection => {
                if let Some(mut c) = self.conn.take() {
                    let _ = tokio::time::timeout(Duration::from_secs(1), c.writer.shutdown()).await;
                }
                self.connecting = None;
                self.peer_open = None;
                self.sync_at = None;
                self.initial_pending = false;
                self.rib.clear();
                self.set_prefix_status();
            }
            Action::StartTimer(t, d) => self.timers[timer_index(t)] = Some(Instant::now() + d),
            Action::StopTimer(t) => self.timers[timer_index(t)] = None,
            Action::SendInitialRib => {
                if self.routes_released() && self.bfd_open {
                    self.sync_rib(true).await;
                } else {
                    if !self.routes_released() {
                        info!("graceful restart: the table and End-of-RIB wait for the first health decision");
                    } else {
                        info!("established: waiting for BFD Up before announcing");
                    }
                    self.initial_pending = true;
                }
            }
            Action::ResendRib => {
                // Only the families the peer asked for (RFC 2918 §4).
                let fams = std::mem::take(&mut self.refresh);
                let announce: Vec<_> = self
                    .rib
                    .full()
                    .announce
                    .into_iter()
                    .filter(|(p, _)| fams.contains(&family_of(p)))
                    .collect();
                debug!(prefixes = announce.len(), families = ?fams, "answering ROUTE-REFRESH");
                self.send_diff(&announce, &[]).await;
            }
            Action::AcceptIncoming(which) => {
                if let Some(s) = self.incoming_conn(which) {
                    self.take_incoming(s);
                }
            }
            Action::HoldIncoming => self.held = self.arrived.take(),
            Action::RejectIncoming(which) => {
                if let Some(s) = self.incoming_conn(which) {
                    self.reject_collision(s);
                }
            }
            Action::RefuseIncoming => self.arrived = None,
            Action::CollisionResolved(kept) => self.metrics.collision(&self.init.peer.name, kept),
            Action::SuppressCapabilities(codes) => {
                for code in codes {
                    info!(
                        capability = code,
                        "peer refused capability: not sending it again"
                    );
                    self.suppress.push(code);
                }
            }
        }
    }

    fn incoming_conn(&mut self, which: Incoming) -> Option<TcpStream> {
        match which {
            Incoming::New => self.arrived.take(),
            Incoming::Held => self.held.take(),
        }
    }

    /// Make an incoming connection the session's ([`Action::AcceptIncoming`]): GTSM, attach,
    /// then TcpConnectionConfirmed. One that cannot be set up is dropped; the FSM keeps waiting.
    fn take_incoming(&mut self, stream: TcpStream) {
        if let Err(e) = apply_gtsm(&stream, &self.init.peer) {
            warn!(error = %e, "cannot apply TTL security to accepted connection");
            return;
        }
        match self.attach(stream) {
            Ok(()) => self.pending.push_back(Event::TcpConnectionConfirmed),
            Err(e) => self.note_error(format!("socket setup: {e}")),
        }
    }

    /// Close a connection that lost a collision, with Cease / Connection Collision Resolution
    /// (best effort: one non-blocking write of 21 bytes into an empty send buffer).
    fn reject_collision(&self, s: TcpStream) {
        let n = Notification::cease(CeaseSubcode::ConnectionCollisionResolution);
        if let Ok(b) = packet::encode_notification(&n) {
            if s.try_write(&b).is_ok() {
                self.metrics
                    .notification(&self.init.peer.name, true, n.code, n.subcode);
            }
        }
        drop(s);
    }

    /// Make `stream` the session's connection (framed reads, a fresh parsing context).
    pub(super) fn attach(&mut self, stream: TcpStream) -> io::Result<()> {
        stream.set_nodelay(true)?;
        let local = stream.local_addr()?.ip().to_canonical();
        let (r, w) = stream.into_split();
        self.conn = Some(Conn {
            reader: FramedRead::new(r, packet::BgpFraming),
            writer: w,
            local,
        });
        self.ctx = packet::parsing_context(true);
        Ok(())
    }
}
