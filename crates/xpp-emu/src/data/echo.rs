//! Echo-canceller module, hardware type 5 at unit 4 (MODEL.md ECHO rows, stage 11x2).

use std::collections::BTreeMap;

use xpp_proto::wire::ECHO_MAP_LEN;

#[derive(Debug, Clone)]
pub(crate) struct EchoUnit {
    pub(crate) map: [u8; ECHO_MAP_LEN],
    spi: BTreeMap<u16, u16>,
    mem: BTreeMap<u32, u16>,
    cpld_version: u16,
}

impl EchoUnit {
    pub(crate) fn new(cpld_version: u16) -> Self {
        Self { map: [0; ECHO_MAP_LEN], spi: BTreeMap::new(), mem: BTreeMap::new(), cpld_version }
    }

    /// Chip reset: SPI registers and chip memory to 0 (the stored map too).
    pub(crate) fn reset(&mut self) {
        self.map = [0; ECHO_MAP_LEN];
        self.spi.clear();
        self.mem.clear();
    }

    fn reg(&self, r: u16) -> u16 {
        self.spi.get(&r).copied().unwrap_or(0)
    }

    /// MODEL: ECHO-6 — the chip memory address selected by the address registers and the
    /// control word's bits 9..11.
    fn address(&self, ctrl: u16) -> u32 {
        (u32::from(self.reg(0x0008)) << 20)
            | (u32::from(self.reg(0x000A)) << 4)
            | (u32::from((ctrl >> 9) & 7) << 1)
    }

    /// An SPI access (MODEL: ECHO-4, ECHO-5): `flags` is packet byte 5. Returns the value of
    /// a read.
    pub(crate) fn spi(&mut self, flags: u8, reg: u16, data: u16) -> Option<u16> {
        match flags {
            0x71 => Some(self.cpld_version),
            0x70 => Some(self.reg(reg)),
            0x30 => {
                self.spi.insert(reg, data);
                if reg == 0x0000 {
                    let addr = self.address(data);
                    match data & 0xF1FF {
                        0x3101 => {
                            let v = self.reg(0x0004);
                            self.mem.insert(addr, v);
                        }
                        0x0101 => {
                            let v = self.mem.get(&addr).copied().unwrap_or(0);
                            self.spi.insert(0x0004, v);
                        }
                        _ => {}
                    }
                }
                None
            }
            _ => None,
        }
    }
}
