"""Network morphism inside the SpArSe search: weights stored per trial and loaded back, the BO
oracle naming the trained elite a pool morphism came from, and the evaluator starting a child
from its parent's weights with fewer epochs (scikit-learn digits, offline, seconds)."""
import numpy as np
import pytest

from helpers import data as D
from helpers import inherit, search, spaces
from helpers.methods import sparse as SP
from helpers.methods import sparse_eval as SE

L, B = spaces.ConvLayer, spaces.ConvBlock
PARENT = spaces.GranularArch([B([L("conv", 6, 3, 1)]), B([L("conv", 8, 3, 2)])], "avg", 0, [spaces.DenseLayer(16)])
WIDER = spaces.GranularArch([B([L("conv", 8, 3, 1)]), B([L("conv", 8, 3, 2)])], "avg", 0, [spaces.DenseLayer(16)])


def test_saved_weights_are_a_parent(tmp_path):
    d = D.load_cached("digits")
    m = spaces.build(PARENT, d.input_shape, d.num_classes, seed=0)
    inherit.save_weights(m, tmp_path / "p.npz")
    loaded = inherit.load_weights(tmp_path / "p.npz")
    assert set(loaded) == {l.name for l in m.layers if l.get_weights()}
    same = spaces.build(PARENT, d.input_shape, d.num_classes, seed=7)
    rep = inherit.inherit_weights(same, loaded)
    assert rep.fraction == 1.0 and not rep.skipped
    x = d.x_val[:4]
    assert np.array_equal(np.asarray(same(x)), np.asarray(m(x)))
    wider = spaces.build(WIDER, d.input_shape, d.num_classes, seed=0)
    assert inherit.inherit_weights(wider, loaded).partial        # slices, as from a Keras parent


def test_evaluator_inherits_from_the_stored_parent_and_trains_fewer_epochs(tmp_path):
    ev = SE.SparseEvaluator("digits", epochs=2, inherit=True, epochs_inherited=1)
    assert ev.wants_trial and not SE.SparseEvaluator("digits").wants_trial
    par = SP.SparseCandidate(PARENT, 0.0, False, 3e-3)
    r0 = ev(par, 0, trial_id="00", parent=None, store=str(tmp_path))
    assert r0["epochs_run"] == 2 and r0["inherited_from"] == "" and r0["inherited_fraction"] == 0.0
    assert (tmp_path / "weights" / "00.npz").exists()
    child = SP.SparseCandidate(WIDER, 0.3, False, 3e-3)
    r1 = ev(child, 1, trial_id="01", parent="00", store=str(tmp_path))
    assert r1["inherited_from"] == "00" and r1["inherited_fraction"] >= 0.5 and r1["epochs_run"] == 1
    assert r1["sparsity"] > 0.2                                   # its own pruning still applies
    # a parent that was never stored (or no store): from scratch, full epochs
    r2 = ev(child, 1, trial_id="02", parent="99", store=str(tmp_path))
    assert r2["inherited_from"] == "" and r2["epochs_run"] == 2
    with pytest.raises(ValueError, match="epochs_inherited"):
        SE.SparseEvaluator("digits", epochs=2, epochs_inherited=3)
    with pytest.raises(ValueError, match="min_inherited"):
        SE.SparseEvaluator("digits", min_inherited=1.5)


class _Recorder:
    """A fake SpArSe evaluation that wants the trial: records what the tuner passes."""

    wants_trial = True

    def __init__(self):
        self.calls = []

    def __call__(self, c, seed, *, trial_id, parent, store):
        self.calls.append((trial_id, parent, store))
        r = SP.candidate_resources(c, (28, 28, 1), 10, exact=False)
        return {"error": 0.02 + 5.0 / (r["params_dense"] + 50) + 0.1 * c.sparsity ** 3,
                "model_size": r.get("model_size", int(r["params_dense"] * (1 - c.sparsity))),
                "working_memory": r["working_memory"]}


def test_bo_morphisms_name_their_trained_parent(tmp_path):
    sp = SP.SparseSpace()
    ev = _Recorder()
    res = lambda c: SP.candidate_resources(c, (28, 28, 1), 10, exact=False)
    out = search.bayesian_optimization(sp, ev, res, bounds={"error": 0.05, "model_size": 2867,
                                                            "working_memory": 2048},
                                       budget=14, num_initial_points=4, pool_size=48, seed=3,
                                       directory=tmp_path / "bo", progress=False)
    c = out.completed.sort_values("trial_id")
    assert len(ev.calls) == 14 and all(s == str(tmp_path / "bo") for _, _, s in ev.calls)
    passed = {t: p for t, p, _ in ev.calls}
    assert all((passed[t] or "") == p for t, p in zip(c.trial_id, c.parent))
    kids = c[c.parent != ""]
    assert len(kids) >= 1 and (kids.origin == "bo").all()
    assert (c[c.origin == "random"].parent == "").all()
    order = dict(zip(c.trial_id, c.order))
    for t, p in zip(kids.trial_id, kids.parent):                 # a parent finished before its child
        assert order[p] < order[t]


def test_bo_pool_of_morphisms_only(tmp_path):
    """pool_morphisms=1.0 (SpArSe: every proposal morphs a trained candidate): each BO pick has
    a parent; the share is validated and stored with the search only when not the default."""
    import json
    sp = SP.SparseSpace()
    res = lambda c: SP.candidate_resources(c, (28, 28, 1), 10, exact=False)
    kw = dict(bounds={"error": 0.05, "model_size": 2867, "working_memory": 2048}, budget=10,
              num_initial_points=4, pool_size=32, seed=3, progress=False)
    out = search.bayesian_optimization(sp, _Recorder(), res, directory=tmp_path / "m", pool_morphisms=1.0, **kw)
    bo = out.completed[out.completed.origin == "bo"]
    assert len(bo) == 6 and (bo.parent != "").all()
    cfg = json.loads((tmp_path / "m" / "search_config.json").read_text())["algo_kwargs"]
    assert cfg["pool_morphisms"] == 1.0
    search.bayesian_optimization(sp, _Recorder(), res, directory=tmp_path / "d", **{**kw, "budget": 5})
    assert "pool_morphisms" not in json.loads((tmp_path / "d" / "search_config.json").read_text())["algo_kwargs"]
    with pytest.raises(ValueError, match="pool_morphisms"):
        search.bayesian_optimization(sp, _Recorder(), res, directory=tmp_path / "x", pool_morphisms=1.5, **kw)
