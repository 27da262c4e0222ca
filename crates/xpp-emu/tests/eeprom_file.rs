//! EEPROM persistence to a file (MODEL.md MPP-18, LOAD-13): written on every EEPROM change,
//! read at power-on, a bad file reported and never a panic.

mod common;

use std::path::PathBuf;

use common::{ack, mpp};
use xpp_emu::config::{CoreConfig, Stage};
use xpp_emu::{DeviceConfig, DeviceEvent, Emulator};
use xpp_proto::Duration;
use xpp_proto::mgmt::{AckStatus, DevDest, OwnedReply, Request};
use xpp_usb::Transport;

/// A unique scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("xpp-emu-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cfg(file: &std::path::Path) -> DeviceConfig {
    let mut core = CoreConfig::default();
    core.eeprom_file = Some(file.to_owned());
    DeviceConfig::default().with_start_stage(Stage::UsbLoaded).with_core(core)
}

fn extrainfo(t: &mut xpp_emu::EmulatedTransport) -> [u8; 24] {
    let Some(OwnedReply::ExtrainfoGetReply(e)) = mpp(t, 1, Request::ExtrainfoGet) else { panic!() };
    e.text
}

#[test]
fn survives_a_new_device_with_the_same_file() {
    let dir = TempDir::new("eeprom");
    let file = dir.0.join("eeprom.bin");
    let text = *b"rack 3 shelf 2\0\0\0\0\0\0\0\0\0\0";
    {
        let emu = Emulator::new(cfg(&file));
        let mut t = emu.transport(0).unwrap();
        assert!(!file.exists(), "nothing written before the first EEPROM change");
        assert_eq!(ack(&mut t, Request::ExtrainfoSet { text }), AckStatus::Ok);
        assert_eq!(std::fs::read(&file).unwrap().len(), 8192);
        // An EEPROM DEV_SEND segment is persisted too (MPP-20).
        assert_eq!(
            ack(&mut t, Request::DevSendStart { dest: DevDest::Eeprom, version: [0; 6] }),
            AckStatus::Ok
        );
        assert_eq!(ack(&mut t, Request::DevSendSeg { offset: 0x100, data: &[0xAB, 0xCD] }), AckStatus::Ok);
        assert_eq!(ack(&mut t, Request::DevSendEnd), AckStatus::Ok);
        assert_eq!(&std::fs::read(&file).unwrap()[0x100..0x102], &[0xAB, 0xCD]);
        assert_eq!(emu.with_device(|d| d.counters().eeprom_file_errors), 0);
    }
    let emu = Emulator::new(cfg(&file));
    let mut t = emu.transport(0).unwrap();
    assert_eq!(extrainfo(&mut t), text);
    assert_eq!(emu.with_device(|d| d.eeprom()[0x100..0x102].to_vec()), [0xAB, 0xCD]);
    // Without the file, a new device starts from its configuration.
    let emu = Emulator::new(DeviceConfig::default().with_start_stage(Stage::UsbLoaded));
    assert_eq!(extrainfo(&mut emu.transport(0).unwrap()), [0xFF; 24]);
}

#[test]
fn read_again_at_power_on() {
    let dir = TempDir::new("eeprom-power");
    let file = dir.0.join("eeprom.bin");
    let emu = Emulator::new(cfg(&file));
    let image = emu.with_device(|d| {
        let mut v = d.eeprom().to_vec();
        v[0x2C..0x30].copy_from_slice(b"edit");
        v
    });
    // Edited behind the device's back: seen after the next power-on only (LOAD-13).
    std::fs::write(&file, &image).unwrap();
    assert_eq!(&emu.with_device(|d| d.eeprom()[0x2C..0x30].to_vec()), &[0xFF; 4]);
    let now = emu.now();
    emu.with_device(|d| d.set_device_power(now, false));
    emu.advance(Duration::from_millis(10));
    let now = emu.now();
    emu.with_device(|d| d.set_device_power(now, true));
    assert_eq!(&emu.with_device(|d| d.eeprom()[0x2C..0x30].to_vec()), b"edit");
}

#[test]
fn bad_files_are_reported_never_a_panic() {
    let dir = TempDir::new("eeprom-bad");
    let file = dir.0.join("eeprom.bin");
    for bad in [&[][..], &[0x42; 17][..], &[0u8; 8193][..]] {
        std::fs::write(&file, bad).unwrap();
        let emu = Emulator::new(cfg(&file));
        let (errors, events) = emu.with_device(|d| {
            let mut ev = Vec::new();
            while let Some(e) = d.poll_event() {
                ev.push(e);
            }
            (d.counters().eeprom_file_errors, ev)
        });
        assert_eq!(errors, 1);
        assert!(events.iter().any(|e| matches!(e, DeviceEvent::EepromFileError { write: false, .. })));
        // The configured contents are in use and the device works.
        let mut t = emu.transport(0).unwrap();
        assert_eq!(extrainfo(&mut t), [0xFF; 24]);
        assert_eq!(t.info().serial.as_deref(), Some("00000001"));
    }
    // A path that cannot be written (a directory): the write is reported, the ACK is still OK
    // (the in-memory EEPROM took the data).
    let emu = Emulator::new(cfg(&dir.0));
    let mut t = emu.transport(0).unwrap();
    assert_eq!(ack(&mut t, Request::ExtrainfoSet { text: [b'x'; 24] }), AckStatus::Ok);
    assert_eq!(extrainfo(&mut t), [b'x'; 24]);
    assert_eq!(emu.with_device(|d| d.counters().eeprom_file_errors), 2);
}
