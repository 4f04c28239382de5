//! Tracing compilation: an ordinary Rust function over [`veil_ir::trace::Traced`] values,
//! compiled in one call.
//!
//! [`compile_fn`] runs the function once on a fresh [`Tracer`] (it declares its inputs with
//! [`Tracer::input`] and its outputs with [`Tracer::output`]; ops are numpy's, see
//! [`veil_ir::trace`]), then compiles the traced graph against the inputset like
//! [`crate::program::compile`]. Nothing in the function panics on a bad op: shape mismatches,
//! unsupported ops, floats where an integer is needed and tables of the wrong size are
//! recorded with the Rust caller's location (`#[track_caller]`) and all reported by
//! `compile_fn`, one line each.
//!
//! ```no_run
//! use veil_compiler::{compile_fn, program::CompileConfig};
//! use veil_ir::trace::{Traced, Tracer};
//! use veil_ir::{IntType, Tensor};
//!
//! fn f<'t>(x: Traced<'t>) -> Traced<'t> {
//!     x.gt(10).select(x * 2, x / 2) // np.where(x > 10, x * 2, x // 2)
//! }
//! let inputset: Vec<Vec<Tensor<i64>>> =
//!     (0..32).map(|i| vec![Tensor::new(vec![4], vec![i; 4]).unwrap()]).collect();
//! let program = compile_fn(
//!     |t: &Tracer| t.output("y", f(t.input("x", &[4], IntType::unsigned(5)))),
//!     &inputset,
//!     &CompileConfig::default(),
//! )
//! .unwrap();
//! assert_eq!(program.stats.pbs, 4); // one lookup of x per element
//! ```

use crate::program::{compile, CompileConfig, Program, ProgramError};
use thiserror::Error;
use veil_ir::trace::{TraceErrors, Tracer};
use veil_ir::{Graph, Tensor};

