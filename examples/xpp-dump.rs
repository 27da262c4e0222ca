//! `xpp-dump`: decode one Astribank USB transfer given as hex.
//!
//! ```text
//! cargo run --example xpp-dump -- [--mgmt] [--json] [HEX ...]
//! echo "0A 00 0F 10 35 00 40 00 01 00" | cargo run --example xpp-dump
//! ```
//!
//! The transfer is the hex digits of all arguments (or of standard input when there are none);
//! whitespace, commas, colons and `0x` prefixes are ignored. Data interface (default): one line
//! per packet, `@offset  OPCODE unit/subunit fields`. `--mgmt`: the transfer is one management
//! (xtalk/MPP) packet. `--json`: one JSON object per packet instead. Invalid input prints
//! `xpp-dump: <where>: <reason>` on stderr (after the packets that did decode) and exits 1:
//! `input: line L, column C` (characters, from 1) for text that is not hex, `byte N` (of the
//! decoded transfer) for a transfer that does not decode.
//! Standard input is read up to [`MAX_INPUT_TEXT`] bytes: past that it could only be refused.

mod common;

use std::process::ExitCode;

use clap::Parser;
use serde_json::json;
use xpp::proto::{mgmt, wire};

/// Decode one Astribank USB transfer given as hex.
#[derive(Parser)]
#[command(name = "xpp-dump")]
struct Args {
    /// The transfer is a management-interface (MPP) packet, not data-interface packets.
    #[arg(long)]
    mgmt: bool,
    /// Print one JSON object per packet.
    #[arg(long)]
    json: bool,
    /// Hex bytes; read from standard input when absent.
    hex: Vec<String>,
}

/// Most bytes of hex text read from standard input (64 KiB).
// Decision: a transfer is at most 512 bytes (wire::MAX_TRANSFER, mgmt::MAX_PACKET_LEN), 1024
// digits; 64 KiB leaves 127 characters of separators and `0x` per byte, so text past it can
// only be refused: reading stops there instead of buffering all of it.
const MAX_INPUT_TEXT: usize = 64 << 10;

/// Reads the hex text of standard input (or any reader), at most [`MAX_INPUT_TEXT`] bytes.
fn read_input(reader: impl std::io::Read) -> Result<String, String> {
    let bytes = xpp::proto::input::read_capped(reader, MAX_INPUT_TEXT).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => {
            format!("stdin: {e} of hex text (a transfer is at most {} bytes)", wire::MAX_TRANSFER)
        }
        _ => format!("stdin: {e}"),
    })?;
    String::from_utf8(bytes).map_err(|e| format!("stdin: not UTF-8 at byte {}", e.utf8_error().valid_up_to()))
}

/// Parses hex text into bytes; an error names where in the text: line and column, counted
/// in characters from 1 (`0x` prefixes and separators `,` `:` and whitespace are skipped).
fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    // Each digit with its line and column.
    let mut digits: Vec<(char, usize, usize)> = Vec::new();
    for (l, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut c = 0;
        while c < chars.len() {
            let ch = chars[c];
            if ch.is_whitespace() || ch == ',' || ch == ':' {
                c += 1;
                continue;
            }
            let word_start = c == 0 || matches!(chars[c - 1], ',' | ':') || chars[c - 1].is_whitespace();
            if word_start && ch == '0' && matches!(chars.get(c + 1), Some('x' | 'X')) {
                c += 2;
                continue;
            }
            digits.push((ch, l + 1, c + 1));
            c += 1;
        }
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks_exact(2)
        .map(|pair| match (pair[0].0.to_digit(16), pair[1].0.to_digit(16)) {
            (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
            _ => Err(format!(
                "line {}, column {}: not a hex byte: {}{}",
                pair[0].1, pair[0].2, pair[0].0, pair[1].0
            )),
        })
        .collect()
}

fn dump_data(bytes: &[u8], json: bool) -> Result<(), String> {
    for item in wire::parse_transfer(bytes) {
        let (offset, repr) = item.map_err(|e| e.to_string())?;
        if json {
            let value = json!({ "offset": offset, "text": repr.to_string(), "packet": repr });
            println!("{value}");
        } else {
            println!("@{offset:<4} {repr}");
        }
    }
    Ok(())
}

fn dump_mgmt(bytes: &[u8], json: bool) -> Result<(), String> {
    let is_reply = bytes.get(4).is_some_and(|op| op & 0x80 != 0);
    let text = mgmt::describe(bytes).to_string();
    let value = if is_reply {
        let (seq, reply) = mgmt::Reply::parse(bytes).map_err(|e| e.to_string())?;
        json!({ "direction": "device-to-host", "seq": seq, "text": text, "reply": reply })
    } else {
        let (seq, request) = mgmt::Request::parse(bytes).map_err(|e| e.to_string())?;
        json!({ "direction": "host-to-device", "seq": seq, "text": text, "request": request })
    };
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), String> {
    let text = if args.hex.is_empty() { read_input(std::io::stdin().lock())? } else { args.hex.join(" ") };
    let bytes = parse_hex(&text).map_err(|e| format!("input: {e}"))?;
    if args.mgmt { dump_mgmt(&bytes, args.json) } else { dump_data(&bytes, args.json) }
}

fn main() -> ExitCode {
    common::init();
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xpp-dump: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_input_forms() {
        assert_eq!(parse_hex("06 00 07 00 1E 00"), Ok(vec![6, 0, 7, 0, 0x1E, 0]));
        assert_eq!(parse_hex("0x06,0x00:0700\n1e00"), Ok(vec![6, 0, 7, 0, 0x1E, 0]));
        assert_eq!(parse_hex(""), Ok(vec![]));
        assert_eq!(parse_hex("0A 0"), Err("odd number of hex digits (3)".into()));
        assert_eq!(parse_hex("0A 0G"), Err("line 1, column 4: not a hex byte: 0G".into()));
        // The position is the text's, not the index of the decoded byte (1 here).
        assert_eq!(parse_hex("0x0A,\n  0x0G"), Err("line 2, column 5: not a hex byte: 0G".into()));
        assert_eq!(parse_hex("é0 0A"), Err("line 1, column 1: not a hex byte: é0".into()));
    }

    #[test]
    fn errors_name_the_offset() {
        // A valid REGISTER_REQUEST followed by 2 stray bytes.
        let bytes = parse_hex("0A 00 0F 10 35 00 40 00 01 00 03 00").unwrap();
        assert_eq!(
            dump_data(&bytes, false),
            Err("truncated packet header at byte 10: 4 bytes needed".into())
        );
        assert!(dump_data(&parse_hex("06 00 07 00 1E 00").unwrap(), true).is_ok());
        assert!(dump_mgmt(&parse_hex("06 00 01 00 80 00").unwrap(), true).is_ok());
        assert!(dump_mgmt(&parse_hex("05 00 01 00 11").unwrap(), false).is_ok());
        assert!(dump_mgmt(&parse_hex("05 00 01 00").unwrap(), false).is_err());
    }

    /// Endless input (`< /dev/zero`, a pipe) is refused once past MAX_INPUT_TEXT.
    #[test]
    fn input_is_read_to_a_cap() {
        assert_eq!(
            read_input(std::io::repeat(b'0')),
            Err("stdin: more than 65536 bytes of hex text (a transfer is at most 512 bytes)".into())
        );
        assert_eq!(read_input(&[b' '; MAX_INPUT_TEXT][..]).map(|s| s.len()), Ok(MAX_INPUT_TEXT));
        assert_eq!(read_input(&b"0A \xff"[..]), Err("stdin: not UTF-8 at byte 3".into()));
    }
}
