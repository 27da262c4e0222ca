//! The unit tests inside the example programs that `tests/programs.rs` runs as processes
//! (`emulator`, `fwinfo`, `timing`, `xpp-dump`): `cargo test` builds those examples as
//! programs, so their `#[cfg(test)]` modules are compiled and run here instead.
// Each example includes examples/common itself.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/emulator.rs"]
#[allow(dead_code)]
mod emulator;
#[path = "../examples/fwinfo.rs"]
#[allow(dead_code)]
mod fwinfo;
#[path = "../examples/timing.rs"]
#[allow(dead_code)]
mod timing;
#[path = "../examples/xpp-dump.rs"]
#[allow(dead_code)]
mod xpp_dump;
