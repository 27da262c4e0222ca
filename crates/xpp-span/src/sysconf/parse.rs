//! The `system.conf` line parser and the whole-file checks.

use super::{
    ChannelConf, Coding, ConfError, ConfErrorKind, ConfErrors, DynamicSpanConf, Framing, Location,
    MAX_ERRORS, MAX_INPUT_LEN, RadioSetting, SpanConf, SystemConf,
};
use crate::dahdi::{Law, MAX_CONF_CHANNEL, MAX_SPANS, Sig};
use std::collections::BTreeMap;

type Res<T> = Result<T, (usize, ConfErrorKind)>;

/// Radio keywords of dahdi_cfg, kept as text.
// Decision: the reference only says "radio keys"; these are dahdi_cfg's radio keyword names.
// They are accepted and stored without validation (the Astribank has no radio ports).
const RADIO_KEYS: &[&str] = &[
    "channel",
    "channels",
    "rxcdtype",
    "rxsqtype",
    "txcdtype",
    "rxgain",
    "txgain",
    "rxtone",
    "rxtonegroup",
    "txtone",
    "debouncetime",
    "bursttime",
    "exttone",
    "invertcor",
    "corthresh",
];

/// How a signalling keyword configures its channels.
#[derive(Clone, Copy)]
enum Suffix {
    /// Plain list.
    None,
    /// `list:abcd` idle bits (cas, user).
    IdleBits,
    /// `list:firstdest` (dacs, dacsrbs).
    DacsDest,
    /// `list[:ifname]` (nethdlc).
    Netdev,
}

/// (keyword, signalling, bundled, suffix)
const SIG_KEYWORDS: &[(&str, Sig, bool, Suffix)] = &[
    ("e&m", Sig::Em, false, Suffix::None),
    ("e&me1", Sig::EmE1, false, Suffix::None),
    ("fxsls", Sig::Fxsls, false, Suffix::None),
    ("fxsgs", Sig::Fxsgs, false, Suffix::None),
    ("fxsks", Sig::Fxsks, false, Suffix::None),
    ("fxols", Sig::Fxols, false, Suffix::None),
    ("fxogs", Sig::Fxogs, false, Suffix::None),
    ("fxoks", Sig::Fxoks, false, Suffix::None),
    ("unused", Sig::None, false, Suffix::None),
    ("clear", Sig::Clear, true, Suffix::None),
    ("bchan", Sig::Clear, false, Suffix::None),
    ("indclear", Sig::Clear, false, Suffix::None),
    ("rawhdlc", Sig::HdlcRaw, true, Suffix::None),
    ("dchan", Sig::HdlcFcs, false, Suffix::None),
    ("fcshdlc", Sig::HdlcFcs, true, Suffix::None),
    ("hardhdlc", Sig::HardHdlc, false, Suffix::None),
    ("mtp2", Sig::Mtp2, false, Suffix::None),
    ("nethdlc", Sig::HdlcNet, true, Suffix::Netdev),
    ("cas", Sig::Cas, false, Suffix::IdleBits),
    ("user", Sig::Cas, false, Suffix::IdleBits),
    ("dacs", Sig::Dacs, false, Suffix::DacsDest),
    ("dacsrbs", Sig::DacsRbs, false, Suffix::DacsDest),
];

/// A modifier line, checked after the whole file is read.
enum Modifier {
    Law(Law),
    Echo(String),
    Hdlc56,
}

struct Pending {
    keyword: &'static str,
    modifier: Modifier,
    chans: Vec<(u32, Location)>,
}

