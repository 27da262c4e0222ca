//! Firmware loading as the device sees it: the FX2 RAM download (LOAD-1..7), the accepted
//! image digests (LOAD-5, MPP-22), and interface 0 in stage 11x1: PIC loading (LOAD-15..17)
//! and the echo-canceller loader's SPI and test packets (ECHO-4..8).
//!
//! The model cannot run 8051 code or configure an FPGA, so "the image works" is judged by
//! comparing the SHA-256 of what was downloaded with the shipped images (MODEL.md decision
//! XP-13.1). The digests below are of the bytes the device receives: for a USB image the
//! 16 KiB FX2 RAM after the download (unwritten bytes 0), for an FPGA image the concatenated
//! DEV_SEND_SEG data.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use xpp_proto::firmware::PicFlags;
use xpp_proto::firmware::echo::{SPI_FLAG_READ, SPI_FLAG_VERSION, SpiPacket};
use xpp_proto::firmware::{FX2_CPUCS, PicPacket, PicReply};
use xpp_proto::wire::{Opcode, deframe};

use crate::config::{Family, ImageCheck};

/// A shipped image the device recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KnownImage {
    pub(crate) file: &'static str,
    /// `$Id` revision token (LOAD-7, LOAD-14).
    pub(crate) version: &'static str,
    pub(crate) sha256: [u8; 32],
}

const fn hex32(s: &str) -> [u8; 32] {
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0,
    }
}

/// USB_FW.hex (bcdDevice 0x0101): SHA-256 of the 16 KiB FX2 RAM after its download.
pub(crate) const USB_FW_101: KnownImage = KnownImage {
    file: "USB_FW.hex",
    version: "11452",
    sha256: hex32("3440a65d6e85f47a3197a869d1bc0bb7d1700b98c02d7eb03808bf7d08faa646"),
};
/// USB_FW.201.hex (bcdDevice 0x0201..0x0203).
pub(crate) const USB_FW_201: KnownImage = KnownImage {
    file: "USB_FW.201.hex",
    version: "11502",
    sha256: hex32("2478862edaecfcc1ba871eff81c1cc9aadeab283a36137ee8b95eb7986cdc0cd"),
};
/// FPGA_1161.hex: SHA-256 of its 135 771 data bytes in file order.
pub(crate) const FPGA_1161: KnownImage = KnownImage {
    file: "FPGA_1161.hex",
    version: "9732",
    sha256: hex32("fe3c57d97dbc1ce3914ed64625292e2a9ecbb0f267572ba9d1634946095cb77f"),
};
/// FPGA_1141.hex.
pub(crate) const FPGA_1141: KnownImage = KnownImage {
    file: "FPGA_1141.hex",
    version: "7107",
    sha256: hex32("b90bd2119a0f63e09adfd44ad593f93fdb4a7033981101f9ebe08b5f0ec3fe8a"),
};
/// FPGA_FXS.hex.
pub(crate) const FPGA_FXS: KnownImage = KnownImage {
    file: "FPGA_FXS.hex",
    version: "7107",
    sha256: hex32("f4bb38f8342bdb94944d264bb6579230987bf5f7f82417d29f73d3e90152725a"),
};

/// LOAD-5: the USB image this hardware revision runs (MT §5.1).
pub(crate) const fn usb_image_for(bcd: u16) -> Option<KnownImage> {
    match bcd {
        0x0101 => Some(USB_FW_101),
        0x0201..=0x0203 => Some(USB_FW_201),
        _ => None,
    }
}

/// MPP-22: the FPGA image a 11x1 device of this family and revision accepts (MT §5.1).
/// 1151 and 1161/20x have no shipped image: only configured digests load there.
pub(crate) const fn fpga_image_for(family: Family, bcd: u16) -> Option<KnownImage> {
    match (family, bcd) {
        (Family::Fxs8, _) => Some(FPGA_FXS),
        (Family::Bri, _) => Some(FPGA_1141),
        (Family::Modular, 0x0101) => Some(FPGA_1161),
        _ => None,
    }
}

/// A NUL-padded 6-byte version field.
pub(crate) fn version6(s: &str) -> [u8; 6] {
    let mut v = [0u8; 6];
    for (o, b) in v.iter_mut().zip(s.bytes()) {
        *o = b;
    }
    v
}

/// Judges a downloaded image: `Some(version)` if accepted.
pub(crate) fn judge(
    digest: &[u8; 32],
    len: usize,
    expected: Option<KnownImage>,
    extra: &[[u8; 32]],
    policy: ImageCheck,
) -> Option<&'static str> {
    if expected.is_some_and(|k| k.sha256 == *digest) {
        return expected.map(|k| k.version);
    }
    if extra.contains(digest) {
        return Some("0");
    }
    (policy == ImageCheck::AnyNonEmpty && len > 0).then_some("0")
}

/// FX2 on-chip memory reached by vendor request 0xA0 (LOAD-1..4).
#[derive(Debug, Clone)]
pub(crate) struct Fx2 {
    ram: Vec<u8>,
    regs: Vec<u8>,
    /// CPUCS holds the 8051 in reset.
    pub(crate) held: bool,
    /// Bytes written since the hold.
    pub(crate) written: usize,
}

