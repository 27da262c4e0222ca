//! Shared pieces of the middleware tests: a deterministic loopback device and helpers.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use xpp_proto::mgmt::{AckStatus, Reply};
use xpp_usb::{
    Completion, ControlSetup, DeviceInfo, EndpointInfo, InterfaceInfo, Speed, TransferError, TransferType,
    Transport, ep,
};

/// REGISTER_REQUEST 1/0 port=3 WD reg=0x40 data=0x01 (xpp-proto's wire doc example).
pub(crate) const XPP_REG_WRITE: [u8; 10] = [0x0A, 0x00, 0x0F, 0x10, 0x35, 0x00, 0x40, 0x00, 0x01, 0x00];
/// MPP TWS_PORT_SET port=1, seq 1 (xpp-proto's mgmt doc example).
pub(crate) const MPP_TWS_PORT_SET: [u8; 6] = [0x06, 0x00, 0x01, 0x00, 0x34, 0x01];
/// An 18-byte device descriptor of a running modular Astribank (E4E4:1162, bcdDevice 0x0101).
pub(crate) const DEVICE_DESCRIPTOR: [u8; 18] =
    [18, 1, 0x00, 0x02, 0xff, 0, 0, 64, 0xE4, 0xE4, 0x62, 0x11, 0x01, 0x01, 1, 2, 3, 1];

/// A small device: bulk OUT 0x02 is echoed on IN 0x86; each MPP request on 0x04 is answered
/// on 0x88 with an ACK carrying its sequence number. Control IN answers GET_DESCRIPTOR(device)
/// and stalls anything else; control OUT accepts. Completes only when an IN buffer is queued.
pub(crate) struct Loopback {
    pub(crate) info: DeviceInfo,
    outgoing: [VecDeque<Vec<u8>>; 2],
    pending_in: [VecDeque<Vec<u8>>; 2],
    done: VecDeque<Completion>,
    pub(crate) gone: bool,
    pub(crate) control_log: Vec<(ControlSetup, Vec<u8>)>,
}

fn ep_info(address: u8) -> EndpointInfo {
    EndpointInfo { address, transfer_type: TransferType::Bulk, max_packet_size: 512 }
}

pub(crate) fn astribank_info() -> DeviceInfo {
    DeviceInfo {
        vendor_id: 0xE4E4,
        product_id: 0x1162,
        bcd_device: 0x0101,
        manufacturer: None,
        product: None,
        serial: None,
        speed: Speed::High,
        location: "loopback".into(),
        interfaces: vec![
            InterfaceInfo { number: 0, endpoints: vec![ep_info(ep::DATA_OUT), ep_info(ep::DATA_IN)] },
            InterfaceInfo { number: 1, endpoints: vec![ep_info(ep::MGMT_OUT), ep_info(ep::MGMT_IN)] },
        ],
    }
}

impl Default for Loopback {
    fn default() -> Self {
        Self::new()
    }
}

impl Loopback {
    pub(crate) fn new() -> Self {
        Self {
            info: astribank_info(),
            outgoing: Default::default(),
            pending_in: Default::default(),
            done: VecDeque::new(),
            gone: false,
            control_log: Vec::new(),
        }
    }

    fn slot(endpoint: u8) -> Option<usize> {
        match endpoint {
            ep::DATA_OUT | ep::DATA_IN => Some(0),
            ep::MGMT_OUT | ep::MGMT_IN => Some(1),
            _ => None,
        }
    }

    fn pump(&mut self) {
        for (i, in_ep) in [(0, ep::DATA_IN), (1, ep::MGMT_IN)] {
            while !self.outgoing[i].is_empty() && !self.pending_in[i].is_empty() {
                let data = self.outgoing[i].pop_front().unwrap_or_default();
                let mut buf = self.pending_in[i].pop_front().unwrap_or_default();
                let n = data.len().min(buf.len());
                buf.truncate(n);
                buf.copy_from_slice(&data[..n]);
                self.done.push_back(Completion {
                    endpoint: in_ep,
                    buffer: buf,
                    actual_len: n,
                    status: Ok(()),
                });
            }
        }
    }

