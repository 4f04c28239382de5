#!/usr/bin/env python3
"""Exports the scikit-learn trees that veil's native tree training must reproduce exactly.

Usage (Python 3.11, the pinned environment of scripts/requirements.txt):
    .venv/bin/python scripts/export_sklearn_trees.py [OUT]

OUT defaults to ml/tests/fixtures/sklearn/trees_breast_cancer.json. The file holds the
breast cancer training rows of the 75/25 split (random_state 0) quantized per feature to 6
bits, as veil and Concrete ML quantize tree inputs (unsigned, range = training min..max), their
labels, and the trees scikit-learn 1.5.2 grows on them:
  - DecisionTreeClassifier(max_depth=5, random_state=s) for s in 0..5,
  - DecisionTreeRegressor(max_depth=4, random_state=0) on the labels as values,
  - RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).
Each tree is its nodes in preorder (left subtree first): [feature, threshold] for a split
(go left when x <= threshold; thresholds are midpoints of integers, so veil's integer
threshold is their floor) or [-1, -1] for a leaf. The tests need no Python.
"""

import json
import os
import sys

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

N_BITS = 6
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "ml", "tests", "fixtures", "sklearn",
    "trees_breast_cancer.json")


def quantize(x, lo, hi):
    scale = (hi - lo) / (2 ** N_BITS - 1)
    zero_point = np.round(-lo / scale)
    return np.clip(np.round(x / scale) + zero_point, 0, 2 ** N_BITS - 1).astype(np.int64)


def preorder(tree):
    t = tree.tree_
    out = []

    def go(i):
        if t.children_left[i] == -1:
            out.append([-1, -1])
            return
        out.append([int(t.feature[i]), int(np.floor(t.threshold[i]))])
        go(t.children_left[i])
        go(t.children_right[i])

    go(0)
    return out


x, y = load_breast_cancer(return_X_y=True)
x_tr, _, y_tr, _ = train_test_split(x, y, test_size=0.25, random_state=0)
xq = quantize(x_tr, x_tr.min(0), x_tr.max(0))

classifiers = []
for seed in range(5):
    m = DecisionTreeClassifier(max_depth=5, random_state=seed).fit(xq, y_tr)
    classifiers.append({"random_state": seed, "max_depth": 5, "nodes": preorder(m)})
reg = DecisionTreeRegressor(max_depth=4, random_state=0).fit(xq, y_tr.astype(np.float64))
forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(xq, y_tr)

doc = {
    "n_bits": N_BITS,
    "xq": xq.tolist(),
    "y": [int(v) for v in y_tr],
    "classifiers": classifiers,
    "regressor": {"random_state": 0, "max_depth": 4, "nodes": preorder(reg)},
    "forest": {
        "random_state": 0,
        "max_depth": 4,
        "max_features": int(forest.estimators_[0].max_features_),
        "trees": [preorder(e) for e in forest.estimators_],
    },
}
with open(OUT, "w") as f:
    json.dump(doc, f, separators=(",", ":"))
    f.write("\n")
print("wrote", OUT)