/// The effect of a write on CPUCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cpucs {
    Hold,
    Release,
}

const RAM_END: usize = 0x4000;
const REGS_START: usize = 0xE000;

impl Fx2 {
    pub(crate) fn new() -> Self {
        Self { ram: vec![0; RAM_END], regs: vec![0; 0x1_0000 - REGS_START], held: false, written: 0 }
    }

    fn region(&mut self, addr: usize, len: usize) -> Option<&mut [u8]> {
        let end = addr.checked_add(len)?;
        if end <= RAM_END {
            self.ram.get_mut(addr..end)
        } else if addr >= REGS_START {
            self.regs.get_mut(addr - REGS_START..end - REGS_START)
        } else {
            None
        }
    }

    /// LOAD-1/LOAD-2: writes `data` at `addr`; `Err` = STALL. Returns the CPUCS effect, if
    /// the write covered CPUCS.
    pub(crate) fn write(&mut self, addr: u16, data: &[u8]) -> Result<Option<Cpucs>, ()> {
        let a = usize::from(addr);
        let dst = self.region(a, data.len()).ok_or(())?;
        dst.copy_from_slice(data);
        if a < RAM_END {
            self.written += data.len();
        }
        let cpucs = usize::from(FX2_CPUCS);
        if (a..a + data.len()).contains(&cpucs) {
            let v = data[cpucs - a];
            if v & 0x01 != 0 {
                // MODEL: LOAD-4 — hold; the record of downloaded bytes starts afresh.
                self.held = true;
                self.ram.fill(0);
                self.written = 0;
                return Ok(Some(Cpucs::Hold));
            }
            return Ok(Some(Cpucs::Release));
        }
        Ok(None)
    }

    /// LOAD-3: reads `len` bytes at `addr`.
    pub(crate) fn read(&mut self, addr: u16, len: usize) -> Option<Vec<u8>> {
        self.region(usize::from(addr), len).map(|s| s.to_vec())
    }

    /// SHA-256 of RAM 0x0000–0x3FFF.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(&self.ram).into()
    }
}

/// Most distinct echo-canceller chip words the model stores; writes beyond are ignored, so a
/// hostile host cannot grow memory without bound.
const EC_MEMORY_LIMIT: usize = 1 << 20;

/// Interface 0 in stage 11x1 after the FPGA load (LOAD-16): PIC files and the EC loader.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loader {
    /// The PIC file being received: (card type, running XOR).
    pic: Option<(u8, u8)>,
    ec_regs: BTreeMap<u16, u16>,
    ec_memory: BTreeMap<u32, u16>,
}

/// What the device has that the loader needs.
pub(crate) struct LoaderEnv<'a> {
    pub(crate) echo: bool,
    pub(crate) cpld_version: u16,
    /// Card type of units 0..=3 (0 = empty).
    pub(crate) unit_types: [u8; 4],
    /// PIC-burned flag of units 0..=4.
    pub(crate) pic_burned: &'a mut [bool; 5],
    /// Replies to queue on 0x86.
    pub(crate) replies: &'a mut Vec<Vec<u8>>,
}

impl Loader {
    /// Drops any open PIC file (session end).
    pub(crate) fn reset_session(&mut self) {
        self.pic = None;
    }

    /// The stored echo-canceller chip word at `address` (ECHO-6).
    pub(crate) fn ec_word(&self, address: u32) -> u16 {
        self.ec_memory.get(&address).copied().unwrap_or(0)
    }

    /// One OUT transfer on 0x02 (LOAD-16).
    pub(crate) fn handle_out(&mut self, transfer: &[u8], env: &mut LoaderEnv<'_>) {
        for item in deframe(transfer) {
            let Ok((_, p)) = item else { break };
            let b = p.as_bytes();
            match p.opcode() {
                Opcode::PicRequest => self.pic_packet(b, env),
                Opcode::EchoTest if env.echo && b.len() >= 6 => {
                    // MODEL: ECHO-7 — reply 06 00 36 00 <b4> <b5>.
                    env.replies.push(vec![0x06, 0x00, 0x36, 0x00, b[4], b[5]]);
                }
                Opcode::RegisterRequest if p.address().unit() == 4 => self.spi_packet(b, env),
                // MODEL: LOAD-16, ECHO-8 — everything else is discarded.
                _ => {}
            }
        }
    }

