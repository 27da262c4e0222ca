//! The XPP data interface (interface 0): packets, transfers and typed messages.
//!
//! See docs/reference/xpp-protocol.md §3–§9. Layers, bottom up:
//!
//! - [`Packet`] is a zero-copy view of one packet (4-byte [`Header`] + payload);
//! - [`Repr`] is one decoded packet: [`Address`], sync bit and a typed [`Message`] for every
//!   opcode of §5.1/§5.2 (unknown and loader-stage opcodes are kept as [`Message::Other`]);
//! - [`deframe`] splits one USB transfer into packets (and [`parse_transfer`] decodes them),
//!   checking lengths and the PCM/command frame class, and reporting each error with its byte
//!   offset in the transfer;
//! - [`Framer`] packs packets into transfers of at most [`MAX_TRANSFER`] bytes, and
//!   [`PcmRound`] builds one tick's PCM_WRITE packets, without allocating;
//! - [`pri`] and [`bri`] map PRI timeslots and BRI packed B-channels to `lines` bits.
//!
//! Contract (smoltcp style): decoders accept arbitrary bytes and never panic; once
//! [`Packet::new_checked`] has succeeded no accessor panics; [`Repr::emit`] never panics and
//! writes exactly [`Repr::buffer_len`] bytes; nothing allocates. For every repr that
//! [`Repr::parse`] returns, emitting it and parsing the result gives the same repr.
//!
//! ```
//! use xpp_proto::wire::{Address, Message, Packet, RegAccess, RegCmd, Repr};
//!
//! // Write FXS line feed (reg 0x40) = 0x01 on port 3 of XPD 1/0 (docs/reference/xpp-protocol.md §11).
//! let repr = Repr::command(
//!     Address::new(1, 0).unwrap(),
//!     Message::RegisterRequest(RegCmd::Reg(RegAccess::write(3, 0x40, 0x01))),
//! );
//! let mut buf = [0u8; 16];
//! let len = repr.emit(&mut buf)?;
//! assert_eq!(&buf[..len], &[0x0A, 0x00, 0x0F, 0x10, 0x35, 0x00, 0x40, 0x00, 0x01, 0x00]);
//!
//! let parsed = Repr::parse(&Packet::new_checked(&buf[..len])?)?;
//! assert_eq!(parsed, repr);
//! assert_eq!(parsed.to_string(), "REGISTER_REQUEST 1/0 port=3 WD reg=0x40 data=0x01");
//! # Ok::<(), xpp_proto::wire::WireError>(())
//! ```

pub mod bri;
mod deframe;
mod error;
mod framer;
mod header;
mod message;
mod pcm;
pub mod pri;
mod regcmd;
#[cfg(feature = "serde")]
mod serde_hex;

#[cfg(test)]
mod tests;

pub use deframe::{Deframer, FrameKind, MAX_TRANSFER, ReprIter, check_transfer_len, deframe, parse_transfer};
pub use error::WireError;
pub use framer::{Framer, PcmRound, build_pcm_round};
pub use header::{Address, HEADER_LEN, Header, MAX_PACKET_LEN, Opcode, Packet};
pub use message::{
    AbDescription, AbRequest, BriLed, CardType, ECHO_MAP_LEN, EchoSet, EchoSetReply, ErrorCode, MAX_UNITS,
    Message, PROTOCOL_REVISION, PriLed, Repr, SetLed, SigChanged, SyncMode, SyncState, UNIT_DESCRIPTOR_LEN,
    UnitDescriptor, xbus_reset,
};
pub use pcm::{
    ALAW_SILENCE, Law, MAX_PCM_PACKET_LEN, PCM_OVERHEAD, Pcm, PcmIter, SAMPLES_PER_TICK, SILENCE_FILL,
    ULAW_SILENCE,
};
pub use regcmd::{MULTIBYTE_MAX, Multibyte, RAM_PACKET_LEN, REG_PACKET_LEN, RamAccess, RegAccess, RegCmd};

/// Fuzz entry point: deframes `data`, decodes every packet, and checks that each decoded repr
/// survives emit-then-parse unchanged. Panics only on such an asymmetry.
pub(crate) fn fuzz_transfer(data: &[u8]) {
    let mut buf = [0u8; MAX_PACKET_LEN];
    for item in parse_transfer(data) {
        let Ok((_, repr)) = item else { break };
        let _ = repr.to_string();
        let len = repr.emit(&mut buf).expect("a parsed repr must emit");
        assert_eq!(len, repr.buffer_len());
        let packet = Packet::new_checked(&buf[..len]).expect("emitted packet must check");
        let again = Repr::parse(&packet).expect("emitted packet must parse");
        assert_eq!(again, repr, "emit/parse asymmetry");
    }
}
