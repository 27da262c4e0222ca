//! DAHDI's numeric vocabulary: signalling types, hook signals, hook commands, events, alarms,
//! line configuration, laws, span types and limits.
//!
//! Every number here is ABI for PBX software (chan_dahdi compares them with its own copies),
//! so each one is pinned by a test to the tables of `docs/reference/dahdi-span-model.md` (§1, §3, §4, §5,
//! §6, §7, §8). Names are DAHDI's, without the `DAHDI_SIG_` / `DAHDI_EVENT_` prefixes.

use xpp_proto::enum_with_unknown;

use crate::macros::bits_with_names;

/// Most spans DAHDI numbers (1..=128) (§1).
pub const MAX_SPANS: u32 = 128;
/// Channel numbers are 1..MAX_CHANNELS (§1: 1024 channels; `system.conf` lists 1-1023).
pub const MAX_CHANNELS: u32 = 1024;
/// Highest channel number `system.conf` accepts (§13).
pub const MAX_CONF_CHANNEL: u32 = MAX_CHANNELS - 1;
/// Pseudo channels are numbered from here (§1).
pub const PSEUDO_CHAN_BASE: u32 = 0x8000;
/// Depth of a channel's event ring (§6).
pub const EVENT_QUEUE_DEPTH: usize = 64;
/// errno a POSIX-fd shim returns from `read()`/`write()` while an event is pending (§6).
pub const ELAST: i32 = 500;

enum_with_unknown! {
    /// A channel's signalling type (`DAHDI_SIG_*`, §3). Names describe the **far end**:
    /// a phone-facing FXS port is configured with FXO signalling (`fxoks`).
    #[doc(alias = "sigtype")]
    pub enum Sig(u32) {
        /// Not configured; cannot be opened.
        None = 0 => "NONE",
        /// Loop start, on FXO hardware.
        Fxsls = 0x2001 => "FXSLS",
        /// Ground start, on FXO hardware.
        Fxsgs = 0x2002 => "FXSGS",
        /// Kewl start, on FXO hardware.
        Fxsks = 0x2004 => "FXSKS",
        /// Loop start, on FXS hardware.
        Fxols = 0x1008 => "FXOLS",
        /// Ground start, on FXS hardware.
        Fxogs = 0x1010 => "FXOGS",
        /// Kewl start, on FXS hardware.
        Fxoks = 0x1020 => "FXOKS",
        /// T1 E&M.
        Em = 0x40 => "EM",
        /// Clear channel / B-channel.
        Clear = 0x80 => "CLEAR",
        /// Soft HDLC without FCS.
        HdlcRaw = 0x180 => "HDLCRAW",
        /// Soft HDLC with FCS (ISDN D-channel).
        HdlcFcs = 0x380 => "HDLCFCS",
        /// HDLC network interface.
        HdlcNet = 0x780 => "HDLCNET",
        /// Extra member of a bundle.
        Slave = 0x800 => "SLAVE",
        /// Single-frequency tone signalling.
        Sf = 0x4000 => "SF",
        /// Raw ABCD bits.
        Cas = 0x8000 => "CAS",
        /// Cross-connect.
        Dacs = 0x10080 => "DACS",
        /// E1 E&M.
        EmE1 = 0x20000 => "EM_E1",
        /// Cross-connect including RBS bits.
        DacsRbs = 0x50000 => "DACS_RBS",
        /// Hardware HDLC (BRI D-channels).
        HardHdlc = 0x80080 => "HARDHDLC",
        /// HDLC+FCS with SS7 MTP2 behaviour.
        Mtp2 = 0x100380 => "MTP2",
    }
}

/// The FXO family bit: FXO-signalled types, configured on FXS hardware (§3).
pub const SIG_FXO_FAMILY: u32 = 0x1000;
/// The FXS family bit: FXS-signalled types, configured on FXO hardware (§3).
pub const SIG_FXS_FAMILY: u32 = 0x2000;
/// The DACS family bit (§3).
pub const SIG_DACS_FAMILY: u32 = 0x10000;
/// The bit every clear-derived type contains (§3).
pub const SIG_CLEAR_BIT: u32 = 0x80;
/// chan_dahdi compares `(its type & SIG_KERNEL_MASK)` with the kernel sigtype (§3).
pub const SIG_KERNEL_MASK: u32 = 0x3ffff;

impl Sig {
    /// FXS-signalled (fxsls/fxsgs/fxsks: an FXO port facing the line).
    pub fn is_fxs(self) -> bool {
        self.is_known() && self.raw() & SIG_FXS_FAMILY != 0
    }

    /// FXO-signalled (fxols/fxogs/fxoks: an FXS port facing a phone).
    pub fn is_fxo(self) -> bool {
        self.is_known() && self.raw() & SIG_FXO_FAMILY != 0
    }

