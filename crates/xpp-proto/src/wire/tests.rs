//! Tests of the wire module: byte vectors written by hand from docs/reference/xpp-protocol.md (§11 worked
//! examples, §14 observed bytes), the smoltcp quartet per message, truncation sweeps, error
//! offsets, Display lines, and property tests.

use super::*;

const fn ramp<const N: usize>(start: u8) -> [u8; N] {
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = start.wrapping_add(i as u8);
        i += 1;
    }
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn addr(unit: u8, subunit: u8) -> Address {
    Address::new(unit, subunit).unwrap()
}

static SILENCE8: [u8; 8] = [0x7F; 8];
static SAMPLES16: [u8; 16] = ramp(0x10);
static SAMPLES248: [u8; 248] = ramp(0x00);
static SAMPLES256: [u8; 256] = ramp(0x80);
static ECHO_MAP: [u8; 128] = {
    let mut m = [0u8; 128];
    m[0] = 1;
    m[9] = 2;
    m[127] = 3;
    m
};

/// The smoltcp quartet for one hand-written vector.
macro_rules! vector {
    ($name:ident, $bytes:expr, $repr:expr) => {
        mod $name {
            use super::*;

            fn bytes() -> Vec<u8> {
                $bytes
            }

            fn repr() -> Repr<'static> {
                $repr
            }

            /// The view reads the hand-written header.
            #[test]
            fn test_deconstruct() {
                let b = bytes();
                let p = Packet::new_checked(&b[..]).unwrap();
                let r = repr();
                assert_eq!(usize::from(p.packet_len()), b.len());
                assert_eq!(p.is_pcm(), r.message.is_pcm());
                assert_eq!(p.pcmslot(), 0);
                assert_eq!(p.opcode(), r.message.opcode());
                assert_eq!(p.address(), r.addr);
                assert_eq!(p.sync(), r.sync);
                assert_eq!(p.payload(), &b[HEADER_LEN..]);
            }

            /// The view's setters build the hand-written bytes.
            #[test]
            fn test_construct() {
                let b = bytes();
                let r = repr();
                let mut buf = vec![0u8; b.len()];
                let mut p = Packet::new_unchecked(&mut buf[..]);
                p.set_packet_len(b.len() as u16);
                p.set_is_pcm(r.message.is_pcm());
                p.set_pcmslot(0);
                p.set_opcode(r.message.opcode());
                p.set_address(r.addr);
                p.set_sync(r.sync);
                p.payload_mut().copy_from_slice(&b[HEADER_LEN..]);
                assert_eq!(buf, b);
            }

            #[test]
            fn test_parse() {
                let b = bytes();
                let p = Packet::new_checked(&b[..]).unwrap();
                assert_eq!(Repr::parse(&p), Ok(repr()));
            }

            #[test]
            fn test_emit() {
                let b = bytes();
                let r = repr();
                assert_eq!(r.buffer_len(), b.len());
                let mut buf = vec![0xA5u8; b.len() + 3];
                assert_eq!(r.emit(&mut buf), Ok(b.len()));
                assert_eq!(&buf[..b.len()], &b[..]);
                assert_eq!(&buf[b.len()..], &[0xA5; 3], "nothing written past the packet");
                // Exact-size buffer works, one byte less is NoRoom, never a panic.
                let mut exact = vec![0u8; b.len()];
                assert_eq!(r.emit(&mut exact), Ok(b.len()));
                assert!(matches!(r.emit(&mut exact[..b.len() - 1]), Err(WireError::NoRoom { .. })));
            }

            /// Every prefix of the packet, as a transfer, is an error and never a panic.
            #[test]
            fn truncation_sweep() {
                let b = bytes();
                for n in 0..b.len() {
                    let items: Vec<_> = parse_transfer(&b[..n]).collect();
                    assert_eq!(items.len(), 1, "prefix {n}");
                    assert!(items[0].is_err(), "prefix {n}");
                }
                // Shortened packet_len inside a full buffer: no panic.
                for n in HEADER_LEN..b.len() {
                    let mut c = b.clone();
                    Packet::new_unchecked(&mut c[..]).set_packet_len(n as u16);
                    let _ = Repr::parse(&Packet::new_unchecked(&c[..]));
                }
            }

            #[test]
            fn in_a_transfer() {
                let b = bytes();
                let items: Vec<_> = parse_transfer(&b).collect();
                assert_eq!(items, vec![Ok((0, repr()))]);
            }
        }
    };
}

fn reg(a: Address, c: RegAccess) -> Repr<'static> {
    Repr::command(a, Message::RegisterRequest(RegCmd::Reg(c)))
}

// §11: AB_REQUEST to 0/0, rev 30; also the first packet seen on the wire in §14.
vector!(ab_request, vec![0x06, 0x00, 0x07, 0x00, 0x1E, 0x00], {
    Repr::command(Address::ZERO, Message::AbRequest(AbRequest { rev: 30, reserved: 0 }))
});

// §6.2 layout: rev 30, FXS type 1 at 0/0 (2 chips x 4 ports, phone-facing), FXO at unit 1.
vector!(
    ab_description,
    vec![
        0x18, 0x00, 0x08, 0x00, 0x1E, 0x00, 0x00, 0x00, //
        0x00, 0x10, 0x02, 0x04, 0xFF, 0x00, 0x00, 0x00, //
        0x10, 0x20, 0x01, 0x08, 0x00, 0x00, 0x00, 0x00,
    ],
    {
        let mut fxs = UnitDescriptor::new(Address::ZERO, CardType::Fxs, 0, 2, 4);
        fxs.port_dir = 0xFF;
        let fxo = UnitDescriptor::new(addr(1, 0), CardType::Fxo, 0, 1, 8);
        Repr::command(Address::ZERO, Message::AbDescription(AbDescription::new(&[fxs, fxo]).unwrap()))
    }
);

// §11: SYNC_SOURCE NONE; §14: the second packet after AB_REQUEST.
vector!(sync_source_none, vec![0x06, 0x00, 0x19, 0x00, 0x00, 0x00], {
    Repr::command(Address::ZERO, Message::SyncSource(SyncState { mode: SyncMode::None, drift: 0 }))
});

// §11: SYNC_SOURCE PLL, drift -3.
vector!(sync_source_pll, vec![0x06, 0x00, 0x19, 0x00, 0x03, 0xFD], {
    Repr::command(Address::ZERO, Message::SyncSource(SyncState { mode: SyncMode::Pll, drift: -3 }))
});

