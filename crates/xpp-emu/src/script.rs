//! Scenario files: equipment and USB events over time, for the `emulator` example and tests.
//!
//! A scenario is a text file, one event per line:
//!
//! ```text
//! # comments start with '#'; blank lines are ignored
//! # <time>   <target>    <action> [arguments]
//! 0ms        phone 0/1   offhook
//! +300ms     phone 0/1   dtmf 5551234       # '+' = after the previous event
//! 2s         line 1/0    ring on
//! 2.5s       line 1/0    ring off
//! 3s         line 1/0    polarity
//! 4s         line 1/0    battery off
//! 5s         span 2/0    alarm los
//! 6s         usb 0       power off
//! 7s         patch phone 0/1 line 1/0
//! 8s         device      reset
//! ```
//!
//! **Time**: `<n>us`, `<n>ms`, `<n>s` or a decimal with a unit (`1.5s`, `2.25ms`): the
//! instant after the start of the scenario; with a leading `+`, the time after the previous
//! event. Events must not go back in time.
//!
//! **Targets and actions** (`U/P` = unit/port, as the data interface addresses them):
//!
//! | Target | Actions |
//! |---|---|
//! | `phone U/P` (phone on an FXS port) | `offhook`, `onhook`, `flash`, `dtmf <digits>`, `pulse <digits>`, `tone <hz>`, `silence` |
//! | `line U/P` (PSTN line on an FXO port) | `ring on`, `ring off`, `battery on`, `battery off`, `polarity`, `cid <number> [name...]`, `answer`, `hangup`, `tone <hz>`, `silence` |
//! | `span U/P` (PRI/BRI far end) | `alarm los\|ais\|rai\|none`, `layer1 up\|down` |
//! | `usb N` (USB port N of the device) | `power on`, `power off`, `unplug`, `plug` |
//! | `device` | `reset` (power cycle) |
//! | `patch <end> <end>` / `unpatch <end>` | connect / disconnect two ports (`phone U/P`, `line U/P`, `span U/P`) |
//!
//! DTMF digits are `0-9 * # A-D`; pulse digits `0-9`; caller-id numbers digits only. Errors
//! name the line and column ([`ScriptError`]); a scenario that does not parse runs nothing.

use core::fmt;

use xpp_proto::Duration;

/// One event of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEvent {
    /// When, from the start of the scenario.
    pub at: Duration,
    /// 1-based line number in the file.
    pub line: usize,
    /// What happens.
    pub action: Action,
}

/// A unit/port pair as written in a scenario (`1/0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRef {
    /// Module unit 0..7.
    pub unit: u8,
    /// Port (or subunit) 0..7.
    pub port: u8,
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.unit, self.port)
    }
}

/// A patch-panel end point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// The phone on an FXS port.
    Phone(PortRef),
    /// The PSTN line on an FXO port.
    Line(PortRef),
    /// The far end of a PRI/BRI port.
    Span(PortRef),
}

/// PRI/BRI far-end alarm condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Alarm {
    /// No alarm.
    None,
    /// Loss of signal (red).
    Los,
    /// Alarm indication signal (blue).
    Ais,
    /// Remote alarm indication (yellow).
    Rai,
}