    /// MODEL: LOAD-17.
    fn pic_packet(&mut self, b: &[u8], env: &mut LoaderEnv<'_>) {
        let Ok(p) = PicPacket::parse(b) else { return };
        match p.flags {
            PicFlags::Start => self.pic = Some((p.card_type, 0)),
            PicFlags::Data => {
                if let Some((_, xor)) = self.pic.as_mut() {
                    *xor = p.data().iter().fold(*xor, |a, &d| a ^ d);
                }
            }
            PicFlags::End => {
                // Decision: END closes the file; an END whose card type differs from START's,
                // or without exactly one data byte, fails like a bad checksum.
                let ok = match self.pic.take() {
                    Some((card, xor)) => card == p.card_type && p.data() == [xor],
                    None => false,
                };
                if ok {
                    for (unit, &t) in env.unit_types.iter().enumerate() {
                        if t != 0 && t == p.card_type {
                            env.pic_burned[unit] = true;
                        }
                    }
                }
                let reply = PicReply {
                    flags: PicFlags::End,
                    card_type: p.card_type,
                    offset: p.offset,
                    status: u8::from(!ok),
                };
                let mut buf = [0u8; 9];
                if let Ok(n) = reply.emit(&mut buf) {
                    env.replies.push(buf[..n].to_vec());
                }
            }
            PicFlags::Ends => self.pic = None,
            _ => {}
        }
    }

    /// MODEL: ECHO-4, ECHO-5, ECHO-6, ECHO-8.
    fn spi_packet(&mut self, b: &[u8], env: &mut LoaderEnv<'_>) {
        let Ok(spi) = SpiPacket::parse(b) else { return };
        let read = spi.flags & SPI_FLAG_READ != 0;
        let value = if !env.echo {
            0xFFFF
        } else if read && spi.flags & SPI_FLAG_VERSION != 0 && spi.reg == 0 {
            env.cpld_version
        } else if read {
            self.ec_regs.get(&spi.reg).copied().unwrap_or(0)
        } else {
            self.spi_write(spi.reg, spi.data);
            return;
        };
        if read {
            let mut r = b[..10].to_vec();
            r[2] = Opcode::RegisterReply.into();
            r[3] &= 0x7F;
            r[8..10].copy_from_slice(&value.to_le_bytes());
            env.replies.push(r);
        }
    }

    fn spi_write(&mut self, reg: u16, data: u16) {
        if self.ec_regs.len() < usize::from(u16::MAX) || self.ec_regs.contains_key(&reg) {
            self.ec_regs.insert(reg, data);
        }
        // Decision: a control word (register 0) with low byte 0x01 starts an access; bit 13
        // set (0x3101-type) writes register 4 to the address, clear (0x0101-type) reads it
        // into register 4. Address = reg 8 << 20 | reg 0xA << 4 | bits 9–11 << 1.
        if reg == 0 && data & 0x00FF == 0x01 {
            let hi = u32::from(self.ec_regs.get(&0x0008).copied().unwrap_or(0));
            let lo = u32::from(self.ec_regs.get(&0x000A).copied().unwrap_or(0));
            let addr = (hi << 20) | (lo << 4) | (u32::from((data >> 9) & 7) << 1);
            if data & 0x2000 != 0 {
                let v = self.ec_regs.get(&0x0004).copied().unwrap_or(0);
                if self.ec_memory.len() < EC_MEMORY_LIMIT || self.ec_memory.contains_key(&addr) {
                    self.ec_memory.insert(addr, v);
                }
            } else {
                let v = self.ec_word(addr);
                self.ec_regs.insert(0x0004, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xpp_proto::firmware::echo::{EchoPacket, chip_read, chip_write};

    #[test]
    fn fx2_regions_and_cpucs() {
        let mut f = Fx2::new();
        assert_eq!(f.write(0x3FFF, &[1]), Ok(None));
        assert_eq!(f.write(0x3FFF, &[1, 2]), Err(()));
        assert_eq!(f.write(0x8000, &[1]), Err(()));
        assert_eq!(f.write(0xE600, &[1]), Ok(Some(Cpucs::Hold)));
        assert!(f.held);
        assert_eq!(f.read(0x3FFF, 1), Some(vec![0]));
        assert_eq!(f.write(0x0000, &[0xAA; 4]), Ok(None));
        assert_eq!(f.written, 4);
        assert_eq!(f.write(0xE600, &[0]), Ok(Some(Cpucs::Release)));
        assert_eq!(f.read(0x0000, 2), Some(vec![0xAA, 0xAA]));
    }

    #[test]
    fn ec_chip_memory_round_trip() {
        let mut l = Loader::default();
        let mut burned = [false; 5];
        let mut replies = Vec::new();
        let mut env = LoaderEnv {
            echo: true,
            cpld_version: 0x0101,
            unit_types: [1, 0, 0, 0],
            pic_burned: &mut burned,
            replies: &mut replies,
        };
        let mut t = Vec::new();
        for p in chip_write(0x0012_3456, 0xBEEF).into_iter().chain(chip_read(0x0012_3456)) {
            let mut b = [0u8; 10];
            EchoPacket::Spi(p).emit(&mut b).unwrap();
            t.extend_from_slice(&b);
        }
        l.handle_out(&t, &mut env);
        assert_eq!(replies.len(), 1);
        assert_eq!(xpp_proto::firmware::echo::parse_spi_reply(&replies[0]), Ok(0xBEEF));
        assert_eq!(l.ec_word(0x0012_3456), 0xBEEF);
    }
}