    /// E&M (T1 or E1).
    pub fn is_em(self) -> bool {
        matches!(self, Self::Em | Self::EmE1)
    }

    /// Clear-derived (contains the CLEAR bit: clear, HDLC types, DACS, hardhdlc, MTP2).
    pub fn is_clear_derived(self) -> bool {
        self != Self::None && self.raw() & SIG_CLEAR_BIT != 0
    }

    /// Whether the core's hook state machines run for this type (DAHDI_HOOK is valid);
    /// false for NONE, clear-derived, SLAVE and CAS types (EINVAL, §5).
    pub fn has_hook_signalling(self) -> bool {
        self.is_fxs() || self.is_fxo() || self.is_em() || self == Self::Sf
    }

    /// Whether the channel carries audio by default (the AUDIO flag, §9).
    pub fn is_audio(self) -> bool {
        !self.is_clear_derived() && !matches!(self, Self::None | Self::Slave)
    }

    /// The `system.conf` keyword that configures this type (the canonical one where several
    /// exist: `dchan` for HDLCFCS, `bchan` for CLEAR), or `None` (SLAVE, SF, NONE).
    pub fn conf_keyword(self) -> Option<&'static str> {
        Some(match self {
            Self::Fxsls => "fxsls",
            Self::Fxsgs => "fxsgs",
            Self::Fxsks => "fxsks",
            Self::Fxols => "fxols",
            Self::Fxogs => "fxogs",
            Self::Fxoks => "fxoks",
            Self::Em => "e&m",
            Self::EmE1 => "e&me1",
            Self::Clear => "bchan",
            Self::HdlcRaw => "rawhdlc",
            Self::HdlcFcs => "dchan",
            Self::HdlcNet => "nethdlc",
            Self::Cas => "cas",
            Self::Dacs => "dacs",
            Self::DacsRbs => "dacsrbs",
            Self::HardHdlc => "hardhdlc",
            Self::Mtp2 => "mtp2",
            _ => return None,
        })
    }
}

bits_with_names! {
    /// A channel's signalling capabilities: the OR of the [`Sig`] values it supports (§3),
    /// plus [`SigCap::BROKEN`] for a failed port.
    #[doc(alias = "sigcap")]
    pub struct SigCap(u32) {
        /// See [`Sig::Fxsls`].
        const FXSLS = 0x2001;
        /// See [`Sig::Fxsgs`].
        const FXSGS = 0x2002;
        /// See [`Sig::Fxsks`].
        const FXSKS = 0x2004;
        /// See [`Sig::Fxols`].
        const FXOLS = 0x1008;
        /// See [`Sig::Fxogs`].
        const FXOGS = 0x1010;
        /// See [`Sig::Fxoks`].
        const FXOKS = 0x1020;
        /// See [`Sig::Em`].
        const EM = 0x40;
        /// See [`Sig::Clear`].
        const CLEAR = 0x80;
        /// See [`Sig::HdlcRaw`].
        const HDLCRAW = 0x180;
        /// See [`Sig::HdlcFcs`].
        const HDLCFCS = 0x380;
        /// See [`Sig::HdlcNet`].
        const HDLCNET = 0x780;
        /// See [`Sig::Slave`].
        const SLAVE = 0x800;
        /// See [`Sig::Sf`].
        const SF = 0x4000;
        /// See [`Sig::Cas`].
        const CAS = 0x8000;
        /// See [`Sig::Dacs`].
        const DACS = 0x10080;
        /// See [`Sig::EmE1`].
        const EM_E1 = 0x20000;
        /// See [`Sig::DacsRbs`].
        const DACS_RBS = 0x50000;
        /// See [`Sig::HardHdlc`].
        const HARDHDLC = 0x80080;
        /// See [`Sig::Mtp2`].
        const MTP2 = 0x100380;
        /// Bit 31: the port failed (§1).
        const BROKEN = 0x8000_0000;
    }
}

impl SigCap {
    /// Typical sigcap of an FXS hardware port (phone-facing; FXO signalling), §3.
    pub const ANALOG_FXS_PORT: Self = Self(0x1008 | 0x1010 | 0x1020);
    /// Typical sigcap of an FXO hardware port (line-facing; FXS signalling), §3.
    pub const ANALOG_FXO_PORT: Self = Self(0x2001 | 0x2004);

