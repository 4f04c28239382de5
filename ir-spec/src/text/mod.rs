//! The text form of veil programs: a deterministic printer and a parser with `line:col` errors.
//!
//! ```text
//! veil 1
//! table @t0 = [0,1,4,9]
//! %0 = input "x" : enc<u2>[3]
//! %1 = tlu %0 table=@t0 : enc<u4>[3]
//! output "y", %1
//! ```
//!
//! `SPEC.md` ("Text form") gives the grammar. [`print`](fn@print) is canonical: `print(parse(s))` is the
//! same for every spelling `s` of a program, and `print(parse(print(g))) == print(g)`.

mod lexer;
mod parse;
mod print;

pub use parse::{MAX_ELEMENTS, OP_NAMES};
pub(crate) use print::attrs;
pub use print::print;

use crate::graph::Graph;
use crate::tensor::Tensor;
use std::fmt;

/// A parse (or verification) error with its position in the source.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line; `0` when the error concerns the whole program.
    pub line: usize,
    /// 1-based column in characters; `0` when unknown.
    pub col: usize,
    /// What went wrong and what was expected.
    pub msg: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, col: usize, msg: impl Into<String>) -> Self {
        ParseError {
            line,
            col,
            msg: msg.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (0, _) => write!(f, "{}", self.msg),
            (l, 0) => write!(f, "{l}: {}", self.msg),
            (l, c) => write!(f, "{l}:{c}: {}", self.msg),
        }
    }
}

/// Error of [`parse`]: the text breaks the grammar, or the program it describes breaks an
/// invariant of the verifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The text does not follow the grammar (the first error).
    #[error("{0}")]
    Syntax(#[from] ParseError),
    /// The program parsed but the verifier rejects it: one entry per problem, located at the
    /// line defining the value concerned (line 0 when the problem is about the whole program).
    #[error("{}", join_problems(.0))]
    Invalid(Vec<ParseError>),
}

fn join_problems(ps: &[ParseError]) -> String {
    ps.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

impl TextError {
    /// Every located message: one for a syntax error, one per verifier problem.
    pub fn errors(&self) -> Vec<&ParseError> {
        match self {
            TextError::Syntax(e) => vec![e],
            TextError::Invalid(ps) => ps.iter().collect(),
        }
    }
}

/// Parses a program and runs the verifier ([`crate::verify::verify`]) on it.
pub fn parse(src: &str) -> Result<Graph, TextError> {
    let parsed = parse::parse_program(src)?;
    match crate::verify::verify(&parsed.graph) {
        Ok(()) => Ok(parsed.graph),
        Err(e) => Err(TextError::Invalid(
            e.problems
                .into_iter()
                .map(|p| {
                    let line = p
                        .value
                        .and_then(|v| parsed.lines.get(&v).copied())
                        .unwrap_or(0);
                    ParseError::new(line, 0, p.message)
                })
                .collect(),
        )),
    }
}

/// Parses a program without running the verifier: the graph may still be ill-typed.
pub fn parse_unverified(src: &str) -> Result<Graph, ParseError> {
    parse::parse_program(src).map(|p| p.graph)
}

/// Parses a tensor literal: a bare integer (a scalar) or a nested list like `[[1,2],[3,4]]`.
pub fn parse_tensor(src: &str) -> Result<Tensor<i64>, ParseError> {
    let (shape, data) = parse::parse_literal(src)?;
    Ok(Tensor { shape, data })
}

/// Writes a tensor as a literal that [`parse_tensor`] reads back (`[[1,2],[3,4]]`, `7`).
pub fn tensor_literal(t: &Tensor<i64>) -> String {
    let mut out = String::new();
    print::nested(&mut out, &t.shape, &t.data);
    out
}

#[cfg(test)]
mod tests;
