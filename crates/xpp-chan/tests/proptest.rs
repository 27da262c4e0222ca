//! Property tests: arbitrary device input and command sequences never panic, every command
//! the lines queue is a valid REGISTER_REQUEST for their XPD, and the timers stay consistent
//! (after `handle_timeout(now)` nothing is due at or before `now`).

use proptest::prelude::*;
use xpp_chan::{Cadence, ChipType, FxoConfig, FxoLine, FxsConfig, FxsLine, Led, Vmwi6Constants};
use xpp_proto::Instant;
use xpp_proto::wire::{Address, MAX_PACKET_LEN, Message, RamAccess, RegAccess, RegCmd, Repr, SigChanged};

const PORT: u8 = 2;

fn addr() -> Address {
    Address::new(0, 0).unwrap()
}

#[derive(Debug, Clone)]
enum Input {
    Advance(u16),
    Sig { status: u32, toggles: u32 },
    Reg { port: u8, reg: u8, value: u8, flags: u8 },
    Ram { port: u8, ram: u16, value: u32 },
    OtherXpd { status: u32 },
    Command(u8, bool),
}

fn input() -> impl Strategy<Value = Input> {
    // Registers the lines care about, plus anything.
    let reg = prop_oneof![
        Just(0x04u8),
        Just(0x1C),
        Just(0x1D),
        Just(0x18),
        Just(0x1E),
        Just(0x22),
        Just(0x3C),
        Just(0x44),
        any::<u8>()
    ];
    let port = prop_oneof![3 => Just(PORT), 1 => 0u8..8];
    prop_oneof![
        4 => (0u16..700).prop_map(Input::Advance),
        3 => (any::<u32>(), prop_oneof![Just(1u32 << PORT), any::<u32>()])
            .prop_map(|(status, toggles)| Input::Sig { status, toggles }),
        4 => (port.clone(), reg, any::<u8>(), prop_oneof![3 => Just(0u8), 1 => any::<u8>()])
            .prop_map(|(port, reg, value, flags)| Input::Reg { port, reg, value, flags }),
        1 => (port, any::<u16>(), any::<u32>()).prop_map(|(port, ram, value)| Input::Ram { port, ram, value }),
        1 => any::<u32>().prop_map(|status| Input::OtherXpd { status }),
        3 => (any::<u8>(), any::<bool>()).prop_map(|(c, b)| Input::Command(c, b)),
    ]
}

fn repr_of(input: &Input) -> Option<Repr<'static>> {
    Some(match *input {
        Input::Sig { status, toggles } => {
            Repr::command(addr(), Message::SigChanged(SigChanged { status, toggles }))
        }
        Input::Reg { port, reg, value, flags } => {
            let mut r = RegAccess::read(port, reg);
            r.data_low = value;
            r.broadcast = flags & 0x80 != 0;
            r.expander = flags & 0x08 != 0;
            r.do_subreg = flags & 0x20 != 0;
            Repr::command(addr(), Message::RegisterReply(RegCmd::Reg(r)))
        }
        Input::Ram { port, ram, value } => {
            let mut r = RamAccess::read(port, ram);
            r.data = value;
            Repr::command(addr(), Message::RegisterReply(RegCmd::Ram(r)))
        }
        Input::OtherXpd { status } => Repr::command(
            Address::new(1, 0).unwrap(),
            Message::SigChanged(SigChanged { status, toggles: u32::MAX }),
        ),
        Input::Advance(_) | Input::Command(..) => return None,
    })
}

/// Checks one queued command: a REGISTER_REQUEST for our XPD that encodes.
fn check_transmit(repr: &Repr<'_>) {
    assert_eq!(repr.addr, addr());
    assert!(matches!(repr.message, Message::RegisterRequest(_)), "{repr:?}");
    let mut buf = [0u8; MAX_PACKET_LEN];
    let len = repr.emit(&mut buf).expect("queued command must encode");
    assert_eq!(len, repr.buffer_len());
}

