//! The workspace's one pattern for codes that must keep unknown values.
//!
//! [`enum_with_unknown!`](crate::enum_with_unknown) declares an enum whose listed variants are
//! the codes a reference names, plus `Unknown(raw)` for every other value, with lossless `From`
//! conversions both ways (smoltcp's `enum_with_unknown!`). A decoder never rejects a packet only
//! because a code is new to us; the caller decides what an unknown value means. It is exported
//! so that the other xpp crates (DAHDI's numbers in `xpp-span`) use the same pattern.

/// Declares a `#[non_exhaustive]` enum over an integer type with an `Unknown(raw)` arm.
///
/// Each variant may carry a doc comment; `name()` returns the reference's name for it (the text
/// after `=>`), or `"UNKNOWN"`; `ALL` lists the named values; `Display` prints the name, or
/// `UNKNOWN(0x..)`.
///
/// ```
/// xpp_proto::enum_with_unknown! {
///     /// A colour code.
///     pub enum Colour(u8) {
///         /// Red.
///         Red = 1 => "RED",
///     }
/// }
/// assert_eq!(Colour::from(1), Colour::Red);
/// assert_eq!(Colour::from(7), Colour::Unknown(7));
/// assert_eq!(u8::from(Colour::Unknown(7)), 7);
/// assert_eq!(Colour::Unknown(7).to_string(), "UNKNOWN(0x07)");
/// ```
#[macro_export]
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
            /// Every value the reference names, in table order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant ),+ ];

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

            /// The raw number.
            pub fn raw(self) -> $ty {
                self.into()
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
    };
}

/// `enum_with_unknown!` plus, with the `serde` feature, `Serialize` as the display name: the
/// form this crate's wire codes use.
macro_rules! wire_enum {
    (
        $( #[$enum_attr:meta] )*
        pub enum $name:ident($ty:ty) { $( $body:tt )* }
    ) => {
        $crate::enum_with_unknown! {
            $( #[$enum_attr] )*
            pub enum $name($ty) { $( $body )* }
        }

        #[cfg(feature = "serde")]
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

pub(crate) use wire_enum;
