//! One whole host tick of a bus core (issue 5 target: <= 2 µs per device for 4 x 8 analog
//! lines): decode the IN transfers of one device ms, route PCM and card messages to the line
//! models and channels, run the tick (paced commands, PCM_WRITE round, line-model and
//! hook-machine periodic work) and drain the OUT transfers.
//!
//! The device is an emulated Astribank with FXS, FXO, FXS, FXO modules (unit 0's FXS span
//! also has its 6 digital I/O channels); every analog line is in a call (phones off-hook,
//! FXO lines answered), so all 32 lines carry PCM both ways. Its IN transfers are recorded
//! once (1000 ms) and replayed, so the emulator's own cost is not measured.
//!
//! - `tick/4x8_analog`: the core alone.
//! - `tick/4x8_analog_pbx`: plus the PBX side: read and write the 8-sample chunk of each of
//!   the 32 lines and poll events.
//! - `scaling/{1,8,64}`: one ms of 1, 8 and 64 such devices on one thread (time per ms for
//!   all of them; divide by the count for the per-device cost).
//! - `tick/1xE1_dchan_pbx` and `tick/4xE1_dchan_pbx` (issue 12 targets: <= 1 µs and <= 2 µs):
//!   a device with one E1 port, and one with a 4-port E1 unit, every span started with its
//!   D-channel carrying Q.921 to the emulated far end's peer, PBX side included: the chunks of
//!   the 30 bearer channels of each span read and written (one span-wide call each way,
//!   `read_span_chunks` / `write_span_chunks`), every 20 ms an RR poll written on each
//!   D-channel, every frame received read, events polled. `tick/4xE1_dchan` is the core alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use xpp_emu::DeviceConfig;
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::DataInterface;
use xpp_proto::wire::pri::PriProtocol;
use xpp_proto::wire::{Message, SyncMode, parse_transfer};
use xpp_proto::{Duration, Instant};
use xpp_span::hook::HookMode;
use xpp_span::span::{ChanKind, UnitSetup};
use xpp_span::xbus::{BusSetup, Numbering, XbusCore};
use xpp_span::{HookCmd, Sig};

const SLOTS: [Option<ModuleConfig>; 4] =
    [Some(ModuleConfig::FXS), Some(ModuleConfig::FXO), Some(ModuleConfig::FXS), Some(ModuleConfig::FXO)];
const MS: Duration = Duration::from_millis(1);

/// The recorded IN transfers of each ms, and the setup to build a core from.
struct Recording {
    setup: BusSetup,
    /// Digital spans whose chunks the PBX exchanges span by span.
    spans: Vec<u32>,
    ms: Vec<Vec<Vec<u8>>>,
    /// Channels whose chunks the PBX reads and writes.
    lines: Vec<u32>,
    /// Soft-HDLC D-channels the PBX sends polls on and reads frames from.
    dchans: Vec<u32>,
}

fn pump(dev: &mut DataInterface, core: &mut XbusCore, now: Instant, record: Option<&mut Vec<Vec<u8>>>) {
    let mut buf = [0u8; 512];
    let mut rec = record;
    while let Some(n) = dev.poll_in(now, &mut buf) {
        if let Some(r) = rec.as_deref_mut() {
            r.push(buf[..n].to_vec());
        }
        core.handle_in_transfer(now, &buf[..n]);
        let mut out = [0u8; 512];
        while let Some(m) = core.poll_transmit(&mut out) {
            dev.handle_out(now, &out[..m]);
        }
    }
    let mut out = [0u8; 512];
    while let Some(m) = core.poll_transmit(&mut out) {
        dev.handle_out(now, &out[..m]);
    }
}

fn step(
    dev: &mut DataInterface,
    core: &mut XbusCore,
    now: &mut Instant,
    mut record: Option<&mut Vec<Vec<u8>>>,
) {
    let end = *now + MS;
    while let Some(t) = dev.poll_timeout().filter(|&t| t <= end) {
        *now = t;
        dev.handle_timeout(t);
        pump(dev, core, t, record.as_deref_mut());
    }
    *now = end;
    if core.poll_timeout().is_some_and(|t| t <= end) {
        core.handle_timeout(end);
    }
    pump(dev, core, end, record);
    while core.poll_event().is_some() {}
}

