//! `veil demo`: the end-to-end tour on a bundled dataset. Trains a model on breast cancer
//! (75/25 split), quantizes and compiles it, generates keys, encrypts a handful of test samples
//! on the "client", runs them on the "server" with evaluation keys only, decrypts, and prints
//! clear vs FHE predictions with timings, bootstrap count and key sizes. Last, one
//! deliberately out-of-range sample is refused by the client's domain check, as `veil encrypt`
//! refuses it, with its message (a tree model, whose features travel as ranks among its split
//! points, accepts it and must decide it as the float model does).

use super::CliError;
use std::time::Instant;
use veil_compiler::optimizer::keys::human_bytes;
use veil_compiler::program::{compile, CompileConfig};
use veil_ir::Tensor;
use veil_ml::{
    dataset, CompiledModel, DecisionTreeClassifier, FheModel, LinearSvc, LogisticRegression,
    Matrix, MlpClassifier, RandomForestClassifier, XgbClassifier,
};

/// Models the demo can train.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoModel {
    /// Logistic regression, 8-bit (no bootstrap: the client applies the sigmoid).
    Linear,
    /// Linear SVM, 8-bit (no bootstrap).
    Svm,
    /// Decision tree of depth 5 on 6-bit features, sent as the bits of its comparisons (the
    /// default: 8 three-bit bootstraps per sample on breast cancer, one per leaf it keeps).
    Tree,
    /// Random forest of 20 trees of depth 4 on 6-bit features.
    Forest,
    /// Multi-layer perceptron (hidden layers 16 and 8), trained quantization-aware: 2-bit
    /// inputs and weights, 3-bit activations, 24 five-bit bootstraps per sample.
    Mlp,
    /// XGBoost, 20 trees of depth 3 on 6-bit features, imported from XGBoost's JSON model
    /// (trained in Python with the Concrete ML benchmark's settings; bundled).
    Boosted,
}

/// XGBoost's JSON model of a 20-tree, depth-3 XGBClassifier trained on the same split
/// (scripts/export_onnx_fixtures.py).
const XGB_BREAST_CANCER: &str =
    include_str!("../../ml/tests/fixtures/xgboost/breast_cancer.model.json");

/// Options of `veil demo`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:\n  veil demo\n  veil demo --model linear --samples 3")]
pub struct DemoArgs {
    /// Which model to train.
    #[arg(long, value_enum, default_value = "tree")]
    pub model: DemoModel,
    /// How many test samples to run encrypted.
    #[arg(long, default_value_t = 5)]
    pub samples: usize,
    /// Key-generation seed (keys are deterministic for a seed; use a random one in production).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn ml(e: impl std::fmt::Display) -> CliError {
    CliError(e.to_string())
}

fn argmax(v: &[f64]) -> usize {
    veil_ml::model::argmax(v)
}

/// Trains (or, for the boosted trees, loads) the chosen model and returns (name, float predictions on test, compiled model).
fn train(
    model: DemoModel,
    train: &Matrix,
    ytr: &[usize],
    test: &Matrix,
) -> Result<(&'static str, Vec<usize>, CompiledModel), CliError> {
    /// Fits, compiles and predicts with one built-in classifier.
    macro_rules! fit {
        ($name:expr, $model:expr) => {{
            let mut m = $model;
            m.fit(train, ytr).map_err(ml)?;
            m.compile(train, &veil_ml::CompileConfig::default())
                .map_err(ml)?;
            (
                $name,
                m.predict(test).map_err(ml)?,
                m.compiled().map_err(ml)?.clone(),
            )
        }};
    }
    Ok(match model {
        DemoModel::Linear => fit!("LogisticRegression (8-bit)", LogisticRegression::new()),
        DemoModel::Svm => fit!("LinearSVC (8-bit)", LinearSvc::new()),
        DemoModel::Tree => fit!(
            "DecisionTreeClassifier (depth 5, 6-bit)",
            DecisionTreeClassifier::new().with_max_depth(5)
        ),
        DemoModel::Forest => fit!(
            "RandomForestClassifier (20 trees, depth 4, 6-bit)",
            RandomForestClassifier::new()
        ),
        DemoModel::Mlp => fit!(
            "MlpClassifier (16-8 hidden, quantization-aware, 2-bit weights)",
            MlpClassifier::new()
        ),
        DemoModel::Boosted => {
            let mut m = XgbClassifier::from_json(XGB_BREAST_CANCER).map_err(ml)?;
            m.compile_default(train).map_err(ml)?;
            (
                "XGBClassifier (imported, 20 trees, depth 3, 6-bit)",
                m.predict(test).map_err(ml)?,
                m.compiled().map_err(ml)?.clone(),
            )
        }
    })
}

