//! PRI (E1/T1) line facts and register packing, docs/reference/xpp-protocol.md §9.3.
//!
//! The pieces of the PRI line model that are pure functions of the reference: the protocol
//! constants ([`Protocol`]), the PCM bit of each logical channel, the FRS0 layer-1 status bits
//! ([`LineStatus`]), the line-configuration defaults, the clock-source and span-start writes,
//! T1 clear-channel marking and the CAS register packing for E1 CAS, T1 ESF and T1 D4 in both
//! directions. Like the analog lines, this module reports raw line facts (LOS, AIS, RAI); the
//! DAHDI alarm bits and their propagation belong to the span core.

/// FRS0, the framer status register polled every 500 ms.
pub const REG_FRS0: u8 = 0x4C;
/// CMDR: the value 0x50 resets receiver and transmitter.
pub const REG_CMDR: u8 = 0x02;
/// XPM2: 0x00 takes the transmitter out of tristate (span start).
pub const REG_XPM2: u8 = 0x28;
/// LIM0: bit 0 master mode (timing priority 0), bit 1 local loop.
pub const REG_LIM0: u8 = 0x36;
/// First of the three T1 clear-channel registers (0x2F, 0x30, 0x31).
pub const REG_T1_CLEAR: u8 = 0x2F;
/// First of the clock-source registers PC2..PC4 (0x81..0x83), written with portnum 0.
pub const REG_PC2: u8 = 0x81;

/// E1 or T1 (J1 is rejected by the reference driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// 31 channels, A-law, D-channel = channel 16 (logical 15).
    E1,
    /// 24 channels, mu-law, D-channel = channel 24 (logical 23).
    T1,
}

impl Protocol {
    /// Number of logical channels.
    pub const fn channels(self) -> usize {
        match self {
            Self::E1 => 31,
            Self::T1 => 24,
        }
    }

    /// The 0-based logical channel of the D-channel.
    pub const fn dchan(self) -> usize {
        match self {
            Self::E1 => 15,
            Self::T1 => 23,
        }
    }

    /// Whether the PCM is A-law (E1) rather than mu-law (T1).
    pub const fn is_alaw(self) -> bool {
        matches!(self, Self::E1)
    }

    /// The PCM_WRITE/PCM_READ bit of a logical channel (`None` past the last channel):
    /// E1 `i -> i + 1`; T1 `i -> i + i/3 + 1` (bits 0, 4, ..., 28 unused).
    pub const fn pcm_bit(self, logical: usize) -> Option<u8> {
        if logical >= self.channels() {
            return None;
        }
        Some(match self {
            Self::E1 => logical as u8 + 1,
            Self::T1 => (logical + logical / 3 + 1) as u8,
        })
    }

    /// The logical channel carried in a PCM bit, if any.
    pub const fn logical_of_bit(self, bit: u8) -> Option<usize> {
        let b = bit as usize;
        match self {
            Self::E1 if b >= 1 && b <= 31 => Some(b - 1),
            Self::T1 if b >= 1 && b <= 31 && !b.is_multiple_of(4) => Some(b - 1 - b / 4),
            _ => None,
        }
    }

    /// The line-configuration defaults of the reference, as (register, value) writes in the
    /// order FMR1, FMR2, FMR0, FMR4, FMR3 (E1 only), XSP/FMR5.
    pub fn default_line_config(self) -> &'static [(u8, u8)] {
        match self {
            Self::E1 => &[(0x1D, 0x4C), (0x1E, 0x83), (0x1C, 0xF0), (0x20, 0x9F), (0x31, 0x01), (0x21, 0x1C)],
            Self::T1 => &[(0x1D, 0x1C), (0x1E, 0x62), (0x1C, 0xF0), (0x20, 0x0E), (0x21, 0x40)],
        }
    }
}

/// Layer-1 status decoded from FRS0 (0x4C).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineStatus {
    /// Bit 7: loss of signal (DAHDI red).
    pub los: bool,
    /// Bit 6: alarm indication signal, all ones received (DAHDI blue).
    pub ais: bool,
    /// Bit 4: remote alarm indication received (DAHDI yellow).
    pub rai: bool,
}

impl LineStatus {
    /// Decodes an FRS0 value.
    pub const fn from_frs0(frs0: u8) -> Self {
        Self { los: frs0 & 0x80 != 0, ais: frs0 & 0x40 != 0, rai: frs0 & 0x10 != 0 }
    }

    /// The FRS0 value with these bits (what an emulated far end reports).
    pub const fn to_frs0(self) -> u8 {
        (self.los as u8) << 7 | (self.ais as u8) << 6 | (self.rai as u8) << 4
    }

    /// No alarm: layer 1 is up.
    pub const fn is_up(self) -> bool {
        !self.los && !self.ais && !self.rai
    }
}

/// The LIM0 value for a port: master mode when its timing priority is 0.
pub const fn lim0(timing_priority: u8, local_loop: bool) -> u8 {
    (timing_priority == 0) as u8 | (local_loop as u8) << 1
}

/// The clock-source writes (portnum 0): PC2..PC4 from bases 0x00/0x90/0x90, ORed with 0x0A
/// if bit `i` of the recovering port's number is set, else 0x0B.
pub fn clock_source_writes(port: u8) -> [(u8, u8); 3] {
    let base = [0x00u8, 0x90, 0x90];
    core::array::from_fn(|i| {
        let v = if port & (1 << i) != 0 { 0x0A } else { 0x0B };
        (REG_PC2 + i as u8, base[i] | v)
    })
}

/// T1 clear-channel marking: the three (register, value) writes, one bit per logical
/// channel, MSB first in each group of 8, 1 = clear (no robbed bits).
pub fn t1_clear_channel_writes(clear: u32) -> [(u8, u8); 3] {
    core::array::from_fn(|g| {
        let mut v = 0u8;
        for j in 0..8 {
            if clear & (1 << (g * 8 + j)) != 0 {
                v |= 0x80 >> j;
            }
        }
        (REG_T1_CLEAR + g as u8, v)
    })
}

