//! Encrypted lookups of up to 16-bit inputs by WoP-PBS (`veil_runtime::wopbs`): results equal
//! the clear table at every width, bad tables and ciphertexts give errors, corrupted key bytes
//! are rejected. One key generation (the 16-bit set, which serves every narrower width) is
//! shared by all tests.

use std::sync::OnceLock;
use std::time::Instant;
use veil_ir::{Encoding, IntType, KeyId, Tensor};
use veil_runtime::wopbs::{CompressedWopKeys, WopKeys, WopParams, MAX_WOP_BITS};
use veil_runtime::{ClientKeys, CtTensor, KeygenOptions, RuntimeError};

struct Fixture {
    ck: ClientKeys,
    wk: WopKeys,
    bytes: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let p = WopParams::for_bits(MAX_WOP_BITS).unwrap();
        let t = Instant::now();
        let ck = ClientKeys::generate(
            std::slice::from_ref(&p.set),
            &KeygenOptions {
                seed: 0x5eed,
                ..Default::default()
            },
        )
        .unwrap();
        let cwk = ck.wop_keys(0, &p, None).unwrap();
        let keygen = t.elapsed();
        let bytes = cwk.to_bytes().unwrap();
        let wk = cwk.decompress();
        eprintln!(
            "WoP keys for {p}: keygen {keygen:.2?}, {} MB serialized",
            bytes.len() / 1_000_000
        );
        Fixture { ck, wk, bytes }
    })
}

/// A deterministic pseudo-random table of `2^bits` entries in `0..2^out`.
fn table(bits: u8, out: u8, salt: u64) -> Vec<i64> {
    (0..1u64 << bits)
        .map(|i| {
            let mut x = (i ^ salt.rotate_left(17))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(salt);
            x ^= x >> 29;
            x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x ^= x >> 32;
            (x % (1 << out)) as i64
        })
        .collect()
}

fn encrypt(f: &Fixture, values: &[i64], bits: u8) -> CtTensor {
    f.ck.encrypt(
        &Tensor::new(vec![values.len()], values.to_vec()).unwrap(),
        IntType::unsigned(bits),
        Encoding {
            key: KeyId::Big(0),
            width: bits,
        },
    )
    .unwrap()
}

fn check_width(bits: u8, inputs: &[i64]) {
    let f = fixture();
    let out = f.wk.params().out_bits.min(bits);
    let t = table(bits, out, bits as u64);
    let ct = encrypt(f, inputs, bits);
    let start = Instant::now();
    let res = f.wk.lookup_tensor(&ct, &t, out).unwrap();
    let got = f.ck.decrypt(&res, IntType::unsigned(out)).unwrap();
    eprintln!(
        "{bits}-bit lookups ({} in parallel): {:.2?}",
        inputs.len(),
        start.elapsed()
    );
    let want: Vec<i64> = inputs.iter().map(|&x| t[x as usize]).collect();
    assert_eq!(got.data, want, "{bits}-bit lookup of {inputs:?}");
}

#[test]
fn sixteen_bit_lookup_equals_the_clear_table() {
    check_width(16, &[0, 0xBEEF, (1 << 16) - 1]);
}

#[test]
fn narrower_lookups_with_the_same_keys() {
    check_width(4, &[0, 15]);
    check_width(9, &[300, 511]);
    check_width(12, &[0, 2049]);
}

/// A 16-bit to 16-bit table, read as two 8-bit digits sharing one bit extraction and one
/// set of circuit bootstraps; later levelled ops combine them.
#[test]
fn sixteen_bit_results_as_digits() {
    let f = fixture();
    let t = table(16, 16, 99);
    for x in [40_000i64, (1 << 16) - 1] {
        let ct = encrypt(f, &[x], 16);
        let c = &ct.tensor().data[0];
        let digits = f.wk.lookup_digits(c, &t, 16, 16, 8).unwrap();
        assert_eq!(digits.len(), 2);
        let mut v = 0i64;
        for (j, d) in digits.iter().enumerate() {
            let one = CtTensor::new(
                Encoding {
                    key: KeyId::Big(0),
                    width: 8,
                },
                f.ck.key_id(),
                ct.param_fingerprint(),
                Tensor::new(vec![1], vec![d.clone()]).unwrap(),
            )
            .unwrap();
            v |= f.ck.decrypt(&one, IntType::unsigned(8)).unwrap().data[0] << (8 * j);
        }
        assert_eq!(v, t[x as usize], "table[{x}]");
    }
}

