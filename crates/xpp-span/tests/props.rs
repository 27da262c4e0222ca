//! Property tests: arbitrary system.conf text never panics; arbitrary line facts and hook
//! commands never panic and timers never go backwards.

use proptest::prelude::*;
use xpp_span::chan::{Chan, LineFact};
use xpp_span::hook::{HookMachine, HookMode};
use xpp_span::{HookCmd, Instant, RxSig, Sig, SigCap, sysconf};

const SIGS: [Sig; 14] = [
    Sig::Fxsls,
    Sig::Fxsgs,
    Sig::Fxsks,
    Sig::Fxols,
    Sig::Fxogs,
    Sig::Fxoks,
    Sig::Em,
    Sig::EmE1,
    Sig::Sf,
    Sig::Clear,
    Sig::Cas,
    Sig::None,
    Sig::HdlcFcs,
    Sig::Unknown(0x3000),
];

#[derive(Debug, Clone)]
enum Op {
    Rx(i32),
    Hook(i32, bool),
    Timeout,
    Reset(usize),
    Fact(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (-1i32..6).prop_map(Op::Rx),
        ((-1i32..8), any::<bool>()).prop_map(|(c, nb)| Op::Hook(c, nb)),
        Just(Op::Timeout),
        (0usize..SIGS.len()).prop_map(Op::Reset),
        (0u8..12).prop_map(Op::Fact),
    ]
}

fn fact(i: u8) -> LineFact {
    match i {
        0 => LineFact::HookOff,
        1 => LineFact::HookOn,
        2 => LineFact::GroundStart,
        3 => LineFact::RingBegin,
        4 => LineFact::RingEnd,
        5 => LineFact::BatteryLost,
        6 => LineFact::BatteryRestored,
        7 => LineFact::PolarityReversal,
        8 => LineFact::DtmfDown(b'1'),
        9 => LineFact::DtmfUp(b'1'),
        10 => LineFact::NeonMwi(true),
        _ => LineFact::NeonMwi(false),
    }
}

