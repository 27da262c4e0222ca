//! Per-card initialisation as register sequences (docs/reference/xpp-protocol.md §8.4, §9, §14).
//!
//! Each card is initialised in two stages, as the reference's init scripts do: a **detect**
//! stage (chip-detection reads; FXS only, the other cards send no reads) and, once its answers
//! are in, an **init** stage built for the ports found present: the script's register writes
//! and calibration polls, then the driver's card init ("card on": ring oscillator, line feed,
//! on-hook, layer-1 activation, echo map off).
//!
//! The sequences are written from the facts the reference documents (register numbers, counts,
//! key values); where it gives no value the value is chosen and marked `Decision (assumed,
//! confirm on hardware):`. The GPL init scripts themselves are not used.
//!
//! The hook-state read of each FXS line (§9.1, "then one hook-state read per analog line") is
//! left to the line models of `xpp-chan` (`FxsLine::read_hook_state`), which take over the lines
//! when bring-up is done.

use xpp_proto::Duration;
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{
    Address, CardType, Message, Multibyte, RamAccess, RegAccess, RegCmd, SetLed, UnitDescriptor,
};

use super::{BringUpConfig, Opermode};

/// What kind of card a unit descriptor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CardKind {
    /// FXS, hardware type 1 (direct + indirect SLIC registers).
    FxsType1,
    /// FXS, hardware type 6 (registers, RAM, I/O expander).
    FxsType6,
    /// FXO (DAA), hardware type 2.
    Fxo,
    /// BRI S/T ports, hardware type 3.
    Bri,
    /// PRI E1/T1 framer, hardware type 4.
    Pri,
    /// Echo canceller, hardware type 5.
    Echo,
}

impl CardKind {
    /// The kind for a descriptor's hardware type; `None` for "no module" and unknown types.
    pub const fn from_card_type(t: CardType) -> Option<Self> {
        match t {
            CardType::Fxs => Some(Self::FxsType1),
            CardType::Fxs6 => Some(Self::FxsType6),
            CardType::Fxo => Some(Self::Fxo),
            CardType::Bri => Some(Self::Bri),
            CardType::Pri => Some(Self::Pri),
            CardType::Echo => Some(Self::Echo),
            _ => None,
        }
    }

    /// Ports per XPD (subunit) in the reference driver (§6.2 table).
    pub const fn ports_per_subunit(self) -> u8 {
        match self {
            Self::FxsType1 | Self::FxsType6 | Self::Fxo => 8,
            Self::Bri | Self::Pri | Self::Echo => 1,
        }
    }

    /// Whether this is an FXS card (either chip).
    pub const fn is_fxs(self) -> bool {
        matches!(self, Self::FxsType1 | Self::FxsType6)
    }
}

impl core::fmt::Display for CardKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::FxsType1 => "FXS (type 1)",
            Self::FxsType6 => "FXS (type 6)",
            Self::Fxo => "FXO",
            Self::Bri => "BRI",
            Self::Pri => "PRI",
            Self::Echo => "ECHO",
        })
    }
}

/// Why a descriptor is refused (the reference silently creates no XPD for it, §6.2).
pub(crate) fn check_descriptor(kind: CardKind, d: &UnitDescriptor) -> Result<(), &'static str> {
    if !(1..=32).contains(&d.ports_per_chip) {
        return Err("ports_per_chip outside 1..32");
    }
    match kind {
        CardKind::FxsType1 | CardKind::FxsType6 if d.port_dir & 1 == 0 => {
            Err("FXS unit with direction toward PSTN")
        }
        CardKind::Fxo if d.port_dir & 1 != 0 => Err("FXO unit with direction toward the phone"),
        CardKind::Bri if !(1..=2).contains(&d.numchips) || !(1..=4).contains(&d.ports_per_chip) => {
            Err("BRI needs numchips 1..2 and ports_per_chip 1..4")
        }
        CardKind::Pri if d.numchips != 1 || !(1..=4).contains(&d.ports_per_chip) => {
            Err("PRI needs numchips 1 and ports_per_chip 1..4")
        }
        CardKind::Echo if d.ports_per_chip != 1 => Err("ECHO needs ports_per_chip 1"),
        _ => Ok(()),
    }
}

/// What a read's answer is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Chip detection of `port`: 0xFF = absent.
    ChipId(u8),
    /// Only that the chip answers (the verify path): the value is not used.
    Answers,
    /// The verify path's check that the card init has run: the register must read back the
    /// value the init writes (a chip reset since, e.g. by a jump with the line state lost,
    /// reads its power-on value). Ports whose chip is absent are not checked.
    Configured(u8),
    /// Type-6 chip detection of `port`, first check (§8.4): present only if it reads 0xC3.
    Fxs6Id(u8),
    /// A further type-6 detection check of `port` (§8.4): the chip counts only if
    /// `value & mask == want`; otherwise it is dropped from the present ports.
    Fxs6Check { port: u8, mask: u8, want: u8 },
    /// Type-6 user mode of `port` (§8.4): register 0x7E bit 0 is read first and the toggle
    /// sequence [`FXS6_USER_MODE_SEQ`] sent only if it differs from `on`.
    Fxs6UserMode { port: u8, on: bool },
}

