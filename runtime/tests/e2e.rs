//! End-to-end tests of the runtime: keys, encryption, execution, serialization.
//!
//! Every encrypted run is compared with the reference interpreter (`veil_ir::interp::run`).
//! Keys are generated once per precision (OnceLock) with Concrete's 128-bit reference sets.
//! Precisions 7 and 8 take the longest (about 47 s together on 2 cores: key generation with a
//! 1 GB bootstrap key at 8 bits), and run with fewer samples.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::{Arc, Mutex, OnceLock};
use veil_ir::{
    Constant, Encoding, Graph, IntType, KeyId, Level, Op, ParamSet, Table, Tensor, TensorType,
    ValueId,
};
use veil_runtime::serial::params_from_bytes;
use veil_runtime::serial::params_to_bytes;
use veil_runtime::*;

// ------------------------------------------------------------------ helpers

struct Keys {
    ck: ClientKeys,
    csk: CompressedServerKeys,
    sk: ServerKeys,
}

/// Requirements of every test program on one set: the bootstrap key and big -> small.
fn req() -> KeyRequirements {
    KeyRequirements {
        bsk: [0].into(),
        ksk: [(KeyId::Big(0), KeyId::Small(0))].into(),
        ..Default::default()
    }
}

fn keys(bits: u8) -> &'static Keys {
    static KEYS: [OnceLock<Keys>; 8] = [const { OnceLock::new() }; 8];
    KEYS[bits as usize - 1].get_or_init(|| {
        let p = reference_params(bits).unwrap();
        let opts = KeygenOptions {
            seed: 1000 + bits as u128,
            allow_insecure_for_tests: false,
        };
        let ck = ClientKeys::generate(&[p], &opts).unwrap();
        let csk = ck.server_keys(&req(), None).unwrap();
        let sk = csk.decompress();
        Keys { ck, csk, sk }
    })
}

fn enc(key: KeyId, width: u8) -> Option<Encoding> {
    Some(Encoding { key, width })
}

fn ety(int: IntType, shape: &[usize], key: KeyId, width: u8) -> TensorType {
    TensorType {
        encoding: enc(key, width),
        ..TensorType::encrypted(int, shape.to_vec())
    }
}

/// A TFHE-level graph under construction, over one parameter set.
struct G {
    g: Graph,
}

impl G {
    fn new(p: ParamSet) -> Self {
        let mut g = Graph::new();
        g.level = Level::Tfhe;
        g.params = vec![p];
        G { g }
    }
    fn node(&mut self, op: Op, ty: TensorType, operands: &[ValueId]) -> ValueId {
        self.g.add_node(op, ty, operands)
    }
    fn input(&mut self, name: &str, ty: TensorType) -> ValueId {
        self.node(Op::Input { name: name.into() }, ty, &[])
    }
    fn constant(&mut self, int: IntType, shape: &[usize], values: Vec<i64>) -> ValueId {
        let c = self.g.add_const(Constant {
            shape: shape.to_vec(),
            values,
        });
        self.node(
            Op::Const { value: c },
            TensorType::clear(int, shape.to_vec()),
            &[],
        )
    }
    /// keyswitch to the small key then pbs through `tables` (with `map` when several).
    fn tlu(
        &mut self,
        x: ValueId,
        tables: Vec<Vec<i64>>,
        map: Vec<u32>,
        out: IntType,
        w_out: u8,
    ) -> ValueId {
        let ty = self.g.ty(x).clone();
        let bits = self.g.params[0].message_bits;
        let ks = self.node(
            Op::KeySwitch,
            TensorType {
                encoding: enc(KeyId::Small(0), bits),
                ..ty.clone()
            },
            &[x],
        );
        let tables = tables
            .into_iter()
            .map(|entries| self.g.add_table(Table { entries }))
            .collect();
        self.node(
            Op::Pbs { tables, map },
            ety(out, &ty.shape, KeyId::Big(0), w_out),
            &[ks],
        )
    }
    fn output(&mut self, name: &str, v: ValueId) {
        let ty = self.g.ty(v).clone();
        self.node(Op::Output { name: name.into() }, ty, &[v]);
    }
    fn finish(self) -> Graph {
        veil_ir::verify::verify(&self.g).unwrap_or_else(|e| panic!("test program invalid: {e}"));
        self.g
    }
}

