//! Shared helpers of the xpp-emu integration tests: a synchronous MPP host on an
//! [`EmulatedTransport`].
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use xpp_emu::EmulatedTransport;
use xpp_proto::mgmt::{AckStatus, OwnedReply, Reply, Request};
use xpp_usb::{Transport, ep};

/// Test timeout for one exchange (the emulator answers at once on a manual clock).
pub const T: Duration = Duration::from_millis(10);

/// Sends raw bytes on the MPP OUT endpoint and returns the raw reply, if one is ready.
pub fn raw(t: &mut EmulatedTransport, bytes: &[u8]) -> Option<Vec<u8>> {
    let c = t.transfer_blocking(ep::MGMT_OUT, bytes.to_vec(), T);
    assert_eq!(c.status, Ok(()), "OUT transfer");
    let c = t.transfer_blocking(ep::MGMT_IN, vec![0; 512], T);
    match c.status {
        Ok(()) => Some(c.buffer),
        Err(xpp_usb::TransferError::Cancelled | xpp_usb::TransferError::Disconnected) => None,
        Err(e) => panic!("IN transfer failed: {e}"),
    }
}

/// Sends `req` with `seq` and parses the reply; checks the seq echo and len (MPP-2).
pub fn mpp(t: &mut EmulatedTransport, seq: u16, req: Request<'_>) -> Option<OwnedReply> {
    let mut buf = [0u8; 512];
    let n = req.emit(seq, &mut buf).expect("request encodes");
    let bytes = raw(t, &buf[..n])?;
    let (rseq, reply) = Reply::parse(&bytes).expect("reply parses");
    assert_eq!(rseq, seq, "seq echoed");
    assert_eq!(usize::from(u16::from_le_bytes([bytes[0], bytes[1]])), bytes.len());
    Some(OwnedReply::try_from(reply).expect("owned"))
}

/// Sends `req` and expects an ACK; returns its status.
pub fn ack(t: &mut EmulatedTransport, req: Request<'_>) -> AckStatus {
    match mpp(t, 7, req) {
        Some(OwnedReply::Ack { status }) => status,
        other => panic!("expected ACK, got {other:?}"),
    }
}