    /// Whether CHANCONFIG accepts `sig` on a channel with this sigcap (§2 step 4): `sig` must
    /// be a subset of the sigcap; CLEAR in the sigcap also admits the HDLC types and DACS.
    /// NONE (un-configure) is always accepted; a BROKEN port accepts nothing else.
    // Decision: "the HDLC types" implied by CLEAR are HDLCRAW, HDLCFCS and HDLCNET; MTP2,
    // HARDHDLC and DACS_RBS must be listed explicitly (typical digital sigcaps list them).
    pub fn permits(self, sig: Sig) -> bool {
        if sig == Sig::None {
            return true;
        }
        if self.contains(Self::BROKEN) {
            return false;
        }
        let mut cap = self;
        if cap.contains(Self::CLEAR) {
            cap |= Self::HDLCRAW | Self::HDLCFCS | Self::HDLCNET | Self::DACS;
        }
        let raw = sig.raw();
        raw != 0 && cap.0 & raw == raw
    }
}

enum_with_unknown! {
    /// A transmit hook signal the core asks a `hooksig` driver to put on the line (§4).
    #[doc(alias = "DAHDI_TXSIG")]
    pub enum TxSig(i32) {
        /// FXO port: open loop; FXS port: idle line.
        OnHook = 0 => "ONHOOK",
        /// FXO port: close loop; FXS port: idle/active line (also ring gaps).
        OffHook = 1 => "OFFHOOK",
        /// FXO port: seize (ground start grounds ring); FXS port: ring voltage.
        Start = 2 => "START",
        /// FXS port: open / drop battery.
        Kewl = 3 => "KEWL",
    }
}

enum_with_unknown! {
    /// A receive hook signal a `hooksig` driver reports (§4).
    #[doc(alias = "DAHDI_RXSIG")]
    pub enum RxSig(i32) {
        /// FXO port: battery lost; FXS port: phone on hook.
        OnHook = 0 => "ONHOOK",
        /// FXO port: battery, no ring; FXS port: phone off hook.
        OffHook = 1 => "OFFHOOK",
        /// FXS port: ground-start request.
        Start = 2 => "START",
        /// FXO port: ring voltage.
        Ring = 3 => "RING",
        /// Set by the core after CHANCONFIG/STARTUP: the next report always counts.
        Initial = 4 => "INITIAL",
    }
}

enum_with_unknown! {
    /// `DAHDI_HOOK` ioctl values: what a PBX asks of a channel's hook (§5).
    #[doc(alias = "DAHDI_HOOK")]
    pub enum HookCmd(i32) {
        /// Hang up.
        OnHook = 0 => "ONHOOK",
        /// Go off hook (answer / seize).
        OffHook = 1 => "OFFHOOK",
        /// Send a wink.
        Wink = 2 => "WINK",
        /// Send a hook flash.
        Flash = 3 => "FLASH",
        /// Start (ring on FXO-signalled channels).
        Start = 4 => "START",
        /// Ring (same as START).
        Ring = 5 => "RING",
        /// Stop ringing.
        RingOff = 6 => "RINGOFF",
    }
}

/// A DAHDI event number as `DAHDI_GETEVENT` returns it (§6).
///
/// Newtype-with-consts rather than an enum because three events are flags OR'ed with an
/// ASCII digit ([`Event::pulse_digit`], [`Event::dtmf_down`], [`Event::dtmf_up`]); unknown
/// numbers are kept.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[doc(alias = "DAHDI_EVENT")]
pub struct Event(pub i32);

