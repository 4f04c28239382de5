//! Serialization of graphs: JSON for people, compact binary (bincode) for machines.
//!
//! Both carry a header checked on load: the magic `VEIL`, a format version ([`BINARY_VERSION`]
//! for binary, [`FORMAT_VERSION`] for JSON) and a *kind*
//! naming the payload (`"graph"` for programs; other crates reuse the envelope for their own
//! artifacts through [`encode_binary`] / [`decode_binary`] and the JSON pair).
//!
//! What is stored is a canonical [`Program`], not petgraph internals: pools compacted, nodes in
//! the printer's order (topological, outputs last in output order) with operands as indices into
//! the node list. Equal programs therefore serialize to equal bytes.
//!
//! Binary layout (integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 4 | magic `VEIL` |
//! | 4 | format version (`u32`) |
//! | 1 + k | kind: length `k` (`u8`) then UTF-8 bytes |
//! | 8 | payload length (`u64`) |
//! | 8 | checksum: first 8 bytes of the SHA-256 of the payload |
//! | n | payload: bincode 1.3, `DefaultOptions` (varint integers) |
//!
//! JSON layout: `{"magic": "VEIL", "version": 1, "kind": "graph", "payload": {...}}`.

use crate::graph::{Graph, Level};
use crate::ops::{Constant, Op, Table};
use crate::params::ParamSet;
use crate::types::TensorType;
use crate::verify::{verify, VerifyError};
use crate::{ValueId, FORMAT_VERSION};
use bincode::Options;

/// Version of the binary envelope. Bincode is not self-describing, so it moves whenever a stored
/// type gains a field: 2 since parameter sets record their noise distribution and modulus switch
/// (JSON and text read older files, whose missing fields take their defaults); 3 since ops carry
/// no JSON; 4 since compressed server keys carry WoP-PBS keys (and programs may hold `wop.pbs`);
/// 5 since parameter sets record their keyswitch modulus (KS32).
pub const BINARY_VERSION: u32 = 5;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The four bytes every serialized veil artifact starts with.
pub const MAGIC: [u8; 4] = *b"VEIL";

/// The kind of a serialized [`Graph`].
pub const KIND_GRAPH: &str = "graph";

/// Why serializing or loading failed.
#[derive(Debug, thiserror::Error)]
pub enum SerialError {
    /// The data does not start with `VEIL`: not a veil file, or the wrong format (JSON vs binary).
    #[error("not a veil file: expected magic \"VEIL\", found {found:?}")]
    BadMagic {
        /// What was found instead.
        found: String,
    },
    /// Written by another format version.
    #[error("unsupported format version {found}: this veil reads version {expected}")]
    Version {
        /// Version in the header.
        found: u64,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// Holds another kind of artifact.
    #[error("wrong kind of veil file: expected {expected:?}, found {found:?}")]
    Kind {
        /// Kind in the header.
        found: String,
        /// Kind asked for.
        expected: String,
    },
    /// Ends before the header or payload does.
    #[error("truncated veil data: {what} needs {need} bytes, only {have} left")]
    Truncated {
        /// The part being read.
        what: &'static str,
        /// Bytes needed.
        need: u64,
        /// Bytes available.
        have: u64,
    },
    /// Data after the payload.
    #[error("{0} unexpected bytes after the payload")]
    Trailing(u64),
    /// The payload does not match its checksum.
    #[error("corrupted veil data: payload checksum mismatch")]
    Checksum,
    /// The header or payload could not be decoded.
    #[error("cannot decode veil {what}: {msg}")]
    Decode {
        /// The part being decoded.
        what: &'static str,
        /// The decoder's message.
        msg: String,
    },
    /// The value could not be encoded (e.g. a NaN noise level in JSON).
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The decoded program is structurally broken (operand index out of range, cycle).
    #[error("malformed program: {0}")]
    Malformed(String),
    /// The decoded program breaks an invariant of the verifier.
    #[error("{0}")]
    Invalid(#[from] VerifyError),
}

type SResult<T> = Result<T, SerialError>;

/// A graph in canonical, serializable form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// IR level.
    pub level: Level,
    /// Parameter sets `@p0, @p1, ...`.
    pub params: Vec<ParamSet>,
    /// Table pool, in order of first use.
    pub tables: Vec<Table>,
    /// Constant pool, in order of first use.
    pub consts: Vec<Constant>,
    /// Nodes in topological order (outputs last, in output order).
    pub nodes: Vec<ProgramNode>,
}

/// One node of a [`Program`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgramNode {
    /// The operation.
    pub op: Op,
    /// The result type.
    pub ty: TensorType,
    /// Operands as indices of earlier nodes.
    pub operands: Vec<u32>,
}

