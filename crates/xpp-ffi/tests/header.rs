//! The checked-in C header is what cbindgen makes of the sources: a change to the ABI that
//! is not in `include/xpp.h` fails here. `XPP_BLESS=1 cargo test -p xpp-ffi --test header`
//! rewrites it.

use std::path::Path;

#[test]
fn the_checked_in_header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .expect("cbindgen runs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8");
    let path = dir.join("include/xpp.h");
    if std::env::var_os("XPP_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/xpp.h");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "include/xpp.h differs from what cbindgen generates; run XPP_BLESS=1 cargo test -p xpp-ffi --test header"
    );
    // The version macros follow the package version.
    for (name, value) in [
        ("XPP_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("XPP_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("XPP_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert!(generated.contains(&format!("#define {name} {value}")), "{name} = {value}");
    }
}
