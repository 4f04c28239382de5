#!/usr/bin/env python3
"""Trains small models and exports the ONNX fixtures of ml/tests/onnx_*.rs.

Usage (Python 3.11):
    python -m venv .venv && .venv/bin/pip install -r scripts/requirements.txt
    .venv/bin/python scripts/export_onnx_fixtures.py [OUT_DIR] [--only NAME,NAME...]

OUT_DIR defaults to ml/tests/fixtures/onnx; `--only` regenerates the named fixtures only
(e.g. `--only xgb_breast_cancer`). For each fixture NAME it writes NAME.onnx and
NAME.json: the per-sample input shape, a calibration inputset (training rows), test inputs,
their true targets and the float reference predictions computed by onnxruntime on the exported
file (labels and scores for classifiers, values for regressors). The tests need no Python.

Models: scikit-learn LogisticRegression (binary, with a StandardScaler; multiclass),
LinearRegression, DecisionTreeClassifier, RandomForestClassifier/Regressor (skl2onnx), an
XGBoost classifier (onnxmltools), an MLPClassifier with two hidden layers (skl2onnx; torch's
PyPI wheels pull several GB of CUDA packages, so no torch here), a small CNN on digits 8x8
trained in numpy and written with the onnx helper API, and an "ops" network with random weights
that exercises the remaining activations.
"""

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.ensemble import (ExtraTreesClassifier, ExtraTreesRegressor,
                              GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier

from fixture_common import (
    N_TEST, SEED, floats, parse_args, run_onnx, run_selected, split, write_fixture)

OUT, ONLY = parse_args()


def save(name, model, task, sample_shape, x_train, x_test, y_test):
    path = os.path.join(OUT, name + ".onnx")
    onnx.checker.check_model(model)
    onnx.save(model, path)
    x_te = x_test[:N_TEST]
    outs = run_onnx(path, x_te)
    ref = {}
    if task == "classification":
        labels, scores = outs[0], outs[1]
        if isinstance(scores, list):  # ZipMap: one {class: probability} map per sample
            scores = np.asarray([[m[k] for k in sorted(m)] for m in scores])
        ref["labels"] = [int(v) for v in np.asarray(labels).reshape(-1)]
        ref["scores"] = floats(np.asarray(scores).reshape(len(x_te), -1))
    else:
        ref["values"] = [float(v) for v in np.asarray(outs[0]).reshape(-1)]
    write_fixture(OUT, name, task, sample_shape, x_train, x_test, y_test, ref)
    if task == "classification":
        acc = float(np.mean(np.asarray(ref["labels"]) == y_test[:N_TEST]))
        print(f"{name}: float accuracy {acc:.3f}, {os.path.getsize(path)} bytes")
    else:
        print(f"{name}: {os.path.getsize(path)} bytes")


def no_zipmap(model):
    return {id(model): {"zipmap": False}}


def sk(name, model, x, y, task, est=None, zipmap=False):
    x_tr, x_te, y_tr, y_te = split(x, y)
    model.fit(x_tr, y_tr)
    opts = None
    if task == "classification" and not zipmap:
        opts = no_zipmap(est(model) if est else model)
    onx = to_onnx(model, x_tr[:1], options=opts, target_opset={"": 17, "ai.onnx.ml": 3})
    save(name, onx, task, [x.shape[1]], x_tr, x_te, y_te)


def xgb_iris():
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from xgboost import XGBClassifier
    x, y = load_iris(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split(x, y)
    m = XGBClassifier(n_estimators=10, max_depth=3, learning_rate=0.3, random_state=SEED)
    m.fit(x_tr, y_tr)
    onx = convert_xgboost(m, initial_types=[("input", FloatTensorType([None, 4]))],
                          target_opset=15)
    save("xgb_iris", onx, "classification", [4], x_tr, x_te, y_te)


def xgb_digits():
    """A 10-class XGBoost classifier (softmax trees: one tree per class and round)."""
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from xgboost import XGBClassifier
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split(x, y)
    m = XGBClassifier(n_estimators=10, max_depth=3, random_state=SEED)
    m.fit(x_tr, y_tr)
    onx = convert_xgboost(m, initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
                          target_opset=15)
    save("xgb_digits", onx, "classification", [x.shape[1]], x_tr, x_te, y_te)


def xgb_regressor_diabetes():
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from xgboost import XGBRegressor
    x, y = load_diabetes(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split(x, y)
    m = XGBRegressor(n_estimators=20, max_depth=3, random_state=SEED)
    m.fit(x_tr, y_tr)
    onx = convert_xgboost(m, initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
                          target_opset=15)
    save("xgb_regressor_diabetes", onx, "regression", [x.shape[1]], x_tr, x_te, y_te)


def lgbm(name, x, y, task, **kw):
    """LightGBM through onnxmltools, as its documentation converts it."""
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    x_tr, x_te, y_tr, y_te = split(x, y)
    cls = LGBMClassifier if task == "classification" else LGBMRegressor
    m = cls(random_state=SEED, verbose=-1, **kw)
    m.fit(x_tr, y_tr)
    onx = convert_lightgbm(m, initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
                           target_opset=15, zipmap=False)
    save(name, onx, task, [x.shape[1]], x_tr, x_te, y_te)


def xgb_breast_cancer():
    """The Concrete ML benchmark's XGBoost model: 20 trees of depth 3 on breast cancer, 75/25
    split with random_state 0. Writes the ONNX fixture and, in OUT/../xgboost/, the booster in
    XGBoost's JSON format (breast_cancer.model.json) and XGBoost's own predictions on every test
    sample (breast_cancer.reference.json: inputs, targets, labels, margins, probabilities)."""
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from xgboost import XGBClassifier
    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x.astype(np.float32), y, test_size=0.25,
                                              random_state=SEED)
    m = XGBClassifier(n_estimators=20, max_depth=3, random_state=SEED)
    m.fit(x_tr, y_tr)
    onx = convert_xgboost(m, initial_types=[("input", FloatTensorType([None, x.shape[1]]))],
                          target_opset=15)
    save("xgb_breast_cancer", onx, "classification", [x.shape[1]], x_tr, x_te, y_te)
    xdir = os.path.join(OUT, "..", "xgboost")
    os.makedirs(xdir, exist_ok=True)
    m.get_booster().save_model(os.path.join(xdir, "breast_cancer.model.json"))
    ref = {
        "test_size": 0.25,
        "random_state": SEED,
        "inputs": floats(x_te),
        "targets": [int(v) for v in y_te],
        "labels": [int(v) for v in m.predict(x_te)],
        "margins": [float(v) for v in m.predict(x_te, output_margin=True)],
        "probabilities": [float(v) for v in m.predict_proba(x_te)[:, 1]],
    }
    with open(os.path.join(xdir, "breast_cancer.reference.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
    acc = float(np.mean(np.asarray(ref["labels"]) == y_te))
    print(f"xgboost breast_cancer.model.json: float accuracy {acc:.3f} on {len(y_te)} samples")


# ---------------------------------------------------------------- CNN trained in numpy

def im2col(x, k, pad):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = np.empty((n, c, k, k, oh, ow), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            cols[:, :, i, j] = xp[:, :, i:i + oh, j:j + ow]
    return cols.reshape(n, c * k * k, oh * ow), (oh, ow)


def col2im(dcols, shape, k, pad):
    n, c, h, w = shape
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    dcols = dcols.reshape(n, c, k, k, oh, ow)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=dcols.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + oh, j:j + ow] += dcols[:, :, i, j]
    return dxp[:, :, pad:pad + h, pad:pad + w]


def conv_fwd(x, w, b, pad):
    cols, (oh, ow) = im2col(x, w.shape[2], pad)
    out = np.einsum("ok,nkp->nop", w.reshape(w.shape[0], -1), cols)
    out = out.reshape(x.shape[0], w.shape[0], oh, ow)
    if b is not None:
        out += b[None, :, None, None]
    return out, cols


def conv_bwd(dout, cols, x_shape, w, pad):
    n, o = dout.shape[:2]
    d = dout.reshape(n, o, -1)
    dw = np.einsum("nop,nkp->ok", d, cols).reshape(w.shape)
    dcols = np.einsum("ok,nop->nkp", w.reshape(o, -1), d)
    return dw, col2im(dcols, x_shape, w.shape[2], pad), d.sum(axis=(0, 2))


def cnn_digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 1, 8, 8)
    x_tr, x_te, y_tr, y_te = train_test_split(x.astype(np.float32), y, test_size=0.3,
                                              random_state=SEED)
    rng = np.random.default_rng(SEED)
    w1 = rng.normal(0, np.sqrt(2 / 9), (8, 1, 3, 3))
    a1, c1 = np.ones(8), np.zeros(8)  # BatchNorm as a learned per-channel affine
    w2 = rng.normal(0, np.sqrt(2 / 72), (16, 8, 3, 3))
    b2 = np.zeros(16)
    w3 = rng.normal(0, np.sqrt(1 / 64), (64, 10))
    b3 = np.zeros(10)
    xt = x_tr.astype(np.float64)
    lr = 0.05
    for epoch in range(40):
        perm = rng.permutation(len(xt))
        for s in range(0, len(xt), 32):
            idx = perm[s:s + 32]
            xb, yb = xt[idx], y_tr[idx]
            n = len(idx)
            z1, cols1 = conv_fwd(xb, w1, None, 1)          # [n,8,8,8]
            h1 = z1 * a1[None, :, None, None] + c1[None, :, None, None]
            r1 = np.maximum(h1, 0)
            r1w = r1.reshape(n, 8, 4, 2, 4, 2)
            p1 = r1w.max(axis=(3, 5))                      # maxpool 2 -> [n,8,4,4]
            z2, cols2 = conv_fwd(p1, w2, b2, 1)            # [n,16,4,4]
            r2 = np.maximum(z2, 0)
            p2 = r2.reshape(n, 16, 2, 2, 2, 2).mean(axis=(3, 5))  # avgpool 2 -> [n,16,2,2]
            f = p2.reshape(n, 64)
            logits = f @ w3 + b3
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            p[np.arange(n), yb] -= 1
            dl = p / n
            dw3, db3 = f.T @ dl, dl.sum(0)
            dp2 = (dl @ w3.T).reshape(n, 16, 2, 2)
            dr2 = np.repeat(np.repeat(dp2, 2, axis=2), 2, axis=3) / 4
            dz2 = dr2 * (z2 > 0)
            dw2, dp1, db2 = conv_bwd(dz2, cols2, p1.shape, w2, 1)
            mask = (r1w == p1[:, :, :, None, :, None])
            dr1 = (mask * dp1[:, :, :, None, :, None]).reshape(n, 8, 8, 8)
            dh1 = dr1 * (h1 > 0)
            da1 = (dh1 * z1).sum(axis=(0, 2, 3))
            dc1 = dh1.sum(axis=(0, 2, 3))
            dz1 = dh1 * a1[None, :, None, None]
            dw1, _, _ = conv_bwd(dz1, cols1, xb.shape, w1, 1)
            for prm, g in ((w1, dw1), (a1, da1), (c1, dc1), (w2, dw2), (b2, db2),
                           (w3, dw3), (b3, db3)):
                prm -= lr * g
    # BatchNorm parameters: running statistics of the conv output on the training set, and
    # gamma/beta such that BN(z) = a1 * z + c1.
    z1, _ = conv_fwd(xt, w1, None, 1)
    mean = z1.mean(axis=(0, 2, 3))
    var = z1.var(axis=(0, 2, 3))
    eps = 1e-5
    gamma = a1 * np.sqrt(var + eps)
    beta = c1 + mean * a1

    def init(name, arr):
        return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)

    nodes = [
        helper.make_node("Conv", ["input", "w1"], ["z1"], name="conv1", pads=[1, 1, 1, 1],
                         kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["z1", "gamma", "beta", "mean", "var"], ["h1"],
                         name="bn1", epsilon=eps),
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["z2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["z2"], ["r2"], name="relu2"),
        helper.make_node("AveragePool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "w3t", "b3"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], name="argmax", axis=1, keepdims=0),
    ]
    inits = [init("w1", w1), init("gamma", gamma), init("beta", beta), init("mean", mean),
             init("var", var), init("w2", w2), init("b2", b2), init("w3t", w3.T),
             init("b3", b3)]
    graph = helper.make_graph(
        nodes, "cnn_digits",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save("cnn_digits", model, "classification", [1, 8, 8], x_tr, x_te, y_te)


def ops_net():
    """A small network with random weights: Gemm, LeakyRelu, Tanh, Softplus, Sigmoid, Clip, Mul,
    Div, Sub, Transpose, Reshape, Concat, Identity and Constant on iris."""
    x, y = load_iris(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split(x, y)
    rng = np.random.default_rng(SEED + 1)
    mean = x_tr.mean(0)

    def init(name, arr, dtype=np.float32):
        return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)

    # Train a linear head on random features so that the network is a meaningful classifier.
    w1 = rng.normal(0, 0.7, (4, 16))
    w2 = rng.normal(0, 0.7, (4, 8))

    def feats(xx):
        xc = (xx - mean) / 2.0
        h1 = xc @ w1
        a = np.where(h1 > 0, h1, 0.1 * h1)
        b = np.tanh(xc @ w2) * 1.5
        c = np.log1p(np.exp(a[:, :8])) - np.clip(b, -1, 1)
        s = 1 / (1 + np.exp(-a[:, 8:]))
        return np.concatenate([c, s], axis=1)

    f = feats(x_tr.astype(np.float64))
    head = LogisticRegression(max_iter=2000).fit(f, y_tr)
    w3 = head.coef_.T
    b3 = head.intercept_
    nodes = [
        helper.make_node("Constant", [], ["mean"], name="mean_const",
                         value=numpy_helper.from_array(mean.astype(np.float32))),
        helper.make_node("Sub", ["input", "mean"], ["xc0"], name="center"),
        helper.make_node("Div", ["xc0", "two"], ["xc"], name="halve"),
        helper.make_node("Identity", ["xc"], ["xi"], name="ident"),
        helper.make_node("MatMul", ["xi", "w1"], ["h1"], name="mm1"),
        helper.make_node("LeakyRelu", ["h1"], ["a"], name="leaky", alpha=0.1),
        helper.make_node("Gemm", ["xi", "w2"], ["g2"], name="gemm2"),
        helper.make_node("Tanh", ["g2"], ["t"], name="tanh"),
        helper.make_node("Mul", ["t", "onefive"], ["b"], name="scale"),
        helper.make_node("Transpose", ["a"], ["aT"], name="tr", perm=[1, 0]),
        helper.make_node("Transpose", ["aT"], ["a2"], name="tr_back", perm=[1, 0]),
        helper.make_node("Reshape", ["a2", "shape"], ["a3"], name="reshape"),
        helper.make_node("Reshape", ["a3", "shape_back"], ["a4"], name="reshape_back"),
        helper.make_node("Split", ["a4", "halves"], ["a_lo", "a_hi"], name="split", axis=1),
        helper.make_node("Softplus", ["a_lo"], ["sp"], name="softplus"),
        helper.make_node("Clip", ["b", "lo", "hi"], ["bc"], name="clip"),
        helper.make_node("Sub", ["sp", "bc"], ["c"], name="diff"),
        helper.make_node("Sigmoid", ["a_hi"], ["s"], name="sigmoid"),
        helper.make_node("Concat", ["c", "s"], ["feat"], name="concat", axis=1),
        helper.make_node("Gemm", ["feat", "w3", "b3"], ["logits"], name="head"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], name="argmax", axis=1,
                         keepdims=0),
    ]
    inits = [init("two", 2.0), init("w1", w1), init("w2", w2), init("onefive", 1.5),
             init("shape", [-1, 2, 8], np.int64), init("shape_back", [-1, 16], np.int64),
             init("halves", [8, 8], np.int64), init("lo", -1.0), init("hi", 1.0),
             init("w3", w3), init("b3", b3)]
    graph = helper.make_graph(
        nodes, "ops_iris",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save("ops_iris", model, "classification", [4], x_tr, x_te, y_te)


def main():
    os.makedirs(OUT, exist_ok=True)
    np.random.seed(SEED)
    bc = load_breast_cancer(return_X_y=True)
    iris = load_iris(return_X_y=True)
    digits = load_digits(return_X_y=True)
    fixtures = {
        "logreg_breast_cancer": lambda: sk(
            "logreg_breast_cancer",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            *bc, "classification", est=lambda p: p.steps[-1][1]),
        "logreg_iris": lambda: sk("logreg_iris", LogisticRegression(max_iter=1000), *iris,
                                  "classification"),
        "linreg_diabetes": lambda: sk("linreg_diabetes", LinearRegression(),
                                      *load_diabetes(return_X_y=True), "regression"),
        "tree_iris": lambda: sk("tree_iris", DecisionTreeClassifier(max_depth=4,
                                                                    random_state=SEED),
                                *iris, "classification"),
        "forest_breast_cancer": lambda: sk(
            "forest_breast_cancer",
            RandomForestClassifier(n_estimators=10, max_depth=4, random_state=SEED), *bc,
            "classification"),
        "forest_diabetes": lambda: sk(
            "forest_diabetes",
            RandomForestRegressor(n_estimators=5, max_depth=4, random_state=SEED),
            *load_diabetes(return_X_y=True), "regression"),
        "xgb_iris": xgb_iris,
        "mlp_digits": lambda: sk(
            "mlp_digits",
            MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=400, random_state=SEED),
            digits[0] / 16.0, digits[1], "classification"),
        "cnn_digits": cnn_digits,
        "ops_iris": ops_net,
        "xgb_breast_cancer": xgb_breast_cancer,
        # More model families of scikit-learn, XGBoost and LightGBM, exported the usual way.
        "extra_trees_iris": lambda: sk(
            "extra_trees_iris",
            ExtraTreesClassifier(n_estimators=10, max_depth=4, random_state=SEED), *iris,
            "classification"),
        "gb_breast_cancer": lambda: sk(
            "gb_breast_cancer",
            GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=SEED), *bc,
            "classification"),
        "gb_iris": lambda: sk(
            "gb_iris",
            GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=SEED), *iris,
            "classification"),
        "gb_diabetes": lambda: sk(
            "gb_diabetes",
            GradientBoostingRegressor(n_estimators=20, max_depth=3, random_state=SEED),
            *load_diabetes(return_X_y=True), "regression"),
        "extra_trees_diabetes": lambda: sk(
            "extra_trees_diabetes",
            ExtraTreesRegressor(n_estimators=10, max_depth=4, random_state=SEED),
            *load_diabetes(return_X_y=True), "regression"),
        "tree_iris_zipmap": lambda: sk(
            "tree_iris_zipmap", DecisionTreeClassifier(max_depth=4, random_state=SEED), *iris,
            "classification", zipmap=True),
        "logreg_iris_zipmap": lambda: sk(
            "logreg_iris_zipmap", LogisticRegression(max_iter=1000), *iris, "classification",
            zipmap=True),
        "pipeline_minmax_tree_breast_cancer": lambda: sk(
            "pipeline_minmax_tree_breast_cancer",
            make_pipeline(MinMaxScaler(), DecisionTreeClassifier(max_depth=5,
                                                                 random_state=SEED)),
            *bc, "classification", est=lambda p: p.steps[-1][1]),
        # LinearSVC has no probabilities, so no ZipMap option (and skl2onnx 1.18 cannot
        # convert it inside a pipeline).
        "linear_svc_iris": lambda: sk(
            "linear_svc_iris", LinearSVC(random_state=SEED), *iris, "classification",
            zipmap=True),
        "svc_linear_breast_cancer": lambda: sk(
            "svc_linear_breast_cancer",
            make_pipeline(StandardScaler(), SVC(kernel="linear", random_state=SEED)), *bc,
            "classification", est=lambda p: p.steps[-1][1]),
        "ridge_diabetes": lambda: sk(
            "ridge_diabetes", make_pipeline(StandardScaler(), Ridge()),
            *load_diabetes(return_X_y=True), "regression"),
        "knn_iris": lambda: sk(
            "knn_iris", KNeighborsClassifier(n_neighbors=3), *iris, "classification"),
        "mlp_regressor_diabetes": lambda: sk(
            "mlp_regressor_diabetes",
            make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,),
                                                         max_iter=2000, random_state=SEED)),
            *load_diabetes(return_X_y=True), "regression"),
        "xgb_digits": xgb_digits,
        "forest_digits": lambda: sk(
            "forest_digits",
            RandomForestClassifier(n_estimators=20, max_depth=4, random_state=SEED), *digits,
            "classification"),
        "xgb_regressor_diabetes": xgb_regressor_diabetes,
        "lgbm_iris": lambda: lgbm("lgbm_iris", *iris, "classification", n_estimators=10,
                                  max_depth=3, num_leaves=8),
        "lgbm_breast_cancer": lambda: lgbm("lgbm_breast_cancer", *bc, "classification",
                                           n_estimators=20, max_depth=3, num_leaves=8),
        "lgbm_diabetes": lambda: lgbm("lgbm_diabetes", *load_diabetes(return_X_y=True),
                                      "regression", n_estimators=20, max_depth=3,
                                      num_leaves=8),
    }
    run_selected(fixtures, ONLY)


if __name__ == "__main__":
    main()
