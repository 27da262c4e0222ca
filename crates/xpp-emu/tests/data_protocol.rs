//! Every data-interface request against the model (MODEL.md XPP, REG, TIME-3..7, ECHO rows).

mod data_common;
use data_common as common;

use common::Host;
use proptest::prelude::*;
use xpp_emu::config::{FxsChip, ModuleConfig};
use xpp_emu::data::PortRef;
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{EchoSet, Message, RamAccess, RegAccess, RegCmd, SetLed};

const FXS_FXO: [Option<ModuleConfig>; 4] = [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None];

#[test]
fn ab_request_describes_the_slots() {
    // MODEL: XPP-8, XPP-9, XPP-10
    let mut h = Host::new(FXS_FXO);
    h.send_raw(&[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]);
    let t = h.drain();
    assert_eq!(
        t,
        vec![vec![
            0x18, 0x00, 0x08, 0x00, 0x1E, 0x00, 0x00, 0x00, //
            0x00, 0x10, 0x08, 0x01, 0x01, 0x00, 0x00, 0x00, //
            0x10, 0x20, 0x08, 0x01, 0x00, 0x00, 0x00, 0x00,
        ]]
    );
    // Answered every time; rev byte not checked.
    h.send_raw(&[0x06, 0x00, 0x07, 0x00, 0x00, 0x00]);
    assert_eq!(h.drain().len(), 1);
}

#[test]
fn ab_description_of_every_card_type() {
    let mut c = common::config([
        Some(ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 2, absent_ports: 0 }),
        None,
        Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 4 }),
        Some(ModuleConfig::Bri { ports: 4, nt_mask: 0b0101 }),
    ]);
    c.echo = true;
    let mut h = Host::with(c);
    h.send_raw(&[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]);
    let t = h.drain();
    assert_eq!(
        t[0],
        vec![
            0x28, 0x00, 0x08, 0x00, 0x1E, 0x00, 0x00, 0x00, //
            0x00, 0x62, 0x04, 0x02, 0x01, 0x00, 0x00, 0x00, //
            0x20, 0x40, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, //
            0x30, 0x30, 0x01, 0x04, 0x05, 0x00, 0x00, 0x00, //
            0x40, 0x50, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00,
        ]
    );
}

#[test]
fn register_read_is_echoed_with_data_and_writes_are_silent() {
    // MODEL: REG-3, REG-4, FXS-2
    let mut h = Host::new(FXS_FXO);
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x00, 0x05, 0x40, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(h.drain(), vec![vec![0x0A, 0x00, 0x10, 0x00, 0x05, 0x40, 0x00, 0x00, 0x05, 0x00]]);
    // Write: no reply, read back (MODEL: REG-7).
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x00, 0x35, 0x00, 0x40, 0x00, 0x01, 0x00]);
    assert!(h.drain().is_empty());
    assert_eq!(h.read(0, 3, 0x40), 0x01);
    // Calibration reads 0 (MODEL: FXS-4), hook on-hook (FXS-7), digital inputs idle (FXS-16).
    h.write(0, 1, 0x60, 0x47);
    assert_eq!(h.read(0, 1, 0x60), 0);
    assert_eq!(h.read(0, 1, 0x58), 0);
    assert_eq!(h.read(0, 1, 0x44), 0);
    for p in [2, 3, 6, 7] {
        assert_eq!(h.read(0, p, 0x06) & 1, 1);
    }
    h.d.set_digital_input(0, 0, true);
    assert_eq!(h.read(0, 6, 0x06) & 1, 0);
    // Reserved flag bits are echoed unchanged (MODEL: REG-3); VBAT once the line is scanned.
    h.advance_ms(2);
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x10, 0x05, 0x47, 0x1D, 0x00, 0x00, 0x00]);
    assert_eq!(h.drain(), vec![vec![0x0A, 0x00, 0x10, 0x10, 0x05, 0x47, 0x1D, 0x00, 0x30, 0x00]]);
}

