//! `system.conf` applied to running buses the way dahdi_cfg does: analog signalling now,
//! digital settings validated and applied, errors at the channel's line, nothing applied
//! from an invalid file.

mod common;

use common::{FXS_FXO, Rig, descriptors};
use xpp_emu::DeviceConfig;
use xpp_emu::config::ModuleConfig;
use xpp_emu::data::{DataConfig, DataInterface};
use xpp_proto::Instant;
use xpp_proto::wire::pri::PriProtocol;
use xpp_span::span::UnitSetup;
use xpp_span::sysconf::{ConfErrorKind, Deferred, parse_str};
use xpp_span::xbus::{BusSetup, Numbering, XbusCore};
use xpp_span::{Law, Sig};

const FILE: &str = "system.conf";

fn sig(core: &XbusCore, chan: u32) -> Sig {
    core.channel(chan).map_or(Sig::None, |c| c.chan().sig())
}

#[test]
fn analog_signalling_takes_effect_and_settings_are_recorded() {
    let mut rig = Rig::new(FXS_FXO);
    let conf = parse_str(
        FILE,
        "# FXS ports 1-8, FXO ports 15-22\nfxols=1-2\nfxoks=3\nfxsls=15\nfxsks=16\n\
         echocanceller=mg2,1-2\nalaw=1\nloadzone=de\ndefaultzone=de\n",
    )
    .unwrap();
    let now = rig.now;
    let applied = conf.apply(FILE, now, [&mut rig.core]).unwrap();
    assert_eq!(applied.configured, [(1, Sig::Fxols), (2, Sig::Fxols), (15, Sig::Fxsls)]);
    assert_eq!(applied.unchanged, [(3, Sig::Fxoks), (16, Sig::Fxsks)]);
    assert!(applied.defaulted.is_empty(), "the rig configured every port already");
    assert!(applied.deferred.is_empty());
    assert_eq!(
        (applied.zones.as_slice(), applied.default_zone.as_deref()),
        (&["de".to_owned()][..], Some("de"))
    );
    let s1 = &applied.settings[0];
    assert_eq!((s1.chan, s1.law, s1.echocanceller.as_deref()), (1, Law::Alaw, Some("mg2")));
    assert_eq!(applied.settings[1].echocanceller.as_deref(), Some("mg2"));
    assert_eq!(applied.settings[2].echocanceller, None);
    assert_eq!(
        [1, 2, 3, 4, 15, 16].map(|c| sig(&rig.core, c)),
        [Sig::Fxols, Sig::Fxols, Sig::Fxoks, Sig::Fxoks, Sig::Fxsls, Sig::Fxsks]
    );
    // `alaw=1` takes effect on the channel (the analog span is mu-law); the others keep it.
    let law = |c| rig.core.channel(c).unwrap().law();
    assert_eq!([1, 2, 15].map(law), [Law::Alaw, Law::Mulaw, Law::Mulaw]);
}

#[test]
fn mismatched_signalling_names_the_line_and_applies_nothing() {
    let mut rig = Rig::new(FXS_FXO);
    let conf =
        parse_str(FILE, "fxols=3\n# an FXS port cannot do FXS signalling\nfxsks=1\nbchan=15\n").unwrap();
    let now = rig.now;
    let errs = conf.apply(FILE, now, [&mut rig.core]).unwrap_err();
    assert_eq!(errs.0.len(), 2, "{errs}");
    assert!(matches!(errs.0[0].kind, ConfErrorKind::NotPermitted { chan: 1, sig: Sig::Fxsks, .. }));
    assert_eq!(errs.0[0].at.line, 3);
    assert!(errs.to_string().starts_with("system.conf:3:1: channel 1: signalling"), "{errs}");
    assert!(matches!(errs.0[1].kind, ConfErrorKind::NotPermitted { chan: 15, sig: Sig::Clear, .. }));
    assert_eq!(errs.0[1].at.line, 4);
    // Nothing applied: channel 3 keeps its default.
    assert_eq!(sig(&rig.core, 3), Sig::Fxoks);
}

#[test]
fn missing_channels_and_spans_are_errors_at_their_lines() {
    let mut rig = Rig::new(FXS_FXO);
    let conf = parse_str(FILE, "span=1,1,0,esf,b8zs\nspan=9,0,0,ccs,hdb3\nfxoks=8-23\n").unwrap();
    let now = rig.now;
    let errs = conf.apply(FILE, now, [&mut rig.core]).unwrap_err();
    let kinds: Vec<_> = errs.0.iter().map(|e| (e.at.line, e.kind.clone())).collect();
    // 9..14 are the FXS unit's digital I/O channels (FXS port sigcap); 15.. are FXO ports.
    assert_eq!(kinds[0], (1, ConfErrorKind::NotDigitalSpan(1)));
    assert_eq!(kinds[1], (2, ConfErrorKind::NoSuchSpan(9)));
    assert!(matches!(kinds[2], (3, ConfErrorKind::NotPermitted { chan: 15, .. })));
    assert_eq!(kinds.last(), Some(&(3, ConfErrorKind::NoSuchChannel(23))));
    assert!(errs.to_string().contains("system.conf:2:1: span 9 does not exist"), "{errs}");
}

