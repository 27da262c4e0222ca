//! `system.conf`: every keyword from hand-written samples, each error with its line:column.

use super::*;
use crate::dahdi::{Law, LineConfig, Sig, SigCap};
use rstest::rstest;

const SAMPLE: &str = "\
# Astribank: FXS module (8 ports), FXO module (8 ports), a PRI and a BRI
span=1,1,0,ccs,hdb3,crc4
span = 2 , 0 , 7 , ESF , B8ZS , yellow   # T1
span=3,2,0,ccs,ami,nt,term
span=4,0,0,cas,hdb3
dynamic=eth,eth0/00:02:b3:35:43:9c,24,0

fxoks=1-6
fxols=7
fxogs=8
fxsks=9-12
fxsls=13
fxsgs=14,15
unused=16
bchan=17-18
indclear=19
dchan=20
clear=21-23
rawhdlc=24-25
fcshdlc=26-27
hardhdlc=28
mtp2=29
nethdlc=30-31:hdlc0
nethdlc=32
cas=33-34:1101
user=35:0001
dacs=36-37:40
dacsrbs=38:42
e&m=43
e&me1=44

alaw=17-20
mulaw=1
deflaw=2
echocanceller=mg2,1-4,7
echocanceller=OSLEC,9
56k=20,21,29
loadzone=us
loadzone = de
defaultzone=de
rxgain=1.5
";

#[test]
fn every_keyword() {
    let c = parse_str("system.conf", SAMPLE).unwrap_or_else(|e| panic!("{e}"));
    // spans
    let s1 = c.spans[&1];
    assert_eq!((s1.timing, s1.lbo, s1.framing, s1.coding, s1.crc4), (1, 0, Framing::Ccs, Coding::Hdb3, true));
    assert_eq!(s1.lineconfig(), LineConfig::CCS | LineConfig::HDB3 | LineConfig::CRC4);
    assert_eq!(s1.at, Location { line: 2, column: 1 });
    let s2 = c.spans[&2];
    assert_eq!((s2.timing, s2.lbo, s2.yellow), (0, 7, true));
    assert_eq!(s2.lineconfig(), LineConfig::ESF | LineConfig::B8ZS | LineConfig::NOTOPEN);
    assert_eq!(
        c.spans[&3].lineconfig(),
        LineConfig::CCS | LineConfig::AMI | LineConfig::NTTE | LineConfig::TERM
    );
    assert_eq!(c.spans[&4].lineconfig(), LineConfig::HDB3);
    let d = &c.dynamic_spans[0];
    assert_eq!(
        (d.driver.as_str(), d.address.as_str(), d.numchans, d.timing),
        ("eth", "eth0/00:02:b3:35:43:9c", 24, 0)
    );
    assert_eq!(d.at, Location { line: 6, column: 1 });
    // signalling
    let sig = |n: u32| c.channels[&n].sig;
    for n in 1..=6 {
        assert_eq!(sig(n), Sig::Fxoks);
    }
    assert_eq!(
        [sig(7), sig(8), sig(9), sig(12), sig(13), sig(14), sig(15), sig(16)],
        [Sig::Fxols, Sig::Fxogs, Sig::Fxsks, Sig::Fxsks, Sig::Fxsls, Sig::Fxsgs, Sig::Fxsgs, Sig::None]
    );
    assert_eq!([sig(17), sig(18), sig(19), sig(20)], [Sig::Clear, Sig::Clear, Sig::Clear, Sig::HdlcFcs]);
    // bundles
    assert_eq!((sig(21), sig(22), sig(23)), (Sig::Clear, Sig::Slave, Sig::Slave));
    assert_eq!((c.channels[&21].master, c.channels[&23].master), (None, Some(21)));
    assert_eq!((sig(24), sig(25), c.channels[&25].master), (Sig::HdlcRaw, Sig::Slave, Some(24)));
    assert_eq!((sig(26), sig(27), c.channels[&27].master), (Sig::HdlcFcs, Sig::Slave, Some(26)));
    assert_eq!((sig(17), c.channels[&18].master), (Sig::Clear, None), "bchan is not bundled");
    assert_eq!([sig(28), sig(29)], [Sig::HardHdlc, Sig::Mtp2]);
    assert_eq!(
        (sig(30), sig(31), c.channels[&30].netdev.as_deref()),
        (Sig::HdlcNet, Sig::Slave, Some("hdlc0"))
    );
    assert_eq!((sig(32), c.channels[&32].netdev.as_deref()), (Sig::HdlcNet, None));
    assert_eq!(
        (sig(33), c.channels[&33].idlebits, c.channels[&34].idlebits),
        (Sig::Cas, Some(0b1101), Some(0b1101))
    );
    assert_eq!((sig(35), c.channels[&35].idlebits, c.channels[&35].keyword), (Sig::Cas, Some(1), "user"));
    assert_eq!(
        (sig(36), c.channels[&36].dacs_dest, c.channels[&37].dacs_dest),
        (Sig::Dacs, Some(40), Some(41))
    );
    assert_eq!((sig(38), c.channels[&38].dacs_dest), (Sig::DacsRbs, Some(42)));
    assert_eq!((sig(43), sig(44)), (Sig::Em, Sig::EmE1));
    assert_eq!(c.channels.len(), 40, "1-38, 43, 44 (dacs destinations are not configured by dacs=)");
    assert!(c.channels[&1].is_analog() && !c.channels[&17].is_analog());
    assert_eq!(c.channels[&9].at, Location { line: 11, column: 1 });
    // modifiers
    assert_eq!((c.channels[&17].law, c.channels[&20].law), (Law::Alaw, Law::Alaw));
    assert_eq!(
        (c.channels[&1].law, c.channels[&2].law, c.channels[&3].law),
        (Law::Mulaw, Law::Default, Law::Default)
    );
    assert_eq!(c.channels[&4].echocanceller.as_deref(), Some("mg2"));
    assert_eq!(c.channels[&7].echocanceller.as_deref(), Some("mg2"));
    assert_eq!(c.channels[&5].echocanceller, None);
    assert_eq!(c.channels[&9].echocanceller.as_deref(), Some("oslec"));
    assert!(
        c.channels[&20].hdlc56 && c.channels[&21].hdlc56 && c.channels[&29].hdlc56 && !c.channels[&17].hdlc56
    );
    // zones, radio
    assert_eq!(c.zones, ["us", "de"]);
    assert_eq!(c.default_zone.as_deref(), Some("de"));
    assert_eq!(c.radio.len(), 1);
    assert_eq!((c.radio[0].key.as_str(), c.radio[0].value.as_str()), ("rxgain", "1.5"));
}

