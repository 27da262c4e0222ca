//! `read_firmware_dir` reads each file through a cap: an oversized image is refused with its
//! name and the cap after reading one byte past the cap, not read whole.

use std::io::ErrorKind;
use std::path::Path;

use xpp_bringup::read_firmware_dir;
use xpp_proto::firmware::{MAX_HEX_FILE_LEN, echo::MAX_IMAGE_LEN};

/// A sparse file of `len` zero bytes (no disk blocks written).
fn sparse(path: &Path, len: usize) {
    std::fs::File::create(path).and_then(|f| f.set_len(len as u64)).expect("sparse file");
}

#[test]
fn oversized_files_are_refused_with_name_and_cap() {
    let dir = std::env::temp_dir().join(format!("xpp-bringup-fwdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    std::fs::write(dir.join("USB_FW.hex"), ":00000001FF\n").expect("write");

    let big = dir.join("FPGA_1161.hex");
    sparse(&big, MAX_HEX_FILE_LEN + 1);
    let err = read_firmware_dir(&dir).expect_err("hex over the cap");
    assert_eq!(err.kind(), ErrorKind::FileTooLarge);
    assert_eq!(err.to_string(), format!("{}: more than {MAX_HEX_FILE_LEN} bytes", big.display()));
    std::fs::remove_file(&big).expect("rm");

    let echo = dir.join(xpp_bringup::ECHO_IMAGE);
    sparse(&echo, MAX_IMAGE_LEN + 1);
    let err = read_firmware_dir(&dir).expect_err("echo image over the cap");
    assert_eq!(err.to_string(), format!("{}: more than {MAX_IMAGE_LEN} bytes", echo.display()));

    // At the caps both are read (and the empty HEX file kept as its parse error).
    sparse(&echo, MAX_IMAGE_LEN);
    sparse(&big, 0);
    let fw = read_firmware_dir(&dir).expect("within the caps");
    assert_eq!(fw.echo_image().map(<[u8]>::len), Some(MAX_IMAGE_LEN));
    assert!(fw.get("USB_FW.hex").is_some_and(Result::is_ok));
    assert!(fw.get("FPGA_1161.hex").is_some_and(Result::is_err));
    let _ = std::fs::remove_dir_all(&dir);
}
