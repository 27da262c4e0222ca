//! `fwinfo`: what an Astribank firmware file holds and how it would be loaded.
//!
//! ```text
//! cargo run --example fwinfo -- FILE [--json]
//! ```
//!
//! Prints the version, record counts per type, data bytes, address ranges and the load the
//! file name implies (e.g. `FPGA via MPP DEV_SEND (dest=FPGA), 1061 segments`); `--json` prints
//! the same as one JSON object. An invalid file prints `fwinfo: FILE: line N: reason` on stderr
//! and exits with status 1. All logic is in `xpp::proto::firmware::Summary`.

mod common;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use xpp::proto::firmware::{self, HexFile, Summary};

/// Show what an Astribank firmware (Intel-HEX) file holds.
#[derive(Parser)]
#[command(name = "fwinfo")]
struct Args {
    /// The firmware file (USB_FW*.hex, FPGA_*.hex, PIC_TYPE_<n>.hex, ...).
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn run(args: &Args) -> Result<String, String> {
    // At most one byte past the cap is read: the file may be a device or a pipe.
    let bytes = std::fs::File::open(&args.file)
        .and_then(|f| xpp::proto::input::read_capped(f, firmware::MAX_HEX_FILE_LEN))
        .map_err(|e| e.to_string())?;
    let hex = HexFile::parse(&bytes).map_err(|e| e.to_string())?;
    let summary = Summary::new(&args.file.to_string_lossy(), &hex).map_err(|e| e.to_string())?;
    if args.json {
        serde_json::to_string(&summary).map(|s| s + "\n").map_err(|e| e.to_string())
    } else {
        Ok(summary.to_string())
    }
}

fn main() -> ExitCode {
    common::init();
    let args = Args::parse();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fwinfo: {}: {e}", args.file.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `fwinfo /dev/zero` reads one byte past the cap and refuses (it used to read forever).
    #[cfg(target_os = "linux")]
    #[test]
    fn endless_file_is_refused() {
        let args = Args { file: "/dev/zero".into(), json: false };
        assert_eq!(run(&args), Err(format!("more than {} bytes", firmware::MAX_HEX_FILE_LEN)));
    }
}
