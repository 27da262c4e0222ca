//! The `system.conf` line parser and the whole-file checks.

use super::{
    ChannelConf, Coding, ConfError, ConfErrorKind, ConfErrors, DynamicSpanConf, Framing, Location,
    MAX_ERRORS, MAX_INPUT_LEN, RadioSetting, SpanConf, SystemConf,
};
use crate::dahdi::{Law, MAX_CHANNELS, MAX_CONF_CHANNEL, MAX_SPANS, Sig};
use std::cell::Cell;
use std::collections::BTreeSet;

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
    items: Vec<(Item, Location)>,
}

/// One channel-list item `first-last` (`n` is `n-n`); `byte` is where it starts in the line.
#[derive(Clone, Copy)]
struct Item {
    first: u32,
    last: u32,
    byte: usize,
}

impl Item {
    fn set(&self) -> ChanSet {
        ChanSet::range(self.first, self.last)
    }

    /// Channels in the item (at least 1).
    fn count(&self) -> u32 {
        self.last - self.first + 1
    }
}

const WORDS: usize = (MAX_CHANNELS as usize).div_ceil(64);

/// A set of channel numbers `0..MAX_CHANNELS`, one bit each: ranges are never expanded into
/// lists, so a file naming `1-1023` many times costs a few words per item, not a channel each.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct ChanSet([u64; WORDS]);

impl ChanSet {
    /// `first..=last` (both `< MAX_CHANNELS`).
    fn range(first: u32, last: u32) -> Self {
        let mut s = Self::default();
        for (w, word) in s.0.iter_mut().enumerate() {
            let (lo, hi) = (w as u32 * 64, w as u32 * 64 + 63);
            if last < lo || first > hi {
                continue;
            }
            let from = first.max(lo) - lo;
            let to = last.min(hi) - lo;
            *word = (u64::MAX >> (63 - to)) & (u64::MAX << from);
        }
        s
    }

    fn contains(&self, chan: u32) -> bool {
        self.0.get(chan as usize / 64).is_some_and(|w| w & (1 << (chan % 64)) != 0)
    }

    fn insert(&mut self, chan: u32) {
        if let Some(w) = self.0.get_mut(chan as usize / 64) {
            *w |= 1 << (chan % 64);
        }
    }

    fn and(mut self, other: &Self) -> Self {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a &= b);
        self
    }

    fn minus(mut self, other: &Self) -> Self {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a &= !b);
        self
    }

    fn union(&mut self, other: &Self) {
        self.0.iter_mut().zip(other.0).for_each(|(a, b)| *a |= b);
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// The channels, ascending.
    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros();
                    bits &= bits - 1;
                    w as u32 * 64 + b
                })
            })
        })
    }
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

    /// `item(,item)*` with `item = n | n-m`, 1..=1023; the items as written (one per item,
    /// so the list is bounded by the line's length).
    fn chan_list(&mut self) -> Res<Vec<Item>> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            let at = self.pos;
            let a = self.number("channel number", 1, MAX_CONF_CHANNEL)?;
            let b = if self.eat('-') { self.number("channel number", 1, MAX_CONF_CHANNEL)? } else { a };
            if b < a {
                return Err((at, ConfErrorKind::BackwardsRange { start: a, end: b }));
            }
            out.push(Item { first: a, last: b, byte: at });
            if !self.eat(',') {
                return Ok(out);
            }
        }
    }
}

/// Byte offsets of one line to 1-based character columns, counted incrementally: asking for
/// offsets in increasing order costs one pass over the line in all (a long line with many
/// errors or modifier items must not be recounted from its start each time).
struct Columns<'a> {
    line: &'a str,
    /// The last offset asked for and its column.
    last: Cell<(usize, u32)>,
}

impl<'a> Columns<'a> {
    fn new(line: &'a str) -> Self {
        Self { line, last: Cell::new((0, 1)) }
    }