/// A cursor over one value, reporting byte offsets within the line.
struct Cur<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cur<'a> {
    fn skip_ws(&mut self) {
        while let Some(c) = self.s[self.pos..].chars().next() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.s[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    fn expect_end(&mut self) -> Res<()> {
        if self.at_end() { Ok(()) } else { Err((self.pos, ConfErrorKind::Expected("end of line"))) }
    }

    fn number(&mut self, what: &'static str, min: u32, max: u32) -> Res<u32> {
        self.skip_ws();
        let start = self.pos;
        let digits = self.s[start..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err((start, ConfErrorKind::Expected(what)));
        }
        self.pos += digits;
        let v = self.s[start..self.pos].parse::<u32>().ok().filter(|v| (min..=max).contains(v));
        v.ok_or((start, ConfErrorKind::OutOfRange { what, min, max }))
    }

    /// A word: up to the next `,` or `:` (or end), trimmed; `Err` if empty.
    fn word(&mut self, what: &'static str) -> Res<(usize, &'a str)> {
        self.until(what, &[',', ':'])
    }

    /// A field: up to the next `,` (or end), trimmed; `Err` if empty.
    fn field(&mut self, what: &'static str) -> Res<(usize, &'a str)> {
        self.until(what, &[','])
    }

    fn until(&mut self, what: &'static str, stops: &[char]) -> Res<(usize, &'a str)> {
        self.skip_ws();
        let start = self.pos;
        let len = self.s[start..].find(stops).unwrap_or(self.s.len() - start);
        self.pos += len;
        let w = self.s[start..self.pos].trim_end();
        if w.is_empty() { Err((start, ConfErrorKind::Expected(what))) } else { Ok((start, w)) }
    }

    /// `item(,item)*` with `item = n | n-m`, 1..=1023; returns (channel, offset of its item).
    fn chan_list(&mut self) -> Res<Vec<(u32, usize)>> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            let at = self.pos;
            let a = self.number("channel number", 1, MAX_CONF_CHANNEL)?;
            let b = if self.eat('-') { self.number("channel number", 1, MAX_CONF_CHANNEL)? } else { a };
            if b < a {
                return Err((at, ConfErrorKind::BackwardsRange { start: a, end: b }));
            }
            out.extend((a..=b).map(|c| (c, at)));
            if !self.eat(',') {
                return Ok(out);
            }
        }
    }
}

fn column(line: &str, byte: usize) -> u32 {
    let byte = byte.min(line.len());
    // Count characters up to the byte offset (offsets always sit on char boundaries).
    line.get(..byte).map_or(byte, |p| p.chars().count()) as u32 + 1
}

struct Parser<'f> {
    file: &'f str,
    conf: SystemConf,
    errors: Vec<ConfError>,
    chan_lines: BTreeMap<u32, u32>,
    pending: Vec<Pending>,
    default_zone_line: Option<u32>,
}

