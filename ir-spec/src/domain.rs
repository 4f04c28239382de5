//! The domain of a compiled program: the interval of every value the program is exact on.
//!
//! A compiled program is exact only where its tables and bit widths were made for: its values
//! were calibrated on an inputset (or propagated from declared input types), its types were
//! narrowed to those intervals and its fused tables tabulated over them. An input that drives
//! any value outside its interval would decrypt to garbage. A [`Domain`] records the intervals
//! (per value, by its printed number `%N` in the tensor-level graph the program was lowered
//! from) so that the client, which holds the plaintext, can check a sample before encrypting
//! it: [`Domain::check`] runs the reference interpreter on the sample and compares every
//! value with its interval. This costs one clear evaluation, far less than one bootstrap.

use crate::graph::{Graph, ValueId};
use crate::interp::{self, InterpError};
use crate::ops::Op;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;

/// The interval `lo..=hi` each value of a tensor-level graph must stay in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// `(value number, lo, hi)`, sorted by value number (`Graph::value_numbers`).
    pub intervals: Vec<(usize, i64, i64)>,
}

/// A value of one sample outside the domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainViolation {
    /// The value's printed number (`%N`).
    pub number: usize,
    /// `%N = op` (or `input "x"`), for messages.
    pub label: String,
    /// The element outside the interval.
    pub value: i128,
    /// Its multi-index in the value's tensor, e.g. `[1, 2]` (`[]` for scalars).
    pub index: Vec<usize>,
    /// The interval the program is exact on.
    pub interval: (i64, i64),
}

impl std::fmt::Display for DomainViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.index.is_empty() {
            String::new()
        } else {
            format!(" at {:?}", self.index)
        };
        write!(
            f,
            "{}{at} would be {}, outside {}..={}, the interval the program was compiled for",
            self.label, self.value, self.interval.0, self.interval.1
        )
    }
}

/// Why a sample could not be checked, or the first value it drives out of the domain.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The interpreter refused the sample (shape, input type).
    #[error(transparent)]
    Interp(#[from] InterpError),
    /// A value left its interval.
    #[error("{0}")]
    Outside(DomainViolation),
}

/// `%N = op` or `input "x"`.
fn label(g: &Graph, number: usize, v: ValueId) -> String {
    match g.op(v) {
        Op::Input { name } => format!("input \"{name}\" (%{number})"),
        op => format!("%{number} = {}", op.name()),
    }
}

/// The multi-index of flat position `i` in `shape` (row-major).
fn multi_index(shape: &[usize], mut i: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        if n > 0 {
            idx[d] = i % n;
            i /= n;
        }
    }
    idx
}

impl Domain {
    /// The domain of `g` given the interval of its values (values without one are not
    /// checked; outputs equal their operand and are not numbered).
    pub fn from_ranges(
        g: &Graph,
        ranges: impl IntoIterator<Item = (ValueId, (i128, i128))>,
    ) -> Self {
        let numbers = g.value_numbers();
        let clamp = |x: i128| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        let mut intervals: Vec<(usize, i64, i64)> = ranges
            .into_iter()
            .filter_map(|(v, (lo, hi))| {
                let n = *numbers.get(&v)?;
                Some((n, clamp(lo), clamp(hi)))
            })
            .collect();
        intervals.sort_unstable();
        intervals.dedup_by_key(|x| x.0);
        Domain { intervals }
    }

    /// The domain of a graph whose values are exact wherever they fit their types: every
    /// value's interval is its element type's range (a value outside it would overflow its
    /// encoding).
    pub fn from_types(g: &Graph) -> Self {
        let numbers = g.value_numbers();
        let clamp = |x: i128| x.clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        let mut intervals: Vec<(usize, i64, i64)> = numbers
            .iter()
            .map(|(&v, &n)| {
                let t = g.ty(v).int;
                (n, clamp(t.min()), clamp(t.max()))
            })
            .collect();
        intervals.sort_unstable();
        Domain { intervals }
    }

    /// The interval of the value numbered `number`, if the domain has one.
    pub fn interval(&self, number: usize) -> Option<(i64, i64)> {
        self.intervals
            .binary_search_by_key(&number, |x| x.0)
            .ok()
            .map(|i| (self.intervals[i].1, self.intervals[i].2))
    }

    /// Runs `inputs` through the reference interpreter on `g` (the graph the domain was made
    /// for) and returns the outputs, or the first value (in program order) that leaves its
    /// interval. To check many samples, prepare once with [`Domain::checker`].
    pub fn check(
        &self,
        g: &Graph,
        inputs: &[Tensor<i64>],
    ) -> Result<Vec<Tensor<i64>>, DomainError> {
        self.checker(g)?.check(inputs)
    }