/// §8.4: the bytes written to type-6 register 0x7E, in this order, toggle user mode.
pub(crate) const FXS6_USER_MODE_SEQ: [u8; 4] = [0x02, 0x08, 0x0E, 0x00];
/// §8.4: the type-6 calibration start bit CAL_EN in register 0x1D; the chip clears it when done.
const FXS6_CAL_EN: u8 = 0x80;
/// Polls of type-6 register 0x1D before a calibration counts as failed.
///
/// Decision (assumed, confirm on hardware): 230 polls [`POLL_INTERVAL`] apart, about 3 s. The
/// reference script gives up after 600 polling passes without a stated interval; the bound
/// keeps a stuck chip from holding the unit for the whole card-init timeout.
pub(crate) const FXS6_CAL_TRIES: u8 = 230;

/// One step of a card's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// A register command that needs no answer (paced).
    Write(Address, RegCmd),
    /// A register read whose answer is used (paced; waits for the answer).
    Read(Address, RegAccess, Purpose),
    /// Read until `value & mask == want`, at most `tries` reads `interval` apart (paced).
    Poll { addr: Address, cmd: RegAccess, mask: u8, want: u8, tries: u8, what: &'static str },
    /// A non-register command (not charged to the pacing budget).
    Packet(Address, Command),
    /// Wait.
    Delay(Duration),
}

/// Non-register commands a card sequence sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// SET_LED (PRI/BRI).
    SetLed(SetLed),
    /// ECHO SET with every timeslot off.
    EchoOff,
}

/// The all-off echo map.
pub(crate) static ECHO_OFF: [u8; xpp_proto::wire::ECHO_MAP_LEN] = [0; xpp_proto::wire::ECHO_MAP_LEN];

impl Command {
    pub(crate) const fn message(self) -> Message<'static> {
        match self {
            Self::SetLed(l) => Message::SetLed(l),
            Self::EchoOff => Message::EchoSet(xpp_proto::wire::EchoSet { map: &ECHO_OFF }),
        }
    }
}

/// Interval between polls of a calibration register, and the number of polls (§7.6).
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(13);
/// At most this many polls (§7.6, §14).
pub(crate) const POLL_TRIES: u8 = 10;

const fn addr(unit: u8, subunit: u8) -> Address {
    Address::from_byte(((unit & 7) << 4) | (subunit & 7))
}

/// A small builder for step lists.
struct Seq {
    steps: Vec<Step>,
    a: Address,
}

impl Seq {
    fn new(unit: u8) -> Self {
        Self { steps: Vec::new(), a: addr(unit, 0) }
    }
    fn wd(&mut self, port: u8, reg: u8, data: u8) {
        self.steps.push(Step::Write(self.a, RegCmd::Reg(RegAccess::write(port, reg, data))));
    }
    /// LED self-test on a direct LED register: on, 50 ms, off, port by port.
    fn led_test(&mut self, ports: &[u8], reg: u8, on: u8, off: u8) {
        for &p in ports {
            self.wd(p, reg, on);
            self.steps.push(Step::Delay(Duration::from_millis(50)));
            self.wd(p, reg, off);
        }
    }
    fn wd_all(&mut self, reg: u8, data: u8) {
        self.steps.push(Step::Write(self.a, RegCmd::Reg(RegAccess::write(0, reg, data).broadcast())));
    }
    fn ws_all(&mut self, reg: u8, sub: u8, lo: u8, hi: u8) {
        let cmd = RegAccess::write_sub(0, reg, sub, lo, hi).broadcast();
        self.steps.push(Step::Write(self.a, RegCmd::Reg(cmd)));
    }
    fn wr_all(&mut self, ram: u16, value: u32) {
        let mut cmd = RamAccess::write(0, ram, value);
        cmd.broadcast = true;
        self.steps.push(Step::Write(self.a, RegCmd::Ram(cmd)));
    }
    fn wx(&mut self, reg: u8, data: u8, data_high: u8, do_datah: bool) {
        let mut cmd = RegAccess::write(0, reg, data).via_expander();
        cmd.data_high = data_high;
        cmd.do_datah = do_datah;
        self.steps.push(Step::Write(self.a, RegCmd::Reg(cmd)));
    }
    /// §14: one read of register 0x00 per port; 0xFF = SLIC absent.
    fn chip_ids(&mut self, ports: u8) {
        for p in 0..ports.min(8) {
            self.steps.push(Step::Read(self.a, RegAccess::read(p, 0x00), Purpose::ChipId(p)));
        }
    }
    /// Type-6 user mode of `port` to `on`: read 0x7E, toggle only if it differs (§8.4).
    fn user_mode(&mut self, port: u8, on: bool) {
        self.steps.push(Step::Read(self.a, RegAccess::read(port, 0x7E), Purpose::Fxs6UserMode { port, on }));
    }
    fn poll(&mut self, port: u8, reg: u8, what: &'static str) {
        self.steps.push(Step::Poll {
            addr: self.a,
            cmd: RegAccess::read(port, reg),
            mask: 0xFF,
            want: 0,
            tries: POLL_TRIES,
            what,
        });
    }
}

fn ports_of(present: u32, count: u8) -> impl Iterator<Item = u8> {
    (0..count.min(8)).filter(move |p| present & (1 << p) != 0)
}

