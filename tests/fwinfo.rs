//! What `examples/fwinfo.rs` prints, through the library functions it is a thin shell over.

#[path = "../crates/xpp-proto/tests/support/mod.rs"]
mod support;

use xpp::proto::firmware::{HexFile, Summary};

#[test]
fn json_and_text_for_fpga_1161() {
    let dir = support::firmware_dir();
    let bytes = std::fs::read(dir.join("FPGA_1161.hex")).unwrap();
    let hex = HexFile::parse(&bytes).unwrap();
    let summary = Summary::new("FPGA_1161.hex", &hex).unwrap();
    let v: serde_json::Value = serde_json::to_value(&summary).unwrap();
    assert_eq!(v["version"], "9732");
    assert_eq!(v["records"]["data"], 1061);
    assert_eq!(v["records"]["extended_linear_address"], 3);
    assert_eq!(v["data_bytes"], 135_771);
    // The same convention as the text below: first and last address, both included.
    assert_eq!(v["address_ranges"], serde_json::json!([{ "first": 0, "last": 0x2125A }]));
    assert_eq!(v["target"], serde_json::json!({ "Mpp": "FPGA" }));
    assert_eq!(v["load"], "FPGA via MPP DEV_SEND (dest=FPGA), 1061 segments");
    let text = summary.to_string();
    assert!(text.contains("records:  1061 data, 1 EOF, 3 extended linear address\n"), "{text}");
    assert!(text.contains("ranges:   0x00000000-0x0002125A\n"), "{text}");
}

#[test]
fn error_line_format() {
    let e = HexFile::parse(b"# x\n:0400100001020304E3\n:00000001FF\n").unwrap_err();
    assert_eq!(e.to_string(), "line 2: bad checksum (expected 0xE2, found 0xE3)");
    let e = HexFile::parse(b":00000001FF\n:00000001FF\n").unwrap_err();
    assert_eq!(format!("fwinfo: F.hex: {e}"), "fwinfo: F.hex: line 2: nothing may follow the EOF record");
}