    /// Verifies `g` once and returns a checker of samples against this domain.
    pub fn checker<'a>(&'a self, g: &'a Graph) -> Result<DomainChecker<'a>, DomainError> {
        Ok(DomainChecker {
            domain: Cow::Borrowed(self),
            prepared: interp::Prepared::new(g)?,
            numbers: g.value_numbers(),
        })
    }

    /// [`Domain::checker`] that keeps the domain and the graph: a checker that can be stored
    /// (e.g. prepared once per compiled program and reused for every sample).
    pub fn into_checker(self, g: Graph) -> Result<DomainChecker<'static>, DomainError> {
        let numbers = g.value_numbers();
        Ok(DomainChecker {
            domain: Cow::Owned(self),
            prepared: interp::Prepared::owned(g)?,
            numbers,
        })
    }

    /// Clamps every input element into its input's interval (the `clamp-inputs` policy); the
    /// values computed from clamped inputs may still leave the domain, so check afterwards.
    pub fn clamp_inputs(&self, g: &Graph, inputs: &mut [Tensor<i64>]) {
        let numbers = g.value_numbers();
        for (v, t) in g.inputs().into_iter().zip(inputs.iter_mut()) {
            if let Some((lo, hi)) = numbers.get(&v).and_then(|&n| self.interval(n)) {
                for x in &mut t.data {
                    *x = (*x).clamp(lo, hi);
                }
            }
        }
    }
}

/// A [`Domain`] with its graph prepared for the interpreter ([`Domain::checker`]): checking a
/// batch of samples verifies the graph once, not once per sample.
pub struct DomainChecker<'a> {
    domain: Cow<'a, Domain>,
    prepared: interp::Prepared<'a>,
    numbers: HashMap<ValueId, usize>,
}

impl DomainChecker<'_> {
    /// The graph samples are run on.
    pub fn graph(&self) -> &Graph {
        self.prepared.graph()
    }

    /// The domain samples are held to.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// [`Domain::check`] of one sample.
    pub fn check(&self, inputs: &[Tensor<i64>]) -> Result<Vec<Tensor<i64>>, DomainError> {
        match self.run(inputs) {
            (_, Some(v)) => Err(DomainError::Outside(v)),
            (outs, None) => Ok(outs?),
        }
    }

    /// Runs one sample: its outputs (or the interpreter's error) and the first value (in
    /// program order) outside its interval, if any.
    pub fn run(
        &self,
        inputs: &[Tensor<i64>],
    ) -> (
        Result<Vec<Tensor<i64>>, InterpError>,
        Option<DomainViolation>,
    ) {
        let g = self.prepared.graph();
        let mut first: Option<DomainViolation> = None;
        let outs = self.prepared.run_traced(inputs, &mut |v, t| {
            let Some(&n) = self.numbers.get(&v) else {
                return;
            };
            let Some((lo, hi)) = self.domain.interval(n) else {
                return;
            };
            let bad = t
                .data
                .iter()
                .position(|&x| x < lo as i128 || x > hi as i128);
            if let Some(i) = bad {
                if first.as_ref().is_none_or(|f| n < f.number) {
                    first = Some(DomainViolation {
                        number: n,
                        label: label(g, n, v),
                        value: t.data[i],
                        index: multi_index(&t.shape, i),
                        interval: (lo, hi),
                    });
                }
            }
        });
        (outs, first)
    }
}

