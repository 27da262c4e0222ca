//! Human-readable reporting of what an emulated device does, for the `emulator` example and
//! other demos: one line per device event, data-interface event, scenario action, and a PCM
//! summary once per second while the device ticks. Also the small command-line parsers the
//! example uses to build a [`DeviceConfig`].
//!
//! ```
//! use xpp_emu::report;
//! use xpp_proto::Instant;
//!
//! assert_eq!(report::timestamp(Instant::from_micros(1_234_567)), "    1.234567");
//! let slots = report::parse_modules("fxs,none,pri-e1").unwrap();
//! assert!(slots[0].is_some() && slots[1].is_none() && slots[2].is_some() && slots[3].is_none());
//! ```

use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::{Duration, Instant};

use crate::config::{DataFault, DeviceConfig, FaultAction, FxsChip, ModuleConfig, ScheduledFault, Stage};
use crate::data::{self, EventKind, Stats};
use crate::device::{DetachReason, Device, DeviceEvent, FirmwareKind, JumpReason};
use crate::scenario::Applied;
use crate::script::{Action, Alarm, Endpoint};

/// `seconds.micros`, right-aligned (`"    1.234567"`).
pub fn timestamp(at: Instant) -> String {
    let us = at.total_micros();
    format!("{:>5}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// One line for a device-core event (without the timestamp).
pub fn device_event(e: &DeviceEvent) -> String {
    match e {
        DeviceEvent::Attached { port, vendor, product, .. } => {
            format!("usb {port}: attached as {vendor:04x}:{product:04x}")
        }
        DeviceEvent::Detached { port, reason, .. } => {
            let why = match reason {
                DetachReason::Renumerated => "renumeration",
                DetachReason::Jumped => "TwinStar jump",
                DetachReason::PowerLost => "VBUS lost",
                DetachReason::DevicePowerOff => "device power off",
            };
            format!("usb {port}: detached ({why})")
        }
        DeviceEvent::Jumped { from, to, reason, .. } => {
            let why = match reason {
                JumpReason::Command => "TWS_PORT_SET",
                JumpReason::Watchdog => "watchdog",
            };
            format!("twinstar: jumped from port {from} to port {to} ({why})")
        }
        DeviceEvent::FirmwareLoaded { kind, version, .. } => {
            format!("firmware: {} image accepted, version {version}", firmware(*kind))
        }
        DeviceEvent::FirmwareRefused { kind, .. } => format!("firmware: {} image refused", firmware(*kind)),
        DeviceEvent::WatchdogExpired { .. } => "twinstar: watchdog expired".to_owned(),
        DeviceEvent::FaultApplied { port, endpoint, rule, action, .. } => {
            format!("fault: rule {rule} {} on usb {port} ep {endpoint:#04x}", fault_action(action))
        }
        DeviceEvent::ScheduledFault { fault, .. } => format!("fault: {}", scheduled(fault)),
        DeviceEvent::EepromFileError { write, reason, .. } => {
            format!("eeprom: file {} failed: {reason}", if *write { "write" } else { "read" })
        }
    }
}

const fn firmware(k: FirmwareKind) -> &'static str {
    match k {
        FirmwareKind::Usb => "USB",
        FirmwareKind::Fpga => "FPGA",
    }
}

fn fault_action(a: &FaultAction) -> String {
    match a {
        FaultAction::Drop => "dropped a transfer".into(),
        FaultAction::FlipBits(n) => format!("flipped {n} bit(s)"),
        FaultAction::SetByte { offset, value } => format!("set byte {offset} to {value:#04x}"),
        FaultAction::Truncate(n) => format!("truncated to {n} bytes"),
        FaultAction::TruncateBy(n) => format!("cut {n} bytes"),
        FaultAction::Delay(d) => format!("delayed {} µs", d.total_micros()),
        FaultAction::Duplicate => "duplicated a transfer".into(),
        FaultAction::Stall => "stalled the endpoint".into(),
    }
}

fn scheduled(f: &ScheduledFault) -> String {
    match f {
        ScheduledFault::Unplug { port, duration, .. } => {
            format!("usb {port} unplugged for {} ms", duration.total_millis())
        }
        ScheduledFault::PowerOff { port, duration, .. } => {
            format!("usb {port} host power off for {} ms", duration.total_millis())
        }
        ScheduledFault::PowerCycle { off_for, .. } => {
            format!("device power off for {} ms", off_for.total_millis())
        }
        ScheduledFault::DeviceReset { .. } => "device reset".into(),
        ScheduledFault::BusReset { port, .. } => format!("usb {port} bus reset"),
        ScheduledFault::Renumerate { .. } => "spontaneous renumeration".into(),
        ScheduledFault::InTransfer { len, .. } => format!("IN transfer of {len} bytes"),
        ScheduledFault::Data { fault, .. } => data_fault(fault),
    }
}

fn data_fault(f: &DataFault) -> String {
    match *f {
        DataFault::ErrorCode { category, errorbits } => {
            format!("ERROR_CODE category {category:#04x} bits {errorbits:#04x}")
        }
        DataFault::NullReply => "NULL_REPLY".into(),
        DataFault::OmitSyncReply => "next SYNC_REPLY omitted".into(),
        DataFault::SkipPcm { ticks } => format!("no PCM for {ticks} tick(s)"),
        DataFault::TickJitter { max_us, ticks } => format!("tick jitter ±{max_us} µs for {ticks} tick(s)"),
        DataFault::HookBounce { unit, port, bounces } => {
            format!("hook bounce x{bounces} on port {}", data::PortRef::new(unit, port))
        }
        DataFault::BriBadFrame { unit, port, abort } => format!(
            "next D-channel frame on port {} {}",
            data::PortRef::new(unit, port),
            if abort { "aborted" } else { "with a bad FCS" }
        ),
    }
}

/// One line for a data-interface (equipment, line) event (without the timestamp).
pub fn data_event(e: &data::Event) -> String {
    let at = e.port.map_or_else(|| "device".to_owned(), |p| format!("port {p}"));
    let what = match &e.kind {
        EventKind::RingStart => "phone rings".to_owned(),
        EventKind::RingStop => "phone stops ringing".to_owned(),
        EventKind::Lamp(on) => format!("message lamp {}", on_off(*on)),
        EventKind::PhoneBattery(on) => format!("phone sees battery {}", on_off(*on)),
        EventKind::PhonePolarity(rev) => {
            format!("phone sees {} polarity", if *rev { "reversed" } else { "normal" })
        }
        EventKind::Hook(off) => (if *off { "off-hook" } else { "on-hook" }).to_owned(),
        EventKind::Line(state) => format!("line {state}"),
        EventKind::Digit(d) => format!("exchange received digit {d}"),
        EventKind::LineBattery(on) => format!("line battery {}", on_off(*on)),
        EventKind::LinePolarity(rev) => format!("line polarity {}", if *rev { "reversed" } else { "normal" }),
        EventKind::FarEndFrame(n) => format!("far end received a {n}-byte D-channel frame"),
        EventKind::Layer1(s) => format!("layer 1 state {s}"),
        EventKind::Led { led, on } => format!("LED {led} {}", on_off(*on)),
        EventKind::Sync(mode) => format!("sync {mode}"),
        EventKind::LineRinging(on) => format!("line ring voltage {}", on_off(*on)),
        EventKind::CallerIdSent => "line sends caller ID".to_owned(),
        EventKind::CallerId { number, name } => format!("phone shows caller ID {number} {name:?}"),
    };
    format!("{at}: {what}")
}

const fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn endpoint(e: &Endpoint) -> String {
    match e {
        Endpoint::Phone(p) => format!("phone {p}"),
        Endpoint::Line(p) => format!("line {p}"),
        Endpoint::Span(p) => format!("span {p}"),
    }
}

/// A scenario action as written in a scenario file.
pub fn action(a: &Action) -> String {
    match a {
        Action::PhoneOffHook(p) => format!("phone {p} offhook"),
        Action::PhoneOnHook(p) => format!("phone {p} onhook"),
        Action::PhoneFlash(p) => format!("phone {p} flash"),
        Action::PhoneDtmf(p, d) => format!("phone {p} dtmf {d}"),
        Action::PhonePulse(p, d) => format!("phone {p} pulse {d}"),
        Action::PhoneTone(p, 0) => format!("phone {p} silence"),
        Action::PhoneTone(p, hz) => format!("phone {p} tone {hz}"),
        Action::LineRing(p, on) => format!("line {p} ring {}", on_off(*on)),
        Action::LineBattery(p, on) => format!("line {p} battery {}", on_off(*on)),
        Action::LinePolarity(p) => format!("line {p} polarity"),
        Action::LineCallerId(p, number, name) if name.is_empty() => format!("line {p} cid {number}"),
        Action::LineCallerId(p, number, name) => format!("line {p} cid {number} {name}"),
        Action::LineAnswer(p) => format!("line {p} answer"),
        Action::LineHangup(p) => format!("line {p} hangup"),
        Action::LineTone(p, 0) => format!("line {p} silence"),
        Action::LineTone(p, hz) => format!("line {p} tone {hz}"),
        Action::SpanAlarm(p, alarm) => {
            let a = match alarm {
                Alarm::None => "none",
                Alarm::Los => "los",
                Alarm::Ais => "ais",
                Alarm::Rai => "rai",
            };
            format!("span {p} alarm {a}")
        }
        Action::SpanLayer1(p, up) => format!("span {p} layer1 {}", if *up { "up" } else { "down" }),
        Action::UsbPower(n, on) => format!("usb {n} power {}", on_off(*on)),
        Action::UsbCable(n, true) => format!("usb {n} plug"),
        Action::UsbCable(n, false) => format!("usb {n} unplug"),
        Action::DeviceReset => "device reset".to_owned(),
        Action::Patch(a, b) => format!("patch {} {}", endpoint(a), endpoint(b)),
        Action::Unpatch(e) => format!("unpatch {}", endpoint(e)),
    }
}

/// One line for an applied scenario event: `scenario line N: <action>` and the error, if any.
pub fn applied(a: &Applied) -> String {
    match &a.result {
        Ok(()) => format!("scenario line {}: {}", a.event.line, action(&a.event.action)),
        Err(e) => format!("scenario line {}: {} FAILED: {e}", a.event.line, action(&a.event.action)),
    }
}

/// One line summarising the PCM counters between two snapshots.
pub fn pcm_stats(before: &Stats, after: &Stats) -> String {
    format!(
        "pcm: {} ticks, {} PCM_WRITE rounds, {} missed, {} extra",
        after.ticks.saturating_sub(before.ticks),
        after.rounds.saturating_sub(before.rounds),
        after.missed_rounds.saturating_sub(before.missed_rounds),
        after.extra_rounds.saturating_sub(before.extra_rounds),
    )
}

/// Collects report lines from a device: its events, its data-interface events, and a PCM
/// summary every second while it ticks.
#[derive(Debug, Clone)]
pub struct Reporter {
    last: Stats,
    next_summary: Instant,
}

impl Reporter {
    /// A reporter whose first PCM summary is due one second after `now`.
    pub fn new(now: Instant) -> Self {
        Self { last: Stats::default(), next_summary: now + Duration::from_secs(1) }
    }

    /// Every line due at `now`, oldest first, with its device time.
    #[must_use = "the lines are due once: a later poll does not return them again"]
    pub fn poll(&mut self, device: &mut Device, now: Instant) -> Vec<(Instant, String)> {
        let mut lines = Vec::new();
        while let Some(e) = device.poll_event() {
            lines.push((device_event_time(&e), device_event(&e)));
        }
        while let Some(e) = device.data_mut().poll_event() {
            lines.push((e.at, data_event(&e)));
        }
        lines.sort_by_key(|(t, _)| *t);
        if now >= self.next_summary {
            let stats = device.data().stats();
            if device.data().is_ticking() {
                lines.push((now, pcm_stats(&self.last, &stats)));
            }
            self.last = stats;
            while self.next_summary <= now {
                self.next_summary += Duration::from_secs(1);
            }
        }
        lines
    }
}

fn device_event_time(e: &DeviceEvent) -> Instant {
    match e {
        DeviceEvent::Attached { at, .. }
        | DeviceEvent::Detached { at, .. }
        | DeviceEvent::Jumped { at, .. }
        | DeviceEvent::FirmwareLoaded { at, .. }
        | DeviceEvent::FirmwareRefused { at, .. }
        | DeviceEvent::WatchdogExpired { at }
        | DeviceEvent::FaultApplied { at, .. }
        | DeviceEvent::ScheduledFault { at, .. }
        | DeviceEvent::EepromFileError { at, .. } => *at,
    }
}

/// One module kind as the example's `--modules` spells it: `fxs`, `fxs6`, `fxo`, `pri-e1`,
/// `pri-t1`, `bri` (4 TE ports), `bri-nt` (4 NT ports); `none` is an empty slot.
pub fn parse_module(word: &str) -> Result<Option<ModuleConfig>, String> {
    Ok(Some(match word {
        "none" => return Ok(None),
        "fxs" => ModuleConfig::FXS,
        "fxs6" => ModuleConfig::Fxs { chip: FxsChip::Type6, subtype: 0, absent_ports: 0 },
        "fxo" => ModuleConfig::FXO,
        "pri-e1" => ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 1 },
        "pri-t1" => ModuleConfig::Pri { protocol: PriProtocol::T1, ports: 1 },
        "bri" => ModuleConfig::Bri { ports: 4, nt_mask: 0 },
        "bri-nt" => ModuleConfig::Bri { ports: 4, nt_mask: 0x0F },
        _ => {
            return Err(format!(
                "unknown module kind `{word}` (fxs, fxs6, fxo, pri-e1, pri-t1, bri, bri-nt, none)"
            ));
        }
    }))
}

