//! Lookups wider than the classic bootstrap takes (`lower::MAX_CLASSIC_BITS`), compiled end to
//! end by WoP-PBS: a 12-bit and a 16-bit `tlu` lower to `wop.pbs` on two WoP sets, the
//! statistics show their decomposition, the simulation and one encrypted run (one key
//! generation for both) equal the reference interpreter, and programs outside the WoP
//! contract are refused with an error.

use veil_compiler::lower::MAX_CLASSIC_BITS;
use veil_compiler::program::{compile, CompileConfig, Program};
use veil_ir::builder::Builder;
use veil_ir::{Graph, IntType, Op, Tensor};

/// A non-monotone table of `2^bits` entries with 8-bit results, so that a wrong index shows.
fn f(bits: u8) -> impl Fn(i64) -> i64 {
    move |x| (x * 37 + (x >> (bits / 2)) * 11 + 5).rem_euclid(251)
}

/// `y12 = f12(x12)` (u12 input) and `y16 = f16(x16) + 3` (u16 input, a levelled add after the
/// lookup).
fn program() -> Graph {
    let b = Builder::new();
    let x12 = b
        .input_encrypted("x12", &[3], IntType::unsigned(12))
        .unwrap();
    let x16 = b
        .input_encrypted("x16", &[1], IntType::unsigned(16))
        .unwrap();
    let y12 = b.tlu(x12, f(12)).unwrap();
    let t16 = b.tlu(x16, f(16)).unwrap();
    let c = b.constant_scalar(3).unwrap();
    let y16 = b.add(t16, c).unwrap();
    b.output("y12", y12).unwrap();
    b.output("y16", y16).unwrap();
    b.finish().unwrap()
}

fn compiled() -> Program {
    let config = CompileConfig {
        domain: veil_runtime::artifact::DomainPolicy::Types,
        ..Default::default()
    };
    compile(&program(), &[], &config).unwrap()
}

fn samples() -> Vec<Vec<Tensor<i64>>> {
    let s = |x12: [i64; 3], x16: i64| {
        vec![
            Tensor::new(vec![3], x12.to_vec()).unwrap(),
            Tensor::new(vec![1], vec![x16]).unwrap(),
        ]
    };
    vec![s([0, 4095, 2731], 65535), s([1234, 17, 2048], 40961)]
}

#[test]
fn wide_lookups_lower_to_wop_pbs_with_stats() {
    let p = compiled();
    let wops: Vec<_> = p
        .tfhe
        .values()
        .into_iter()
        .filter(|&v| matches!(p.tfhe.op(v), Op::WopPbs { .. }))
        .collect();
    assert_eq!(wops.len(), 2, "{}", veil_ir::text::print(&p.tfhe));
    // Nothing wider than the classic limit goes through a classic bootstrap.
    assert!(p
        .stats
        .pbs_by_precision
        .keys()
        .all(|&b| b <= MAX_CLASSIC_BITS));
    let mut bits: Vec<u8> = p.stats.wop.iter().map(|w| w.bits).collect();
    bits.sort_unstable();
    assert_eq!(bits, vec![12, 16]);
    for w in &p.stats.wop {
        assert!(p.tfhe.params[w.set].is_secure());
        assert_eq!(p.tfhe.params[w.set].message_bits, w.bits);
        assert_eq!(w.keyswitches, w.bits as u64);
        assert_eq!(w.extraction_pbs, w.bits as u64 - 1);
        assert!(w.cbs_pbs >= w.bits as u64);
        assert!(w.p_error <= 2f64.powi(-40), "{w:?}");
        assert!(w.cost > 0.0 && w.key_bytes > w.key_bytes_compressed);
    }
    assert!(p.stats.p_error <= 2f64.powi(-40));
    assert!(p.stats.cost > 0.0);
    assert!(
        p.stats.summary().contains("WoP-PBS"),
        "{}",
        p.stats.summary()
    );
    // The lowered program prints and parses back (the text form of `wop.pbs`).
    let text = veil_ir::text::print(&p.tfhe);
    assert!(text.contains("wop.pbs"), "{text}");
    let back = veil_ir::text::parse(&text).unwrap();
    assert_eq!(veil_ir::text::print(&back), text);
}

