"""What the fixture export scripts share: the command line, the data split, onnxruntime
evaluation and the NAME.json writer. Imports only numpy, onnxruntime and scikit-learn, which
both pinned environments (requirements.txt, requirements-torch.txt) have."""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
from sklearn.model_selection import train_test_split

SEED = 0
N_CALIB = 200
N_TEST = 100
DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "..", "ml", "tests", "fixtures",
                           "onnx")


def parse_args(argv=None):
    """`[OUT_DIR] [--only NAME,NAME...]` -> (OUT_DIR, set of names or None for all)."""
    argv = sys.argv[1:] if argv is None else argv
    args = [a for a in argv if not a.startswith("--only")]
    only = None
    for i, a in enumerate(argv):
        if a == "--only":
            only = set(argv[i + 1].split(","))
            args.remove(argv[i + 1])
        elif a.startswith("--only="):
            only = set(a[len("--only="):].split(","))
    return (args[0] if args else DEFAULT_OUT), only


def split(x, y):
    x = x.astype(np.float32)
    return train_test_split(x, y, test_size=0.3, random_state=SEED)


def run_onnx(path, x):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return sess.run(None, {name: x.astype(np.float32)})


def floats(a):
    return [[float(v) for v in row.reshape(-1)] for row in a]


def write_fixture(out, name, task, sample_shape, x_train, x_test, y_test, ref):
    """Writes OUT/NAME.json: the sample shape, N_CALIB calibration rows, N_TEST test inputs,
    their targets and the float reference predictions `ref`."""
    data = {
        "model": name + ".onnx",
        "task": task,
        "sample_shape": list(sample_shape),
        "calibration": floats(x_train[:N_CALIB]),
        "inputs": floats(x_test[:N_TEST]),
        "targets": [float(v) for v in y_test[:N_TEST]],
        "reference": ref,
    }
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(data, f, separators=(",", ":"))


def run_selected(fixtures, only):
    """Runs the makers of `fixtures` (name -> function) that `only` selects (None: all)."""
    unknown = (only or set()) - set(fixtures)
    if unknown:
        sys.exit(f"unknown fixtures {sorted(unknown)}; choose from {sorted(fixtures)}")
    for name, make in fixtures.items():
        if only is None or name in only:
            make()
