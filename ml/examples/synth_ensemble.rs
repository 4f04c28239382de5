//! Writes a synthetic XGBoost-like tree ensemble (`veil_ml::onnx::synth`) and a CSV inputset,
//! for trying `veil compile` on large ensembles:
//! `cargo run -p veil-ml --example synth_ensemble -- OUT_DIR [ROUNDS CLASSES DEPTH FEATURES]`.

use veil_ml::onnx::synth::SynthEnsemble;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: synth_ensemble OUT_DIR [ROUNDS CLASSES DEPTH FEATURES]");
        std::process::exit(2);
    };
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let e = SynthEnsemble {
        rounds: num(1, 100),
        classes: num(2, 10),
        depth: num(3, 3) as u32,
        features: num(4, 64),
        levels: 17,
        seed: 7,
    };
    let dir = std::path::Path::new(dir);
    if let Err(err) = std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(dir.join("model.onnx"), e.onnx()))
        .and_then(|_| std::fs::write(dir.join("inputset.csv"), e.csv_rows(100, 1)))
        .and_then(|_| std::fs::write(dir.join("test.csv"), e.csv_rows(20, 2)))
    {
        eprintln!("error: writing to {}: {err}", dir.display());
        std::process::exit(1);
    }
    println!("{} trees written to {}", e.trees(), dir.display());
}
