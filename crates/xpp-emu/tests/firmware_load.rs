//! Loading the real images of the shared firmware folder through the stage transitions, with
//! the `xpp_proto::firmware` load sequences (MODEL.md LOAD-1..17, MPP-19..22, ECHO-4..8), and
//! refusing corrupted, truncated and wrong images with the statuses MODEL.md gives.

mod common;
#[path = "../../xpp-proto/tests/support/mod.rs"]
mod support;

use std::path::Path;

use common::{T, ack, mpp};
use xpp_emu::config::{Family, Stage};
use xpp_emu::{DeviceConfig, DeviceEvent, EmulatedTransport, Emulator, FirmwareKind, UsbStage};
use xpp_proto::Duration;
use xpp_proto::firmware::echo::{EchoPacket, SpiPacket, parse_spi_reply, parse_test_reply};
use xpp_proto::firmware::{Fx2Load, HexFile, MppLoad, PicImage, PicLoad, PicReply};
use xpp_proto::mgmt::{AckStatus, OwnedReply, Request};
use xpp_usb::{ControlSetup, Transport, ep};

fn hex(dir: &Path, name: &str) -> HexFile {
    let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    HexFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Sends an FX2 load (optionally skipping the data request `skip`); returns whether the
/// device renumerated.
fn fx2_load(emu: &Emulator, t: &mut EmulatedTransport, hex: &HexFile, skip: Option<usize>) -> bool {
    let reqs: Vec<_> = Fx2Load::new(hex).unwrap().requests().collect();
    for (i, r) in reqs.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        let setup =
            ControlSetup { request_type: r.request_type, request: r.request, value: r.value, index: r.index };
        assert_eq!(t.control_out(setup, r.data, T), Ok(r.data.len()), "request {i}");
    }
    emu.advance(Duration::from_millis(500));
    t.is_disconnected() || emu.transport(0).is_some_and(|n| n.info().product_id != t.info().product_id)
}

/// Sends the DEV_SEND sequence; returns the status of the END (or the first failure).
fn fpga_load(
    t: &mut EmulatedTransport,
    hex: &HexFile,
    corrupt: Option<usize>,
    drop: Option<usize>,
) -> AckStatus {
    let reqs: Vec<Request<'_>> = MppLoad::fpga(hex).unwrap().requests().collect();
    let corrupted: Option<Vec<u8>> = corrupt.and_then(|c| match reqs.get(c) {
        Some(Request::DevSendSeg { data, .. }) => {
            let mut v = data.to_vec();
            v[0] ^= 0x01;
            Some(v)
        }
        _ => None,
    });
    for (i, req) in reqs.into_iter().enumerate() {
        if Some(i) == drop {
            continue;
        }
        let req = match (req, &corrupted) {
            (Request::DevSendSeg { offset, .. }, Some(c)) if corrupt == Some(i) => {
                Request::DevSendSeg { offset, data: c }
            }
            (r, _) => r,
        };
        let s = ack(t, req);
        if !s.is_ok() || matches!(req, Request::DevSendEnd) {
            return s;
        }
    }
    AckStatus::Fail
}