fn line_chars() -> impl Strategy<Value = String> {
    let tokens = prop::sample::select(vec![
        "span=",
        "fxoks=",
        "fxsks=",
        "clear=",
        "cas=",
        "dacs=",
        "nethdlc=",
        "dynamic=",
        "alaw=",
        "56k=",
        "echocanceller=",
        "loadzone=",
        "defaultzone=",
        "rxgain=",
        "1",
        "23",
        "1023",
        "1024",
        "99999999999",
        "-",
        ",",
        ":",
        "#",
        "\n",
        " ",
        "\\",
        "ccs",
        "esf",
        "hdb3",
        "b8zs",
        "crc4",
        "nt",
        "te",
        "1101",
        "mg2",
        "é",
        "=",
        "\r\n",
    ]);
    prop::collection::vec(tokens, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn sysconf_arbitrary_text_never_panics(text in any::<String>()) {
        let _ = sysconf::parse_str("fuzz.conf", &text);
    }

    #[test]
    fn sysconf_token_soup_never_panics(text in line_chars()) {
        match sysconf::parse_str("fuzz.conf", &text) {
            Ok(conf) => {
                for c in conf.channels.keys() {
                    prop_assert!((1..=1023).contains(c));
                }
            }
            Err(errs) => {
                prop_assert!(!errs.0.is_empty() && errs.0.len() <= sysconf::MAX_ERRORS);
                for e in &errs.0 {
                    prop_assert!(e.at.line >= 1 && e.at.column >= 1, "{e}");
                }
            }
        }
    }

    #[test]
    fn hook_machine_never_panics_and_timers_move_forward(
        sig in 0usize..SIGS.len(),
        steps in prop::collection::vec((0u64..3000, op()), 0..80),
    ) {
        let mut m = HookMachine::new(1, SIGS[sig]);
        let mut now = Instant::ZERO;
        for (dt_ms, op) in steps {
            // Deliver due timers first, as a run loop would.
            let target = now + xpp_span::Duration::from_millis(dt_ms);
            while let Some(at) = m.poll_timeout().filter(|&at| at <= target) {
                prop_assert!(at >= now, "timer {at} before now {now}");
                now = at;
                m.handle_timeout(now);
                prop_assert!(m.poll_timeout().is_none_or(|t| t > now), "expired timer left at {now}");
            }
            now = target;
            match op {
                Op::Rx(s) => m.handle_rxsig(now, RxSig::from(s)),
                Op::Hook(c, nb) => {
                    let mode = if nb { HookMode::NonBlocking } else { HookMode::Blocking };
                    let _ = m.set_hook(now, HookCmd::from(c), mode);
                }
                Op::Timeout => m.handle_timeout(now),
                Op::Reset(s) => m.reset(now, SIGS[s]),
                Op::Fact(_) => {}
            }
            prop_assert!(m.poll_timeout().is_none_or(|t| t >= now));
            let mut n = 0;
            while m.poll_event().is_some() {
                n += 1;
                prop_assert!(n <= 64);
            }
            let _ = m.poll_hooksig();
        }
    }

    #[test]
    fn chan_facts_never_panic(
        sig in 0usize..SIGS.len(),
        steps in prop::collection::vec((0u64..3000, op()), 0..80),
    ) {
        let mut c = Chan::new(1, 1, SigCap(u32::MAX >> 1));
        let _ = c.configure(Instant::ZERO, SIGS[sig]);
        let mut now = Instant::ZERO;
        for (dt_ms, op) in steps {
            now += xpp_span::Duration::from_millis(dt_ms);
            if c.poll_timeout().is_some_and(|t| t <= now) {
                c.handle_timeout(now);
            }
            match op {
                Op::Fact(f) => c.handle_fact(now, fact(f)),
                Op::Rx(s) => c.handle_rxsig(now, RxSig::from(s)),
                Op::Hook(cmd, _) => { let _ = c.set_hook(now, HookCmd::from(cmd), HookMode::NonBlocking); }
                Op::Timeout => c.handle_timeout(now),
                Op::Reset(s) => { let _ = c.configure(now, SIGS[s]); }
            }
            prop_assert!(c.poll_timeout().is_none_or(|t| t >= now));
            prop_assert!(c.events().len() <= 64);
            let _ = c.poll_line_command();
            if dt_ms % 3 == 0 {
                let _ = c.get_event();
            }
        }
    }
}

/// An arbitrary valid bus layout: 1..=6 units at distinct addresses, the first 0.0.
fn bus_setup() -> impl Strategy<Value = xpp_span::xbus::BusSetup> {
    use xpp_proto::wire::pri::PriProtocol;
    use xpp_proto::wire::{Address, CardType, UnitDescriptor};
    use xpp_span::span::UnitSetup;
    let unit = (0u8..16, 0u8..16, any::<u8>(), any::<u8>(), any::<u8>(), any::<u32>(), 0u8..4);
    (proptest::collection::btree_set(1u8..64, 0..6), proptest::collection::vec(unit, 6)).prop_map(
        |(addrs, fields)| {
            let addrs = std::iter::once(0u8).chain(addrs);
            let units = addrs
                .zip(fields)
                .map(|(a, (t, subtype, chips, ports, dir, present, proto))| {
                    let addr = Address::new(a >> 3, a & 7).unwrap();
                    let mut d = UnitDescriptor::new(addr, CardType::from(t), subtype, chips, ports);
                    d.port_dir = dir;
                    let pri_protocol =
                        [None, Some(PriProtocol::E1), Some(PriProtocol::T1), Some(PriProtocol::J1)]
                            [usize::from(proto)];
                    UnitSetup { descriptor: d, present, pri_protocol }
                })
                .collect();
            xpp_span::xbus::BusSetup::new(units)
        },
    )
}

proptest! {
    /// A layout written as text reads back as the same layout.
    #[test]
    fn layout_text_round_trips(setup in bus_setup()) {
        let text = setup.to_text();
        prop_assert_eq!(xpp_span::xbus::BusSetup::from_text(&text), Ok(setup), "{}", text);
    }

    /// Arbitrary text never panics; a refusal names a line that exists.
    #[test]
    fn layout_text_never_panics(text in "(unit|[ .=#0-9a-zA-Z]|\n){0,200}") {
        if let Err(e) = xpp_span::xbus::BusSetup::from_text(&text) {
            prop_assert!(e.line >= 1 && e.line <= text.lines().count().max(1), "{}", e);
        }
    }
}