/// A comma-separated module list (unit = position, at most 4).
pub fn parse_modules(list: &str) -> Result<[Option<ModuleConfig>; 4], String> {
    let words: Vec<&str> = list.split(',').map(str::trim).collect();
    if words.len() > 4 {
        return Err(format!("at most 4 modules, got {}", words.len()));
    }
    let mut slots = [None; 4];
    for (slot, w) in slots.iter_mut().zip(&words) {
        *slot = parse_module(w)?;
    }
    Ok(slots)
}

/// `cold`, `usb`, `fpga` or `running`.
pub fn parse_stage(word: &str) -> Result<Stage, String> {
    match word {
        "cold" => Ok(Stage::Cold),
        "usb" => Ok(Stage::UsbLoaded),
        "fpga" => Ok(Stage::FpgaLoaded),
        "running" => Ok(Stage::Running),
        _ => Err(format!("unknown stage `{word}` (cold, usb, fpga, running)")),
    }
}

/// A label of 1..=8 printable ASCII characters, padded with spaces.
pub fn parse_label(text: &str) -> Result<[u8; 8], String> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err(format!("label `{text}` must be 1 to 8 printable ASCII characters"));
    }
    let mut label = [b' '; 8];
    label[..text.len()].copy_from_slice(text.as_bytes());
    Ok(label)
}