/// The detection stage of a unit: chip-ID reads (FXS), nothing for the other cards.
pub(crate) fn detect_steps(unit: u8, kind: CardKind, ports: u8) -> Vec<Step> {
    let mut s = Seq::new(unit);
    match kind {
        CardKind::FxsType1 => {}
        // Decision (assumed, confirm on hardware): the type-6 soft reset (§8.4 "soft reset, detect
        // SLICs") is register 0x01 := 0x80 broadcast (the Si3226x RESET register); the reference
        // names no register.
        CardKind::FxsType6 => {
            s.wd_all(0x01, 0x80);
            // §8.4 chip detect: 0x00 reads 0xC3; 0x40 written to 0x0E reads back; 0x03 (master
            // status) has its low five bits set. A chip failing any check is not present.
            for p in 0..ports.min(8) {
                s.steps.push(Step::Read(s.a, RegAccess::read(p, 0x00), Purpose::Fxs6Id(p)));
                s.wd(p, 0x0E, 0x40);
                let loopback = Purpose::Fxs6Check { port: p, mask: 0xFF, want: 0x40 };
                s.steps.push(Step::Read(s.a, RegAccess::read(p, 0x0E), loopback));
                let status = Purpose::Fxs6Check { port: p, mask: 0x1F, want: 0x1F };
                s.steps.push(Step::Read(s.a, RegAccess::read(p, 0x03), status));
            }
            return s.steps;
        }
        _ => return s.steps,
    }
    s.chip_ids(ports);
    s.steps
}

/// The check of a unit found running (the verify path): reads only, of registers that tell
/// whether the unit's chips answer, so that nothing on a chip or a line changes and a call in
/// progress goes on. Every read must be answered; what FXS answers also fills the report.
///
/// - FXS: the chip-detection read of the init, register 0x00 per port (§8.4, §14; 0xFF =
///   absent, §6.3), without the type-6 soft reset that precedes it there.
/// - FXO, PRI, BRI: the card init reads nothing. Decision: each port's status register that
///   the reference host itself reads on every running device: FXO line voltage 0x1D every
///   500 ms (§9.2, §14), PRI FRS0 0x4C every 500 ms to the port's XPD (§9.3, §14), BRI layer-1
///   state 0x30 every 500 ms to the port's XPD (§9.4). Reading them cannot disturb a line,
///   since a live reference host does it all the time; their values are left to the span
///   layer, which polls them anyway (the reference reads 0xFF as "absent" only on FXS; on
///   these registers it is a voltage or a set of status bits).
/// - ECHO: nothing. The card init only writes its echo map (§8.3) and the SPI packets that
///   reach the canceller belong to the loader stage (MT §5.6); the descriptor is its check.
pub(crate) fn verify_steps(unit: u8, kind: CardKind, ports: u8) -> Vec<Step> {
    let mut s = Seq::new(unit);
    let check =
        |p: u8, xpd: u8, reg: u8| Step::Read(addr(unit, xpd), RegAccess::read(p, reg), Purpose::Answers);
    // The PCM mode register the card init sets to 0x28 on each port (FXS 0x01, FXO 0x21; see
    // `fxs1` and `fxo`): a chip that reads anything else was reset after the init and must
    // be initialised again, whatever its line state.
    let configured =
        |p: u8, reg: u8| Step::Read(addr(unit, 0), RegAccess::read(p, reg), Purpose::Configured(0x28));
    match kind {
        CardKind::FxsType1 => {
            s.chip_ids(ports);
            s.steps.extend((0..ports.min(8)).map(|p| configured(p, 0x01)));
        }
        CardKind::FxsType6 => s.chip_ids(ports),
        CardKind::Fxo => {
            s.steps.extend((0..ports.min(8)).map(|p| check(p, 0, 0x1D)));
            s.steps.extend((0..ports.min(8)).map(|p| configured(p, 0x21)));
        }
        CardKind::Pri => s.steps.extend((0..ports.min(4)).map(|p| check(p, p, 0x4C))),
        CardKind::Bri => s.steps.extend((0..ports.min(8)).map(|p| check(p, p, 0x30))),
        CardKind::Echo => {}
    }
    s.steps
}

/// The init stage of a unit for the ports in `present`.
pub(crate) fn init_steps(
    unit: u8,
    kind: CardKind,
    d: &UnitDescriptor,
    present: u32,
    cfg: &BringUpConfig,
) -> Vec<Step> {
    let ports = d.numchips.saturating_mul(d.ports_per_chip);
    match kind {
        CardKind::FxsType1 => fxs1(unit, ports, present, cfg),
        CardKind::FxsType6 => fxs6(unit, ports, present, cfg),
        CardKind::Fxo => fxo(unit, ports, cfg),
        CardKind::Pri => pri(unit, ports, cfg),
        CardKind::Bri => bri(unit, d, cfg),
        // §8.4: init_card_5_30 does nothing; card init sets the echo map to "all off" (§8.3).
        CardKind::Echo => vec![Step::Packet(addr(unit, 0), Command::EchoOff)],
    }
}

// ----- FXS type 1 -------------------------------------------------------------------------

