//! Entry points for the fuzz targets in `fuzz/` (not a public API).
//!
//! Each takes arbitrary bytes and must never panic. A unit test calls each one so that the
//! stable test run exercises them too.

use std::time::Duration;

use super::{PcapReader, PcapReplay, PcapSession};
use crate::ep;
use crate::transport::{ControlSetup, Transport};

/// Reads bytes as a usbmon pcap file: every record, then the replay of every device in it,
/// driven through each transport call.
pub fn pcap_file(data: &[u8]) {
    let Ok(reader) = PcapReader::new(data) else { return };
    let mut setups = Vec::new();
    for record in reader {
        let Ok(r) = record else { break };
        if let Some(s) = r.header.setup_packet() {
            setups.push(ControlSetup::from_bytes(s));
        }
    }
    let _ = PcapReplay::devices(data);
    if let Ok(r) = PcapReplay::from_bytes(data) {
        exercise(r, &setups);
    }
    let Ok(mut session) = PcapSession::from_bytes(data) else { return };
    while let Some(r) = session.next_device() {
        exercise(r, &setups);
    }
}

/// Every transport call on a replay: submits on the Astribank endpoints, completions, the
/// control transfers the capture holds, cancel, reset.
fn exercise(mut r: PcapReplay, setups: &[(ControlSetup, u16)]) {
    let _ = r.info();
    for round in 0..4u8 {
        for e in [ep::DATA_OUT, ep::MGMT_OUT] {
            let _ = r.submit(e, vec![round; 8]);
        }
        for e in [ep::DATA_IN, ep::MGMT_IN] {
            let _ = r.submit(e, vec![0; 512]);
        }
        for e in [ep::DATA_OUT, ep::MGMT_OUT, ep::DATA_IN, ep::MGMT_IN] {
            while r.wait_next_complete(e, Duration::ZERO).is_some() {}
        }
    }
    for &(s, len) in setups.iter().take(64) {
        let mut buf = vec![0; usize::from(len.min(4096))];
        let _ = r.control_in(s, &mut buf, Duration::ZERO);
        let _ = r.control_out(s, &buf, Duration::ZERO);
    }
    for e in [ep::DATA_IN, ep::MGMT_IN] {
        r.cancel_all(e);
        while r.wait_next_complete(e, Duration::ZERO).is_some() {}
    }
    let _ = (r.reset(), r.stats(), r.remaining(), r.is_disconnected());
}

/// Reads bytes as every USB/IP message: `OP_REQ_*`, `OP_REP_*`, an URB header and an ISO
/// packet descriptor. A message that parses and emits parses back the same.
pub fn usbip_codec(data: &[u8]) {
    use crate::backend::usbip::codec::{IsoPacketDescriptor, OpReply, OpRequest, Urb};
    use crate::info::Direction;
    let mut out = Vec::new();
    if let Ok((req, _)) = OpRequest::parse(data)
        && req.emit(&mut out).is_ok()
    {
        assert_eq!(OpRequest::parse(&out).map(|r| r.0).ok(), Some(req));
    }
    out.clear();
    if let Ok((reply, _)) = OpReply::parse(data)
        && reply.emit(&mut out).is_ok()
    {
        assert_eq!(OpReply::parse(&out).map(|r| r.0).ok(), Some(reply));
    }
    out.clear();
    if let Ok(urb) = Urb::parse(data) {
        let _ = (urb.payload_len(Direction::In), urb.payload_len(Direction::Out));
        urb.emit(&mut out);
        assert_eq!(Urb::parse(&out).ok(), Some(urb));
    }
    out.clear();
    if let Ok(d) = IsoPacketDescriptor::parse(data) {
        d.emit(&mut out);
        assert_eq!(IsoPacketDescriptor::parse(&out).ok(), Some(d));
    }
}

/// Reads bytes as a configuration descriptor (with its interfaces and endpoints) and as a
/// string descriptor.
pub fn usb_descriptors(data: &[u8]) {
    use crate::backend::usbip::descriptors::{parse_configuration, parse_string};
    for i in parse_configuration(data) {
        assert!(i.endpoints.len() <= data.len());
    }
    let _ = parse_string(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::usbmon::{file_header, record_header};

    #[test]
    fn entry_points_survive_odd_input() {
        let header = file_header();
        let mut garbage_record = header.to_vec();
        garbage_record.extend_from_slice(&[0xFF; 200]);
        let mut zero_record = header.to_vec();
        zero_record.extend_from_slice(&record_header(0, 0, 80, 80));
        zero_record.extend_from_slice(&[0; 80]);
        for input in [&b""[..], &[0xD4, 0xC3, 0xB2, 0xA1], &header, &garbage_record, &zero_record] {
            pcap_file(input);
            usbip_codec(input);
            usb_descriptors(input);
        }
        // A device list, an import request, an URB and a configuration, whole and cut.
        let mut list = Vec::new();
        crate::usbip::codec::OpReply::DevList {
            status: 0,
            devices: vec![crate::usbip::codec::ExportedDevice {
                device: crate::usbip::codec::UsbDevice {
                    busid: "1-1".into(),
                    num_interfaces: 1,
                    ..Default::default()
                },
                interfaces: vec![crate::usbip::codec::UsbInterface::default()],
            }],
        }
        .emit(&mut list)
        .unwrap();
        let config: &[u8] = &[
            0x09, 0x02, 0x20, 0x00, 0x01, 0x01, 0x00, 0x80, 0x32, 0x09, 0x04, 0x00, 0x00, 0x02, 0xFF, 0x00,
            0x00, 0x00, 0x07, 0x05, 0x02, 0x02, 0x00, 0x02, 0x00, 0x07, 0x05, 0x86, 0x02, 0x00, 0x02, 0x00,
        ];
        let urb = [&[0, 0, 0, 1][..], &[0; 44]].concat();
        for whole in [&list[..], config, &urb] {
            for n in 0..=whole.len() {
                usbip_codec(&whole[..n]);
                usb_descriptors(&whole[..n]);
            }
        }
        // The fuzz seeds, when the workspace is around, and prefixes of them.
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/pcap_file");
        for entry in std::fs::read_dir(seeds).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            for cut in (0..bytes.len()).step_by(97) {
                pcap_file(&bytes[..cut]);
            }
            pcap_file(&bytes);
        }
    }
}