#[test]
fn absent_ports_and_empty_slots_read_ff() {
    // MODEL: REG-6
    let mut h = Host::new([
        Some(ModuleConfig::Fxs { chip: FxsChip::Type1, subtype: 0, absent_ports: 0b1000_0000 }),
        None,
        Some(ModuleConfig::PRI_E1),
        None,
    ]);
    assert_eq!(h.read(0, 7, 0x00), 0xFF);
    h.cmd(1, 0, Message::RegisterRequest(RegCmd::Reg(RegAccess::read(0, 0))));
    assert_eq!(h.drain(), vec![vec![0x0A, 0x00, 0x10, 0x10, 0x05, 0x40, 0x00, 0x00, 0xFF, 0xFF]]);
    // PRI ports 1..3 of a 1-port span (MODEL: PRI-1): writes silent, reads 0xFF.
    h.write_sub(2, 1, RegAccess::write(1, 0x1C, 0xF0));
    assert!(h.drain().is_empty());
    assert_eq!(h.read_at(2, 1, 1, 0x1C), 0xFF);
    h.advance_ms(2);
    assert_eq!(h.read(2, 0, 0x4C), 0x00);
    // Unit 4 without an echo module (MODEL: ECHO-8).
    assert_eq!(h.read_at(4, 0, 0, 0x00), 0xFF);
}

#[test]
fn broadcast_subreg_ram_and_expander() {
    let mut h = Host::new([
        Some(ModuleConfig::FXS),
        Some(ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 0, absent_ports: 0 }),
        None,
        None,
    ]);
    // MODEL: REG-5
    h.write_sub(0, 0, RegAccess::write(0, 0x22, 0x19).broadcast());
    for p in 0..8 {
        assert_eq!(h.read(0, p, 0x22), 0x19);
    }
    h.write(0, 0, 0x22, 0x07);
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Reg(RegAccess::read(5, 0x22).broadcast())));
    let t = h.drain();
    assert_eq!(t[0][5], 0xC0);
    assert_eq!(t[0][8], 0x07, "broadcast read answers with port 0");
    // MODEL: REG-8
    h.write_sub(0, 0, RegAccess::write_sub(2, 0x1E, 0x16, 0xE8, 0x03));
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Reg(RegAccess::read_sub(2, 0x1E, 0x16))));
    assert_eq!(h.drain(), vec![vec![0x0A, 0x00, 0x10, 0x00, 0x25, 0x60, 0x1E, 0x16, 0xE8, 0x03]]);
    // MODEL: REG-9 (type 6), RAM reply 12 bytes.
    h.cmd(1, 0, Message::RegisterRequest(RegCmd::Ram(RamAccess::write(3, 767, 0x1234_5678))));
    h.cmd(1, 0, Message::RegisterRequest(RegCmd::Ram(RamAccess::read(3, 767))));
    assert_eq!(h.drain(), vec![vec![0x0C, 0x00, 0x10, 0x10, 0x37, 0x70, 0xFF, 0x02, 0x78, 0x56, 0x34, 0x12]]);
    // RAM on a type-1 unit: 0xFFFFFFFF.
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Ram(RamAccess::read(3, 767))));
    assert_eq!(&h.drain()[0][8..], &[0xFF; 4]);
    // MODEL: REG-10, FXS-18
    let mut led = RegAccess::write(0, 0x12, 1).via_expander();
    led.data_high = 1 << 3;
    led.do_datah = true;
    h.write_sub(1, 0, led);
    assert!(h.d.fxs_state(1, 3).unwrap().green);
    h.d.set_digital_input(1, 1, true);
    h.cmd(1, 0, Message::RegisterRequest(RegCmd::Reg(RegAccess::read(0, 0x13).via_expander())));
    assert_eq!(h.drain()[0][8], 0x80 | 0x08 | 0x02);
    // Type 6 chip id (MODEL: FXS-3); expander on type 1 reads 0xFF.
    assert_eq!(h.read(1, 0, 0x00), 0xC3);
    h.cmd(0, 0, Message::RegisterRequest(RegCmd::Reg(RegAccess::read(0, 0x13).via_expander())));
    assert_eq!(h.drain()[0][8], 0xFF);
}