/// What a scenario line does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Phone goes off-hook.
    PhoneOffHook(PortRef),
    /// Phone hangs up.
    PhoneOnHook(PortRef),
    /// Hook flash.
    PhoneFlash(PortRef),
    /// Dial DTMF digits.
    PhoneDtmf(PortRef, String),
    /// Dial pulse digits.
    PhonePulse(PortRef, String),
    /// The phone's microphone plays a tone (Hz), or silence with 0.
    PhoneTone(PortRef, u32),
    /// Ringing voltage on a PSTN line on or off.
    LineRing(PortRef, bool),
    /// Battery on a PSTN line on or off.
    LineBattery(PortRef, bool),
    /// Reverse the line polarity.
    LinePolarity(PortRef),
    /// Send caller ID (number, name) before/with the next ring.
    LineCallerId(PortRef, String, String),
    /// The far party answers.
    LineAnswer(PortRef),
    /// The far party hangs up.
    LineHangup(PortRef),
    /// The far party plays a tone (Hz), or silence with 0.
    LineTone(PortRef, u32),
    /// Far-end alarm on a PRI/BRI port.
    SpanAlarm(PortRef, Alarm),
    /// Far-end layer 1 up or down.
    SpanLayer1(PortRef, bool),
    /// VBUS power of a USB port.
    UsbPower(u8, bool),
    /// Pull (false) or reconnect (true) the cable of a USB port.
    UsbCable(u8, bool),
    /// Power-cycle the device.
    DeviceReset,
    /// Connect two end points.
    Patch(Endpoint, Endpoint),
    /// Disconnect an end point.
    Unpatch(Endpoint),
}

/// Why a scenario did not parse: where and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct ScriptError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column of the offending word.
    pub column: usize,
    /// What is wrong.
    pub reason: String,
}

/// Longest scenario line accepted (bytes); longer input is refused rather than buffered.
pub const MAX_LINE_LEN: usize = 1024;

/// Largest scenario file read (1 MiB), by [`read_text`].
pub const MAX_SCRIPT_LEN: usize = 1 << 20;

/// Reads a scenario's text from `reader` (a file, a pipe): at most [`MAX_SCRIPT_LEN`] + 1
/// bytes are read; more is an [`std::io::ErrorKind::FileTooLarge`] error (`more than 1048576
/// bytes`), text that is not UTF-8 an [`std::io::ErrorKind::InvalidData`] one. The caller
/// names the file.
pub fn read_text(reader: impl std::io::Read) -> std::io::Result<String> {
    let bytes = xpp_proto::input::read_capped(reader, MAX_SCRIPT_LEN)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not UTF-8 at byte {at}"))
    })
}

/// Parses a whole scenario.
pub fn parse(text: &str) -> Result<Vec<ScriptEvent>, ScriptError> {
    let mut events = Vec::new();
    let mut last = Duration::ZERO;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.len() > MAX_LINE_LEN {
            return Err(ScriptError { line, column: MAX_LINE_LEN + 1, reason: "line too long".into() });
        }
        let content = raw.split('#').next().unwrap_or("");
        let mut words = Words::new(content, line);
        let Some(time) = words.next() else { continue };
        let at = parse_time(time, last, line)?;
        let action = parse_action(&mut words)?;
        if let Some(extra) = words.next() {
            return Err(extra.error("unexpected word"));
        }
        last = at;
        events.push(ScriptEvent { at, line, action });
    }
    Ok(events)
}

/// A word of a line and where it starts.
#[derive(Debug, Clone, Copy)]
struct Word<'a> {
    text: &'a str,
    line: usize,
    column: usize,
}

impl Word<'_> {
    fn error(&self, reason: &str) -> ScriptError {
        ScriptError { line: self.line, column: self.column, reason: format!("{reason}: `{}`", self.text) }
    }
}

struct Words<'a> {
    rest: &'a str,
    offset: usize,
    line: usize,
    end_column: usize,
}

impl<'a> Words<'a> {
    fn new(content: &'a str, line: usize) -> Self {
        Self { rest: content, offset: 0, line, end_column: content.trim_end().chars().count() + 1 }
    }

    /// The next word, or an error naming what was expected at the end of the line.
    fn expect(&mut self, what: &str) -> Result<Word<'a>, ScriptError> {
        self.next().ok_or_else(|| ScriptError {
            line: self.line,
            column: self.end_column,
            reason: format!("missing {what}"),
        })
    }

    /// Every remaining word joined by single spaces.
    fn rest_joined(&mut self) -> String {
        let mut out = String::new();
        for w in self.by_ref() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w.text);
        }
        out
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = Word<'a>;

    fn next(&mut self) -> Option<Word<'a>> {
        let start = self.rest.find(|c: char| !c.is_whitespace())?;
        let tail = &self.rest[start..];
        let len = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let column = self.offset + start + 1;
        let word = Word { text: &tail[..len], line: self.line, column };
        self.offset += start + len;
        self.rest = &tail[len..];
        Some(word)
    }
}

