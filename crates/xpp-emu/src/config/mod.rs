//! What an emulated device is built from (MODEL.md, "Configuration inputs").
//!
//! [`DeviceConfig`] holds the fields every part of the model reads; the device core and the
//! data interface keep their own tunables in [`CoreConfig`] and [`DataConfig`], and fault
//! injection is configured with [`FaultRule`]s and [`ScheduledFault`]s.
//!
//! Plain data, and a leaf: nothing here imports from the rest of the crate. The data
//! interface and the fault engine take their configuration types from here; they stay
//! reachable under their old paths too (`data::DataConfig`, `fault::FaultRule`, ...).

mod data;
mod fault;

use xpp_proto::Duration;
use xpp_proto::wire::pri::PriProtocol;

pub use self::data::{DataConfig, EquipmentTimings, PcmReadMask};
pub use self::fault::{DataFault, FaultAction, FaultEndpoint, FaultRule, FaultTrigger, ScheduledFault};

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
    /// MPP-26: "PIC burned" per unit 0..=4 at first power-on; `None` = the default (burned for
    /// a module in a slot, not for the echo module).
    pub pic_burned: [Option<bool>; 5],
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
            pic_burned: [None; 5],
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

    /// Sets the EEPROM fitted.
    #[must_use]
    pub const fn with_eeprom(mut self, eeprom: EepromKind) -> Self {
        self.eeprom = eeprom;
        self
    }

    /// Sets whether the module at `unit` (0..=4) reports "PIC burned" (MPP-26); other units
    /// are ignored.
    #[must_use]
    pub fn with_pic_burned(mut self, unit: u8, burned: bool) -> Self {
        if let Some(p) = self.pic_burned.get_mut(usize::from(unit)) {
            *p = Some(burned);
        }
        self
    }

    /// Sets the echo-canceller module.
    #[must_use]
    pub const fn with_echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    /// Sets the family.
    #[must_use]
    pub const fn with_family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }

    /// Sets the hardware revision (bcdDevice).
    #[must_use]
    pub const fn with_hw_revision(mut self, bcd: u16) -> Self {
        self.hw_revision = bcd;
        self
    }

    /// Sets the device-core tunables.
    #[must_use]
    pub fn with_core(mut self, core: CoreConfig) -> Self {
        self.core = core;
        self
    }
}

/// How the device judges a downloaded firmware image (MODEL.md LOAD-5, MPP-22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ImageCheck {
    /// Accept only images whose SHA-256 is in the built-in set of shipped images for this
    /// product and revision, or in the configured extra digests.
    #[default]
    Digest,
    /// Accept any non-empty image (for tests with synthetic images).
    AnyNonEmpty,
}

/// What happens to the module chips when the device jumps to the other TwinStar port
/// (MODEL.md TWS-13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LineStateOnJump {
    /// Chip registers, layer 1, equipment and patches stay as they were.
    #[default]
    Keep,
    /// Every chip returns to its power-on state (equipment keeps its physical state).
    Reset,
}

/// What a host on the standby TwinStar port sees (MODEL.md TWS-2, decision MT-10.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StandbyPresence {
    /// Nothing enumerates on the standby port (only VBUS is sensed).
    #[default]
    None,
    /// Experiment: a "TwinStar monitor" e4e4:1163 enumerates cold on the standby port while
    /// it has VBUS: descriptors and standard requests only; FX2 RAM access (vendor request
    /// 0xA0) stalls, since the device's one FX2 serves the active port.
    Monitor1163,
}

/// A licence the device accepts besides the emulator's key oracle (MODEL.md MPP-14), e.g.
/// copied from a real licence file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LicenceKey {
    /// The EEPROM table the key is bound to.
    pub table: xpp_proto::mgmt::EepromTable,
    /// The capabilities it unlocks.
    pub caps: xpp_proto::mgmt::Capabilities,
    /// The key.
    pub key: xpp_proto::mgmt::CapKey,
}