    /// What the device sends back for `data` written on OUT slot `i`.
    fn answer(i: usize, data: &[u8]) -> Vec<u8> {
        if i == 0 {
            return data.to_vec();
        }
        let seq = data.get(2..4).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        let mut buf = [0u8; 16];
        let n = Reply::Ack { status: AckStatus::Ok }.emit(seq, &mut buf).unwrap_or(0);
        buf[..n].to_vec()
    }
}

impl Transport for Loopback {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn submit(&mut self, endpoint: u8, buffer: Vec<u8>) -> Result<(), TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        let i = Self::slot(endpoint).ok_or(TransferError::InvalidArgument)?;
        if endpoint & 0x80 == 0 {
            let n = buffer.len();
            self.outgoing[i].push_back(Self::answer(i, &buffer));
            self.done.push_back(Completion { endpoint, buffer, actual_len: n, status: Ok(()) });
        } else {
            self.pending_in[i].push_back(buffer);
        }
        self.pump();
        Ok(())
    }
    fn pending(&self, endpoint: u8) -> usize {
        let queued = match (Self::slot(endpoint), endpoint & 0x80 != 0) {
            (Some(i), true) => self.pending_in[i].len(),
            _ => 0,
        };
        queued + self.done.iter().filter(|c| c.endpoint == endpoint).count()
    }
    fn wait_next_complete(&mut self, endpoint: u8, _timeout: Duration) -> Option<Completion> {
        let i = self.done.iter().position(|c| c.endpoint == endpoint)?;
        self.done.remove(i)
    }
    fn cancel_all(&mut self, endpoint: u8) {
        let Some(i) = Self::slot(endpoint) else { return };
        if endpoint & 0x80 == 0 {
            return;
        }
        let status = Err(if self.gone { TransferError::Disconnected } else { TransferError::Cancelled });
        for mut buffer in self.pending_in[i].drain(..) {
            buffer.clear();
            self.done.push_back(Completion { endpoint, buffer, actual_len: 0, status });
        }
    }
    fn control_out(&mut self, setup: ControlSetup, data: &[u8], _: Duration) -> Result<usize, TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        self.control_log.push((setup, data.to_vec()));
        Ok(data.len())
    }
    fn control_in(
        &mut self,
        setup: ControlSetup,
        buf: &mut [u8],
        _: Duration,
    ) -> Result<usize, TransferError> {
        if self.gone {
            return Err(TransferError::Disconnected);
        }
        if setup.request_type == 0x80 && setup.request == 6 && setup.value == 0x0100 {
            let n = DEVICE_DESCRIPTOR.len().min(buf.len());
            buf[..n].copy_from_slice(&DEVICE_DESCRIPTOR[..n]);
            return Ok(n);
        }
        if setup.request_type == 0xC0 {
            // A vendor read: answers 4 bytes derived from wValue.
            let v = setup.value.to_le_bytes();
            let answer = [v[0], v[1], 0xAA, 0x55];
            let n = answer.len().min(buf.len());
            buf[..n].copy_from_slice(&answer[..n]);
            return Ok(n);
        }
        Err(TransferError::Stall)
    }
    fn reset(&mut self) -> Result<(), TransferError> {
        if self.gone { Err(TransferError::Disconnected) } else { Ok(()) }
    }
}

/// A clock that advances 125 µs per reading from 2024-01-01T00:00:00Z.
pub(crate) fn test_clock() -> xpp_usb::middleware::Clock {
    let mut t = Duration::from_secs(1_704_067_200);
    Box::new(move || {
        t += Duration::from_micros(125);
        t
    })
}

/// The workspace root (two levels above this crate's manifest).
pub(crate) fn workspace_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest).to_path_buf()
}