/// Indirect registers loaded through register 0x1E, broadcast (§14: 48 broadcast indirect
/// writes). `(subregister, data_low, data_high)`.
///
/// Decision (assumed, confirm on hardware): the reference gives the count, not the values. These
/// are the SLIC's documented power-on coefficient set (DTMF detector, oscillators, loop/ring-trip
/// thresholds, filters), 48 entries; the emulator stores them without effect, real hardware needs a
/// capture to confirm.
const FXS1_INDIRECT: [(u8, u8, u8); 48] = [
    (0x00, 0xC2, 0x55),
    (0x01, 0xE6, 0x51),
    (0x02, 0x85, 0x4B),
    (0x03, 0x37, 0x49),
    (0x04, 0x33, 0x33),
    (0x05, 0x02, 0x02),
    (0x06, 0x02, 0x02),
    (0x07, 0x98, 0x01),
    (0x08, 0x98, 0x01),
    (0x09, 0x11, 0x06),
    (0x0A, 0x02, 0x02),
    (0x0B, 0xE5, 0x00),
    (0x0C, 0x1C, 0x0A),
    (0x0D, 0x30, 0x7B),
    (0x0E, 0x63, 0x00),
    (0x0F, 0x00, 0x00),
    (0x10, 0x70, 0x78),
    (0x11, 0x7D, 0x00),
    (0x12, 0x00, 0x00),
    (0x13, 0x00, 0x00),
    (0x14, 0xF0, 0x7E),
    (0x15, 0x60, 0x01),
    (0x16, 0x00, 0x00),
    (0x17, 0x00, 0x20),
    (0x18, 0x00, 0x20),
    (0x19, 0x00, 0x00),
    (0x1A, 0x00, 0x20),
    (0x1B, 0x00, 0x40),
    (0x1C, 0x00, 0x10),
    (0x1D, 0x00, 0x36),
    (0x1E, 0x00, 0x10),
    (0x1F, 0x00, 0x02),
    (0x20, 0xC0, 0x07),
    (0x21, 0x00, 0x26),
    (0x22, 0xF4, 0x0F),
    (0x23, 0x00, 0x80),
    (0x24, 0x20, 0x03),
    (0x25, 0x8C, 0x00),
    (0x26, 0x00, 0x01),
    (0x27, 0x10, 0x00),
    (0x28, 0x00, 0x0C),
    (0x29, 0x00, 0x0C),
    (0x2B, 0x00, 0x10),
    (0x63, 0xDA, 0x00),
    (0x64, 0x60, 0x6B),
    (0x65, 0x74, 0x00),
    (0x66, 0xC0, 0x79),
    (0x67, 0x20, 0x11),
];

/// Direct writes before calibration, broadcast: `(register, value)`.
///
/// Decision (assumed, confirm on hardware; values; §8.4 names the purposes: interrupts off, DC
/// feed, debounce, metering): interrupt enables 0x15-0x17 := 0 (0x17 also turns DTMF detection off,
/// §9.1), line feed 0x40 := open while calibrating, battery 0x42 := low (§9.1), loop-closure /
/// ring-trip debounce 0x45/0x46, loop current limit 0x47, on-hook and common-mode voltages
/// 0x48/0x49, battery levels 0x4A/0x4B, DC-DC converter 0x5C/0x5D, metering tone 0x23 := off
/// (§9.1).
const FXS1_EARLY: [(u8, u8); 14] = [
    (0x15, 0x00),
    (0x16, 0x00),
    (0x17, 0x00),
    (0x40, 0x00),
    (0x42, 0x00),
    (0x45, 0x0A),
    (0x46, 0x0B),
    (0x47, 0x00),
    (0x48, 0x20),
    (0x49, 0x02),
    (0x4A, 0x32),
    (0x4B, 0x10),
    (0x5C, 0xFF),
    (0x23, 0x00),
];

fn fxs1(unit: u8, ports: u8, present: u32, cfg: &BringUpConfig) -> Vec<Step> {
    let mut s = Seq::new(unit);
    for &(sub, lo, hi) in &FXS1_INDIRECT {
        s.ws_all(0x1E, sub, lo, hi);
    }
    for &(reg, v) in &FXS1_EARLY {
        s.wd_all(reg, v);
    }
    let live: Vec<u8> = ports_of(present, ports).collect();
    // §14: auto-calibration (WD 61, WD 60 per port, then RD 60 on all ports until 0).
    // Decision (assumed, confirm on hardware): 0x61 := 0x1E (calibrate every block), 0x60 := 0x47
    // (start); the reference gives the registers and "reads 0 = done", not the start values.
    let auto_cal = |s: &mut Seq| {
        for &p in &live {
            s.wd(p, 0x61, 0x1E);
            s.wd(p, 0x60, 0x47);
        }
        for &p in &live {
            s.poll(p, 0x60, "auto-calibration (register 0x60)");
        }
    };
    auto_cal(&mut s);
    // §14: manual calibration, WD 62 / RD 58 and WD 63 / RD 59 per port.
    // Decision (assumed, confirm on hardware): both started with 0x01; done when the read register
    // is 0.
    for &p in &live {
        s.wd(p, 0x62, 0x01);
        s.poll(p, 0x58, "manual calibration (register 0x58)");
        s.wd(p, 0x63, 0x01);
        s.poll(p, 0x59, "manual calibration (register 0x59)");
    }
    auto_cal(&mut s);
    // §14: PCM timeslot per port: regs 0x02/0x04 = port*8 (0x03/0x05 high bytes 0), 0x01 = 0x28.
    for &p in &live {
        s.wd(p, 0x02, p * 8);
        s.wd(p, 0x03, 0);
        s.wd(p, 0x04, p * 8);
        s.wd(p, 0x05, 0);
        s.wd(p, 0x01, 0x28);
    }
    // Card init (§9.1, §14): ringing oscillator 0x22 := 0 broadcast, line feed forward active.
    s.wd_all(0x22, 0x00);
    // Decision: the line feed is written once per present analog port; the reference's 14
    // writes (ports 0-7 then 0-5, §14) come from its loop over the digital I/O channels
    // wrapping the 3-bit port field and change nothing more.
    for &p in &live {
        s.wd(p, 0x40, 0x01);
    }
    if cfg.led_test {
        s.led_test(&live, 0x06, 0x7C, 0x6C);
    }
    s.steps
}

