//! Serializes byte slices as lowercase hex strings (the dump tools' `--json` output).

use core::fmt;

/// Displays (and serializes) bytes as lowercase hex without separators.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl serde::Serialize for Hex<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `serialize_with` helper for any byte container.
pub(crate) fn hex<T: AsRef<[u8]>, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&Hex(v.as_ref()))
}