/// Records 1000 ms of a device with `slots` after `prepare` (given the device, the core and
/// the clock) has set its calls up and named the PBX's lines and D-channels.
fn record(
    slots: [Option<ModuleConfig>; 4],
    prepare: impl FnOnce(&mut DataInterface, &mut XbusCore, &mut Instant) -> (Vec<u32>, Vec<u32>),
) -> Recording {
    let mut dev = DataInterface::new(&DeviceConfig::default().with_slots(slots));
    let mut now = Instant::from_millis(1);
    dev.start_session(now);
    dev.handle_out(now, &[0x06, 0x00, 0x07, 0x00, 0x1E, 0x00]);
    let mut units = Vec::new();
    let mut buf = [0u8; 512];
    while let Some(n) = dev.poll_in(now, &mut buf) {
        for (_, r) in parse_transfer(&buf[..n]).flatten() {
            if let Message::AbDescription(d) = r.message {
                units = d.units().iter().copied().map(UnitSetup::new).collect();
            }
        }
    }
    let setup = BusSetup::new(units);
    let mut core = XbusCore::new(now, 0, &setup, &mut Numbering::new()).expect("core");
    core.configure_defaults(now);
    core.set_sync_source(SyncMode::Ab, 0);
    let (lines, dchans) = prepare(&mut dev, &mut core, &mut now);
    let mut ms = Vec::with_capacity(1000);
    for i in 0..1000u64 {
        let mut r = Vec::new();
        for &d in &dchans {
            poll_dchan(&mut core, d, i);
        }
        step(&mut dev, &mut core, &mut now, Some(&mut r));
        ms.push(r);
    }
    let spans = core.spans().iter().filter(|s| s.is_digital()).map(|s| s.spanno()).collect();
    Recording { setup, spans, ms, lines, dchans }
}

/// Every 20 ms an RR poll (N(R) 0, P = 1) on D-channel `d`, then every frame waiting read.
fn poll_dchan(core: &mut XbusCore, d: u32, ms: u64) -> usize {
    if ms.is_multiple_of(20) {
        let _ = core.write_frame(d, &[0x02, 0x01, 0x01, 0x01, 0, 0]);
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while let Ok(Some(n)) = core.read_frame(d, &mut buf) {
        got += n;
    }
    got
}

/// FXS, FXO, FXS, FXO with every line in a call.
fn analog() -> Recording {
    let rec = analog_calls();
    // Every line in PCM both ways: 4 packets of 8 lines (72 bytes each) per ms.
    let pcm: usize = rec.ms[999].iter().filter(|t| t[1] & 0x08 != 0).map(Vec::len).sum();
    assert_eq!(pcm, 4 * (8 + 64), "all 32 lines in PCM");
    rec
}

fn analog_calls() -> Recording {
    record(SLOTS, |dev, core, now| {
        // Card init (the bring-up's job): forward active line feed on both FXS units.
        for unit in [0u8, 2] {
            dev.handle_out(*now, &[0x0A, 0x00, 0x0F, unit << 4, 0x05, 0x80, 0x40, 0x00, 0x01, 0x00]);
        }
        let mut buf = [0u8; 512];
        while dev.poll_in(*now, &mut buf).is_some() {}
        for unit in [0u8, 2] {
            for port in 0..8 {
                dev.phone_mut(unit, port).expect("phone").off_hook(*now);
            }
        }
        for _ in 0..1500 {
            step(dev, core, now, None);
        }
        let fxo: Vec<u32> = core
            .channels()
            .iter()
            .filter(|c| matches!(c.kind(), ChanKind::FxoPort { .. }))
            .map(|c| c.channo())
            .collect();
        for &c in &fxo {
            let _ = core.set_hook(*now, c, HookCmd::OffHook, HookMode::Blocking);
        }
        for _ in 0..1000 {
            step(dev, core, now, None);
        }
        let lines: Vec<u32> = core
            .channels()
            .iter()
            .filter(|c| matches!(c.kind(), ChanKind::FxoPort { .. } | ChanKind::FxsPort { .. }))
            .map(|c| c.channo())
            .collect();
        assert_eq!(lines.len(), 32);
        (lines, Vec::new())
    })
}

/// One E1 unit with `ports` ports, each span started, its D-channel's Q.921 link up with the
/// far end's peer.
fn e1(ports: u8) -> Recording {
    let slots = [Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports }), None, None, None];
    record(slots, |dev, core, now| {
        for p in 0..ports {
            dev.pri_far_end_mut(0, p).expect("E1 far end").set_q921(true);
        }
        for _ in 0..100 {
            step(dev, core, now, None);
        }
        let dchans: Vec<u32> = core
            .channels()
            .iter()
            .filter(|c| matches!(c.kind(), ChanKind::PriDchan { .. }))
            .map(|c| c.channo())
            .collect();
        assert_eq!(dchans.len(), usize::from(ports));
        for &d in &dchans {
            core.write_frame(d, &[0x02, 0x01, 0x7F, 0, 0]).expect("SABME");
        }
        for _ in 0..100 {
            step(dev, core, now, None);
        }
        for p in 0..ports {
            assert!(dev.pri_far_end_mut(0, p).and_then(|f| f.q921()).is_some_and(|q| q.established()));
        }
        let lines: Vec<u32> = core
            .channels()
            .iter()
            .filter(|c| matches!(c.kind(), ChanKind::Bearer { .. }))
            .map(|c| c.channo())
            .collect();
        assert_eq!(lines.len(), 30 * usize::from(ports));
        (lines, dchans)
    })
}