/// Runs the demo.
pub fn run(args: &DemoArgs) -> Result<(), CliError> {
    let data = dataset::breast_cancer().map_err(ml)?;
    let split = dataset::train_test_split(&data, 0.25, 0).map_err(ml)?;
    let ytr = split.train.classes().map_err(ml)?;
    let yte = split.test.classes().map_err(ml)?;
    println!(
        "veil demo: {} ({} samples, {} features), 75/25 split: {} train / {} test",
        data.name,
        data.len(),
        data.x.cols(),
        split.train.len(),
        split.test.len()
    );

    // one deliberately out-of-range sample, predicted by the float model with the test set:
    // the first test sample with its first feature at ten times the largest training value
    let far = {
        let hi = (0..split.train.x.rows())
            .map(|i| split.train.x.row(i)[0].abs())
            .fold(1.0f64, f64::max);
        let mut row = split.test.x.row(0).to_vec();
        row[0] = (10.0 * hi).round();
        row
    };
    let with_far = Matrix::from_rows(
        &(0..split.test.x.rows())
            .map(|i| split.test.x.row(i).to_vec())
            .chain(std::iter::once(far.clone()))
            .collect::<Vec<_>>(),
    )
    .map_err(ml)?;
    let t = Instant::now();
    let (name, mut float_pred, model) = train(args.model, &split.train.x, &ytr, &with_far)?;
    let float_far = float_pred
        .pop()
        .ok_or_else(|| CliError("no prediction".into()))?;
    println!(
        "model: {name}, trained and quantized in {:.2?}",
        t.elapsed()
    );

    // Clear (quantized integer program through the reference interpreter) on the whole test set.
    let clear_scores = model
        .run(&split.test.x, &veil_ml::Interpreter)
        .map_err(ml)?;
    let clear_pred: Vec<usize> = clear_scores.iter().map(|p| argmax(p)).collect();
    let acc = |p: &[usize]| veil_ml::accuracy(p, &yte) * 100.0;
    println!(
        "test accuracy ({} samples): float {:.1}%, quantized clear {:.1}%",
        yte.len(),
        acc(&float_pred),
        acc(&clear_pred)
    );

    // Compile the integer program to TFHE, calibrated on the quantized training set.
    let inputset: Vec<Vec<Tensor<i64>>> = model
        .client
        .calibration_inputs(&split.train.x)
        .map_err(ml)?
        .into_iter()
        .map(|t| vec![t])
        .collect();
    let program = compile(&model.graph, &inputset, &CompileConfig::default()).map_err(ml)?;
    let s = &program.stats;
    println!("compiled in {:.1} ms: {}", s.compile_ms, s.summary());

    let t = Instant::now();
    let (client, compressed) = veil_runtime::keygen(
        &program.tfhe,
        &veil_runtime::KeygenOptions {
            seed: args.seed as u128,
            ..Default::default()
        },
    )
    .map_err(ml)?;
    let keygen = t.elapsed();
    let sizes = compressed.sizes();
    let t = Instant::now();
    let server = compressed.decompress();
    println!(
        "keygen {:.2?} (+{:.2?} server-side decompression); evaluation keys {} compressed, {} expanded",
        keygen,
        t.elapsed(),
        human_bytes(sizes.compressed()),
        human_bytes(sizes.expanded())
    );

    let n = args.samples.min(yte.len());
    println!();
    println!(" sample | label | float | clear | FHE | encrypt  | server run | decrypt");
    println!("--------+-------+-------+-------+-----+----------+------------+--------");
    let mut agree = 0;
    let mut correct = 0;
    let mut total_run = 0.0;
    for i in 0..n {
        let x = split.test.x.select_rows(&[i]);
        let inputs = model.client.encode(&x).map_err(ml)?;
        let t = Instant::now();
        // the client's domain check (prepared on the first sample, reused after): refuses
        // what the compiled program would compute differently from the quantized model
        program
            .check_domain(&inputs, veil_compiler::program::DomainCheck::Exact)
            .map_err(ml)?;
        let ct = program.encrypt_unchecked(&client, &inputs).map_err(ml)?;
        let te = t.elapsed();
        let t = Instant::now();
        let out = program.run(&server, ct).map_err(ml)?;
        let tr = t.elapsed();
        total_run += tr.as_secs_f64();
        let t = Instant::now();
        let dec = program.decrypt(&client, &out).map_err(ml)?;
        let td = t.elapsed();
        let scores = model.client.decode(&dec, 1).map_err(ml)?;
        let fhe = argmax(&scores[0]);
        agree += usize::from(fhe == clear_pred[i]);
        correct += usize::from(fhe == yte[i]);
        println!(
            " {:>6} | {:>5} | {:>5} | {:>5} | {:>3} | {:>8.2?} | {:>10.2?} | {:>7.2?}",
            i, yte[i], float_pred[i], clear_pred[i], fhe, te, tr, td
        );
    }
    println!();
    println!(
        "FHE == clear on {agree}/{n} samples; FHE accuracy {correct}/{n}; mean server latency {:.2} ms/sample",
        1e3 * total_run / n.max(1) as f64
    );
    if agree != n {
        return Err(CliError(format!(
            "{} of {n} encrypted predictions differ from the clear program",
            n - agree
        )));
    }
    out_of_range(&program, &model, far, float_far)
}