macro_rules! events {
    ($( $(#[$a:meta])* $name:ident = $v:expr; )+) => {
        impl Event {
            $( $(#[$a])* pub const $name: Self = Self($v); )+
            /// Every plain (non-flag) event with its name, in table order.
            pub const NAMED: &'static [(&'static str, Self)] = &[ $( (stringify!($name), Self::$name) ),+ ];
        }
    };
}

events! {
    /// Queue empty (what GETEVENT returns when nothing is pending).
    NONE = 0;
    /// Far end / phone on hook.
    ONHOOK = 1;
    /// Phone off hook (FXO-sig), ring received (FXS-sig), seizure (E&M, ground start).
    RINGOFFHOOK = 2;
    /// Rx wink (E&M) or hook flash.
    WINKFLASH = 3;
    /// Channel entered alarm.
    ALARM = 4;
    /// Channel left alarm.
    NOALARM = 5;
    /// HDLC abort.
    ABORT = 6;
    /// HDLC overrun.
    OVERRUN = 7;
    /// HDLC bad FCS.
    BADFCS = 8;
    /// Dial string done.
    DIALCOMPLETE = 9;
    /// Ring cadence: ringer on.
    RINGERON = 10;
    /// Ring cadence: ringer off.
    RINGEROFF = 11;
    /// Non-blocking wink/flash/start done.
    HOOKCOMPLETE = 12;
    /// CAS rx bits changed.
    BITSCHANGED = 13;
    /// First dial pulse of a digit.
    PULSE_START = 14;
    /// Timer node: timer expired.
    TIMER_EXPIRED = 15;
    /// Timer node: ping.
    TIMER_PING = 16;
    /// Line polarity reversal.
    POLARITY = 17;
    /// Ring start (FXS-signalled).
    RINGBEGIN = 18;
    /// Legacy, not generated by the current core.
    EC_DISABLED = 19;
    /// Span/device going away; close the channel.
    REMOVED = 20;
    /// Neon MWI detected active.
    NEONMWI_ACTIVE = 21;
    /// Neon MWI detected inactive.
    NEONMWI_INACTIVE = 22;
    /// 2100 Hz answer tone, transmit direction.
    TX_CED_DETECTED = 23;
    /// 2100 Hz answer tone, receive direction.
    RX_CED_DETECTED = 24;
    /// CNG detected, transmit direction.
    TX_CNG_DETECTED = 25;
    /// CNG detected, receive direction.
    RX_CNG_DETECTED = 26;
    /// Canceller NLP disabled.
    EC_NLP_DISABLED = 27;
    /// Canceller NLP enabled.
    EC_NLP_ENABLED = 28;
    /// Read overrun (only with BUFFER_EVENTS).
    READ_OVERRUN = 29;
    /// Write underrun (only with BUFFER_EVENTS).
    WRITE_UNDERRUN = 30;
}

impl Event {
    /// Flag OR'ed with the ASCII digit of a decoded dial-pulse digit.
    pub const PULSEDIGIT_FLAG: i32 = 1 << 16;
    /// Flag OR'ed with the ASCII digit when a hardware DTMF detector sees a digit start.
    pub const DTMFDOWN_FLAG: i32 = 1 << 17;
    /// Flag OR'ed with the ASCII digit when a hardware DTMF detector sees a digit end.
    pub const DTMFUP_FLAG: i32 = 1 << 18;

    /// `PULSEDIGIT | digit` (digit is ASCII: `'1'..='9'`, `'0'`, `'*'`, `'#'`).
    pub const fn pulse_digit(digit: u8) -> Self {
        Self(Self::PULSEDIGIT_FLAG | digit as i32)
    }

    /// `DTMFDOWN | digit`.
    pub const fn dtmf_down(digit: u8) -> Self {
        Self(Self::DTMFDOWN_FLAG | digit as i32)
    }

    /// `DTMFUP | digit`.
    pub const fn dtmf_up(digit: u8) -> Self {
        Self(Self::DTMFUP_FLAG | digit as i32)
    }

    /// The raw number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The digit of a PULSEDIGIT event.
    pub const fn as_pulse_digit(self) -> Option<u8> {
        self.flag_digit(Self::PULSEDIGIT_FLAG)
    }

    /// The digit of a DTMFDOWN event.
    pub const fn as_dtmf_down(self) -> Option<u8> {
        self.flag_digit(Self::DTMFDOWN_FLAG)
    }

    /// The digit of a DTMFUP event.
    pub const fn as_dtmf_up(self) -> Option<u8> {
        self.flag_digit(Self::DTMFUP_FLAG)
    }

    const fn flag_digit(self, flag: i32) -> Option<u8> {
        if self.0 & !0xff == flag { Some((self.0 & 0xff) as u8) } else { None }
    }

    /// DAHDI's name of a plain event, `None` for flag events and unknown numbers.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(_, e)| *e == self).map(|(n, _)| *n)
    }
}

impl core::fmt::Display for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let digit = |d: u8| if d.is_ascii_graphic() { char::from(d) } else { '?' };
        if let Some(name) = self.name() {
            f.write_str(name)
        } else if let Some(d) = self.as_pulse_digit() {
            write!(f, "PULSEDIGIT('{}')", digit(d))
        } else if let Some(d) = self.as_dtmf_down() {
            write!(f, "DTMFDOWN('{}')", digit(d))
        } else if let Some(d) = self.as_dtmf_up() {
            write!(f, "DTMFUP('{}')", digit(d))
        } else {
            write!(f, "UNKNOWN({:#x})", self.0)
        }
    }
}

impl core::fmt::Debug for Event {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Event({self})")
    }
}

bits_with_names! {
    /// A span's or channel's alarm word (`DAHDI_ALARM_*`, §7).
    #[doc(alias = "DAHDI_ALARM")]
    pub struct Alarms(u32) {
        /// Just cleared, settling (drivers hold it 5 s).
        const RECOVER = 0x01;
        /// Maintenance loop (derived by the core from the maint state).
        const LOOPBACK = 0x02;
        /// RAI: far end cannot see us.
        const YELLOW = 0x04;
        /// Local loss of signal/framing.
        const RED = 0x08;
        /// AIS received.
        const BLUE = 0x10;
        /// Span unusable (removed device; or "yellow" option with no channel open).
        const NOTOPEN = 0x20;
        /// Detail under RED: loss of signal.
        const LOS = 0x100;
        /// Detail under RED: loss of frame alignment.
        const LFA = 0x200;
        /// Detail under RED: loss of multiframe alignment.
        const LMFA = 0x400;
    }
}