fn pic_load(t: &mut EmulatedTransport, images: &[PicImage<'_>], bad_checksum: bool) -> Vec<PicReply> {
    let mut replies = Vec::new();
    let mut buf = [0u8; 16];
    for step in PicLoad::new(images).steps() {
        let mut p = step.packet;
        if bad_checksum && step.expects_reply {
            p = xpp_proto::firmware::PicPacket::new(p.flags, p.card_type, p.offset, &[p.data()[0] ^ 0xFF])
                .unwrap();
        }
        let n = p.emit(&mut buf).unwrap();
        assert_eq!(t.transfer_blocking(ep::DATA_OUT, buf[..n].to_vec(), T).status, Ok(()));
        if step.expects_reply {
            let c = t.transfer_blocking(ep::DATA_IN, vec![0; 512], T);
            assert_eq!(c.status, Ok(()));
            replies.push(PicReply::parse(&c.buffer).unwrap());
        }
    }
    replies
}

#[test]
fn full_bring_up_of_a_modular_astribank_with_the_real_images() {
    let dir = support::firmware_dir();
    let emu = Emulator::new(DeviceConfig::default().with_echo(true));
    let mut t = emu.transport(0).unwrap();
    assert_eq!((t.info().product_id, t.info().bcd_device), (0x1160, 0x0101));
    // Stage 1: USB firmware via control requests (LOAD-1, LOAD-4, LOAD-5).
    assert!(fx2_load(&emu, &mut t, &hex(&dir, "USB_FW.hex"), None));
    let mut t = emu.transport(0).unwrap();
    assert_eq!(t.info().product_id, 0x1161);
    assert_eq!(t.info().serial.as_deref(), Some("00000001"));
    // LOAD-15: interface 0 silent before the FPGA.
    assert_eq!(t.transfer_blocking(ep::DATA_OUT, vec![6, 0, 0x35, 0, 0x28, 0], T).status, Ok(()));
    assert_eq!(
        t.transfer_blocking(ep::DATA_IN, vec![0; 512], T).status,
        Err(xpp_usb::TransferError::Cancelled)
    );
    // Stage 2: FPGA via DEV_SEND (LOAD-8, MPP-22).
    assert_eq!(fpga_load(&mut t, &hex(&dir, "FPGA_1161.hex"), None, None), AckStatus::Ok);
    let Some(OwnedReply::StatusGetReply(s)) = mpp(&mut t, 1, Request::StatusGet) else { panic!() };
    assert!(s.fpga_loaded());
    assert_eq!((&s.versions.usb, &s.versions.fpga), (b"11452\0", b"9732\0\0"));
    assert_eq!(t.info().product_id, 0x1161);
    // EC loader (ECHO-7, ECHO-5, ECHO-4/6).
    let mut b = [0u8; 10];
    let n = EchoPacket::Test.emit(&mut b).unwrap();
    assert_eq!(t.transfer_blocking(ep::DATA_OUT, b[..n].to_vec(), T).status, Ok(()));
    let c = t.transfer_blocking(ep::DATA_IN, vec![0; 512], T);
    assert_eq!(parse_test_reply(&c.buffer), Ok(0x2800));
    let n = EchoPacket::Spi(SpiPacket::version_query()).emit(&mut b).unwrap();
    assert_eq!(t.transfer_blocking(ep::DATA_OUT, b[..n].to_vec(), T).status, Ok(()));
    let c = t.transfer_blocking(ep::DATA_IN, vec![0; 512], T);
    assert_eq!(parse_spi_reply(&c.buffer), Ok(0x0101));
    // PIC files (LOAD-17).
    let pics: Vec<(String, HexFile)> = ["PIC_TYPE_1.hex", "PIC_TYPE_2.hex", "PIC_TYPE_3.hex"]
        .iter()
        .map(|n| (n.to_string(), hex(&dir, n)))
        .collect();
    let images: Vec<PicImage<'_>> = pics.iter().map(|(n, h)| PicImage::new(n, h).unwrap()).collect();
    let replies = pic_load(&mut t, &images, false);
    assert_eq!(replies.len(), 3);
    assert!(replies.iter().all(PicReply::is_ok), "{replies:?}");
    let replies = pic_load(&mut t, &images[..1], true);
    assert!(!replies[0].is_ok());
    // RENUM to 11x2 (LOAD-9).
    assert!(mpp(&mut t, 1, Request::Renum).is_none());
    assert!(t.is_disconnected());
    emu.advance(Duration::from_millis(500));
    let t = emu.transport(0).unwrap();
    assert_eq!(t.info().product_id, 0x1162);
    assert_eq!(emu.with_device(|d| d.stage()), UsbStage::Running);
    let mut loaded = Vec::new();
    emu.with_device(|d| {
        while let Some(e) = d.poll_event() {
            if let DeviceEvent::FirmwareLoaded { kind, version, .. } = e {
                loaded.push((kind, version));
            }
        }
    });
    assert_eq!(loaded, [(FirmwareKind::Usb, "11452".to_string()), (FirmwareKind::Fpga, "9732".to_string())]);
}

#[test]
fn every_image_loads_into_the_device_it_is_for() {
    let dir = support::firmware_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".hex"))
        .collect();
    names.sort();
    assert!(names.len() >= 8);
    for name in names {
        let h = hex(&dir, &name);
        if name.starts_with("USB_FW") {
            let bcd = if name.contains(".201.") { 0x0201 } else { 0x0101 };
            let emu = Emulator::new(DeviceConfig::default().with_hw_revision(bcd));
            let mut t = emu.transport(0).unwrap();
            assert!(fx2_load(&emu, &mut t, &h, None), "{name}");
            assert_eq!(emu.transport(0).unwrap().info().product_id, 0x1161, "{name}");
        } else if name.starts_with("FPGA_") {
            let family = match name.as_str() {
                "FPGA_1141.hex" => Family::Bri,
                "FPGA_FXS.hex" => Family::Fxs8,
                _ => Family::Modular,
            };
            let emu =
                Emulator::new(DeviceConfig::default().with_family(family).with_start_stage(Stage::UsbLoaded));
            let mut t = emu.transport(0).unwrap();
            assert_eq!(fpga_load(&mut t, &h, None, None), AckStatus::Ok, "{name}");
            assert!(mpp(&mut t, 1, Request::Renum).is_none());
            emu.advance(Duration::from_millis(500));
            let want = family.base_product() | 2;
            assert_eq!(emu.transport(0).unwrap().info().product_id, want, "{name}");
        } else if name.starts_with("PIC_TYPE_") {
            let emu = Emulator::new(DeviceConfig::default().with_start_stage(Stage::FpgaLoaded));
            let mut t = emu.transport(0).unwrap();
            let images = [PicImage::new(&name, &h).unwrap()];
            assert!(pic_load(&mut t, &images, false)[0].is_ok(), "{name}");
        }
    }
}

