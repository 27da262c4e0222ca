//! Every MPP command against the model, with the error replies and status codes of the MPP
//! rows (MODEL.md MPP-1..29), through an `EmulatedTransport` on a manual virtual clock.

mod common;

use common::{ack, mpp, raw};
use xpp_emu::config::{EepromKind, Stage};
use xpp_emu::eeprom::key_oracle;
use xpp_emu::{DeviceConfig, Emulator, UsbStage};
use xpp_proto::Duration;
use xpp_proto::mgmt::{
    AckStatus, CardInfo, DevDest, EepromTable, FpgaStat, OwnedReply, Request, SerAnswer, SerCommand,
};
use xpp_usb::Transport;

fn open(stage: Stage) -> (Emulator, xpp_emu::EmulatedTransport) {
    open_cfg(DeviceConfig::default().with_start_stage(stage))
}

fn open_cfg(cfg: DeviceConfig) -> (Emulator, xpp_emu::EmulatedTransport) {
    let emu = Emulator::new(cfg);
    let t = emu.transport(0).expect("enumerated");
    (emu, t)
}

#[test]
fn framing_errors() {
    let (_e, mut t) = open(Stage::UsbLoaded);
    // MPP-4: shorter than a header; seq from bytes 2-3 when 4 bytes arrived.
    assert_eq!(raw(&mut t, &[0x05, 0x00, 0x09]).unwrap(), [0x06, 0x00, 0x00, 0x00, 0x80, 0x07]);
    assert_eq!(raw(&mut t, &[0x05, 0x00, 0x09, 0x00]).unwrap(), [0x06, 0x00, 0x09, 0x00, 0x80, 0x07]);
    // MPP-5: len larger than the transfer; len smaller than the op's size.
    assert_eq!(raw(&mut t, &[0x09, 0x00, 0x02, 0x00, 0x11]).unwrap(), [6, 0, 2, 0, 0x80, 0x07]);
    assert_eq!(raw(&mut t, &[0x05, 0x00, 0x03, 0x00, 0x31]).unwrap(), [6, 0, 3, 0, 0x80, 0x07]);
    // MPP-5: bytes after len are ignored.
    let r = raw(&mut t, &[0x05, 0x00, 0x04, 0x00, 0x35, 0xEE, 0xEE]).unwrap();
    assert_eq!(r, [6, 0, 4, 0, 0xB5, 0]);
    // MPP-6: unknown op, reply op, other base op.
    for op in [0x42u8, 0x91, 0x02, 0xFF] {
        assert_eq!(
            raw(&mut t, &[0x05, 0x00, 0x05, 0x00, op]).unwrap(),
            [6, 0, 5, 0, 0x80, 0x06],
            "op {op:#x}"
        );
    }
    // MPP-7: any seq.
    assert!(matches!(
        mpp(&mut t, 0xFFFF, Request::TwsPortGet),
        Some(OwnedReply::TwsPortGetReply { port: 0 })
    ));
}

#[test]
fn proto_and_status() {
    let (_e, mut t) = open(Stage::UsbLoaded);
    // MPP-8: whatever version the host asks for.
    let r = raw(&mut t, &[0x07, 0x00, 0x01, 0x00, 0x01, 0x13, 0x00]).unwrap();
    assert_eq!(r, [0x07, 0x00, 0x01, 0x00, 0x81, 0x14, 0x00]);
    // MPP-9 / LOAD-7 / LOAD-14.
    let Some(OwnedReply::StatusGetReply(s)) = mpp(&mut t, 1, Request::StatusGet) else { panic!() };
    assert_eq!((s.i2cs_data, s.status), (0x10, 0));
    assert_eq!(&s.versions.usb, b"11452\0");
    assert_eq!(s.versions.fpga, [0; 6]);
    assert_eq!(&s.versions.eeprom, b"1\0\0\0\0\0");
    let (_e, mut t) = open(Stage::FpgaLoaded);
    let Some(OwnedReply::StatusGetReply(s)) = mpp(&mut t, 1, Request::StatusGet) else { panic!() };
    assert_eq!((s.status, &s.versions.fpga), (1, b"9732\0\0"));
    for (kind, bits) in [(EepromKind::Small, 0x08), (EepromKind::None, 0x00)] {
        let (_e, mut t) =
            open_cfg(DeviceConfig::default().with_start_stage(Stage::Running).with_eeprom(kind));
        let Some(OwnedReply::StatusGetReply(s)) = mpp(&mut t, 1, Request::StatusGet) else { panic!() };
        assert_eq!(s.i2cs_data, bits);
    }
}