bits_with_names! {
    /// A span's line configuration (`DAHDI_CONFIG_*`, §8).
    #[doc(alias = "lineconfig")]
    pub struct LineConfig(u32) {
        /// T1 D4 (superframe) framing.
        const D4 = 0x10;
        /// T1 extended superframe framing.
        const ESF = 0x20;
        /// AMI line code.
        const AMI = 0x40;
        /// T1 B8ZS line code.
        const B8ZS = 0x80;
        /// Common-channel signalling (absent = CAS).
        const CCS = 0x100;
        /// E1 HDB3 line code.
        const HDB3 = 0x200;
        /// E1 CRC4 multiframe.
        const CRC4 = 0x400;
        /// BRI: 1 = NT, 0 = TE.
        const NTTE = 0x800;
        /// BRI: line termination.
        const TERM = 0x1000;
        /// Send yellow/NOTOPEN while no channel is open.
        const NOTOPEN = 0x10000;
    }
}

impl LineConfig {
    /// Transmit level bits 0-2.
    pub const TXLEVEL_MASK: u32 = 0x7;
    /// SPANCONFIG fails EINVAL if a requested bit under this mask is outside linecompat (§2).
    pub const COMPAT_MASK: u32 = 0x1ff0;
}

/// Companding law (`DAHDI_LAW_*`, §1, §9). Defined in `xpp-proto` beside the PCM payloads,
/// since bring-up (which sits below this crate) reports each card's native law with it.
pub use xpp_proto::wire::Law;

enum_with_unknown! {
    /// `spantype` (§1).
    pub enum SpanType(u32) {
        /// Not set.
        Invalid = 0 => "INVALID",
        /// Analog FXS ports.
        AnalogFxs = 1 => "FXS",
        /// Analog FXO ports.
        AnalogFxo = 2 => "FXO",
        /// Mixed analog ports.
        AnalogMixed = 3 => "ANALOG_MIXED",
        /// E1.
        DigitalE1 = 4 => "E1",
        /// T1.
        DigitalT1 = 5 => "T1",
        /// J1.
        DigitalJ1 = 6 => "J1",
        /// BRI network side.
        BriNt = 7 => "NT",
        /// BRI terminal side.
        BriTe = 8 => "TE",
        /// Software BRI.
        BriSoft = 9 => "BRI_SOFT",
        /// Dynamic span.
        Dynamic = 10 => "DYNAMIC",
    }
}

enum_with_unknown! {
    /// `DAHDI_MAINT` commands (§7).
    pub enum MaintCmd(u32) {
        /// No maintenance.
        None = 0 => "NONE",
        /// Local loop.
        LocalLoop = 1 => "LOCALLOOP",
        /// Remote loop.
        RemoteLoop = 2 => "REMOTELOOP",
        /// Send loop-up code (10 s).
        LoopUp = 3 => "LOOPUP",
        /// Send loop-down code (10 s).
        LoopDown = 4 => "LOOPDOWN",
        /// FAS defect.
        FasDefect = 6 => "FAS_DEFECT",
        /// Multiframe defect.
        MultiDefect = 7 => "MULTI_DEFECT",
        /// CRC defect.
        CrcDefect = 8 => "CRC_DEFECT",
        /// CAS defect.
        CasDefect = 9 => "CAS_DEFECT",
        /// PRBS defect.
        PrbsDefect = 10 => "PRBS_DEFECT",
        /// Bipolar defect.
        BipolarDefect = 11 => "BIPOLAR_DEFECT",
        /// PRBS.
        Prbs = 12 => "PRBS",
        /// Network payload loop.
        NetworkPayloadLoop = 13 => "NETWORKPAYLOADLOOP",
        /// Reset counters.
        ResetCounters = 14 => "RESET_COUNTERS",
        /// Alarm simulation.
        AlarmSim = 15 => "ALARM_SIM",
    }
}

bits_with_names! {
    /// A span's flags word (§1).
    pub struct SpanFlags(u32) {
        /// Core: the span is registered.
        const REGISTERED = 1 << 0;
        /// Core: the span is running.
        const RUNNING = 1 << 1;
        /// Driver: the core runs hook/RBS signalling for this span.
        const RBS = 1 << 12;
    }
}