// §14: SYNC_SOURCE(AB,0).
vector!(sync_source_ab, vec![0x06, 0x00, 0x19, 0x00, 0x01, 0x00], {
    Repr::command(Address::ZERO, Message::SyncSource(SyncState { mode: SyncMode::Ab, drift: 0 }))
});

// §6.5: SYNC_REPLY echoing AB.
vector!(sync_reply_ab, vec![0x06, 0x00, 0x1A, 0x00, 0x01, 0x00], {
    Repr::command(Address::ZERO, Message::SyncReply(SyncState { mode: SyncMode::Ab, drift: 0 }))
});

// §6.5: an unknown mode is kept.
vector!(sync_reply_unknown_mode, vec![0x06, 0x00, 0x1A, 0x00, 0x42, 0x14], {
    Repr::command(Address::ZERO, Message::SyncReply(SyncState { mode: SyncMode::Unknown(0x42), drift: 20 }))
});

// §11: XBUS_RESET 0x04; §14: 0x10 every ~1000 ticks.
vector!(xbus_reset_spi, vec![0x05, 0x00, 0x23, 0x00, 0x04], {
    Repr::command(Address::ZERO, Message::XbusReset { mask: xbus_reset::RESET_SPI })
});
vector!(xbus_reset_sync_counters, vec![0x05, 0x00, 0x23, 0x00, 0x10], {
    Repr::command(Address::ZERO, Message::XbusReset { mask: xbus_reset::RESET_SYNC_COUNTERS })
});

// §11: write FXS line feed (reg 0x40) = 0x01, port 3, XPD 1/0.
vector!(reg_write_direct, vec![0x0A, 0x00, 0x0F, 0x10, 0x35, 0x00, 0x40, 0x00, 0x01, 0x00], {
    reg(addr(1, 0), RegAccess::write(3, 0x40, 0x01))
});

// §11: read the same register.
vector!(reg_read_direct, vec![0x0A, 0x00, 0x0F, 0x10, 0x35, 0x40, 0x40, 0x00, 0x00, 0x00], {
    reg(addr(1, 0), RegAccess::read(3, 0x40))
});

// §11: broadcast write reg 0x22 = 0.
vector!(reg_write_broadcast, vec![0x0A, 0x00, 0x0F, 0x10, 0x05, 0x80, 0x22, 0x00, 0x00, 0x00], {
    reg(addr(1, 0), RegAccess::write(5, 0x22, 0).broadcast())
});

// §11: indirect write (type 1), port 0, reg 0x1E sub 0x58 data 00 00.
vector!(reg_write_indirect, vec![0x0A, 0x00, 0x0F, 0x10, 0x05, 0x30, 0x1E, 0x58, 0x00, 0x00], {
    reg(addr(1, 0), RegAccess::write_sub(0, 0x1E, 0x58, 0, 0))
});

// §8.4 init_card_6_30: `0A 00 0F <u>0 05 08 00 00 00 FF`, do_expander, unit 0.
vector!(reg_write_expander, vec![0x0A, 0x00, 0x0F, 0x00, 0x05, 0x08, 0x00, 0x00, 0x00, 0xFF], {
    let mut c = RegAccess::write(0, 0x00, 0x00).via_expander();
    c.data_high = 0xFF;
    reg(Address::ZERO, c)
});

// §11: RAM write, port 2, addr 767 (0x02FF), value 0x12345678.
vector!(ram_write, vec![0x0C, 0x00, 0x0F, 0x10, 0x27, 0x30, 0xFF, 0x02, 0x78, 0x56, 0x34, 0x12], {
    Repr::command(addr(1, 0), Message::RegisterRequest(RegCmd::Ram(RamAccess::write(2, 0x02FF, 0x1234_5678))))
});

// §11: BRI D-channel chunk, 3 bytes, last chunk, port 1, XPD 0/1 (don't-care bytes as 0).
vector!(bri_dchan_chunk, vec![0x0A, 0x00, 0x0F, 0x01, 0x9B, 0xAA, 0xBB, 0xCC, 0x00, 0x00], {
    Repr::command(
        addr(0, 1),
        Message::RegisterRequest(RegCmd::Multibyte(Multibyte::new(1, true, &[0xAA, 0xBB, 0xCC]).unwrap())),
    )
});

// §6.3/§8.4: magic `Wm` (bytes 0, multibyte, eoframe 1), port 0, unit 0.
vector!(bri_magic_wm, vec![0x0A, 0x00, 0x0F, 0x00, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00], {
    Repr::command(Address::ZERO, Message::RegisterRequest(RegCmd::Multibyte(Multibyte::magic(0, true))))
});

// §14: a read answered by echoing the request with opcode 0x10 and the data filled in (10 bytes).
vector!(reg_reply_10, vec![0x0A, 0x00, 0x10, 0x10, 0x35, 0x40, 0x44, 0x00, 0x01, 0x00], {
    let mut c = RegAccess::read(3, 0x44);
    c.data_low = 0x01;
    Repr::command(addr(1, 0), Message::RegisterReply(RegCmd::Reg(c)))
});

// §14: a RAM reply is 12 bytes.
vector!(ram_reply, vec![0x0C, 0x00, 0x10, 0x00, 0x17, 0x70, 0xFF, 0x02, 0x01, 0x00, 0x00, 0x80], {
    let mut c = RamAccess::read(1, 0x02FF);
    c.data = 0x8000_0001;
    Repr::command(Address::ZERO, Message::RegisterReply(RegCmd::Ram(c)))
});

// §14: the unit-0 dummy PCM_WRITE, line 0, tick start, 8 x 0x7F.
vector!(pcm_write_dummy, cat(&[&[0x10, 0x08, 0x11, 0x80, 0x01, 0x00, 0x00, 0x00], &[0x7F; 8]]), {
    Repr { addr: Address::ZERO, sync: true, message: Message::PcmWrite(Pcm::new(1, &SILENCE8).unwrap()) }
});

// §11: PCM_READ, XPD 0/0, lines 0 and 2, tick start.
vector!(pcm_read_two_lines, cat(&[&[0x18, 0x08, 0x12, 0x80, 0x05, 0x00, 0x00, 0x00], &SAMPLES16]), {
    Repr { addr: Address::ZERO, sync: true, message: Message::PcmRead(Pcm::new(5, &SAMPLES16).unwrap()) }
});

