//! Generic chip register files (MODEL.md REG-7, REG-8, REG-9).

use std::collections::BTreeMap;

/// One chip port's registers: 256 direct bytes, a 16-bit indirect store keyed by
/// (regnum, subreg) and a 32-bit RAM store keyed by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChipRegs {
    direct: [u8; 256],
    indirect: BTreeMap<(u8, u8), u16>,
    ram: BTreeMap<u16, u32>,
}

impl Default for ChipRegs {
    fn default() -> Self {
        Self { direct: [0; 256], indirect: BTreeMap::new(), ram: BTreeMap::new() }
    }
}

impl ChipRegs {
    /// Power-on: every register 0 (MODEL: REG-7, REG-9).
    pub(crate) fn reset(&mut self) {
        self.direct = [0; 256];
        self.indirect.clear();
        self.ram.clear();
    }

    /// Direct register value.
    pub(crate) fn get(&self, reg: u8) -> u8 {
        self.direct[usize::from(reg)]
    }

    /// Stores a direct register (MODEL: REG-7).
    pub(crate) fn set(&mut self, reg: u8, v: u8) {
        self.direct[usize::from(reg)] = v;
    }

    /// Indirect register value (MODEL: REG-8), power-on 0.
    pub(crate) fn get_sub(&self, reg: u8, sub: u8) -> u16 {
        self.indirect.get(&(reg, sub)).copied().unwrap_or(0)
    }

    /// Stores an indirect register (MODEL: REG-8).
    pub(crate) fn set_sub(&mut self, reg: u8, sub: u8, v: u16) {
        self.indirect.insert((reg, sub), v);
    }

    /// RAM word (MODEL: REG-9), power-on 0.
    pub(crate) fn get_ram(&self, addr: u16) -> u32 {
        self.ram.get(&addr).copied().unwrap_or(0)
    }

    /// Stores a RAM word (MODEL: REG-9).
    pub(crate) fn set_ram(&mut self, addr: u16, v: u32) {
        self.ram.insert(addr, v);
    }
}