fn parse_time(w: Word<'_>, last: Duration, line: usize) -> Result<Duration, ScriptError> {
    let (relative, text) = match w.text.strip_prefix('+') {
        Some(t) => (true, t),
        None => (false, w.text),
    };
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 1u64)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000_000)
    } else {
        return Err(w.error("time needs a unit (us, ms, s)"));
    };
    let micros = decimal_micros(number, scale).ok_or_else(|| w.error("bad time"))?;
    let at = if relative { last + Duration::from_micros(micros) } else { Duration::from_micros(micros) };
    if at < last {
        return Err(ScriptError {
            line,
            column: w.column,
            reason: format!("time goes backwards: `{}`", w.text),
        });
    }
    Ok(at)
}

/// `"1.25"` with `scale` 1000 -> 1250; at most 6 fraction digits; `None` on junk or overflow.
fn decimal_micros(number: &str, scale: u64) -> Option<u64> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(int) || !digits(frac) || frac.len() > 6 {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut micros = int.checked_mul(scale)?;
    if !frac.is_empty() {
        let frac_value: u64 = frac.parse().ok()?;
        let denom = 10u64.pow(frac.len() as u32);
        micros = micros.checked_add(frac_value.checked_mul(scale)? / denom)?;
    }
    Some(micros)
}

fn port_ref(w: Word<'_>) -> Result<PortRef, ScriptError> {
    let (u, p) = w.text.split_once('/').ok_or_else(|| w.error("expected unit/port"))?;
    let num = |s: &str| s.parse::<u8>().ok().filter(|&n| n <= 7);
    match (num(u), num(p)) {
        (Some(unit), Some(port)) => Ok(PortRef { unit, port }),
        _ => Err(w.error("unit and port must be 0..7")),
    }
}

fn on_off(w: Word<'_>) -> Result<bool, ScriptError> {
    match w.text {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(w.error("expected on or off")),
    }
}

fn digits(w: Word<'_>, allowed: &str) -> Result<String, ScriptError> {
    if w.text.chars().all(|c| allowed.contains(c)) {
        Ok(w.text.to_owned())
    } else {
        Err(w.error("invalid digit"))
    }
}

fn hertz(w: Word<'_>) -> Result<u32, ScriptError> {
    w.text.parse::<u32>().ok().filter(|&hz| hz < 4000).ok_or_else(|| w.error("tone must be 0..3999 Hz"))
}

fn endpoint(words: &mut Words<'_>) -> Result<Endpoint, ScriptError> {
    let kind = words.expect("end point (phone, line, span)")?;
    let port = port_ref(words.expect("unit/port")?)?;
    match kind.text {
        "phone" => Ok(Endpoint::Phone(port)),
        "line" => Ok(Endpoint::Line(port)),
        "span" => Ok(Endpoint::Span(port)),
        _ => Err(kind.error("unknown end point")),
    }
}

const DTMF_DIGITS: &str = "0123456789*#ABCD";
const PULSE_DIGITS: &str = "0123456789";