// §14: a PCM_READ with lines = 0 ticks the host.
vector!(pcm_read_empty, vec![0x08, 0x08, 0x12, 0x80, 0x00, 0x00, 0x00, 0x00], {
    Repr { addr: Address::ZERO, sync: true, message: Message::PcmRead(Pcm::EMPTY) }
});

// §11: PCM_WRITE with 32 lines (264 bytes), no sync bit.
vector!(pcm_write_32, cat(&[&[0x08, 0x09, 0x11, 0x00, 0xFF, 0xFF, 0xFF, 0xFF], &SAMPLES256]), {
    Repr {
        addr: Address::ZERO,
        sync: false,
        message: Message::PcmWrite(Pcm::new(u32::MAX, &SAMPLES256).unwrap()),
    }
});

// §14: the E1 PCM_WRITE at XPD 1/0: 31 channels, bits 1..31.
vector!(pcm_write_e1, cat(&[&[0x00, 0x09, 0x11, 0x10, 0xFE, 0xFF, 0xFF, 0xFF], &SAMPLES248]), {
    Repr {
        addr: addr(1, 0),
        sync: false,
        message: Message::PcmWrite(Pcm::new(0xFFFF_FFFE, &SAMPLES248).unwrap()),
    }
});

// §11: FXS SIG_CHANGED, line 2 went off-hook, XPD 1/0.
vector!(sig_changed, vec![0x0C, 0x00, 0x06, 0x10, 0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00], {
    Repr::command(addr(1, 0), Message::SigChanged(SigChanged { status: 4, toggles: 4 }))
});

// §11: PRI SET_LED top green on, XPD 2/1.
vector!(pri_set_led, vec![0x05, 0x00, 0x33, 0x21, 0x0D], {
    Repr::command(addr(2, 1), Message::SetLed(SetLed::pri(PriLed::TopGreen, true)))
});

// §9.4: BRI SET_LED red on (select 1, state 1), XPD 3/0.
vector!(bri_set_led, vec![0x05, 0x00, 0x33, 0x30, 0x05], {
    Repr::command(addr(3, 0), Message::SetLed(SetLed::bri(BriLed::Red, true)))
});

// §6.7: ERROR_CODE category 1, errorbits 2, copy of an AB_REQUEST header.
vector!(error_code, vec![0x0A, 0x00, 0x22, 0x00, 0x01, 0x02, 0x06, 0x00, 0x07, 0x00], {
    Repr::command(
        Address::ZERO,
        Message::ErrorCode(ErrorCode { category: 1, errorbits: 2, copy: &[0x06, 0x00, 0x07, 0x00] }),
    )
});

// §6.8: NULL_REPLY, header only.
vector!(null_reply, vec![0x04, 0x00, 0xFE, 0x00], Repr::command(Address::ZERO, Message::NullReply));

// §9.5: ECHO SET to the echo unit 4, subunit 0: 132 bytes (0x84).
vector!(echo_set, cat(&[&[0x84, 0x00, 0x39, 0x40], &ECHO_MAP]), {
    Repr::command(addr(4, 0), Message::EchoSet(EchoSet { map: &ECHO_MAP }))
});

// §5.2: ECHO SET_REPLY status 0.
vector!(echo_set_reply, vec![0x06, 0x00, 0x3A, 0x40, 0x00, 0x00], {
    Repr::command(addr(4, 0), Message::EchoSetReply(EchoSetReply { status: 0, reserved: 0 }))
});

// An unknown opcode is kept with its payload.
vector!(other_unknown, vec![0x07, 0x00, 0x42, 0x23, 0x01, 0x02, 0x03], {
    Repr::command(
        addr(2, 3),
        Message::Other { opcode: Opcode::Unknown(0x42), is_pcm: false, payload: &[1, 2, 3] },
    )
});

// A loader-stage opcode (PIC_REQUEST 0x09) is kept for the firmware module.
vector!(other_pic_request, vec![0x05, 0x00, 0x09, 0x00, 0xAA], {
    Repr::command(
        Address::ZERO,
        Message::Other { opcode: Opcode::PicRequest, is_pcm: false, payload: &[0xAA] },
    )
});

fn parse_bytes(b: &[u8]) -> Result<Repr<'_>, WireError> {
    Repr::parse(&Packet::new_checked(b)?)
}

#[test]
fn lenient_replies_accept_trailing_bytes() {
    // §6.3: the reply parser reads 8 payload bytes: a 12-byte REG reply is valid.
    let r = parse_bytes(&[0x0C, 0x00, 0x10, 0x10, 0x35, 0x40, 0x44, 0x00, 0x01, 0x00, 0xEE, 0xEE]).unwrap();
    let mut c = RegAccess::read(3, 0x44);
    c.data_low = 1;
    assert_eq!(r.message, Message::RegisterReply(RegCmd::Reg(c)));
    assert_eq!(r.buffer_len(), 10);
    // A D-channel reply only needs its data bytes.
    let r = parse_bytes(&[0x07, 0x00, 0x10, 0x01, 0x92, 0x01, 0x02]).unwrap();
    assert_eq!(
        r.message,
        Message::RegisterReply(RegCmd::Multibyte(Multibyte::new(1, false, &[1, 2]).unwrap()))
    );
    // Don't-care body bytes of a multibyte request are ignored (§11 `xx`).
    let r = parse_bytes(&[0x0A, 0x00, 0x0F, 0x01, 0x9B, 0xAA, 0xBB, 0xCC, 0x55, 0x66]).unwrap();
    assert_eq!(
        r.message,
        Message::RegisterRequest(RegCmd::Multibyte(Multibyte::new(1, true, &[0xAA, 0xBB, 0xCC]).unwrap()))
    );
    // SYNC_REPLY, SIG_CHANGED, ECHO SET_REPLY, NULL_REPLY: trailing bytes ignored.
    assert!(parse_bytes(&[0x07, 0x00, 0x1A, 0x00, 0x01, 0x00, 0x99]).is_ok());
    assert!(parse_bytes(&[0x0D, 0x00, 0x06, 0x10, 4, 0, 0, 0, 4, 0, 0, 0, 9]).is_ok());
    assert!(parse_bytes(&[0x07, 0x00, 0x3A, 0x40, 0, 0, 9]).is_ok());
    assert_eq!(parse_bytes(&[0x05, 0x00, 0xFE, 0x00, 9]).unwrap().message, Message::NullReply);
    // AB_DESCRIPTION: N = (len - 8) / 8, remainder ignored.
    let mut d = vec![0x13, 0x00, 0x08, 0x00, 0x1E, 0, 0, 0, 0x00, 0x10, 1, 8, 0xFF, 0, 0, 0, 1, 2, 3];
    let Message::AbDescription(desc) = parse_bytes(&d).unwrap().message else { panic!() };
    assert_eq!(desc.units().len(), 1);
    assert_eq!(desc.host_check(), Ok(()));
    d[4] = 29;
    let Message::AbDescription(desc) = parse_bytes(&d).unwrap().message else { panic!() };
    assert!(desc.host_check().is_err());
}