/// Drives one line-like object through the inputs.
macro_rules! drive {
    ($line:ident, $inputs:expr, $command:expr) => {{
        let mut now = Instant::from_millis(0);
        for input in $inputs {
            match input {
                Input::Advance(d) => now += xpp_proto::Duration::from_millis(u64::from(*d)),
                Input::Command(c, b) => $command(&mut $line, now, *c, *b),
                other => {
                    let repr = repr_of(other).expect("packet input");
                    $line.handle_packet(now, &repr);
                }
            }
            if $line.poll_timeout().is_some_and(|t| t <= now) {
                $line.handle_timeout(now);
            }
            if let Some(t) = $line.poll_timeout() {
                prop_assert!(t > now, "timer {t:?} not after {now:?} once handled");
            }
            while let Some(repr) = $line.poll_transmit(now) {
                check_transmit(&repr);
            }
            while let Some(ev) = $line.poll_event() {
                prop_assert!(ev.at() <= now, "event {ev:?} from the future at {now:?}");
            }
            let _ = $line.wants_pcm();
        }
    }};
}

fn fxs_command(line: &mut FxsLine, now: Instant, c: u8, b: bool) {
    // Results are allowed to be errors; they must not panic.
    match c % 10 {
        0 => {
            let cadence = if b { Cadence::CONTINUOUS } else { Cadence::from_millis(&[2000, 4000]).unwrap() };
            let _ = line.start_ringing(now, cadence);
        }
        1 => line.stop_ringing(now),
        2 => {
            let _ = line.start_oht(now);
        }
        3 => {
            let _ = line.set_reversed(now, b);
        }
        4 => line.set_line_open(now, b),
        5 => line.set_vmwi(now, b),
        6 => {
            let _ = line.set_led(now, if b { Led::Green } else { Led::Red }, c & 0x10 != 0);
        }
        7 => line.set_dtmf_detection(now, b),
        8 => line.read_hook_state(now),
        _ => {
            let _ = line.start_ringing(now, Cadence::from_millis(&[1, 1, 3, 7]).unwrap());
        }
    }
}

fn fxo_command(line: &mut FxoLine, now: Instant, c: u8, b: bool) {
    match c % 3 {
        0 => {
            // The battery rule: off-hook only ever succeeds with battery seen.
            if line.off_hook(now).is_ok() {
                assert_eq!(line.battery(), Some(true));
            }
        }
        1 => line.on_hook(now),
        _ => {
            let _ = line.set_led(now, if b { Led::Green } else { Led::Red }, c & 0x10 != 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fxs_type1_never_panics(inputs in proptest::collection::vec(input(), 0..200), auto in any::<bool>()) {
        let mut cfg = FxsConfig::default();
        cfg.auto_leds = auto;
        let mut line = FxsLine::new(Instant::from_millis(0), addr(), PORT, ChipType::Type1, cfg);
        drive!(line, &inputs, fxs_command);
    }

    #[test]
    fn fxs_type6_never_panics(inputs in proptest::collection::vec(input(), 0..200), auto in any::<bool>()) {
        let consts = Vmwi6Constants { ram767_mwi: 0x3F, ram767_default: 0x10, ram634_default: 0x20 };
        let mut cfg = FxsConfig::default();
        cfg.auto_leds = auto;
        cfg.vmwi6 = Some(consts);
        let mut line = FxsLine::new(Instant::from_millis(0), addr(), PORT, ChipType::Type6, cfg);
        drive!(line, &inputs, fxs_command);
    }

    #[test]
    fn fxo_never_panics(inputs in proptest::collection::vec(input(), 0..200), fw in any::<bool>()) {
        let mut cfg = FxoConfig::default();
        cfg.firmware_polarity = fw;
        let mut line = FxoLine::new(Instant::from_millis(0), addr(), PORT, cfg);
        drive!(line, &inputs, fxo_command);
    }
}
