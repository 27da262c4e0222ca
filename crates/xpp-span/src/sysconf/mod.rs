//! DAHDI's `system.conf`: a parser and structural validator producing a typed
//! [`SystemConf`] (§13 "system.conf", §8 `span=`, §3 keywords).
//!
//! Format: one `keyword=value` per line, `#` starts a comment, blank lines are skipped,
//! keywords are case-insensitive, whitespace around tokens is ignored. Channel lists are
//! numbers and ranges (`1-4,7`) within 1..=1023; a channel appears in one signalling line
//! only.
//!
//! Keywords: `span`, `dynamic`; signalling lines `e&m`, `e&me1`, `fxsls`, `fxsgs`, `fxsks`,
//! `fxols`, `fxogs`, `fxoks`, `unused`, `clear`, `bchan`, `indclear`, `rawhdlc`, `dchan`,
//! `fcshdlc`, `hardhdlc`, `mtp2`, `nethdlc` (`list[:ifname]`), `cas`/`user` (`list:abcd`),
//! `dacs`/`dacsrbs` (`list:firstdest`); modifiers `alaw`, `mulaw`, `deflaw`,
//! `echocanceller=<name>,<list>`, `56k=<list>`; zones `loadzone=<cc>` (repeatable) and
//! `defaultzone=<cc>`; radio keys (kept as text).
//!
//! Analog signalling takes effect now; digital spans and channels are parsed and validated
//! and take effect with the digital spans. Checks against the hardware (signalling vs
//! sigcap) run later with [`SystemConf::check_sigcaps`]; [`SystemConf::apply`] validates a
//! configuration against running buses and applies it the way `dahdi_cfg` does ([`apply`]).
//!
//! Errors read `file:line:column: message`; all errors of a file are reported (up to
//! [`MAX_ERRORS`]). Input is bounded ([`MAX_INPUT_LEN`]); the parser never panics.

pub mod apply;
mod parse;
#[cfg(test)]
mod tests;

pub use apply::{Applied, ChannelSettings, Deferred};

use crate::dahdi::{Law, LineConfig, Sig, SigCap};
use std::collections::BTreeMap;
use std::fmt;

/// Largest input accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 1 << 20;
/// Most errors reported for one file.
pub const MAX_ERRORS: usize = 32;

/// A position in the file, 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Location {
    /// Line number.
    pub line: u32,
    /// Column number.
    pub column: u32,
}

/// A parsed and structurally valid `system.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemConf {
    /// `span=` lines by span number.
    pub spans: BTreeMap<u32, SpanConf>,
    /// `dynamic=` lines in file order.
    pub dynamic_spans: Vec<DynamicSpanConf>,
    /// Configured channels by channel number.
    pub channels: BTreeMap<u32, ChannelConf>,
    /// `loadzone=` (and `defaultzone=`) zones, in file order, without duplicates.
    pub zones: Vec<String>,
    /// `defaultzone=`.
    pub default_zone: Option<String>,
    /// Radio keys, kept as text.
    pub radio: Vec<RadioSetting>,
}

/// Framing of a `span=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// T1 D4.
    D4,
    /// T1 ESF.
    Esf,
    /// E1 CAS.
    Cas,
    /// E1 / BRI CCS.
    Ccs,
}

/// Line coding of a `span=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// AMI.
    Ami,
    /// T1 B8ZS.
    B8zs,
    /// E1 HDB3.
    Hdb3,
}

/// One `span=<num>,<timing>,<lbo>,<framing>,<coding>[,crc4][,yellow][,nt|te][,term]` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanConf {
    /// Span number (1..=128).
    pub span: u32,
    /// Timing priority (0 = never a clock source, 1 first choice...).
    pub timing: u8,
    /// Line build-out (0..=7).
    pub lbo: u8,
    /// Framing.
    pub framing: Framing,
    /// Line coding.
    pub coding: Coding,
    /// `crc4`.
    pub crc4: bool,
    /// `yellow` (NOTOPEN line bit).
    pub yellow: bool,
    /// `nt` (Some(true)) / `te` (Some(false)).
    pub nt: Option<bool>,
    /// `term`.
    pub term: bool,
    /// Where the line is.
    pub at: Location,
}

impl SpanConf {
    /// The line setting of a PRI port (framing, line code, CRC-4).
    pub fn line_setup(&self) -> xpp_chan::pri::LineSetup {
        use xpp_chan::pri::{Framing as F, LineCode as C, LineSetup};
        LineSetup {
            framing: match self.framing {
                Framing::D4 => F::D4,
                Framing::Esf => F::Esf,
                Framing::Cas => F::Cas,
                Framing::Ccs => F::Ccs,
            },
            code: match self.coding {
                Coding::Ami => C::Ami,
                Coding::B8zs => C::B8zs,
                Coding::Hdb3 => C::Hdb3,
            },
            crc4: self.crc4,
            lbo: self.lbo,
        }
    }