#[test]
fn sync_source_each_mode() {
    // MODEL: TIME-3..7
    let mut h = Host::new(FXS_FXO);
    assert_eq!(h.sync(0x00, 0), vec![vec![0x06, 0x00, 0x1A, 0x00, 0x00, 0x00]]);
    assert_eq!(h.sync(0x03, 5), vec![vec![0x06, 0x00, 0x1A, 0x00, 0x03, 0x05]]);
    assert_eq!(h.sync(0x03, 100), vec![vec![0x06, 0x00, 0x1A, 0x00, 0x03, 63]]);
    assert_eq!(h.sync(0x80, 0), vec![vec![0x06, 0x00, 0x1A, 0x00, 0x03, 63]]);
    assert_eq!(h.sync(0x01, 9), vec![vec![0x06, 0x00, 0x1A, 0x00, 0x01, 0x00]]);
    assert!(h.d.is_ticking());
    assert!(h.sync(0x42, 0).is_empty(), "invalid mode: no reply");
    assert_eq!(h.sync(0x00, 0), vec![vec![0x06, 0x00, 0x1A, 0x00, 0x00, 0x00]]);
    assert!(!h.d.is_ticking());
    h.advance_ms(10);
    assert!(h.drain().is_empty(), "no PCM in NONE");
}

#[test]
fn xbus_reset_resets_chips_only() {
    // MODEL: XPP-12
    let mut h = Host::new(FXS_FXO);
    h.write(0, 0, 0x40, 0x01);
    h.send_raw(&[0x05, 0x00, 0x23, 0x00, 0x10]);
    assert_eq!(h.read(0, 0, 0x40), 0x01);
    h.send_raw(&[0x05, 0x00, 0x23, 0x00, 0x04]);
    h.send_raw(&[0x05, 0x00, 0x23, 0x00, 0x00]);
    assert!(h.drain().is_empty());
    assert_eq!(h.read(0, 0, 0x40), 0x00);
    h.send_raw(&[0x05, 0x00, 0x23, 0x00, 0x01]);
    assert_eq!(h.d.stats().xbus_reset_other, 1);
}

#[test]
fn set_led_and_echo_set() {
    let mut c = common::config([Some(ModuleConfig::PRI_E1), None, None, None]);
    c.echo = true;
    let mut h = Host::with(c);
    // MODEL: PRI-12
    h.cmd(0, 0, Message::SetLed(SetLed(0b0101)));
    assert!(h.drain().is_empty());
    assert_eq!(h.d.pri_state(0, 0).unwrap().leds, [false, true, false, false]);
    // MODEL: ECHO-2
    let mut map = [0u8; 128];
    map[5] = 1;
    h.cmd(4, 0, Message::EchoSet(EchoSet { map: &map }));
    assert_eq!(h.drain(), vec![vec![0x06, 0x00, 0x3A, 0x40, 0x00, 0x00]]);
    assert_eq!(h.d.echo_map().unwrap()[5], 1);
    // MODEL: ECHO-4, ECHO-5 — version query.
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x40, 0x05, 0x71, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(h.drain(), vec![vec![0x0A, 0x00, 0x10, 0x40, 0x05, 0x71, 0x00, 0x00, 0x01, 0x01]]);
    // MODEL: ECHO-6 — write 0xBEEF to memory, read it back through 0x0004.
    let spi_w = |reg: u16, v: u16| {
        [0x0A, 0x00, 0x0F, 0x40, 0x05, 0x30, reg as u8, (reg >> 8) as u8, v as u8, (v >> 8) as u8]
    };
    h.send_raw(&spi_w(0x0008, 0x0001));
    h.send_raw(&spi_w(0x000A, 0x0020));
    h.send_raw(&spi_w(0x0004, 0xBEEF));
    h.send_raw(&spi_w(0x0000, 0x3101));
    h.send_raw(&spi_w(0x0004, 0x0000));
    h.send_raw(&spi_w(0x0000, 0x0101));
    assert!(h.drain().is_empty());
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x40, 0x05, 0x70, 0x04, 0x00, 0x00, 0x00]);
    assert_eq!(h.drain()[0][8..], [0xEF, 0xBE]);
    // SET_LED to a non-PRI/BRI unit is ignored (MODEL: XPP-4).
    let before = h.d.stats().ignored;
    h.cmd(4, 0, Message::SetLed(SetLed(1)));
    assert_eq!(h.d.stats().ignored, before + 1);
}

