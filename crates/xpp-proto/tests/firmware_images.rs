//! The real Astribank images in the shared firmware folder: every one parses, carries the
//! expected version, re-emits byte for byte, and drives its load sequence to the expected end.

mod support;

use std::path::PathBuf;

use xpp_proto::firmware::{
    FX2_CPUCS, Fx2Load, HexFile, LoadTarget, MAX_PIC_RECORDS, MppLoad, PicFlags, PicImage, PicLoad,
    PicPacket, RecordType, Summary,
};
use xpp_proto::mgmt::{DevDest, Request};

/// (file, version, data records, extended linear address records, data bytes)
const IMAGES: [(&str, &str, usize, usize, usize); 8] = [
    ("FPGA_1141.hex", "7107", 650, 2, 83_191),
    ("FPGA_1161.hex", "9732", 1061, 3, 135_771),
    ("FPGA_FXS.hex", "7107", 645, 2, 82_555),
    ("PIC_TYPE_1.hex", "9841", 482, 0, 1_446),
    ("PIC_TYPE_2.hex", "11078", 412, 0, 1_236),
    ("PIC_TYPE_3.hex", "7107", 370, 0, 1_110),
    ("USB_FW.201.hex", "11502", 577, 0, 7_993),
    ("USB_FW.hex", "11452", 574, 0, 7_966),
];

fn load(dir: &std::path::Path, name: &str) -> (Vec<u8>, HexFile) {
    let bytes = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let hex = HexFile::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    (bytes, hex)
}

fn hex_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("hex")))
        .collect();
    files.sort();
    files
}

