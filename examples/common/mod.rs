//! What every example program shares (`mod common;` in each): logging through `RUST_LOG`, a
//! quiet exit when the reader of the output goes away (`demo | head`), and the emulated
//! device's power-on stage as one `--stage` option with one default.
#![allow(dead_code, unreachable_pub)]

pub mod device;

/// The exit status of a program whose output pipe was closed: what a C tool killed by
/// SIGPIPE reports to its shell (128 + 13), so `set -o pipefail` sees the cut-short output.
pub const EXIT_BROKEN_PIPE: i32 = 141;

/// Call first in `main`: `RUST_LOG` (default `warn`) reaches stderr through env_logger, and a
/// write to a closed stdout ends the program quietly with [`EXIT_BROKEN_PIPE`] instead of a
/// panic with a backtrace.
pub fn init() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).try_init();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // `println!` panics with "failed printing to stdout: Broken pipe (os error 32)"
        // (Rust ignores SIGPIPE, so the write fails with EPIPE instead of killing us).
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if text.contains("Broken pipe") || text.contains("os error 32") {
            std::process::exit(EXIT_BROKEN_PIPE);
        }
        default(info);
    }));
}

/// The emulated Astribank's power-on stage (`--stage`), the same values and default in every
/// program: `cold` (no firmware, as a device is plugged in), `usb` (USB firmware loaded),
/// `fpga` (FPGA loaded), `running` (up, as a device another host left running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StageArg {
    /// No firmware: the bring-up loads everything.
    #[default]
    Cold,
    /// The USB firmware is loaded.
    Usb,
    /// The FPGA image is loaded.
    Fpga,
    /// Running.
    Running,
}

impl StageArg {
    /// The option's word for it.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Usb => "usb",
            Self::Fpga => "fpga",
            Self::Running => "running",
        }
    }
}

impl From<StageArg> for xpp_emu::config::Stage {
    fn from(s: StageArg) -> Self {
        match s {
            StageArg::Cold => Self::Cold,
            StageArg::Usb => Self::UsbLoaded,
            StageArg::Fpga => Self::FpgaLoaded,
            StageArg::Running => Self::Running,
        }
    }
}

/// Parses a `run(argv, ..)` entry's arguments (`argv` without the program name): `--help`
/// and `--version` go to `out` with status 0, a usage error to `err` with status 2.
pub fn parse_args<A: clap::Parser>(
    name: &str,
    argv: &[&str],
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<A, u8> {
    A::try_parse_from(std::iter::once(name).chain(argv.iter().copied())).map_err(|e| {
        if e.use_stderr() {
            let _ = write!(err, "{e}");
            2
        } else {
            let _ = write!(out, "{e}");
            0
        }
    })
}

/// The program's stdout for a `run(argv, out, err, ..)` entry: remembers whether a write
/// failed because the reader went away, so `main` can end with [`EXIT_BROKEN_PIPE`] like the
/// programs that print with `println!`.
#[derive(Debug, Default)]
pub struct Stdout {
    /// A write failed with EPIPE.
    pub broken: bool,
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = std::io::stdout().write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = std::io::stdout().flush();
        self.note(r)
    }
}

impl Stdout {
    fn note<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe) {
            self.broken = true;
        }
        r
    }

    /// The exit status: `status`, or [`EXIT_BROKEN_PIPE`] once the reader went away.
    pub fn exit_code(&mut self, status: u8) -> std::process::ExitCode {
        use std::io::Write as _;
        let _ = self.flush();
        std::process::ExitCode::from(if self.broken { EXIT_BROKEN_PIPE as u8 } else { status })
    }
}