    /// The SPANCONFIG `lineconfig` word (§8).
    pub fn lineconfig(&self) -> LineConfig {
        let mut c = match self.framing {
            Framing::D4 => LineConfig::D4,
            Framing::Esf => LineConfig::ESF,
            Framing::Cas => LineConfig::EMPTY,
            Framing::Ccs => LineConfig::CCS,
        };
        c |= match self.coding {
            Coding::Ami => LineConfig::AMI,
            Coding::B8zs => LineConfig::B8ZS,
            Coding::Hdb3 => LineConfig::HDB3,
        };
        if self.crc4 {
            c |= LineConfig::CRC4;
        }
        if self.yellow {
            c |= LineConfig::NOTOPEN;
        }
        if self.nt == Some(true) {
            c |= LineConfig::NTTE;
        }
        if self.term {
            c |= LineConfig::TERM;
        }
        c
    }
}

/// One `dynamic=driver,address,numchans,timing` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicSpanConf {
    /// Driver name (`eth`, `loc`, ...).
    pub driver: String,
    /// Driver-specific address.
    pub address: String,
    /// Number of channels (1..=1023).
    pub numchans: u32,
    /// Timing priority (0..=255).
    pub timing: u8,
    /// Where the line is.
    pub at: Location,
}

/// One configured channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelConf {
    /// Signalling (SLAVE for the non-first members of a bundle).
    pub sig: Sig,
    /// The keyword that configured it, lower case (`fxoks`, `bchan`, ...).
    pub keyword: &'static str,
    /// Bundle master for SLAVE members.
    pub master: Option<u32>,
    /// CAS idle bits (`cas`/`user`), ABCD in the low nibble.
    pub idlebits: Option<u8>,
    /// DACS destination channel (`dacs`/`dacsrbs`).
    pub dacs_dest: Option<u32>,
    /// Network interface name (`nethdlc`).
    pub netdev: Option<String>,
    /// Law (`alaw=`/`mulaw=`/`deflaw=`; default otherwise).
    pub law: Law,
    /// Echo canceller factory (`echocanceller=`).
    pub echocanceller: Option<String>,
    /// HDLC rate 56k (`56k=`).
    pub hdlc56: bool,
    /// Where the signalling line is.
    pub at: Location,
}

impl ChannelConf {
    /// Whether this is analog signalling (takes effect on the analog modules now).
    pub fn is_analog(&self) -> bool {
        self.sig.is_fxs() || self.sig.is_fxo()
    }
}

/// A radio key (`rxcdtype=`, ...), kept as text: the Astribank has no radio ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RadioSetting {
    /// The keyword, lower case.
    pub key: String,
    /// The value as written (trimmed).
    pub value: String,
    /// Where the line is.
    pub at: Location,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfErrorKind {
    /// The input exceeds [`MAX_INPUT_LEN`].
    #[error("file too large ({0} bytes; at most {MAX_INPUT_LEN})")]
    TooLarge(usize),
    /// Reading stopped past [`MAX_INPUT_LEN`]: the file (a pipe, a device) held more, how much
    /// is not known.
    #[error("file too large (more than {MAX_INPUT_LEN} bytes)")]
    TooLargeRead,
    /// Reading the file failed.
    #[error("cannot read: {0}")]
    Io(String),
    /// A line without `=`.
    #[error("expected keyword=value")]
    MissingEquals,
    /// Unknown keyword.
    #[error("unknown keyword '{0}'")]
    UnknownKeyword(String),
    /// A value is missing.
    #[error("empty value")]
    EmptyValue,
    /// Something else was expected here.
    #[error("expected {0}")]
    Expected(&'static str),
    /// A number outside its range.
    #[error("{what} must be {min}..={max}")]
    OutOfRange {
        /// What the number is.
        what: &'static str,
        /// Smallest allowed.
        min: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A range whose end is before its start.
    #[error("range end {end} is below its start {start}")]
    BackwardsRange {
        /// Start.
        start: u32,
        /// End.
        end: u32,
    },
    /// A channel in two signalling lines (or twice in one).
    #[error("channel {chan} already configured on line {first_line}")]
    ChannelTwice {
        /// Channel.
        chan: u32,
        /// Line of the first definition.
        first_line: u32,
    },
    /// A span configured twice.
    #[error("span {span} already configured on line {first_line}")]
    SpanTwice {
        /// Span.
        span: u32,
        /// Line of the first definition.
        first_line: u32,
    },
    /// A modifier for a channel no signalling line configures.
    #[error("{keyword}: channel {chan} has no signalling line")]
    NotConfigured {
        /// Channel.
        chan: u32,
        /// The modifier keyword.
        keyword: &'static str,
    },
    /// `56k` on a channel that is not clear-derived.
    #[error("56k: channel {chan} is {sig}, not a clear/HDLC channel")]
    Not56k {
        /// Channel.
        chan: u32,
        /// Its signalling.
        sig: Sig,
    },
    /// Contradicting `span=` options.
    #[error("{0}")]
    Incompatible(&'static str),
    /// `defaultzone=` given twice.
    #[error("defaultzone already set on line {0}")]
    DefaultZoneTwice(u32),
    /// A trailing backslash.
    #[error("line continuation is not supported in system.conf")]
    Continuation,
    /// A channel's signalling is not in its sigcap.
    #[error("channel {chan}: signalling {sig} not supported by the port (sigcap {sigcap})")]
    NotPermitted {
        /// Channel.
        chan: u32,
        /// Configured signalling.
        sig: Sig,
        /// The port's sigcap.
        sigcap: SigCap,
    },
    /// A configured channel that no span provides.
    #[error("channel {0} does not exist")]
    NoSuchChannel(u32),
    /// A `span=` line for a span that does not exist.
    #[error("span {0} does not exist")]
    NoSuchSpan(u32),
    /// A `span=` line for an analog span.
    #[error("span {0} is not a digital span")]
    NotDigitalSpan(u32),
    /// A `span=` line the span refuses (a keyword its protocol does not take).
    #[error("span {span}: {reason}")]
    SpanRefused {
        /// Span.
        span: u32,
        /// Why.
        reason: String,
    },
    /// A digital-only setting on a channel of an analog span.
    #[error("{keyword}: channel {chan} is not on a digital span")]
    NotDigitalChannel {
        /// Channel.
        chan: u32,
        /// The keyword.
        keyword: &'static str,
    },
    /// The driver refused a valid setting (device removed, ...).
    #[error("channel {chan}: {reason}")]
    Refused {
        /// Channel.
        chan: u32,
        /// The driver's reason.
        reason: String,
    },
}

/// One error with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    /// File name as given.
    pub file: String,
    /// Where.
    pub at: Location,
    /// What.
    pub kind: ConfErrorKind,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.at.line, self.at.column, self.kind)
    }
}