/// Encrypts `inputs`, runs on `threads` threads, decrypts, and checks against the interpreter.
fn check(k: &Keys, g: &Graph, inputs: &[Tensor<i64>], threads: usize) -> Vec<Tensor<i64>> {
    let expect = veil_ir::interp::run(g, inputs).expect("interpreter");
    let vals = k.ck.encrypt_inputs(g, inputs).unwrap();
    let out = Executor::new(threads).unwrap().run(g, &k.sk, vals).unwrap();
    let got = k.ck.decrypt_outputs(g, &out).unwrap();
    assert_eq!(got, expect, "encrypted result differs from the interpreter");
    got
}

fn random_table(rng: &mut ChaCha8Rng, w_in: u8, out: IntType) -> Vec<i64> {
    (0..1usize << w_in)
        .map(|_| rng.gen_range(out.min() as i64..=out.max() as i64))
        .collect()
}

// ------------------------------------------------------------------ table lookups

/// One unsigned table lookup per precision with random tables and inputs.
fn tlu_unsigned(bits: u8, samples: usize) {
    let k = keys(bits);
    let mut rng = ChaCha8Rng::seed_from_u64(bits as u64);
    let int = IntType::unsigned(bits);
    let mut b = G::new(reference_params(bits).unwrap());
    let x = b.input("x", ety(int, &[samples], KeyId::Big(0), bits));
    let t = random_table(&mut rng, bits, int);
    let y = b.tlu(x, vec![t], vec![], int, bits);
    b.output("y", y);
    let g = b.finish();
    let xs: Vec<i64> = (0..samples)
        .map(|i| (i as i64 * 7 + 3) % (1 << bits))
        .collect();
    check(k, &g, &[Tensor::new(vec![samples], xs).unwrap()], 2);
}

#[test]
fn tlu_unsigned_1_to_6_bits() {
    for bits in 1..=6u8 {
        tlu_unsigned(bits, if bits <= 4 { 16 } else { 4 });
    }
}

#[test]
fn tlu_unsigned_7_bits() {
    tlu_unsigned(7, 2);
}

#[test]
fn tlu_unsigned_8_bits() {
    tlu_unsigned(8, 2);
}

/// Signed input and signed table outputs: the lowering adds the offset 2^(b-1) before the pbs.
#[test]
fn tlu_signed_2_to_4_bits() {
    for bits in 2..=4u8 {
        let k = keys(bits);
        let mut rng = ChaCha8Rng::seed_from_u64(100 + bits as u64);
        let si = IntType::signed(bits);
        let mut b = G::new(reference_params(bits).unwrap());
        let x = b.input("x", ety(si, &[1 << bits], KeyId::Big(0), bits));
        let off = b.constant(IntType::unsigned(bits), &[], vec![1 << (bits - 1)]);
        let shifted = b.node(
            Op::Add,
            ety(IntType::unsigned(bits), &[1 << bits], KeyId::Big(0), bits),
            &[x, off],
        );
        let t = random_table(&mut rng, bits, si);
        let y = b.tlu(shifted, vec![t], vec![], si, bits);
        b.output("y", y);
        let g = b.finish();
        let xs: Vec<i64> = (0..1i64 << bits).map(|i| i - (1 << (bits - 1))).collect();
        let got = check(k, &g, &[Tensor::new(vec![1 << bits], xs).unwrap()], 2);
        assert!(got[0].data.iter().any(|&v| v < 0) || bits == 1);
    }
}

