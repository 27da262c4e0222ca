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
        }
    }
}