impl std::error::Error for ConfError {}

/// All errors of one file (at least one; at most [`MAX_ERRORS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfErrors(pub Vec<ConfError>);

impl fmt::Display for ConfErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfErrors {}

impl ConfErrors {
    /// The first error.
    pub fn first(&self) -> Option<&ConfError> {
        self.0.first()
    }
}

/// Parses `text` as a `system.conf`; `file` names it in errors.
pub fn parse_str(file: &str, text: &str) -> Result<SystemConf, ConfErrors> {
    parse::parse(file, text)
}

/// Reads and parses a file (the one IO convenience of this crate).
///
/// At most [`MAX_INPUT_LEN`] + 1 bytes are read, whatever the file is (a pipe or a device
/// has no size to check beforehand): more is [`ConfErrorKind::TooLargeRead`].
pub fn parse_file(path: &std::path::Path) -> Result<SystemConf, ConfErrors> {
    let name = path.display().to_string();
    let err =
        |kind| ConfErrors(vec![ConfError { file: name.clone(), at: Location { line: 0, column: 0 }, kind }]);
    let io = |e: std::io::Error| err(ConfErrorKind::Io(e.to_string()));
    let file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.len() > MAX_INPUT_LEN as u64 {
        return Err(err(ConfErrorKind::TooLarge(meta.len().min(usize::MAX as u64) as usize)));
    }
    let bytes = match xpp_proto::input::read_capped(file, MAX_INPUT_LEN) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
            return Err(err(ConfErrorKind::TooLargeRead));
        }
        Err(e) => return Err(io(e)),
    };
    let text = String::from_utf8(bytes).map_err(|_| {
        io(std::io::Error::new(std::io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
    })?;
    parse_str(&name, &text)
}

impl SystemConf {
    /// The zones to load: the configured ones, or `["us"]` if none (dahdi_cfg's rule, §2).
    pub fn effective_zones(&self) -> Vec<String> {
        if self.zones.is_empty() { vec!["us".to_owned()] } else { self.zones.clone() }
    }

    /// Checks each configured channel against the hardware: `sigcap(chan)` is the port's
    /// sigcap, or `None` if no span provides that channel. Errors point at the channel's
    /// line; `file` names the file.
    pub fn check_sigcaps(
        &self,
        file: &str,
        sigcap: impl Fn(u32) -> Option<SigCap>,
    ) -> Result<(), ConfErrors> {
        let mut errors = Vec::new();
        for (&chan, c) in &self.channels {
            let kind = match sigcap(chan) {
                None => Some(ConfErrorKind::NoSuchChannel(chan)),
                Some(cap) if c.sig != Sig::Slave && !cap.permits(c.sig) => {
                    Some(ConfErrorKind::NotPermitted { chan, sig: c.sig, sigcap: cap })
                }
                Some(_) => None,
            };
            if let Some(kind) = kind
                && errors.len() < MAX_ERRORS
            {
                errors.push(ConfError { file: file.to_owned(), at: c.at, kind });
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ConfErrors(errors)) }
    }
}