impl Program {
    /// The canonical form of a graph. Fails only for a cyclic graph.
    pub fn from_graph(graph: &Graph) -> SResult<Program> {
        let mut g = graph.clone();
        g.compact_pools();
        let order = g.topo_order().map_err(|cycle| {
            SerialError::Malformed(format!(
                "the graph has a cycle through {} nodes",
                cycle.len()
            ))
        })?;
        let mut order: Vec<ValueId> = order
            .into_iter()
            .filter(|v| !matches!(g.op(*v), Op::Output { .. }))
            .collect();
        order.extend(g.outputs());
        let index: HashMap<ValueId, u32> = order
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, i as u32))
            .collect();
        let nodes = order
            .iter()
            .map(|v| ProgramNode {
                op: g.op(*v).clone(),
                ty: g.ty(*v).clone(),
                operands: g.operands(*v).iter().map(|o| index[o]).collect(),
            })
            .collect();
        Ok(Program {
            level: g.level,
            params: g.params,
            tables: g.tables,
            consts: g.consts,
            nodes,
        })
    }

    /// Rebuilds the graph (without verifying it).
    pub fn to_graph(&self) -> SResult<Graph> {
        let mut g = Graph::new();
        g.level = self.level;
        g.params = self.params.clone();
        g.tables = self.tables.clone();
        g.consts = self.consts.clone();
        let mut ids = Vec::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            let mut ops = Vec::with_capacity(n.operands.len());
            for &o in &n.operands {
                if o as usize >= i {
                    return Err(SerialError::Malformed(format!(
                        "node {i} ({}) uses node {o}, which is not an earlier node",
                        n.op.name()
                    )));
                }
                ops.push(ids[o as usize]);
            }
            ids.push(g.add_node(n.op.clone(), n.ty.clone(), &ops));
        }
        Ok(g)
    }
}

/// Writes any value in the binary envelope under `kind`.
pub fn encode_binary<T: Serialize>(kind: &str, value: &T) -> SResult<Vec<u8>> {
    let kind_len = u8::try_from(kind.len())
        .map_err(|_| SerialError::Encode(format!("kind {kind:?} is longer than 255 bytes")))?;
    let payload = bincode::DefaultOptions::new()
        .serialize(value)
        .map_err(|e| SerialError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(payload.len() + 32 + kind.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&BINARY_VERSION.to_le_bytes());
    out.push(kind_len);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&payload));
    out.extend_from_slice(&payload);
    Ok(out)
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(payload);
    let mut c = [0u8; 8];
    c.copy_from_slice(&d[..8]);
    c
}

/// A cursor over the binary envelope that reports truncation precisely.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64, what: &'static str) -> SResult<&'a [u8]> {
        let have = (self.data.len() - self.pos) as u64;
        if n > have {
            return Err(SerialError::Truncated {
                what,
                need: n,
                have,
            });
        }
        let s = &self.data[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }
}

/// Reads a value written by [`encode_binary`], checking magic, version, kind and checksum.
pub fn decode_binary<T: DeserializeOwned>(kind: &str, data: &[u8]) -> SResult<T> {
    let mut r = Reader { data, pos: 0 };
    let magic = r.take(4, "the magic").map_err(|e| match e {
        SerialError::Truncated { .. } if !data.is_empty() && !MAGIC.starts_with(data) => {
            SerialError::BadMagic {
                found: String::from_utf8_lossy(data).into_owned(),
            }
        }
        e => e,
    })?;
    if magic != MAGIC {
        return Err(SerialError::BadMagic {
            found: String::from_utf8_lossy(magic).into_owned(),
        });
    }
    let version = u32::from_le_bytes(r.take(4, "the version")?.try_into().expect("4 bytes"));
    if version != BINARY_VERSION {
        return Err(SerialError::Version {
            found: version as u64,
            expected: BINARY_VERSION,
        });
    }
    let kind_len = r.take(1, "the kind length")?[0];
    let found = r.take(kind_len as u64, "the kind")?;
    if found != kind.as_bytes() {
        return Err(SerialError::Kind {
            found: String::from_utf8_lossy(found).into_owned(),
            expected: kind.to_string(),
        });
    }
    let len = u64::from_le_bytes(
        r.take(8, "the payload length")?
            .try_into()
            .expect("8 bytes"),
    );
    let sum: [u8; 8] = r.take(8, "the checksum")?.try_into().expect("8 bytes");
    let payload = r.take(len, "the payload")?;
    let rest = (data.len() - r.pos) as u64;
    if rest > 0 {
        return Err(SerialError::Trailing(rest));
    }
    if checksum(payload) != sum {
        return Err(SerialError::Checksum);
    }
    bincode::DefaultOptions::new()
        .with_limit(len)
        .deserialize(payload)
        .map_err(|e| SerialError::Decode {
            what: "payload",
            msg: e.to_string(),
        })
}