/// Property test (fixed seed): random tables, per-element tables (`map`) and inputs at 3 bits.
#[test]
fn tlu_random_tables_property() {
    let bits = 3u8;
    let k = keys(bits);
    let mut runner = TestRunner::new(Config {
        cases: 6,
        rng_seed: RngSeed::Fixed(0x5eed),
        failure_persistence: None,
        ..Config::default()
    });
    let int = IntType::unsigned(bits);
    let strat = (
        prop::collection::vec(prop::collection::vec(0i64..8, 8), 1..=3),
        prop::collection::vec(0i64..8, 6),
        prop::collection::vec(0u32..3, 6),
    );
    runner
        .run(&strat, |(tables, xs, map)| {
            let n = tables.len() as u32;
            let map: Vec<u32> = if n == 1 {
                vec![]
            } else {
                map.iter().map(|m| m % n).collect()
            };
            let mut b = G::new(reference_params(bits).unwrap());
            let x = b.input("x", ety(int, &[6], KeyId::Big(0), bits));
            let y = b.tlu(x, tables, map, int, bits);
            b.output("y", y);
            let g = b.finish();
            check(k, &g, &[Tensor::new(vec![6], xs).unwrap()], 2);
            Ok(())
        })
        .unwrap();
}

/// Output width differs from input width (4-bit input, 2-bit outputs) and a second pbs chained.
#[test]
fn chained_pbs_with_width_change() {
    let k = keys(4);
    let mut b = G::new(reference_params(4).unwrap());
    let u4 = IntType::unsigned(4);
    let u2 = IntType::unsigned(2);
    let x = b.input("x", ety(u4, &[16], KeyId::Big(0), 4));
    let y = b.tlu(x, vec![(0..16).map(|i| i / 4).collect()], vec![], u2, 4);
    let z = b.tlu(
        y,
        vec![(0..16).map(|i| (3 * i + 1) % 16).collect()],
        vec![],
        u4,
        4,
    );
    b.output("y", y);
    b.output("z", z);
    let g = b.finish();
    check(
        k,
        &g,
        &[Tensor::new(vec![16], (0..16).collect()).unwrap()],
        2,
    );
}

// ------------------------------------------------------------------ levelled ops

/// Every levelled op on ciphertexts with clear operands, then a pbs, against the interpreter.
#[test]
fn levelled_ops_match_interpreter() {
    let bits = 4u8;
    let k = keys(bits);
    let u4 = IntType::unsigned(bits);
    let i5 = IntType::signed(5);
    let e = |int, shape: &[usize]| ety(int, shape, KeyId::Big(0), bits);
    let mut b = G::new(reference_params(bits).unwrap());
    let x = b.input("x", e(IntType::unsigned(2), &[2, 3]));
    let y = b.input("y", e(IntType::unsigned(2), &[2, 3]));
    let w = b.constant(IntType::signed(3), &[3, 2], vec![1, -1, 2, 0, 0, 1]);
    let c = b.constant(IntType::unsigned(2), &[3], vec![1, 0, 2]);
    let s = b.node(Op::Add, e(u4, &[2, 3]), &[x, y]); // 0..6
    let d = b.node(Op::Sub, e(i5, &[2, 3]), &[s, c]); // broadcast clear
    let n = b.node(Op::Neg, e(i5, &[2, 3]), &[d]);
    let m = b.node(Op::Mul, e(i5, &[2, 3]), &[n, c]);
    let mm = b.node(Op::MatMul, e(i5, &[2, 2]), &[x, w]);
    let t = b.node(Op::Transpose { perm: vec![1, 0] }, e(i5, &[2, 2]), &[mm]);
    let r = b.node(Op::Reshape, e(i5, &[4]), &[t]);
    let sl = b.node(
        Op::Slice {
            starts: vec![1],
            stops: vec![4],
            steps: vec![2],
        },
        e(i5, &[2]),
        &[r],
    );
    let bc = b.node(Op::Broadcast, e(i5, &[2, 2]), &[sl]);
    let cat = b.node(Op::Concat { axis: 0 }, e(i5, &[4, 2]), &[bc, t]);
    let sm = b.node(
        Op::Sum {
            axes: vec![1],
            keepdims: false,
        },
        e(i5, &[4]),
        &[cat],
    );
    // A pbs on a value that fits the 4-bit message space: x + y in 0..=6.
    let sq = b.tlu(
        s,
        vec![(0..16).map(|i| (i * i) % 16).collect()],
        vec![],
        u4,
        bits,
    );
    b.output("m", m);
    b.output("sum", sm);
    b.output("sq", sq);
    let g = b.finish();
    let xs = Tensor::new(vec![2, 3], vec![0, 1, 2, 3, 1, 2]).unwrap();
    let ys = Tensor::new(vec![2, 3], vec![3, 2, 1, 0, 3, 1]).unwrap();
    check(k, &g, &[xs, ys], 2);
}

