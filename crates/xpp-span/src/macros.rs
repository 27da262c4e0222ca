//! The two patterns this crate uses for DAHDI's numbers.
//!
//! - `enum_with_unknown!` (from `xpp-proto`, the workspace's one definition): a code that names
//!   one thing (a signalling type, a hook command): an enum whose listed variants are the
//!   values the reference names, plus `Unknown(raw)`, with lossless `From` both ways, so values
//!   from a PBX or a future DAHDI are kept, never rejected.
//! - `bits_with_names!`: a bit mask (alarms, line configuration, sigcap): a `Copy` newtype
//!   over the integer with one associated constant per named bit, so unknown bits survive.

/// Declares a `Copy` bit-mask newtype with named constants and set operations.
macro_rules! bits_with_names {
    (
        $( #[$attr:meta] )*
        pub struct $name:ident($ty:ty) {
            $(
                $( #[$bit_attr:meta] )*
                const $bit:ident = $value:expr;
            )+
        }
    ) => {
        $( #[$attr] )*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $ty);

        impl $name {
            $(
                $( #[$bit_attr] )*
                pub const $bit: Self = Self($value);
            )+

            /// The named bits with their names, in table order.
            pub const NAMED: &'static [(&'static str, Self)] = &[ $( (stringify!($bit), Self::$bit) ),+ ];

            /// No bit set.
            pub const EMPTY: Self = Self(0);

            /// The raw word.
            pub const fn bits(self) -> $ty {
                self.0
            }

            /// Whether no bit is set.
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Whether every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether any bit of `other` is set in `self`.
            pub const fn intersects(self, other: Self) -> bool {
                self.0 & other.0 != 0
            }

            /// `self` with the bits of `other` set.
            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }

            /// `self` with the bits of `other` cleared.
            pub const fn difference(self, other: Self) -> Self {
                Self(self.0 & !other.0)
            }
        }

        impl ::core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                self.union(rhs)
            }
        }

        impl ::core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                *self = self.union(rhs);
            }
        }

        impl ::core::ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                Self(self.0 & rhs.0)
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}({:#x} = {})", stringify!($name), self.0, self)
            }
        }

        /// `A|B|0x40` style: named bits (exact matches only) then any remaining bits in hex.
        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                if self.0 == 0 {
                    return f.write_str("0");
                }
                let mut rest = self.0;
                let mut first = true;
                for (name, bit) in Self::NAMED {
                    if bit.0 != 0 && self.0 & bit.0 == bit.0 {
                        if !first {
                            f.write_str("|")?;
                        }
                        f.write_str(name)?;
                        first = false;
                        rest &= !bit.0;
                    }
                }
                if rest != 0 {
                    if !first {
                        f.write_str("|")?;
                    }
                    write!(f, "{:#x}", rest)?;
                }
                Ok(())
            }
        }
    };
}

pub(crate) use bits_with_names;