#[derive(Serialize)]
struct JsonOut<'a, T> {
    magic: &'a str,
    version: u32,
    kind: &'a str,
    payload: &'a T,
}

/// Writes any value as pretty JSON in the envelope under `kind`.
pub fn encode_json<T: Serialize>(kind: &str, value: &T) -> SResult<String> {
    serde_json::to_string_pretty(&JsonOut {
        magic: "VEIL",
        version: FORMAT_VERSION,
        kind,
        payload: value,
    })
    .map_err(|e| SerialError::Encode(e.to_string()))
}

/// Reads a value written by [`encode_json`], checking magic, version and kind.
pub fn decode_json<T: DeserializeOwned>(kind: &str, text: &str) -> SResult<T> {
    let mut v: serde_json::Value = serde_json::from_str(text).map_err(|e| SerialError::Decode {
        what: "JSON",
        msg: e.to_string(),
    })?;
    let Some(obj) = v.as_object_mut() else {
        return Err(SerialError::BadMagic {
            found: "a JSON value that is not an object".into(),
        });
    };
    match obj.get("magic") {
        Some(serde_json::Value::String(m)) if m == "VEIL" => {}
        other => {
            return Err(SerialError::BadMagic {
                found: other.map_or("no \"magic\" field".into(), |m| m.to_string()),
            })
        }
    }
    match obj.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == FORMAT_VERSION as u64 => {}
        Some(v) => {
            return Err(SerialError::Version {
                found: v,
                expected: FORMAT_VERSION,
            })
        }
        None => {
            return Err(SerialError::Decode {
                what: "header",
                msg: "missing or non-integer \"version\" field".into(),
            })
        }
    }
    match obj.get("kind").and_then(|k| k.as_str()) {
        Some(k) if k == kind => {}
        other => {
            return Err(SerialError::Kind {
                found: other.unwrap_or("(none)").to_string(),
                expected: kind.to_string(),
            })
        }
    }
    let payload = obj.remove("payload").ok_or_else(|| SerialError::Decode {
        what: "header",
        msg: "missing \"payload\" field".into(),
    })?;
    serde_json::from_value(payload).map_err(|e| SerialError::Decode {
        what: "payload",
        msg: e.to_string(),
    })
}

/// Serializes a graph to compact binary.
pub fn to_bytes(g: &Graph) -> SResult<Vec<u8>> {
    encode_binary(KIND_GRAPH, &Program::from_graph(g)?)
}

/// Loads a graph from [`to_bytes`] output and verifies it.
pub fn from_bytes(data: &[u8]) -> SResult<Graph> {
    let p: Program = decode_binary(KIND_GRAPH, data)?;
    let g = p.to_graph()?;
    verify(&g)?;
    Ok(g)
}

/// Serializes a graph to pretty JSON.
pub fn to_json(g: &Graph) -> SResult<String> {
    encode_json(KIND_GRAPH, &Program::from_graph(g)?)
}