// ----- FXS type 6 -------------------------------------------------------------------------

/// RAM coefficients written broadcast: `(address, value)`.
///
/// Decision (assumed, confirm on hardware): §8.4 says "many RAM writes (coefficients)" without
/// values. These are DC-feed, ring and loop-threshold coefficients at the SLIC's documented RAM
/// addresses; the VMWI defaults RAM 767 / 634 (§9.1) are included shifted left by 3 as the driver
/// writes them.
const FXS6_RAM: [(u16, u32); 12] = [
    (634, 0x0034_2000 << 3),
    (767, 0x0080_0000 << 3),
    (540, 0x0060_0000),
    (541, 0x0050_0000),
    (543, 0x0000_0000),
    (637, 0x1500_0000),
    (638, 0x0A00_0000),
    (750, 0x0206_0000),
    (751, 0x0060_0000),
    (752, 0x0080_0000),
    (755, 0x0050_0000),
    (759, 0x0000_0000),
];

fn fxs6(unit: u8, ports: u8, present: u32, cfg: &BringUpConfig) -> Vec<Step> {
    let mut s = Seq::new(unit);
    // §8.4: the I/O expander is set up with the raw packet `0A 00 0F <u>0 05 08 00 00 00 FF`:
    // expander register 0x00 written with data_low 0x00, data_high 0xFF, do_datah clear.
    s.wx(0x00, 0x00, 0xFF, false);
    // Decision (assumed, confirm on hardware): expander register 0x01 := 0xAA makes port B bits 1,
    // 3, 5, 7 inputs (the digital inputs of §9.1, 0x80/0x20/0x08/0x02) and the relay bits 0x01/0x40
    // outputs.
    s.wx(0x01, 0xAA, 0x00, false);
    let live: Vec<u8> = ports_of(present, ports).collect();
    // §8.4: user mode on around the patch/coefficient load and the calibration, read first and
    // toggled only where it is off.
    for &p in &live {
        s.user_mode(p, true);
    }
    for &(a, v) in &FXS6_RAM {
        s.wr_all(a, v);
    }
    // §8.4 calibration: registers 0x1A-0x1D with CAL_EN (0x80) in 0x1D, then poll 0x1D until
    // the chip clears CAL_EN. Decision (assumed, confirm on hardware): CALR0..CALR2 := 0x00,
    // 0x00, 0x01 (the reference names the registers and the start bit, not the other values).
    for (reg, v) in [(0x1A, 0x00), (0x1B, 0x00), (0x1C, 0x01), (0x1D, FXS6_CAL_EN)] {
        s.wd_all(reg, v);
    }
    for &p in &live {
        s.steps.push(Step::Poll {
            addr: s.a,
            cmd: RegAccess::read(p, 0x1D),
            mask: FXS6_CAL_EN,
            want: 0,
            tries: FXS6_CAL_TRIES,
            what: "type-6 calibration (register 0x1D CAL_EN)",
        });
    }
    for &p in &live {
        s.user_mode(p, false);
    }
    // §8.4: per-port PCM offset port*8 in u-law. Decision (assumed, confirm on hardware):
    // PCMTXLO/HI 0x0C/0x0D, PCMRXLO/HI 0x0E/0x0F, PCMMODE 0x0B := 0x11 (u-law, PCM on) — the SLIC's
    // PCM registers.
    for &p in &live {
        s.wd(p, 0x0C, p * 8);
        s.wd(p, 0x0D, 0);
        s.wd(p, 0x0E, p * 8);
        s.wd(p, 0x0F, 0);
        s.wd(p, 0x0B, 0x11);
    }
    // Card init (§9.1): ringing oscillator 0x26 := 0 broadcast; line feed 0x1E forward active.
    s.wd_all(0x26, 0x00);
    for &p in &live {
        s.wd(p, 0x1E, 0x01);
    }
    if cfg.led_test {
        // §9.1: green LEDs on the expander, register 0x12, data_high = mask, data_low = value.
        for &p in &live {
            s.wx(0x12, 1, 1 << p, true);
            s.steps.push(Step::Delay(Duration::from_millis(50)));
            s.wx(0x12, 0, 1 << p, true);
        }
    }
    s.steps
}

// ----- FXO --------------------------------------------------------------------------------

/// The country ("opermode") registers 0x10, 0x1A, 0x1E, 0x1F (§8.4) for `m`.
///
/// Decision (assumed, confirm on hardware): values from the DAA's country table (on-hook speed, DC
/// termination voltage and current limit, AC termination impedance); the reference names the
/// registers only.
pub(crate) const fn opermode_regs(m: Opermode) -> [(u8, u8); 4] {
    let (r10, r1a, r1e, r1f) = match m {
        Opermode::Fcc => (0x00, 0xC0, 0x00, 0x20),
        Opermode::Tbr21 => (0x00, 0xC2, 0x02, 0x20),
        Opermode::Australia => (0x40, 0xC0, 0x03, 0x20),
    };
    [(0x10, r10), (0x1A, r1a), (0x1E, r1e), (0x1F, r1f)]
}