#[test]
fn caps_get_and_set() {
    let (emu, mut t) = open(Stage::UsbLoaded);
    let Some(OwnedReply::CapsGetReply { table, caps, key }) = mpp(&mut t, 1, Request::CapsGet) else {
        panic!()
    };
    assert_eq!(table.label, *b"00000001");
    assert_eq!((table.source, table.vendor, table.product, table.release), (0xC0, 0xE4E4, 0x1160, 0x0101));
    assert_eq!((caps.ports_fxs, caps.ports_fxo), (8, 8));
    assert_eq!(key, key_oracle(&table, &caps));
    // MPP-11: wrong key, wrong table, good key.
    let mut more = caps;
    more.ports_fxs = 16;
    more.extra_features = 1;
    assert_eq!(ack(&mut t, Request::CapsSet { table, caps: more, key }), AckStatus::BadKey);
    let mut other = table;
    other.label = *b"99999999";
    let k = key_oracle(&other, &more);
    assert_eq!(ack(&mut t, Request::CapsSet { table: other, caps: more, key: k }), AckStatus::BadKey);
    let k = key_oracle(&table, &more);
    assert_eq!(ack(&mut t, Request::CapsSet { table, caps: more, key: k }), AckStatus::Ok);
    // MPP-12: read back at once, effective only after RESET.
    let Some(OwnedReply::CapsGetReply { caps: c, .. }) = mpp(&mut t, 2, Request::CapsGet) else { panic!() };
    assert_eq!(c, more);
    assert_eq!(emu.with_device(|d| d.effective_capabilities()), caps);
    // MPP-11: refused while the FPGA is loaded.
    let (_e, mut t) = open(Stage::Running);
    assert_eq!(ack(&mut t, Request::CapsSet { table, caps: more, key: k }), AckStatus::CapsFpgaLoaded);
    // MPP-10/11: non-Large EEPROMs.
    for (kind, st) in [(EepromKind::Small, AckStatus::NoLargeEeprom), (EepromKind::None, AckStatus::NoEeprom)]
    {
        let (_e, mut t) =
            open_cfg(DeviceConfig::default().with_start_stage(Stage::UsbLoaded).with_eeprom(kind));
        assert_eq!(ack(&mut t, Request::CapsGet), st);
        assert_eq!(ack(&mut t, Request::CapsSet { table, caps, key }), st);
        assert_eq!(ack(&mut t, Request::ExtrainfoGet), st);
        assert_eq!(ack(&mut t, Request::ExtrainfoSet { text: [0; 24] }), st);
    }
}