/// Loads a graph from [`to_json`] output and verifies it.
pub fn from_json(text: &str) -> SResult<Graph> {
    let p: Program = decode_json(KIND_GRAPH, text)?;
    let g = p.to_graph()?;
    verify(&g)?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{parse, print};

    const SRC: &str = r#"veil 1
table @t0 = [0,1,4,9]
%0 = input "x" : enc<u2>[2,2]
%1 = const [[1,-2],[3,4]] : clear<i4>[2,2]
%2 = tlu %0 table=@t0 : enc<u4>[2,2]
%3 = matmul %2, %1 : enc<i8>[2,2]
%4 = sum %3 axes=[1] keepdims=false : enc<i9>[2]
output "y", %4
output "z", %2
"#;

    const TFHE: &str = r#"veil 1
level tfhe
params @p0 = { n=742, k=1, N=2048, lwe_noise=2^-17.5, glwe_noise=2^-51.5, pbs=23x1, ks=4x4, bits=2, p_error=1e-5 }
table @t0 = [0,1,0,1]
%0 = input "x" : enc<u2>[4] @p0/2
%1 = keyswitch %0 : enc<u2>[4] @p0.small/2
%2 = pbs %1 tables=[@t0] : enc<u1>[4] @p0/2
output "y", %2
"#;

    fn graph(src: &str) -> Graph {
        parse(src).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn round_trips() {
        for src in [SRC, TFHE] {
            let g = graph(src);
            let b = to_bytes(&g).unwrap();
            assert_eq!(print(&from_bytes(&b).unwrap()), src);
            let j = to_json(&g).unwrap();
            assert!(j.contains("\"magic\": \"VEIL\""), "{j}");
            assert_eq!(print(&from_json(&j).unwrap()), src);
            // Canonical: a reparsed copy serializes to the same bytes.
            assert_eq!(to_bytes(&graph(&print(&g))).unwrap(), b);
        }
    }

    #[test]
    fn equal_programs_serialize_equally() {
        // Same program, different creation order and pool layout.
        let a = graph(SRC);
        let mut b = graph(
            "veil 1\ntable @junk = [5,5,5,5]\ntable @sq = [0,1,4,9]\n\
             %w = const [[1,-2],[3,4]] : clear<i4>[2,2]\n%x = input \"x\" : enc<u2>[2,2]\n\
             %s = tlu %x table=@sq : enc<u4>[2,2]\n%m = matmul %s, %w : enc<i8>[2,2]\n\
             %y = sum %m axes=[1] : enc<i9>[2]\noutput \"y\", %y\noutput \"z\", %s\n",
        );
        assert_ne!(print(&a), print(&b));
        b.dce();
        assert_eq!(
            from_bytes(&to_bytes(&b).unwrap())
                .map(|g| print(&g))
                .unwrap(),
            print(&b)
        );
    }

    #[test]
    fn header_errors() {
        let g = graph(SRC);
        let b = to_bytes(&g).unwrap();
        let err = |d: &[u8]| from_bytes(d).unwrap_err().to_string();
        assert_eq!(
            err(b"PK\x03\x04rest"),
            "not a veil file: expected magic \"VEIL\", found \"PK\\u{3}\\u{4}\""
        );
        assert!(err(b"{\"magic\"").starts_with("not a veil file"));
        let mut v1 = b.clone();
        v1[4] = 1;
        assert_eq!(
            err(&v1),
            "unsupported format version 1: this veil reads version 5"
        );
        let other = encode_binary("keys", &1u32).unwrap();
        assert_eq!(
            err(&other),
            "wrong kind of veil file: expected \"graph\", found \"keys\""
        );
        for cut in [0, 2, 6, 10, 20, b.len() - 1] {
            let e = err(&b[..cut]);
            assert!(e.starts_with("truncated veil data"), "cut {cut}: {e}");
        }
        let mut long = b.clone();
        long.push(0);
        assert_eq!(err(&long), "1 unexpected bytes after the payload");
        let mut flip = b.clone();
        let last = flip.len() - 3;
        flip[last] ^= 0x10;
        assert_eq!(err(&flip), "corrupted veil data: payload checksum mismatch");
    }

    #[test]
    fn json_errors() {
        let j = to_json(&graph(SRC)).unwrap();
        let err = |s: &str| from_json(s).unwrap_err().to_string();
        assert!(err("not json").starts_with("cannot decode veil JSON"));
        assert!(err("[1]").starts_with("not a veil file"));
        assert!(err(&j.replace("\"VEIL\"", "\"NOPE\"")).starts_with("not a veil file"));
        assert_eq!(
            err(&j.replace("\"version\": 1", "\"version\": 7")),
            "unsupported format version 7: this veil reads version 1"
        );
        assert!(err(&j.replace("\"graph\"", "\"keys\"")).starts_with("wrong kind"));
        assert!(err(&j[..j.len() / 2]).starts_with("cannot decode veil JSON"));
        // A well-formed envelope holding a program that breaks an invariant.
        let bad = j.replace("\"name\": \"z\"", "\"name\": \"y\"");
        assert!(err(&bad).contains("invalid graph"), "{}", err(&bad));
    }

    #[test]
    fn malformed_programs_are_rejected() {
        let mut p = Program::from_graph(&graph(SRC)).unwrap();
        p.nodes[2].operands = vec![5];
        let b = encode_binary(KIND_GRAPH, &p).unwrap();
        assert!(from_bytes(&b)
            .unwrap_err()
            .to_string()
            .contains("node 2 (tlu) uses node 5, which is not an earlier node"));
    }
}