/// The framing keyword of a span line (`d4`, `esf`, `ccs`, `cas`; DAHDI's lineconfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// T1 superframe (robbed-bit signalling in frames 6 and 12).
    D4,
    /// T1 extended superframe.
    Esf,
    /// E1 common-channel signalling (a D-channel in timeslot 16).
    Ccs,
    /// E1 channel-associated signalling (timeslot 16 carries CAS).
    Cas,
}

/// The line code keyword of a span line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineCode {
    /// Alternate mark inversion (E1 and T1).
    Ami,
    /// T1 bipolar 8-zero substitution.
    B8zs,
    /// E1 high-density bipolar 3.
    Hdb3,
}

/// A span line's line configuration (SPANCONFIG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineSetup {
    /// Framing (and for E1 the signalling mode).
    pub framing: Framing,
    /// Line code.
    pub code: LineCode,
    /// E1 CRC-4 multiframe.
    pub crc4: bool,
    /// Line build-out (`span=` third field, 0-7: 0 dB / 0-133 ft up to -22.5 dB). Kept and
    /// reported, not programmed: the reference driver only logs it (its card_pri.c writes no
    /// register for it), so the framer keeps the card init's pulse mask whatever it says.
    pub lbo: u8,
}

impl LineSetup {
    /// The protocol's default: E1 CCS, HDB3, CRC-4; T1 ESF, B8ZS (docs/reference/xpp-protocol.md §9.3).
    pub const fn default_for(protocol: Protocol) -> Self {
        match protocol {
            Protocol::E1 => Self { framing: Framing::Ccs, code: LineCode::Hdb3, crc4: true, lbo: 0 },
            Protocol::T1 => Self { framing: Framing::Esf, code: LineCode::B8zs, crc4: false, lbo: 0 },
        }
    }
}

impl LineSetup {
    /// DAHDI's name of the line build-out (dahdi_scan's `lbo=`); "unknown" above 7.
    pub const fn lbo_name(&self) -> &'static str {
        match self.lbo {
            0 => "0 db (CSU)/0-133 feet (DSX-1)",
            1 => "133-266 feet (DSX-1)",
            2 => "266-399 feet (DSX-1)",
            3 => "399-533 feet (DSX-1)",
            4 => "533-655 feet (DSX-1)",
            5 => "-7.5db (CSU)",
            6 => "-15db (CSU)",
            7 => "-22.5db (CSU)",
            _ => "unknown",
        }
    }
}

/// DAHDI's text form `coding/framing[/CRC4]`, e.g. `HDB3/CCS/CRC4`, `B8ZS/ESF`.
impl core::fmt::Display for LineSetup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let code = match self.code {
            LineCode::Ami => "AMI",
            LineCode::B8zs => "B8ZS",
            LineCode::Hdb3 => "HDB3",
        };
        let framing = match self.framing {
            Framing::D4 => "D4",
            Framing::Esf => "ESF",
            Framing::Ccs => "CCS",
            Framing::Cas => "CAS",
        };
        write!(f, "{code}/{framing}{}", if self.crc4 { "/CRC4" } else { "" })
    }
}

/// A line configuration the protocol does not take (the whole span line is refused and nothing
/// is written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`{keyword}` is not a line setting of {protocol:?} spans")]
pub struct LineSetupError {
    /// The refused keyword, as `system.conf` spells it.
    pub keyword: &'static str,
    /// The span's protocol.
    pub protocol: Protocol,
}

/// The SPANCONFIG register writes for `setup` on a port of `protocol`, in the order the
/// reference gives (docs/reference/xpp-protocol.md §9.3, "Line configuration per keyword"): LIM0,
/// FMR1, FMR2, FMR0, FMR4, FMR3 (CRC-4 only), CMDR := 0x50, RS1 := 0x0B (E1 CAS only), XSP/FMR5.
pub fn line_config_writes(
    protocol: Protocol,
    setup: LineSetup,
    timing_priority: u8,
    local_loop: bool,
) -> Result<Vec<(u8, u8)>, LineSetupError> {
    let refuse = |keyword| Err(LineSetupError { keyword, protocol });
    let e1 = protocol == Protocol::E1;
    match (protocol, setup.framing, setup.code) {
        (Protocol::E1, Framing::D4, _) => return refuse("d4"),
        (Protocol::E1, Framing::Esf, _) => return refuse("esf"),
        (Protocol::T1, Framing::Ccs, _) => return refuse("ccs"),
        (Protocol::T1, Framing::Cas, _) => return refuse("cas"),
        (Protocol::E1, _, LineCode::B8zs) => return refuse("b8zs"),
        (Protocol::T1, _, LineCode::Hdb3) => return refuse("hdb3"),
        _ => {}
    }
    if setup.crc4 && !e1 {
        return refuse("crc4");
    }
    if setup.lbo > 7 {
        return refuse("lbo");
    }
    let mut fmr1 = 0x04 | if e1 { 0x40 } else { 0x10 | 0x08 };
    let mut fmr2 = if e1 { 0x03 } else { 0x22 };
    let mut fmr4 = if e1 { 0x9F } else { 0x0C };
    let mut xsp = if e1 { 0x1C } else { 0x00 };
    if local_loop {
        fmr2 |= 0x04;
    }
    let fmr0 = match setup.code {
        LineCode::Ami => 0xB0,
        LineCode::B8zs | LineCode::Hdb3 => 0xF0,
    };
    if setup.framing == Framing::Esf {
        fmr4 |= 0x02;
        fmr2 |= 0x62;
    }
    let cas = !e1 || setup.framing == Framing::Cas;
    if setup.crc4 {
        fmr1 |= 0x08;
        fmr2 |= 0x80;
    }
    let mut w = vec![
        (REG_LIM0, lim0(timing_priority, local_loop)),
        (0x1D, fmr1),
        (0x1E, fmr2),
        (0x1C, fmr0),
        (0x20, fmr4),
    ];
    if setup.crc4 {
        w.push((0x31, 0x01));
    }
    w.push((REG_CMDR, 0x50));
    if cas {
        if e1 {
            w.push((0x70, 0x0B));
        }
        xsp |= 0x40;
    }
    w.push((0x21, xsp));
    Ok(w)
}

