//! The verifier: checks every invariant of a [`Graph`] and reports *all* problems at once.
//!
//! Each problem names the value by its printed number `%N` ([`Graph::value_numbers`]) and its
//! op (`%3 = add: ...`), or `output "name"` for outputs. Checked:
//! - structure: acyclic, operand counts, outputs unused, at least one output, unique input and
//!   output names;
//! - types: element widths `1..=64`, no zero-sized axes, at most
//!   [`MAX_ELEMENTS`](crate::infer::MAX_ELEMENTS) elements per tensor (checked products),
//!   result visibility and shape exactly as [`crate::infer::infer`] computes them (declared
//!   element widths may be narrower than inferred: bit-width analysis narrows them and the
//!   interpreter checks overflow), comparison results `u1`, outputs typed like their operand;
//! - attributes and pools (through inference): axes, permutations, slice bounds, convolution
//!   attributes, `round` and `clip` parameters, table and constant ids, table lengths, the map
//!   of `tlu.multi`/`pbs`; constants match their declared shape and type;
//! - level rules (see [`crate::Level`]): no encodings, `keyswitch`, `pbs` or parameter sets at
//!   the tensor level; at the TFHE level every encrypted value has an encoding and clear values
//!   none, only levelled ops plus `keyswitch`/`pbs` occur, encrypted operands of a levelled op
//!   share the encoding of its result, `pbs` goes from `@pK.small` to `@pK`, `keyswitch`
//!   changes only the key (and may narrow the width when going to a small key, to at most that
//!   set's `message_bits`), and `keyswitch.shr`/`keyswitch.bit` go to a small key, type their
//!   result as the bit window they read and read only bits the operand's encoding holds.

use crate::graph::{Graph, Level, ValueId};
use crate::infer::{checked_numel, infer};
use crate::ops::Op;
use crate::types::{IntType, KeyId, TensorType};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The value concerned, if the problem is about one value.
    pub value: Option<ValueId>,
    /// The full message, starting with `%N = op:` or `output "name":` when about one value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every problem the verifier found (at least one).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The problems in graph order (topological when the graph is acyclic).
    pub problems: Vec<Problem>,
}

impl VerifyError {
    /// Whether some problem's message contains `needle` (handy in tests and tools).
    pub fn mentions(&self, needle: &str) -> bool {
        self.problems.iter().any(|p| p.message.contains(needle))
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid graph: {one}"),
            many => {
                write!(f, "invalid graph ({} problems):", many.len())?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// Checks every invariant of `g` (see the module documentation); returns all problems found.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    let mut v = Verifier {
        g,
        nums: g.value_numbers(),
        problems: Vec::new(),
    };
    v.run();
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(VerifyError {
            problems: v.problems,
        })
    }
}

struct Verifier<'g> {
    g: &'g Graph,
    nums: HashMap<ValueId, usize>,
    problems: Vec<Problem>,
}