/// The client's domain check on one deliberately out-of-range sample `far` (a feature at ten
/// times the largest training value; `float_label` is the float model's prediction). The
/// client artifact (what `veil encrypt` uses) refuses it before encrypting, and this prints the
/// message; a tree model sending features as ranks among its split points
/// ([`veil_ml::FeatureBins`]) has no range to leave: it accepts the sample and must decide it
/// as the float model does. Fails otherwise.
fn out_of_range(
    program: &veil_compiler::program::Program,
    model: &CompiledModel,
    far: Vec<f64>,
    float_label: usize,
) -> Result<(), CliError> {
    use veil_ml::artifact::{ClientArtifact, ClientModel, OutOfDomain};
    let client = ClientArtifact::from_program(
        program,
        "demo",
        ClientModel::Quantized {
            spec: Box::new(model.client.clone()),
            onnx: None,
        },
    )
    .map_err(ml)?;
    let value = far[0];
    let x = Matrix::from_rows(&[far]).map_err(ml)?;
    if model.client.bins.is_some() {
        client.quantize_with(&x, OutOfDomain::Error).map_err(ml)?;
        let clear = model.run(&x, &veil_ml::Interpreter).map_err(ml)?;
        let label = clear.first().map(|p| argmax(p));
        if label != Some(float_label) {
            return Err(CliError(format!(
                "a sample with feature 0 at {value} is decided {label:?} by the program, {float_label} by the float model"
            )));
        }
        println!(
            "out-of-range sample (feature 0 at {value}, ten times the training maximum) accepted: \
             tree features travel as ranks among the split points, so it is decided exactly as \
             the float model decides it (label {float_label})"
        );
        return Ok(());
    }
    match client.quantize_with(&x, OutOfDomain::Error) {
        Err(e) => {
            let msg = e.to_string();
            // the what and where, without the advice on --out-of-domain
            let short = msg.split("; nothing was encrypted").next().unwrap_or(&msg);
            println!("out-of-range sample refused, nothing encrypted: {short}");
            Ok(())
        }
        Ok(_) => Err(CliError(
            "the client accepted a sample outside the range the model was calibrated on".into(),
        )),
    }
}
