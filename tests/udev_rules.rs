//! `udev/60-xpp-astribank.rules` grants access to exactly the identities
//! `xpp::usb::discovery::classify` knows: no Astribank stage left out, nothing else let in.

use xpp::usb::discovery::classify;

/// udev's glob subset used by the rule file: literal characters and `[...]` classes.
fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < p.len() {
        let Some(&c) = s.get(j) else { return false };
        if p[i] == b'[' {
            let Some(end) = p[i..].iter().position(|&b| b == b']') else { return false };
            if !p[i + 1..i + end].contains(&c) {
                return false;
            }
            i += end + 1;
        } else {
            if p[i] != c {
                return false;
            }
            i += 1;
        }
        j += 1;
    }
    j == s.len()
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("ATTR{{{name}}}==\"");
    let start = line.find(&key)? + key.len();
    let len = line[start..].find('"')?;
    Some(&line[start..start + len])
}

#[test]
fn rules_cover_exactly_the_classified_identities() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/udev/60-xpp-astribank.rules")).unwrap();
    let rules: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| Some((attr(l, "idVendor")?, attr(l, "idProduct")?)))
        .collect();
    assert_eq!(rules.len(), 3);
    for l in text.lines().filter(|l| attr(l, "idVendor").is_some()) {
        assert!(l.contains("MODE=\"0660\"") && l.contains("GROUP=\"xpp\""), "{l}");
    }
    for vendor in [0xE4E4u16, 0x04B4] {
        for product in 0..=u16::MAX {
            let (v, p) = (format!("{vendor:04x}"), format!("{product:04x}"));
            let granted = rules.iter().any(|(rv, rp)| glob(rv, &v) && glob(rp, &p));
            assert_eq!(granted, classify(vendor, product).is_some(), "{v}:{p}");
        }
    }
}

#[test]
fn glob_subset() {
    assert!(glob("11[3456][012]", "1162"));
    assert!(!glob("11[3456][012]", "1163"));
    assert!(!glob("11[3456][012]", "116"));
    assert!(!glob("116", "1162"));
}
