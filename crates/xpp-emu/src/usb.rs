//! USB identity and descriptors of each firmware stage (MODEL.md USB-1..11).

use xpp_usb::{DeviceInfo, EndpointInfo, InterfaceInfo, Speed, TransferType, ep};

/// Firmware stage of the device as USB shows it (MT §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UsbStage {
    /// 11x0 (or 1163, or 04B4:8613): bare FX2, only EP0 (USB-8).
    Cold,
    /// 11x1: USB firmware running; the FPGA may or may not be loaded yet.
    UsbFirmware,
    /// 11x2: FPGA running, data interface live.
    Running,
}

/// Everything a stage's descriptors are built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) stage: UsbStage,
    pub(crate) vendor: u16,
    pub(crate) product: u16,
    pub(crate) bcd: u16,
    pub(crate) label: [u8; 8],
}

/// wMaxPacketSize of every bulk endpoint (USB-7).
const MAX_PACKET: u16 = 512;
/// USB-9: string indexes.
const STR_MANUFACTURER: u8 = 1;
const STR_PRODUCT: u8 = 2;
const STR_SERIAL: u8 = 3;
const MANUFACTURER: &str = "Xorcom LTD";
const PRODUCT: &str = "Astribank";

impl Identity {
    const fn has_firmware(&self) -> bool {
        !matches!(self.stage, UsbStage::Cold)
    }

    /// The bulk endpoints of this stage, by interface (USB-7, USB-8).
    pub(crate) fn interfaces(&self) -> Vec<InterfaceInfo> {
        let bulk = |address| EndpointInfo {
            address,
            transfer_type: TransferType::Bulk,
            max_packet_size: MAX_PACKET,
        };
        if self.has_firmware() {
            vec![
                InterfaceInfo {
                    number: ep::DATA_INTERFACE,
                    endpoints: vec![bulk(ep::DATA_OUT), bulk(ep::DATA_IN)],
                },
                InterfaceInfo {
                    number: ep::MGMT_INTERFACE,
                    endpoints: vec![bulk(ep::MGMT_OUT), bulk(ep::MGMT_IN)],
                },
            ]
        } else {
            vec![InterfaceInfo { number: 0, endpoints: Vec::new() }]
        }
    }

    /// Whether `address` is a bulk endpoint of this stage.
    pub(crate) fn has_endpoint(&self, address: u8) -> bool {
        self.has_firmware() && matches!(address, ep::DATA_OUT | ep::DATA_IN | ep::MGMT_OUT | ep::MGMT_IN)
    }

    /// The identity a transport reports.
    pub(crate) fn device_info(&self, location: String) -> DeviceInfo {
        let fw = self.has_firmware();
        DeviceInfo {
            vendor_id: self.vendor,
            product_id: self.product,
            bcd_device: self.bcd,
            manufacturer: fw.then(|| MANUFACTURER.to_owned()),
            product: fw.then(|| PRODUCT.to_owned()),
            serial: fw.then(|| String::from_utf8_lossy(&self.label).into_owned()),
            speed: Speed::High,
            location,
            interfaces: self.interfaces(),
        }
    }

    /// GET_DESCRIPTOR (USB-6, USB-9): the descriptor of `kind` and `index`, if it exists.
    pub(crate) fn descriptor(&self, kind: u8, index: u8) -> Option<Vec<u8>> {
        let fw = self.has_firmware();
        match kind {
            1 => {
                let v = self.vendor.to_le_bytes();
                let p = self.product.to_le_bytes();
                let b = self.bcd.to_le_bytes();
                let (m, pr, s) = if fw { (STR_MANUFACTURER, STR_PRODUCT, STR_SERIAL) } else { (0, 0, 0) };
                // MODEL: USB-6 — bcdUSB 2.00, class 0, EP0 64 bytes, one configuration.
                Some(vec![18, 1, 0x00, 0x02, 0, 0, 0, 64, v[0], v[1], p[0], p[1], b[0], b[1], m, pr, s, 1])
            }
            2 if index == 0 => {
                let ifaces = self.interfaces();
                let mut d = vec![9, 2, 0, 0, ifaces.len() as u8, 1, 0, 0xC0, 0];
                for i in &ifaces {
                    d.extend_from_slice(&[9, 4, i.number, 0, i.endpoints.len() as u8, 0xFF, 0, 0, 0]);
                    for e in &i.endpoints {
                        let mps = e.max_packet_size.to_le_bytes();
                        d.extend_from_slice(&[7, 5, e.address, 0x02, mps[0], mps[1], 0]);
                    }
                }
                let total = (d.len() as u16).to_le_bytes();
                d[2] = total[0];
                d[3] = total[1];
                Some(d)
            }
            3 if fw => {
                let text = match index {
                    0 => return Some(vec![4, 3, 0x09, 0x04]),
                    STR_MANUFACTURER => MANUFACTURER.to_owned(),
                    STR_PRODUCT => PRODUCT.to_owned(),
                    STR_SERIAL => String::from_utf8_lossy(&self.label).into_owned(),
                    _ => return None,
                };
                let mut d = vec![0, 3];
                for u in text.encode_utf16() {
                    d.extend_from_slice(&u.to_le_bytes());
                }
                d[0] = d.len() as u8;
                Some(d)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_of_a_running_device() {
        let id = Identity {
            stage: UsbStage::Running,
            vendor: 0xE4E4,
            product: 0x1162,
            bcd: 0x0101,
            label: *b"00000123",
        };
        let d = id.descriptor(1, 0).unwrap();
        assert_eq!(&d[8..14], &[0xE4, 0xE4, 0x62, 0x11, 0x01, 0x01]);
        let c = id.descriptor(2, 0).unwrap();
        assert_eq!(c.len(), 9 + 2 * (9 + 2 * 7));
        assert_eq!(u16::from_le_bytes([c[2], c[3]]) as usize, c.len());
        let s = id.descriptor(3, 3).unwrap();
        assert_eq!(s[0] as usize, 2 + 16);
        assert_eq!(s[2], b'0');
        let info = id.device_info("emu".into());
        assert_eq!(info.serial.as_deref(), Some("00000123"));
        assert_eq!(info.endpoint(0x88).unwrap().max_packet_size, 512);
        let cold = Identity { stage: UsbStage::Cold, ..id };
        assert_eq!(cold.descriptor(3, 0), None);
        assert!(cold.device_info("x".into()).interface(0).unwrap().endpoints.is_empty());
        assert!(!cold.has_endpoint(0x02));
    }
}