#[test]
fn empty_and_comment_only_files() {
    let c = parse_str("x", "").expect("empty is valid");
    assert_eq!(c, SystemConf::default());
    assert_eq!(c.effective_zones(), ["us"]);
    let c = parse_str("x", "# only\n   \n\t# comments\r\n").expect("comments");
    assert!(c.channels.is_empty());
    let c = parse_str("x", "defaultzone=fr\n").expect("defaultzone alone");
    assert_eq!(c.zones, ["fr"]);
    let c = parse_str("x", "FXOKS=1\r\nLoadZone=us\r\n").expect("case-insensitive keywords, CRLF");
    assert_eq!(c.channels[&1].sig, Sig::Fxoks);
}

#[rstest]
#[case::missing_equals("fxoks 1-8", 1, 1, "expected keyword=value")]
#[case::unknown_keyword("  fxsxx=1", 1, 3, "unknown keyword 'fxsxx'")]
#[case::empty_value("fxoks=   # nothing", 1, 7, "empty value")]
#[case::bad_list("fxoks=1,,2", 1, 9, "expected channel number")]
#[case::channel_zero("fxoks=0", 1, 7, "channel number must be 1..=1023")]
#[case::channel_too_big("\n\nfxoks=1-1024", 3, 9, "channel number must be 1..=1023")]
#[case::huge_number("fxoks=99999999999999999999", 1, 7, "channel number must be 1..=1023")]
#[case::backwards("fxoks=8-1", 1, 7, "range end 1 is below its start 8")]
#[case::trailing("fxoks=1-8 x", 1, 11, "expected end of line")]
#[case::twice("fxoks=1-8\nfxsks=9,8", 2, 9, "channel 8 already configured on line 1")]
#[case::twice_same_line("fxoks=1-4,3", 1, 11, "channel 3 already configured on line 1")]
#[case::span_number("span=0,1,0,ccs,hdb3", 1, 6, "span number must be 1..=128")]
#[case::span_129("span=129,1,0,ccs,hdb3", 1, 6, "span number must be 1..=128")]
#[case::timing("span=1,256,0,ccs,hdb3", 1, 8, "timing priority must be 0..=255")]
#[case::lbo("span=1,1,8,ccs,hdb3", 1, 10, "line build-out must be 0..=7")]
#[case::framing("span=1,1,0,sf,hdb3", 1, 12, "expected framing (d4, esf, cas or ccs)")]
#[case::coding("span=1,1,0,ccs,nrz", 1, 16, "expected coding (ami, b8zs or hdb3)")]
#[case::missing_field("span=1,1,0,ccs", 1, 15, "expected ','")]
#[case::t1_hdb3("span=1,1,0,esf,hdb3", 1, 16, "hdb3 is an E1 coding; d4/esf are T1 framings")]
#[case::e1_b8zs("span=1,1,0,ccs,b8zs", 1, 16, "b8zs is a T1 coding; cas/ccs are E1/BRI framings")]
#[case::t1_crc4("span=1,1,0,d4,ami,crc4", 1, 19, "crc4 needs E1 framing (cas or ccs)")]
#[case::option("span=1,1,0,ccs,hdb3,crc5", 1, 21, "expected span option (crc4, yellow, nt, te, term)")]
#[case::nt_te("span=1,1,0,ccs,ami,nt,te", 1, 23, "nt/te given twice")]
#[case::span_twice("span=1,1,0,ccs,hdb3\nspan=1,0,0,ccs,hdb3", 2, 6, "span 1 already configured on line 1")]
#[case::cas_bits("cas=1:110", 1, 7, "expected four idle bits ABCD such as 1101")]
#[case::cas_no_bits("cas=1", 1, 6, "expected ':'")]
#[case::dacs_range("dacs=1-10:1020", 1, 11, "last destination channel must be 1..=1023")]
#[case::not_configured("fxoks=1\nalaw=1-2", 2, 6, "alaw: channel 2 has no signalling line")]
#[case::echo_not_configured("echocanceller=mg2,5", 1, 19, "echocanceller: channel 5 has no signalling line")]
#[case::echo_name(
    "echocanceller=m g2,1",
    1,
    15,
    "expected an echo canceller name (at most 15 letters/digits)"
)]
#[case::not_56k("fxoks=1\n56k=1", 2, 5, "56k: channel 1 is FXOKS, not a clear/HDLC channel")]
#[case::zone("loadzone=u s", 1, 10, "expected a tone zone name such as 'us'")]
#[case::defaultzone_twice("defaultzone=us\ndefaultzone=de", 2, 13, "defaultzone already set on line 1")]
#[case::continuation("fxoks=1-4,\\\n5-8", 1, 11, "line continuation is not supported in system.conf")]
#[case::dynamic("dynamic=eth,eth0,0,1", 1, 18, "number of channels must be 1..=1023")]
#[case::utf8_column("éé=1", 1, 1, "unknown keyword 'éé'")]
#[case::utf8_value("fxoks=ü", 1, 7, "expected channel number")]
fn errors_with_line_and_column(
    #[case] text: &str,
    #[case] line: u32,
    #[case] column: u32,
    #[case] msg: &str,
) {
    let errs = parse_str("system.conf", text).expect_err("must fail");
    let e = errs.first().expect("one error");
    assert_eq!(e.to_string(), format!("system.conf:{line}:{column}: {msg}"), "all: {errs}");
}

