//! The management (MPP) lane of a running device: requests on interface 1 beside the data
//! stream (docs/reference/mpp-twinstar-firmware.md §2, §4), for TwinStar (active port,
//! watchdog, power), status and EEPROM reads while the lines keep running.
//!
//! A [`MgmtLane`] sits in each device's shared state. A caller queues a request into its
//! [`Session`] and waits on the device's condition variable; the run loop, on each pass,
//! sends what the session releases on `0x04`, keeps one read queued on `0x88` while a reply is
//! awaited, feeds what comes back into the session, and files each finished request for its
//! caller. An idle lane costs the loop one check per pass (no transport call, no allocation).

use xpp_proto::Instant;
use xpp_proto::mgmt::{Event, MgmtError, OwnedReply, RequestId, Session};

/// The outcome of one request: the reply (an ACK for ACK-answered requests), `None` for a
/// request the device does not answer (RENUM, RESET, HALF_RESET, TWS_PORT_SET).
pub(crate) type Outcome = Result<Option<OwnedReply>, MgmtError>;

/// One device's management session and the outcomes its callers have not collected yet.
#[derive(Debug, Default)]
pub(crate) struct MgmtLane {
    pub(crate) session: Session,
    /// Finished requests, in order; each caller takes its own.
    done: Vec<(RequestId, Outcome)>,
    /// Requests whose callers stopped waiting before they finished: dropped when they do.
    abandoned: Vec<RequestId>,
}

impl MgmtLane {
    /// Whether the run loop has nothing to do for this lane.
    pub(crate) fn is_idle(&self) -> bool {
        self.session.is_idle()
    }

    /// Moves the session's events into the outcome list; whether any request finished.
    pub(crate) fn collect(&mut self) -> bool {
        let mut any = false;
        while let Some(e) = self.session.poll_event() {
            let (id, outcome) = match e {
                Event::Completed { id, reply } => (id, Ok(Some(reply))),
                Event::Sent { id } => (id, Ok(None)),
                Event::Failed { id, error } => (id, Err(error)),
                // Session events this driver version does not know (the enum is open).
                other => {
                    log::debug!("management event not handled: {other:?}");
                    continue;
                }
            };
            if let Some(i) = self.abandoned.iter().position(|a| *a == id) {
                self.abandoned.swap_remove(i);
                continue;
            }
            self.done.push((id, outcome));
            any = true;
        }
        any
    }

    /// The outcome of `id`, if it has finished (taken: a second call gives `None`).
    pub(crate) fn take(&mut self, id: RequestId) -> Option<Outcome> {
        let i = self.done.iter().position(|(d, _)| *d == id)?;
        Some(self.done.remove(i).1)
    }

    /// Forgets a request whose caller stopped waiting: its outcome, now or when it comes.
    pub(crate) fn abandon(&mut self, id: RequestId) {
        if self.take(id).is_none() {
            self.abandoned.push(id);
        }
    }

    /// The device is gone: every queued and outstanding request fails.
    pub(crate) fn disconnect(&mut self) -> bool {
        self.session.handle_disconnect();
        self.collect()
    }

    /// Runs the session's reply timer.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
    }
}