bits_with_names! {
    /// A channel's flags word (§1).
    pub struct ChanFlags(u32) {
        /// DTMF decoding.
        const DTMFDECODE = 1 << 2;
        /// MF decoding.
        const MFDECODE = 1 << 3;
        /// Echo cancellation on.
        const ECHOCANCEL = 1 << 4;
        /// HDLC mode.
        const HDLC = 1 << 5;
        /// Network device.
        const NETDEV = 1 << 6;
        /// Clear channel.
        const CLEAR = 1 << 8;
        /// Audio mode.
        const AUDIO = 1 << 9;
        /// Open.
        const OPEN = 1 << 10;
        /// HDLC with FCS.
        const FCS = 1 << 11;
        /// Signed linear samples.
        const LINEAR = 1 << 13;
        /// PPP.
        const PPP = 1 << 14;
        /// Signalling frozen.
        const SIGFREEZE = 1 << 16;
        /// No standard tx/rx (hardhdlc).
        const NOSTDTXRX = 1 << 17;
        /// Looped.
        const LOOPED = 1 << 18;
        /// MTP2.
        const MTP2 = 1 << 19;
        /// 56k HDLC.
        const HDLC56 = 1 << 20;
        /// Buffer events on.
        const BUFEVENTS = 1 << 21;
        /// Tx underrun seen.
        const TXUNDERRUN = 1 << 22;
        /// Rx overrun seen.
        const RXOVERRUN = 1 << 23;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// §3's table, hex and decimal columns, with the keyword column.
    #[rstest]
    #[case(Sig::None, 0x0, 0, "NONE")]
    #[case(Sig::Fxsls, 0x2001, 8193, "FXSLS")]
    #[case(Sig::Fxsgs, 0x2002, 8194, "FXSGS")]
    #[case(Sig::Fxsks, 0x2004, 8196, "FXSKS")]
    #[case(Sig::Fxols, 0x1008, 4104, "FXOLS")]
    #[case(Sig::Fxogs, 0x1010, 4112, "FXOGS")]
    #[case(Sig::Fxoks, 0x1020, 4128, "FXOKS")]
    #[case(Sig::Em, 0x40, 64, "EM")]
    #[case(Sig::EmE1, 0x20000, 131072, "EM_E1")]
    #[case(Sig::Clear, 0x80, 128, "CLEAR")]
    #[case(Sig::HdlcRaw, 0x180, 384, "HDLCRAW")]
    #[case(Sig::HdlcFcs, 0x380, 896, "HDLCFCS")]
    #[case(Sig::HdlcNet, 0x780, 1920, "HDLCNET")]
    #[case(Sig::Slave, 0x800, 2048, "SLAVE")]
    #[case(Sig::Sf, 0x4000, 16384, "SF")]
    #[case(Sig::Cas, 0x8000, 32768, "CAS")]
    #[case(Sig::Dacs, 0x10080, 65664, "DACS")]
    #[case(Sig::DacsRbs, 0x50000, 327680, "DACS_RBS")]
    #[case(Sig::HardHdlc, 0x80080, 524416, "HARDHDLC")]
    #[case(Sig::Mtp2, 0x100380, 1049472, "MTP2")]
    fn sig_values(#[case] sig: Sig, #[case] hex: u32, #[case] dec: u32, #[case] name: &str) {
        assert_eq!(hex, dec);
        assert_eq!(u32::from(sig), hex);
        assert_eq!(Sig::from(hex), sig);
        assert_eq!(sig.to_string(), name);
        let cap = SigCap::NAMED.iter().find(|(n, _)| n.replace('_', "") == name.replace('_', ""));
        if sig != Sig::None {
            assert_eq!(cap.map(|(_, c)| c.0), Some(hex), "SigCap const for {name}");
        }
    }

    #[test]
    fn sig_families_and_keywords() {
        assert_eq!((SIG_FXO_FAMILY, SIG_FXS_FAMILY, SIG_DACS_FAMILY), (0x1000, 0x2000, 0x10000));
        for s in [Sig::Fxsls, Sig::Fxsgs, Sig::Fxsks] {
            assert!(s.is_fxs() && !s.is_fxo() && s.has_hook_signalling());
        }
        for s in [Sig::Fxols, Sig::Fxogs, Sig::Fxoks] {
            assert!(s.is_fxo() && !s.is_fxs() && s.has_hook_signalling());
        }
        for s in [Sig::Clear, Sig::HdlcRaw, Sig::HdlcFcs, Sig::HdlcNet, Sig::Dacs, Sig::HardHdlc, Sig::Mtp2] {
            assert!(s.is_clear_derived() && !s.has_hook_signalling() && !s.is_audio(), "{s}");
        }
        assert!(!Sig::Cas.has_hook_signalling());
        assert!(Sig::Cas.is_audio());
        assert_eq!(Sig::Fxoks.conf_keyword(), Some("fxoks"));
        assert_eq!(Sig::Em.conf_keyword(), Some("e&m"));
        assert_eq!(Sig::EmE1.conf_keyword(), Some("e&me1"));
        assert_eq!(Sig::from(0x1234), Sig::Unknown(0x1234));
        assert_eq!(Sig::Unknown(0x1234).to_string(), "UNKNOWN(0x1234)");
        assert!(!Sig::Unknown(0x3000).is_fxs());
    }

    #[test]
    fn sigcap_rules() {
        assert_eq!(SigCap::ANALOG_FXS_PORT.0, 0x1038);
        assert!(SigCap::ANALOG_FXS_PORT.permits(Sig::Fxoks));
        assert!(SigCap::ANALOG_FXS_PORT.permits(Sig::Fxols));
        assert!(!SigCap::ANALOG_FXS_PORT.permits(Sig::Fxsks));
        assert!(SigCap::ANALOG_FXO_PORT.permits(Sig::Fxsks));
        assert!(!SigCap::ANALOG_FXO_PORT.permits(Sig::Fxsgs));
        let bchan = SigCap::CLEAR | SigCap::DACS;
        for s in [Sig::Clear, Sig::HdlcRaw, Sig::HdlcFcs, Sig::HdlcNet, Sig::Dacs] {
            assert!(bchan.permits(s), "{s}");
        }
        assert!(!SigCap::CLEAR.permits(Sig::Mtp2));
        assert!(!SigCap::CLEAR.permits(Sig::HardHdlc));
        assert!(SigCap::HARDHDLC.permits(Sig::HardHdlc));
        assert!(!(SigCap::BROKEN | SigCap::ANALOG_FXS_PORT).permits(Sig::Fxoks));
        assert!(SigCap::EMPTY.permits(Sig::None));
        assert_eq!(SigCap::BROKEN.0, 1 << 31);
    }

    #[rstest]
    #[case(TxSig::OnHook, 0)]
    #[case(TxSig::OffHook, 1)]
    #[case(TxSig::Start, 2)]
    #[case(TxSig::Kewl, 3)]
    fn txsig_values(#[case] s: TxSig, #[case] v: i32) {
        assert_eq!(s.raw(), v);
        assert_eq!(TxSig::from(v), s);
    }

    #[rstest]
    #[case(RxSig::OnHook, 0)]
    #[case(RxSig::OffHook, 1)]
    #[case(RxSig::Start, 2)]
    #[case(RxSig::Ring, 3)]
    #[case(RxSig::Initial, 4)]
    fn rxsig_values(#[case] s: RxSig, #[case] v: i32) {
        assert_eq!(s.raw(), v);
        assert_eq!(RxSig::from(v), s);
    }

    #[rstest]
    #[case(HookCmd::OnHook, 0, "ONHOOK")]
    #[case(HookCmd::OffHook, 1, "OFFHOOK")]
    #[case(HookCmd::Wink, 2, "WINK")]
    #[case(HookCmd::Flash, 3, "FLASH")]
    #[case(HookCmd::Start, 4, "START")]
    #[case(HookCmd::Ring, 5, "RING")]
    #[case(HookCmd::RingOff, 6, "RINGOFF")]
    fn hook_values(#[case] c: HookCmd, #[case] v: i32, #[case] name: &str) {
        assert_eq!(c.raw(), v);
        assert_eq!(c.name(), name);
    }

    /// §6's table, every row.
    #[test]
    fn event_values() {
        let table: [(Event, i32, &str); 31] = [
            (Event::NONE, 0, "NONE"),
            (Event::ONHOOK, 1, "ONHOOK"),
            (Event::RINGOFFHOOK, 2, "RINGOFFHOOK"),
            (Event::WINKFLASH, 3, "WINKFLASH"),
            (Event::ALARM, 4, "ALARM"),
            (Event::NOALARM, 5, "NOALARM"),
            (Event::ABORT, 6, "ABORT"),
            (Event::OVERRUN, 7, "OVERRUN"),
            (Event::BADFCS, 8, "BADFCS"),
            (Event::DIALCOMPLETE, 9, "DIALCOMPLETE"),
            (Event::RINGERON, 10, "RINGERON"),
            (Event::RINGEROFF, 11, "RINGEROFF"),
            (Event::HOOKCOMPLETE, 12, "HOOKCOMPLETE"),
            (Event::BITSCHANGED, 13, "BITSCHANGED"),
            (Event::PULSE_START, 14, "PULSE_START"),
            (Event::TIMER_EXPIRED, 15, "TIMER_EXPIRED"),
            (Event::TIMER_PING, 16, "TIMER_PING"),
            (Event::POLARITY, 17, "POLARITY"),
            (Event::RINGBEGIN, 18, "RINGBEGIN"),
            (Event::EC_DISABLED, 19, "EC_DISABLED"),
            (Event::REMOVED, 20, "REMOVED"),
            (Event::NEONMWI_ACTIVE, 21, "NEONMWI_ACTIVE"),
            (Event::NEONMWI_INACTIVE, 22, "NEONMWI_INACTIVE"),
            (Event::TX_CED_DETECTED, 23, "TX_CED_DETECTED"),
            (Event::RX_CED_DETECTED, 24, "RX_CED_DETECTED"),
            (Event::TX_CNG_DETECTED, 25, "TX_CNG_DETECTED"),
            (Event::RX_CNG_DETECTED, 26, "RX_CNG_DETECTED"),
            (Event::EC_NLP_DISABLED, 27, "EC_NLP_DISABLED"),
            (Event::EC_NLP_ENABLED, 28, "EC_NLP_ENABLED"),
            (Event::READ_OVERRUN, 29, "READ_OVERRUN"),
            (Event::WRITE_UNDERRUN, 30, "WRITE_UNDERRUN"),
        ];
        for (e, v, name) in table {
            assert_eq!(e.raw(), v);
            assert_eq!(e.to_string(), name);
        }
        assert_eq!(Event::NAMED.len(), table.len());
    }

    #[test]
    fn event_flag_encodings() {
        assert_eq!(Event::PULSEDIGIT_FLAG, 0x1_0000);
        assert_eq!(Event::DTMFDOWN_FLAG, 0x2_0000);
        assert_eq!(Event::DTMFUP_FLAG, 0x4_0000);
        assert_eq!(Event::pulse_digit(b'5').raw(), 0x1_0035);
        assert_eq!(Event::dtmf_down(b'#').raw(), 0x2_0023);
        assert_eq!(Event::dtmf_up(b'*').raw(), 0x4_002a);
        assert_eq!(Event::pulse_digit(b'0').to_string(), "PULSEDIGIT('0')");
        assert_eq!(Event(0x2_0031).as_dtmf_down(), Some(b'1'));
        assert_eq!(Event(0x2_0031).as_pulse_digit(), None);
        assert_eq!(Event(99).to_string(), "UNKNOWN(0x63)");
        assert_eq!(ELAST, 500);
    }

    /// §7's table.
    #[test]
    fn alarm_bits() {
        let t = [
            (Alarms::RECOVER, 0x01),
            (Alarms::LOOPBACK, 0x02),
            (Alarms::YELLOW, 0x04),
            (Alarms::RED, 0x08),
            (Alarms::BLUE, 0x10),
            (Alarms::NOTOPEN, 0x20),
            (Alarms::LOS, 0x100),
            (Alarms::LFA, 0x200),
            (Alarms::LMFA, 0x400),
        ];
        for (a, v) in t {
            assert_eq!(a.bits(), v);
        }
        assert_eq!((Alarms::RED | Alarms::LOS).to_string(), "RED|LOS");
        assert_eq!(Alarms(0x8008).to_string(), "RED|0x8000");
        assert_eq!(Alarms::EMPTY.to_string(), "0");
    }

    /// §8's table, plus law, span type, maint and flag words (§1, §7).
    #[test]
    fn line_config_and_other_words() {
        let t = [
            (LineConfig::D4, 0x10),
            (LineConfig::ESF, 0x20),
            (LineConfig::AMI, 0x40),
            (LineConfig::B8ZS, 0x80),
            (LineConfig::CCS, 0x100),
            (LineConfig::HDB3, 0x200),
            (LineConfig::CRC4, 0x400),
            (LineConfig::NTTE, 0x800),
            (LineConfig::TERM, 0x1000),
            (LineConfig::NOTOPEN, 0x10000),
        ];
        for (c, v) in t {
            assert_eq!(c.bits(), v);
        }
        assert_eq!(LineConfig::COMPAT_MASK, 0x1ff0);
        assert_eq!((Law::Default.raw(), Law::Mulaw.raw(), Law::Alaw.raw()), (0, 1, 2));
        let spantypes: Vec<u32> = SpanType::ALL.iter().map(|t| t.raw()).collect();
        assert_eq!(spantypes, (0..=10).collect::<Vec<_>>());
        assert_eq!(SpanType::DigitalE1.name(), "E1");
        assert_eq!(MaintCmd::LoopUp.raw(), 3);
        assert_eq!(MaintCmd::FasDefect.raw(), 6);
        assert_eq!(MaintCmd::AlarmSim.raw(), 15);
        assert_eq!((SpanFlags::REGISTERED.0, SpanFlags::RUNNING.0, SpanFlags::RBS.0), (1, 2, 1 << 12));
        assert_eq!(ChanFlags::AUDIO.0, 1 << 9);
        assert_eq!(ChanFlags::RXOVERRUN.0, 1 << 23);
        assert_eq!((MAX_SPANS, MAX_CHANNELS, PSEUDO_CHAN_BASE, EVENT_QUEUE_DEPTH), (128, 1024, 0x8000, 64));
    }
}