/// The check that accepts exactly the samples a compiled program computes right, for programs
/// whose reference is their source (quantized models: FHE must equal the quantized model in
/// the clear). `source` holds the source program to the intervals it was calibrated on;
/// `compiled` holds the compiled (optimized) program to its types.
///
/// A sample whose every source value stays inside its calibrated interval is computed exactly
/// by construction (every fused table is read inside the interval it was tabulated on, every
/// rewrite that relied on an interval holds). A sample that leaves it is accepted only when
/// the compiled program, run in the clear, keeps every value inside its type (so the
/// encrypted program computes what the clear one does) *and* gives the source's outputs: a
/// table entry clamped outside the calibrated interval, or a rewrite that relied on it, that
/// changes the result makes the sample refused, naming the first source value outside its
/// interval. Costs one clear run of each program for such samples, one of the source for the
/// others.
pub fn check_exact(
    source: &DomainChecker<'_>,
    compiled: &DomainChecker<'_>,
    inputs: &[Tensor<i64>],
) -> Result<Vec<Tensor<i64>>, DomainError> {
    let (outs, outside) = source.run(inputs);
    let outs = outs?;
    let Some(v) = outside else {
        return Ok(outs);
    };
    match compiled.check(inputs) {
        Ok(c) if c == outs => Ok(outs),
        _ => Err(DomainError::Outside(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "veil 1\n%a = input \"a\" : enc<u4>\n%b = input \"b\" : enc<u4>\n\
        %s = add %a, %b : enc<u5>\noutput \"s\", %s\n";

    #[test]
    fn check_names_the_first_value_outside() {
        let g = crate::text::parse(SRC).unwrap();
        let n = g.value_numbers();
        let (a, b) = (g.inputs()[0], g.inputs()[1]);
        let s = g.operands(g.outputs()[0])[0];
        let d = Domain::from_ranges(&g, [(a, (0, 3)), (b, (0, 1)), (s, (0, 3))]);
        assert_eq!(d.interval(n[&s]), Some((0, 3)));
        let ok = d
            .check(&g, &[Tensor::scalar(2), Tensor::scalar(1)])
            .unwrap();
        assert_eq!(ok[0].data, vec![3]);
        let e = d
            .check(&g, &[Tensor::scalar(3), Tensor::scalar(1)])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "%2 = add would be 4, outside 0..=3, the interval the program was compiled for"
        );
        let e = d
            .check(&g, &[Tensor::scalar(5), Tensor::scalar(0)])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("input \"a\" (%0) would be 5"), "{e}");
        // a checker that owns its graph and domain answers the same
        let owned = d.clone().into_checker(g.clone()).unwrap();
        let again = owned
            .check(&[Tensor::scalar(3), Tensor::scalar(1)])
            .unwrap_err()
            .to_string();
        assert!(again.starts_with("%2 = add would be 4"), "{again}");
        assert_eq!(crate::text::print(owned.graph()), crate::text::print(&g));
        assert_eq!(owned.domain(), &d);
        let mut clamped = [Tensor::scalar(5), Tensor::scalar(0)];
        d.clamp_inputs(&g, &mut clamped);
        assert_eq!(clamped[0].data, vec![3]);
    }

    /// `check_exact` accepts a sample outside the calibrated source domain only when the
    /// compiled program computes it right.
    #[test]
    fn check_exact_accepts_only_what_the_compiled_program_computes_right() {
        let src = crate::text::parse(SRC).unwrap();
        let n = src.value_numbers();
        let (a, b) = (src.inputs()[0], src.inputs()[1]);
        let s = src.operands(src.outputs()[0])[0];
        let d = Domain::from_ranges(&src, [(a, (0, 3)), (b, (0, 1)), (s, (0, 3))]);
        assert_eq!(d.interval(n[&a]), Some((0, 3)));
        let source = d.checker(&src).unwrap();
        // a compiled program exact on every value of its types: `4` is right
        let same = Domain::from_types(&src);
        let exact = same.checker(&src).unwrap();
        let x = [Tensor::scalar(3), Tensor::scalar(1)];
        assert_eq!(check_exact(&source, &exact, &x).unwrap()[0].data, vec![4]);
        // a compiled program whose table clamps outside the calibrated `0..=3`: refused,
        // naming the source value outside its interval
        let clamped = crate::text::parse(
            "veil 1\n%a = input \"a\" : enc<u4>\n%b = input \"b\" : enc<u4>\n\
             %s = add %a, %b : enc<u5>\n\
             table @c = [0,1,2,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3]\n\
             %y = tlu %s table=@c : enc<u2>\noutput \"s\", %y\n",
        )
        .unwrap();
        let types = Domain::from_types(&clamped);
        let compiled = types.checker(&clamped).unwrap();
        let e = check_exact(&source, &compiled, &x).unwrap_err().to_string();
        assert!(e.starts_with("%2 = add would be 4, outside 0..=3"), "{e}");
        // inside the calibrated domain: accepted, whatever the compiled program
        let y = [Tensor::scalar(2), Tensor::scalar(1)];
        assert_eq!(
            check_exact(&source, &compiled, &y).unwrap()[0].data,
            vec![3]
        );
        // `b = 2` leaves `b`'s interval, but the clamped table still reads `3` right
        let z = [Tensor::scalar(0), Tensor::scalar(2)];
        assert!(source.check(&z).is_err());
        assert_eq!(
            check_exact(&source, &compiled, &z).unwrap()[0].data,
            vec![2]
        );
    }
}