impl Parser<'_> {
    fn error(&mut self, at: Location, kind: ConfErrorKind) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(ConfError { file: self.file.to_owned(), at, kind });
        }
    }

    fn line(&mut self, lineno: u32, raw: &str) {
        let text = raw.find('#').map_or(raw, |i| &raw[..i]);
        let text = text.trim_end();
        let first = text.len() - text.trim_start().len();
        if first == text.len() {
            return;
        }
        let loc = |byte: usize| Location { line: lineno, column: column(raw, byte) };
        if text.ends_with('\\') {
            self.error(loc(text.len() - 1), ConfErrorKind::Continuation);
            return;
        }
        let Some(eq) = text.find('=') else {
            self.error(loc(first), ConfErrorKind::MissingEquals);
            return;
        };
        let key = text[first..eq].trim_end().to_ascii_lowercase();
        let mut cur = Cur { s: text, pos: eq + 1 };
        if cur.at_end() {
            self.error(loc(eq + 1), ConfErrorKind::EmptyValue);
            return;
        }
        let at = loc(first);
        if let Err((byte, kind)) = self.keyword(&key, at, &mut cur, lineno, raw) {
            self.error(loc(byte), kind);
        }
    }

    fn keyword(&mut self, key: &str, at: Location, cur: &mut Cur<'_>, lineno: u32, raw: &str) -> Res<()> {
        let loc = |byte: usize| Location { line: lineno, column: column(raw, byte) };
        if let Some(&(kw, sig, bundled, suffix)) = SIG_KEYWORDS.iter().find(|(k, ..)| *k == key) {
            return self.sig_line(kw, sig, bundled, suffix, at, cur, &loc);
        }
        match key {
            "span" => self.span_line(at, cur),
            "dynamic" => {
                let (_, driver) = cur.word("driver name")?;
                expect(cur, ',')?;
                let (_, address) = cur.field("address")?;
                expect(cur, ',')?;
                let numchans = cur.number("number of channels", 1, MAX_CONF_CHANNEL)?;
                expect(cur, ',')?;
                let timing = cur.number("timing priority", 0, 255)? as u8;
                cur.expect_end()?;
                self.conf.dynamic_spans.push(DynamicSpanConf {
                    driver: driver.to_owned(),
                    address: address.to_owned(),
                    numchans,
                    timing,
                    at,
                });
                Ok(())
            }
            "alaw" | "mulaw" | "deflaw" | "56k" => {
                let (keyword, modifier) = match key {
                    "alaw" => ("alaw", Modifier::Law(Law::Alaw)),
                    "mulaw" => ("mulaw", Modifier::Law(Law::Mulaw)),
                    "deflaw" => ("deflaw", Modifier::Law(Law::Default)),
                    _ => ("56k", Modifier::Hdlc56),
                };
                let chans = cur.chan_list()?;
                cur.expect_end()?;
                let chans = chans.into_iter().map(|(c, b)| (c, loc(b))).collect();
                self.pending.push(Pending { keyword, modifier, chans });
                Ok(())
            }
            "echocanceller" => {
                let (nat, name) = cur.word("echo canceller name")?;
                if name.len() > 15 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err((
                        nat,
                        ConfErrorKind::Expected("an echo canceller name (at most 15 letters/digits)"),
                    ));
                }
                expect(cur, ',')?;
                let chans = cur.chan_list()?;
                cur.expect_end()?;
                let chans = chans.into_iter().map(|(c, b)| (c, loc(b))).collect();
                self.pending.push(Pending {
                    keyword: "echocanceller",
                    modifier: Modifier::Echo(name.to_ascii_lowercase()),
                    chans,
                });
                Ok(())
            }
            "loadzone" | "defaultzone" => {
                let (zat, zone) = cur.word("tone zone")?;
                cur.expect_end()?;
                if zone.len() > 39
                    || !zone.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err((zat, ConfErrorKind::Expected("a tone zone name such as 'us'")));
                }
                let zone = zone.to_ascii_lowercase();
                if key == "defaultzone" {
                    if let Some(first) = self.default_zone_line {
                        return Err((zat, ConfErrorKind::DefaultZoneTwice(first)));
                    }
                    self.default_zone_line = Some(lineno);
                    self.conf.default_zone = Some(zone.clone());
                }
                // Decision: defaultzone also loads its zone, so "defaultzone=us" alone works.
                if !self.conf.zones.contains(&zone) {
                    self.conf.zones.push(zone);
                }
                Ok(())
            }
            _ if RADIO_KEYS.contains(&key) => {
                let value = cur.s[cur.pos..].trim().to_owned();
                self.conf.radio.push(RadioSetting { key: key.to_owned(), value, at });
                Ok(())
            }
            _ => Err((raw.len() - raw.trim_start().len(), ConfErrorKind::UnknownKeyword(key.to_owned()))),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn sig_line(
        &mut self,
        keyword: &'static str,
        sig: Sig,
        bundled: bool,
        suffix: Suffix,
        at: Location,
        cur: &mut Cur<'_>,
        loc: &dyn Fn(usize) -> Location,
    ) -> Res<()> {
        let chans = cur.chan_list()?;
        let (mut idlebits, mut dacs_dest, mut netdev) = (None, None, None);
        match suffix {
            Suffix::None => {}
            Suffix::IdleBits => {
                expect(cur, ':')?;
                let (bat, bits) = cur.word("ABCD idle bits")?;
                if bits.len() != 4 || !bits.bytes().all(|b| b == b'0' || b == b'1') {
                    return Err((bat, ConfErrorKind::Expected("four idle bits ABCD such as 1101")));
                }
                idlebits = Some(bits.bytes().fold(0u8, |acc, b| (acc << 1) | (b - b'0')));
            }
            Suffix::DacsDest => {
                expect(cur, ':')?;
                let dat = {
                    cur.skip_ws();
                    cur.pos
                };
                let first = cur.number("destination channel", 1, MAX_CONF_CHANNEL)?;
                let span = chans.len() as u32;
                if first.saturating_add(span - 1) > MAX_CONF_CHANNEL {
                    return Err((
                        dat,
                        ConfErrorKind::OutOfRange {
                            what: "last destination channel",
                            min: 1,
                            max: MAX_CONF_CHANNEL,
                        },
                    ));
                }
                dacs_dest = Some(first);
            }
            Suffix::Netdev => {
                if cur.eat(':') {
                    let (nat, name) = cur.word("interface name")?;
                    if name.len() > 15 || name.contains(char::is_whitespace) {
                        return Err((
                            nat,
                            ConfErrorKind::Expected("an interface name of at most 15 characters"),
                        ));
                    }
                    netdev = Some(name.to_owned());
                }
            }
        }
        cur.expect_end()?;
        let master = bundled.then(|| chans.first().map(|&(c, _)| c)).flatten();
        for (i, &(chan, byte)) in chans.iter().enumerate() {
            if let Some(&first_line) = self.chan_lines.get(&chan) {
                self.error(loc(byte), ConfErrorKind::ChannelTwice { chan, first_line });
                continue;
            }
            self.chan_lines.insert(chan, at.line);
            // Decision: a bundle is a whole line's list: its first channel is the master,
            // the others are SLAVE members pointing at it.
            let is_slave = bundled && i > 0;
            self.conf.channels.insert(
                chan,
                ChannelConf {
                    sig: if is_slave { Sig::Slave } else { sig },
                    keyword,
                    master: if is_slave { master } else { None },
                    idlebits,
                    dacs_dest: dacs_dest.map(|d| d + i as u32),
                    netdev: netdev.clone(),
                    law: Law::Default,
                    echocanceller: None,
                    hdlc56: false,
                    at,
                },
            );
        }
        Ok(())
    }

    fn span_line(&mut self, at: Location, cur: &mut Cur<'_>) -> Res<()> {
        let span_at = {
            cur.skip_ws();
            cur.pos
        };
        let span = cur.number("span number", 1, MAX_SPANS)?;
        expect(cur, ',')?;
        let timing = cur.number("timing priority", 0, 255)? as u8;
        expect(cur, ',')?;
        let lbo = cur.number("line build-out", 0, 7)? as u8;
        expect(cur, ',')?;
        let (fat, framing) = cur.word("framing (d4, esf, cas or ccs)")?;
        let framing = match framing.to_ascii_lowercase().as_str() {
            "d4" => Framing::D4,
            "esf" => Framing::Esf,
            "cas" => Framing::Cas,
            "ccs" => Framing::Ccs,
            _ => return Err((fat, ConfErrorKind::Expected("framing (d4, esf, cas or ccs)"))),
        };
        expect(cur, ',')?;
        let (cat, coding) = cur.word("coding (ami, b8zs or hdb3)")?;
        let coding = match coding.to_ascii_lowercase().as_str() {
            "ami" => Coding::Ami,
            "b8zs" => Coding::B8zs,
            "hdb3" => Coding::Hdb3,
            _ => return Err((cat, ConfErrorKind::Expected("coding (ami, b8zs or hdb3)"))),
        };
        let t1 = matches!(framing, Framing::D4 | Framing::Esf);
        // Decision: T1 framing with E1 coding (and the reverse) is refused structurally.
        if t1 && coding == Coding::Hdb3 {
            return Err((cat, ConfErrorKind::Incompatible("hdb3 is an E1 coding; d4/esf are T1 framings")));
        }
        if !t1 && coding == Coding::B8zs {
            return Err((
                cat,
                ConfErrorKind::Incompatible("b8zs is a T1 coding; cas/ccs are E1/BRI framings"),
            ));
        }
        let mut conf = SpanConf {
            span,
            timing,
            lbo,
            framing,
            coding,
            crc4: false,
            yellow: false,
            nt: None,
            term: false,
            at,
        };
        while cur.eat(',') {
            let (oat, opt) = cur.word("span option (crc4, yellow, nt, te, term)")?;
            match opt.to_ascii_lowercase().as_str() {
                "crc4" if t1 => {
                    return Err((oat, ConfErrorKind::Incompatible("crc4 needs E1 framing (cas or ccs)")));
                }
                "crc4" => conf.crc4 = true,
                "yellow" => conf.yellow = true,
                "nt" | "te" if conf.nt.is_some() => {
                    return Err((oat, ConfErrorKind::Incompatible("nt/te given twice")));
                }
                "nt" => conf.nt = Some(true),
                "te" => conf.nt = Some(false),
                "term" => conf.term = true,
                _ => return Err((oat, ConfErrorKind::Expected("span option (crc4, yellow, nt, te, term)"))),
            }
        }
        cur.expect_end()?;
        if let Some(first) = self.conf.spans.get(&span) {
            return Err((span_at, ConfErrorKind::SpanTwice { span, first_line: first.at.line }));
        }
        self.conf.spans.insert(span, conf);
        Ok(())
    }

    fn finish(mut self) -> Result<SystemConf, ConfErrors> {
        // Decision: modifiers may come before or after the signalling line, must name
        // configured channels, and the last one of a kind wins.
        for p in std::mem::take(&mut self.pending) {
            for (chan, at) in p.chans {
                let Some(c) = self.conf.channels.get_mut(&chan) else {
                    self.error(at, ConfErrorKind::NotConfigured { chan, keyword: p.keyword });
                    continue;
                };
                match &p.modifier {
                    Modifier::Law(l) => c.law = *l,
                    Modifier::Echo(name) => c.echocanceller = Some(name.clone()),
                    Modifier::Hdlc56 if !c.sig.is_clear_derived() && c.sig != Sig::Slave => {
                        let sig = c.sig;
                        self.error(at, ConfErrorKind::Not56k { chan, sig });
                    }
                    Modifier::Hdlc56 => c.hdlc56 = true,
                }
            }
        }
        if self.errors.is_empty() {
            Ok(self.conf)
        } else {
            self.errors.sort_by_key(|e| e.at);
            Err(ConfErrors(self.errors))
        }
    }
}

fn expect(cur: &mut Cur<'_>, c: char) -> Res<()> {
    if cur.eat(c) {
        Ok(())
    } else {
        cur.skip_ws();
        Err((cur.pos, ConfErrorKind::Expected(if c == ',' { "','" } else { "':'" })))
    }
}

pub(super) fn parse(file: &str, text: &str) -> Result<SystemConf, ConfErrors> {
    if text.len() > MAX_INPUT_LEN {
        let at = Location { line: 1, column: 1 };
        return Err(ConfErrors(vec![ConfError {
            file: file.to_owned(),
            at,
            kind: ConfErrorKind::TooLarge(text.len()),
        }]));
    }
    let mut p = Parser {
        file,
        conf: SystemConf::default(),
        errors: Vec::new(),
        chan_lines: BTreeMap::new(),
        pending: Vec::new(),
        default_zone_line: None,
    };
    for (i, raw) in text.lines().enumerate() {
        p.line(i as u32 + 1, raw);
    }
    p.finish()
}
