//! Tunables of the data interface (interface 0, stage 11x2): what
//! [`DataInterface`](crate::data::DataInterface) is built from.

/// Which lines a PCM_READ carries (MODEL: TIME-14, decision XP-13.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum PcmReadMask {
    /// The lines of the host's last PCM_WRITE round, per XPD.
    #[default]
    Mirror,
    /// Every channel of every XPD (exercises the host's 512-byte split and masking).
    AllChannels,
}

/// Tunables of the data interface.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DataConfig {
    /// PCM_READ line selection (default Mirror, TIME-14).
    pub pcm_read_mask: PcmReadMask,
    /// Crystal offset of the internal clock in ppm; positive = slower (default 0, TIME-1).
    pub crystal_ppm: i32,
    /// Clock change per PLL adjustment step in ppm (default 5, TIME-9).
    pub pll_step_ppm: u32,
    /// DTMF detection time (default 40 ms, FXS-14).
    pub dtmf_detect_ms: u32,
    /// Ring detect delay after a ring edge (default 0, FXO-6).
    pub ring_detect_ms: u32,
    /// On-hook VBAT with battery (default 48, FXO-3).
    pub battery_volts: i8,
    /// Off-hook VBAT (default 8, FXO-3).
    pub loop_volts: i8,
    /// Off-hook loop current (default 20, FXO-4).
    pub loop_current: u8,
    /// Period of unsolicited loop-current replies per off-hook port (default none, FXO-5).
    pub fxo_loop_current_report_ms: Option<u32>,
    /// BRI layer-1 activation time (default 10 ms, BRI-4).
    pub l1_activate_ms: u32,
    /// Echo canceller CPLD version (default 0x0101, ECHO-5).
    pub cpld_version: u16,
    /// Equipment timings (EQ rows).
    pub timings: EquipmentTimings,
    /// Most IN transfers waiting for `poll_in`; newer ones are dropped and counted.
    pub max_queued_in: usize,
    /// Most entries in the event log; the oldest are dropped.
    pub event_log_limit: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            pcm_read_mask: PcmReadMask::Mirror,
            crystal_ppm: 0,
            pll_step_ppm: 5,
            dtmf_detect_ms: 40,
            ring_detect_ms: 0,
            battery_volts: 48,
            loop_volts: 8,
            loop_current: 20,
            fxo_loop_current_report_ms: None,
            l1_activate_ms: 10,
            cpld_version: 0x0101,
            timings: EquipmentTimings::default(),
            max_queued_in: 4096,
            event_log_limit: 4096,
        }
    }
}

/// Equipment timings (MODEL: EQ-1, EQ-4, EQ-5, EQ-6); part of [`DataConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EquipmentTimings {
    /// Flash: on-hook time (default 600 ms).
    pub flash_ms: u32,
    /// DTMF tone length (default 100 ms).
    pub dtmf_on_ms: u32,
    /// DTMF gap (default 100 ms).
    pub dtmf_off_ms: u32,
    /// Pulse break (default 60 ms, 10 pps).
    pub pulse_break_ms: u32,
    /// Pulse make (default 40 ms).
    pub pulse_make_ms: u32,
    /// Pause between pulse digits (default 700 ms).
    pub interdigit_ms: u32,
    /// Ring cadence on time (default 2000 ms).
    pub ring_on_ms: u32,
    /// Ring cadence off time (default 4000 ms).
    pub ring_off_ms: u32,
    /// Far party answers this long after the last dialled digit (default 2000 ms).
    pub answer_delay_ms: u32,
    /// Disconnect supervision: battery off this long (default 800 ms).
    pub disconnect_ms: u32,
    /// Samples each recorder keeps (default 80 000 = 10 s).
    pub record_limit: usize,
}

impl Default for EquipmentTimings {
    fn default() -> Self {
        Self {
            flash_ms: 600,
            dtmf_on_ms: 100,
            dtmf_off_ms: 100,
            pulse_break_ms: 60,
            pulse_make_ms: 40,
            interdigit_ms: 700,
            ring_on_ms: 2000,
            ring_off_ms: 4000,
            answer_delay_ms: 2000,
            disconnect_ms: 800,
            record_limit: 80_000,
        }
    }
}