#[test]
fn every_image_parses_and_reemits_byte_identical() {
    let dir = support::firmware_dir();
    let files = hex_files(&dir);
    assert!(files.len() >= IMAGES.len(), "expected at least {} images in {}", IMAGES.len(), dir.display());
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (bytes, hex) = load(&dir, &name);
        let text = String::from_utf8_lossy(&bytes);
        let expected: String = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .filter(|l| l.starts_with(':'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(hex.to_hex_records(), expected, "{name}");
        assert_eq!(hex.record_count(), expected.lines().count(), "{name}");
        assert!(hex.version().is_some(), "{name}: no version");
        // Summary validates the load the file name implies.
        Summary::new(&name, &hex).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn versions_counts_and_ranges() {
    let dir = support::firmware_dir();
    for (name, version, data, ext_linear, bytes) in IMAGES {
        let (_, hex) = load(&dir, name);
        assert_eq!(hex.version(), Some(version), "{name}");
        assert!(hex.id_line().unwrap().contains("$Id: "), "{name}");
        let c = hex.counts();
        assert_eq!(
            (c.data, c.eof, c.extended_linear_address, c.total()),
            (data, 1, ext_linear, data + 1 + ext_linear),
            "{name}"
        );
        assert_eq!(hex.data_len(), bytes, "{name}");
        let covered: u64 = hex.address_ranges().iter().map(|r| r.end - r.start).sum();
        if name.starts_with("PIC_") {
            // PIC addresses count 3-byte words: record n starts at address n.
            assert_eq!(covered, data as u64 + 2, "{name}");
        } else {
            assert_eq!(covered, bytes as u64, "{name}: no record overlaps another");
        }
    }
    let (_, fpga) = load(&dir, "FPGA_1161.hex");
    assert_eq!(fpga.address_ranges(), vec![0..135_771]);
    let (_, usb) = load(&dir, "USB_FW.201.hex");
    assert_eq!(usb.line_count(), 582, "the 0x1A line counts");
}

#[test]
fn fpga_images_load_over_mpp() {
    let dir = support::firmware_dir();
    for (name, version, data, _, _) in IMAGES.iter().filter(|i| i.0.starts_with("FPGA_")) {
        let (_, hex) = load(&dir, name);
        let load = MppLoad::fpga(&hex).unwrap();
        let reqs: Vec<Request<'_>> = load.requests().collect();
        assert_eq!(reqs.len(), 1 + data + 1, "{name}");
        let mut v = [0u8; 6];
        v[..version.len()].copy_from_slice(version.as_bytes());
        assert_eq!(reqs[0], Request::DevSendStart { dest: DevDest::Fpga, version: v });
        assert_eq!(reqs[reqs.len() - 1], Request::DevSendEnd);
        for (req, rec) in reqs[1..reqs.len() - 1].iter().zip(hex.data_records()) {
            assert_eq!(*req, Request::DevSendSeg { offset: rec.address, data: rec.data });
        }
    }
    let (_, hex) = load(&dir, "FPGA_1161.hex");
    assert_eq!(
        Summary::new("FPGA_1161.hex", &hex).unwrap().load,
        "FPGA via MPP DEV_SEND (dest=FPGA), 1061 segments"
    );
}

#[test]
fn usb_images_load_into_fx2_ram() {
    let dir = support::firmware_dir();
    for name in ["USB_FW.hex", "USB_FW.201.hex"] {
        let (_, hex) = load(&dir, name);
        let reqs: Vec<_> = Fx2Load::new(&hex).unwrap().requests().collect();
        let (first, last) = (reqs[0], reqs[reqs.len() - 1]);
        assert_eq!((first.value, first.data), (FX2_CPUCS, &[1u8][..]), "{name}");
        assert_eq!((last.value, last.data), (FX2_CPUCS, &[0u8][..]), "{name}");
        let writes = &reqs[1..reqs.len() - 1];
        assert!(writes.iter().all(|r| r.request_type == 0x40 && r.request == 0xA0 && r.index == 0));
        assert!(writes.iter().all(|r| !r.data.is_empty() && r.data.len() <= 1023 && r.value < 0x4000));
        // The writes carry exactly the data records' bytes, in file order, at their addresses.
        let sent: Vec<(u16, u8)> = writes
            .iter()
            .flat_map(|r| r.data.iter().enumerate().map(move |(i, b)| (r.value + i as u16, *b)))
            .collect();
        let file: Vec<(u16, u8)> = hex
            .data_records()
            .flat_map(|r| r.data.iter().enumerate().map(move |(i, b)| (r.address + i as u16, *b)))
            .collect();
        assert_eq!(sent, file, "{name}");
        // Records that continue the previous one are merged (up to 1023 bytes per request).
        // 72 for both images, counted independently with a script over the files.
        assert_eq!(writes.len(), 72, "{name}");
    }
}

#[test]
fn pic_images_load_over_the_data_interface() {
    let dir = support::firmware_dir();
    let files: Vec<(String, HexFile)> = (1..=3)
        .map(|n| {
            let name = format!("PIC_TYPE_{n}.hex");
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            (name, HexFile::parse_with_limit(&bytes, MAX_PIC_RECORDS).unwrap())
        })
        .collect();
    let images: Vec<PicImage<'_>> = files.iter().map(|(n, h)| PicImage::new(n, h).unwrap()).collect();
    let load = PicLoad::new(&images);
    let steps: Vec<_> = load.steps().collect();
    assert_eq!(steps.len(), (1 + 482 + 1) + (1 + 412 + 1) + (1 + 370 + 1) + 1);
    assert_eq!(steps.len(), load.step_count());
    let mut buf = [0u8; 11];
    let mut i = 0;
    for (image, (name, hex)) in images.iter().zip(&files) {
        assert_eq!(LoadTarget::from_file_name(name), LoadTarget::Pic(image.card_type()));
        assert_eq!(steps[i].packet, PicPacket::new(PicFlags::Start, image.card_type(), 0, &[]).unwrap());
        i += 1;
        let mut xor = 0u8;
        for rec in hex.data_records() {
            let s = steps[i];
            assert!(!s.expects_reply);
            assert_eq!(
                s.packet,
                PicPacket::new(PicFlags::Data, image.card_type(), rec.address, rec.data).unwrap()
            );
            assert_eq!(s.packet.emit(&mut buf), Ok(11));
            xor = rec.data.iter().fold(xor, |x, b| x ^ b);
            i += 1;
        }
        assert_eq!(steps[i].packet, PicPacket::new(PicFlags::End, image.card_type(), 0, &[xor]).unwrap());
        assert!(steps[i].expects_reply);
        i += 1;
    }
    assert_eq!(steps[i].packet.flags, PicFlags::Ends);
    assert_eq!(steps[i].packet.card_type, 0);
    // PIC_TYPE_1.hex line 4 `:03000000A1EA4A28`, written by hand as a packet.
    assert_eq!(steps[1].packet.emit(&mut buf), Ok(11));
    assert_eq!(buf, [0x0B, 0x00, 0x09, 0x00, 0x00, 0x01, 0x00, 0x00, 0xA1, 0xEA, 0x4A]);
    assert!(files[0].1.records().all(|r| matches!(r.kind, RecordType::Data | RecordType::Eof)));
}
