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
        }
    }
}