/// Why [`compile_fn`] failed.
#[derive(Debug, Error)]
pub enum TracedCompileError {
    /// The function built ops that are invalid: every one, with its Rust caller location
    /// (`src/main.rs:12:17: add: operand shapes [4] and [3] do not broadcast`), one per line.
    #[error("{0}")]
    Trace(#[from] TraceErrors),
    /// The traced graph did not compile (e.g. an inputset that does not fit the inputs).
    #[error(transparent)]
    Compile(#[from] ProgramError),
}

/// Traces `f` into a tensor-level graph, reporting every error of the trace at once with its
/// Rust source location.
pub fn trace_fn(f: impl FnOnce(&Tracer)) -> Result<Graph, TraceErrors> {
    let t = Tracer::new();
    f(&t);
    t.finish()
}

/// Traces `f` (see [`trace_fn`]) and compiles the graph against `inputset` (one tensor per
/// input, in the order `f` declares them) with `config`, like [`crate::program::compile`].
pub fn compile_fn(
    f: impl FnOnce(&Tracer),
    inputset: &[Vec<Tensor<i64>>],
    config: &CompileConfig,
) -> Result<Program, TracedCompileError> {
    let graph = trace_fn(f)?;
    Ok(compile(&graph, inputset, config)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use veil_ir::IntType;

    fn set(n: i64, shape: &[usize]) -> Vec<Vec<Tensor<i64>>> {
        let len: usize = shape.iter().product();
        (0..n)
            .map(|i| vec![Tensor::new(shape.to_vec(), vec![i; len]).unwrap()])
            .collect()
    }

    #[test]
    fn compiles_a_traced_function_to_its_optimum() {
        let p = compile_fn(
            |t| {
                let x = t.input("x", &[4], IntType::unsigned(5));
                t.output("y", x.gt(10).select(x * 2, x / 2));
            },
            &set(32, &[4]),
            &CompileConfig::default(),
        )
        .unwrap();
        assert_eq!(p.stats.pbs, 4);
        let x = Tensor::new(vec![4], vec![0, 10, 11, 31]).unwrap();
        assert_eq!(p.clear(&[x]).unwrap()[0].data, vec![0, 5, 22, 62]);
    }

    #[test]
    fn every_error_comes_back_with_its_line() {
        let l0 = line!() + 5;
        let e = compile_fn(
            |t| {
                let x = t.input("x", &[4], IntType::unsigned(3));
                let y = t.input("y", &[3], IntType::unsigned(3));
                let bad_shape = x + y;
                let bad_float = x.tlu_float(|v| v as f64 / 2.0);
                let bad_table = x.lookup(&[0, 1, 2]);
                let bad_axis = x.max(&[1]);
                t.output("a", bad_shape);
                t.output("b", bad_float);
                t.output("c", bad_table);
                t.output("d", bad_axis);
            },
            &set(8, &[4]),
            &CompileConfig::default(),
        )
        .unwrap_err();
        let lines: Vec<String> = e.to_string().lines().map(String::from).collect();
        assert_eq!(lines.len(), 4, "{e}");
        let file = file!();
        // a binary operator reports its left operand, a method call the method's name
        let want = [
            (l0, 33, "add: operand shapes [4] and [3] do not broadcast"),
            (l0 + 1, 35, "a float where an integer is needed: f(1) = 0.5"),
            (
                l0 + 2,
                35,
                "a table of 3 entries for a u3 operand, which needs exactly 8",
            ),
            (l0 + 3, 34, "reduce_max: axis 1 is out of range for rank 1"),
        ];
        for (got, (line, col, msg)) in lines.iter().zip(want) {
            let at = format!("{file}:{line}:{col}: ");
            assert!(got.starts_with(&at), "{got} (want {at})");
            assert!(got.contains(msg), "{got} (want {msg})");
        }
    }

    /// README's first example, verbatim (checked below), run encrypted.
    #[test]
    fn readme_first_example_runs_encrypted() -> Result<(), Box<dyn std::error::Error>> {
        use crate::{compile_fn, program::CompileConfig};
        use veil_ir::trace::{Traced, Tracer};
        use veil_ir::{IntType, Tensor};

        // np.where(x > 10, x * 2, x // 2) + x % 3, on 5-bit integers
        fn f<'t>(x: Traced<'t>) -> Traced<'t> {
            x.gt(10).select(x * 2, x / 2) + x % 3
        }

        let inputset: Vec<Vec<Tensor<i64>>> = (0..32)
            .map(|i| vec![Tensor::new(vec![4], vec![i; 4]).unwrap()])
            .collect();
        let program = compile_fn(
            |t: &Tracer| t.output("y", f(t.input("x", &[4], IntType::unsigned(5)))),
            &inputset,
            &CompileConfig::default(),
        )?;
        println!("{}", program.stats.summary()); // 4 bootstraps: one 5-bit lookup of x per element

        let (client, server) = program.keygen(42)?; // client side
        let x = vec![Tensor::new(vec![4], vec![0, 7, 11, 31])?];
        let ct = program.encrypt(&client, &x)?;
        let out = program.run(&server, ct)?; // server side: evaluation keys only
        let y = program.decrypt(&client, &out)?; // client side
        assert_eq!(y, veil_ir::run(&program.source, &x)?); // the reference interpreter

        assert_eq!(y[0].data, vec![0, 4, 24, 63]);
        assert_eq!(program.stats.pbs, 4);
        Ok(())
    }

    /// The code of README's first Rust block is the code of the test above (comments and
    /// spacing aside), so the README cannot drift from what runs.
    #[test]
    fn readme_first_example_is_the_tested_code() {
        let readme = include_str!("../../README.md");
        let block = readme
            .split("```rust\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("README has a rust block");
        let code = |s: &str| -> String {
            s.lines()
                .map(|l| l.split("//").next().unwrap_or_default())
                .collect::<String>()
                .split_whitespace()
                .collect()
        };
        let this = code(include_str!("trace.rs"));
        let want = code(block).replace("usecrate::", "useveil_compiler::");
        let want = want.replace("useveil_compiler::{compile_fn", "usecrate::{compile_fn");
        assert!(
            this.contains(&want),
            "README's first example differs from readme_first_example_runs_encrypted"
        );
    }

    #[test]
    fn a_wrong_inputset_is_a_compile_error() {
        let e = compile_fn(
            |t| {
                let x = t.input("x", &[4], IntType::unsigned(3));
                t.output("y", x * 3);
            },
            &set(4, &[5]),
            &CompileConfig::default(),
        )
        .unwrap_err();
        assert!(matches!(e, TracedCompileError::Compile(_)), "{e}");
    }
}
