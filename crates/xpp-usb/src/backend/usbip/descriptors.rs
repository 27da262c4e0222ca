//! The few standard descriptors the USB/IP client reads over endpoint 0 to fill
//! [`DeviceInfo`](crate::DeviceInfo): configuration (interfaces and endpoints) and strings.

use crate::info::{EndpointInfo, InterfaceInfo, TransferType};

/// `bDescriptorType` values.
pub(crate) mod kind {
    pub(crate) const DEVICE: u8 = 1;
    pub(crate) const CONFIGURATION: u8 = 2;
    pub(crate) const STRING: u8 = 3;
    pub(crate) const INTERFACE: u8 = 4;
    pub(crate) const ENDPOINT: u8 = 5;
}

/// The interfaces (alternate setting 0) and their endpoints in a full configuration
/// descriptor, sorted by interface number. Malformed descriptors end the walk early; nothing
/// panics on any input.
pub fn parse_configuration(buf: &[u8]) -> Vec<InterfaceInfo> {
    let mut out: Vec<InterfaceInfo> = Vec::new();
    let mut current: Option<usize> = None;
    let mut rest = buf;
    while rest.len() >= 2 {
        let len = usize::from(rest[0]);
        if len < 2 || len > rest.len() {
            break;
        }
        let (d, tail) = rest.split_at(len);
        rest = tail;
        match d[1] {
            kind::INTERFACE if len >= 9 => {
                current = None;
                if d[3] == 0 && !out.iter().any(|i| i.number == d[2]) {
                    out.push(InterfaceInfo { number: d[2], endpoints: Vec::new() });
                    current = Some(out.len() - 1);
                }
            }
            kind::ENDPOINT if len >= 7 => {
                if let Some(i) = current {
                    out[i].endpoints.push(EndpointInfo {
                        address: d[2],
                        transfer_type: TransferType::from_attributes(d[3]),
                        max_packet_size: u16::from_le_bytes([d[4], d[5]]) & 0x07FF,
                    });
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|i| i.number);
    out
}

/// The text of a string descriptor (UTF-16LE after the 2-byte header), if it is one.
pub(crate) fn parse_string(buf: &[u8]) -> Option<String> {
    let len = usize::from(*buf.first()?).min(buf.len());
    if len < 2 || buf[1] != kind::STRING {
        return None;
    }
    let units: Vec<u16> = buf[2..len].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    Some(String::from_utf16_lossy(&units))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Astribank-like configuration, written out by hand: config (9), interface 0 (9),
    /// EP 0x02 and 0x86 bulk 512, interface 1 (9), EP 0x04 and 0x88 bulk 512, then an
    /// alternate setting 1 of interface 1 whose endpoint must be ignored.
    const CONFIG: &[u8] = &[
        0x09, 0x02, 0x3C, 0x00, 0x02, 0x01, 0x00, 0x80, 0x32, //
        0x09, 0x04, 0x00, 0x00, 0x02, 0xFF, 0x00, 0x00, 0x00, //
        0x07, 0x05, 0x02, 0x02, 0x00, 0x02, 0x00, //
        0x07, 0x05, 0x86, 0x02, 0x00, 0x02, 0x00, //
        0x09, 0x04, 0x01, 0x00, 0x02, 0xFF, 0x00, 0x00, 0x00, //
        0x07, 0x05, 0x04, 0x02, 0x00, 0x02, 0x00, //
        0x07, 0x05, 0x88, 0x02, 0x00, 0x02, 0x00, //
        0x09, 0x04, 0x01, 0x01, 0x01, 0xFF, 0x00, 0x00, 0x00, //
        0x07, 0x05, 0x84, 0x03, 0x40, 0x00, 0x01, //
    ];

    #[test]
    fn configuration_walk() {
        let ifs = parse_configuration(CONFIG);
        assert_eq!(ifs.len(), 2);
        let addrs: Vec<Vec<u8>> =
            ifs.iter().map(|i| i.endpoints.iter().map(|e| e.address).collect()).collect();
        assert_eq!(addrs, vec![vec![0x02, 0x86], vec![0x04, 0x88]]);
        assert!(ifs.iter().flat_map(|i| &i.endpoints).all(|e| e.transfer_type == TransferType::Bulk));
        assert!(ifs.iter().flat_map(|i| &i.endpoints).all(|e| e.max_packet_size == 512));
    }

    #[test]
    fn configuration_prefixes_and_garbage_never_panic() {
        for n in 0..=CONFIG.len() {
            let _ = parse_configuration(&CONFIG[..n]);
        }
        assert!(parse_configuration(&[0x00, 0x04, 0x00]).is_empty());
        assert!(parse_configuration(&[0xFF, 0x04]).is_empty());
    }

    #[test]
    fn strings() {
        // "Xo" in UTF-16LE.
        assert_eq!(parse_string(&[0x06, 0x03, b'X', 0, b'o', 0]).as_deref(), Some("Xo"));
        assert_eq!(parse_string(&[0x02, 0x03]).as_deref(), Some(""));
        assert_eq!(parse_string(&[0x06, 0x02, b'X', 0, b'o', 0]), None);
        assert_eq!(parse_string(&[]), None);
        assert_eq!(parse_string(&[0x01]), None);
        // A bLength longer than the data is clamped; an odd trailing byte is dropped.
        assert_eq!(parse_string(&[0x40, 0x03, b'A', 0, b'B']).as_deref(), Some("A"));
    }
}