#[test]
fn digital_settings_configure_and_start_the_pri_span() {
    let slots = [
        Some(ModuleConfig::FXS),
        Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 1 }),
        None,
        None,
    ];
    let mut rig = Rig::with(slots, DataConfig::default(), 0, &mut Numbering::new());
    // Span 1: FXS 1..14; span 2: E1 PRI 15..45, D-channel at position 16 (channel 30).
    assert_eq!(rig.core.span(2).map(|s| (s.basechan(), s.channels(), s.dchan())), Some((15, 31, Some(16))));
    let conf = parse_str(
        FILE,
        "span=2,2,0,ccs,hdb3,crc4\nbchan=15-29,31-45\ndchan=30\nfxols=1\ndynamic=eth,eth0/00:11:22:33:44:55,31,0\n",
    )
    .unwrap();
    let now = rig.now;
    let applied = conf.apply(FILE, now, [&mut rig.core]).unwrap();
    // The defaults gave the bearers `clear` and the D-channel `hdlcfcs` already: unchanged.
    assert_eq!(applied.configured, [(1, Sig::Fxols)]);
    assert_eq!(applied.unchanged.len(), 31);
    assert_eq!(applied.spans, [2]);
    assert_eq!(applied.deferred.len(), 1);
    assert!(matches!(&applied.deferred[0], Deferred::Dynamic { driver, .. } if driver == "eth"));
    assert_eq!(rig.core.span(2).map(|s| s.timing_priority()), Some(2));
    assert_eq!(rig.core.span_started(2), Some(true));
    assert_eq!(sig(&rig.core, 30), Sig::HdlcFcs);
    assert_eq!(sig(&rig.core, 15), Sig::Clear);
}

#[test]
fn a_span_line_its_protocol_refuses_applies_nothing() {
    let slots = [
        Some(ModuleConfig::FXS),
        Some(ModuleConfig::Pri { protocol: PriProtocol::E1, ports: 1 }),
        None,
        None,
    ];
    let mut rig = Rig::with(slots, DataConfig::default(), 0, &mut Numbering::new());
    // ESF and B8ZS are T1 settings: the E1 span refuses the line, and nothing else applies.
    let conf = parse_str(FILE, "fxols=1\nspan=2,3,0,esf,b8zs\n").unwrap();
    let now = rig.now;
    let errors = conf.apply(FILE, now, [&mut rig.core]).unwrap_err();
    assert_eq!(errors.to_string(), format!("{FILE}:2:1: span 2: `esf` is not a line setting of E1 spans"));
    assert_eq!(sig(&rig.core, 1), Sig::Fxoks);
    assert_eq!(rig.core.span(2).map(|s| s.timing_priority()), Some(1));
}

#[test]
fn unlisted_analog_ports_get_their_natural_signalling() {
    let mut dev = DataInterface::new(&DeviceConfig::default().with_slots(FXS_FXO));
    let now = Instant::from_millis(1);
    dev.start_session(now);
    let units = descriptors(&mut dev, now);
    let setup = BusSetup::new(units.iter().copied().map(UnitSetup::new).collect());
    let mut core = XbusCore::new(now, 0, &setup, &mut Numbering::new()).unwrap();
    assert_eq!(sig(&core, 2), Sig::None);
    let conf = parse_str(FILE, "fxols=1\n").unwrap();
    let applied = conf.apply(FILE, now, [&mut core]).unwrap();
    assert_eq!(applied.configured, [(1, Sig::Fxols)]);
    let expected: Vec<(u32, Sig)> =
        (2..=8).map(|c| (c, Sig::Fxoks)).chain((15..=22).map(|c| (c, Sig::Fxsks))).collect();
    assert_eq!(applied.defaulted, expected);
    // Digital I/O channels stay unconfigured; default zone list is dahdi_cfg's "us".
    assert_eq!(sig(&core, 9), Sig::None);
    assert_eq!(applied.zones, ["us"]);
}

#[test]
fn channels_are_found_across_buses_by_global_number() {
    let mut numbering = Numbering::new();
    let mut a = Rig::with(FXS_FXO, DataConfig::default(), 0, &mut numbering);
    let mut b = Rig::with(FXS_FXO, DataConfig::default(), 1, &mut numbering);
    let conf = parse_str(FILE, "fxols=2\nfxols=24\n").unwrap();
    let now = a.now;
    let applied = conf.apply(FILE, now, [&mut a.core, &mut b.core]).unwrap();
    assert_eq!(applied.configured, [(2, Sig::Fxols), (24, Sig::Fxols)]);
    assert_eq!((sig(&a.core, 2), sig(&b.core, 24), sig(&b.core, 23)), (Sig::Fxols, Sig::Fxols, Sig::Fxoks));
}

#[test]
fn a_removed_device_refuses_at_the_line() {
    let mut rig = Rig::new(FXS_FXO);
    rig.core.handle_removed();
    let conf = parse_str(FILE, "\nfxols=1\n").unwrap();
    let now = rig.now;
    let errs = conf.apply(FILE, now, [&mut rig.core]).unwrap_err();
    assert_eq!(errs.0[0].at.line, 2);
    assert!(matches!(&errs.0[0].kind, ConfErrorKind::Refused { chan: 1, .. }), "{errs}");
}