#[test]
fn eeprom_set_extrainfo_and_block_read() {
    let (emu, mut t) = open(Stage::UsbLoaded);
    let Some(OwnedReply::ExtrainfoGetReply(e)) = mpp(&mut t, 1, Request::ExtrainfoGet) else { panic!() };
    assert_eq!(e.text, [0xFF; 24]);
    let text = *b"rack 3 shelf 2\0\0\0\0\0\0\0\0\0\0";
    assert_eq!(ack(&mut t, Request::ExtrainfoSet { text }), AckStatus::Ok);
    let Some(OwnedReply::ExtrainfoGetReply(e)) = mpp(&mut t, 1, Request::ExtrainfoGet) else { panic!() };
    assert_eq!(e.text, text);
    // MPP-17.
    let Some(OwnedReply::EepromBlkRdReply { offset, data }) =
        mpp(&mut t, 1, Request::EepromBlkRd { offset: 0x2C, len: 4 })
    else {
        panic!()
    };
    assert_eq!((offset, data.as_slice()), (0x2C, &b"rack"[..]));
    let r = mpp(&mut t, 1, Request::EepromBlkRd { offset: 0, len: 505 });
    assert!(matches!(r, Some(OwnedReply::EepromBlkRdReply { data, .. }) if data.as_slice().len() == 505));
    assert_eq!(ack(&mut t, Request::EepromBlkRd { offset: 0, len: 506 }), AckStatus::OffsetError);
    assert_eq!(ack(&mut t, Request::EepromBlkRd { offset: 8190, len: 3 }), AckStatus::OffsetError);
    // MPP-15: the identity changes only at the next cold boot.
    let mut table = EepromTable { label: *b"00000042", ..EepromTable::default() };
    table.source = 0xC0;
    table.vendor = 0xE4E4;
    table.product = 0x1163;
    table.release = 0x0101;
    assert_eq!(ack(&mut t, Request::EepromSet { table }), AckStatus::Ok);
    assert_eq!(t.info().serial.as_deref(), Some("00000001"));
    assert!(mpp(&mut t, 1, Request::Reset).is_none());
    emu.advance(Duration::from_millis(600));
    let t = emu.transport(0).unwrap();
    assert_eq!((t.info().vendor_id, t.info().product_id), (0xE4E4, 0x1163));
    let (_e, mut t) =
        open_cfg(DeviceConfig::default().with_start_stage(Stage::UsbLoaded).with_eeprom(EepromKind::None));
    assert_eq!(ack(&mut t, Request::EepromSet { table }), AckStatus::NoEeprom);
    assert_eq!(ack(&mut t, Request::EepromBlkRd { offset: 0, len: 1 }), AckStatus::NoEeprom);
}

#[test]
fn dev_send_statuses() {
    let (_e, mut t) = open(Stage::UsbLoaded);
    // MPP-20/21 without a session.
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 0, data: &[1] }), AckStatus::NoDest);
    assert_eq!(ack(&mut t, Request::DevSendEnd), AckStatus::NoDest);
    // MPP-19 destinations.
    for dest in [DevDest::None, DevDest::from(3)] {
        assert_eq!(ack(&mut t, Request::DevSendStart { dest, version: [0; 6] }), AckStatus::NoDest);
    }
    assert_eq!(
        ack(&mut t, Request::DevSendStart { dest: DevDest::Fpga, version: *b"1\0\0\0\0\0" }),
        AckStatus::Ok
    );
    // MPP-20: empty segment, offset gap (aborts).
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 0, data: &[] }), AckStatus::TooShort);
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 0, data: &[1, 2] }), AckStatus::Ok);
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 3, data: &[1] }), AckStatus::OffsetError);
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 2, data: &[1] }), AckStatus::NoDest);
    // MPP-22: an unknown image is refused with FPGA error, FPGA stays empty.
    assert_eq!(ack(&mut t, Request::DevSendStart { dest: DevDest::Fpga, version: [0; 6] }), AckStatus::Ok);
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 0, data: &[1, 2, 3] }), AckStatus::Ok);
    assert_eq!(ack(&mut t, Request::DevSendEnd), AckStatus::FpgaError);
    // MPP-19/20/21: EEPROM session writes raw EEPROM.
    assert_eq!(ack(&mut t, Request::DevSendStart { dest: DevDest::Eeprom, version: [0; 6] }), AckStatus::Ok);
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 0x100, data: &[0xAB] }), AckStatus::Ok);
    assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 8191, data: &[1, 2] }), AckStatus::WriteFail);
    assert_eq!(ack(&mut t, Request::DevSendEnd), AckStatus::Ok);
    let r = mpp(&mut t, 1, Request::EepromBlkRd { offset: 0x100, len: 1 });
    assert!(matches!(r, Some(OwnedReply::EepromBlkRdReply { data, .. }) if data.as_slice() == [0xAB]));
    // MPP-19: no FPGA reload from 11x2.
    let (_e, mut t) = open(Stage::Running);
    assert_eq!(ack(&mut t, Request::DevSendStart { dest: DevDest::Fpga, version: [0; 6] }), AckStatus::Fail);
}