/// Checks an EZ-USB FX2 firmware-load write (vendor request 0xA0, docs/reference/mpp-twinstar-firmware.md
/// §5.3): wIndex 0, a data stage of exactly wLength bytes, either CPUCS (0xE600) <- 0 or 1, or
/// data inside the on-chip RAM the request reaches (0x0000..0x4000, 0xE000..0xE200).
pub(crate) fn check_fx2_write(setup: [u8; 8], data: &[u8]) -> Result<(), String> {
    let (s, w_length) = ControlSetup::from_bytes(setup);
    if s.index != 0 {
        return Err(format!("FX2 write with wIndex {:#06x}", s.index));
    }
    if usize::from(w_length) != data.len() || data.is_empty() {
        return Err(format!("FX2 write: wLength {w_length} but {} data bytes", data.len()));
    }
    let start = u32::from(s.value);
    let end = start + data.len() as u32;
    let in_ram = end <= 0x4000 || (start >= 0xE000 && end <= 0xE200);
    let cpucs = s.value == 0xE600 && matches!(data, [0] | [1]);
    if !in_ram && !cpucs {
        return Err(format!("FX2 write {start:#06x}..{end:#06x} outside on-chip RAM"));
    }
    Ok(())
}

/// Decodes every transfer of a capture, of every device in it, with the decoder of its
/// endpoint: data-interface transfers with `wire::parse_transfer`, management requests (0x04)
/// and replies (0x88) with `mgmt::Request::parse` / `mgmt::Reply::parse`, FX2 firmware writes
/// (control OUT, vendor request 0xA0) with [`check_fx2_write`]. Skips records without data (IN
/// submits, OUT completions, failed or empty transfers), other control transfers (standard
/// requests of the enumeration) and other endpoints. Returns the number of transfers decoded,
/// or the first error with its record.
pub(crate) fn decode_capture(bytes: &[u8]) -> Result<usize, String> {
    use xpp_usb::middleware::PcapReader;
    use xpp_usb::middleware::usbmon::{EventType, XferType};
    let mut decoded = 0;
    for r in PcapReader::new(bytes).map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        let h = r.header;
        let at = |e: &dyn std::fmt::Display| {
            format!(
                "record at byte {} (device {}.{}), ep {:#04x}: {e}",
                r.offset, h.busnum, h.devnum, h.endpoint
            )
        };
        if h.xfer_type == XferType::Control {
            if let (EventType::Submit, Some(setup)) = (h.event, h.setup_packet())
                && setup[..2] == [0x40, 0xA0]
            {
                check_fx2_write(setup, r.data).map_err(|e| at(&e))?;
                decoded += 1;
            }
            continue;
        }
        let carries_data = match h.event {
            EventType::Submit => h.endpoint & 0x80 == 0,
            EventType::Complete => h.endpoint & 0x80 != 0 && h.status == 0,
            _ => false,
        };
        if h.xfer_type != XferType::Bulk || !carries_data || r.data.is_empty() {
            continue;
        }
        match h.endpoint {
            ep::DATA_OUT | ep::DATA_IN => {
                for item in xpp_proto::wire::parse_transfer(r.data) {
                    item.map_err(|e| at(&e))?;
                }
            }
            ep::MGMT_OUT => {
                xpp_proto::mgmt::Request::parse(r.data).map_err(|e| at(&e))?;
            }
            ep::MGMT_IN => {
                Reply::parse(r.data).map_err(|e| at(&e))?;
            }
            _ => continue,
        }
        decoded += 1;
    }
    Ok(decoded)
}

/// Whether CI requires the tshark checks (`XPP_REQUIRE_TSHARK=1`): then a missing `tshark`
/// is a failure, not a skip.
pub(crate) fn tshark_required() -> bool {
    std::env::var("XPP_REQUIRE_TSHARK").is_ok_and(|v| v == "1")
}
