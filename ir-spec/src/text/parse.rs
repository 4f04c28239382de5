//! The parser: text form to [`Graph`], with `line:col` errors.
//!
//! One item per line: the header `veil 1`, an optional `level tfhe`, `params`, `table`, value
//! definitions `%name = op ... : type` and `output "name", %v`. References must be defined on an
//! earlier line. Value and table names are free-form labels; the printer renumbers them.

use super::lexer::{lex, Tok, Token};
use super::ParseError;
use crate::graph::{Graph, Level};
use crate::ops::{BinOp, CmpOp, Constant, Conv2dAttrs, Op, Table, TableId, UnOp};
use crate::params::{KsModulus, ModulusSwitch, NoiseDistribution, ParamSet};
use crate::types::{Encoding, IntType, KeyId, TensorType, Visibility, MAX_BITS};
use crate::{ValueId, FORMAT_VERSION};
use std::collections::{HashMap, HashSet};

type PResult<T> = Result<T, ParseError>;

/// Largest element count of a tensor type the parser accepts (guards against absurd shapes).
pub const MAX_ELEMENTS: usize = 1 << 32;

/// Deepest nesting of a constant literal.
const MAX_NESTING: usize = 32;

/// Every op mnemonic, in the order error messages list them.
pub const OP_NAMES: &[&str] = &[
    "input",
    "const",
    "add",
    "sub",
    "neg",
    "mul",
    "matmul",
    "conv2d",
    "sum",
    "reshape",
    "transpose",
    "broadcast",
    "concat",
    "slice",
    "tlu",
    "tlu.multi",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
    "min",
    "max",
    "relu",
    "abs",
    "round",
    "clip",
    "floordiv",
    "mod",
    "pow",
    "bitand",
    "bitor",
    "bitxor",
    "shl",
    "shr",
    "and",
    "or",
    "xor",
    "sign",
    "not",
    "bitnot",
    "where",
    "output",
    "keyswitch",
    "keyswitch.shr",
    "keyswitch.bit",
    "keyswitch.round",
    "pbs",
    "wop.pbs",
];

/// The result of parsing: the graph and the line each value was defined on.
pub(crate) struct Parsed {
    pub graph: Graph,
    pub lines: HashMap<ValueId, usize>,
}

/// Parses without running the verifier.
pub(crate) fn parse_program(src: &str) -> PResult<Parsed> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        g: Graph::new(),
        values: HashMap::new(),
        tables: HashMap::new(),
        inputs: HashSet::new(),
        outputs: HashSet::new(),
        lines: HashMap::new(),
        items: 0,
    };
    p.program()?;
    Ok(Parsed {
        graph: p.g,
        lines: p.lines,
    })
}

/// Parses a tensor literal (a bare integer or a nested list) on its own.
pub(crate) fn parse_literal(src: &str) -> PResult<(Vec<usize>, Vec<i64>)> {
    let toks = lex(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        g: Graph::new(),
        values: HashMap::new(),
        tables: HashMap::new(),
        inputs: HashSet::new(),
        outputs: HashSet::new(),
        lines: HashMap::new(),
        items: 0,
    };
    p.skip_newlines();
    let lit = p.literal()?;
    p.skip_newlines();
    if p.peek() != &Tok::Eof {
        return Err(p.expected("end of input after the literal"));
    }
    Ok(lit)
}

struct Parser<'a> {
    toks: Vec<Token<'a>>,
    pos: usize,
    g: Graph,
    values: HashMap<&'a str, ValueId>,
    tables: HashMap<&'a str, TableId>,
    inputs: HashSet<String>,
    outputs: HashSet<String>,
    lines: HashMap<ValueId, usize>,
    items: usize,
}