fn fxo(unit: u8, ports: u8, cfg: &BringUpConfig) -> Vec<Step> {
    let mut s = Seq::new(unit);
    let all: Vec<u8> = (0..ports.min(8)).collect();
    // §9.2: LEDs off (green off 0x60, red off 0xA0, register 0x20).
    for &p in &all {
        s.wd(p, 0x20, 0x60);
        s.wd(p, 0x20, 0xA0);
    }
    // Ring-detect mode. Decision (assumed, confirm on hardware): full-wave ring detection (0x12 :=
    // 0x02) and ring validation 0x16/0x17/0x18 := 0x96/0x1E/0x99, broadcast; the reference names
    // only the purpose.
    for (reg, v) in [(0x12, 0x02), (0x16, 0x96), (0x17, 0x1E), (0x18, 0x99)] {
        s.wd_all(reg, v);
    }
    // Polarity-reversal interrupt mask: register 0x03 := 0x01 (bit 0 = polarity reversal,
    // matching the interrupt-source bits of §9.2; ring comes through SIG_CHANGED).
    s.wd_all(0x03, 0x01);
    // Per-port PCM offsets. Decision (assumed, confirm on hardware): TX/RX start 0x22/0x24 :=
    // port*8 (high bytes 0x23/0x25 := 0), PCM mode 0x21 := 0x28 (u-law, PCM on), as on the FXS
    // SLIC.
    for &p in &all {
        s.wd(p, 0x22, p * 8);
        s.wd(p, 0x23, 0);
        s.wd(p, 0x24, p * 8);
        s.wd(p, 0x25, 0);
        s.wd(p, 0x21, 0x28);
    }
    // On-hook with the line monitor on (§9.2: 0x05 := 0x08).
    for &p in &all {
        s.wd(p, 0x05, 0x08);
    }
    for (reg, v) in opermode_regs(cfg.opermode) {
        s.wd_all(reg, v);
    }
    // Card init (§9.2): every line on-hook; LED self-test.
    for &p in &all {
        s.wd(p, 0x05, 0x08);
    }
    if cfg.led_test {
        s.led_test(&all, 0x20, 0x63, 0x60);
    }
    s.steps
}

// ----- PRI --------------------------------------------------------------------------------

/// Chip-global clock setup (portnum 0). Decision (assumed, confirm on hardware): global port
/// configuration 0x85 := 0 and clock-mode registers 0x92..0x99 for a 2.048 MHz master clock; the
/// reference names only "quad-chip global clock setup".
const PRI_GLOBAL: [(u8, u8); 9] = [
    (0x85, 0x00),
    (0x92, 0x00),
    (0x93, 0x18),
    (0x94, 0xFB),
    (0x95, 0x0B),
    (0x96, 0x01),
    (0x97, 0x0B),
    (0x98, 0xDB),
    (0x99, 0xDF),
];

/// Per-port block, written for all 4 framer ports whatever the descriptor says (§14).
/// Decision (assumed, confirm on hardware): line interface (XPM0/XPM1, XPM2 := 0x40 transmitter
/// tristate — span start writes 0x00, §9.3 — LIM1, PCD/PCR), system interface (SIC1..SIC3,
/// receive/transmit clocking), interrupt masks IMR0..IMR5 := 0xFF, HDLC/CAS (CCR1, MODE); the
/// reference names the groups.
const PRI_PORT: [(u8, u8); 20] = [
    (0x26, 0x9C),
    (0x27, 0x03),
    (0x28, 0x40),
    (0x37, 0x02),
    (0x6C, 0x0A),
    (0x6D, 0x15),
    (0x3E, 0x82),
    (0x3F, 0x00),
    (0x40, 0x08),
    (0x24, 0x00),
    (0x25, 0x9C),
    (0x22, 0x00),
    (0x23, 0x9C),
    (0x14, 0xFF),
    (0x15, 0xFF),
    (0x16, 0xFF),
    (0x17, 0xFF),
    (0x18, 0xFF),
    (0x19, 0xFF),
    (0x09, 0x18),
];

/// §9.3 line defaults, in the order the driver writes them: FMR1, FMR2, FMR0, FMR4, [FMR3],
/// CMDR := 0x50, XSP.
pub(crate) fn pri_line_regs(protocol: PriProtocol) -> Vec<(u8, u8)> {
    match protocol {
        PriProtocol::E1 => {
            vec![
                (0x1D, 0x4C),
                (0x1E, 0x83),
                (0x1C, 0xF0),
                (0x20, 0x9F),
                (0x31, 0x01),
                (0x02, 0x50),
                (0x21, 0x1C),
            ]
        }
        _ => vec![(0x1D, 0x1C), (0x1E, 0x62), (0x1C, 0xF0), (0x20, 0x0E), (0x02, 0x50), (0x21, 0x40)],
    }
}

fn pri(unit: u8, ports: u8, cfg: &BringUpConfig) -> Vec<Step> {
    let mut s = Seq::new(unit);
    for &(reg, v) in &PRI_GLOBAL {
        s.wd(0, reg, v);
    }
    for p in 0..4u8 {
        for &(reg, v) in &PRI_PORT {
            // SIC2 carries the port's slot in bits 1-2.
            let v = if reg == 0x3F { v | (p << 1) } else { v };
            s.wd(p, reg, v);
        }
    }
    // The driver's line configuration per declared port, to that port's XPD (§9.3).
    for p in 0..ports.min(4) {
        let a = addr(unit, p);
        for (reg, v) in pri_line_regs(cfg.pri_protocol) {
            s.steps.push(Step::Write(a, RegCmd::Reg(RegAccess::write(p, reg, v))));
        }
        // LIM0: Decision (assumed, confirm on hardware): 0x08 (slave; bit 0 master mode is the span
        // layer's timing choice).
        s.steps.push(Step::Write(a, RegCmd::Reg(RegAccess::write(p, 0x36, 0x08))));
    }
    // Clock source PC2..PC4 (portnum 0), as observed: 0x0B / 0x9B / 0x9B (§14).
    for (reg, v) in [(0x81, 0x0B), (0x82, 0x9B), (0x83, 0x9B)] {
        s.wd(0, reg, v);
    }
    if cfg.led_test {
        for p in 0..ports.min(4) {
            for on in [true, false] {
                for led in [
                    xpp_proto::wire::PriLed::BottomRed,
                    xpp_proto::wire::PriLed::BottomGreen,
                    xpp_proto::wire::PriLed::TopRed,
                    xpp_proto::wire::PriLed::TopGreen,
                ] {
                    s.steps.push(Step::Packet(addr(unit, p), Command::SetLed(SetLed::pri(led, on))));
                }
                s.steps.push(Step::Delay(Duration::from_millis(50)));
            }
        }
    }
    s.steps
}