#[test]
fn all_errors_are_reported_in_order_and_bounded() {
    let errs = parse_str("s.conf", "bogus=1\nfxoks=1\nfxoks=1\nspan=0,0,0,ccs,ami\n").expect_err("fails");
    let lines: Vec<u32> = errs.0.iter().map(|e| e.at.line).collect();
    assert_eq!(lines, [1, 3, 4]);
    let many = "x\n".repeat(1000);
    assert_eq!(parse_str("s", &many).expect_err("fails").0.len(), MAX_ERRORS);
}

#[test]
fn size_limit() {
    let big = "#".repeat(MAX_INPUT_LEN + 1);
    let errs = parse_str("big.conf", &big).expect_err("too large");
    assert_eq!(
        errs.to_string(),
        format!("big.conf:1:1: file too large ({} bytes; at most {MAX_INPUT_LEN})", big.len())
    );
}

#[test]
fn check_against_sigcaps() {
    let c = parse_str("system.conf", "fxoks=1-2\nfxsks=3\nbchan=4\nclear=5-6\n").expect("valid");
    let caps = |chan: u32| match chan {
        1 | 2 => Some(SigCap::ANALOG_FXS_PORT),
        3 => Some(SigCap::ANALOG_FXS_PORT),
        4..=6 => Some(SigCap::CLEAR | SigCap::DACS),
        _ => None,
    };
    let errs = c.check_sigcaps("system.conf", caps).expect_err("chan 3 mismatched");
    assert_eq!(
        errs.to_string(),
        "system.conf:2:1: channel 3: signalling FXSKS not supported by the port (sigcap FXOLS|FXOGS|FXOKS)"
    );
    let errs = c
        .check_sigcaps("system.conf", |ch| (ch < 6).then_some(SigCap(u32::MAX >> 1)))
        .expect_err("6 missing");
    assert_eq!(errs.to_string(), "system.conf:4:1: channel 6 does not exist");
}