/// CAS signalling register layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasLayout {
    /// E1 CAS: 0x71+k holds channel k (high nibble) and k+16 (low nibble), k = 0..14.
    E1,
    /// T1 ESF: 0x70..0x7B, two channels per register, 4 bits (ABCD), first in the high nibble.
    T1Esf,
    /// T1 D4: 0x70..0x75, four channels per register, 2 bits (AB) each, first in the top
    /// bits; every write duplicated to 0x76+n.
    T1D4,
}

impl CasLayout {
    /// Channels of the span.
    pub const fn protocol(self) -> Protocol {
        match self {
            Self::E1 => Protocol::E1,
            _ => Protocol::T1,
        }
    }

    /// Registers written for the CAS bits (before D4 duplication).
    pub const fn registers(self) -> core::ops::Range<u8> {
        match self {
            Self::E1 => 0x71..0x80,
            Self::T1Esf => 0x70..0x7C,
            Self::T1D4 => 0x70..0x76,
        }
    }

    /// Channel slots packed into a register, in bit order from the top, with the bits per
    /// channel. `None` for registers outside the layout.
    fn slots(self, reg: u8) -> Option<([Option<usize>; 4], u32)> {
        if !self.registers().contains(&reg) {
            // D4 replies may come from the duplicate registers too.
            if self == Self::T1D4 && (0x76..0x7C).contains(&reg) {
                return self.slots(reg - 6);
            }
            return None;
        }
        Some(match self {
            Self::E1 => {
                let k = usize::from(reg - 0x71);
                ([Some(k), Some(k + 16), None, None], 4)
            }
            Self::T1Esf => {
                let r = usize::from(reg - 0x70);
                ([Some(2 * r), Some(2 * r + 1), None, None], 4)
            }
            Self::T1D4 => {
                let r = usize::from(reg - 0x70) * 4;
                ([Some(r), Some(r + 1), Some(r + 2), Some(r + 3)], 2)
            }
        })
    }

    /// The register value carrying `bits` (ABCD of each logical channel, A in bit 3) for
    /// register `reg`; D4 sends only A and B (bits 3 and 2). The E1 D-channel/CAS timeslot
    /// (logical 15) is in no register, so it is never sent; a T1 CAS span signals on all 24. `None` if `reg` is not a CAS register of this layout.
    pub fn encode(self, reg: u8, bits: &[u8; 31]) -> Option<u8> {
        let (slots, width) = self.slots(reg)?;
        let mut v = 0u32;
        let mut shift = 8;
        for s in slots.iter().take((8 / width) as usize) {
            shift -= width;
            if let Some(ch) = *s
                && ch < self.protocol().channels()
            {
                let abcd = u32::from(bits[ch] & 0x0F);
                let field = if width == 4 { abcd } else { abcd >> 2 };
                v |= field << shift;
            }
        }
        Some(v as u8)
    }

    /// All CAS writes for `bits`: (register, value), D4 including its duplicates.
    pub fn encode_all(self, bits: &[u8; 31]) -> impl Iterator<Item = (u8, u8)> + '_ {
        let dup = if self == Self::T1D4 { 2 } else { 1 };
        (0..dup)
            .flat_map(move |d| self.registers().map(move |r| (r + d * 6, self.encode(r, bits).unwrap_or(0))))
    }

    /// Decodes a received CAS register: calls `on_channel(logical, abcd)` for each channel it
    /// carries (D4: the 2-bit AB in bits 3..2; decision, the reference
    /// gives only A and B: C and D repeat A and B). Returns false if `reg` is not a CAS register.
    pub fn decode(self, reg: u8, value: u8, mut on_channel: impl FnMut(usize, u8)) -> bool {
        let Some((slots, width)) = self.slots(reg) else { return false };
        let mut shift = 8;
        for s in slots.iter().take((8 / width) as usize) {
            shift -= width;
            if let Some(ch) = *s
                && ch < self.protocol().channels()
            {
                let field = (u32::from(value) >> shift) & ((1 << width) - 1);
                let abcd = if width == 4 { field as u8 } else { ((field << 2) | field) as u8 };
                on_channel(ch, abcd);
            }
        }
        true
    }
}

/// How often FRS0 is polled (xpp-protocol §9.3).
pub const FRS0_POLL: xpp_proto::Duration = xpp_proto::Duration::from_millis(500);

/// Configuration of one PRI port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriConfig {
    /// E1 or T1.
    pub protocol: Protocol,
    /// CAS register layout when the span carries CAS; `None` for CCS (a D-channel).
    pub cas: Option<CasLayout>,
    /// DAHDI timing priority of the span; 0: the port does not take its clock from the line
    /// and runs in master mode (LIM0 bit 0).
    pub timing_priority: u8,
    /// Local loop (LIM0 bit 1).
    pub local_loop: bool,
    /// ABCD bits sent on every CAS channel while the line is alarmed.
    pub idle_bits: u8,
}

/// A raw PRI line fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriEvent {
    /// The FRS0 layer-1 status changed (the first poll always reports).
    Status {
        /// The new status.
        status: LineStatus,
        /// When the reply arrived.
        at: xpp_proto::Instant,
    },
    /// Received CAS bits of a logical channel changed.
    Cas {
        /// 0-based logical channel.
        channel: usize,
        /// ABCD, A in bit 3.
        abcd: u8,
        /// When the reply arrived.
        at: xpp_proto::Instant,
    },
}

/// One PRI port (one XPD), sans-IO: register replies in, register commands and
/// [`PriEvent`]s out, every call with the caller's instant.
#[derive(Debug, Clone)]
pub struct PriLine {
    addr: xpp_proto::wire::Address,
    port: u8,
    config: PriConfig,
    /// The line configuration last programmed.
    setup: LineSetup,
    /// T1: robbed-bit signalling in use (no D-channel configured on the span).
    t1_cas: bool,
    commands: std::collections::VecDeque<xpp_proto::wire::RegCmd>,
    events: std::collections::VecDeque<PriEvent>,
    next_poll: Option<xpp_proto::Instant>,
    status: Option<LineStatus>,
    tx_cas: [u8; 31],
    rx_cas: [u8; 31],
    /// The LEDs as last set (bottom red, bottom green, top red, top green).
    leds: [bool; 4],
    /// LED changes to send.
    led_out: std::collections::VecDeque<(xpp_proto::wire::PriLed, bool)>,
}