#[test]
fn bad_tables_and_ciphertexts_are_errors() {
    let f = fixture();
    let ct = encrypt(f, &[3], 4);
    let c = &ct.tensor().data[0];
    let e = f.wk.lookup(c, &[0; 15], 4, 4).unwrap_err().to_string();
    assert!(e.contains("needs 16 entries"), "{e}");
    let e = f.wk.lookup(c, &[0; 16], 4, 9).unwrap_err().to_string();
    assert!(e.contains("carries 1 to 8 bits"), "{e}");
    let e = f.wk.lookup(c, &[1000; 16], 4, 4).unwrap_err().to_string();
    assert!(e.contains("does not fit"), "{e}");
    let e = f.wk.lookup(c, &[0; 32], 5, 4).unwrap_err().to_string();
    assert!(
        e.contains("4-bit ciphertext given to a 5-bit lookup"),
        "{e}"
    );
    let e =
        f.wk.lookup(c, &[0; 1 << 17], 17, 4)
            .unwrap_err()
            .to_string();
    assert!(e.contains("1 to 16 input bits"), "{e}");
    let small = veil_runtime::Lwe::trivial(10, 4, 3);
    let e = f.wk.lookup(&small, &[0; 16], 4, 4).unwrap_err();
    assert!(matches!(e, RuntimeError::KeyMismatch(_)), "{e}");
    let e =
        f.wk.lookup_digits(c, &[-1; 16], 4, 8, 4)
            .unwrap_err()
            .to_string();
    assert!(e.contains("unsigned"), "{e}");
    // Ciphertexts of another key generation (same parameters) are refused by the tensor API.
    let other = ClientKeys::generate(
        std::slice::from_ref(&f.wk.params().set),
        &KeygenOptions {
            seed: 0xbad,
            ..Default::default()
        },
    )
    .unwrap();
    let foreign = other
        .encrypt_scalar(
            3,
            IntType::unsigned(4),
            Encoding {
                key: KeyId::Big(0),
                width: 4,
            },
        )
        .unwrap();
    let e = f.wk.lookup_tensor(&foreign, &[0; 16], 4).unwrap_err();
    assert!(matches!(e, RuntimeError::KeyMismatch(_)), "{e}");
    // Small-key ciphertexts are not lookup inputs.
    let small =
        f.ck.encrypt_scalar(
            3,
            IntType::unsigned(4),
            Encoding {
                key: KeyId::Small(0),
                width: 4,
            },
        )
        .unwrap();
    let e =
        f.wk.lookup_tensor(&small, &[0; 16], 4)
            .unwrap_err()
            .to_string();
    assert!(e.contains("under a big key"), "{e}");
}

#[test]
fn corrupted_key_bytes_are_clean_errors() {
    let f = fixture();
    let mut bytes = f.bytes.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    let e = CompressedWopKeys::from_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert!(e.contains("checksum"), "{e}");
    bytes[mid] ^= 0x10;
    for cut in [0, 3, 40, bytes.len() - 1] {
        assert!(
            CompressedWopKeys::from_bytes(&bytes[..cut]).is_err(),
            "cut {cut}"
        );
    }
    assert!(CompressedWopKeys::from_bytes(b"VEIL not keys").is_err());
    let back = CompressedWopKeys::from_bytes(&bytes).unwrap();
    assert_eq!(back.params(), f.wk.params());
    assert_eq!(back.key_id(), f.wk.key_id());
}

/// The output noise of 32 tables read from one 16-bit input (one vertical packing each), measured
/// by decoding at 40 bits, against the model's `V_out = 16 * V_CMUX(cbs, V_GGSW)` = 2^-25.96
/// (`veil_compiler::optimizer::wop`).
#[test]
fn output_noise_matches_the_model() {
    let f = fixture();
    let x = 0x7A5Ai64;
    let tables: Vec<Vec<i64>> = (0..32).map(|s| table(16, 8, 1000 + s)).collect();
    let refs: Vec<&[i64]> = tables.iter().map(|t| &t[..]).collect();
    let ct = encrypt(f, &[x], 16);
    let outs =
        f.wk.lookup_many(&ct.tensor().data[0], &refs, 16, 8)
            .unwrap();
    const W: u8 = 40;
    let mut sum2 = 0.0;
    for (i, (t, o)) in tables.iter().zip(&outs).enumerate() {
        let wide = CtTensor::new(
            Encoding {
                key: KeyId::Big(0),
                width: W,
            },
            f.ck.key_id(),
            ct.param_fingerprint(),
            Tensor::new(
                vec![1],
                vec![veil_runtime::Lwe::from_raw(o.raw().to_vec(), W)],
            )
            .unwrap(),
        )
        .unwrap();
        let m = f.ck.decrypt(&wide, IntType::signed(W)).unwrap().data[0];
        let want = t[x as usize] << (W - 8);
        // Signed difference modulo 2^(W+1), in torus units of 2^-(W+1).
        let d = (m - want).rem_euclid(1 << (W + 1));
        let d = if d >= 1 << W { d - (1 << (W + 1)) } else { d };
        let e = d as f64 * (-(W as f64) - 1.0).exp2();
        assert!(e.abs() < (-10f64).exp2(), "table {i}: error {e}");
        sum2 += e * e;
    }
    // Outputs are ordinary veil ciphertexts: a levelled sum of two decrypts to the clear sum.
    use veil_ir::Element;
    let sum = CtTensor::new(
        Encoding {
            key: KeyId::Big(0),
            width: 8,
        },
        f.ck.key_id(),
        ct.param_fingerprint(),
        Tensor::new(vec![1], vec![outs[0].add(&outs[1])]).unwrap(),
    )
    .unwrap();
    assert_eq!(
        f.ck.decrypt(&sum, IntType::unsigned(8)).unwrap().data[0],
        tables[0][x as usize] + tables[1][x as usize]
    );
    let v = sum2 / outs.len() as f64;
    eprintln!(
        "16-bit lookup output variance: measured 2^{:.2} over {} outputs, model 2^-25.96",
        v.log2(),
        outs.len()
    );
    // Generous: 32 samples give the variance within about 2x.
    assert!(v < 4.0 * (-25.96f64).exp2(), "measured 2^{:.2}", v.log2());
}