impl Verifier<'_> {
    /// `%N = op` or `output "name"`.
    fn label(&self, v: ValueId) -> String {
        match self.g.op(v) {
            Op::Output { name } => format!("output \"{name}\""),
            op => match self.nums.get(&v) {
                Some(n) => format!("%{n} = {}", op.name()),
                None => format!("{v} = {}", op.name()),
            },
        }
    }

    fn report(&mut self, v: ValueId, msg: impl fmt::Display) {
        let message = format!("{}: {msg}", self.label(v));
        self.problems.push(Problem {
            value: Some(v),
            message,
        });
    }

    fn report_graph(&mut self, msg: impl Into<String>) {
        self.problems.push(Problem {
            value: None,
            message: msg.into(),
        });
    }

    fn run(&mut self) {
        let g = self.g;
        let order = match g.topo_order() {
            Ok(o) => o,
            Err(cycle) => {
                let names: Vec<String> = cycle.iter().map(|&v| self.label(v)).collect();
                self.report_graph(format!(
                    "the graph has a cycle through {} (or values that depend on one)",
                    names.join(", ")
                ));
                g.values()
            }
        };
        if g.level == Level::Tensor && !g.params.is_empty() {
            self.report_graph(format!(
                "a tensor-level graph has {} parameter set(s); only TFHE-level graphs have them",
                g.params.len()
            ));
        }
        self.check_names(&order);
        for v in order {
            self.check_node(v);
        }
    }

    fn check_names(&mut self, order: &[ValueId]) {
        let g = self.g;
        let mut inputs = HashSet::new();
        let mut outputs = HashSet::new();
        let mut n_out = 0;
        for &v in order {
            match g.op(v) {
                Op::Input { name } if !inputs.insert(name.as_str()) => {
                    self.report(v, format!("duplicate input name \"{name}\""));
                }
                Op::Output { name } => {
                    n_out += 1;
                    if !outputs.insert(name.as_str()) {
                        self.report(v, format!("duplicate output name \"{name}\""));
                    }
                }
                _ => {}
            }
        }
        if n_out == 0 {
            self.report_graph("the graph has no output; add at least one `output`");
        }
    }

    /// Checks the node's own type; returns whether it is usable for further checks.
    fn check_type(&mut self, v: ValueId) -> bool {
        let g = self.g;
        let ty = g.ty(v);
        let mut ok = true;
        if !ty.int.is_valid() {
            self.report(
                v,
                format!(
                    "element type has {} bits; widths must be 1..=64",
                    ty.int.bits
                ),
            );
            ok = false;
        }
        if ty.shape.contains(&0) {
            self.report(v, format!("shape {:?} has a zero-sized axis", ty.shape));
            ok = false;
        } else if let Err(m) = checked_numel(&ty.shape) {
            self.report(v, m);
            ok = false;
        }
        match (g.level, ty.encoding) {
            (Level::Tensor, Some(e)) => self.report(
                v,
                format!(
                    "has encoding {e} at the tensor level; encodings only exist at the TFHE level"
                ),
            ),
            (Level::Tfhe, None) if ty.is_encrypted() => self.report(
                v,
                format!("encrypted value {ty} has no encoding at the TFHE level"),
            ),
            (Level::Tfhe, Some(e)) if !ty.is_encrypted() => {
                self.report(v, format!("clear value {ty} has encoding {e}"))
            }
            (Level::Tfhe, Some(e)) => {
                if e.key.param() as usize >= g.params.len() {
                    self.report(
                        v,
                        format!(
                            "encoding {e} names parameter set p{} but the graph has {}",
                            e.key.param(),
                            g.params.len()
                        ),
                    );
                }
                if !(1..=62).contains(&e.width) {
                    self.report(
                        v,
                        format!("encoding {e} has width {}; must be 1..=62", e.width),
                    );
                }
            }
            _ => {}
        }
        ok
    }

    fn check_node(&mut self, v: ValueId) {
        let g = self.g;
        let op = g.op(v);
        let ty = g.ty(v);
        let type_ok = self.check_type(v);
        let operands = g.operands(v);

        if let Op::Output { .. } = op {
            let users = g.users(v);
            if !users.is_empty() {
                let names: Vec<String> = users.iter().map(|&u| self.label(u)).collect();
                self.report(
                    v,
                    format!(
                        "outputs produce no usable value, but it is an operand of {}",
                        names.join(", ")
                    ),
                );
            }
        }
        let (lo, hi) = op.arity();
        if operands.len() < lo || operands.len() > hi {
            let want = match (lo, hi) {
                (l, h) if l == h => format!("{l}"),
                (l, usize::MAX) => format!("at least {l}"),
                (l, h) => format!("{l} to {h}"),
            };
            self.report(
                v,
                format!("takes {want} operand(s), got {}", operands.len()),
            );
            return;
        }
        // Operand types must be valid (reported on the operand itself) before inference can
        // read their ranges and shapes.
        let operands_ok = operands.iter().all(|&o| {
            let t = g.ty(o);
            t.int.is_valid() && !t.shape.contains(&0) && checked_numel(&t.shape).is_ok()
        });
        if !type_ok || !operands_ok {
            return;
        }

        match op {
            Op::Input { .. } => {}
            Op::Const { value } => self.check_const(v, *value),
            Op::Output { .. } => {
                let ot = g.ty(operands[0]);
                if ot != ty {
                    self.report(v, format!("type {ty} differs from its operand's type {ot}"));
                }
            }
            _ => {
                match infer(g, op, &operands, Some(&ty.shape)) {
                    Err(e) => self.report(v, e.msg),
                    Ok(t) => {
                        if t.vis != ty.vis {
                            self.report(
                                v,
                                format!(
                                "declared {ty} but the result is {} (encrypted iff an operand is)",
                                if t.is_encrypted() { "encrypted" } else { "clear" }
                            ),
                            );
                        }
                        if t.shape != ty.shape {
                            self.report(
                                v,
                                format!(
                                    "declared shape {:?} but the result shape is {:?}",
                                    ty.shape, t.shape
                                ),
                            );
                        }
                        if matches!(op, Op::Cmp(_)) && ty.int != crate::IntType::unsigned(1) {
                            self.report(
                                v,
                                format!("comparison result must be u1, declared {}", ty.int),
                            );
                        }
                    }
                }
            }
        }
        match g.level {
            Level::Tensor => {
                if op.is_tfhe_only() {
                    self.report(v, "only exists at the TFHE level");
                }
            }
            Level::Tfhe => self.check_tfhe(v, &operands),
        }
    }

    fn check_const(&mut self, v: ValueId, id: crate::ConstId) {
        let g = self.g;
        let ty = g.ty(v);
        if ty.is_encrypted() {
            self.report(v, format!("constants are clear, declared {ty}"));
        }
        let Some(c) = g.constant(id) else {
            self.report(
                v,
                format!(
                    "constant #{} does not exist (the pool has {})",
                    id.0,
                    g.consts.len()
                ),
            );
            return;
        };
        if c.shape != ty.shape {
            self.report(
                v,
                format!(
                    "constant #{} has shape {:?} but the value is declared {ty}",
                    id.0, c.shape
                ),
            );
        }
        match checked_numel(&c.shape) {
            Err(m) => self.report(v, format!("constant #{}: {m}", id.0)),
            Ok(n) if c.values.len() != n => self.report(
                v,
                format!(
                    "constant #{} has {} values for shape {:?} ({n} elements)",
                    id.0,
                    c.values.len(),
                    c.shape,
                ),
            ),
            Ok(_) => {}
        }
        if let Some((i, x)) = c
            .values
            .iter()
            .enumerate()
            .find(|(_, &x)| !ty.int.contains(x as i128))
        {
            self.report(
                v,
                format!(
                    "constant #{} value [{i}] = {x} does not fit the declared {}",
                    id.0, ty.int
                ),
            );
        }
    }

    fn check_tfhe(&mut self, v: ValueId, operands: &[ValueId]) {
        let g = self.g;
        let op = g.op(v);
        let ty = g.ty(v);
        let tys: Vec<&TensorType> = operands.iter().map(|&o| g.ty(o)).collect();
        let n_enc = tys.iter().filter(|t| t.is_encrypted()).count();
        match op {
            Op::Input { .. } | Op::Const { .. } | Op::Output { .. } => {}
            Op::Tlu { .. }
            | Op::TluMulti { .. }
            | Op::Cmp(_)
            | Op::Min
            | Op::Max
            | Op::Relu
            | Op::Abs
            | Op::Round { .. }
            | Op::Clip { .. }
            | Op::Binary(_)
            | Op::Unary(_)
            | Op::Where => self.report(
                v,
                "is not allowed at the TFHE level; lower it to levelled ops, keyswitch and pbs",
            ),
            Op::KeySwitch => self.check_keyswitch(v, tys[0]),
            Op::KeySwitchShr { .. } | Op::KeySwitchBit { .. } | Op::KeySwitchRound { .. } => {
                self.check_keyswitch_window(v, op, tys[0])
            }
            Op::Pbs { .. } => {
                if let (Some(a), Some(r)) = (tys[0].encoding, ty.encoding) {
                    match a.key {
                        KeyId::Small(p) => {
                            if r.key != KeyId::Big(p) {
                                self.report(
                                    v,
                                    format!(
                                        "result encoding {r} must be under {} (the operand is under {})",
                                        KeyId::Big(p),
                                        a.key
                                    ),
                                );
                            }
                        }
                        KeyId::Big(_) => self.report(
                            v,
                            format!(
                                "operand is under the big key {}; a bootstrap needs a small key (keyswitch first)",
                                a.key
                            ),
                        ),
                    }
                }
            }
            Op::WopPbs {
                pfks_base_log,
                pfks_level,
                cbs_base_log,
                cbs_level,
                out_bits,
                ..
            } => {
                for (name, b, l) in [
                    ("pfks", *pfks_base_log, *pfks_level),
                    ("cbs", *cbs_base_log, *cbs_level),
                ] {
                    if b == 0 || l == 0 || b as u32 * l as u32 > 64 {
                        self.report(
                            v,
                            format!(
                                "{name} decomposition {b}x{l} must have a base log and levels of at least 1 and at most 64 bits in all"
                            ),
                        );
                    }
                }
                if !(1..=62).contains(out_bits) {
                    self.report(v, format!("out_bits={out_bits} is outside 1..=62"));
                }
                if let (Some(a), Some(r)) = (tys[0].encoding, ty.encoding) {
                    match a.key {
                        KeyId::Big(p) => {
                            if r.key != a.key {
                                self.report(
                                    v,
                                    format!(
                                        "result encoding {r} must be under the operand's key {}",
                                        a.key
                                    ),
                                );
                            }
                            if a.width > 16 {
                                self.report(
                                    v,
                                    format!("operand width {} exceeds 16 bits", a.width),
                                );
                            }
                            if let Some(set) = g.params.get(p as usize) {
                                if a.width > set.message_bits {
                                    self.report(
                                        v,
                                        format!(
                                            "operand width {} exceeds @p{p}'s {} message bits",
                                            a.width, set.message_bits
                                        ),
                                    );
                                }
                            }
                            if r.width > *out_bits {
                                self.report(
                                    v,
                                    format!(
                                        "result width {} exceeds out_bits={out_bits} (read wider results as several lookups)",
                                        r.width
                                    ),
                                );
                            }
                        }
                        KeyId::Small(_) => self.report(
                            v,
                            format!(
                                "operand is under the small key {}; a WoP-PBS reads a big key",
                                a.key
                            ),
                        ),
                    }
                }
            }
            // levelled
            Op::Add
            | Op::Sub
            | Op::Neg
            | Op::Mul
            | Op::MatMul
            | Op::Conv2d(_)
            | Op::Sum { .. }
            | Op::Reshape
            | Op::Transpose { .. }
            | Op::Broadcast
            | Op::Concat { .. }
            | Op::Slice { .. } => {
                if matches!(op, Op::Mul | Op::MatMul) && n_enc > 1 {
                    self.report(
                        v,
                        "multiplies two encrypted operands, which is not levelled; lower it with pbs",
                    );
                }
                if matches!(op, Op::Conv2d(_)) && tys[1..].iter().any(|t| t.is_encrypted()) {
                    self.report(v, "weights and bias must be clear at the TFHE level");
                }
                for (i, t) in tys.iter().enumerate() {
                    if t.is_encrypted() && t.encoding.is_some() && t.encoding != ty.encoding {
                        let show = |e: Option<crate::Encoding>| {
                            e.map_or("none".to_string(), |e| e.to_string())
                        };
                        self.report(
                            v,
                            format!(
                                "operand {i} has encoding {} but the result has {}; encrypted operands of a levelled op share the result's encoding",
                                show(t.encoding),
                                show(ty.encoding)
                            ),
                        );
                    }
                }
            }
        }
    }

    /// `keyswitch.shr` / `keyswitch.bit`: the result type is the operand's bit window, under
    /// a small key whose set holds the result width, and the window fits the operand's
    /// encoding.
    fn check_keyswitch_window(&mut self, v: ValueId, op: &Op, operand: &TensorType) {
        let g = self.g;
        let ty = g.ty(v);
        let expect = match op {
            Op::KeySwitchShr { shift } if *shift >= 1 && *shift < operand.int.bits => IntType {
                bits: operand.int.bits - shift,
                signed: operand.int.signed,
            },
            Op::KeySwitchShr { shift } => {
                return self.report(
                    v,
                    format!(
                        "shift={shift} must be at least 1 and below the operand width {}",
                        operand.int
                    ),
                )
            }
            // approximate rounding: an unsigned result as wide as its consumers' tables
            Op::KeySwitchRound { shift } => {
                if *shift == 0 || *shift > operand.int.bits || operand.int.signed {
                    return self.report(
                        v,
                        format!(
                            "shift={shift} must be at least 1 and at most the width of an unsigned operand, got {}",
                            operand.int
                        ),
                    );
                }
                if ty.int.signed {
                    return self.report(v, format!("result type {} must be unsigned", ty.int));
                }
                ty.int
            }
            Op::KeySwitchBit { .. } => IntType::unsigned(1),
            // not a windowed keyswitch: `check_tfhe` only calls this for the three above
            other => {
                return self.report(v, format!("`{}` is not a windowed keyswitch", other.name()))
            }
        };
        if ty.int != expect {
            self.report(
                v,
                format!("result type is {} but {} gives {expect}", ty.int, op.name()),
            );
        }
        let (Some(a), Some(r)) = (operand.encoding, ty.encoding) else {
            return;
        };
        let KeyId::Small(q) = r.key else {
            return self.report(
                v,
                format!(
                    "result must be under a small key (it feeds a bootstrap), not {}",
                    r.key
                ),
            );
        };
        if let Some(p) = g.params.get(q as usize) {
            if r.width > p.message_bits {
                self.report(
                    v,
                    format!(
                        "result width {} is above {}'s message bits {}",
                        r.width, r.key, p.message_bits
                    ),
                );
            }
        }
        if matches!(op, Op::KeySwitchBit { .. }) && r.width != 1 {
            self.report(
                v,
                format!(
                    "result width is {}; a bit is read as a 1-bit message",
                    r.width
                ),
            );
        }
        let (lsb, bits) = op.keyswitch_window(r.width).expect("a keyswitch");
        if lsb as u32 + bits as u32 > a.width as u32 {
            self.report(
                v,
                format!(
                    "reads operand bits {lsb}..{} but the operand encoding {a} holds {} bits",
                    lsb as u32 + bits as u32,
                    a.width
                ),
            );
        }
    }

    fn check_keyswitch(&mut self, v: ValueId, operand: &TensorType) {
        let g = self.g;
        let ty = g.ty(v);
        if operand.int != ty.int {
            self.report(
                v,
                format!(
                    "changes the element type from {} to {}; keyswitch changes only the key",
                    operand.int, ty.int
                ),
            );
        }
        let (Some(a), Some(r)) = (operand.encoding, ty.encoding) else {
            return;
        };
        if a.width == r.width {
            return;
        }
        match r.key {
            KeyId::Small(q) => {
                if let Some(p) = g.params.get(q as usize) {
                    if r.width > p.message_bits || r.width > a.width {
                        self.report(
                            v,
                            format!(
                                "changes the width from {} to {}; going to {} it may only narrow, to at most {} (the set's message bits)",
                                a.width, r.width, r.key, p.message_bits
                            ),
                        );
                    }
                }
            }
            KeyId::Big(_) => self.report(
                v,
                format!(
                    "changes the width from {} to {}; only a keyswitch to a small key may change it",
                    a.width, r.width
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{CmpOp, Constant, Table};
    use crate::params::ParamSet;
    use crate::types::{Encoding, IntType};

    fn u(b: u8) -> IntType {
        IntType::unsigned(b)
    }

    /// Verifies the graph and compares the error text (`"ok"` when it verifies).
    fn check(g: &Graph, expect: &str) {
        let got = match verify(g) {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expect);
    }

    fn enc(int: IntType, shape: &[usize]) -> TensorType {
        TensorType::encrypted(int, shape.to_vec())
    }

    fn input(g: &mut Graph, name: &str, t: TensorType) -> ValueId {
        g.add_node(Op::Input { name: name.into() }, t, &[])
    }

    fn output(g: &mut Graph, name: &str, v: ValueId) -> ValueId {
        let t = g.ty(v).clone();
        g.add_node(Op::Output { name: name.into() }, t, &[v])
    }

    fn constant(g: &mut Graph, shape: &[usize], values: &[i64], int: IntType) -> ValueId {
        let c = g.add_const(Constant {
            shape: shape.to_vec(),
            values: values.to_vec(),
        });
        g.add_node(
            Op::Const { value: c },
            TensorType::clear(int, shape.to_vec()),
            &[],
        )
    }

    /// `x: enc<u4>[2]` -> `op(x, x)` typed `ty` -> output.
    fn binary(op: Op, ty: TensorType) -> Graph {
        let mut g = Graph::new();
        let x = input(&mut g, "x", enc(u(4), &[2]));
        let y = g.add_node(op, ty, &[x, x]);
        output(&mut g, "y", y);
        g
    }

    #[test]
    fn valid_graph_and_narrowed_widths() {
        check(&binary(Op::Add, enc(u(5), &[2])), "ok");
        // Narrower than inferred is allowed (the interpreter checks overflow).
        check(&binary(Op::Add, enc(u(2), &[2])), "ok");
    }

    #[test]
    fn structure() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", enc(u(4), &[2]));
        input(&mut g, "x", enc(u(4), &[2]));
        let o = output(&mut g, "y", x);
        output(&mut g, "y", x);
        g.add_node(Op::Neg, enc(IntType::signed(5), &[2]), &[o]);
        check(
            &g,
            "invalid graph (3 problems):\n  \
             %1 = input: duplicate input name \"x\"\n  \
             output \"y\": duplicate output name \"y\"\n  \
             output \"y\": outputs produce no usable value, but it is an operand of %2 = neg",
        );
        let mut g = Graph::new();
        input(&mut g, "x", enc(u(4), &[2]));
        check(
            &g,
            "invalid graph: the graph has no output; add at least one `output`",
        );
    }

    #[test]
    fn cycles_and_arity() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", enc(u(4), &[2]));
        let a = g.add_node(Op::Add, enc(u(8), &[2]), &[x]);
        let b = g.add_node(Op::Neg, enc(IntType::signed(9), &[2]), &[a]);
        g.set_operands(a, &[x, b]);
        output(&mut g, "y", b);
        let e = verify(&g).unwrap_err();
        assert!(e.mentions("the graph has a cycle through"), "{e}");
        let mut g = binary(Op::Neg, enc(IntType::signed(5), &[2]));
        let n = g.values()[1];
        let x = g.values()[0];
        g.set_operands(n, &[x, x, x]);
        check(&g, "invalid graph: %1 = neg: takes 1 operand(s), got 3");
    }

    #[test]
    fn types_and_shapes() {
        check(
            &binary(Op::Add, enc(u(5), &[3])),
            "invalid graph: %1 = add: declared shape [3] but the result shape is [2]",
        );
        check(
            &binary(Op::Add, TensorType::clear(u(5), vec![2])),
            "invalid graph: %1 = add: declared clear<u5>[2] but the result is encrypted (encrypted iff an operand is)",
        );
        check(
            &binary(Op::Cmp(CmpOp::Lt), enc(u(2), &[2])),
            "invalid graph: %1 = lt: comparison result must be u1, declared u2",
        );
        check(
            &binary(Op::Add, enc(u(0), &[2])),
            "invalid graph (2 problems):\n  \
             %1 = add: element type has 0 bits; widths must be 1..=64\n  \
             output \"y\": element type has 0 bits; widths must be 1..=64",
        );
        check(
            &binary(Op::Add, enc(u(65), &[2])),
            "invalid graph (2 problems):\n  \
             %1 = add: element type has 65 bits; widths must be 1..=64\n  \
             output \"y\": element type has 65 bits; widths must be 1..=64",
        );
        let mut g = Graph::new();
        let x = input(&mut g, "x", enc(u(4), &[2, 0]));
        output(&mut g, "y", x);
        check(
            &g,
            "invalid graph (2 problems):\n  \
             %0 = input: shape [2, 0] has a zero-sized axis\n  \
             output \"y\": shape [2, 0] has a zero-sized axis",
        );
        let mut g = Graph::new();
        let x = input(&mut g, "x", enc(u(4), &[2]));
        g.add_node(Op::Output { name: "y".into() }, enc(u(5), &[2]), &[x]);
        check(
            &g,
            "invalid graph: output \"y\": type enc<u5>[2] differs from its operand's type enc<u4>[2]",
        );
        check(&binary(Op::MatMul, enc(u(9), &[])), "ok");
        check(
            &binary(Op::MatMul, enc(u(9), &[2])),
            "invalid graph: %1 = matmul: declared shape [2] but the result shape is []",
        );
    }

    /// `x: enc<T>[shape]` -> `op(x)` typed `ty` -> output.
    fn unary(op: Op, x_ty: TensorType, ty: TensorType) -> Graph {
        let mut g = Graph::new();
        let x = input(&mut g, "x", x_ty);
        let y = g.add_node(op, ty, &[x]);
        output(&mut g, "y", y);
        g
    }

    #[test]
    fn attributes() {
        let x = enc(u(4), &[2, 3]);
        let check1 =
            |op: Op, ty: TensorType, expect: &str| check(&unary(op, x.clone(), ty), expect);
        check1(
            Op::Sum {
                axes: vec![2],
                keepdims: false,
            },
            enc(u(6), &[2]),
            "invalid graph: %1 = sum: axes [2] must be ascending, distinct and below the operand rank 2 (shape [2, 3])",
        );
        check1(
            Op::Sum {
                axes: vec![1, 0],
                keepdims: false,
            },
            enc(u(7), &[]),
            "invalid graph: %1 = sum: axes [1, 0] must be ascending, distinct and below the operand rank 2 (shape [2, 3])",
        );
        check1(
            Op::Transpose { perm: vec![0, 0] },
            enc(u(4), &[2, 2]),
            "invalid graph: %1 = transpose: perm [0, 0] is not a permutation of 0..2 (operand shape [2, 3])",
        );
        check1(
            Op::Slice {
                starts: vec![0, 2],
                stops: vec![2, 4],
                steps: vec![1, 1],
            },
            enc(u(4), &[2, 2]),
            "invalid graph: %1 = slice: axis 1: 2:4:1 is empty or out of bounds for size 3 (need start < stop <= size, step >= 1)",
        );
        check1(
            Op::Slice {
                starts: vec![0],
                stops: vec![2],
                steps: vec![1],
            },
            enc(u(4), &[2]),
            "invalid graph: %1 = slice: needs 2 starts, stops and steps for operand shape [2, 3], got 1, 1 and 1",
        );
        check1(
            Op::Round {
                lsbs: 4,
                approx: false,
                rescale: false,
            },
            enc(u(5), &[2, 3]),
            "invalid graph: %1 = round: lsbs=4 must be at least 1 and below the operand width u4",
        );
        check1(
            Op::Clip { lo: 3, hi: 2 },
            enc(u(2), &[2, 3]),
            "invalid graph: %1 = clip: lo=3 is above hi=2",
        );
        check1(
            Op::Reshape,
            enc(u(4), &[5]),
            "invalid graph: %1 = reshape: cannot reshape [2, 3] (6 elements) to [5] (5 elements)",
        );
        check1(
            Op::Broadcast,
            enc(u(4), &[3, 2]),
            "invalid graph: %1 = broadcast: cannot broadcast [2, 3] to [3, 2]",
        );
        check1(
            Op::Concat { axis: 2 },
            enc(u(4), &[2, 3]),
            "invalid graph: %1 = concat: axis 2 is out of range for operand shape [2, 3]",
        );
        // conv2d: group must divide the channels.
        let mut g = Graph::new();
        let x = input(&mut g, "x", enc(u(2), &[1, 2, 3, 3]));
        let w = constant(&mut g, &[2, 1, 1, 1], &[1, 1], u(1));
        let at = crate::Conv2dAttrs {
            group: 3,
            ..Default::default()
        };
        let y = g.add_node(Op::Conv2d(at), enc(u(2), &[1, 2, 3, 3]), &[x, w]);
        output(&mut g, "y", y);
        check(
            &g,
            "invalid graph: %2 = conv2d: conv2d group 3: input channels 2 and weight [2, 1, 1, 1] are inconsistent",
        );
    }

    #[test]
    fn tables() {
        let mut g = Graph::new();
        let x = input(&mut g, "x", enc(u(2), &[2]));
        let t3 = g.add_table(Table {
            entries: vec![0, 1, 2],
        });
        let t4 = g.add_table(Table {
            entries: vec![0, 1, 2, 3],
        });
        let a = g.add_node(Op::Tlu { table: t3 }, enc(u(2), &[2]), &[x]);
        let b = g.add_node(
            Op::Tlu {
                table: crate::TableId(9),
            },
            enc(u(2), &[2]),
            &[x],
        );
        let c = g.add_node(
            Op::TluMulti {
                tables: vec![t4],
                map: vec![0, 1],
            },
            enc(u(2), &[2]),
            &[x],
        );
        let d = g.add_node(
            Op::TluMulti {
                tables: vec![t4, t4],
                map: vec![0],
            },
            enc(u(2), &[2]),
            &[x],
        );
        let ok = g.add_node(
            Op::TluMulti {
                tables: vec![t4, t4],
                map: vec![1, 0],
            },
            enc(u(2), &[2]),
            &[x],
        );
        for (i, v) in [a, b, c, d, ok].into_iter().enumerate() {
            output(&mut g, &format!("y{i}"), v);
        }
        check(
            &g,
            "invalid graph (4 problems):\n  \
             %1 = tlu: table #0 has 3 entries, but an operand of type u2 needs exactly 4\n  \
             %2 = tlu: table #9 does not exist (the pool has 2)\n  \
             %3 = tlu.multi: map[1] = 1 is out of range for 1 table(s)\n  \
             %4 = tlu.multi: map has 1 entries, but the operand has 2 elements",
        );
    }

    #[test]
    fn constants() {
        let mut g = Graph::new();
        let a = constant(&mut g, &[2], &[1, 300], u(8));
        let b = constant(&mut g, &[2], &[1, 2], u(2));
        g.node_mut(b).ty.shape = vec![3];
        let c = g.add_node(
            Op::Const {
                value: crate::ConstId(5),
            },
            TensorType::clear(u(2), vec![2]),
            &[],
        );
        let d = constant(&mut g, &[1], &[1], u(1));
        g.node_mut(d).ty.vis = crate::Visibility::Encrypted;
        g.consts.push(Constant {
            shape: vec![2],
            values: vec![1],
        });
        let e = g.add_node(
            Op::Const {
                value: crate::ConstId(g.consts.len() as u32 - 1),
            },
            TensorType::clear(u(2), vec![2]),
            &[],
        );
        for (i, v) in [a, b, c, d, e].into_iter().enumerate() {
            output(&mut g, &format!("y{i}"), v);
        }
        check(
            &g,
            "invalid graph (5 problems):\n  \
             %0 = const: constant #0 value [1] = 300 does not fit the declared u8\n  \
             %1 = const: constant #1 has shape [2] but the value is declared clear<u2>[3]\n  \
             %2 = const: constant #5 does not exist (the pool has 4)\n  \
             %3 = const: constants are clear, declared enc<u1>[1]\n  \
             %4 = const: constant #3 has 1 values for shape [2] (2 elements)",
        );
    }

    fn params(message_bits: u8) -> ParamSet {
        ParamSet {
            lwe_dimension: 742,
            glwe_dimension: 1,
            polynomial_size: 2048,
            lwe_noise_log2: -17.0,
            glwe_noise_log2: -51.0,
            pbs_base_log: 23,
            pbs_level: 1,
            ks_base_log: 4,
            ks_level: 4,
            message_bits,
            p_error: 1e-5,
            noise_distribution: Default::default(),
            modulus_switch: Default::default(),
            ks_modulus: Default::default(),
        }
    }

    fn encoded(int: IntType, shape: &[usize], key: KeyId, width: u8) -> TensorType {
        let mut t = enc(int, shape);
        t.encoding = Some(Encoding { key, width });
        t
    }

    /// A valid TFHE-level graph: x @p0/5 + c, keyswitch to @p0.small/4, pbs to @p0/4.
    fn tfhe_graph() -> (Graph, [ValueId; 5]) {
        let mut g = Graph::new();
        g.level = Level::Tfhe;
        g.params.push(params(4));
        let x = input(&mut g, "x", encoded(u(3), &[2], KeyId::Big(0), 5));
        let c = constant(&mut g, &[2], &[1, 2], u(2));
        let s = g.add_node(Op::Add, encoded(u(4), &[2], KeyId::Big(0), 5), &[x, c]);
        let k = g.add_node(Op::KeySwitch, encoded(u(4), &[2], KeyId::Small(0), 4), &[s]);
        let t = g.add_table(Table {
            entries: (0..16).map(|v| v / 2).collect(),
        });
        let p = g.add_node(
            Op::Pbs {
                tables: vec![t],
                map: vec![],
            },
            encoded(u(3), &[2], KeyId::Big(0), 4),
            &[k],
        );
        output(&mut g, "y", p);
        (g, [x, c, s, k, p])
    }

    #[test]
    fn tfhe_level() {
        let (g, _) = tfhe_graph();
        check(&g, "ok");

        // Tensor-level graphs have no TFHE things.
        let (mut g, _) = tfhe_graph();
        g.level = Level::Tensor;
        let e = verify(&g).unwrap_err();
        assert!(
            e.mentions("a tensor-level graph has 1 parameter set(s)"),
            "{e}"
        );
        assert!(
            e.mentions("%0 = input: has encoding @p0/5 at the tensor level"),
            "{e}"
        );
        assert!(
            e.mentions("%3 = keyswitch: only exists at the TFHE level"),
            "{e}"
        );
        assert!(e.mentions("%4 = pbs: only exists at the TFHE level"), "{e}");

        let (mut g, [x, c, s, _, _]) = tfhe_graph();
        g.node_mut(x).ty.encoding = None;
        g.node_mut(c).ty.encoding = Some(Encoding {
            key: KeyId::Big(0),
            width: 5,
        });
        g.node_mut(s).ty.encoding = Some(Encoding {
            key: KeyId::Big(3),
            width: 5,
        });
        check(
            &g,
            "invalid graph (3 problems):\n  \
             %0 = input: encrypted value enc<u3>[2] has no encoding at the TFHE level\n  \
             %1 = const: clear value clear<u2>[2] @p0/5 has encoding @p0/5\n  \
             %2 = add: encoding @p3/5 names parameter set p3 but the graph has 1",
        );

        // Levelled encodings must agree; encrypted products are not levelled.
        let (mut g, [x, _, s, _, _]) = tfhe_graph();
        g.node_mut(s).op = Op::Mul;
        g.set_operands(s, &[x, x]);
        g.node_mut(s).ty.encoding = Some(Encoding {
            key: KeyId::Big(0),
            width: 6,
        });
        check(
            &g,
            "invalid graph (3 problems):\n  \
             %2 = mul: multiplies two encrypted operands, which is not levelled; lower it with pbs\n  \
             %2 = mul: operand 0 has encoding @p0/5 but the result has @p0/6; encrypted operands of a levelled op share the result's encoding\n  \
             %2 = mul: operand 1 has encoding @p0/5 but the result has @p0/6; encrypted operands of a levelled op share the result's encoding",
        );

        // Tensor-level ops are not allowed.
        let (mut g, [_, _, s, _, _]) = tfhe_graph();
        g.node_mut(s).op = Op::Max;
        check(
            &g,
            "invalid graph: %2 = max: is not allowed at the TFHE level; lower it to levelled ops, keyswitch and pbs",
        );

        // pbs keys.
        let (mut g, [_, _, _, k, p]) = tfhe_graph();
        g.node_mut(p).ty.encoding = Some(Encoding {
            key: KeyId::Small(0),
            width: 4,
        });
        let out = g.outputs()[0];
        g.node_mut(out).ty = g.ty(p).clone();
        g.node_mut(k).ty.encoding = Some(Encoding {
            key: KeyId::Big(0),
            width: 5,
        });
        check(
            &g,
            "invalid graph (2 problems):\n  \
             %4 = pbs: table #0 has 16 entries, but an operand of width 5 needs exactly 32\n  \
             %4 = pbs: operand is under the big key @p0; a bootstrap needs a small key (keyswitch first)",
        );
        let (mut g, [_, _, _, _, p]) = tfhe_graph();
        g.node_mut(p).ty.encoding = Some(Encoding {
            key: KeyId::Small(0),
            width: 4,
        });
        let out = g.outputs()[0];
        g.node_mut(out).ty = g.ty(p).clone();
        check(
            &g,
            "invalid graph: %4 = pbs: result encoding @p0.small/4 must be under @p0 (the operand is under @p0.small)",
        );

        // keyswitch to a big key keeps the width.
        let (mut g, [_, _, _, k, _]) = tfhe_graph();
        g.node_mut(k).ty.encoding = Some(Encoding {
            key: KeyId::Big(0),
            width: 6,
        });
        let e = verify(&g).unwrap_err();
        assert!(
            e.mentions("%3 = keyswitch: changes the width from 5 to 6; only a keyswitch to a small key may change it"),
            "{e}"
        );

        // conv2d weights must be clear at the TFHE level.
        let mut g = Graph::new();
        g.level = Level::Tfhe;
        g.params.push(params(4));
        let x = input(&mut g, "x", encoded(u(2), &[1, 1, 2, 2], KeyId::Big(0), 5));
        let w = input(&mut g, "w", encoded(u(1), &[1, 1, 1, 1], KeyId::Big(0), 5));
        let y = g.add_node(
            Op::Conv2d(crate::Conv2dAttrs::default()),
            encoded(u(2), &[1, 1, 2, 2], KeyId::Big(0), 5),
            &[x, w],
        );
        output(&mut g, "y", y);
        check(
            &g,
            "invalid graph: %2 = conv2d: weights and bias must be clear at the TFHE level",
        );

        // keyswitch widths and types.
        let (mut g, [_, _, _, k, _]) = tfhe_graph();
        g.params[0].message_bits = 3;
        g.node_mut(k).ty.int = u(2);
        check(
            &g,
            "invalid graph (2 problems):\n  \
             %3 = keyswitch: changes the element type from u4 to u2; keyswitch changes only the key\n  \
             %3 = keyswitch: changes the width from 5 to 4; going to @p0.small it may only narrow, to at most 3 (the set's message bits)",
        );
    }
}