#[test]
fn conv2d_with_clear_weights() {
    let bits = 4u8;
    let k = keys(bits);
    let e = |int, shape: &[usize]| ety(int, shape, KeyId::Big(0), bits);
    let mut b = G::new(reference_params(bits).unwrap());
    let x = b.input("x", e(IntType::unsigned(1), &[1, 1, 3, 3]));
    let w = b.constant(IntType::signed(2), &[1, 1, 2, 2], vec![1, -1, 1, 1]);
    let bias = b.constant(IntType::unsigned(2), &[1], vec![2]);
    let y = b.node(
        Op::Conv2d(veil_ir::Conv2dAttrs::default()),
        e(IntType::signed(4), &[1, 1, 2, 2]),
        &[x, w, bias],
    );
    b.output("y", y);
    let g = b.finish();
    check(
        k,
        &g,
        &[Tensor::new(vec![1, 1, 3, 3], vec![1, 0, 1, 1, 1, 0, 0, 1, 1]).unwrap()],
        1,
    );
}

// ------------------------------------------------------------------ many-LUT, executor

#[test]
fn many_lut_gives_every_table_from_one_bootstrap() {
    let k = keys(4);
    let tables: Vec<Vec<i64>> = vec![
        vec![0, 1, 2, 3],
        vec![3, 2, 1, 0],
        vec![0, 0, 1, 1],
        vec![1, 3, 0, 2],
    ];
    let refs: Vec<&[i64]> = tables.iter().map(|t| t.as_slice()).collect();
    let xs = Tensor::new(vec![4], vec![0, 1, 2, 3]).unwrap();
    let ct =
        k.ck.encrypt(
            &xs,
            IntType::unsigned(2),
            Encoding {
                key: KeyId::Small(0),
                width: 2,
            },
        )
        .unwrap();
    let outs =
        k.sk.many_lut_tensor(
            &ct,
            &refs,
            Encoding {
                key: KeyId::Big(0),
                width: 4,
            },
        )
        .unwrap();
    assert_eq!(outs.len(), 4);
    for (t, o) in tables.iter().zip(&outs) {
        let got = k.ck.decrypt(o, IntType::unsigned(4)).unwrap();
        let want: Vec<i64> = xs.data.iter().map(|&x| t[x as usize]).collect();
        assert_eq!(got.data, want);
    }
    // Too many tables for the noise margin of the set: an error, not garbage.
    let eight: Vec<&[i64]> = (0..8).map(|_| tables[0].as_slice()).collect();
    let e =
        k.sk.many_lut_tensor(
            &ct,
            &eight,
            Encoding {
                key: KeyId::Big(0),
                width: 4,
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("noise margin"), "{e}");
}

#[test]
fn executor_reports_progress_and_matches_on_one_and_two_threads() {
    let k = keys(2);
    let int = IntType::unsigned(2);
    let mut b = G::new(reference_params(2).unwrap());
    let x = b.input("x", ety(int, &[8], KeyId::Big(0), 2));
    let y = b.tlu(x, vec![vec![3, 1, 0, 2]], vec![], int, 2);
    let z = b.tlu(x, vec![vec![1, 1, 2, 0]], vec![], int, 2);
    let s = b.node(
        Op::Add,
        ety(IntType::unsigned(3), &[8], KeyId::Big(0), 2),
        &[y, z],
    );
    b.output("s", s);
    let g = b.finish();
    let xs = Tensor::new(vec![8], vec![0, 1, 2, 3, 3, 2, 1, 0]).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let ex = Executor::new(2)
        .unwrap()
        .with_progress(Arc::new(move |p: &Progress| s2.lock().unwrap().push(*p)));
    assert_eq!(ex.threads(), 2);
    let vals = k.ck.encrypt_inputs(&g, std::slice::from_ref(&xs)).unwrap();
    let out = ex.run(&g, &k.sk, vals).unwrap();
    let got = k.ck.decrypt_outputs(&g, &out).unwrap();
    assert_eq!(
        got,
        veil_ir::interp::run(&g, std::slice::from_ref(&xs)).unwrap()
    );
    let seen = seen.lock().unwrap();
    let last = seen.iter().max_by_key(|p| p.nodes_done).unwrap();
    assert_eq!((last.nodes_done, last.nodes_total), (6, 6));
    assert_eq!(
        (
            last.pbs_total,
            seen.iter().map(|p| p.pbs_done).max().unwrap()
        ),
        (16, 16)
    );
    check(k, &g, &[xs], 1);
}

#[test]
fn simulation_matches_interpreter_and_injects_errors() {
    let int = IntType::unsigned(3);
    let mut b = G::new(reference_params(3).unwrap());
    let x = b.input("x", ety(int, &[8], KeyId::Big(0), 3));
    let y = b.tlu(x, vec![vec![7, 6, 5, 4, 3, 2, 1, 0]], vec![], int, 3);
    b.output("y", y);
    let g = b.finish();
    let xs = Tensor::new(vec![8], (0..8).collect()).unwrap();
    let want = veil_ir::interp::run(&g, std::slice::from_ref(&xs)).unwrap();
    let clean = simulate(
        &g,
        std::slice::from_ref(&xs),
        &SimOptions {
            seed: 1,
            p_error_override: None,
        },
    )
    .unwrap();
    assert_eq!(clean.outputs, want);
    assert_eq!(clean.pbs_count, 8);
    let noisy = simulate(
        &g,
        std::slice::from_ref(&xs),
        &SimOptions {
            seed: 1,
            p_error_override: Some(1.0),
        },
    )
    .unwrap();
    assert_eq!(noisy.errors_injected, 8);
    assert_ne!(noisy.outputs, want);
    // One box off: a neighbouring entry, or across the padding bit the negacyclic image
    // (-table[0] = -7, read back as 9 in 3+1 bits; or -table[7] = 0).
    for (a, b) in noisy.outputs[0].data.iter().zip(&want[0].data) {
        assert!([1, 7, 9].contains(&(a - b).abs()), "{a} vs {b}");
    }
}

// ------------------------------------------------------------------ keys

#[test]
fn keygen_refuses_insecure_parameters_unless_allowed() {
    let mut p = reference_params(2).unwrap();
    p.lwe_noise_log2 -= 2.0;
    let e = ClientKeys::generate(std::slice::from_ref(&p), &KeygenOptions::default()).unwrap_err();
    assert!(matches!(e, RuntimeError::Insecure { index: 0, .. }), "{e}");
    assert!(e.to_string().contains("LWE noise"), "{e}");
    let ok = ClientKeys::generate(
        &[p],
        &KeygenOptions {
            seed: 1,
            allow_insecure_for_tests: true,
        },
    );
    assert!(ok.is_ok());
}

#[test]
fn keygen_is_deterministic_in_the_seed() {
    let p = reference_params(1).unwrap();
    let gen = |seed| {
        let ck = ClientKeys::generate(
            std::slice::from_ref(&p),
            &KeygenOptions {
                seed,
                ..Default::default()
            },
        )
        .unwrap();
        let sk = ck.server_keys(&req(), None).unwrap();
        (ck.key_id(), sk.to_bytes().unwrap())
    };
    let (a, ab) = gen(7);
    let (b, bb) = gen(7);
    let (c, _) = gen(8);
    assert_eq!(a, b);
    assert!(ab == bb, "same seed, different server keys");
    assert_ne!(a, c);
}

#[test]
fn compression_halves_key_sizes() {
    let k = keys(2);
    let s = k.csk.sizes();
    // k = 5: a seeded GGSW row keeps 1 of 6 polynomials; a seeded KSK row keeps the body only.
    assert_eq!(s.bsk, s.bsk_compressed * 6);
    assert_eq!(s.ksk, s.ksk_compressed * (700 + 1));
    let bytes = k.csk.to_bytes().unwrap().len() as u64;
    assert!(
        bytes >= s.compressed() && bytes < s.compressed() + 4096,
        "{bytes} vs {s}"
    );
}

#[test]
fn server_artifacts_contain_no_secret_material() {
    let k = keys(2);
    let client = k.ck.to_bytes().unwrap();
    let compressed = k.csk.to_bytes().unwrap();
    let expanded = k.sk.to_bytes().unwrap();
    let ck2 = ClientKeys::from_bytes(&client).unwrap();
    assert_eq!(ck2.key_id(), k.ck.key_id());
    // Probe: 64 consecutive small-key coefficients and 64 GLWE-key coefficients, as stored.
    let p = reference_params(2).unwrap();
    let small_words = p.lwe_dimension * 8;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // Locate the small key inside the client file: it is the first byte string of n*8 bytes
    // whose words are all 0 or 1 (the file layout is ours, so scan for it).
    let start = (0..client.len() - small_words)
        .find(|&i| {
            client[i..i + small_words]
                .chunks_exact(8)
                .all(|w| u64::from_le_bytes(w.try_into().unwrap()) <= 1)
                && client[i..i + small_words]
                    .chunks_exact(8)
                    .filter(|w| w[0] == 1)
                    .count()
                    > 100
        })
        .expect("client file holds the small key");
    let probe = &client[start..start + 512];
    assert!(find(&client, probe));
    assert!(
        !find(&compressed, probe),
        "seeded server keys leak the small secret key"
    );
    assert!(
        !find(&expanded, probe),
        "server keys leak the small secret key"
    );
    // Packed bits of the keys must not appear either.
    let bits: Vec<u8> = client[start..start + small_words]
        .chunks_exact(64)
        .map(|c| {
            c.chunks_exact(8)
                .enumerate()
                .fold(0u8, |a, (i, w)| a | (w[0] << i))
        })
        .collect();
    assert!(!find(&compressed, &bits[..16]) && !find(&expanded, &bits[..16]));
}

#[test]
fn key_cache_round_trips() {
    let dir = std::env::temp_dir().join(format!("veil-rt-cache-{}", std::process::id()));
    let cache = KeyCache::new(&dir);
    let p = vec![reference_params(1).unwrap()];
    let opts = KeygenOptions {
        seed: 77,
        ..Default::default()
    };
    let (a, sa) = cache.get_or_generate(&p, &req(), &opts).unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    let (b, sb) = cache.get_or_generate(&p, &req(), &opts).unwrap();
    assert_eq!(a.key_id(), b.key_id());
    assert_eq!(sa, sb);
    // A corrupted entry is regenerated, not trusted.
    for f in std::fs::read_dir(&dir).unwrap() {
        let path = f.unwrap().path();
        let mut d = std::fs::read(&path).unwrap();
        let n = d.len();
        d[n - 1] ^= 1;
        std::fs::write(&path, d).unwrap();
    }
    let (c, _) = cache.get_or_generate(&p, &req(), &opts).unwrap();
    assert_eq!(c.key_id(), a.key_id());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------ serialization and errors

#[test]
fn serialization_round_trips() {
    let k = keys(2);
    let p = reference_params(2).unwrap();
    assert_eq!(params_from_bytes(&params_to_bytes(&p).unwrap()).unwrap(), p);
    let ct =
        k.ck.encrypt(
            &Tensor::new(vec![3], vec![0, 2, 3]).unwrap(),
            IntType::unsigned(2),
            Encoding {
                key: KeyId::Big(0),
                width: 2,
            },
        )
        .unwrap();
    let back = CtTensor::from_bytes(&ct.to_bytes().unwrap()).unwrap();
    assert_eq!(back, ct);
    assert_eq!(
        k.ck.decrypt(&back, IntType::unsigned(2)).unwrap().data,
        vec![0, 2, 3]
    );
    let csk = CompressedServerKeys::from_bytes(&k.csk.to_bytes().unwrap()).unwrap();
    assert_eq!(csk, k.csk);
    // Expanded keys after a round trip still bootstrap correctly.
    let sk = ServerKeys::from_bytes(&k.sk.to_bytes().unwrap()).unwrap();
    let small = sk
        .keyswitch_tensor(
            &ct,
            Encoding {
                key: KeyId::Small(0),
                width: 2,
            },
        )
        .unwrap();
    let r = sk
        .pbs_tensor(
            &small,
            &[&[1, 2, 3, 0]],
            &[],
            Encoding {
                key: KeyId::Big(0),
                width: 2,
            },
        )
        .unwrap();
    assert_eq!(
        k.ck.decrypt(&r, IntType::unsigned(2)).unwrap().data,
        vec![1, 3, 0]
    );
}

#[test]
fn corrupted_inputs_are_errors() {
    let k = keys(2);
    let ct =
        k.ck.encrypt(
            &Tensor::new(vec![2], vec![1, 2]).unwrap(),
            IntType::unsigned(2),
            Encoding {
                key: KeyId::Big(0),
                width: 2,
            },
        )
        .unwrap();
    let blobs: Vec<(&str, Vec<u8>)> = vec![
        ("ciphertext", ct.to_bytes().unwrap()),
        ("client", k.ck.to_bytes().unwrap()),
        ("compressed", k.csk.to_bytes().unwrap()),
        (
            "params",
            params_to_bytes(&reference_params(2).unwrap()).unwrap(),
        ),
    ];
    let load = |kind: &str, d: &[u8]| -> Result<()> {
        match kind {
            "ciphertext" => CtTensor::from_bytes(d).map(|_| ()),
            "client" => ClientKeys::from_bytes(d).map(|_| ()),
            "compressed" => CompressedServerKeys::from_bytes(d).map(|_| ()),
            _ => params_from_bytes(d).map(|_| ()),
        }
    };
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (kind, data) in &blobs {
        assert!(load(kind, data).is_ok(), "{kind} loads");
        for cut in [0, 3, 10, data.len() / 2, data.len() - 1] {
            let e = load(kind, &data[..cut]).unwrap_err();
            assert!(
                matches!(e, RuntimeError::Serial(_)),
                "{kind} truncated at {cut}: {e}"
            );
        }
        for _ in 0..20 {
            let mut d = data.clone();
            let i = rng.gen_range(0..d.len());
            d[i] ^= 1 << rng.gen_range(0..8);
            assert!(
                load(kind, &d).is_err(),
                "{kind} with byte {i} flipped loaded"
            );
        }
    }
    // The wrong kind of artifact.
    let e = ClientKeys::from_bytes(&blobs[0].1).unwrap_err();
    assert!(e.to_string().contains("wrong kind"), "{e}");
    // The server keys (expanded) too, with fewer samples since they are large.
    let sk = k.sk.to_bytes().unwrap();
    assert!(ServerKeys::from_bytes(&sk[..sk.len() - 8]).is_err());
    let mut d = sk.clone();
    d[sk.len() / 3] ^= 4;
    assert!(ServerKeys::from_bytes(&d).is_err());
}

#[test]
fn wrong_keys_and_inputs_are_errors() {
    let k2 = keys(2);
    let k1 = keys(1);
    let p2 = reference_params(2).unwrap();
    let e2 = Encoding {
        key: KeyId::Big(0),
        width: 2,
    };
    let ct = k2
        .ck
        .encrypt(
            &Tensor::new(vec![2], vec![1, 2]).unwrap(),
            IntType::unsigned(2),
            e2,
        )
        .unwrap();
    // Decrypting with other client keys.
    let e = k1.ck.decrypt(&ct, IntType::unsigned(2)).unwrap_err();
    assert!(matches!(e, RuntimeError::KeyMismatch(_)), "{e}");
    // Same parameters, another seed: still detected.
    let other = ClientKeys::generate(
        std::slice::from_ref(&p2),
        &KeygenOptions {
            seed: 4242,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(matches!(
        other.decrypt(&ct, IntType::unsigned(2)),
        Err(RuntimeError::KeyMismatch(_))
    ));
    // Running with server keys of another parameter set or another key generation.
    let int = IntType::unsigned(2);
    let mut b = G::new(p2.clone());
    let x = b.input("x", ety(int, &[2], KeyId::Big(0), 2));
    let y = b.tlu(x, vec![vec![0, 1, 2, 3]], vec![], int, 2);
    b.output("y", y);
    let g = b.finish();
    let vals = k2
        .ck
        .encrypt_inputs(&g, &[Tensor::new(vec![2], vec![1, 2]).unwrap()])
        .unwrap();
    let e = run(&g, &k1.sk, vals.clone()).unwrap_err();
    assert!(matches!(e, RuntimeError::KeyMismatch(_)), "{e}");
    let other_sk = other.server_keys(&req(), None).unwrap().decompress();
    let e = run(&g, &other_sk, vals.clone()).unwrap_err();
    assert!(matches!(e, RuntimeError::KeyMismatch(_)), "{e}");
    // Wrong input count, shape, visibility; out-of-range clear values.
    assert!(matches!(
        run(&g, &k2.sk, vec![]),
        Err(RuntimeError::BadInput(_))
    ));
    let wrong_shape = k2
        .ck
        .encrypt(&Tensor::new(vec![3], vec![1, 2, 3]).unwrap(), int, e2)
        .unwrap();
    assert!(matches!(
        run(&g, &k2.sk, vec![Value::Encrypted(wrong_shape)]),
        Err(RuntimeError::BadInput(_))
    ));
    assert!(matches!(
        run(
            &g,
            &k2.sk,
            vec![Value::Clear(Tensor::new(vec![2], vec![1, 2]).unwrap())]
        ),
        Err(RuntimeError::BadInput(_))
    ));
    assert!(matches!(
        k2.ck
            .encrypt_inputs(&g, &[Tensor::new(vec![2], vec![1, 4]).unwrap()]),
        Err(RuntimeError::OutOfRange(_))
    ));
    // Missing keys: a program needing a keyswitch key that was not generated.
    let mut p_other = p2.clone();
    p_other.p_error = 1e-6;
    let mut b = G::new(p2);
    b.g.params.push(p_other);
    let x = b.input("x", ety(int, &[2], KeyId::Big(0), 2));
    let ks = b.node(Op::KeySwitch, ety(int, &[2], KeyId::Small(1), 2), &[x]);
    b.output("y", ks);
    let g2 = b.finish();
    let e = KeyRequirements::of(&g2).unwrap();
    assert!(e.ksk.contains(&(KeyId::Big(0), KeyId::Small(1))));
    assert!(matches!(
        run(&g2, &k2.sk, vals),
        Err(RuntimeError::KeyMismatch(_) | RuntimeError::MissingKey(_))
    ));
}
