//! What an emulated device is built from (MODEL.md, "Configuration inputs").
//!
//! [`DeviceConfig`] holds the fields every part of the model reads; the device core and the
//! data interface keep their own tunables in [`CoreConfig`](crate::config::CoreConfig) and
//! [`DataConfig`](crate::data::DataConfig).

use xpp_proto::wire::pri::PriProtocol;

pub use crate::data::DataConfig;

/// Astribank model family: the first three hex digits of the product ID (MT §1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// Astribank-8/16 (old FXS), 0x113x.
    Fxs8,
    /// Astribank-BRI, 0x114x.
    Bri,
    /// Astribank-multi, 0x115x.
    Multi,
    /// Astribank-modular, 0x116x: licences, echo canceller, TwinStar.
    Modular,
}

impl Family {
    /// The cold (stage 0) product ID: 0x1130, 0x1140, 0x1150 or 0x1160.
    pub const fn base_product(self) -> u16 {
        match self {
            Self::Fxs8 => 0x1130,
            Self::Bri => 0x1140,
            Self::Multi => 0x1150,
            Self::Modular => 0x1160,
        }
    }
}

/// Firmware stage the device powers up in (MODEL.md LOAD-14: a test convenience).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Stage {
    /// 11x0: bare FX2, waiting for the USB firmware.
    #[default]
    Cold,
    /// 11x1 with the FPGA empty.
    UsbLoaded,
    /// 11x1 with the FPGA loaded, waiting for RENUM.
    FpgaLoaded,
    /// 11x2: data interface live.
    Running,
}

/// EEPROM fitted (MT §3.3 `i2cs_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EepromKind {
    /// No EEPROM.
    None,
    /// Small EEPROM: no capabilities, extrainfo or TwinStar.
    Small,
    /// Large EEPROM.
    #[default]
    Large,
}

/// FXS SLIC variant (XP §6.2 hardware types 1 and 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FxsChip {
    /// Hardware type 1: direct + indirect registers.
    #[default]
    Type1,
    /// Hardware type 6: registers, RAM and an I/O expander.
    Type6,
}

/// A module in one of the four slots (units 0..3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ModuleConfig {
    /// 8 FXS ports (phones attach here).
    Fxs {
        /// SLIC variant.
        chip: FxsChip,
        /// Descriptor subtype nibble.
        subtype: u8,
        /// Bit n set: port n has no SLIC (reads 0xFF).
        absent_ports: u8,
    },
    /// 8 FXO ports (PSTN lines attach here).
    Fxo {
        /// Descriptor subtype nibble.
        subtype: u8,
        /// Bit n set: port n has no DAA.
        absent_ports: u8,
    },
    /// A PRI module: 1 or 4 E1/T1 spans.
    Pri {
        /// Line type of every span (J1 is modelled as T1 framing but refused by hosts).
        protocol: PriProtocol,
        /// 1..=4 spans.
        ports: u8,
    },
    /// A BRI module: 1..4 S/T ports.
    Bri {
        /// 1..=4 ports.
        ports: u8,
        /// Bit i set: port i is NT (phone side); clear: TE (network side).
        nt_mask: u8,
    },
}

impl ModuleConfig {
    /// An FXS module with type-1 SLICs on all 8 ports.
    pub const FXS: Self = Self::Fxs { chip: FxsChip::Type1, subtype: 0, absent_ports: 0 };
    /// An FXO module with all 8 ports.
    pub const FXO: Self = Self::Fxo { subtype: 0, absent_ports: 0 };
    /// A single-span E1 PRI module.
    pub const PRI_E1: Self = Self::Pri { protocol: PriProtocol::E1, ports: 1 };
    /// A 4-port BRI module, all TE.
    pub const BRI: Self = Self::Bri { ports: 4, nt_mask: 0 };
}

/// The whole configuration of one emulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceConfig {
    /// Model family (selects product IDs and accepted FPGA image).
    pub family: Family,
    /// bcdDevice (0x0101 original, 0x0201..0x0203 newer 116x hardware).
    pub hw_revision: u16,
    /// Cold product ID override: `Some(0x1163)` for a "TwinStar monitor" board.
    pub cold_product: Option<u16>,
    /// 8-character label: USB serial string and EEPROM label.
    pub label: [u8; 8],
    /// EEPROM fitted.
    pub eeprom: EepromKind,
    /// Modules in slots 0..3 (unit = slot index).
    pub slots: [Option<ModuleConfig>; 4],
    /// Echo-canceller module in unit 4 (modular family only).
    pub echo: bool,
    /// Two USB ports with TwinStar switching (modular family only).
    pub twinstar: bool,
    /// Stage at power-on.
    pub start_stage: Stage,
    /// Seed of every pseudo-random choice (fault injection); same seed, same run.
    pub seed: u64,
    /// Device-core tunables (USB, MPP, TwinStar, faults).
    pub core: CoreConfig,
    /// Data-interface tunables (ticks, PCM, cards, equipment).
    pub data: DataConfig,
}

impl Default for DeviceConfig {
    /// A modular Astribank with FXS in slot 0 and FXO in slot 1, starting cold.
    fn default() -> Self {
        Self {
            family: Family::Modular,
            hw_revision: 0x0101,
            cold_product: None,
            label: *b"00000001",
            eeprom: EepromKind::Large,
            slots: [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None],
            echo: false,
            twinstar: false,
            start_stage: Stage::Cold,
            seed: 0,
            core: CoreConfig::default(),
            data: DataConfig::default(),
        }
    }
}

impl DeviceConfig {
    /// Sets the modules (builder style).
    #[must_use]
    pub fn with_slots(mut self, slots: [Option<ModuleConfig>; 4]) -> Self {
        self.slots = slots;
        self
    }

    /// Sets the power-on stage.
    #[must_use]
    pub const fn with_start_stage(mut self, stage: Stage) -> Self {
        self.start_stage = stage;
        self
    }

    /// Turns TwinStar on or off.
    #[must_use]
    pub const fn with_twinstar(mut self, on: bool) -> Self {
        self.twinstar = on;
        self
    }

    /// Sets the seed.
    #[must_use]
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
}

/// Tunables of the device core: USB stages, MPP, TwinStar, fault injection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CoreConfig {}
