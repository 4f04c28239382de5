#!/usr/bin/env python3
"""The peer's side of the ML bench's ensemble rows: Concrete ML on the same models as veil's
fixtures `xgb_digits` and `forest_digits` (scripts/export_onnx_fixtures.py: digits 8x8,
10 classes, 70/30 split with random_state 0; XGBoost 10 rounds of depth 3, a random forest of
20 trees of depth 4), at Concrete ML's default tree settings.

Usage (a Python 3.11 environment with `pip install concrete-ml`):
    python benches/peer/concrete_ml_ensembles.py [--samples N] [--models xgb,forest]

Prints one JSON line per model: float and clear (quantized) accuracy on the test split, FHE
agreement with clear on the first N test samples, compile and keygen seconds, PBS per sample,
evaluation key size and FHE latency per sample (one sample at a time, as veil's bench runs).
"""

import argparse
import json
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--models", default="xgb,forest")
    args = ap.parse_args()
    from concrete.ml.sklearn import RandomForestClassifier, XGBClassifier
    from sklearn.ensemble import RandomForestClassifier as SkForest
    from xgboost import XGBClassifier as SkXgb

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=0)
    makers = {
        "xgb": (lambda: XGBClassifier(n_estimators=10, max_depth=3, random_state=0),
                lambda: SkXgb(n_estimators=10, max_depth=3, random_state=0)),
        "forest": (lambda: RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0),
                   lambda: SkForest(n_estimators=20, max_depth=4, random_state=0)),
    }
    for name in args.models.split(","):
        fhe_model, float_model = makers[name]
        fm = float_model().fit(x_tr, y_tr)
        float_acc = float(np.mean(fm.predict(x_te) == y_te))
        m = fhe_model()
        m.fit(x_tr, y_tr)
        clear = m.predict(x_te)
        clear_acc = float(np.mean(clear == y_te))
        t = time.perf_counter()
        circuit = m.compile(x_tr)
        compile_s = time.perf_counter() - t
        t = time.perf_counter()
        circuit.keygen(force=True)
        keygen_s = time.perf_counter() - t
        try:
            pbs = int(circuit.programmable_bootstrap_count)
        except Exception:  # noqa: BLE001 - the statistic's name moved between versions
            pbs = None
        try:
            key_bytes = int(circuit.size_of_keyswitch_keys + circuit.size_of_bootstrap_keys)
        except Exception:  # noqa: BLE001
            key_bytes = None
        n = min(args.samples, len(x_te))
        agree, lat = 0, []
        for i in range(n):
            t = time.perf_counter()
            p = m.predict(x_te[i:i + 1], fhe="execute")
            lat.append(time.perf_counter() - t)
            agree += int(p[0] == clear[i])
        print(json.dumps({
            "model": name, "float_acc": round(float_acc, 4), "clear_acc": round(clear_acc, 4),
            "fhe_equal_clear": f"{agree}/{n}", "compile_s": round(compile_s, 2),
            "keygen_s": round(keygen_s, 2), "pbs": pbs, "key_bytes": key_bytes,
            "latency_s": round(float(np.mean(lat)), 3),
        }), flush=True)


if __name__ == "__main__":
    main()