impl PriLine {
    /// A port at `addr` (portnum `port`), not started.
    pub fn new(addr: xpp_proto::wire::Address, port: u8, config: PriConfig) -> Self {
        Self {
            addr,
            port,
            setup: LineSetup::default_for(config.protocol),
            t1_cas: config.protocol == Protocol::T1 && config.cas.is_some(),
            config,
            commands: std::collections::VecDeque::with_capacity(64),
            events: std::collections::VecDeque::with_capacity(8),
            next_poll: None,
            status: None,
            tx_cas: [0; 31],
            rx_cas: [0xFF; 31],
            leds: [false; 4],
            led_out: std::collections::VecDeque::with_capacity(4),
        }
    }

    fn write(&mut self, reg: u8, val: u8) {
        use xpp_proto::wire::{RegAccess, RegCmd};
        self.commands.push_back(RegCmd::Reg(RegAccess::write(self.port, reg, val)));
    }

    fn read(&mut self, reg: u8) {
        use xpp_proto::wire::{RegAccess, RegCmd};
        let cmd = RegCmd::Reg(RegAccess::read(self.port, reg));
        if !self.commands.contains(&cmd) {
            self.commands.push_back(cmd);
        }
    }

    /// SPANCONFIG: programs `setup` with `timing_priority` (0: master mode, the port does not
    /// take its clock from the line) ([`line_config_writes`]). A setup the protocol refuses
    /// writes nothing. E1 CAS framing makes the span a CAS span (its CAS registers are used),
    /// CCS a D-channel span; T1 follows [`set_t1_cas`](Self::set_t1_cas).
    pub fn configure(&mut self, setup: LineSetup, timing_priority: u8) -> Result<(), LineSetupError> {
        let writes =
            line_config_writes(self.config.protocol, setup, timing_priority, self.config.local_loop)?;
        for (reg, val) in writes {
            self.write(reg, val);
        }
        self.setup = setup;
        self.config.timing_priority = timing_priority;
        self.update_cas_layout();
        Ok(())
    }

    /// T1: whether the span uses robbed-bit signalling (`true`: no D-channel; DAHDI decides
    /// from the signalling the channels are configured with). E1 ignores it.
    pub fn set_t1_cas(&mut self, cas: bool) {
        self.t1_cas = cas;
        self.update_cas_layout();
    }

    fn update_cas_layout(&mut self) {
        self.config.cas = match (self.config.protocol, self.setup.framing) {
            (Protocol::E1, Framing::Cas) => Some(CasLayout::E1),
            (Protocol::E1, _) => None,
            (Protocol::T1, Framing::D4) if self.t1_cas => Some(CasLayout::T1D4),
            (Protocol::T1, _) if self.t1_cas => Some(CasLayout::T1Esf),
            (Protocol::T1, _) => None,
        };
    }

    /// The line configuration last programmed (the protocol's default before any).
    pub fn setup(&self) -> LineSetup {
        self.setup
    }

    /// The port's device changed hands (a standby host took it over): nothing queued is sent,
    /// the layer-1 status is read afresh (its first poll reports again); the configuration and
    /// the CAS bits stay.
    pub fn forget_status(&mut self) {
        self.status = None;
        self.events.clear();
        self.commands.clear();
    }

    /// E1 or T1.
    pub fn protocol(&self) -> Protocol {
        self.config.protocol
    }

    /// The span's timing priority (as last configured).
    pub fn timing_priority(&self) -> u8 {
        self.config.timing_priority
    }

    /// The CAS layout in use, `None` for a CCS span.
    pub fn cas_layout(&self) -> Option<CasLayout> {
        self.config.cas
    }

    /// Starts FRS0 polling every 500 ms, the first poll at `now` (the card's periodic work,
    /// from the bus's start whether or not the span is started).
    pub fn poll_from(&mut self, now: xpp_proto::Instant) {
        if self.next_poll.is_none() {
            self.next_poll = Some(now);
        }
    }

    /// Span startup: T1 clear-channel marking (`clear`: bit i = logical channel i carries no
    /// robbed bits), then XPM2 := 0x00 (the transmitter out of tristate); FRS0 polling starts
    /// if it has not.
    pub fn start(&mut self, now: xpp_proto::Instant, clear: u32) {
        if self.config.protocol == Protocol::T1 {
            for (reg, val) in t1_clear_channel_writes(clear) {
                self.write(reg, val);
            }
        }
        self.write(REG_XPM2, 0x00);
        self.poll_from(now);
    }

    /// The layer-1 status of the last FRS0 poll (`None` before the first reply).
    pub fn status(&self) -> Option<LineStatus> {
        self.status
    }

    /// Last received CAS bits of a logical channel (`None` before any report).
    pub fn rx_cas(&self, channel: usize) -> Option<u8> {
        self.rx_cas.get(channel).copied().filter(|&b| b != 0xFF)
    }

    /// Sets the transmitted ABCD bits of a channel. While the line is alarmed they are saved
    /// and sent when it clears (the idle bits go out meanwhile).
    pub fn set_cas(&mut self, _now: xpp_proto::Instant, channel: usize, abcd: u8) {
        let Some(layout) = self.config.cas else { return };
        if channel >= self.config.protocol.channels() {
            return;
        }
        self.tx_cas[channel] = abcd & 0x0F;
        if self.alarmed() {
            return;
        }
        self.send_cas(layout, false, Some(channel));
    }

    fn alarmed(&self) -> bool {
        self.status.is_some_and(|s| !s.is_up())
    }

    fn send_cas(&mut self, layout: CasLayout, idle: bool, only: Option<usize>) {
        let bits = if idle { [self.config.idle_bits & 0x0F; 31] } else { self.tx_cas };
        let mut writes = [(0u8, 0u8); 16];
        let mut n = 0;
        for (reg, val) in layout.encode_all(&bits) {
            let wanted = only.is_none_or(|ch| {
                let mut hit = false;
                layout.decode(reg, 0, |c, _| hit |= c == ch);
                hit
            });
            if wanted {
                writes[n] = (reg, val);
                n += 1;
            }
        }
        for &(reg, val) in &writes[..n] {
            self.write(reg, val);
        }
    }