// ----- BRI --------------------------------------------------------------------------------

fn bri(unit: u8, d: &UnitDescriptor, cfg: &BringUpConfig) -> Vec<Step> {
    let mut s = Seq::new(unit);
    let ppc = d.ports_per_chip.min(4);
    let ports = d.numchips.saturating_mul(ppc).min(8);
    // §8.4 / §9.4: magic `Wm` (eoframe 1, "stop") first. Decision: addressed to the unit's
    // own XPD (unit, 0), port 0, not to the reference's (0, unit) quirk (§6.3, §13.10).
    s.steps.push(Step::Write(s.a, RegCmd::Multibyte(Multibyte::magic(0, true))));
    for chip in 0..d.numchips.min(2) {
        let first = chip * ppc;
        // Decision (assumed, confirm on hardware; XHFC registers; the reference names only the
        // purposes): soft reset CIRM 0x00 := 0x08 then 0x00; PLL / clock 0x02 := 0x01, 0x2E :=
        // 0x00; PCM slave mode PCM_MD0 0x14 := 0x00. Chip-global writes use the chip's first port.
        for (reg, v) in [(0x00, 0x08), (0x00, 0x00), (0x02, 0x01), (0x2E, 0x00), (0x14, 0x00)] {
            s.wd(first, reg, v);
        }
        for port in first..(first + ppc).min(ports) {
            // FIFOs B1, B2 transparent and D HDLC, both directions: select FIFO 0x0F, then
            // A_CON_HDLC 0xFB, A_SUBCH_CFG 0xFC, A_FIFO_CTRL 0xFD.
            for ch in 0..3u8 {
                for dir in 0..2u8 {
                    let (con, sub) = if ch == 2 { (0x05, 0x02) } else { (0x02, 0x00) };
                    s.wd(port, 0x0F, (((port % 4) * 4 + ch) << 1) | dir);
                    s.wd(port, 0xFB, con);
                    s.wd(port, 0xFC, sub);
                    s.wd(port, 0xFD, 0x01);
                }
            }
            let nt = d.port_dir & (1 << port) != 0;
            // S/T interface: select 0x16, mode 0x31 (bit 0 = NT), 0x32, clock delay 0x37,
            // then enable the layer-1 state machine: 0x30 := 0x00 (§9.4).
            s.wd(port, 0x16, port % 4);
            s.wd(port, 0x31, u8::from(nt));
            s.wd(port, 0x32, 0x00);
            s.wd(port, 0x37, if nt { 0x6C } else { 0x0E });
            s.wd(port, 0x30, 0x00);
        }
    }
    // Magic `WM` (eoframe 0, "start") last.
    s.steps.push(Step::Write(s.a, RegCmd::Multibyte(Multibyte::magic(0, false))));
    // Card init "card on" (§8.3, §9.4): layer-1 activation, 0x60 (TE) / 0xE0 (NT).
    for port in 0..ports {
        let nt = d.port_dir & (1 << port) != 0;
        let a = addr(unit, port);
        s.steps.push(Step::Write(a, RegCmd::Reg(RegAccess::write(port, 0x30, if nt { 0xE0 } else { 0x60 }))));
        if cfg.led_test {
            for on in [true, false] {
                let led = xpp_proto::wire::BriLed::Green;
                s.steps.push(Step::Packet(a, Command::SetLed(SetLed::bri(led, on))));
                s.steps.push(Step::Delay(Duration::from_millis(50)));
            }
        }
    }
    s.steps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(t: CardType, numchips: u8, ppc: u8, dir: u8) -> UnitDescriptor {
        let mut d = UnitDescriptor::new(Address::ZERO, t, 0, numchips, ppc);
        d.port_dir = dir;
        d
    }

    fn count(steps: &[Step]) -> (usize, usize, usize) {
        let reads = steps.iter().filter(|s| matches!(s, Step::Read(..) | Step::Poll { .. })).count();
        let sub = steps.iter().filter(|s| matches!(s, Step::Write(_, RegCmd::Reg(r)) if r.do_subreg)).count();
        let writes = steps.iter().filter(|s| matches!(s, Step::Write(..))).count();
        (reads, writes, sub)
    }

    #[test]
    fn fxs1_shape_follows_the_observed_counts() {
        let cfg = BringUpConfig::default();
        let detect = detect_steps(0, CardKind::FxsType1, 8);
        assert_eq!(count(&detect), (8, 0, 0));
        let d = desc(CardType::Fxs, 8, 1, 1);
        let init = init_steps(0, CardKind::FxsType1, &d, 0xFF, &cfg);
        let (reads, writes, sub) = count(&init);
        // §14: 48 broadcast indirect writes; 8 + 8 + 8 + 8 calibration polls.
        assert_eq!(sub, 48);
        assert_eq!(reads, 32);
        assert!(writes > 140, "{writes}");
        // Absent ports get no per-port writes.
        let fewer = init_steps(0, CardKind::FxsType1, &d, 0x01, &cfg);
        assert!(count(&fewer).1 < writes);
    }

    #[test]
    fn fxo_pri_bri_send_no_reads() {
        let cfg = BringUpConfig::default();
        for (kind, d) in [
            (CardKind::Fxo, desc(CardType::Fxo, 8, 1, 0)),
            (CardKind::Pri, desc(CardType::Pri, 1, 1, 0)),
            (CardKind::Bri, desc(CardType::Bri, 1, 4, 0)),
        ] {
            assert!(detect_steps(1, kind, 8).is_empty());
            let steps = init_steps(1, kind, &d, u32::MAX, &cfg);
            assert_eq!(count(&steps).0, 0, "{kind}");
            assert!(!steps.is_empty());
        }
        // PRI: the 4-port block even for one declared port, then the E1 defaults.
        let steps = init_steps(1, CardKind::Pri, &desc(CardType::Pri, 1, 1, 0), 1, &cfg);
        let ports: std::collections::BTreeSet<u8> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Write(_, c) => Some(c.port()),
                _ => None,
            })
            .collect();
        assert_eq!(ports.into_iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn verify_reads_only() {
        for (kind, ports, reads) in [
            (CardKind::FxsType1, 8, 16),
            (CardKind::FxsType6, 8, 8),
            (CardKind::Fxo, 8, 16),
            (CardKind::Pri, 4, 4),
            (CardKind::Bri, 4, 4),
            (CardKind::Echo, 1, 0),
        ] {
            let steps = verify_steps(2, kind, ports);
            assert_eq!(count(&steps), (reads, 0, 0), "{kind}");
            assert!(
                steps
                    .iter()
                    .all(|s| matches!(s, Step::Read(a, r, _) if r.read && !r.broadcast && a.unit() == 2))
            );
        }
        // PRI and BRI: each port's read goes to that port's XPD (§9.3, §9.4).
        let pri = verify_steps(1, CardKind::Pri, 4);
        assert!(pri.iter().all(|s| matches!(s, Step::Read(a, r, _) if a.subunit() == r.port)));
        // Type 6: the register-0x00 reads of the detection, without its soft reset and
        // without the 0x0E write-back check (a verify writes nothing).
        let detect = detect_steps(0, CardKind::FxsType6, 8);
        let id_reads: Vec<Step> =
            detect.iter().filter(|s| matches!(s, Step::Read(_, r, _) if r.reg == 0x00)).copied().collect();
        let verify = verify_steps(0, CardKind::FxsType6, 8);
        assert_eq!(id_reads.len(), verify.len());
        for (d, v) in id_reads.iter().zip(&verify) {
            let (Step::Read(da, dr, _), Step::Read(va, vr, _)) = (d, v) else { panic!() };
            assert_eq!((da, dr), (va, vr));
        }
    }

    #[test]
    fn fxs6_detect_and_init_follow_the_reference_reads() {
        // §8.4: per port, 0x00 read, 0x40 written to 0x0E, 0x0E read, 0x03 read.
        let detect = detect_steps(3, CardKind::FxsType6, 8);
        assert_eq!(count(&detect), (24, 9, 0));
        let d = desc(CardType::Fxs6, 4, 2, 1);
        let init = init_steps(3, CardKind::FxsType6, &d, 0b0000_0101, &BringUpConfig::default());
        // User mode read (on) and read (off) per present port, one CAL_EN poll per present port.
        let user: Vec<u8> = init
            .iter()
            .filter_map(|s| match s {
                Step::Read(_, r, Purpose::Fxs6UserMode { port, .. }) if r.reg == 0x7E => Some(*port),
                _ => None,
            })
            .collect();
        assert_eq!(user, [0, 2, 0, 2]);
        let polls: Vec<(u8, u8)> = init
            .iter()
            .filter_map(|s| match s {
                Step::Poll { cmd, mask, want: 0, .. } if cmd.reg == 0x1D => Some((cmd.port, *mask)),
                _ => None,
            })
            .collect();
        assert_eq!(polls, [(0, 0x80), (2, 0x80)]);
        // No blind 0x7E write: the sequence comes only from a read's answer.
        assert!(!init.iter().any(|s| matches!(s, Step::Write(_, RegCmd::Reg(r)) if r.reg == 0x7E)));
    }

    #[test]
    fn descriptor_checks() {
        assert!(check_descriptor(CardKind::FxsType1, &desc(CardType::Fxs, 8, 1, 0)).is_err());
        assert!(check_descriptor(CardKind::Fxo, &desc(CardType::Fxo, 8, 1, 1)).is_err());
        assert!(check_descriptor(CardKind::Pri, &desc(CardType::Pri, 2, 1, 0)).is_err());
        assert!(check_descriptor(CardKind::Bri, &desc(CardType::Bri, 1, 5, 0)).is_err());
        assert!(check_descriptor(CardKind::Fxo, &desc(CardType::Fxo, 8, 0, 0)).is_err());
        assert!(check_descriptor(CardKind::Pri, &desc(CardType::Pri, 1, 4, 0)).is_ok());
    }
}
