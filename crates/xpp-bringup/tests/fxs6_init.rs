//! The type-6 FXS card init (§8.4 of docs/reference/xpp-protocol.md, "type-6 registers read
//! back") against a scripted chip written here from the reference's bytes, independent of the
//! emulator: chip detect by three checks, calibration polled until the chip clears CAL_EN (and
//! bounded), user mode read before it is toggled, and a module without chips is an error.

use std::collections::BTreeMap;

use xpp_bringup::{Action, BringUp, BringUpConfig, BringUpResult, Failure, FirmwareSet};
use xpp_proto::Instant;
use xpp_proto::wire::{
    AbDescription, Address, CardType, Message, Repr, SyncState, UnitDescriptor, parse_transfer,
};
use xpp_usb::{DeviceInfo, EndpointInfo, InterfaceInfo, Speed, TransferType};

/// One scripted Si3226x port, as §8.4 describes what the init reads back.
#[derive(Default, Clone)]
struct Chip {
    regs: BTreeMap<u8, u8>,
    /// 0x00 answer (0xC3 for a good chip).
    id: u8,
    /// 0x03 answer.
    status: u8,
    /// 0x0E does not keep what is written (a failed loopback).
    no_loopback: bool,
    /// Reads of 0x1D that still show CAL_EN after a start (`u32::MAX`: stuck).
    cal_reads: u32,
    cal_left: u32,
    user_mode: bool,
    seq: Vec<u8>,
    toggles: u32,
}

impl Chip {
    fn good() -> Self {
        Self { id: 0xC3, status: 0x1F, cal_reads: 3, ..Self::default() }
    }
}

/// The log of what the host did to one port: (read?, reg, data).
type Log = Vec<(bool, u8, u8)>;

struct Device {
    chips: Vec<Option<Chip>>,
    log: Vec<Log>,
}

impl Device {
    /// Answers one transfer; returns the reply transfers.
    fn handle(&mut self, transfer: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 4 <= transfer.len() {
            let len = usize::from(u16::from_le_bytes([transfer[at], transfer[at + 1]]));
            if len < 4 || at + len > transfer.len() {
                break;
            }
            let p = &transfer[at..at + len];
            at += len;
            // §6.3 REGISTER_REQUEST (0x0F), REG variant (length 10, body 5), unit 0.
            if p[2] == 0x0F && len == 10 && p[4] & 0x87 == 0x05 && p[5] & 0x08 == 0 {
                let port = (p[4] >> 4) & 7;
                let (read, bcast, reg, data) = (p[5] & 0x40 != 0, p[5] & 0x80 != 0, p[6], p[8]);
                if read {
                    let v = self.read(port, reg);
                    let mut r = p.to_vec();
                    r[2] = 0x10;
                    r[8] = v;
                    out.push(r);
                } else {
                    let ports: Vec<u8> = if bcast { (0..8).collect() } else { vec![port] };
                    for q in ports {
                        self.write(q, reg, data);
                    }
                }
            } else if p[2] == 0x19 {
                // SYNC_SOURCE: answer with the mode asked for (lets the run reach Done).
                for (_, repr) in parse_transfer(p).flatten() {
                    if let Message::SyncSource(s) = repr.message {
                        let reply =
                            Repr::command(Address::ZERO, Message::SyncReply(SyncState { drift: 0, ..s }));
                        let mut b = vec![0u8; reply.buffer_len()];
                        reply.emit(&mut b).unwrap();
                        out.push(b);
                    }
                }
            }
        }
        out
    }

    fn read(&mut self, port: u8, reg: u8) -> u8 {
        self.log[usize::from(port)].push((true, reg, 0));
        let Some(c) = self.chips[usize::from(port)].as_mut() else { return 0xFF };
        match reg {
            0x00 => c.id,
            0x03 => c.status,
            0x1D => {
                let v = c.regs.get(&0x1D).copied().unwrap_or(0);
                if c.cal_left > 0 {
                    if c.cal_left != u32::MAX {
                        c.cal_left -= 1;
                    }
                    v | 0x80
                } else {
                    v & !0x80
                }
            }
            0x7E => u8::from(c.user_mode),
            r => c.regs.get(&r).copied().unwrap_or(0),
        }
    }

