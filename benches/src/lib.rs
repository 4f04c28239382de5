//! Shared helpers of veil's benchmark binaries (in `benches/benches/`).
//!
//! - `runtime`: criterion benches of keygen, encryption, levelled ops, keyswitch and bootstrap
//!   per precision, and 64 independent bootstraps on 1 and 2 threads.
//! - `ks_pbs_overhead`: veil's keyswitch + bootstrap against a bare tfhe core_crypto
//!   keyswitch + bootstrap with identical parameters, printing both latencies and the ratio.
//! - `corpus_cost`: the program corpus (`tests/corpus/`) compiled without and with the rewrite
//!   pass: PBS count, weighted cost, ratio and compile time per program, and the totals.
//! - `ml`: private inference on breast cancer (logistic regression, decision tree, XGBoost,
//!   random forest) next to Concrete ML's figures on the same machine (`VEIL_BENCH_MODELS`,
//!   `VEIL_BENCH_SAMPLES`).
//! - `wop_lookup`: one encrypted WoP-PBS lookup per input width, 4 to 16 bits: keygen, key
//!   sizes, time per lookup and its growth per bit, next to the classic KS + PBS up to 8 bits.
//! - `pbs_cost`, `multi_bit_cost`: blind rotations through keys of the real size filled with
//!   random values ([`Rng`], [`fill_random`], [`RotationProbe`]).
//!
//! Precisions default to 1..=6 bits; set `VEIL_BENCH_BITS` (`"4"`, `"1-8"`, `"2,4,8"`) to
//! choose. Run with `cargo bench -p veil-benches --bench <name>`.

use veil_ir::{Encoding, Graph, IntType, KeyId, Level, Op, Table, TensorType};
use veil_runtime::{reference_params, ClientKeys, KeyRequirements, KeygenOptions, ServerKeys};

/// Precisions selected by `VEIL_BENCH_BITS` (default `default`).
pub fn bench_bits(default: &[u8]) -> Vec<u8> {
    let Ok(s) = std::env::var("VEIL_BENCH_BITS") else {
        return default.to_vec();
    };
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let range: Vec<u8> = part
            .split('-')
            .filter_map(|x| x.trim().parse().ok())
            .collect();
        match range.as_slice() {
            [a] => out.push(*a),
            [a, b] => out.extend(*a..=*b),
            _ => eprintln!("ignoring VEIL_BENCH_BITS part {part:?}"),
        }
    }
    out.retain(|b| (1..=8).contains(b));
    out
}

/// Keys needed by a one-set program: the bootstrap key and the big -> small keyswitch key.
pub fn one_set_requirements() -> KeyRequirements {
    KeyRequirements {
        bsk: [0].into(),
        ksk: [(KeyId::Big(0), KeyId::Small(0))].into(),
        ..Default::default()
    }
}

/// Client and (decompressed) server keys for Concrete's reference set of `bits` bits.
pub fn keys(bits: u8, seed: u128) -> (ClientKeys, ServerKeys) {
    let p = reference_params(bits).expect("bits in 1..=8");
    let ck = ClientKeys::generate(
        &[p],
        &KeygenOptions {
            seed,
            allow_insecure_for_tests: false,
        },
    )
    .expect("reference sets are secure");
    let sk = ck
        .server_keys(&one_set_requirements(), None)
        .expect("keys")
        .decompress();
    (ck, sk)
}

/// A TFHE-level program: `n` encrypted `bits`-bit inputs, keyswitch, one table lookup each.
pub fn tlu_program(bits: u8, n: usize, table: Vec<i64>) -> Graph {
    let mut g = Graph::new();
    g.level = Level::Tfhe;
    g.params = vec![reference_params(bits).expect("bits in 1..=8")];
    let int = IntType::unsigned(bits);
    let ty = |key| TensorType {
        encoding: Some(Encoding { key, width: bits }),
        ..TensorType::encrypted(int, vec![n])
    };
    let x = g.add_node(Op::Input { name: "x".into() }, ty(KeyId::Big(0)), &[]);
    let k = g.add_node(Op::KeySwitch, ty(KeyId::Small(0)), &[x]);
    let t = g.add_table(Table { entries: table });
    let y = g.add_node(
        Op::Pbs {
            tables: vec![t],
            map: vec![],
        },
        ty(KeyId::Big(0)),
        &[k],
    );
    g.add_node(Op::Output { name: "y".into() }, ty(KeyId::Big(0)), &[y]);
    g
}

/// What [`onnx_encrypted`] measured: keygen, key sizes and the encrypted runs.
pub struct OnnxRun {
    /// Bootstraps per sample.
    pub pbs: u64,
    /// Keygen seconds.
    pub keygen_s: f64,
    /// Bootstrap plus keyswitch key megabytes.
    pub keys_mb: f64,
    /// Seconds per sample, one sample at a time.
    pub latency_s: f64,
    /// Samples whose encrypted prediction equals `clear`'s.
    pub same: usize,
    /// Samples run.
    pub runs: usize,
}

