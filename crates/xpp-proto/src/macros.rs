//! The workspace's one pattern for wire codes that must keep unknown values.
//!
//! `enum_with_unknown!` declares an enum whose listed variants are the codes the references
//! name, plus `Unknown(raw)` for every other value, with lossless `From` conversions both ways
//! (smoltcp's `enum_with_unknown!`). A decoder never rejects a packet only because a code is
//! new to us; the caller decides what an unknown value means.

/// Declares a `#[non_exhaustive]` enum over an integer type with an `Unknown(raw)` arm.
///
/// Each variant may carry a doc comment; `name()` returns the reference's name for it
/// (the text after `=>`), or `"UNKNOWN"`.
macro_rules! enum_with_unknown {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) {
            $(
                $( #[$variant_attr:meta] )*
                $variant:ident = $value:expr => $text:literal
            ),+ $(,)?
        }
    ) => {
        $( #[$enum_attr] )*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $( #[$variant_attr] )*
                $variant
            ),+,
            /// A value the references do not name; kept as received.
            Unknown($ty),
        }

        impl ::core::convert::From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( v if v == $value => Self::$variant, )+
                    other => Self::Unknown(other),
                }
            }
        }

        impl ::core::convert::From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value, )+
                    $name::Unknown(other) => other,
                }
            }
        }

        impl $name {
            /// The name the references use for this value, or `"UNKNOWN"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Unknown(_) => "UNKNOWN",
                }
            }

            /// Whether the references name this value.
            pub const fn is_known(self) -> bool {
                !matches!(self, Self::Unknown(_))
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                match self {
                    Self::Unknown(v) => write!(f, "UNKNOWN(0x{:02x})", v),
                    known => f.write_str(known.name()),
                }
            }
        }

        #[cfg(feature = "serde")]
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

pub(crate) use enum_with_unknown;
