//! One management (MPP) request at a time on a transport nothing else drives: what tools
//! (`twinstar`, `lsastribank`) do with an idle device. A running device's requests go through
//! the driver's MPP lane instead.

use std::time::Duration;

use xpp_proto::Instant;
use xpp_proto::mgmt::{Event, MAX_PACKET_LEN, MgmtError, OwnedReply, Request, Session};

use crate::ep;
use crate::transport::{TransferError, Transport};

/// Why a blocking management request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MgmtCallError {
    /// A transfer failed (the device is gone, the endpoint refused it, no answer in time).
    #[error("management transfer: {0}")]
    Transfer(#[from] TransferError),
    /// The request was refused or the reply did not check out.
    #[error(transparent)]
    Mgmt(#[from] MgmtError),
}

/// Sends `request` on the management interface (0x04) and, for a request the device answers,
/// reads and checks its reply (0x88) with `session`'s rules (sequence number, expected
/// reply, ACK status). `Ok(None)` for a request the device does not answer (RENUM, RESET,
/// HALF_RESET, TWS_PORT_SET) once it was sent. Each transfer waits at most `timeout`.
pub fn mgmt_request(
    t: &mut dyn Transport,
    session: &mut Session,
    request: Request<'_>,
    timeout: Duration,
) -> Result<Option<OwnedReply>, MgmtCallError> {
    // The session's own reply timer is not used: the transfers carry the timeout.
    let now = Instant::ZERO;
    let id = session.send(now, request)?;
    let mut buf = [0u8; MAX_PACKET_LEN];
    while let Some(n) = session.poll_transmit(now, &mut buf) {
        let c = t.transfer_blocking(ep::MGMT_OUT, buf[..n].to_vec(), timeout);
        c.status?;
    }
    while session.outstanding().is_some() {
        let c = t.transfer_blocking(ep::MGMT_IN, vec![0; 512], timeout);
        if let Err(e) = c.status {
            session.handle_disconnect();
            let _ = std::iter::from_fn(|| session.poll_event()).count();
            return Err(e.into());
        }
        session.handle_input(now, c.buffer.get(..c.actual_len).unwrap_or(&c.buffer));
    }
    while let Some(e) = session.poll_event() {
        match e {
            Event::Completed { id: done, reply } if done == id => return Ok(Some(reply)),
            Event::Sent { id: done } if done == id => return Ok(None),
            Event::Failed { id: done, error } if done == id => return Err(error.into()),
            _ => {}
        }
    }
    Err(MgmtError::Disconnected.into())
}