/// A fresh core fed with the recording (ticking), and its clock.
struct Device {
    core: XbusCore,
}

impl Device {
    fn new(rec: &Recording, now: Instant) -> Self {
        let mut core = XbusCore::new(now, 0, &rec.setup, &mut Numbering::new()).expect("core");
        core.configure_defaults(now);
        for &c in &rec.lines {
            if core.channel(c).is_some_and(|ch| ch.chan().sig() == Sig::Fxsks) {
                let _ = core.set_hook(now, c, HookCmd::OffHook, HookMode::Blocking);
            }
        }
        // SYNC_REPLY AB: the core ticks on the recorded PCM.
        core.handle_in_transfer(now, &[0x06, 0x00, 0x1A, 0x00, 0x01, 0x00]);
        Self { core }
    }

    /// One device ms: IN transfers, timers, OUT transfers.
    fn tick(&mut self, now: Instant, transfers: &[Vec<u8>], out: &mut [u8; 512]) -> usize {
        for t in transfers {
            self.core.handle_in_transfer(now, t);
        }
        if self.core.poll_timeout().is_some_and(|t| t <= now) {
            self.core.handle_timeout(now);
        }
        let mut sent = 0;
        while let Some(n) = self.core.poll_transmit(out) {
            sent += n;
        }
        sent
    }

    fn pbx(&mut self, rec: &Recording, ms: u64) -> u32 {
        let mut sum = 0u32;
        let mut chunk = [0u8; 8];
        if rec.spans.is_empty() {
            for &c in &rec.lines {
                if self.core.read_chunk(c, &mut chunk).is_ok() {
                    sum = sum.wrapping_add(u32::from(chunk[3]));
                }
                let _ = self.core.write_chunk(c, &[ms as u8; 8]);
            }
        }
        let mut span = [[0u8; 8]; 31];
        for &s in &rec.spans {
            if self.core.read_span_chunks(s, &mut span).is_ok() {
                sum = sum.wrapping_add(u32::from(span[0][3]));
            }
            span.iter_mut().for_each(|c| *c = [ms as u8; 8]);
            let _ = self.core.write_span_chunks(s, &span);
        }
        for &d in &rec.dchans {
            sum = sum.wrapping_add(poll_dchan(&mut self.core, d, ms) as u32);
        }
        while let Some(e) = self.core.poll_event() {
            black_box(e);
        }
        sum
    }
}

fn bench_tick(c: &mut Criterion) {
    let analog = analog();
    let (one_e1, four_e1) = (e1(1), e1(4));
    let mut g = c.benchmark_group("tick");
    g.throughput(Throughput::Elements(1));
    let cases = [
        ("4x8_analog", &analog, false),
        ("4x8_analog_pbx", &analog, true),
        ("1xE1_dchan_pbx", &one_e1, true),
        ("4xE1_dchan", &four_e1, false),
        ("4xE1_dchan_pbx", &four_e1, true),
    ];
    for (name, rec, pbx) in cases {
        let mut now = Instant::from_secs(10);
        let mut dev = Device::new(rec, now);
        let mut out = [0u8; 512];
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                now += MS;
                let ms = &rec.ms[i % rec.ms.len()];
                i += 1;
                let mut r = dev.tick(now, black_box(ms), &mut out);
                if pbx {
                    r = r.wrapping_add(dev.pbx(rec, i as u64) as usize);
                }
                r
            });
        });
        // A name filter may skip this benchmark: then nothing ran and there is nothing to check.
        assert!(i == 0 || dev.core.stats().ticks > 0, "the recorded traffic made the core tick");
    }
    g.finish();

    let mut g = c.benchmark_group("scaling");
    for n in [1usize, 8, 64] {
        g.throughput(Throughput::Elements(n as u64));
        let mut now = Instant::from_secs(10);
        let rec = &analog;
        let mut devs: Vec<Device> = (0..n).map(|_| Device::new(rec, now)).collect();
        let mut out = [0u8; 512];
        let mut i = 0usize;
        g.bench_function(format!("{n}"), |b| {
            b.iter(|| {
                now += MS;
                let ms = &rec.ms[i % rec.ms.len()];
                i += 1;
                let mut sum = 0usize;
                for d in &mut devs {
                    sum = sum.wrapping_add(d.tick(now, black_box(ms), &mut out));
                    sum = sum.wrapping_add(d.pbx(rec, i as u64) as usize);
                }
                sum
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_tick);
criterion_main!(benches);
