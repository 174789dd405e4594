"""OFA's accuracy predictor: a regression from a subnet's one-hot encoding to its accuracy.

Taught in 05-once-for-all. :class:`AccuracyPredictor` (ridge regression or an MLP,
scikit-learn) is fitted on subnets evaluated with inherited weights, so the evolution can
rank many more candidates than it evaluates; its cross-validated skill is reported beside it.
Imports no other module of the package.
"""
from __future__ import annotations

import numpy as np

def encode(arch, space) -> np.ndarray:
    """One-hot encoding of a subnet: per block slot kernel and expansion (zeros when
    the block is skipped), per stage depth, and the resolution. Taught in 02-aging-evolution."""
    feats = []
    K, E, D = sorted(space.kernels), sorted(space.expansions), sorted(space.depths)
    dmax = max(D)
    for st in arch.stages:
        feats += [float(len(st) == d) for d in D]
        for bi in range(dmax):
            if bi < len(st):
                e, k = st[bi]
                feats += [float(k == kk) for kk in K] + [float(e == ee) for ee in E]
            else:
                feats += [0.0] * (len(K) + len(E))
    feats += [float(arch.resolution == r) for r in sorted(space.resolutions)]
    return np.asarray(feats, np.float32)


class AccuracyPredictor:
    """Accuracy of a subnet from its encoding: ridge regression (``kind="ridge"``) or a
    small MLP (``"mlp"``, OFA's choice) from scikit-learn. Taught in 05-once-for-all."""

    KINDS = ("ridge", "mlp")

    def __init__(self, space, kind: str = "ridge", seed: int = 0):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.space, self.kind, self.seed = space, kind, int(seed)
        self.model = None

    def new_estimator(self):
        """A fresh, unfitted scikit-learn estimator of this kind (for cross-validation).
        Taught in 05-once-for-all."""
        if self.kind == "ridge":
            from sklearn.linear_model import RidgeCV
            return RidgeCV(alphas=np.logspace(-3, 2, 12))
        from sklearn.neural_network import MLPRegressor
        return MLPRegressor(hidden_layer_sizes=(64, 64), alpha=1e-3, max_iter=3000,
                            random_state=self.seed)

    def fit(self, archs, accuracies) -> "AccuracyPredictor":
        X = np.stack([encode(a, self.space) for a in archs])
        y = np.asarray(accuracies, float)
        if len(X) != len(y) or len(y) < 3:
            raise ValueError("fit needs at least 3 (arch, accuracy) pairs of equal count")
        self.model = self.new_estimator().fit(X, y)
        return self

    def predict(self, archs) -> np.ndarray:
        if self.model is None:
            raise ValueError("predictor is not fitted; call fit(archs, accuracies) first")
        single = not isinstance(archs, (list, tuple))
        X = np.stack([encode(a, self.space) for a in ([archs] if single else archs)])
        p = self.model.predict(X)
        return float(p[0]) if single else p

    def cv_rmse(self, archs, accuracies, folds: int = 5) -> float:
        """Root-mean-square error of k-fold cross-validated predictions."""
        from sklearn.model_selection import KFold
        X = np.stack([encode(a, self.space) for a in archs])
        y = np.asarray(accuracies, float)
        pred = np.zeros_like(y)
        for tr, te in KFold(folds, shuffle=True, random_state=self.seed).split(X):
            pred[te] = self.new_estimator().fit(X[tr], y[tr]).predict(X[te])
        return float(np.sqrt(np.mean((pred - y) ** 2)))