    /// The LEDs, once per tick (`tick`: the bus's tick count), as the reference driver drives
    /// them (card_pri.c `handle_leds`): the port's LED is the top red one in master mode
    /// (timing priority 0), else the bottom green one, and the other of the two is off; it
    /// blinks once a second (on at 0, off at 500 ms) while the D-channel is alive
    /// (`dchan_alive`), double-blinks (on 0-50 and 100-150 ms of each second) while only layer 1
    /// is up, and stays on otherwise. Only changes are sent (SET_LED).
    pub fn tick_leds(&mut self, tick: u64, dchan_alive: bool) {
        use xpp_proto::wire::PriLed;
        let (own, other) = if self.config.timing_priority == 0 {
            (PriLed::TopRed, PriLed::BottomGreen)
        } else {
            (PriLed::BottomGreen, PriLed::TopRed)
        };
        let up = self.status.is_some_and(|s| s.is_up());
        let want = crate::common::port_led(tick, up, dchan_alive);
        self.set_led(other, false);
        if let Some(on) = want {
            self.set_led(own, on);
        }
    }

    fn set_led(&mut self, led: xpp_proto::wire::PriLed, on: bool) {
        use xpp_proto::wire::PriLed;
        let i = match led {
            PriLed::BottomRed => 0,
            PriLed::BottomGreen => 1,
            PriLed::TopRed => 2,
            _ => 3,
        };
        if self.leds[i] != on {
            self.leds[i] = on;
            self.led_out.push_back((led, on));
        }
    }

    /// The LEDs as last set (bottom red, bottom green, top red, top green).
    pub fn leds(&self) -> [bool; 4] {
        self.leds
    }

