//! Entry points for the fuzz targets in `fuzz/` (not a public API).
//!
//! Each takes arbitrary bytes and must never panic. A unit test calls each one so that the
//! stable test run exercises them too.

/// Parses bytes (as UTF-8, lossily) as a `system.conf`; every error renders with its place.
pub fn system_conf(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match crate::sysconf::parse_str("fuzz.conf", &text) {
        Ok(conf) => drop(format!("{conf:?}")),
        Err(errors) => {
            let shown = errors.to_string();
            assert!(shown.contains("fuzz.conf"), "{shown}");
        }
    }
}

/// Parses bytes (as UTF-8, lossily) as a bus layout file; a layout that parses is written
/// back and read again (the same layout), and a standby bus is built from it.
pub fn bus_layout(data: &[u8]) {
    use crate::xbus::{BusSetup, Numbering, XbusCore};
    let text = String::from_utf8_lossy(data);
    match BusSetup::from_text(&text) {
        Ok(setup) => {
            assert_eq!(BusSetup::from_text(&setup.to_text()).as_ref(), Ok(&setup));
            let now = xpp_proto::Instant::from_millis(0);
            if let Ok(core) = XbusCore::new_standby(now, 0, &setup, &mut Numbering::new()) {
                assert!(core.is_standby());
            }
        }
        Err(e) => assert!(e.line >= 1 && e.column >= 1, "{e}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entry_points_survive_odd_input() {
        let inputs: [&[u8]; 7] = [
            b"",
            b"\xff\xfe",
            b"span=1,1,0,esf,b8zs\nfxoks=1-1023,\n",
            b"fxsks=1-4\nfxoks=5-8\nloadzone=us\ndefaultzone=us\n",
            b"fxoks=1-1023,1-1023,1-1023\n",
            b"echocanceller=mg2,1-1000000000000000000000\n",
            b"=\n,\n-\n#\n\\\n",
        ];
        for i in inputs {
            super::system_conf(i);
            super::bus_layout(i);
        }
        super::bus_layout(
            b"unit 0.0 type=PRI chips=255 ports=255 protocol=t1\nunit 1.0 type=BRI chips=4 ports=1\n",
        );
        super::bus_layout(b"unit 0.0 type=FXS chips=8 ports=1 present=0\n");
    }
}