#[test]
fn strict_lengths_and_fields() {
    let bad_len = |b: &[u8]| matches!(parse_bytes(b), Err(WireError::BadLength { offset: 0, .. }));
    let truncated = |b: &[u8]| matches!(parse_bytes(b), Err(WireError::Truncated { offset: 4, .. }));
    // H->D messages are exact.
    assert!(bad_len(&[0x07, 0x00, 0x07, 0x00, 0x1E, 0x00, 0x00]));
    assert!(truncated(&[0x05, 0x00, 0x07, 0x00, 0x1E]));
    assert!(bad_len(&[0x07, 0x00, 0x19, 0x00, 0x00, 0x00, 0x00]));
    assert!(bad_len(&[0x06, 0x00, 0x23, 0x00, 0x04, 0x00]));
    assert!(truncated(&[0x04, 0x00, 0x23, 0x00]));
    assert!(bad_len(&[0x06, 0x00, 0x33, 0x21, 0x0D, 0x00]));
    assert!(bad_len(&[0x0B, 0x00, 0x0F, 0x10, 0x35, 0x00, 0x40, 0x00, 0x01, 0x00, 0x00]));
    assert!(truncated(&[0x09, 0x00, 0x0F, 0x10, 0x35, 0x00, 0x40, 0x00, 0x01]));
    // RAM needs 12, also in a reply.
    assert!(truncated(&[0x0A, 0x00, 0x10, 0x10, 0x27, 0x30, 0xFF, 0x02, 0x78, 0x56]));
    // reg_cmd.bytes must be 5 or 7 unless multibyte, multibyte count <= 5.
    for bytes in [0u8, 1, 4, 6] {
        let b = [0x0A, 0x00, 0x0F, 0x10, 0x30 | bytes, 0x00, 0x40, 0x00, 0x01, 0x00];
        assert!(matches!(parse_bytes(&b), Err(WireError::Invalid { what: "reg_cmd bytes", offset: 4, .. })));
    }
    let b = [0x0A, 0x00, 0x0F, 0x10, 0x86, 0x00, 0x40, 0x00, 0x01, 0x00];
    assert!(matches!(parse_bytes(&b), Err(WireError::Invalid { what: "reg_cmd bytes", .. })));
    assert!(truncated(&[0x04, 0x00, 0x10, 0x00]));
    // PCM length exact both ways.
    assert!(bad_len(&[0x10, 0x08, 0x12, 0x80, 0x03, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
    assert!(bad_len(&[0x09, 0x08, 0x12, 0x80, 0x00, 0, 0, 0, 1]));
    assert!(truncated(&[0x06, 0x08, 0x12, 0x80, 0x00, 0x00]));
    // is_pcm must agree with the opcode on typed messages.
    assert!(matches!(
        parse_bytes(&[0x08, 0x00, 0x12, 0x80, 0, 0, 0, 0]),
        Err(WireError::Invalid { what: "header is_pcm", .. })
    ));
    assert!(matches!(
        parse_bytes(&[0x05, 0x08, 0x23, 0x00, 0x04]),
        Err(WireError::Invalid { what: "header is_pcm", .. })
    ));
    // ...but is kept on unknown opcodes.
    assert_eq!(
        parse_bytes(&[0x05, 0x08, 0x77, 0x00, 0x04]).unwrap().message,
        Message::Other { opcode: Opcode::Unknown(0x77), is_pcm: true, payload: &[4] }
    );
    // AB_DESCRIPTION: at least one unit, at most 6.
    assert!(truncated(&[0x0F, 0x00, 0x08, 0x00, 0x1E, 0, 0, 0, 0, 0x10, 1, 8, 0xFF, 0, 0]));
    let mut seven = vec![0x40, 0x00, 0x08, 0x00, 0x1E, 0, 0, 0];
    seven.extend_from_slice(&[0u8; 56]);
    assert!(matches!(parse_bytes(&seven), Err(WireError::Invalid { what: "AB_DESCRIPTION", .. })));
    // ECHO SET exact.
    assert!(truncated(&cat(&[&[0x83, 0x00, 0x39, 0x40], &[0u8; 127]])));
    // Reserved header bits are ignored: pcmslot, byte 1 bit 2, address bit 3.
    let r = parse_bytes(&[0x05, 0xF4, 0x23, 0x08, 0x04]).unwrap();
    assert_eq!(r, Repr::command(Address::ZERO, Message::XbusReset { mask: 4 }));
    // Reserved REG flag bits 0-2 and eoframe outside multibyte are ignored.
    let r = parse_bytes(&[0x0A, 0x00, 0x0F, 0x10, 0x3D, 0x07, 0x40, 0x00, 0x01, 0x00]).unwrap();
    assert_eq!(r, reg(addr(1, 0), RegAccess::write(3, 0x40, 0x01)));
}

#[test]
fn emit_rejects_unencodable() {
    let mut buf = [0u8; 64];
    let r = reg(Address::ZERO, RegAccess::write(8, 0x40, 1));
    assert!(matches!(r.emit(&mut buf), Err(WireError::Invalid { what: "reg_cmd portnum", .. })));
    let r = Repr::command(
        Address::ZERO,
        Message::Other { opcode: Opcode::XbusReset, is_pcm: false, payload: &[4] },
    );
    assert!(matches!(r.emit(&mut buf), Err(WireError::Invalid { .. })));
    let u = UnitDescriptor::new(Address::ZERO, CardType::Unknown(16), 0, 1, 1);
    let r = Repr::command(Address::ZERO, Message::AbDescription(AbDescription::new(&[u]).unwrap()));
    assert!(matches!(r.emit(&mut buf), Err(WireError::Invalid { .. })));
    let big = [0u8; 1020];
    let r = Repr::command(
        Address::ZERO,
        Message::Other { opcode: Opcode::Unknown(0x42), is_pcm: false, payload: &big },
    );
    assert!(r.emit(&mut [0u8; 2048]).is_err());
    assert_eq!(AbDescription::new(&[]), None);
    assert_eq!(AbDescription::new(&[u; 7]), None);
    assert_eq!(Multibyte::new(0, false, &[0; 6]), None);
    assert!(Pcm::new(3, &[0; 8]).is_err());
}

#[test]
fn accessors() {
    let led = SetLed(0x0D);
    assert_eq!((led.state(), led.is_on(), led.pri_led()), (1, true, PriLed::TopGreen));
    assert_eq!(SetLed(0x04).bri_led(), BriLed::Red);
    assert_eq!(SetLed(0xF8).bri_led(), BriLed::Green, "BRI reserved bits 3-7 do not change select");
    for (led, v) in
        [(PriLed::BottomRed, 0), (PriLed::BottomGreen, 1), (PriLed::TopRed, 2), (PriLed::TopGreen, 3)]
    {
        assert_eq!(SetLed::pri(led, false).0, v << 2);
        assert_eq!(SetLed::pri(led, true).pri_led(), led);
    }
    let pcm = Pcm::new(5, &SAMPLES16).unwrap();
    let lines: Vec<_> = pcm.iter().map(|(l, s)| (l, s[0])).collect();
    assert_eq!(lines, vec![(0, 0x10), (2, 0x18)]);
    assert_eq!(pcm.iter().len(), 2);
    assert_eq!(pcm.line(2), Some(&ramp::<8>(0x18)));
    assert_eq!(pcm.line(1), None);
    assert_eq!(pcm.line(40), None);
    let all = Pcm::new(u32::MAX, &SAMPLES256).unwrap();
    for (l, s) in &all {
        assert_eq!(all.line(l), Some(s));
        assert_eq!(s[0], 0x80u8.wrapping_add(8 * l));
    }
    assert_eq!(Pcm::packet_len_for(u32::MAX), MAX_PCM_PACKET_LEN);
    assert_eq!(RegCmd::Ram(RamAccess::read(3, 1)).port(), 3);
}

#[test]
fn display_lines() {
    let s = |b: &[u8]| parse_bytes(b).unwrap().to_string();
    assert_eq!(
        s(&cat(&[&[0x18, 0x08, 0x12, 0x80, 0x05, 0, 0, 0], &SAMPLES16])),
        "PCM_READ 0/0 sync lines=0x00000005 [0,2]"
    );
    assert_eq!(
        s(&[0x0A, 0x00, 0x0F, 0x10, 0x35, 0x00, 0x40, 0x00, 0x01, 0x00]),
        "REGISTER_REQUEST 1/0 port=3 WD reg=0x40 data=0x01"
    );
    assert_eq!(
        s(&[0x0A, 0x00, 0x0F, 0x10, 0x35, 0x40, 0x40, 0x00, 0x00, 0x00]),
        "REGISTER_REQUEST 1/0 port=3 RD reg=0x40"
    );
    assert_eq!(
        s(&[0x0A, 0x00, 0x10, 0x10, 0x35, 0x40, 0x40, 0x00, 0x01, 0x00]),
        "REGISTER_REPLY 1/0 port=3 RD reg=0x40 data=0x01"
    );
    assert_eq!(
        s(&[0x0A, 0x00, 0x0F, 0x10, 0x05, 0x80, 0x22, 0x00, 0x00, 0x00]),
        "REGISTER_REQUEST 1/0 port=* WD reg=0x22 data=0x00"
    );
    assert_eq!(
        s(&[0x0A, 0x00, 0x0F, 0x10, 0x05, 0x30, 0x1E, 0x58, 0x00, 0x00]),
        "REGISTER_REQUEST 1/0 port=0 WS reg=0x1e sub=0x58 data=0x00 datah=0x00"
    );
    assert_eq!(
        s(&[0x0C, 0x00, 0x0F, 0x10, 0x27, 0x30, 0xFF, 0x02, 0x78, 0x56, 0x34, 0x12]),
        "REGISTER_REQUEST 1/0 port=2 WR addr=0x02ff data=0x12345678"
    );
    assert_eq!(
        s(&[0x0A, 0x00, 0x0F, 0x01, 0x9B, 0xAA, 0xBB, 0xCC, 0x00, 0x00]),
        "REGISTER_REQUEST 0/1 port=1 MB eoframe data=[aa bb cc]"
    );
    assert_eq!(s(&[0x0A, 0x00, 0x0F, 0x00, 0x80, 0, 0, 0, 0, 0]), "REGISTER_REQUEST 0/0 port=0 WM");
    assert_eq!(s(&[0x06, 0x00, 0x19, 0x00, 0x03, 0xFD]), "SYNC_SOURCE 0/0 mode=PLL drift=-3");
    assert_eq!(s(&[0x05, 0x00, 0x23, 0x00, 0x04]), "XBUS_RESET 0/0 mask=0x04");
    assert_eq!(
        s(&[0x0C, 0x00, 0x06, 0x10, 0x04, 0, 0, 0, 0x04, 0, 0, 0]),
        "SIG_CHANGED 1/0 status=[2] toggles=[2]"
    );
    assert_eq!(s(&[0x05, 0x00, 0x33, 0x21, 0x0D]), "SET_LED 2/1 raw=0x0d state=1");
    assert_eq!(s(&[0x04, 0x00, 0xFE, 0x00]), "NULL_REPLY 0/0");
    assert_eq!(s(&[0x07, 0x00, 0x42, 0x23, 1, 2, 3]), "UNKNOWN(0x42) 2/3 payload=3B");
    assert_eq!(s(&[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]), "AB_REQUEST 0/0 rev=30");
    assert_eq!(
        s(&[0x10, 0x00, 0x08, 0x00, 0x1E, 0, 0, 0, 0x00, 0x10, 2, 4, 0xFF, 0, 0, 0]),
        "AB_DESCRIPTION 0/0 rev=30 units=1 [0/0 FXS/0 chips=2 ppc=4 dir=0xff]"
    );
}

// ---- deframer ----

/// §14 order: AB_REQUEST + SYNC_SOURCE(NONE) as one command transfer, hand-concatenated.
fn command_transfer() -> Vec<u8> {
    cat(&[
        &[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00],
        &[0x06, 0x00, 0x19, 0x00, 0x00, 0x00],
        &[0x0A, 0x00, 0x0F, 0x10, 0x35, 0x40, 0x40, 0x00, 0x00, 0x00],
    ])
}

/// A PCM_WRITE round as §14 saw it: FXS unit 0 dummy (sync), E1 at unit 1.
fn pcm_transfer() -> Vec<u8> {
    cat(&[
        &[0x10, 0x08, 0x11, 0x80, 0x01, 0x00, 0x00, 0x00],
        &[0x7F; 8],
        &[0x00, 0x09, 0x11, 0x10, 0xFE, 0xFF, 0xFF, 0xFF],
        &SAMPLES248,
    ])
}

#[test]
fn deframe_offsets_and_kind() {
    let t = command_transfer();
    let mut d = deframe(&t);
    let offsets: Vec<_> = d.by_ref().map(|r| r.unwrap().0).collect();
    assert_eq!(offsets, vec![0, 6, 12]);
    assert_eq!(d.kind(), Some(FrameKind::Command));
    assert!(d.next().is_none());

    let t = pcm_transfer();
    let reprs: Vec<_> = parse_transfer(&t).map(Result::unwrap).collect();
    assert_eq!(reprs.len(), 2);
    assert_eq!((reprs[0].0, reprs[0].1.sync), (0, true));
    assert_eq!((reprs[1].0, reprs[1].1.addr, reprs[1].1.sync), (16, addr(1, 0), false));
    assert_eq!(reprs[1].1.message.pcm().map(Pcm::lines), Some(0xFFFF_FFFE));
}

#[test]
fn deframe_rejects_with_offsets() {
    let first = |t: &[u8]| deframe(t).find_map(Result::err);
    // Empty and 1..3-byte transfers.
    assert_eq!(first(&[]), Some(WireError::Truncated { what: "packet header", offset: 0, needed: 4 }));
    assert!(matches!(first(&[0x06, 0x00]), Some(WireError::Truncated { offset: 0, .. })));
    // Trailing garbage shorter than a header after a good packet.
    let mut t = command_transfer();
    t.extend_from_slice(&[0x06, 0x00]);
    assert!(matches!(first(&t), Some(WireError::Truncated { offset: 22, .. })));
    // Zero and short packet_len, over-long packet_len.
    let mut t = command_transfer();
    t[6] = 0;
    assert_eq!(
        first(&t),
        Some(WireError::BadLength { offset: 6, len: 0, reason: "shorter than the 4-byte header" })
    );
    let mut t = command_transfer();
    t[12] = 3;
    assert!(matches!(first(&t), Some(WireError::BadLength { offset: 12, len: 3, .. })));
    let mut t = command_transfer();
    t[12] = 11;
    assert!(matches!(first(&t), Some(WireError::BadLength { offset: 12, len: 11, .. })));
    // Over 512 bytes.
    let big = [0x04u8, 0x00, 0xFE, 0x00].repeat(129);
    assert_eq!(first(&big), Some(WireError::TransferTooLong { len: 516, max: 512 }));
    assert_eq!(deframe(&big[..512]).filter(Result::is_ok).count(), 128);
    // A command frame containing a PCM packet.
    let t = cat(&[&command_transfer(), &[0x08, 0x08, 0x12, 0x80, 0, 0, 0, 0]]);
    assert!(matches!(first(&t), Some(WireError::FrameClass { offset: 22, .. })));
    // A PCM frame containing a command.
    let t = cat(&[&pcm_transfer(), &[0x05, 0x00, 0x23, 0x00, 0x04]]);
    assert!(matches!(first(&t), Some(WireError::FrameClass { offset: 272, .. })));
    // A PCM packet inside a PCM frame without is_pcm.
    let mut t = pcm_transfer();
    t[17] &= !0x08;
    assert!(matches!(first(&t), Some(WireError::FrameClass { offset: 16, .. })));
    // A first PCM packet without is_pcm.
    assert!(matches!(
        first(&[0x08, 0x00, 0x12, 0x80, 0, 0, 0, 0]),
        Some(WireError::FrameClass { offset: 0, .. })
    ));
    // A command with is_pcm in a command frame.
    let t = cat(&[&command_transfer(), &[0x05, 0x08, 0x23, 0x00, 0x04]]);
    assert!(matches!(first(&t), Some(WireError::FrameClass { offset: 22, .. })));
    // Repr errors are shifted to the transfer: bad reg_cmd.bytes in the third packet.
    let mut t = command_transfer();
    t[16] = 0x31;
    let items: Vec<_> = parse_transfer(&t).collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(items[2], Err(WireError::Invalid { what: "reg_cmd bytes", offset: 16, .. })));
    // PCM length mismatch reported at the packet.
    let mut t = pcm_transfer();
    t[20] = 0xFF; // lines of the second packet now 0xFFFFFFFF: 264 needed, 256 present.
    assert!(matches!(
        parse_transfer(&t).find_map(Result::err),
        Some(WireError::BadLength { offset: 16, len: 256, .. })
    ));
}

#[test]
fn transfer_truncation_sweep() {
    for t in [command_transfer(), pcm_transfer()] {
        let ends: Vec<usize> = deframe(&t)
            .map(|r| {
                let (o, p) = r.unwrap();
                o + usize::from(p.packet_len())
            })
            .collect();
        for n in 0..=t.len() {
            let items: Vec<_> = parse_transfer(&t[..n]).collect();
            let complete = ends.iter().filter(|&&e| e <= n).count();
            assert!(items[..complete].iter().all(Result::is_ok), "prefix {n}");
            if n > 0 && ends.contains(&n) {
                assert_eq!(items.len(), complete, "prefix {n} ends on a packet boundary");
            } else {
                assert_eq!(items.len(), complete + 1, "prefix {n}");
                assert!(items[complete].is_err(), "prefix {n}");
            }
        }
    }
}

#[test]
fn fuzz_entry_point_on_vectors() {
    fuzz_transfer(&command_transfer());
    fuzz_transfer(&pcm_transfer());
    fuzz_transfer(&[]);
    fuzz_transfer(&[0xFF; 600]);
}

// ---- framer ----

#[test]
fn framer_packs_and_splits() {
    let mut buf = [0u8; 512];
    let mut framer = Framer::new(&mut buf);
    let mut transfers: Vec<Vec<u8>> = Vec::new();
    let mut sink = |t: &[u8]| transfers.push(t.to_vec());
    let a = Repr::command(Address::ZERO, Message::AbRequest(AbRequest::default()));
    let s = Repr::command(Address::ZERO, Message::SyncSource(SyncState { mode: SyncMode::None, drift: 0 }));
    framer.push(&a, &mut sink).unwrap();
    framer.push(&s, &mut sink).unwrap();
    assert_eq!(framer.len(), 12);
    // A PCM packet forces a new transfer (frame class).
    let p =
        Repr { addr: Address::ZERO, sync: true, message: Message::PcmWrite(Pcm::new(1, &SILENCE8).unwrap()) };
    framer.push(&p, &mut sink).unwrap();
    // Two 264-byte packets do not fit one transfer with it.
    let big = Repr {
        addr: addr(1, 0),
        sync: false,
        message: Message::PcmWrite(Pcm::new(u32::MAX, &SAMPLES256).unwrap()),
    };
    framer.push(&big, &mut sink).unwrap();
    framer.push(&big, &mut sink).unwrap();
    framer.flush(&mut sink);
    framer.flush(&mut sink);
    assert!(framer.is_empty());
    let sizes: Vec<_> = transfers.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![12, 16 + 264, 264]);
    assert_eq!(
        transfers[0],
        cat(&[&[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00], &[0x06, 0x00, 0x19, 0x00, 0x00, 0x00]])
    );
    // is_pcm on a non-PCM opcode cannot be framed; a packet larger than a transfer neither.
    let odd = Repr::command(
        Address::ZERO,
        Message::Other { opcode: Opcode::Unknown(0x77), is_pcm: true, payload: &[] },
    );
    assert!(framer.push(&odd, |_: &[u8]| {}).is_err());
    let mut small = [0u8; 8];
    let mut f2 = Framer::new(&mut small);
    assert!(matches!(f2.push(&big, |_: &[u8]| {}), Err(WireError::NoRoom { .. })));
}

#[test]
fn pcm_round_matches_observed_bytes() {
    // §14: unit 0 FXS dummy line 0 with sync, then the E1 at unit 1 without.
    let mut buf = [0u8; 512];
    let mut out = Vec::new();
    let xpds = [
        (Address::ZERO, Pcm::new(1, &SILENCE8).unwrap()),
        (addr(1, 0), Pcm::new(0xFFFF_FFFE, &SAMPLES248).unwrap()),
    ];
    build_pcm_round(&mut buf, xpds, |t: &[u8]| out.push(t.to_vec())).unwrap();
    assert_eq!(out, vec![pcm_transfer()]);

    // push_chunks gathers per-channel chunks.
    let mut chunks = [[0u8; 8]; 32];
    for (i, c) in chunks.iter_mut().enumerate() {
        *c = [i as u8; 8];
    }
    let mut framer = Framer::new(&mut buf);
    let mut round = framer.pcm_round();
    assert!(round.is_empty());
    let mut got = Vec::new();
    round.push_chunks(addr(0, 0), 0b101, &chunks, |t: &[u8]| got.push(t.to_vec())).unwrap();
    // Out of order is refused.
    assert!(round.push_chunks(addr(0, 0), 1, &chunks, |_: &[u8]| {}).is_err());
    round.finish(|t: &[u8]| got.push(t.to_vec()));
    assert_eq!(got, vec![cat(&[&[0x18, 0x08, 0x11, 0x80, 0x05, 0, 0, 0], &[0; 8], &[2; 8]])]);
}

// ---- property tests ----

mod props {
    use super::*;
    use proptest::collection::vec;
    use proptest::prelude::*;

    /// An owned description of a message, so strategies can produce borrowed reprs.
    #[derive(Debug, Clone)]
    enum Spec {
        AbRequest(u8, u8),
        AbDescription(u8, [u8; 3], Vec<UnitDescriptor>),
        RegRequest(RegCmd),
        RegReply(RegCmd),
        Pcm(bool, u32, Vec<u8>),
        Sync(bool, u8, i8),
        Error(u8, u8, Vec<u8>),
        Xbus(u8),
        Null,
        Sig(u32, u32),
        Led(u8),
        Echo(Box<[u8; 128]>),
        EchoReply(u8, u8),
        Other(u8, bool, Vec<u8>),
    }

    impl Spec {
        fn message(&self) -> Message<'_> {
            match self {
                Self::AbRequest(rev, reserved) => {
                    Message::AbRequest(AbRequest { rev: *rev, reserved: *reserved })
                }
                Self::AbDescription(rev, reserved, units) => {
                    let mut d = AbDescription::new(units).unwrap();
                    d.rev = *rev;
                    d.reserved = *reserved;
                    Message::AbDescription(d)
                }
                Self::RegRequest(c) => Message::RegisterRequest(*c),
                Self::RegReply(c) => Message::RegisterReply(*c),
                Self::Pcm(read, lines, samples) => {
                    let p = Pcm::new(*lines, samples).unwrap();
                    if *read { Message::PcmRead(p) } else { Message::PcmWrite(p) }
                }
                Self::Sync(reply, mode, drift) => {
                    let s = SyncState { mode: SyncMode::from(*mode), drift: *drift };
                    if *reply { Message::SyncReply(s) } else { Message::SyncSource(s) }
                }
                Self::Error(c, e, copy) => {
                    Message::ErrorCode(ErrorCode { category: *c, errorbits: *e, copy })
                }
                Self::Xbus(mask) => Message::XbusReset { mask: *mask },
                Self::Null => Message::NullReply,
                Self::Sig(status, toggles) => {
                    Message::SigChanged(SigChanged { status: *status, toggles: *toggles })
                }
                Self::Led(v) => Message::SetLed(SetLed(*v)),
                Self::Echo(map) => Message::EchoSet(EchoSet { map }),
                Self::EchoReply(status, reserved) => {
                    Message::EchoSetReply(EchoSetReply { status: *status, reserved: *reserved })
                }
                Self::Other(op, is_pcm, payload) => {
                    Message::Other { opcode: Opcode::from(*op), is_pcm: *is_pcm, payload }
                }
            }
        }
    }

    pub(super) fn address() -> impl Strategy<Value = Address> {
        (0u8..8, 0u8..8).prop_map(|(u, s)| Address::new(u, s).unwrap())
    }

    fn unit() -> impl Strategy<Value = UnitDescriptor> {
        (address(), 0u8..16, 0u8..16, any::<u8>(), any::<u8>(), any::<u8>(), any::<[u8; 2]>(), any::<u8>())
            .prop_map(|(addr, subtype, ty, numchips, ppc, dir, reserved, ec)| {
                let mut u = UnitDescriptor::new(addr, CardType::from(ty), subtype, numchips, ppc);
                u.port_dir = dir;
                u.reserved = reserved;
                u.ec_addr = ec;
                u
            })
    }

    fn reg_cmd() -> impl Strategy<Value = RegCmd> {
        let reg = (0u8..8, any::<[bool; 5]>(), any::<[u8; 4]>()).prop_map(|(port, f, d)| {
            RegCmd::Reg(RegAccess {
                port,
                broadcast: f[0],
                read: f[1],
                expander: f[2],
                do_subreg: f[3],
                do_datah: f[4],
                reg: d[0],
                subreg: d[1],
                data_low: d[2],
                data_high: d[3],
            })
        });
        let ram = (0u8..8, any::<bool>(), any::<bool>(), any::<u16>(), any::<u32>()).prop_map(
            |(port, broadcast, read, addr, data)| {
                RegCmd::Ram(RamAccess { port, broadcast, read, addr, data })
            },
        );
        let mb = (0u8..8, any::<bool>(), vec(any::<u8>(), 0..=5))
            .prop_map(|(port, eo, data)| RegCmd::Multibyte(Multibyte::new(port, eo, &data).unwrap()));
        prop_oneof![reg, ram, mb]
    }

    fn pcm() -> impl Strategy<Value = Spec> {
        (any::<bool>(), any::<u32>()).prop_flat_map(|(read, lines)| {
            vec(any::<u8>(), Pcm::samples_len(lines)).prop_map(move |s| Spec::Pcm(read, lines, s))
        })
    }

    fn spec() -> impl Strategy<Value = Spec> {
        prop_oneof![
            any::<(u8, u8)>().prop_map(|(a, b)| Spec::AbRequest(a, b)),
            (any::<u8>(), any::<[u8; 3]>(), vec(unit(), 1..=6))
                .prop_map(|(r, x, u)| Spec::AbDescription(r, x, u)),
            reg_cmd().prop_map(Spec::RegRequest),
            reg_cmd().prop_map(Spec::RegReply),
            pcm(),
            (any::<bool>(), prop_oneof![Just(0u8), Just(1), Just(3), Just(0x80), any::<u8>()], any::<i8>())
                .prop_map(|(r, m, d)| Spec::Sync(r, m, d)),
            (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..300)).prop_map(|(c, e, v)| Spec::Error(c, e, v)),
            any::<u8>().prop_map(Spec::Xbus),
            Just(Spec::Null),
            any::<(u32, u32)>().prop_map(|(a, b)| Spec::Sig(a, b)),
            any::<u8>().prop_map(Spec::Led),
            vec(any::<u8>(), 128).prop_map(|v| Spec::Echo(Box::new(v.try_into().unwrap()))),
            any::<(u8, u8)>().prop_map(|(a, b)| Spec::EchoReply(a, b)),
            (
                any::<u8>().prop_filter("untyped", |o| !message::is_typed(Opcode::from(*o))),
                any::<bool>(),
                vec(any::<u8>(), 0..400)
            )
                .prop_map(|(o, p, v)| Spec::Other(o, p, v)),
        ]
    }

    proptest! {
        #[test]
        fn parse_emit_round_trip(a in address(), sync in any::<bool>(), s in spec()) {
            let r = Repr { addr: a, sync, message: s.message() };
            let mut buf = [0u8; MAX_PACKET_LEN];
            let len = r.emit(&mut buf).unwrap();
            prop_assert_eq!(len, r.buffer_len());
            let p = Packet::new_checked(&buf[..len]).unwrap();
            prop_assert_eq!(Repr::parse(&p), Ok(r));
            fuzz_transfer(&buf[..len]);
        }

        #[test]
        fn deframe_never_panics(data in vec(any::<u8>(), 0..=600)) {
            for item in deframe(&data) {
                let _ = item;
            }
            fuzz_transfer(&data);
        }

        #[test]
        fn mutated_transfers_never_panic(idx in any::<prop::sample::Index>(), byte in any::<u8>(), pcm in any::<bool>()) {
            let mut t = if pcm { pcm_transfer() } else { command_transfer() };
            let i = idx.index(t.len());
            t[i] = byte;
            fuzz_transfer(&t);
        }

        #[test]
        fn framer_rounds_redeframe(
            xpds in proptest::sample::subsequence((0u8..64).collect::<Vec<_>>(), 0..12),
            masks in vec(any::<u32>(), 12),
            seed in any::<u8>(),
        ) {
            let samples = [seed; 256];
            let round: Vec<(Address, Pcm<'_>)> = xpds
                .iter()
                .zip(&masks)
                .map(|(&x, &m)| (Address::new(x / 8, x % 8).unwrap(), Pcm::new(m, &samples[..Pcm::samples_len(m)]).unwrap()))
                .collect();
            let mut buf = [0u8; 512];
            let mut transfers = Vec::new();
            build_pcm_round(&mut buf, round.iter().copied(), |t: &[u8]| transfers.push(t.to_vec())).unwrap();
            let mut got = Vec::new();
            for (ti, t) in transfers.iter().enumerate() {
                prop_assert!(t.len() <= MAX_TRANSFER);
                prop_assert!(!t.is_empty());
                for (pi, item) in parse_transfer(t).enumerate() {
                    let (_, r) = item.unwrap();
                    prop_assert_eq!(r.sync, ti == 0 && pi == 0, "sync only on the very first packet");
                    let Message::PcmWrite(p) = r.message else { panic!("not PCM_WRITE") };
                    got.push((r.addr, p));
                }
            }
            prop_assert_eq!(got, round);
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn serializes_to_json() {
    let b = cat(&[&[0x18, 0x08, 0x12, 0x80, 0x05, 0x00, 0x00, 0x00], &SAMPLES16]);
    let r = parse_bytes(&b).unwrap();
    let j = serde_json::to_string(&r).unwrap();
    assert!(j.contains(r#""sync":true"#), "{j}");
    assert!(j.contains(r#""lines":5"#), "{j}");
    assert!(j.contains(r#""samples":"101112131415161718191a1b1c1d1e1f""#), "{j}");
    let r = parse_bytes(&[0x0A, 0x00, 0x0F, 0x01, 0x9B, 0xAA, 0xBB, 0xCC, 0x00, 0x00]).unwrap();
    let j = serde_json::to_string(&r).unwrap();
    assert!(j.contains(r#""data":"aabbcc""#), "{j}");
    let r = parse_bytes(&[0x10, 0x00, 0x08, 0x00, 0x1E, 0, 0, 0, 0x00, 0x10, 2, 4, 0xFF, 0, 0, 0]).unwrap();
    let j = serde_json::to_string(&r).unwrap();
    assert!(j.contains(r#""card_type":"FXS""#), "{j}");
    assert_eq!(j.matches("numchips").count(), 1, "only the units in use: {j}");
}