#[test]
fn ser_send() {
    let (_e, mut t) = open(Stage::UsbLoaded);
    // MPP-24: FPGA not loaded.
    let (b, n) = SerCommand::StatGet.to_bytes();
    assert_eq!(ack(&mut t, Request::SerSend { data: &b[..n] }), AckStatus::FpgaError);
    let cfg = DeviceConfig::default().with_start_stage(Stage::FpgaLoaded).with_echo(true);
    let (_e, mut t) = open_cfg(cfg);
    assert_eq!(ack(&mut t, Request::SerSend { data: &[] }), AckStatus::TooShort);
    assert_eq!(ack(&mut t, Request::SerSend { data: &[0x02, 0, 0] }), AckStatus::BadCmd);
    assert_eq!(ack(&mut t, Request::SerSend { data: &[0x01, 0x00, 0x00] }), AckStatus::TooShort);
    assert_eq!(ack(&mut t, Request::SerSend { data: &[0x03, 0x00] }), AckStatus::TooShort);
    // MPP-25 for units 0..4 (FXS, FXO, empty, empty, echo NOPIC).
    let want = [(0x10, true), (0x20, true), (0x70, false), (0x70, false), (0x50, false)];
    for (unit, (ty, pic)) in want.into_iter().enumerate() {
        let (b, n) = SerCommand::card_info(unit as u8).to_bytes();
        let Some(OwnedReply::SerRecv { data }) = mpp(&mut t, 1, Request::SerSend { data: &b[..n] }) else {
            panic!()
        };
        let SerAnswer::CardInfo(CardInfo { addr, card_type, pic_burned }) =
            SerAnswer::parse(data.as_slice()).unwrap()
        else {
            panic!()
        };
        assert_eq!((addr, card_type, pic_burned), ((unit as u8) << 4, ty, pic), "unit {unit}");
    }
    // MPP-26: per-module configuration.
    let cfg = DeviceConfig::default()
        .with_start_stage(Stage::FpgaLoaded)
        .with_echo(true)
        .with_pic_burned(1, false)
        .with_pic_burned(4, true)
        .with_pic_burned(9, true);
    let (e2, mut t2) = open_cfg(cfg);
    for (unit, pic) in [(0u8, true), (1, false), (4, true)] {
        let (b, n) = SerCommand::card_info(unit).to_bytes();
        let Some(OwnedReply::SerRecv { data }) = mpp(&mut t2, 1, Request::SerSend { data: &b[..n] }) else {
            panic!()
        };
        let Ok(SerAnswer::CardInfo(info)) = SerAnswer::parse(data.as_slice()) else { panic!() };
        assert_eq!(info.pic_burned, pic, "unit {unit}");
        assert_eq!(e2.with_device(|d| d.pic_burned(unit)), pic);
    }
    // MPP-25: extra bytes echoed, same length.
    let Some(OwnedReply::SerRecv { data }) =
        mpp(&mut t, 1, Request::SerSend { data: &[1, 0x10, 0, 0, 0xEE] })
    else {
        panic!()
    };
    assert_eq!(data.as_slice(), [1, 0x10, 0x20, 1, 0xEE]);
    // MPP-27: configuration 3, watchdog ready, XPD not alive.
    let (b, n) = SerCommand::StatGet.to_bytes();
    let Some(OwnedReply::SerRecv { data }) = mpp(&mut t, 1, Request::SerSend { data: &b[..n] }) else {
        panic!()
    };
    assert_eq!(
        SerAnswer::parse(data.as_slice()),
        Ok(SerAnswer::FpgaStat(FpgaStat { configuration: 3, watchdog_ready: true, xpd_alive: false }))
    );
}