/// An attribute value as written.
#[derive(Clone, Debug)]
enum AttrVal<'a> {
    Number(&'a str),
    Ident(&'a str),
    At(&'a str),
    List(Vec<(AttrVal<'a>, usize, usize)>),
}

struct Attr<'a> {
    name: &'a str,
    val: AttrVal<'a>,
    line: usize,
    col: usize,
    /// Position of the value.
    vpos: (usize, usize),
}

impl<'a> Parser<'a> {
    fn tok(&self) -> &Token<'a> {
        // The token list always ends with Eof and `pos` never passes it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn peek(&self) -> &Tok<'a> {
        &self.tok().tok
    }

    fn bump(&mut self) -> Token<'a> {
        let t = self.tok().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn err_at(&self, line: usize, col: usize, msg: impl Into<String>) -> ParseError {
        ParseError::new(line, col, msg)
    }

    /// "expected X, found Y" at the current token.
    fn expected(&self, what: &str) -> ParseError {
        let t = self.tok();
        ParseError::new(
            t.line,
            t.col,
            format!("expected {what}, found {}", t.tok.describe()),
        )
    }

    fn skip_newlines(&mut self) {
        while self.peek() == &Tok::Newline {
            self.bump();
        }
    }

    fn punct(&mut self, c: char, what: &str) -> PResult<()> {
        if self.peek() == &Tok::Punct(c) {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn eol(&mut self, after: &str) -> PResult<()> {
        match self.peek() {
            Tok::Newline => {
                self.bump();
                Ok(())
            }
            Tok::Eof => Ok(()),
            _ => Err(self.expected(&format!("end of line after {after}"))),
        }
    }

    fn number<T: std::str::FromStr>(&mut self, what: &str) -> PResult<T> {
        let t = self.tok().clone();
        match t.tok {
            Tok::Number(s) => {
                self.bump();
                s.parse().map_err(|_| {
                    self.err_at(t.line, t.col, format!("expected {what}, found number {s}"))
                })
            }
            _ => Err(self.expected(what)),
        }
    }

    fn program(&mut self) -> PResult<()> {
        self.skip_newlines();
        match self.peek() {
            Tok::Ident("veil") => {
                self.bump();
            }
            _ => return Err(self.expected(&format!("the header 'veil {FORMAT_VERSION}'"))),
        }
        let t = self.tok().clone();
        let v: u64 = self.number("the format version")?;
        if v != FORMAT_VERSION as u64 {
            return Err(self.err_at(
                t.line,
                t.col,
                format!("unsupported format version {v}: this veil reads version {FORMAT_VERSION}"),
            ));
        }
        self.eol("the header")?;
        loop {
            self.skip_newlines();
            let t = self.tok().clone();
            match t.tok {
                Tok::Eof => return Ok(()),
                Tok::Ident("level") => self.level()?,
                Tok::Ident("params") => self.params()?,
                Tok::Ident("table") => self.table()?,
                Tok::Ident("output") => self.output()?,
                Tok::Value(_) => self.def()?,
                _ => {
                    return Err(self.expected(
                        "a definition '%name = op ...', 'output \"name\", %value', \
                         'table @name = [...]' or 'params @pK = {...}'",
                    ))
                }
            }
            self.items += 1;
        }
    }

    fn level(&mut self) -> PResult<()> {
        let t = self.bump();
        if self.items > 0 {
            return Err(self.err_at(t.line, t.col, "'level' must come right after the header"));
        }
        match self.peek() {
            Tok::Ident("tfhe") => self.g.level = Level::Tfhe,
            Tok::Ident("tensor") => self.g.level = Level::Tensor,
            _ => return Err(self.expected("'tensor' or 'tfhe'")),
        }
        self.bump();
        self.eol("the level")
    }

    fn params(&mut self) -> PResult<()> {
        let kw = self.bump();
        if self.g.level != Level::Tfhe {
            return Err(self.err_at(
                kw.line,
                kw.col,
                "parameter sets only exist at the TFHE level (add 'level tfhe' after the header)",
            ));
        }
        let want = format!("p{}", self.g.params.len());
        match self.peek() {
            Tok::At(n) if *n == want => {
                self.bump();
            }
            _ => {
                return Err(self.expected(&format!(
                    "'@{want}' (parameter sets are numbered in order from @p0)"
                )))
            }
        }
        self.punct('=', "'='")?;
        let p = self.param_body()?;
        self.g.params.push(p);
        self.eol("the parameter set")
    }

    /// `{ n=742, k=1, N=2048, lwe_noise=2^-17.5, glwe_noise=2^-51.5, pbs=23x1, ks=4x4, bits=4,
    /// p_error=1e-5 }` in any field order, with optional `noise=gaussian|tuniform` and
    /// `ms=standard|centered` and `ks_modulus=2^32|2^64`.
    fn param_body(&mut self) -> PResult<ParamSet> {
        const OPTIONAL: [&str; 3] = ["noise", "ms", "ks_modulus"];
        const FIELDS: [&str; 9] = [
            "n",
            "k",
            "N",
            "lwe_noise",
            "glwe_noise",
            "pbs",
            "ks",
            "bits",
            "p_error",
        ];
        let open = self.tok().clone();
        self.punct('{', "'{' starting the parameter set")?;
        let mut p = ParamSet {
            lwe_dimension: 0,
            glwe_dimension: 0,
            polynomial_size: 0,
            lwe_noise_log2: 0.0,
            glwe_noise_log2: 0.0,
            pbs_base_log: 0,
            pbs_level: 0,
            ks_base_log: 0,
            ks_level: 0,
            message_bits: 0,
            p_error: 0.0,
            noise_distribution: NoiseDistribution::Gaussian,
            modulus_switch: ModulusSwitch::Standard,
            ks_modulus: KsModulus::Q64,
        };
        let mut seen: HashSet<&str> = HashSet::new();
        loop {
            if self.peek() == &Tok::Punct('}') && seen.is_empty() {
                break;
            }
            let t = self.tok().clone();
            let Tok::Ident(name) = t.tok else {
                return Err(self.expected(&format!("a parameter name ({})", FIELDS.join(", "))));
            };
            let Some(&field) = FIELDS.iter().chain(&OPTIONAL).find(|f| **f == name) else {
                return Err(self.err_at(
                    t.line,
                    t.col,
                    format!(
                        "unknown parameter '{name}' (expected one of {})",
                        FIELDS.join(", ")
                    ),
                ));
            };
            if !seen.insert(field) {
                return Err(self.err_at(t.line, t.col, format!("parameter '{name}' given twice")));
            }
            self.bump();
            self.punct('=', "'='")?;
            match field {
                "n" => p.lwe_dimension = self.number("an integer")?,
                "k" => p.glwe_dimension = self.number("an integer")?,
                "N" => p.polynomial_size = self.number("an integer")?,
                "lwe_noise" => p.lwe_noise_log2 = self.pow2()?,
                "glwe_noise" => p.glwe_noise_log2 = self.pow2()?,
                "pbs" => (p.pbs_base_log, p.pbs_level) = self.decomposition()?,
                "ks" => (p.ks_base_log, p.ks_level) = self.decomposition()?,
                "bits" => p.message_bits = self.number("an integer 1..=255")?,
                "noise" => {
                    p.noise_distribution = match self.peek() {
                        Tok::Ident("gaussian") => NoiseDistribution::Gaussian,
                        Tok::Ident("tuniform") => NoiseDistribution::TUniform,
                        _ => return Err(self.expected("'gaussian' or 'tuniform'")),
                    };
                    self.bump();
                }
                "ms" => {
                    p.modulus_switch = match self.peek() {
                        Tok::Ident("standard") => ModulusSwitch::Standard,
                        Tok::Ident("centered") => ModulusSwitch::Centered,
                        _ => return Err(self.expected("'standard' or 'centered'")),
                    };
                    self.bump();
                }
                "ks_modulus" => {
                    let t = self.tok().clone();
                    let log2 = self.pow2()?;
                    p.ks_modulus = if log2 == 32.0 {
                        KsModulus::Q32
                    } else if log2 == 64.0 {
                        KsModulus::Q64
                    } else {
                        return Err(self.err_at(
                            t.line,
                            t.col,
                            format!("keyswitch modulus 2^{log2} must be 2^32 or 2^64"),
                        ));
                    };
                }
                _ => p.p_error = self.float()?,
            }
            if self.peek() == &Tok::Punct(',') {
                self.bump();
            } else {
                break;
            }
        }
        self.punct('}', "',' or '}' in the parameter set")?;
        if let Some(missing) = FIELDS.iter().find(|f| !seen.contains(*f)) {
            return Err(self.err_at(
                open.line,
                open.col,
                format!("parameter set lacks '{missing}'"),
            ));
        }
        Ok(p)
    }

    /// A float: a number, or `inf`, `-inf`, `NaN` (as `{:?}` prints them).
    fn float(&mut self) -> PResult<f64> {
        let neg = if self.peek() == &Tok::Punct('-') {
            self.bump();
            true
        } else {
            false
        };
        let v = match self.peek().clone() {
            Tok::Number(_) if !neg => self.number("a number")?,
            Tok::Ident("inf") => {
                self.bump();
                f64::INFINITY
            }
            Tok::Ident("NaN") => {
                self.bump();
                f64::NAN
            }
            _ => return Err(self.expected("a number")),
        };
        Ok(if neg { -v } else { v })
    }

    /// `2^x`, returning `x`.
    fn pow2(&mut self) -> PResult<f64> {
        match self.peek() {
            Tok::Number("2") => {
                self.bump();
            }
            _ => return Err(self.expected("a noise level '2^x'")),
        }
        self.punct('^', "'^' in '2^x'")?;
        self.float()
    }

    /// `BxL`: base log and levels.
    fn decomposition(&mut self) -> PResult<(usize, usize)> {
        let b = self.number("a decomposition 'base_log x levels' like 23x1")?;
        let t = self.tok().clone();
        match t.tok {
            Tok::Ident(s) if s.starts_with('x') => {
                self.bump();
                let l = s[1..].parse().map_err(|_| {
                    self.err_at(
                        t.line,
                        t.col,
                        "expected 'x' and the number of levels, like 23x1",
                    )
                })?;
                Ok((b, l))
            }
            _ => Err(self.expected("'x' and the number of levels, like 23x1")),
        }
    }

    fn table(&mut self) -> PResult<()> {
        self.bump();
        let t = self.tok().clone();
        let Tok::At(name) = t.tok else {
            return Err(self.expected("a table name '@name'"));
        };
        if self.tables.contains_key(name) {
            return Err(self.err_at(t.line, t.col, format!("table @{name} defined twice")));
        }
        self.bump();
        self.punct('=', "'='")?;
        let lt = self.tok().clone();
        let (shape, entries) = self.literal()?;
        if shape.len() != 1 {
            return Err(self.err_at(lt.line, lt.col, "a table is a flat list of integers"));
        }
        let id = self.g.add_table(Table { entries });
        self.tables.insert(name, id);
        self.eol("the table")
    }

    /// A nested list of integers or a bare integer: `(shape, row-major values)`.
    fn literal(&mut self) -> PResult<(Vec<usize>, Vec<i64>)> {
        self.literal_at(0)
    }

    fn literal_at(&mut self, depth: usize) -> PResult<(Vec<usize>, Vec<i64>)> {
        let t = self.tok().clone();
        match t.tok {
            Tok::Number(_) => Ok((vec![], vec![self.number("a 64-bit integer")?])),
            Tok::Punct('[') => {
                if depth >= MAX_NESTING {
                    return Err(self.err_at(
                        t.line,
                        t.col,
                        format!("list nested more than {MAX_NESTING} deep"),
                    ));
                }
                self.bump();
                let mut inner: Option<Vec<usize>> = None;
                let mut values = Vec::new();
                let mut n = 0usize;
                if self.peek() != &Tok::Punct(']') {
                    loop {
                        let it = self.tok().clone();
                        let (s, v) = self.literal_at(depth + 1)?;
                        match &inner {
                            None => inner = Some(s),
                            Some(first) if *first != s => {
                                return Err(self.err_at(
                                    it.line,
                                    it.col,
                                    format!(
                                        "ragged list: element of shape {s:?} where earlier ones have shape {first:?}"
                                    ),
                                ))
                            }
                            _ => {}
                        }
                        values.extend(v);
                        n += 1;
                        if self.peek() == &Tok::Punct(',') {
                            self.bump();
                        } else {
                            break;
                        }
                    }
                }
                self.punct(']', "',' or ']' in the list")?;
                let mut shape = vec![n];
                shape.extend(inner.unwrap_or_default());
                Ok((shape, values))
            }
            _ => Err(self.expected("an integer or a list '[...]'")),
        }
    }

    fn value_ref(&mut self) -> PResult<ValueId> {
        let t = self.tok().clone();
        let Tok::Value(name) = t.tok else {
            return Err(self.expected("an operand '%name'"));
        };
        self.bump();
        self.values.get(name).copied().ok_or_else(|| {
            self.err_at(
                t.line,
                t.col,
                format!("undefined value %{name} (values must be defined on an earlier line)"),
            )
        })
    }

    /// `, %a, %b` after a name (inputs, consts, outputs).
    fn trailing_operands(&mut self) -> PResult<Vec<ValueId>> {
        let mut ops = Vec::new();
        while self.peek() == &Tok::Punct(',') {
            self.bump();
            ops.push(self.value_ref()?);
        }
        Ok(ops)
    }

    fn output(&mut self) -> PResult<()> {
        let kw = self.bump();
        let t = self.tok().clone();
        let Tok::Str(name) = t.tok else {
            return Err(self.expected("the output name as a string, like \"y\""));
        };
        self.bump();
        if !self.outputs.insert(name.clone()) {
            return Err(self.err_at(t.line, t.col, format!("duplicate output name {name:?}")));
        }
        if self.peek() != &Tok::Punct(',') {
            return Err(self.expected("',' and the output value"));
        }
        let operands = self.trailing_operands()?;
        self.eol("the output")?;
        if operands.len() != 1 {
            return Err(self.err_at(
                kw.line,
                kw.col,
                format!(
                    "wrong number of operands: output takes 1, got {}",
                    operands.len()
                ),
            ));
        }
        let ty = self.g.ty(operands[0]).clone();
        let v = self.g.add_node(Op::Output { name }, ty, &operands);
        self.lines.insert(v, kw.line);
        Ok(())
    }

    fn def(&mut self) -> PResult<()> {
        let head = self.bump();
        let Tok::Value(name) = head.tok else {
            unreachable!("def() is only called on a value token")
        };
        if let Some(prev) = self.values.get(name) {
            let line = self.lines.get(prev).copied().unwrap_or(0);
            return Err(self.err_at(
                head.line,
                head.col,
                format!("value %{name} redefined (first defined on line {line})"),
            ));
        }
        self.punct('=', "'=' after the value name")?;
        let opt = self.tok().clone();
        let Tok::Ident(opname) = opt.tok else {
            return Err(self.expected("an op name"));
        };
        if !OP_NAMES.contains(&opname) || opname == "output" {
            return Err(self.err_at(
                opt.line,
                opt.col,
                format!(
                    "unknown op '{opname}' (known ops: {})",
                    OP_NAMES
                        .iter()
                        .filter(|n| **n != "output")
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        self.bump();
        let mut konst = None;
        let mut input_name = None;
        let mut operands = Vec::new();
        let mut attrs = Vec::new();
        match opname {
            "input" => {
                let t = self.tok().clone();
                let Tok::Str(n) = t.tok else {
                    return Err(self.expected("the input name as a string, like \"x\""));
                };
                self.bump();
                if self.inputs.contains(&n) {
                    return Err(self.err_at(t.line, t.col, format!("duplicate input name {n:?}")));
                }
                input_name = Some(n);
                operands = self.trailing_operands()?;
            }
            "const" => {
                let t = self.tok().clone();
                konst = Some((self.literal()?, t.line, t.col));
                operands = self.trailing_operands()?;
            }
            _ => {
                if matches!(self.peek(), Tok::Value(_)) {
                    operands.push(self.value_ref()?);
                    loop {
                        match self.peek() {
                            Tok::Punct(',') => {
                                self.bump();
                                operands.push(self.value_ref()?);
                            }
                            Tok::Ident(_) | Tok::Punct(':') | Tok::Newline | Tok::Eof => break,
                            _ => return Err(self.expected(
                                "',', an attribute, ':' or the end of the line after the operand",
                            )),
                        }
                    }
                }
                while let Tok::Ident(an) = *self.peek() {
                    let at = self.bump();
                    if attrs.iter().any(|a: &Attr| a.name == an) {
                        return Err(self.err_at(
                            at.line,
                            at.col,
                            format!("attribute '{an}' given twice"),
                        ));
                    }
                    self.punct('=', &format!("'=' after attribute '{an}'"))?;
                    let vpos = (self.tok().line, self.tok().col);
                    let val = self.attr_value()?;
                    attrs.push(Attr {
                        name: an,
                        val,
                        line: at.line,
                        col: at.col,
                        vpos,
                    });
                }
            }
        }
        // The result type is optional where inference can compute it (SPEC §7).
        let declared = match self.peek() {
            Tok::Punct(':') => {
                self.bump();
                let ty = self.ty()?;
                self.eol("the type")?;
                Some(ty)
            }
            Tok::Newline | Tok::Eof => {
                let need = match opname {
                    "input" => Some("an input declares its type, like ': enc<u4>[2]'"),
                    "reshape" | "broadcast" => Some(
                        "the result shape is not inferred: write the type, like ': enc<u4>[2,3]'",
                    ),
                    "keyswitch" | "keyswitch.shr" | "keyswitch.bit" | "keyswitch.round" | "pbs"
                    | "wop.pbs" => Some(
                        "a TFHE-level op declares its type and encoding, like ': enc<u4>[2] @p0/4'",
                    ),
                    _ => None,
                };
                if let Some(need) = need {
                    return Err(self.err_at(
                        opt.line,
                        opt.col,
                        format!("{opname} needs its result type: {need}"),
                    ));
                }
                self.eol("the operands")?;
                None
            }
            _ => return Err(self.expected("':' and the result type, or the end of the line")),
        };
        let op = match opname {
            "input" => {
                let n = input_name.unwrap_or_default();
                self.inputs.insert(n.clone());
                Op::Input { name: n }
            }
            "const" => {
                let ((shape, values), l, c) = konst.expect("const literal parsed above");
                if let Some(ty) = &declared {
                    if shape != ty.shape {
                        return Err(self.err_at(
                            l,
                            c,
                            format!("constant of shape {shape:?} does not match its type {ty}"),
                        ));
                    }
                }
                let id = self.g.add_const(Constant { shape, values });
                Op::Const { value: id }
            }
            _ => self.build_op(opname, attrs, (opt.line, opt.col))?,
        };
        let (lo, hi) = op.arity();
        if operands.len() < lo || operands.len() > hi {
            let takes = if lo == hi {
                lo.to_string()
            } else if hi == usize::MAX {
                format!("at least {lo}")
            } else {
                format!("{lo} to {hi}")
            };
            return Err(self.err_at(
                opt.line,
                opt.col,
                format!(
                    "wrong number of operands: {opname} takes {takes}, got {}",
                    operands.len()
                ),
            ));
        }
        let ty = match declared {
            Some(ty) => ty,
            None => crate::infer::infer(&self.g, &op, &operands, None).map_err(|e| {
                self.err_at(
                    opt.line,
                    opt.col,
                    format!("cannot infer the result type of {opname}: {}", e.msg),
                )
            })?,
        };
        let v = self.g.add_node(op, ty, &operands);
        self.values.insert(name, v);
        self.lines.insert(v, head.line);
        Ok(())
    }

    fn attr_value(&mut self) -> PResult<AttrVal<'a>> {
        let t = self.tok().clone();
        let v = match t.tok {
            Tok::Number(s) => AttrVal::Number(s),
            Tok::Ident(s) => AttrVal::Ident(s),
            Tok::At(s) => AttrVal::At(s),
            Tok::Punct('[') => {
                self.bump();
                let mut items = Vec::new();
                if self.peek() != &Tok::Punct(']') {
                    loop {
                        let it = self.tok().clone();
                        let v = match it.tok {
                            Tok::Number(s) => AttrVal::Number(s),
                            Tok::At(s) => AttrVal::At(s),
                            Tok::Ident(s) => AttrVal::Ident(s),
                            _ => return Err(self.expected("an integer or '@table' in the list")),
                        };
                        self.bump();
                        items.push((v, it.line, it.col));
                        if self.peek() == &Tok::Punct(',') {
                            self.bump();
                        } else {
                            break;
                        }
                    }
                }
                self.punct(']', "',' or ']' in the list")?;
                return Ok(AttrVal::List(items));
            }
            _ => return Err(self.expected("an attribute value (integer, boolean, @table or list)")),
        };
        self.bump();
        Ok(v)
    }

    fn build_op(&self, opname: &str, attrs: Vec<Attr<'a>>, at: (usize, usize)) -> PResult<Op> {
        let mut a = Attrs {
            p: self,
            op: opname,
            attrs,
            at,
        };
        let op = match opname {
            "add" => Op::Add,
            "sub" => Op::Sub,
            "neg" => Op::Neg,
            "mul" => Op::Mul,
            "matmul" => Op::MatMul,
            "reshape" => Op::Reshape,
            "broadcast" => Op::Broadcast,
            "min" => Op::Min,
            "max" => Op::Max,
            "relu" => Op::Relu,
            "abs" => Op::Abs,
            "keyswitch" => Op::KeySwitch,
            "keyswitch.shr" => Op::KeySwitchShr {
                shift: a.int("shift", None)?,
            },
            "keyswitch.bit" => Op::KeySwitchBit {
                bit: a.int("bit", None)?,
            },
            "keyswitch.round" => Op::KeySwitchRound {
                shift: a.int("shift", None)?,
            },
            "conv2d" => {
                let d = Conv2dAttrs::default();
                Op::Conv2d(Conv2dAttrs {
                    strides: a.array("strides", Some(d.strides))?,
                    pads: a.array("pads", Some(d.pads))?,
                    dilations: a.array("dilations", Some(d.dilations))?,
                    group: a.int("group", Some(d.group))?,
                })
            }
            "sum" => Op::Sum {
                axes: a.ints("axes", Some(vec![]))?,
                keepdims: a.boolean("keepdims", Some(false))?,
            },
            "transpose" => Op::Transpose {
                perm: a.ints("perm", None)?,
            },
            "concat" => Op::Concat {
                axis: a.int("axis", None)?,
            },
            "slice" => {
                let starts: Vec<usize> = a.ints("starts", None)?;
                let stops = a.ints("stops", None)?;
                let steps = a.ints("steps", Some(vec![1; starts.len()]))?;
                Op::Slice {
                    starts,
                    stops,
                    steps,
                }
            }
            "tlu" => Op::Tlu {
                table: a.table("table")?,
            },
            "tlu.multi" => Op::TluMulti {
                tables: a.tables("tables")?,
                map: a.ints("map", None)?,
            },
            "pbs" => Op::Pbs {
                tables: a.tables("tables")?,
                map: a.ints("map", Some(vec![]))?,
            },
            "wop.pbs" => Op::WopPbs {
                tables: a.tables("tables")?,
                map: a.ints("map", Some(vec![]))?,
                pfks_base_log: a.int("pfks_base_log", None)?,
                pfks_level: a.int("pfks_level", None)?,
                cbs_base_log: a.int("cbs_base_log", None)?,
                cbs_level: a.int("cbs_level", None)?,
                out_bits: a.int("out_bits", None)?,
            },
            "round" => Op::Round {
                lsbs: a.int("lsbs", None)?,
                approx: a.boolean("approx", Some(false))?,
                rescale: a.boolean("rescale", Some(false))?,
            },
            "clip" => Op::Clip {
                lo: a.int("lo", None)?,
                hi: a.int("hi", None)?,
            },
            "where" => Op::Where,
            other => {
                if let Some(b) = BinOp::ALL.into_iter().find(|b| b.name() == other) {
                    Op::Binary(b)
                } else if let Some(u) = UnOp::ALL.into_iter().find(|u| u.name() == other) {
                    Op::Unary(u)
                } else {
                    let c = CmpOp::ALL
                        .into_iter()
                        .find(|c| c.name() == other)
                        .expect("op names are checked against OP_NAMES before building");
                    Op::Cmp(c)
                }
            }
        };
        a.finish(&op)?;
        Ok(op)
    }

    fn ty(&mut self) -> PResult<TensorType> {
        let t = self.tok().clone();
        let vis = match t.tok {
            Tok::Ident("enc") => Visibility::Encrypted,
            Tok::Ident("clear") => Visibility::Clear,
            _ => return Err(self.expected("a type like enc<u4>[2,3] or clear<i8>")),
        };
        self.bump();
        self.punct('<', "'<' and the element type")?;
        let it = self.tok().clone();
        let int = match it.tok {
            Tok::Ident(s) if s.starts_with('u') || s.starts_with('i') => {
                let bits: u32 = s[1..].parse().map_err(|_| {
                    self.err_at(
                        it.line,
                        it.col,
                        format!("bad type: expected an integer type like u8 or i4, found '{s}'"),
                    )
                })?;
                if bits == 0 || bits > MAX_BITS as u32 {
                    return Err(self.err_at(
                        it.line,
                        it.col,
                        format!("bad type: bit width {bits} out of range 1..={MAX_BITS}"),
                    ));
                }
                let bits = bits as u8;
                if s.starts_with('u') {
                    IntType::unsigned(bits)
                } else {
                    IntType::signed(bits)
                }
            }
            _ => return Err(self.expected("an integer type like u8 or i4")),
        };
        self.bump();
        self.punct('>', "'>' after the element type")?;
        let mut shape = Vec::new();
        if self.peek() == &Tok::Punct('[') {
            let st = self.bump();
            if self.peek() != &Tok::Punct(']') {
                loop {
                    shape.push(self.number::<usize>("a dimension (non-negative integer)")?);
                    if self.peek() == &Tok::Punct(',') {
                        self.bump();
                    } else {
                        break;
                    }
                }
            }
            self.punct(']', "',' or ']' in the shape")?;
            let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            if n.is_none_or(|n| n > MAX_ELEMENTS) {
                return Err(self.err_at(
                    st.line,
                    st.col,
                    format!("bad type: shape {shape:?} has more than {MAX_ELEMENTS} elements"),
                ));
            }
        }
        let mut encoding = None;
        let et = self.tok().clone();
        if let Tok::At(k) = et.tok {
            self.bump();
            let (p, small) = match k.strip_suffix(".small") {
                Some(p) => (p, true),
                None => (k, false),
            };
            let idx = p
                .strip_prefix('p')
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| {
                    self.err_at(
                        et.line,
                        et.col,
                        format!("bad encoding '@{k}': expected a key '@pK' or '@pK.small'"),
                    )
                })?;
            if idx as usize >= self.g.params.len() {
                return Err(self.err_at(
                    et.line,
                    et.col,
                    format!(
                        "unknown parameter set @p{idx} ({} declared)",
                        self.g.params.len()
                    ),
                ));
            }
            self.punct('/', "'/' and the message width after the key")?;
            let wt = self.tok().clone();
            let width: u8 = self.number("a message width 1..=62")?;
            if !(1..=62).contains(&width) {
                return Err(self.err_at(
                    wt.line,
                    wt.col,
                    format!("bad type: message width {width} out of range 1..=62"),
                ));
            }
            encoding = Some(Encoding {
                key: if small {
                    KeyId::Small(idx)
                } else {
                    KeyId::Big(idx)
                },
                width,
            });
        }
        Ok(TensorType {
            vis,
            int,
            shape,
            encoding,
        })
    }
}

/// Attribute extraction for one op, with "bad attribute" errors at the attribute.
struct Attrs<'p, 'a> {
    p: &'p Parser<'a>,
    op: &'p str,
    attrs: Vec<Attr<'a>>,
    at: (usize, usize),
}

impl<'a> Attrs<'_, 'a> {
    fn take(&mut self, name: &str) -> Option<Attr<'a>> {
        let i = self.attrs.iter().position(|a| a.name == name)?;
        Some(self.attrs.remove(i))
    }

    fn missing(&self, name: &str) -> ParseError {
        self.p.err_at(
            self.at.0,
            self.at.1,
            format!("{} needs attribute '{name}'", self.op),
        )
    }

    fn bad(&self, a: &Attr, want: &str) -> ParseError {
        self.p.err_at(
            a.line,
            a.col,
            format!("bad attribute '{}' of {}: expected {want}", a.name, self.op),
        )
    }

    fn int<T: std::str::FromStr>(&mut self, name: &str, default: Option<T>) -> PResult<T> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(a) => match a.val {
                AttrVal::Number(s) => s
                    .parse()
                    .map_err(|_| self.bad(&a, &format!("an integer in range, found {s}"))),
                _ => Err(self.bad(&a, "an integer")),
            },
        }
    }

    fn boolean(&mut self, name: &str, default: Option<bool>) -> PResult<bool> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(a) => match a.val {
                AttrVal::Ident("true") => Ok(true),
                AttrVal::Ident("false") => Ok(false),
                _ => Err(self.bad(&a, "true or false")),
            },
        }
    }

    fn ints<T: std::str::FromStr>(
        &mut self,
        name: &str,
        default: Option<Vec<T>>,
    ) -> PResult<Vec<T>> {
        match self.take(name) {
            None => default.ok_or_else(|| self.missing(name)),
            Some(a) => {
                let AttrVal::List(items) = &a.val else {
                    return Err(self.bad(&a, "a list of integers '[...]'"));
                };
                items
                    .iter()
                    .map(|(v, l, c)| match v {
                        AttrVal::Number(s) => s.parse().ok(),
                        _ => None,
                    }
                    .ok_or_else(|| {
                        self.p.err_at(
                            *l,
                            *c,
                            format!(
                                "bad attribute '{}' of {}: expected a list of non-negative integers in range",
                                a.name, self.op
                            ),
                        )
                    }))
                    .collect()
            }
        }
    }

    fn array<const N: usize>(
        &mut self,
        name: &str,
        default: Option<[usize; N]>,
    ) -> PResult<[usize; N]> {
        let line_col = self
            .attrs
            .iter()
            .find(|a| a.name == name)
            .map(|a| (a.line, a.col));
        let v: Vec<usize> = self.ints(name, default.map(|d| d.to_vec()))?;
        v.try_into().map_err(|v: Vec<usize>| {
            let (l, c) = line_col.unwrap_or(self.at);
            self.p.err_at(
                l,
                c,
                format!(
                    "bad attribute '{name}' of {}: expected {N} integers, found {}",
                    self.op,
                    v.len()
                ),
            )
        })
    }

    fn lookup(&self, name: &str, l: usize, c: usize) -> PResult<TableId> {
        self.p.tables.get(name).copied().ok_or_else(|| {
            self.p.err_at(
                l,
                c,
                format!("unknown table @{name} (declare it first: 'table @{name} = [...]')"),
            )
        })
    }

    fn table(&mut self, name: &str) -> PResult<TableId> {
        match self.take(name) {
            None => Err(self.missing(name)),
            Some(a) => match a.val {
                AttrVal::At(t) => self.lookup(t, a.vpos.0, a.vpos.1),
                _ => Err(self.bad(&a, "a table '@name'")),
            },
        }
    }

    fn tables(&mut self, name: &str) -> PResult<Vec<TableId>> {
        match self.take(name) {
            None => Err(self.missing(name)),
            Some(a) => {
                let AttrVal::List(items) = &a.val else {
                    return Err(self.bad(&a, "a list of tables '[@t0,@t1]'"));
                };
                items
                    .iter()
                    .map(|(v, l, c)| match v {
                        AttrVal::At(t) => self.lookup(t, *l, *c),
                        _ => Err(self.p.err_at(
                            *l,
                            *c,
                            format!(
                                "bad attribute '{}' of {}: expected a list of tables '[@t0,@t1]'",
                                a.name, self.op
                            ),
                        )),
                    })
                    .collect()
            }
        }
    }

    fn finish(self, op: &Op) -> PResult<()> {
        if let Some(a) = self.attrs.first() {
            let known: Vec<&str> = super::print::attrs(op)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let known = match op {
                Op::Pbs { .. } => vec!["tables", "map"],
                Op::WopPbs { .. } => vec![
                    "tables",
                    "map",
                    "pfks_base_log",
                    "pfks_level",
                    "cbs_base_log",
                    "cbs_level",
                    "out_bits",
                ],
                _ => known,
            };
            let expect = if known.is_empty() {
                format!("{} takes no attributes", self.op)
            } else {
                format!("{} takes {}", self.op, known.join(", "))
            };
            return Err(self.p.err_at(
                a.line,
                a.col,
                format!("unknown attribute '{}' ({expect})", a.name),
            ));
        }
        Ok(())
    }
}