    /// The next command for this port's XPD: LED changes first (SET_LED, not paced by the
    /// device), then register commands.
    #[must_use]
    pub fn poll_transmit(&mut self, _now: xpp_proto::Instant) -> Option<xpp_proto::wire::Repr<'static>> {
        use xpp_proto::wire::{Message, Repr, SetLed};
        if let Some((led, on)) = self.led_out.pop_front() {
            return Some(Repr::command(self.addr, Message::SetLed(SetLed::pri(led, on))));
        }
        let cmd = self.commands.pop_front()?;
        Some(Repr::command(self.addr, Message::RegisterRequest(cmd)))
    }

    /// The next line fact.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<PriEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<xpp_proto::Instant> {
        self.next_poll
    }

    /// Runs the FRS0 poll if due.
    pub fn handle_timeout(&mut self, now: xpp_proto::Instant) {
        if let Some(due) = self.next_poll
            && due <= now
        {
            self.read(REG_FRS0);
            self.next_poll = Some(crate::common::next_period(due, now, FRS0_POLL));
        }
    }

    /// Processes one packet from the device: FRS0 replies and CAS register reports.
    pub fn handle_packet(&mut self, now: xpp_proto::Instant, repr: &xpp_proto::wire::Repr<'_>) {
        let Some(r) = crate::common::reg_reply_for(repr, self.addr, self.port) else { return };
        if r.expander || r.do_subreg {
            return;
        }
        if r.reg == REG_FRS0 {
            let status = LineStatus::from_frs0(r.data_low);
            if self.status == Some(status) {
                return;
            }
            let was_alarmed = self.alarmed();
            let first = self.status.is_none();
            self.status = Some(status);
            self.events.push_back(PriEvent::Status { status, at: now });
            if let Some(layout) = self.config.cas {
                if !status.is_up() && (first || !was_alarmed) {
                    self.send_cas(layout, true, None);
                } else if status.is_up() && was_alarmed {
                    self.send_cas(layout, false, None);
                    for reg in layout.registers() {
                        self.read(reg);
                    }
                }
            }
            return;
        }
        if let Some(layout) = self.config.cas {
            let mut changed = [None::<(usize, u8)>; 4];
            let mut n = 0;
            layout.decode(r.reg, r.data_low, |ch, abcd| {
                changed[n] = Some((ch, abcd));
                n += 1;
            });
            for (ch, abcd) in changed.into_iter().flatten() {
                if self.rx_cas[ch] != abcd {
                    self.rx_cas[ch] = abcd;
                    self.events.push_back(PriEvent::Cas { channel: ch, abcd, at: now });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::test_util::{addr, drain, ms, rd, reply, wd};

    fn cas_line() -> PriLine {
        let cfg = PriConfig {
            protocol: Protocol::E1,
            cas: Some(CasLayout::E1),
            timing_priority: 1,
            local_loop: false,
            idle_bits: 0x9,
        };
        PriLine::new(addr(), 2, cfg)
    }

    /// Every line keyword, programmed as docs/reference/xpp-protocol.md §9.3 ("Line configuration per
    /// keyword") lists it: LIM0, FMR1, FMR2, FMR0, FMR4, [FMR3], CMDR, [RS1], XSP. The bytes are
    /// written out by hand from that text.
    #[test]
    fn configure_programs_every_keyword() {
        use Framing::{Cas, Ccs, D4, Esf};
        use LineCode::{Ami, B8zs, Hdb3};
        let setup = |framing, code, crc4| LineSetup { framing, code, crc4, lbo: 0 };
        type Case = (Protocol, LineSetup, u8, &'static [(u8, u8)]);
        let cases: [Case; 7] = [
            // E1 default: CCS, HDB3, CRC-4, first-choice slave.
            (
                Protocol::E1,
                setup(Ccs, Hdb3, true),
                1,
                &[
                    (0x36, 0x00),
                    (0x1D, 0x4C),
                    (0x1E, 0x83),
                    (0x1C, 0xF0),
                    (0x20, 0x9F),
                    (0x31, 0x01),
                    (0x02, 0x50),
                    (0x21, 0x1C),
                ],
            ),
            // E1 CAS, AMI, no CRC-4, master mode: RS1 := 0x0B, CASEN.
            (
                Protocol::E1,
                setup(Cas, Ami, false),
                0,
                &[
                    (0x36, 0x01),
                    (0x1D, 0x44),
                    (0x1E, 0x03),
                    (0x1C, 0xB0),
                    (0x20, 0x9F),
                    (0x02, 0x50),
                    (0x70, 0x0B),
                    (0x21, 0x5C),
                ],
            ),
            // E1 CCS, HDB3, no CRC-4.
            (
                Protocol::E1,
                setup(Ccs, Hdb3, false),
                2,
                &[
                    (0x36, 0x00),
                    (0x1D, 0x44),
                    (0x1E, 0x03),
                    (0x1C, 0xF0),
                    (0x20, 0x9F),
                    (0x02, 0x50),
                    (0x21, 0x1C),
                ],
            ),
            // E1 CAS, HDB3, CRC-4.
            (
                Protocol::E1,
                setup(Cas, Hdb3, true),
                1,
                &[
                    (0x36, 0x00),
                    (0x1D, 0x4C),
                    (0x1E, 0x83),
                    (0x1C, 0xF0),
                    (0x20, 0x9F),
                    (0x31, 0x01),
                    (0x02, 0x50),
                    (0x70, 0x0B),
                    (0x21, 0x5C),
                ],
            ),
            // T1 default: ESF, B8ZS.
            (
                Protocol::T1,
                setup(Esf, B8zs, false),
                1,
                &[
                    (0x36, 0x00),
                    (0x1D, 0x1C),
                    (0x1E, 0x62),
                    (0x1C, 0xF0),
                    (0x20, 0x0E),
                    (0x02, 0x50),
                    (0x21, 0x40),
                ],
            ),
            // T1 D4, AMI, master mode.
            (
                Protocol::T1,
                setup(D4, Ami, false),
                0,
                &[
                    (0x36, 0x01),
                    (0x1D, 0x1C),
                    (0x1E, 0x22),
                    (0x1C, 0xB0),
                    (0x20, 0x0C),
                    (0x02, 0x50),
                    (0x21, 0x40),
                ],
            ),
            // T1 ESF, AMI.
            (
                Protocol::T1,
                setup(Esf, Ami, false),
                3,
                &[
                    (0x36, 0x00),
                    (0x1D, 0x1C),
                    (0x1E, 0x62),
                    (0x1C, 0xB0),
                    (0x20, 0x0E),
                    (0x02, 0x50),
                    (0x21, 0x40),
                ],
            ),
        ];
        for (protocol, setup, prio, want) in cases {
            let cfg = PriConfig { protocol, cas: None, timing_priority: 1, local_loop: false, idle_bits: 0 };
            let mut line = PriLine::new(addr(), 1, cfg);
            line.configure(setup, prio).unwrap();
            let want: Vec<_> = want.iter().map(|&(r, v)| wd(1, r, v)).collect();
            assert_eq!(drain(|| line.poll_transmit(ms(0))), want, "{protocol:?} {setup:?} timing {prio}");
            assert_eq!(line.timing_priority(), prio);
        }
        // A local loop sets LIM0's LL bit and FMR2's loop bit.
        let cfg = PriConfig {
            protocol: Protocol::E1,
            cas: None,
            timing_priority: 1,
            local_loop: true,
            idle_bits: 0,
        };
        let mut line = PriLine::new(addr(), 0, cfg);
        line.configure(LineSetup::default_for(Protocol::E1), 1).unwrap();
        let out = drain(|| line.poll_transmit(ms(0)));
        assert_eq!((out[0], out[2]), (wd(0, 0x36, 0x02), wd(0, 0x1E, 0x87)));
    }

    #[test]
    fn refused_keywords_write_nothing() {
        use Framing::{Cas, Ccs, D4, Esf};
        use LineCode::{Ami, B8zs, Hdb3};
        let cases = [
            (Protocol::E1, LineSetup { framing: Esf, code: Hdb3, crc4: false, lbo: 0 }, "esf"),
            (Protocol::E1, LineSetup { framing: D4, code: Ami, crc4: false, lbo: 0 }, "d4"),
            (Protocol::E1, LineSetup { framing: Ccs, code: B8zs, crc4: true, lbo: 0 }, "b8zs"),
            (Protocol::T1, LineSetup { framing: Ccs, code: B8zs, crc4: false, lbo: 0 }, "ccs"),
            (Protocol::T1, LineSetup { framing: Cas, code: B8zs, crc4: false, lbo: 0 }, "cas"),
            (Protocol::T1, LineSetup { framing: Esf, code: Hdb3, crc4: false, lbo: 0 }, "hdb3"),
            (Protocol::T1, LineSetup { framing: Esf, code: B8zs, crc4: true, lbo: 0 }, "crc4"),
            (Protocol::T1, LineSetup { framing: Esf, code: B8zs, crc4: false, lbo: 8 }, "lbo"),
        ];
        for (protocol, setup, keyword) in cases {
            let cfg = PriConfig { protocol, cas: None, timing_priority: 1, local_loop: false, idle_bits: 0 };
            let mut line = PriLine::new(addr(), 0, cfg);
            assert_eq!(line.configure(setup, 1), Err(LineSetupError { keyword, protocol }));
            assert!(drain(|| line.poll_transmit(ms(0))).is_empty());
            assert_eq!(line.setup(), LineSetup::default_for(protocol), "unchanged");
        }
    }

    #[test]
    fn line_build_out_is_kept_and_writes_nothing_of_its_own() {
        // The reference driver only logs `lbo`: every value 0-7 programs what 0 does.
        let t1 = LineSetup::default_for(Protocol::T1);
        let base = line_config_writes(Protocol::T1, t1, 1, false).unwrap();
        for lbo in 1..=7 {
            let setup = LineSetup { lbo, ..t1 };
            assert_eq!(line_config_writes(Protocol::T1, setup, 1, false).unwrap(), base);
            let cfg = PriConfig {
                protocol: Protocol::T1,
                cas: None,
                timing_priority: 1,
                local_loop: false,
                idle_bits: 0,
            };
            let mut line = PriLine::new(addr(), 0, cfg);
            line.configure(setup, 1).unwrap();
            assert_eq!(line.setup().lbo, lbo);
        }
        assert_eq!(LineSetup { lbo: 5, ..t1 }.lbo_name(), "-7.5db (CSU)");
        assert_eq!(t1.to_string(), "B8ZS/ESF");
        assert_eq!(LineSetup::default_for(Protocol::E1).to_string(), "HDB3/CCS/CRC4");
    }

    #[test]
    fn cas_mode_follows_the_framing_and_the_t1_channels() {
        let cfg =
            |protocol| PriConfig { protocol, cas: None, timing_priority: 1, local_loop: false, idle_bits: 0 };
        let mut e1 = PriLine::new(addr(), 0, cfg(Protocol::E1));
        assert_eq!(e1.cas_layout(), None);
        e1.configure(LineSetup { framing: Framing::Cas, code: LineCode::Hdb3, crc4: false, lbo: 0 }, 1)
            .unwrap();
        assert_eq!(e1.cas_layout(), Some(CasLayout::E1));
        let mut t1 = PriLine::new(addr(), 0, cfg(Protocol::T1));
        assert_eq!(t1.cas_layout(), None);
        t1.set_t1_cas(true);
        assert_eq!(t1.cas_layout(), Some(CasLayout::T1Esf));
        t1.configure(LineSetup { framing: Framing::D4, code: LineCode::Ami, crc4: false, lbo: 0 }, 1)
            .unwrap();
        assert_eq!(t1.cas_layout(), Some(CasLayout::T1D4));
        t1.set_t1_cas(false);
        assert_eq!(t1.cas_layout(), None);
    }

    #[test]
    fn start_marks_clear_channels_untristates_and_polls() {
        for (protocol, clear, want) in [
            (Protocol::E1, 0, vec![wd(1, 0x28, 0x00)]),
            (
                Protocol::T1,
                0b1_0000_0001,
                vec![wd(1, 0x2F, 0x80), wd(1, 0x30, 0x80), wd(1, 0x31, 0x00), wd(1, 0x28, 0x00)],
            ),
        ] {
            let cfg = PriConfig { protocol, cas: None, timing_priority: 1, local_loop: false, idle_bits: 0 };
            let mut line = PriLine::new(addr(), 1, cfg);
            assert_eq!(line.poll_timeout(), None, "no polling before the card's work starts");
            line.start(ms(0), clear);
            assert_eq!(drain(|| line.poll_transmit(ms(0))), want);
            assert_eq!(line.poll_timeout(), Some(ms(0)));
            line.handle_timeout(ms(0));
            assert_eq!(drain(|| line.poll_transmit(ms(0))), vec![rd(1, 0x4C)]);
            assert_eq!(line.poll_timeout(), Some(ms(500)));
        }
    }

    #[test]
    fn alarms_send_idle_bits_then_resend_and_reread() {
        let mut line = cas_line();
        line.start(ms(0), 0);
        let _ = drain(|| line.poll_transmit(ms(0)));
        line.handle_packet(ms(10), &reply(2, 0x4C, 0x00));
        assert_eq!(line.poll_event(), Some(PriEvent::Status { status: LineStatus::default(), at: ms(10) }));
        line.set_cas(ms(20), 0, 0xA);
        assert_eq!(drain(|| line.poll_transmit(ms(20))), vec![wd(2, 0x71, 0xA0)]);
        // same status again: no event
        line.handle_packet(ms(500), &reply(2, 0x4C, 0x00));
        assert_eq!(line.poll_event(), None);
        // LOS: event, idle bits on every CAS register
        line.handle_packet(ms(1000), &reply(2, 0x4C, 0x80));
        let los = LineStatus { los: true, ..Default::default() };
        assert_eq!(line.poll_event(), Some(PriEvent::Status { status: los, at: ms(1000) }));
        let idle = drain(|| line.poll_transmit(ms(1000)));
        assert_eq!(idle, (0x71..0x80).map(|r| wd(2, r, 0x99)).collect::<Vec<_>>());
        // a change while alarmed is saved, not sent
        line.set_cas(ms(1100), 16, 0x5);
        assert!(drain(|| line.poll_transmit(ms(1100))).is_empty());
        // clear: saved bits resent, CAS registers re-read
        line.handle_packet(ms(1500), &reply(2, 0x4C, 0x00));
        let out = drain(|| line.poll_transmit(ms(1500)));
        assert_eq!(out[0], wd(2, 0x71, 0xA5));
        assert_eq!(out[1..15], (0x72..0x80).map(|r| wd(2, r, 0)).collect::<Vec<_>>()[..]);
        assert_eq!(out[15..], (0x71..0x80).map(|r| rd(2, r)).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn received_cas_reports_changes() {
        let mut line = cas_line();
        line.handle_packet(ms(5), &reply(2, 0x72, 0x3C));
        assert_eq!(line.poll_event(), Some(PriEvent::Cas { channel: 1, abcd: 0x3, at: ms(5) }));
        assert_eq!(line.poll_event(), Some(PriEvent::Cas { channel: 17, abcd: 0xC, at: ms(5) }));
        line.handle_packet(ms(6), &reply(2, 0x72, 0x3D));
        assert_eq!(line.poll_event(), Some(PriEvent::Cas { channel: 17, abcd: 0xD, at: ms(6) }));
        assert_eq!(line.poll_event(), None);
        assert_eq!(line.rx_cas(1), Some(3));
        // another port's reply is ignored
        line.handle_packet(ms(7), &reply(3, 0x72, 0x00));
        assert_eq!(line.poll_event(), None);
    }

    #[test]
    fn leds_follow_the_port_state() {
        use xpp_proto::wire::{Message, PriLed, SetLed};
        let led = |line: &mut PriLine| -> Vec<(PriLed, bool)> {
            std::iter::from_fn(|| line.poll_transmit(ms(0)))
                .filter_map(|r| match r.message {
                    Message::SetLed(l) => Some((l.pri_led(), l == SetLed::pri(l.pri_led(), true))),
                    _ => None,
                })
                .collect()
        };
        let cfg = PriConfig {
            protocol: Protocol::E1,
            cas: None,
            timing_priority: 1,
            local_loop: false,
            idle_bits: 0,
        };
        let mut line = PriLine::new(addr(), 0, cfg);
        // No layer 1: the slave's bottom green LED steady on.
        line.tick_leds(1, false);
        assert_eq!(led(&mut line), [(PriLed::BottomGreen, true)]);
        line.tick_leds(2, false);
        assert!(led(&mut line).is_empty(), "only changes are sent");
        // Layer 1 up: a double blink each second.
        line.handle_packet(ms(3), &reply(0, 0x4C, 0x00));
        let mut seen = Vec::new();
        for t in 1000..2000 {
            line.tick_leds(t, false);
            seen.extend(led(&mut line).into_iter().map(|(l, on)| (t, l, on)));
        }
        assert_eq!(
            seen,
            [
                (1050, PriLed::BottomGreen, false),
                (1100, PriLed::BottomGreen, true),
                (1150, PriLed::BottomGreen, false)
            ]
        );
        // D-channel alive: once a second.
        let mut seen = Vec::new();
        for t in 2000..3001 {
            line.tick_leds(t, true);
            seen.extend(led(&mut line).into_iter().map(|(_, on)| (t, on)));
        }
        assert_eq!(seen, [(2000, true), (2500, false), (3000, true)]);
        // Master mode: the top red LED, the green one off.
        line.configure(LineSetup::default_for(Protocol::E1), 0).unwrap();
        line.tick_leds(3001, true);
        assert_eq!(line.leds(), [false, false, false, false]);
        line.tick_leds(4000, true);
        assert_eq!(line.leds(), [false, false, true, false]);
    }

    #[test]
    fn pcm_bits() {
        assert_eq!(Protocol::E1.pcm_bit(0), Some(1));
        assert_eq!(Protocol::E1.pcm_bit(30), Some(31));
        assert_eq!(Protocol::T1.pcm_bit(0), Some(1));
        assert_eq!(Protocol::T1.pcm_bit(3), Some(5));
        assert_eq!(Protocol::T1.pcm_bit(23), Some(31));
        assert_eq!(Protocol::T1.pcm_bit(24), None);
        assert_eq!(Protocol::T1.logical_of_bit(4), None);
        assert_eq!(Protocol::E1.logical_of_bit(0), None);
        for p in [Protocol::E1, Protocol::T1] {
            let used: Vec<u8> = (0..p.channels()).map(|i| p.pcm_bit(i).unwrap()).collect();
            assert!(used.windows(2).all(|w| w[0] < w[1]));
            for i in 0..p.channels() {
                assert_eq!(p.logical_of_bit(p.pcm_bit(i).unwrap()), Some(i));
            }
        }
    }

    #[test]
    fn frs0_bits() {
        assert!(LineStatus::from_frs0(0x00).is_up());
        assert_eq!(LineStatus::from_frs0(0x80), LineStatus { los: true, ..Default::default() });
        assert_eq!(LineStatus::from_frs0(0x40), LineStatus { ais: true, ..Default::default() });
        assert_eq!(LineStatus::from_frs0(0x10), LineStatus { rai: true, ..Default::default() });
        assert!(LineStatus::from_frs0(0x2F).is_up(), "other bits are not alarms");
    }

    #[test]
    fn clock_and_master() {
        assert_eq!(clock_source_writes(0), [(0x81, 0x0B), (0x82, 0x9B), (0x83, 0x9B)]);
        assert_eq!(clock_source_writes(3), [(0x81, 0x0A), (0x82, 0x9A), (0x83, 0x9B)]);
        assert_eq!(lim0(0, false), 1);
        assert_eq!(lim0(1, true), 2);
        assert_eq!(t1_clear_channel_writes(0b1_0000_0001), [(0x2F, 0x80), (0x30, 0x80), (0x31, 0)]);
    }

    #[test]
    fn e1_cas_packing() {
        let mut bits = [0u8; 31];
        bits[0] = 0xA;
        bits[16] = 0x5;
        bits[15] = 0xF; // D-channel: never sent
        assert_eq!(CasLayout::E1.encode(0x71, &bits), Some(0xA5));
        assert_eq!(CasLayout::E1.encode(0x80, &bits), None);
        assert_eq!(CasLayout::E1.encode(0x70, &bits), None);
        let writes: Vec<_> = CasLayout::E1.encode_all(&bits).collect();
        assert_eq!(writes.len(), 15);
        assert!(writes.iter().all(|&(r, v)| r != 0x71 + 15 && (r == 0x71 || v == 0)));
    }

    #[test]
    fn d4_is_duplicated() {
        let mut bits = [0u8; 31];
        bits[0] = 0b1100;
        bits[5] = 0b0100;
        let writes: Vec<_> = CasLayout::T1D4.encode_all(&bits).collect();
        assert_eq!(writes.len(), 12);
        assert_eq!(writes[0], (0x70, 0xC0));
        assert_eq!(writes[1], (0x71, 0x10));
        assert_eq!(writes[6], (0x76, 0xC0));
        assert_eq!(writes[7], (0x77, 0x10));
    }

    fn layout() -> impl Strategy<Value = CasLayout> {
        prop_oneof![Just(CasLayout::E1), Just(CasLayout::T1Esf), Just(CasLayout::T1D4)]
    }

    proptest! {
        #[test]
        fn cas_round_trips(layout in layout(), bits in proptest::array::uniform31(0u8..16)) {
            let p = layout.protocol();
            let mut got = [0xFFu8; 31];
            for (reg, val) in layout.encode_all(&bits) {
                prop_assert!(layout.decode(reg, val, |ch, abcd| got[ch] = abcd));
            }
            for ch in 0..31 {
                if ch >= p.channels() || (p == Protocol::E1 && ch == p.dchan()) {
                    prop_assert_eq!(got[ch], 0xFF, "channel {} must not be carried", ch);
                } else if layout == CasLayout::T1D4 {
                    let ab = bits[ch] >> 2;
                    prop_assert_eq!(got[ch], (ab << 2) | ab);
                } else {
                    prop_assert_eq!(got[ch], bits[ch]);
                }
            }
        }

        #[test]
        fn decode_never_panics(layout in layout(), reg in any::<u8>(), val in any::<u8>()) {
            let p = layout.protocol();
            layout.decode(reg, val, |ch, abcd| {
                assert!(ch < p.channels() && abcd < 16);
                assert!(p != Protocol::E1 || ch != p.dchan());
            });
        }

        #[test]
        fn frs0_round_trips(los in any::<bool>(), ais in any::<bool>(), rai in any::<bool>()) {
            let s = LineStatus { los, ais, rai };
            prop_assert_eq!(LineStatus::from_frs0(s.to_frs0()), s);
        }
    }
}