/// Generates keys for `p` and runs the first `n` rows of `x` through the ONNX model `m`
/// encrypted, one at a time, comparing each prediction with `clear` (one per row).
pub fn onnx_encrypted(
    m: &veil_ml::onnx::OnnxModel,
    p: veil_compiler::program::Program,
    x: &veil_ml::Matrix,
    clear: &[f64],
    n: usize,
) -> OnnxRun {
    use veil_ml::onnx::model::per_row;
    let t = std::time::Instant::now();
    let (client, server) = p.keygen(1).expect("keygen");
    let keygen_s = t.elapsed().as_secs_f64();
    let keys_mb = (p.stats.bsk_bytes + p.stats.ksk_bytes) as f64 / 1e6;
    let pbs = p.stats.pbs;
    let backend = veil_ml::backend::ExecuteBackend {
        program: p,
        client,
        server,
    };
    let runs = n.min(x.rows());
    let mut same = 0;
    let t = std::time::Instant::now();
    for (row, want) in x.data().chunks(x.cols()).zip(clear).take(runs) {
        let xi = veil_ml::Matrix::new(1, x.cols(), row.to_vec()).expect("one row");
        let out = m.run(&xi, &backend).expect("encrypted run");
        if per_row(&out[0], 1)[0] == *want {
            same += 1;
        }
    }
    OnnxRun {
        pbs,
        keygen_s,
        keys_mb,
        latency_s: t.elapsed().as_secs_f64() / runs.max(1) as f64,
        same,
        runs,
    }
}

/// A small deterministic generator (xorshift64*): random mask values and key contents for the
/// cost probes.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Fills a Fourier-domain key with random values: a zeroed allocation maps one shared zero
/// page, which stays in cache, so a probe through it would not stream from memory as a real
/// bootstrap does.
pub fn fill_random(data: &mut [tfhe::core_crypto::fft_impl::fft64::c64], rng: &mut Rng) {
    for c in data {
        *c = tfhe::core_crypto::fft_impl::fft64::c64::new(
            (rng.next_u64() >> 11) as f64 * 1e-9,
            (rng.next_u64() >> 11) as f64 * 1e-9,
        );
    }
}

/// A classic blind rotation (`blind_rotate_assign_mem_optimized`) ready to time: a Fourier
/// bootstrap key of the real size filled with random values ([`fill_random`]), a random input
/// of dimension `n`, a random accumulator, and the FFT plan and scratch it needs.
pub struct RotationProbe {
    /// The input ciphertext (odd mask values: none is zero before the modulus switch).
    pub input: tfhe::core_crypto::prelude::LweCiphertextOwned<u64>,
    /// The accumulator every rotation starts from.
    pub acc: tfhe::core_crypto::prelude::GlweCiphertextOwned<u64>,
    /// The modulus the input is switched to (`2N`).
    pub log: tfhe::core_crypto::prelude::CiphertextModulusLog,
    bsk: tfhe::core_crypto::prelude::FourierLweBootstrapKeyOwned,
    fft: tfhe::core_crypto::fft_impl::fft64::math::fft::Fft,
    buf: tfhe::core_crypto::prelude::ComputationBuffers,
}

impl RotationProbe {
    /// A probe of input dimension `n` for GLWE `(k, poly)` with `level` decomposition levels.
    pub fn new(n: usize, k: usize, poly: usize, level: usize, rng: &mut Rng) -> Self {
        use tfhe::core_crypto::prelude::*;
        let glwe_size = GlweSize(k + 1);
        let mut bsk = FourierLweBootstrapKey::new(
            LweDimension(n),
            glwe_size,
            PolynomialSize(poly),
            DecompositionBaseLog(64 / (level + 1)),
            DecompositionLevelCount(level),
        );
        fill_random(bsk.as_mut_view().data(), rng);
        let modulus = CiphertextModulus::<u64>::new_native();
        let data: Vec<u64> = (0..=n).map(|_| rng.next_u64() | 1).collect();
        let input = LweCiphertext::from_container(data, modulus);
        let fft = tfhe::core_crypto::fft_impl::fft64::math::fft::Fft::new(PolynomialSize(poly));
        let mut buf = ComputationBuffers::new();
        buf.resize(
            blind_rotate_assign_mem_optimized_requirement::<u64>(
                glwe_size,
                PolynomialSize(poly),
                fft.as_view(),
            )
            .unaligned_bytes_required(),
        );
        let body: Vec<u64> = (0..poly).map(|_| rng.next_u64()).collect();
        let acc = allocate_and_trivially_encrypt_new_glwe_ciphertext(
            glwe_size,
            &PlaintextList::from_container(body),
            modulus,
        );
        RotationProbe {
            input,
            acc,
            log: PolynomialSize(poly).to_blind_rotation_input_modulus_log(),
            bsk,
            fft,
            buf,
        }
    }

    /// One modulus switch and classic blind rotation of the input.
    pub fn rotate(&mut self) {
        use tfhe::core_crypto::prelude::*;
        let mut glwe = self.acc.clone();
        let ms = lwe_ciphertext_modulus_switch(self.input.as_view(), self.log);
        blind_rotate_assign_mem_optimized(
            &ms,
            &mut glwe,
            &self.bsk,
            self.fft.as_view(),
            self.buf.stack(),
        );
        std::hint::black_box(&glwe);
    }

    /// CMUXes one rotation runs: a zero modulus-switched mask element skips its CMUX.
    pub fn cmuxes(&self) -> usize {
        use tfhe::core_crypto::prelude::*;
        let ms = lwe_ciphertext_modulus_switch::<u64, usize, _>(self.input.as_view(), self.log);
        ms.mask().filter(|&m| m != 0).count().max(1)
    }
}