    fn column(&self, byte: usize) -> u32 {
        let byte = byte.min(self.line.len());
        let (mut from, mut col) = self.last.get();
        if byte < from {
            (from, col) = (0, 1);
        }
        // Count characters up to the byte offset (offsets always sit on char boundaries).
        match self.line.get(from..byte) {
            Some(p) => {
                let col = col + p.chars().count() as u32;
                self.last.set((byte, col));
                col
            }
            None => byte as u32 + 1,
        }
    }

    fn at(&self, line: u32, byte: usize) -> Location {
        Location { line, column: self.column(byte) }
    }
}

struct Parser<'f> {
    file: &'f str,
    conf: SystemConf,
    errors: Vec<ConfError>,
    /// Channels configured by a signalling line so far.
    configured: ChanSet,
    /// The line that configured each channel of `configured`.
    chan_lines: [u32; MAX_CHANNELS as usize],
    pending: Vec<Pending>,
    default_zone_line: Option<u32>,
    /// `conf.zones` as a set, so a file of many zones is not searched once per line.
    zones: BTreeSet<String>,
}

impl Parser<'_> {
    fn error(&mut self, at: Location, kind: ConfErrorKind) {
        if !self.full() {
            self.errors.push(ConfError { file: self.file.to_owned(), at, kind });
        }
    }

    /// Whether [`MAX_ERRORS`] are recorded: later errors are dropped, so their places are
    /// not computed.
    fn full(&self) -> bool {
        self.errors.len() >= MAX_ERRORS
    }

    fn line(&mut self, lineno: u32, raw: &str) {
        let text = raw.find('#').map_or(raw, |i| &raw[..i]);
        let text = text.trim_end();
        let first = text.len() - text.trim_start().len();
        if first == text.len() {
            return;
        }
        let cols = Columns::new(raw);
        if text.ends_with('\\') {
            self.error(cols.at(lineno, text.len() - 1), ConfErrorKind::Continuation);
            return;
        }
        let Some(eq) = text.find('=') else {
            self.error(cols.at(lineno, first), ConfErrorKind::MissingEquals);
            return;
        };
        let key = text[first..eq].trim_end().to_ascii_lowercase();
        let mut cur = Cur { s: text, pos: eq + 1 };
        if cur.at_end() {
            self.error(cols.at(lineno, eq + 1), ConfErrorKind::EmptyValue);
            return;
        }
        let at = cols.at(lineno, first);
        if let Err((byte, kind)) = self.keyword(&key, at, &mut cur, lineno, &cols)
            && !self.full()
        {
            self.error(cols.at(lineno, byte), kind);
        }
    }

    fn keyword(
        &mut self,
        key: &str,
        at: Location,
        cur: &mut Cur<'_>,
        lineno: u32,
        cols: &Columns<'_>,
    ) -> Res<()> {
        let raw = cols.line;
        if let Some(&(kw, sig, bundled, suffix)) = SIG_KEYWORDS.iter().find(|(k, ..)| *k == key) {
            return self.sig_line(kw, sig, bundled, suffix, at, cur, cols);
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
                let items = cur.chan_list()?;
                cur.expect_end()?;
                let items = items.into_iter().map(|i| (i, cols.at(lineno, i.byte))).collect();
                self.pending.push(Pending { keyword, modifier, items });
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
                let items = cur.chan_list()?;
                cur.expect_end()?;
                let items = items.into_iter().map(|i| (i, cols.at(lineno, i.byte))).collect();
                self.pending.push(Pending {
                    keyword: "echocanceller",
                    modifier: Modifier::Echo(name.to_ascii_lowercase()),
                    items,
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
                if !self.zones.contains(&zone) {
                    self.zones.insert(zone.clone());
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
        cols: &Columns<'_>,
    ) -> Res<()> {
        let items = cur.chan_list()?;
        // Channels named, counting repeats (each item names at least one).
        let named = items.iter().fold(0u32, |n, i| n.saturating_add(i.count()));
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
                if first.saturating_add(named - 1) > MAX_CONF_CHANNEL {
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
        let master = bundled.then(|| items.first().map(|i| i.first)).flatten();
        // Index in the line's list (repeats included) of the item's first channel.
        let mut index = 0u32;
        for item in &items {
            let set = item.set();
            // Repeats: an error each, in channel order, while errors are still recorded.
            let twice = set.and(&self.configured);
            if !twice.is_empty() && !self.full() {
                let place = cols.at(at.line, item.byte);
                for chan in twice.iter() {
                    let first_line = self.chan_lines[chan as usize];
                    self.error(place, ConfErrorKind::ChannelTwice { chan, first_line });
                }
            }
            // New channels: at most MAX_CHANNELS over the whole file.
            for chan in set.minus(&self.configured).iter() {
                let i = index + (chan - item.first);
                self.configured.insert(chan);
                self.chan_lines[chan as usize] = at.line;
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
                        dacs_dest: dacs_dest.map(|d| d + i),
                        netdev: netdev.clone(),
                        law: Law::Default,
                        echocanceller: None,
                        hdlc56: false,
                        at,
                    },
                );
            }
            index = index.saturating_add(item.count());
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
        let pending = std::mem::take(&mut self.pending);
        // Channels 56k may not name: configured, neither clear-derived nor SLAVE.
        let mut not56k = ChanSet::default();
        for (&chan, c) in &self.conf.channels {
            if !c.sig.is_clear_derived() && c.sig != Sig::Slave {
                not56k.insert(chan);
            }
        }
        // Errors first, in file order (which of them fit under MAX_ERRORS depends on it).
        for p in &pending {
            for &(item, at) in &p.items {
                if self.full() {
                    break;
                }
                let set = item.set();
                let mut bad = set.minus(&self.configured);
                if matches!(p.modifier, Modifier::Hdlc56) {
                    bad.union(&set.and(&not56k));
                }
                for chan in bad.iter() {
                    let kind = if self.configured.contains(chan) {
                        let sig = self.conf.channels.get(&chan).map_or(Sig::None, |c| c.sig);
                        ConfErrorKind::Not56k { chan, sig }
                    } else {
                        ConfErrorKind::NotConfigured { chan, keyword: p.keyword }
                    };
                    self.error(at, kind);
                }
            }
        }
        // Then the settings: the last line of a kind naming a channel decides it, so walk the
        // lines backwards and set each channel once per kind.
        let (mut law_done, mut echo_done) = (ChanSet::default(), ChanSet::default());
        let mut hdlc56 = ChanSet::default();
        for p in pending.iter().rev() {
            let mut named = ChanSet::default();
            for (item, _) in &p.items {
                named.union(&item.set());
            }
            let named = named.and(&self.configured);
            let done = match p.modifier {
                Modifier::Law(_) => &mut law_done,
                Modifier::Echo(_) => &mut echo_done,
                Modifier::Hdlc56 => {
                    hdlc56.union(&named.minus(&not56k));
                    continue;
                }
            };
            let new = named.minus(done);
            done.union(&new);
            for chan in new.iter() {
                let Some(c) = self.conf.channels.get_mut(&chan) else { continue };
                match &p.modifier {
                    Modifier::Law(l) => c.law = *l,
                    Modifier::Echo(name) => c.echocanceller = Some(name.clone()),
                    Modifier::Hdlc56 => {}
                }
            }
        }
        for chan in hdlc56.iter() {
            if let Some(c) = self.conf.channels.get_mut(&chan) {
                c.hdlc56 = true;
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
        configured: ChanSet::default(),
        chan_lines: [0; MAX_CHANNELS as usize],
        pending: Vec::new(),
        default_zone_line: None,
        zones: BTreeSet::new(),
    };
    for (i, raw) in text.lines().enumerate() {
        p.line(i as u32 + 1, raw);
    }
    p.finish()
}