#[test]
fn parse_file_reads_and_names_the_file() {
    let dir = std::env::temp_dir().join(format!("xpp-span-sysconf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("system.conf");
    std::fs::write(&path, "fxoks=1-8\nfxsks=9-16\nloadzone=us\nfxoks=3\n").expect("write");
    let errs = parse_file(&path).expect_err("chan 3 twice");
    assert_eq!(errs.to_string(), format!("{}:4:7: channel 3 already configured on line 1", path.display()));
    std::fs::write(&path, "fxoks=1-8\nfxsks=9-16\n").expect("write");
    assert_eq!(parse_file(&path).expect("valid").channels.len(), 16);
    let missing = parse_file(&dir.join("nope.conf")).expect_err("missing");
    assert!(missing.to_string().contains("nope.conf:0:0: cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 15: `fxoks=1-1023,1-1023,...` up to the input cap, every channel after the first
/// item a repeat. The errors are capped at MAX_ERRORS, all at the second item, channels in
/// order; nothing is expanded per channel (`tests/sysconf_bounded.rs` counts the bytes).
#[test]
fn adversarial_repeated_ranges_are_capped() {
    let mut text = String::from("fxoks=1-1023");
    while text.len() + ",1-1023".len() <= MAX_INPUT_LEN {
        text += ",1-1023";
    }
    let errs = parse_str("system.conf", &text).expect_err("repeats");
    assert_eq!(errs.0.len(), MAX_ERRORS);
    for (e, chan) in errs.0.iter().zip(1..) {
        assert_eq!(e.to_string(), format!("system.conf:1:14: channel {chan} already configured on line 1"));
    }
    // The file: each item followed by a comma, so the list ends without a number.
    let text = format!("fxoks={}", "1-1023,".repeat(50_000));
    let errs = parse_str("system.conf", &text).expect_err("trailing comma");
    assert_eq!(errs.to_string(), format!("system.conf:1:{}: expected channel number", text.len() + 1));
    // Modifier lines are ranges too: repeats set each channel once, errors stop at the cap.
    let text = format!("fxoks=1-8\nalaw={}1-1023\n", "1-1023,".repeat(50_000));
    let errs = parse_str("system.conf", &text).expect_err("alaw names unconfigured channels");
    assert_eq!(errs.0.len(), MAX_ERRORS);
    assert_eq!(errs.0[0].to_string(), "system.conf:2:6: alaw: channel 9 has no signalling line");
    assert_eq!(errs.0[31].to_string(), "system.conf:2:6: alaw: channel 40 has no signalling line");
}

#[test]
fn modifiers_last_line_of_a_kind_wins() {
    let text = "clear=1-3\nfxoks=4\nalaw=1-4,2\nmulaw=2\necho=1\nechocanceller=mg2,1-3\n\
                echocanceller=oslec,3,3\n56k=1-3,1\nloadzone=us\nloadzone=de\nloadzone=us\n";
    let text = text.replace("echo=1\n", "");
    let c = parse_str("system.conf", &text).expect("valid");
    let ch = |n: u32| &c.channels[&n];
    assert_eq!([ch(1).law, ch(2).law, ch(3).law, ch(4).law], [Law::Alaw, Law::Mulaw, Law::Alaw, Law::Alaw]);
    assert_eq!(ch(1).echocanceller.as_deref(), Some("mg2"));
    assert_eq!(ch(3).echocanceller.as_deref(), Some("oslec"));
    assert_eq!(ch(4).echocanceller, None);
    assert!(ch(1).hdlc56 && ch(2).hdlc56 && ch(3).hdlc56 && !ch(4).hdlc56);
    assert_eq!((ch(2).sig, ch(2).master), (Sig::Slave, Some(1)));
    assert_eq!(c.zones, ["us", "de"]);
}

#[test]
fn repeats_keep_their_index_in_the_list() {
    // dacs destinations and bundle members count the list as written, repeats included.
    let c = parse_str("system.conf", "dacs=1-2,1,3:10\nclear=5,5,6\n").expect_err("1 and 5 twice");
    assert_eq!(
        c.to_string(),
        "system.conf:1:10: channel 1 already configured on line 1\n\
         system.conf:2:9: channel 5 already configured on line 2"
    );
    let c = parse_str("system.conf", "dacs=1-2,3:10\nclear=5,6\n").expect("valid");
    assert_eq!(c.channels[&3].dacs_dest, Some(12));
    assert_eq!((c.channels[&6].sig, c.channels[&6].master), (Sig::Slave, Some(5)));
}

/// A device or pipe has no size in its metadata: the read itself stops past the cap.
#[cfg(target_os = "linux")]
#[test]
fn parse_file_refuses_endless_input() {
    let errs = parse_file(std::path::Path::new("/dev/zero")).expect_err("endless");
    assert_eq!(errs.to_string(), format!("/dev/zero:0:0: file too large (more than {MAX_INPUT_LEN} bytes)"));
}