#[test]
fn malformed_input_is_skipped_and_counted() {
    let mut h = Host::new(FXS_FXO);
    // MODEL: XPP-2 — packet_len < 4 ends the transfer.
    h.send_raw(&[0x02, 0x00, 0x07, 0x00]);
    h.send_raw(&[]);
    h.send_raw(&[0x06]);
    // A packet running past the end, after a good one: the good one is processed.
    h.send_raw(&[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00, 0x0A, 0x00, 0x0F]);
    assert_eq!(h.drain().len(), 1);
    assert!(h.d.stats().xpp_malformed >= 3);
    // MODEL: XPP-4 — unknown opcode / wrong length skipped, next packet processed.
    h.send_raw(&[
        0x05, 0x00, 0x77, 0x00, 0x00, 0x07, 0x00, 0x07, 0x00, 0x1E, 0x00, 0x00, 0x06, 0x00, 0x07, 0x00, 0x1E,
        0x00,
    ]);
    assert_eq!(h.drain().len(), 1);
    // MODEL: REG-2 — bytes = 3 ignored.
    h.send_raw(&[0x0A, 0x00, 0x0F, 0x00, 0x03, 0x40, 0x00, 0x00, 0x00, 0x00]);
    assert!(h.drain().is_empty());
    // MODEL: XPP-3 — PCM_WRITE inside a command frame ignored, rest processed.
    h.send_raw(&[
        0x06, 0x00, 0x07, 0x00, 0x1E, 0x00, 0x08, 0x08, 0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x07,
        0x00, 0x1E, 0x00,
    ]);
    assert_eq!(h.drain().len(), 2);
    // A PCM frame holding a command drops the rest of the frame.
    h.send_raw(&[0x08, 0x08, 0x11, 0x80, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]);
    assert!(h.drain().is_empty());
    // MODEL: TIME-18 — PCM_WRITE while not ticking.
    h.send_raw(&[0x08, 0x08, 0x11, 0x80, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(h.d.stats().pcm_dropped_not_ticking, 2);
    // Outside a session nothing is processed.
    h.d.stop_session();
    h.send_raw(&[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]);
    assert!(h.drain().is_empty());
    assert_eq!(h.d.stats().out_not_in_session, 1);
    assert_eq!(h.d.poll_timeout(), None);
}

#[test]
fn patch_refusals() {
    let mut h = Host::new([Some(ModuleConfig::FXS), Some(ModuleConfig::FXS), None, None]);
    assert!(h.d.patch(PortRef::new(0, 0), PortRef::new(1, 0)).is_err());
    assert!(h.d.patch(PortRef::new(0, 0), PortRef::new(3, 0)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn arbitrary_host_bytes_never_panic(
        transfers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..8),
        tick in any::<bool>(),
    ) {
        let mut c = common::config([
            Some(ModuleConfig::FXS),
            Some(ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 0, absent_ports: 0x10 }),
            Some(ModuleConfig::Pri { protocol: PriProtocol::T1, ports: 4 }),
            Some(ModuleConfig::BRI),
        ]);
        c.echo = true;
        let mut h = Host::with(c);
        if tick {
            h.sync(0x01, 0);
        }
        for t in &transfers {
            h.send_raw(t);
            h.advance_ms(1);
            for out in h.drain() {
                prop_assert!(!out.is_empty() && out.len() <= 512);
                for r in xpp_proto::wire::parse_transfer(&out) {
                    prop_assert!(r.is_ok(), "device emitted an unparsable transfer {:02x?}", out);
                }
            }
        }
    }
}
