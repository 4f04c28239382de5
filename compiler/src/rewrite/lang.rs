//! The e-graph language of tensor-level veil programs.
//!
//! Ops that rules reason about are explicit nodes; attributes are leaf children so that
//! patterns can bind them (`(tlu ?t ?x)` binds the table leaf `?t`). Tables and constants live
//! in side pools of the analysis ([`super::analysis::VeilAnalysis`]) and are referenced by
//! leaves `t3` / `c3`; every other op (inputs, outputs, matmul, shape ops, ...) is an opaque
//! node `(op o7 children...)` whose leaf `o7` indexes the original op and type.

use egg::{define_language, Id};
use std::fmt;
use std::str::FromStr;
use veil_ir::CmpOp;

macro_rules! leaf_ref {
    ($(#[$m:meta])* $name:ident, $prefix:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                s.strip_prefix($prefix)
                    .and_then(|d| d.parse().ok())
                    .map($name)
                    .ok_or_else(|| format!("not a {} reference: {s}", stringify!($name)))
            }
        }
    };
}

leaf_ref!(
    /// A table of the analysis' table pool, written `t<N>`.
    TableRef,
    "t"
);
leaf_ref!(
    /// A constant of the analysis' constant pool, written `c<N>`.
    ConstRef,
    "c"
);
leaf_ref!(
    /// An opaque op (original op and type) of the analysis' op pool, written `o<N>`.
    OpaqueRef,
    "o"
);

/// A comparison predicate as a leaf, written with its mnemonic (`lt`, `ge`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pred(pub CmpOp);

impl Pred {
    fn rank(self) -> usize {
        CmpOp::ALL.iter().position(|c| *c == self.0).unwrap_or(0)
    }
}

impl PartialOrd for Pred {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pred {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl FromStr for Pred {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        CmpOp::ALL
            .iter()
            .find(|c| c.name() == s)
            .map(|c| Pred(*c))
            .ok_or_else(|| format!("not a comparison predicate: {s}"))
    }
}

/// Holds the e-graph language: egg's `define_language!` takes no per-variant doc comments, so
/// the variants are documented on the enum.
mod language {
    #![allow(missing_docs)]
    use super::*;

    define_language! {
        /// A tensor-level veil op in the e-graph (see the module docs). Variants: `add`, `sub`,
        /// `neg`, `mul`, `min`, `max`, `relu`, `abs` as in veil-ir; `(tlu t x)` with a table leaf;
        /// `(cmp p a b)` with a predicate leaf; `(round k x)` and `(clip lo hi x)` with number
        /// leaves; `(op o children...)` an opaque op; leaves `Table` (`t3`), `Const` (`c3`, a
        /// clear constant value), `OpRef` (`o3`), `Pred` (`lt`), `Num` (an integer attribute).
        pub enum VeilLang {
            "add" = Add([Id; 2]),
            "sub" = Sub([Id; 2]),
            "neg" = Neg([Id; 1]),
            "mul" = Mul([Id; 2]),
            "tlu" = Tlu([Id; 2]),
            "cmp" = Cmp([Id; 3]),
            "min" = Min([Id; 2]),
            "max" = Max([Id; 2]),
            "relu" = Relu([Id; 1]),
            "abs" = Abs([Id; 1]),
            "round" = Round([Id; 2]),
            "clip" = Clip([Id; 3]),
            "op" = Opaque(Box<[Id]>),
            Table(TableRef),
            Const(ConstRef),
            OpRef(OpaqueRef),
            Pred(Pred),
            Num(i64),
        }
    }
}

pub use language::VeilLang;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_parse_and_print() {
        let e: egg::RecExpr<VeilLang> = "(tlu t3 (cmp lt (op o1) c0))".parse().unwrap();
        assert_eq!(e.to_string(), "(tlu t3 (cmp lt (op o1) c0))");
        let e: egg::RecExpr<VeilLang> = "(round 2 (clip -1 5 c4))".parse().unwrap();
        assert_eq!(e.to_string(), "(round 2 (clip -1 5 c4))");
    }
}