#[test]
fn wide_lookups_simulate_and_run_encrypted_like_the_interpreter() {
    let p = compiled();
    for s in samples() {
        let want = p.clear(&s).unwrap();
        assert_eq!(p.simulate(&s, 1).unwrap(), want);
        let f12 = f(12);
        assert_eq!(
            want[0].data,
            s[0].data.iter().map(|&x| f12(x)).collect::<Vec<_>>()
        );
    }
    let t = std::time::Instant::now();
    let (ck, sk) = p.keygen(0x18).unwrap();
    eprintln!("keygen (12- and 16-bit WoP sets): {:.2?}", t.elapsed());
    let s = &samples()[0];
    let t = std::time::Instant::now();
    let out = p.run(&sk, p.encrypt(&ck, s).unwrap()).unwrap();
    eprintln!("encrypted run (4 WoP lookups): {:.2?}", t.elapsed());
    assert_eq!(p.decrypt(&ck, &out).unwrap(), p.clear(s).unwrap());
}

#[test]
fn wop_contract_violations_are_refused() {
    // A 12-bit value that feeds a lookup and also a 2-bit comparison's bootstrap of another
    // width class: refused with an error, never lowered to a wrong program.
    let b = Builder::new();
    let x = b.input_encrypted("x", &[2], IntType::unsigned(12)).unwrap();
    let y = b.tlu(x, f(12)).unwrap();
    let z = b.tlu(y, |v| v % 3).unwrap();
    let w = b.tlu(z, |v| v * 1000).unwrap();
    b.output("w", w).unwrap();
    let g = b.finish().unwrap();
    let config = CompileConfig {
        domain: veil_runtime::artifact::DomainPolicy::Types,
        ..Default::default()
    };
    let e = compile(&g, &[], &config).unwrap_err().to_string();
    assert!(e.contains("WoP-PBS"), "{e}");
}

/// A global error target covers the WoP-PBS lookups too: the classic bootstraps get what the
/// WoP lookups' predicted failures leave of it, so the reported global error probability (the
/// classic solution's and the WoP lookups' together) is at most the target. Before, the
/// classic bootstraps were given the whole target and the WoP lookups' failures were added on
/// top.
#[test]
fn global_error_target_covers_wop_lookups() {
    // 512 WoP lookups of a u12 and 64 classic ones of a u3: at a global 1e-9 each WoP lookup
    // may fail with 1e-9 / 576 > 2^-40, so they get the tabulated 12-bit set (predicted
    // 6.5e-14 each, 3.3e-11 in all), and the classic set alone used about 98% of the target
    let b = Builder::new();
    let x = b
        .input_encrypted("x", &[512], IntType::unsigned(12))
        .unwrap();
    let s = b.input_encrypted("s", &[64], IntType::unsigned(3)).unwrap();
    let y = b.tlu(x, f(12)).unwrap();
    let t = b.tlu(s, |v| (v * 5 + 1) % 7).unwrap();
    b.output("y", y).unwrap();
    b.output("t", t).unwrap();
    let g = b.finish().unwrap();
    for global in [1e-9, 1e-7] {
        let config = CompileConfig {
            domain: veil_runtime::artifact::DomainPolicy::Types,
            error: veil_compiler::optimizer::ErrorTarget::global(global),
            ..Default::default()
        };
        let p = compile(&g, &[], &config).unwrap();
        assert_eq!(p.stats.wop.len(), 1, "{}", p.stats.summary());
        assert_eq!(p.stats.wop[0].lookups, 512);
        assert_eq!(p.stats.pbs, 64);
        let wop_fail = -(512.0 * (-p.stats.wop[0].p_error).ln_1p()).exp_m1();
        eprintln!(
            "global {global:.3e}: reported {:.3e} (WoP share {wop_fail:.3e})",
            p.stats.global_p_error
        );
        assert!(
            p.stats.global_p_error <= global * (1.0 + 1e-9),
            "global p_error {:.4e} above the target {global:.4e} (WoP lookups fail with {wop_fail:.3e})",
            p.stats.global_p_error
        );
    }
}