/// The example's device: modules, echo, TwinStar, start stage, label and seed.
pub fn device_config(
    modules: &str,
    echo: bool,
    twinstar: bool,
    stage: &str,
    label: Option<&str>,
    seed: u64,
) -> Result<DeviceConfig, String> {
    let mut cfg = DeviceConfig::default()
        .with_slots(parse_modules(modules)?)
        .with_echo(echo)
        .with_twinstar(twinstar)
        .with_start_stage(parse_stage(stage)?)
        .with_seed(seed);
    if let Some(l) = label {
        cfg.label = parse_label(l)?;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::script::PortRef;
    use crate::transport::Emulator;

    #[test]
    fn parsers() {
        assert_eq!(
            parse_modules("fxs,fxo").unwrap(),
            [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), None, None]
        );
        assert!(matches!(parse_modules("bri-nt").unwrap()[0], Some(ModuleConfig::Bri { nt_mask: 0x0F, .. })));
        assert!(parse_modules("fxs,fxs,fxs,fxs,fxs").is_err());
        assert_eq!(
            parse_modules("fxs,toaster").unwrap_err(),
            "unknown module kind `toaster` (fxs, fxs6, fxo, pri-e1, pri-t1, bri, bri-nt, none)"
        );
        assert_eq!(parse_stage("fpga"), Ok(Stage::FpgaLoaded));
        assert!(parse_stage("warm").is_err());
        assert_eq!(parse_label("AB12"), Ok(*b"AB12    "));
        assert!(parse_label("123456789").is_err());
        assert!(parse_label("é").is_err());
        let cfg = device_config("fxs,none,pri-t1", true, true, "running", Some("LAB"), 7).unwrap();
        assert!(cfg.echo && cfg.twinstar && cfg.seed == 7 && cfg.start_stage == Stage::Running);
        assert_eq!(&cfg.label, b"LAB     ");
    }

    #[test]
    fn lines() {
        assert_eq!(timestamp(Instant::from_millis(61_500)), "   61.500000");
        let e = DeviceEvent::Attached { at: Instant::ZERO, port: 1, vendor: 0xE4E4, product: 0x1162 };
        assert_eq!(device_event(&e), "usb 1: attached as e4e4:1162");
        let j = DeviceEvent::Jumped { at: Instant::ZERO, from: 0, to: 1, reason: JumpReason::Watchdog };
        assert_eq!(device_event(&j), "twinstar: jumped from port 0 to port 1 (watchdog)");
        let ev = data::Event {
            at: Instant::ZERO,
            port: Some(data::PortRef::new(0, 3)),
            kind: EventKind::CallerId { number: "555".into(), name: "Jo".into() },
        };
        assert_eq!(data_event(&ev), "port 0/3: phone shows caller ID 555 \"Jo\"");
        let p = PortRef { unit: 1, port: 0 };
        assert_eq!(action(&Action::LineCallerId(p, "1".into(), "A B".into())), "line 1/0 cid 1 A B");
        assert_eq!(action(&Action::Patch(Endpoint::Phone(p), Endpoint::Span(p))), "patch phone 1/0 span 1/0");
        // Every printed action parses back to itself.
        let all = [
            Action::PhoneOffHook(p),
            Action::PhoneTone(p, 0),
            Action::PhoneTone(p, 440),
            Action::LineRing(p, false),
            Action::SpanAlarm(p, Alarm::Rai),
            Action::SpanLayer1(p, true),
            Action::UsbCable(1, false),
            Action::UsbPower(0, true),
            Action::DeviceReset,
            Action::Unpatch(Endpoint::Line(p)),
        ];
        for a in all {
            let text = format!("0ms {}", action(&a));
            assert_eq!(crate::script::parse(&text).unwrap()[0].action, a, "{text}");
        }
    }

    #[test]
    fn reporter_reports_events_scenario_and_pcm() {
        let cfg = device_config("fxs,fxo", false, false, "running", None, 0).unwrap();
        let emu = Emulator::new(cfg);
        let mut rep = Reporter::new(Instant::ZERO);
        let mut sc =
            Scenario::parse("10ms phone 0/2 offhook\n20ms phone 4/0 onhook\n", Instant::ZERO).unwrap();
        let applied: Vec<String> =
            sc.run_virtual(&emu, Instant::from_millis(50)).iter().map(applied).collect();
        assert_eq!(applied[0], "scenario line 1: phone 0/2 offhook");
        assert_eq!(
            applied[1],
            "scenario line 2: phone 4/0 onhook FAILED: no phone at 4/0 in this configuration"
        );
        let lines = emu.with_device(|d| rep.poll(d, Instant::from_millis(50)));
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(text[0], "usb 0: attached as e4e4:1162");
        assert!(text.contains(&"port 0/2: off-hook"), "{text:?}");
        // Ticking: the host asks for AB sync; a summary comes once per second.
        emu.with_device(|d| {
            d.bulk_out(d.now(), 0, xpp_usb::ep::DATA_OUT, &[0x06, 0x00, 0x19, 0x00, 0x01, 0x00]).unwrap();
        });
        emu.advance_to(Instant::from_millis(1000));
        let lines = emu.with_device(|d| rep.poll(d, Instant::from_millis(1000)));
        assert!(lines.iter().any(|(_, l)| l.starts_with("pcm: ") && l.contains(" ticks")), "{lines:?}");
        assert!(lines.iter().any(|(_, l)| l == "device: sync AB"));
        let lines = emu.with_device(|d| rep.poll(d, Instant::from_millis(1500)));
        assert!(lines.is_empty());
    }
}