    fn write(&mut self, port: u8, reg: u8, data: u8) {
        self.log[usize::from(port)].push((false, reg, data));
        let Some(c) = self.chips[usize::from(port)].as_mut() else { return };
        if reg == 0x0E && c.no_loopback {
            return;
        }
        c.regs.insert(reg, data);
        if reg == 0x1D && data & 0x80 != 0 {
            c.cal_left = c.cal_reads;
        }
        if reg == 0x7E {
            c.seq.push(data);
            if c.seq.len() > 4 {
                c.seq.remove(0);
            }
            if c.seq == [0x02, 0x08, 0x0E, 0x00] {
                c.user_mode = !c.user_mode;
                c.toggles += 1;
                c.seq.clear();
            }
        }
    }
}

fn info() -> DeviceInfo {
    let ep = |address| EndpointInfo { address, transfer_type: TransferType::Bulk, max_packet_size: 512 };
    DeviceInfo {
        vendor_id: 0xE4E4,
        product_id: 0x1162,
        bcd_device: 0x0101,
        manufacturer: None,
        product: None,
        serial: None,
        speed: Speed::High,
        location: "fxs6".into(),
        interfaces: vec![
            InterfaceInfo { number: 0, endpoints: vec![ep(0x02), ep(0x86)] },
            InterfaceInfo { number: 1, endpoints: vec![ep(0x04), ep(0x88)] },
        ],
    }
}

/// Runs bring-up of a running device with one type-6 FXS unit (4 chips x 2 ports).
fn run(chips: Vec<Option<Chip>>) -> (Result<Box<BringUpResult>, Failure>, Device) {
    let mut dev = Device { chips, log: vec![Vec::new(); 8] };
    let mut now = Instant::ZERO;
    let cfg = BringUpConfig::default();
    let mut core = BringUp::new(now, cfg, FirmwareSet::new());
    core.handle_device(now, &info());
    now += cfg.timeouts.listen;
    core.handle_timeout(now);
    let mut fxs = UnitDescriptor::new(Address::ZERO, CardType::Fxs6, 0, 4, 2);
    fxs.port_dir = 1;
    let d = Repr::command(Address::ZERO, Message::AbDescription(AbDescription::new(&[fxs]).unwrap()));
    let mut b = vec![0u8; d.buffer_len()];
    d.emit(&mut b).unwrap();
    core.handle_data_in(now, &b);
    for _ in 0..200_000 {
        while let Some(a) = core.poll_action() {
            match a {
                Action::DataOut(t) => {
                    for r in dev.handle(&t) {
                        core.handle_data_in(now, &r);
                    }
                }
                Action::Done(r) => return (Ok(r), dev),
                Action::Failed(e) => return (Err(e.reason), dev),
                _ => {}
            }
        }
        while core.poll_event().is_some() {}
        let Some(t) = core.poll_timeout() else { panic!("bring-up stalled") };
        now = now.max(t);
        core.handle_timeout(now);
    }
    panic!("bring-up did not end");
}

fn writes(log: &Log, reg: u8) -> Vec<u8> {
    log.iter().filter(|(r, g, _)| !r && *g == reg).map(|x| x.2).collect()
}

