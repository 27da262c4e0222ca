//! The management interface (interface 1): xtalk framing and the MPP dialect.
//!
//! See docs/reference/mpp-twinstar-firmware.md §2 (xtalk) and §3 (MPP). One xtalk packet is one USB bulk
//! transfer (OUT endpoint 0x04, IN endpoint 0x88): a 5-byte [`Header`] (`len` u16 LE including
//! the header, `seq` u16 LE, `op` u8) and a payload. Replies set bit 7 of `op`.
//!
//! - [`Packet`] / [`Header`]: zero-copy view and repr of the header; [`describe`] renders any
//!   transfer as one line.
//! - [`Op`], [`Expect`]: the opcode space and which answer each request gets.
//! - [`AckStatus`]: the status byte of an ACK, with its meaning text.
//! - [`Request`]: host -> device commands; [`Request::emit`] for the host, [`Request::parse`]
//!   for the emulator.
//! - [`Reply`]: device -> host answers; [`Reply::parse`] for the host, [`Reply::emit`] for the
//!   emulator; [`OwnedReply`] is an owned copy.
//! - [`Session`]: the sans-IO request/reply exchange (one request in flight, FIFO queue,
//!   reply matching, timeouts).
//! - [`SerCommand`] / [`SerAnswer`]: the SER_SEND / SER_RECV sub-protocol.
//! - [`EepromTable`], [`Capabilities`], [`CapKey`], [`DeviceStatus`]: shared structures;
//!   [`twinstar_capable`] is §4.1's rule.
//!
//! Contract: decoders take arbitrary bytes and return [`MgmtError`] naming the structure and
//! byte offset, never panic, and never allocate; every `emit` writes exactly `buffer_len()`
//! bytes or returns an error, never panics.
//!
//! ```
//! use xpp_proto::mgmt::{AckStatus, Op, Reply, Request};
//!
//! // Host side: encode a request, as the device (or emulator) would then decode it.
//! let mut buf = [0u8; 16];
//! let n = Request::TwsPortSet { port: 1 }.emit(1, &mut buf).unwrap();
//! assert_eq!(&buf[..n], &[0x06, 0x00, 0x01, 0x00, 0x34, 0x01]);
//! let (seq, req) = Request::parse(&buf[..n]).unwrap();
//! assert_eq!((seq, req), (1, Request::TwsPortSet { port: 1 }));
//! assert_eq!(req.op(), Op::TwsPortSet);
//!
//! // Device side: encode a reply, as the host then decodes it.
//! let n = Reply::Ack { status: AckStatus::Ok }.emit(7, &mut buf).unwrap();
//! assert_eq!(&buf[..n], &[0x06, 0x00, 0x07, 0x00, 0x80, 0x00]);
//! let (seq, reply) = Reply::parse(&buf[..n]).unwrap();
//! assert_eq!(reply.display(seq).to_string(), "ACK seq=7 status=OK");
//! ```

mod display;
mod error;
mod header;
mod op;
mod reply;
mod request;
mod ser;
mod session;
mod status;
mod structs;

pub use error::MgmtError;
pub use header::{HEADER_LEN, Header, MAX_PACKET_LEN, Packet};
pub use op::{Expect, Op, REPLY_BIT};
pub use reply::{DeviceStatus, ExtraInfo, MAX_REPLY_DATA, OwnedReply, Payload, Reply, TwsPower};
pub use request::{MAX_SEG_DATA, MAX_SER_DATA, Request, TWS_PORTS};
pub use ser::{CardInfo, FpgaStat, SerAnswer, SerCommand, SerOp};
pub use session::{Event, RequestId, Session, SessionConfig, SessionStats};
pub use status::AckStatus;
pub use structs::{CapKey, Capabilities, EepromTable, EepromType, FirmwareVersions, twinstar_capable};

use crate::codec::Reader;
use crate::macros::wire_enum;

/// The MPP dialect version current firmware reports in PROTO_GET_REPLY: 0x14 = 1.4 (§2.6).
pub const MPP_PROTO_VERSION: u8 = 0x14;

wire_enum! {
    /// Destination of a DEV_SEND transfer (§3.3).
    pub enum DevDest(u8) {
        /// No destination.
        None = 0 => "NONE",
        /// The FPGA (stage 2 firmware).
        Fpga = 1 => "FPGA",
        /// The boot EEPROM.
        Eeprom = 2 => "EEPROM",
    }
}

/// Checks the framing rules shared by requests and replies and returns the header and a
/// reader over the payload (absolute offsets): at least a header, `len` equal to the transfer
/// length (§2.4 rule 3), at most [`MAX_PACKET_LEN`].
fn frame(data: &[u8]) -> Result<(Header, Reader<'_>), MgmtError> {
    let p = Packet::new_checked(data)?;
    let h = Header::parse(&p);
    if usize::from(h.len) != data.len() {
        return Err(MgmtError::LengthMismatch { len: h.len, actual: data.len() });
    }
    if data.len() > MAX_PACKET_LEN {
        return Err(MgmtError::TooLong { what: "xtalk packet", len: data.len(), max: MAX_PACKET_LEN });
    }
    Ok((h, Reader::with_base(&data[HEADER_LEN..], HEADER_LEN)))
}

