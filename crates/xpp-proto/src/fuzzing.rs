//! Entry points for the fuzz targets in `fuzz/` (not a public API).
//!
//! Each takes arbitrary bytes and must never panic. A unit test calls each one so that the
//! stable test run exercises them too.

/// Deframes one data-interface transfer and decodes every packet in it.
pub fn data_transfer(data: &[u8]) {
    crate::wire::fuzz_transfer(data);
}

/// Decodes one management-interface packet as a device reply (and as a host request).
pub fn mgmt_packet(data: &[u8]) {
    crate::mgmt::fuzz_packet(data);
}

/// Parses bytes as an Intel-HEX firmware file and walks every load sequence of the result.
pub fn hex_file(data: &[u8]) {
    crate::firmware::fuzz_hex(data);
}

/// Reads bytes as each PIC and echo-canceller packet the bring-up exchanges: PIC_REQUEST,
/// PIC_REPLY, an SPI packet, the SPI and test replies. A packet that parses re-emits to one
/// that parses the same.
pub fn pic_echo_packet(data: &[u8]) {
    use crate::firmware::echo::{SpiPacket, parse_spi_reply, parse_test_reply};
    use crate::firmware::{PicPacket, PicReply};
    let mut buf = [0u8; 64];
    if let Ok(p) = PicPacket::parse(data) {
        let n = p.emit(&mut buf).expect("a parsed PIC packet emits");
        assert_eq!(PicPacket::parse(&buf[..n]).ok(), Some(p));
    }
    if let Ok(r) = PicReply::parse(data) {
        let n = r.emit(&mut buf).expect("a parsed PIC reply emits");
        assert_eq!(PicReply::parse(&buf[..n]).ok(), Some(r));
    }
    if let Ok(p) = SpiPacket::parse(data) {
        let n = p.emit(&mut buf).expect("a parsed SPI packet emits");
        assert_eq!(SpiPacket::parse(&buf[..n]).ok(), Some(p));
    }
    let _ = (parse_spi_reply(data), parse_test_reply(data));
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_survive_odd_input() {
        let inputs: [&[u8]; 6] = [
            b"",
            &[0x00],
            &[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00],
            &[0xFF; 600],
            b":00000001FF\n",
            b"# $Id: x 1 $\n:0\n",
        ];
        for i in inputs {
            super::data_transfer(i);
            super::mgmt_packet(i);
            super::hex_file(i);
            super::pic_echo_packet(i);
        }
        // A PIC_REQUEST, a PIC_REPLY and an SPI packet, whole and cut.
        let pic = [0x0B, 0x00, 0x09, 0x00, 0x01, 0x01, 0x00, 0x00, 0xAA, 0xBB, 0xCC];
        let reply = [0x09, 0x00, 0x0A, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00];
        for p in [&pic[..], &reply[..]] {
            for n in 0..=p.len() {
                super::pic_echo_packet(&p[..n]);
            }
        }
    }
}
