//! Reading untrusted input whole, with a size cap.
//!
//! Files named by an operator, standard input and configuration may be devices or pipes
//! (`/dev/zero`, a FIFO) whose metadata says 0 bytes, or regular files that grow while they are
//! read: a size check on metadata bounds nothing. [`read_capped`] bounds the read itself. It is
//! the one such reader of the workspace: plain [`std::io::Read`] over the caller's reader, so
//! this crate still opens nothing; every crate above it (and the example programs, through
//! `xpp::proto`) reaches it.

use std::io::{self, Read};

/// Reads everything `reader` yields, refusing input longer than `cap` bytes.
///
/// At most `cap + 1` bytes are read (through [`Read::take`]), so memory stays within about
/// twice `cap` whatever the reader holds: one byte past the cap is enough to refuse. The
/// refusal is an [`io::ErrorKind::FileTooLarge`] error reading `more than {cap} bytes`; the
/// caller adds the name of what it read. Errors of the reader pass through unchanged.
///
/// ```
/// use xpp_proto::input::read_capped;
///
/// assert_eq!(read_capped(&b"abc"[..], 3).unwrap(), b"abc");
/// let err = read_capped(std::io::repeat(0), 1024).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
/// assert_eq!(err.to_string(), "more than 1024 bytes");
/// ```
pub fn read_capped<R: Read>(reader: R, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    reader.take((cap as u64).saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() > cap {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, format!("more than {cap} bytes")));
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_and_past_the_cap() {
        assert_eq!(read_capped(&[7u8; 16][..], 16).expect("at the cap"), [7; 16]);
        assert_eq!(read_capped(&[][..], 0).expect("empty"), [] as [u8; 0]);
        let err = read_capped(&[7u8; 17][..], 16).expect_err("one past");
        assert_eq!((err.kind(), err.to_string()), (io::ErrorKind::FileTooLarge, "more than 16 bytes".into()));
        assert_eq!(read_capped(&[1u8][..], 0).expect_err("cap 0").kind(), io::ErrorKind::FileTooLarge);
    }

    /// An endless reader is refused after cap + 1 bytes: the reader counts what was taken.
    #[test]
    fn endless_input_is_read_only_to_the_cap() {
        struct Counting(u64);
        impl Read for Counting {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                buf.fill(0);
                self.0 += buf.len() as u64;
                Ok(buf.len())
            }
        }
        let mut r = Counting(0);
        let err = read_capped(&mut r, 1 << 20).expect_err("endless");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(r.0, (1 << 20) + 1);
    }

    #[test]
    fn reader_errors_pass_through() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::PermissionDenied, "no"))
            }
        }
        assert_eq!(read_capped(Broken, 8).expect_err("broken").kind(), io::ErrorKind::PermissionDenied);
    }
}