/// Renders one management transfer (either direction) as one line, for dump tools:
/// `STATUS_GET seq=1`, `ACK seq=1 status=OK`, or `malformed (<error>): <hex>`.
///
/// Bit 7 of the op selects the reply decoder, otherwise the request decoder.
pub fn describe(transfer: &[u8]) -> impl core::fmt::Display + '_ {
    display::DisplayFn(move |f| {
        let is_reply = transfer.get(4).is_some_and(|&op| op & REPLY_BIT != 0);
        let res = if is_reply {
            Reply::parse(transfer).map(|(seq, r)| write!(f, "{}", r.display(seq)))
        } else {
            Request::parse(transfer).map(|(seq, r)| write!(f, "{}", r.display(seq)))
        };
        match res {
            Ok(written) => written,
            Err(e) => write!(f, "malformed ({e}): {}", display::Hex(transfer)),
        }
    })
}

/// A NUL-padded string up to its first NUL.
fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// Fuzz entry point: decodes `data` as a request and as a reply, re-encodes successes and
/// checks that they decode to the same value.
pub(crate) fn fuzz_packet(data: &[u8]) {
    if let Ok((seq, req)) = Request::parse(data) {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let n = req.emit(seq, &mut buf).expect("a decoded request re-encodes");
        assert_eq!(Request::parse(&buf[..n]), Ok((seq, req)));
        let _ = req.to_string();
    }
    if let Ok((seq, reply)) = Reply::parse(data) {
        let mut buf = [0u8; MAX_PACKET_LEN];
        let n = reply.emit(seq, &mut buf).expect("a decoded reply re-encodes");
        assert_eq!(Reply::parse(&buf[..n]), Ok((seq, reply)));
        let owned = OwnedReply::try_from(reply).expect("a decoded reply fits an OwnedReply");
        assert_eq!(owned.as_reply(), reply);
        let _ = reply.display(seq).to_string();
    }
    // Whatever the bytes, a session must not panic on them, as the answer to any request.
    let mut out = [0u8; MAX_PACKET_LEN];
    for req in [
        Request::StatusGet,
        Request::CapsSet {
            table: EepromTable::default(),
            caps: Capabilities::default(),
            key: CapKey::default(),
        },
        Request::SerSend { data: &[0x03, 0, 0] },
    ] {
        let mut s = Session::new();
        let t0 = crate::time::Instant::ZERO;
        s.handle_input(t0, data);
        let _ = s.send(t0, req);
        let _ = s.poll_transmit(t0, &mut out);
        // The device echoes seq 1 whatever the fuzzer put there, to get past rule 8.
        let mut patched = [0u8; MAX_PACKET_LEN];
        let n = data.len().min(MAX_PACKET_LEN);
        patched[..n].copy_from_slice(&data[..n]);
        if n >= HEADER_LEN {
            patched[2..4].copy_from_slice(&1u16.to_le_bytes());
        }
        s.handle_input(t0, &patched[..n]);
        s.handle_input(t0, data);
        while let Some(ev) = s.poll_event() {
            if let Event::Completed { reply, .. } = ev {
                let _ = reply.to_string();
            }
        }
        s.handle_timeout(crate::time::Instant::from_secs(10));
        s.handle_disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    static SAMPLES: [&[u8]; 6] = [
        &[0x05, 0x00, 0x01, 0x00, 0x11],
        &[0x06, 0x00, 0x01, 0x00, 0x80, 0x00],
        &[0x06, 0x00, 0x01, 0x00, 0x80, 0x0E],
        &[0x09, 0x00, 0x01, 0x00, 0x37, 0x01, 0x10, 0x00, 0x00],
        &[0x09, 0x00, 0x01, 0x00, 0xB7, 0x01, 0x10, 0x40, 0x01],
        &[0x0B, 0x00, 0x04, 0x00, 0xA7, 0x00, 0x01, 0xC0, 0xE4, 0xE4, 0x60],
    ];

    #[test]
    fn describe_both_directions() {
        assert_eq!(describe(SAMPLES[0]).to_string(), "STATUS_GET seq=1");
        assert_eq!(describe(SAMPLES[2]).to_string(), "ACK seq=1 status=BAD_KEY");
        assert_eq!(describe(SAMPLES[3]).to_string(), "SER_SEND seq=1 CARD_INFO_GET addr=0x10");
        assert_eq!(
            describe(&[0x05, 0x00, 0x01, 0x00, 0x42]).to_string(),
            "malformed (unknown op 0x42 at byte 4): 0500010042"
        );
    }

    #[test]
    fn fuzz_entry_survives_mutations() {
        for s in SAMPLES {
            fuzz_packet(s);
            for i in 0..s.len() {
                for bit in 0..8 {
                    let mut m = s.to_vec();
                    m[i] ^= 1 << bit;
                    fuzz_packet(&m);
                }
                fuzz_packet(&s[..i]);
            }
        }
    }

    proptest! {
        #[test]
        fn fuzz_entry_never_panics(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            fuzz_packet(&data);
        }

        #[test]
        fn fuzz_entry_with_consistent_header(op in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut v = vec![0u8; HEADER_LEN];
            v.extend_from_slice(&payload);
            let len = v.len() as u16;
            v[..2].copy_from_slice(&len.to_le_bytes());
            v[2] = 1;
            v[4] = op;
            fuzz_packet(&v);
            let _ = describe(&v).to_string();
        }
    }
}