#[test]
fn a_chip_counts_only_if_it_passes_all_three_checks() {
    let mut chips = vec![Some(Chip::good()); 8];
    chips[1].as_mut().unwrap().id = 0x05; // a type-1 id
    chips[2].as_mut().unwrap().no_loopback = true;
    chips[3].as_mut().unwrap().status = 0x1E; // frame sync missing
    chips[4] = None; // reads 0xFF
    let (r, dev) = run(chips);
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.units[0].present, 0b1110_0001);
    for log in &dev.log {
        // The detection: 0x00 read, 0x40 written to 0x0E and read back, 0x03 read.
        let detect: Vec<_> =
            log.iter().filter(|x| !matches!(x, (false, 0x01, 0x80))).take(4).copied().collect();
        assert_eq!(detect, [(true, 0x00, 0), (false, 0x0E, 0x40), (true, 0x0E, 0), (true, 0x03, 0)]);
    }
    // Dropped chips get no per-port init (line feed 0x1E) and no user-mode toggling.
    for p in [1usize, 2, 3, 4] {
        assert!(writes(&dev.log[p], 0x1E).is_empty(), "port {p}");
        assert!(!dev.log[p].contains(&(true, 0x7E, 0)), "port {p}");
    }
    assert_eq!(writes(&dev.log[0], 0x1E), [0x01]);
}

#[test]
fn calibration_is_polled_until_the_chip_clears_cal_en() {
    let mut good = Chip::good();
    good.cal_reads = 20;
    let (r, dev) = run(vec![Some(good); 8]);
    assert!(r.is_ok(), "{:?}", r.err());
    for log in &dev.log {
        let start = log.iter().position(|x| *x == (false, 0x1D, 0x80)).expect("CAL_EN written");
        let polls = log[start..].iter().filter(|x| **x == (true, 0x1D, 0)).count();
        assert_eq!(polls, 21, "20 reads with CAL_EN set, then the one that sees it clear");
        // Nothing else touches the line until calibration is done.
        let last_poll = log.iter().rposition(|x| *x == (true, 0x1D, 0)).unwrap();
        assert!(log.iter().position(|x| *x == (false, 0x1E, 0x01)).unwrap() > last_poll);
    }
}

#[test]
fn a_stuck_calibration_fails_bounded() {
    let mut chips = vec![Some(Chip::good()); 8];
    chips[5].as_mut().unwrap().cal_reads = u32::MAX;
    let (r, dev) = run(chips);
    match r {
        Err(Failure::Calibration { unit: 0, port: 5, .. }) => {}
        other => panic!("{:?}", other.map(|_| ())),
    }
    let polls = dev.log[5].iter().filter(|x| **x == (true, 0x1D, 0)).count();
    assert!((10..=600).contains(&polls), "{polls} polls");
}

#[test]
fn user_mode_is_read_before_it_is_toggled() {
    // Chips 0-3 power up with user mode off, 4-7 with it already on.
    let mut chips = vec![Some(Chip::good()); 8];
    for c in chips.iter_mut().skip(4) {
        c.as_mut().unwrap().user_mode = true;
    }
    let (r, dev) = run(chips.clone());
    assert!(r.is_ok(), "{:?}", r.err());
    for (p, log) in dev.log.iter().enumerate() {
        let first_read = log.iter().position(|x| *x == (true, 0x7E, 0)).expect("user mode read");
        let first_write = log.iter().position(|x| !x.0 && x.1 == 0x7E).unwrap_or(usize::MAX);
        assert!(first_read < first_write, "port {p}: read before any 0x7E write");
        let chip = dev.chips[p].as_ref().unwrap();
        assert!(!chip.user_mode, "port {p}: user mode off at the end");
        // Off-at-power-on chips: toggled on, then off (2); already-on ones: only off (1).
        assert_eq!(chip.toggles, if p < 4 { 2 } else { 1 }, "port {p}");
        assert_eq!(writes(log, 0x7E).len() as u32, 4 * chip.toggles, "port {p}: no blind sequence");
    }
}

#[test]
fn no_chip_on_a_declared_module_is_an_error_naming_the_unit() {
    let mut bad = Chip::good();
    bad.status = 0x00;
    let (r, _) = run(vec![Some(bad); 8]);
    let e = r.map(|_| ()).unwrap_err();
    assert!(matches!(e, Failure::NoChip { unit: 0, ports: 8 }), "{e:?}");
    assert!(e.to_string().contains("unit 0"), "{e}");
}
