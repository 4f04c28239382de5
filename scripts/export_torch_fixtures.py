#!/usr/bin/env python3
"""Trains small PyTorch models and exports them with torch.onnx.export as ONNX fixtures.

Usage (Python 3.11; see scripts/requirements-torch.txt for how torch is installed):
    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install -r scripts/requirements-torch.txt
    /tmp/torchenv/bin/python scripts/export_torch_fixtures.py [OUT_DIR] [--only NAME,NAME...]

OUT_DIR defaults to ml/tests/fixtures/onnx; `--only` regenerates the named fixtures only
(e.g. `--only torch_cnn_digits`). For each fixture NAME it writes NAME.onnx and NAME.json in
the layout of scripts/export_onnx_fixtures.py: the per-sample input shape, a calibration
inputset (training rows), test inputs, their true targets and the float reference predictions
computed by onnxruntime on the exported file. Unlike the scikit-learn/hand-written fixtures,
the exported graphs have a single output, the logits ("output", [batch, classes], no Softmax
or ArgMax node); reference.scores are those logits and reference.labels their argmax.

Models (SEED 0, torch.manual_seed, deterministic single-threaded CPU training):
  torch_mlp_iris    Linear(4,16)-ReLU-Linear(16,16)-ReLU-Linear(16,3) on iris. Trained on
                    standardized features; the standardization is then folded into the first
                    Linear, so the ONNX input is the raw iris features.
  torch_cnn_digits  Conv2d(1,4,3,pad 1)-ReLU-AvgPool2d(2)-Conv2d(4,8,3)-ReLU-Flatten-
                    Linear(32,10) on digits 8x8, input [N,1,8,8]. Pixels are scaled 0..16 ->
                    0..1 before the model (as cnn_digits and mlp_digits do), so the ONNX input
                    and the JSON inputs are in 0..1.
Both are exported with opset 13, input "input", output "output", dynamic batch dimension,
dynamo=False (the TorchScript exporter), constant folding on.
"""

import os
import sys

import numpy as np
import onnx
import torch
from sklearn.datasets import load_digits, load_iris
from torch import nn

from fixture_common import (
    N_TEST, SEED, floats, parse_args, run_onnx, run_selected, split, write_fixture)

OPSET = 13
OUT, ONLY = parse_args()


def deterministic():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def train(model, x, y, epochs, lr, batch=None, weight_decay=0.0):
    """Adam on cross-entropy; full batch when `batch` is None, else shuffled minibatches drawn
    from a generator seeded with SEED."""
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        if batch is None:
            batches = [torch.arange(len(xt))]
        else:
            batches = torch.randperm(len(xt), generator=gen).split(batch)
        for idx in batches:
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def describe(model):
    ops = []
    for n in model.graph.node:
        if n.op_type not in ops:
            ops.append(n.op_type)
    print(f"  op types (in order of first use): {ops}")
    print(f"  nodes: {[(n.op_type, n.name) for n in model.graph.node]}")
    for t in model.graph.initializer:
        print(f"  initializer {t.name}: {list(t.dims)}")
    consts = [n for n in model.graph.node if n.op_type == "Constant"]
    if consts:
        print(f"  Constant nodes: {[n.output[0] for n in consts]}")
    for v in model.graph.input:
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        print(f"  input {v.name}: {dims}")
    for v in model.graph.output:
        dims = [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        print(f"  output {v.name}: {dims}")


def save(name, net, sample_shape, x_train, x_test, y_test):
    """Exports `net`, checks it, and writes NAME.json with onnxruntime's predictions."""
    path = os.path.join(OUT, name + ".onnx")
    net.eval()
    dummy = torch.from_numpy(x_train[:1].astype(np.float32))
    torch.onnx.export(net, (dummy,), path, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    x_te = x_test[:N_TEST]
    (logits,) = run_onnx(path, x_te)
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(x_te.astype(np.float32))).numpy()
    assert logits.shape == torch_logits.shape, (logits.shape, torch_logits.shape)
    labels = np.argmax(logits, axis=1)
    if not np.array_equal(labels, np.argmax(torch_logits, axis=1)):
        sys.exit(f"{name}: onnxruntime and torch disagree on argmax")
    max_diff = float(np.max(np.abs(logits - torch_logits)))
    ref = {
        "labels": [int(v) for v in labels],
        "scores": floats(np.asarray(logits).reshape(len(x_te), -1)),
    }
    write_fixture(OUT, name, "classification", sample_shape, x_train, x_test, y_test, ref)
    acc = float(np.mean(labels == y_test[:N_TEST]))
    with torch.no_grad():
        full = net(torch.from_numpy(x_test.astype(np.float32))).numpy().argmax(1)
    acc_all = float(np.mean(full == y_test))
    print(f"{name}: float accuracy {acc:.3f} on the {len(x_te)} fixture rows "
          f"({acc_all:.3f} on all {len(y_test)} test rows), torch vs onnxruntime max |diff| "
          f"{max_diff:.2e}, {os.path.getsize(path)} bytes")
    describe(model)


def torch_mlp_iris():
    deterministic()
    x, y = load_iris(return_X_y=True)
    x_tr, x_te, y_tr, y_te = split(x, y)
    mean = x_tr.mean(0)
    std = x_tr.std(0)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                        nn.Linear(16, 3))
    train(net, (x_tr - mean) / std, y_tr, epochs=300, lr=0.01)
    # Fold the standardization into the first layer: W (x - m) / s + b = (W / s) x + (b - W m/s).
    with torch.no_grad():
        first = net[0]
        s = torch.from_numpy(std.astype(np.float32))
        m = torch.from_numpy(mean.astype(np.float32))
        w = first.weight / s[None, :]
        b = first.bias - w @ m
        first.weight.copy_(w)
        first.bias.copy_(b)
    save("torch_mlp_iris", net, [4], x_tr, x_te, y_te)


def torch_cnn_digits():
    deterministic()
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).reshape(-1, 1, 8, 8)
    x_tr, x_te, y_tr, y_te = split(x, y)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 2 * 2, 10))
    train(net, x_tr, y_tr, epochs=60, lr=0.01, batch=32)
    save("torch_cnn_digits", net, [1, 8, 8], x_tr, x_te, y_te)


def main():
    os.makedirs(OUT, exist_ok=True)
    fixtures = {
        "torch_mlp_iris": torch_mlp_iris,
        "torch_cnn_digits": torch_cnn_digits,
    }
    run_selected(fixtures, ONLY)


if __name__ == "__main__":
    main()
