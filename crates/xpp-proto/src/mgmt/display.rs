//! Small formatting helpers for the one-line `Display` impls.

use core::fmt;

/// Formats bytes as printable ASCII, escaping everything else (`\xNN`).
pub(super) struct Ascii<'a>(pub(super) &'a [u8]);

impl fmt::Display for Ascii<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

/// Formats bytes as lowercase hex, at most [`Hex::MAX_SHOWN`] of them, then `..(+N)`.
pub(super) struct Hex<'a>(pub(super) &'a [u8]);

impl Hex<'_> {
    const MAX_SHOWN: usize = 16;
}

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.0[..self.0.len().min(Self::MAX_SHOWN)];
        shown.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        if self.0.len() > shown.len() {
            write!(f, "..(+{})", self.0.len() - shown.len())?;
        }
        Ok(())
    }
}

/// Adapts a closure to `Display`.
pub(super) struct DisplayFn<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result>(pub(super) F);

impl<F: Fn(&mut fmt::Formatter<'_>) -> fmt::Result> fmt::Display for DisplayFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.0)(f)
    }
}
