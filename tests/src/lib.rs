//! Integration and golden-file tests for veil live in `tests/`.
//!
//! This library holds the helpers they share: the `; run:` lines of golden files, which state
//! inputs and expected outputs of a program inside the program's own comments:
//!
//! ```text
//! ; run: x=[1,2,3], w=4 => y=[4,5,6]
//! ; run: x=[7,7,7], w=1 => error: overflow
//! ```
//!
//! Inputs are given by name (every input of the program, any order) as tensor literals; the
//! expected side lists every output by name, or `error:` and a substring of the interpreter's
//! error message.
//!
//! The program corpus of `tests/corpus/` and its inputsets are in [`corpus`]; random
//! corpus-like programs in [`random_program`]; keys shared between compiled programs in
//! [`keys`]; the ONNX model fixtures in [`fixtures`].

pub mod corpus;
pub mod fixtures;
pub mod keys;
pub mod random_program;

use veil_ir::text::{parse_tensor, tensor_literal};
use veil_ir::{Graph, Op, Tensor};

/// What a run line expects.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// Every output by name, with its value.
    Outputs(Vec<(String, Tensor<i64>)>),
    /// The run fails with an error whose message contains this text.
    Error(String),
}

/// One `; run:` line.
#[derive(Clone, Debug, PartialEq)]
pub struct RunCase {
    /// 1-based line number in the file.
    pub line: usize,
    /// Named inputs.
    pub inputs: Vec<(String, Tensor<i64>)>,
    /// Expected result.
    pub expect: Expect,
}

/// Splits at commas that are not inside brackets.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// Parses `name=literal, name=literal`.
fn bindings(s: &str, line: usize) -> Result<Vec<(String, Tensor<i64>)>, String> {
    split_top(s)
        .into_iter()
        .map(|b| {
            let (name, lit) = b
                .split_once('=')
                .ok_or_else(|| format!("line {line}: expected name=value, found {:?}", b.trim()))?;
            let t = parse_tensor(lit)
                .map_err(|e| format!("line {line}: value of {}: {e}", name.trim()))?;
            Ok((name.trim().to_string(), t))
        })
        .collect()
}

/// Extracts the `; run:` lines of a golden file.
pub fn run_cases(src: &str) -> Result<Vec<RunCase>, String> {
    let mut cases = Vec::new();
    for (i, l) in src.lines().enumerate() {
        let line = i + 1;
        let Some(rest) = l.trim_start().strip_prefix(';').map(str::trim_start) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix("run:") else {
            continue;
        };
        let (lhs, rhs) = rest
            .split_once("=>")
            .ok_or_else(|| format!("line {line}: run line needs 'inputs => outputs'"))?;
        let inputs = bindings(lhs, line)?;
        let rhs = rhs.trim();
        let expect = match rhs.strip_prefix("error:") {
            Some(msg) => Expect::Error(msg.trim().to_string()),
            None => Expect::Outputs(bindings(rhs, line)?),
        };
        cases.push(RunCase {
            line,
            inputs,
            expect,
        });
    }
    Ok(cases)
}

fn names(g: &Graph, vs: Vec<veil_ir::ValueId>) -> Vec<String> {
    vs.into_iter()
        .map(|v| match g.op(v) {
            Op::Input { name } | Op::Output { name } => name.clone(),
            _ => String::new(),
        })
        .collect()
}

/// Runs one case on `g` with the reference interpreter; `Err` describes the mismatch.
pub fn check_case(g: &Graph, case: &RunCase) -> Result<(), String> {
    let at = format!("run line {}", case.line);
    let in_names = names(g, g.inputs());
    let mut given = case.inputs.clone();
    let mut inputs = Vec::new();
    for n in &in_names {
        let i = given
            .iter()
            .position(|(m, _)| m == n)
            .ok_or_else(|| format!("{at}: no value for input {n:?}"))?;
        inputs.push(given.remove(i).1);
    }
    if let Some((extra, _)) = given.first() {
        return Err(format!(
            "{at}: the program has no input {extra:?} (inputs: {in_names:?})"
        ));
    }
    let result = veil_ir::interp::run(g, &inputs);
    match (&case.expect, result) {
        (Expect::Error(want), Err(e)) if e.to_string().contains(want.as_str()) => Ok(()),
        (Expect::Error(want), Err(e)) => Err(format!(
            "{at}: expected an error containing {want:?}, got: {e}"
        )),
        (Expect::Error(want), Ok(outs)) => Err(format!(
            "{at}: expected an error containing {want:?}, got outputs {}",
            outs.iter()
                .map(tensor_literal)
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Expect::Outputs(_), Err(e)) => Err(format!("{at}: {e}")),
        (Expect::Outputs(want), Ok(outs)) => {
            let out_names = names(g, g.outputs());
            if want.len() != out_names.len() {
                return Err(format!(
                    "{at}: lists {} outputs, the program has {:?}",
                    want.len(),
                    out_names
                ));
            }
            for (name, expected) in want {
                let k = out_names
                    .iter()
                    .position(|n| n == name)
                    .ok_or_else(|| format!("{at}: the program has no output {name:?}"))?;
                if &outs[k] != expected {
                    return Err(format!(
                        "{at}: output {name:?} is {} (shape {:?}), expected {} (shape {:?})",
                        tensor_literal(&outs[k]),
                        outs[k].shape,
                        tensor_literal(expected),
                        expected.shape
                    ));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROG: &str = "veil 1\n\
        ; run: x=[1,2], c=3 => y=[4,5]\n\
        ; run: x=[7,7], c=1 => y=[8,8]\n\
        ; run: c=0, x=[1] => error: shape\n\
        %x = input \"x\" : enc<u3>[2]\n%c = input \"c\" : clear<u2>\n\
        %y = add %x, %c : enc<u4>[2]\noutput \"y\", %y\n";

    #[test]
    fn parses_and_checks_run_lines() {
        let cases = run_cases(PROG).unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].line, 2);
        assert_eq!(cases[0].inputs[1].1, Tensor::scalar(3));
        let g = veil_ir::text::parse(PROG).unwrap();
        for c in &cases {
            check_case(&g, c).unwrap();
        }
    }

    #[test]
    fn mismatches_are_reported() {
        let g = veil_ir::text::parse(PROG).unwrap();
        let bad = |line: &str| {
            let c = run_cases(line).unwrap().remove(0);
            check_case(&g, &c).unwrap_err()
        };
        assert_eq!(
            bad("; run: x=[1,2], c=3 => y=[4,6]"),
            "run line 1: output \"y\" is [4,5] (shape [2]), expected [4,6] (shape [2])"
        );
        assert!(bad("; run: x=[1,2] => y=[4,6]").contains("no value for input \"c\""));
        assert!(bad("; run: x=[1,2], c=1, z=1 => y=[2,3]").contains("no input \"z\""));
        assert!(bad("; run: x=[1,2], c=1 => z=[2,3]").contains("no output \"z\""));
        assert!(bad("; run: x=[1,2], c=1 => error: overflow").contains("expected an error"));
        assert!(run_cases("; run: x=[1,2]").unwrap_err().contains("=>"));
        assert!(run_cases("; run: x=[1,2 => y=1")
            .unwrap_err()
            .contains("line 1"));
    }
}