#[test]
fn tws_ops_single_port() {
    let (emu, mut t) = open(Stage::Running);
    // TWS-15: single port.
    assert!(matches!(mpp(&mut t, 1, Request::TwsPortGet), Some(OwnedReply::TwsPortGetReply { port: 0 })));
    assert!(matches!(mpp(&mut t, 1, Request::TwsPwrGet), Some(OwnedReply::TwsPwrGetReply(p)) if p.0 == 1));
    assert_eq!(ack(&mut t, Request::TwsWdModeSet { armed: true }), AckStatus::Ok);
    assert!(matches!(
        mpp(&mut t, 1, Request::TwsWdModeGet),
        Some(OwnedReply::TwsWdModeGetReply { wd_active: 1 })
    ));
    // TWS-8/15: ignored, never answered.
    assert!(mpp(&mut t, 1, Request::TwsPortSet { port: 1 }).is_none());
    assert!(raw(&mut t, &[6, 0, 1, 0, 0x34, 7]).is_none());
    emu.advance(Duration::from_secs(5));
    assert_eq!(emu.with_device(|d| (d.active_port(), d.counters().jumps)), (0, 0));
    // The watchdog may expire but nothing jumps.
    assert!(emu.with_device(|d| d.watchdog_expired()));
}

#[test]
fn renum_reset_half_reset() {
    // MPP-23 / LOAD-10: RENUM in 11x1 without FPGA stays 11x1.
    let (emu, mut t) = open(Stage::UsbLoaded);
    assert!(mpp(&mut t, 1, Request::Renum).is_none());
    assert!(t.is_disconnected());
    assert!(emu.transport(0).is_none());
    emu.advance(Duration::from_millis(499));
    assert!(emu.transport(0).is_none());
    emu.advance(Duration::from_millis(1));
    let t = emu.transport(0).unwrap();
    assert_eq!(t.info().product_id, 0x1161);
    // LOAD-12: HALF_RESET from 11x2 to 11x1 FPGA empty.
    let (emu, mut t) = open(Stage::Running);
    assert_eq!(t.info().product_id, 0x1162);
    assert!(mpp(&mut t, 1, Request::HalfReset).is_none());
    emu.advance(Duration::from_millis(500));
    let mut t = emu.transport(0).unwrap();
    assert_eq!(t.info().product_id, 0x1161);
    let Some(OwnedReply::StatusGetReply(s)) = mpp(&mut t, 1, Request::StatusGet) else { panic!() };
    assert!(!s.fpga_loaded());
    // LOAD-11: RESET to the cold identity, which has no MPP endpoint.
    assert!(mpp(&mut t, 1, Request::Reset).is_none());
    emu.advance(Duration::from_millis(500));
    let mut t = emu.transport(0).unwrap();
    assert_eq!((t.info().product_id, t.info().serial.clone()), (0x1160, None));
    assert_eq!(emu.with_device(|d| d.stage()), UsbStage::Cold);
    assert_eq!(t.submit(0x04, vec![5, 0, 1, 0, 0x11]), Err(xpp_usb::TransferError::InvalidArgument));
}

#[test]
fn halted_cpu_is_silent() {
    // LOAD-4, MPP-29: CPUCS hold on a running device; MPP silent, still enumerated.
    let (emu, mut t) = open(Stage::Running);
    let setup = xpp_usb::ControlSetup { request_type: 0x40, request: 0xA0, value: 0xE600, index: 0 };
    assert_eq!(t.control_out(setup, &[1], common::T), Ok(1));
    assert!(raw(&mut t, &[5, 0, 1, 0, 0x11]).is_none());
    assert!(!t.is_disconnected());
    assert!(!emu.with_device(|d| d.cpu_running()));
    // LOAD-6: release with an empty image: still silent, still enumerated.
    assert_eq!(t.control_out(setup, &[0], common::T), Ok(1));
    emu.advance(Duration::from_secs(1));
    assert!(raw(&mut t, &[5, 0, 1, 0, 0x11]).is_none());
    assert_eq!(emu.transport(0).unwrap().info().product_id, 0x1162);
}