fn parse_action(words: &mut Words<'_>) -> Result<Action, ScriptError> {
    let target = words.expect("target")?;
    match target.text {
        "phone" => {
            let p = port_ref(words.expect("unit/port")?)?;
            let verb = words.expect("phone action")?;
            Ok(match verb.text {
                "offhook" => Action::PhoneOffHook(p),
                "onhook" => Action::PhoneOnHook(p),
                "flash" => Action::PhoneFlash(p),
                "dtmf" => Action::PhoneDtmf(p, digits(words.expect("digits")?, DTMF_DIGITS)?),
                "pulse" => Action::PhonePulse(p, digits(words.expect("digits")?, PULSE_DIGITS)?),
                "tone" => Action::PhoneTone(p, hertz(words.expect("frequency")?)?),
                "silence" => Action::PhoneTone(p, 0),
                _ => return Err(verb.error("unknown phone action")),
            })
        }
        "line" => {
            let p = port_ref(words.expect("unit/port")?)?;
            let verb = words.expect("line action")?;
            Ok(match verb.text {
                "ring" => Action::LineRing(p, on_off(words.expect("on or off")?)?),
                "battery" => Action::LineBattery(p, on_off(words.expect("on or off")?)?),
                "polarity" => Action::LinePolarity(p),
                "cid" => {
                    let number = digits(words.expect("number")?, PULSE_DIGITS)?;
                    Action::LineCallerId(p, number, words.rest_joined())
                }
                "answer" => Action::LineAnswer(p),
                "hangup" => Action::LineHangup(p),
                "tone" => Action::LineTone(p, hertz(words.expect("frequency")?)?),
                "silence" => Action::LineTone(p, 0),
                _ => return Err(verb.error("unknown line action")),
            })
        }
        "span" => {
            let p = port_ref(words.expect("unit/port")?)?;
            let verb = words.expect("span action")?;
            match verb.text {
                "alarm" => {
                    let w = words.expect("alarm (los, ais, rai, none)")?;
                    let alarm = match w.text {
                        "los" => Alarm::Los,
                        "ais" => Alarm::Ais,
                        "rai" => Alarm::Rai,
                        "none" => Alarm::None,
                        _ => return Err(w.error("unknown alarm")),
                    };
                    Ok(Action::SpanAlarm(p, alarm))
                }
                "layer1" => {
                    let w = words.expect("up or down")?;
                    match w.text {
                        "up" => Ok(Action::SpanLayer1(p, true)),
                        "down" => Ok(Action::SpanLayer1(p, false)),
                        _ => Err(w.error("expected up or down")),
                    }
                }
                _ => Err(verb.error("unknown span action")),
            }
        }
        "usb" => {
            let n = words.expect("USB port number")?;
            let port =
                n.text.parse::<u8>().ok().filter(|&p| p <= 1).ok_or_else(|| n.error("USB port is 0 or 1"))?;
            let verb = words.expect("usb action")?;
            match verb.text {
                "power" => Ok(Action::UsbPower(port, on_off(words.expect("on or off")?)?)),
                "unplug" => Ok(Action::UsbCable(port, false)),
                "plug" => Ok(Action::UsbCable(port, true)),
                _ => Err(verb.error("unknown usb action")),
            }
        }
        "device" => {
            let verb = words.expect("device action")?;
            match verb.text {
                "reset" => Ok(Action::DeviceReset),
                _ => Err(verb.error("unknown device action")),
            }
        }
        "patch" => Ok(Action::Patch(endpoint(words)?, endpoint(words)?)),
        "unpatch" => Ok(Action::Unpatch(endpoint(words)?)),
        _ => Err(target.error("unknown target")),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const P01: PortRef = PortRef { unit: 0, port: 1 };
    const L10: PortRef = PortRef { unit: 1, port: 0 };

    /// An endless reader (a pipe, `/dev/zero`) is refused once past MAX_SCRIPT_LEN.
    #[test]
    fn read_text_is_capped() {
        let err = read_text(std::io::repeat(b'#')).expect_err("endless");
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(err.to_string(), format!("more than {MAX_SCRIPT_LEN} bytes"));
        let err = read_text(&b"0ms phone 0/1 offhook\n\xff"[..]).expect_err("not UTF-8");
        assert_eq!(err.to_string(), "not UTF-8 at byte 22");
        let text = read_text(&b"0ms phone 0/1 offhook\n"[..]).expect("fits");
        assert_eq!(parse(&text).map(|e| e.len()), Ok(1));
    }

    #[test]
    fn parses_the_documented_example() {
        let text = "# demo\n\n0ms phone 0/1 offhook\n+300ms phone 0/1 dtmf 5551234 # dial\n2s line 1/0 ring on\n\
                    2.5s line 1/0 ring off\n3s line 1/0 polarity\n4s line 1/0 battery off\n5s span 2/0 alarm los\n\
                    6s usb 0 power off\n7s patch phone 0/1 line 1/0\n8s device reset\n9s line 1/0 cid 5551234 Jane Doe\n";
        let events = parse(text).unwrap();
        let got: Vec<_> = events.iter().map(|e| (e.at.total_micros(), e.line, e.action.clone())).collect();
        assert_eq!(
            got,
            vec![
                (0, 3, Action::PhoneOffHook(P01)),
                (300_000, 4, Action::PhoneDtmf(P01, "5551234".into())),
                (2_000_000, 5, Action::LineRing(L10, true)),
                (2_500_000, 6, Action::LineRing(L10, false)),
                (3_000_000, 7, Action::LinePolarity(L10)),
                (4_000_000, 8, Action::LineBattery(L10, false)),
                (5_000_000, 9, Action::SpanAlarm(PortRef { unit: 2, port: 0 }, Alarm::Los)),
                (6_000_000, 10, Action::UsbPower(0, false)),
                (7_000_000, 11, Action::Patch(Endpoint::Phone(P01), Endpoint::Line(L10))),
                (8_000_000, 12, Action::DeviceReset),
                (9_000_000, 13, Action::LineCallerId(L10, "5551234".into(), "Jane Doe".into())),
            ]
        );
    }

    #[test]
    fn times() {
        let at = |t: &str| parse(&format!("{t} device reset")).map(|e| e[0].at.total_micros());
        assert_eq!(at("250us"), Ok(250));
        assert_eq!(at("1.5ms"), Ok(1500));
        assert_eq!(at(".5s"), Ok(500_000));
        assert_eq!(at("2s"), Ok(2_000_000));
        assert_eq!(at("+7ms"), Ok(7000));
        assert!(at("7").is_err());
        assert!(at("1.2345678s").is_err());
        assert!(at("99999999999999999999s").is_err());
        assert!(at("-1s").is_err());
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = |t: &str| parse(t).unwrap_err();
        assert_eq!(
            err("0ms phone 0/1 offhook\n1ms phone 9/1 onhook"),
            ScriptError { line: 2, column: 11, reason: "unit and port must be 0..7: `9/1`".into() }
        );
        assert_eq!(
            err("2s device reset\n1s device reset").to_string(),
            "line 2, column 1: time goes backwards: `1s`"
        );
        assert_eq!(err("0ms phone 0/1").to_string(), "line 1, column 14: missing phone action");
        assert_eq!(err("0ms phone 0/1 dtmf 12x").to_string(), "line 1, column 20: invalid digit: `12x`");
        assert_eq!(err("0ms line 1/0 ring maybe").column, 19);
        assert_eq!(err("0ms usb 2 power on").column, 9);
        assert_eq!(err("0ms device reset now").to_string(), "line 1, column 18: unexpected word: `now`");
        assert_eq!(err("0ms toaster 0/0 on").column, 5);
        assert_eq!(
            err("0ms patch phone 0/1").to_string(),
            "line 1, column 20: missing end point (phone, line, span)"
        );
        assert_eq!(err(&"x".repeat(2000)).reason, "line too long");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn relative_times_accumulate(steps in proptest::collection::vec(0u64..10_000, 1..20)) {
            let text: String = steps.iter().map(|s| format!("+{s}us device reset\n")).collect();
            let events = parse(&text).unwrap();
            let total: u64 = steps.iter().sum();
            prop_assert_eq!(events.last().unwrap().at.total_micros(), total);
        }
    }
}