#[test]
fn bad_usb_images_are_refused_by_silence() {
    let dir = support::firmware_dir();
    // LOAD-6: truncated (a data request lost), and the other revision's image.
    let emu = Emulator::new(DeviceConfig::default());
    let mut t = emu.transport(0).unwrap();
    assert!(!fx2_load(&emu, &mut t, &hex(&dir, "USB_FW.hex"), Some(5)));
    assert_eq!(emu.transport(0).unwrap().info().product_id, 0x1160);
    assert_eq!(emu.with_device(|d| d.stage()), UsbStage::Cold);
    assert!(!fx2_load(&emu, &mut t, &hex(&dir, "USB_FW.201.hex"), None));
    assert_eq!(emu.transport(0).unwrap().info().product_id, 0x1160);
    // A good load after the bad ones still works.
    assert!(fx2_load(&emu, &mut t, &hex(&dir, "USB_FW.hex"), None));
    // LOAD-2: writes outside on-chip memory stall.
    let mut t = emu.transport(0).unwrap();
    let setup = ControlSetup { request_type: 0x40, request: 0xA0, value: 0x8000, index: 0 };
    assert_eq!(t.control_out(setup, &[1], T), Err(xpp_usb::TransferError::Stall));
    // LOAD-3: read back.
    let setup = ControlSetup { request_type: 0xC0, request: 0xA0, value: 0x0000, index: 0 };
    let mut b = [0u8; 3];
    assert_eq!(t.control_in(setup, &mut b, T), Ok(3));
    assert_ne!(b, [0; 3]);
}

#[test]
fn bad_fpga_images_are_refused_with_fpga_error() {
    let dir = support::firmware_dir();
    let good = hex(&dir, "FPGA_1161.hex");
    let emu = Emulator::new(DeviceConfig::default().with_start_stage(Stage::UsbLoaded));
    let mut t = emu.transport(0).unwrap();
    // Corrupted segment, truncated image (last segment missing), wrong model.
    assert_eq!(fpga_load(&mut t, &good, Some(40), None), AckStatus::FpgaError);
    let last_seg = MppLoad::fpga(&good).unwrap().segment_count();
    assert_eq!(fpga_load(&mut t, &good, None, Some(last_seg)), AckStatus::FpgaError);
    assert_eq!(fpga_load(&mut t, &hex(&dir, "FPGA_1141.hex"), None, None), AckStatus::FpgaError);
    // A lost segment in the middle is an offset error (MPP-20).
    assert_eq!(fpga_load(&mut t, &good, None, Some(3)), AckStatus::OffsetError);
    let Some(OwnedReply::StatusGetReply(s)) = mpp(&mut t, 1, Request::StatusGet) else { panic!() };
    assert!(!s.fpga_loaded());
    let refused = emu.with_device(|d| {
        std::iter::from_fn(|| d.poll_event())
            .filter(|e| matches!(e, DeviceEvent::FirmwareRefused { kind: FirmwareKind::Fpga, .. }))
            .count()
    });
    assert_eq!(refused, 3);
    // RENUM without the FPGA stays 11x1 (LOAD-10).
    assert!(mpp(&mut t, 1, Request::Renum).is_none());
    emu.advance(Duration::from_millis(500));
    assert_eq!(emu.transport(0).unwrap().info().product_id, 0x1161);
}