/// Tunables of the device core: USB stages, MPP, TwinStar, fault injection.
///
/// Every field is a "(config, default …)" of a MODEL.md row; the row is named on the field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoreConfig {
    /// USB-17: time between leaving a port on renumeration and reappearing (default 500 ms).
    pub renum_delay: Duration,
    /// TWS-12: time between leaving the old port on a jump and enumerating on the new one
    /// (default 500 ms).
    pub jump_delay: Duration,
    /// TWS-14, LOAD-13: time from VBUS (or device power) appearing to enumeration (default
    /// 100 ms, the USB attach debounce). Zero at construction: a device built powered is
    /// enumerated at once.
    pub attach_delay: Duration,
    /// TWS-10: watchdog timeout, clamped to 50 ms ..= 60 s (default 2000 ms).
    pub watchdog_timeout: Duration,
    /// TWS-13: chip state across a jump (default Keep).
    pub line_state_on_jump: LineStateOnJump,
    /// LOAD-5: how a downloaded USB image is judged (default Digest).
    pub usb_image_check: ImageCheck,
    /// MPP-22: how a downloaded FPGA image is judged (default Digest).
    pub fpga_image_check: ImageCheck,
    /// LOAD-5: extra accepted SHA-256 digests of the 16 KiB FX2 RAM image (any revision).
    pub extra_usb_digests: Vec<[u8; 32]>,
    /// MPP-22: extra accepted SHA-256 digests of FPGA data (any product), e.g. for the
    /// unshipped FPGA_1151.hex or FPGA_1161.201.hex.
    pub extra_fpga_digests: Vec<[u8; 32]>,
    /// MPP-9: the `eeprom` version string of STATUS_GET (default "1", NUL padded).
    pub eeprom_version: [u8; 6],
    /// MPP-27: SER STAT_GET `fpga_configuration` (default 3).
    pub fpga_configuration: u8,
    /// ECHO-5: the echo-canceller CPLD version (default 0x0101).
    pub cpld_version: u16,
    /// MPP-1: delay between a request's arrival and its reply being available (default 0).
    pub mpp_latency: Duration,
    /// USB-12: IN FIFO depth of endpoint 0x86 in transfers (default 64).
    pub data_in_depth: usize,
    /// USB-12: IN FIFO depth of endpoint 0x88 in transfers (default 8).
    pub mgmt_in_depth: usize,
    /// TWS-1: VBUS present on ports 0 and 1 at construction (default both).
    pub port_power: [bool; 2],
    /// MPP-14: literal licences accepted besides the key oracle.
    pub licence_keys: Vec<LicenceKey>,
    /// FAULT-1..7: transfer fault rules, applied in order.
    pub faults: Vec<FaultRule>,
    /// FAULT-8..12: faults at given times (unplug, power, reset, data-side faults).
    pub scheduled_faults: Vec<ScheduledFault>,
    /// MPP-18, LOAD-13: a file holding the raw EEPROM image: read at every power-on (if it
    /// exists), rewritten after every EEPROM change (default none: the EEPROM lives in memory).
    pub eeprom_file: Option<std::path::PathBuf>,
    /// TWS-2: what the standby port shows (default nothing).
    pub standby_presence: StandbyPresence,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            renum_delay: Duration::from_millis(500),
            jump_delay: Duration::from_millis(500),
            attach_delay: Duration::from_millis(100),
            watchdog_timeout: Duration::from_millis(2000),
            line_state_on_jump: LineStateOnJump::Keep,
            usb_image_check: ImageCheck::Digest,
            fpga_image_check: ImageCheck::Digest,
            extra_usb_digests: Vec::new(),
            extra_fpga_digests: Vec::new(),
            eeprom_version: *b"1\0\0\0\0\0",
            fpga_configuration: 3,
            cpld_version: 0x0101,
            mpp_latency: Duration::ZERO,
            data_in_depth: 64,
            mgmt_in_depth: 8,
            port_power: [true, true],
            licence_keys: Vec::new(),
            faults: Vec::new(),
            scheduled_faults: Vec::new(),
            eeprom_file: None,
            standby_presence: StandbyPresence::None,
        }
    }
}
