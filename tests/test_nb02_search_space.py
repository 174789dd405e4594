"""Notebook 02 machinery: ArchSpace / Candidate adapters, μNAS resource objectives,
aging evolution over the granular space, and evaluate_arch with structured pruning."""
import json

import numpy as np
import pytest

from helpers import resources, search, spaces
from helpers.methods import munas
from helpers.search import store
from helpers.spaces import ConvBlock, ConvLayer, GranularArch

GS = spaces.GranularSpace(max_blocks=3, max_filters=12, max_units=20)


def _chain():
    return GranularArch(blocks=[ConvBlock([ConvLayer("conv", filters=8, kernel=3, stride=2,
                                                     batch_norm=False)])],
                        pooling="avg", pool_size=0, dense=[])


def test_arch_space_stays_in_shrunk_space_and_round_trips():
    sp = munas.ArchSpace(spaces.GranularArch, GS, sparsity=(0.0, 0.5))
    rng = np.random.default_rng(0)
    c = sp.random(rng)
    sparsities = set()
    for _ in range(300):
        c = sp.mutate(c, rng)
        c.arch.validate(GS)                      # raises if a morphism left the space
        assert 0.0 <= c.sparsity <= 0.5
        sparsities.add(c.sparsity)
        text, kind = store._encode_arch(c)
        assert kind == "dict"
        back = sp.from_json(json.loads(text))
        assert back.hash == c.hash and back.sparsity == c.sparsity
    assert len(sparsities) > 3                   # sparsity is searched
    assert all(abs(s / 0.05 - round(s / 0.05)) < 1e-6 for s in sparsities)
    # same seed, same sequence
    a = [sp.random(np.random.default_rng(3)).hash for _ in range(2)]
    assert a[0] == a[1]
    off = munas.ArchSpace(spaces.GranularArch, GS)
    assert off.random(np.random.default_rng(0)).sparsity == 0.0


def test_arch_space_bad_inputs():
    with pytest.raises(ValueError, match="sparsity"):
        munas.ArchSpace(spaces.GranularArch, GS, sparsity=(0.5, 1.0))
    with pytest.raises(ValueError, match="arch_cls"):
        munas.ArchSpace(int, GS)
    with pytest.raises(ValueError, match="candidate JSON"):
        munas.ArchSpace(spaces.GranularArch, GS).from_json({"blocks": []})


def test_arch_resources_munas_peak_excludes_input_by_hand():
    # conv 3x3/2 -> 14x14x8 = 1568 B; MEAN -> 8 B (16 aligned) + int32 scratch 4*8 = 32 B;
    # FC -> 10 B (16). Input 28x28x1 = 784 B.
    r = munas.arch_resources(_chain(), (28, 28, 1), 10)
    r_in = munas.arch_resources(_chain(), (28, 28, 1), 10, include_input=True)
    assert r["peak_sram_bytes"] == 1568 + 16 + 32          # MEAN step: its input, output, scratch
    assert r_in["peak_sram_bytes"] == 784 + 1568           # CONV step with the input live
    assert r_in["peak_sram_bytes"] == resources.profile(_chain(), (28, 28, 1), 10,
                                                        plan="reordered").peak_sram_bytes
    # int8 weights 3*3*1*8 + 8*10 = 152, int32 biases (8 + 10) * 4 = 72, MEAN's int32 axes 8
    assert r["weights_bytes"] == 152 + 72 + 8
    assert r["macs"] == 14 * 14 * 8 * 9 + 8 * 10
    assert r["flash_bytes"] > r["weights_bytes"]


def test_arch_resources_screen_for_pruned_candidates():
    m = munas.ArchResources((28, 28, 1), 10)
    dense = m(munas.Candidate(_chain(), 0.0))
    half = m(munas.Candidate(_chain(), 0.5))
    for k in ("peak_sram_bytes", "weights_bytes", "macs"):
        assert half["dense_" + k] == dense[k]
        assert half[k] == round(dense[k] * 0.5)


def test_aging_evolution_on_granular_space_uses_space_mutate(tmp_path):
    sp = munas.ArchSpace(spaces.GranularArch, GS, sparsity=(0.0, 0.3))
    meas = munas.ArchResources((28, 28, 1), 10)

    def fake(cand, seed):   # no training: error from the size; "pruned" resources = the screen's
        r = meas(cand)
        return {"error": 1.0 / (1 + r["params"] / 500),
                **{k: r[k] for k in ("peak_sram_bytes", "weights_bytes", "macs")}}

    bounds = {"error": 0.5, "peak_sram_bytes": 2500, "weights_bytes": 4500, "macs": 30e6}
    res = search.aging_evolution(sp, fake, meas, bounds=bounds, budget=14, population_size=5,
                                 sample_size=2, seed=0, directory=tmp_path / "ae", progress=False)
    c = res.completed
    assert len(c) == 14 and (c.origin == "mutation").sum() == 9
    for a in c.arch:
        sp.from_json(json.loads(a)).arch.validate(GS)
    assert (c.peak_sram_bytes <= 2500).all() and (c.weights_bytes <= 4500).all()
    assert res.hypervolume > 0


def test_evaluate_arch_prunes_and_remeasures():
    from helpers import data, train

    ds = data.load("mnist", seed=0).subset(n_train=600, n_val=200, seed=0)
    arch = GranularArch(blocks=[ConvBlock([ConvLayer("conv", filters=8, kernel=3, stride=2)]),
                                ConvBlock([ConvLayer("conv", filters=8, kernel=3)], pool=True)],
                        pooling="avg", dense=[spaces.DenseLayer(16)])
    r = munas.evaluate_arch(munas.Candidate(arch, 0.5), ds, 1, seed=0, lr=1e-2)
    json.dumps(r)                                            # JSON-able for the trial store
    pruned = spaces.from_json(r["pruned_arch"])
    widths = [l.filters for b in pruned.blocks for l in b.layers]
    assert sum(widths) == 8 and min(widths) >= 1          # 50 % of the 16 conv channels
    assert [d.units for d in pruned.dense] == [16]        # hidden dense layers are not pruned
    assert r["achieved_sparsity"] == pytest.approx(0.5, abs=0.05)
    assert r["peak_sram_bytes"] == munas.arch_resources(pruned, (28, 28, 1), 10)["peak_sram_bytes"]
    assert 0.0 <= r["error"] <= 1.0 and r["epochs_run"] == 1
    d = munas.evaluate_arch(arch, ds, 1, seed=0, lr=1e-2)
    assert d["sparsity"] == 0.0 and spaces.from_json(d["pruned_arch"]).hash == arch.hash


def test_release_graphs_frees_each_trials_train_step():
    """Keras 3's fit leaves a CustomGradient in TF's gradient registry that keeps the whole
    traced train step alive; release_graphs removes it, and the model still trains after."""
    import gc
    import weakref

    import keras
    from tensorflow.python.framework import func_graph, ops

    from helpers import data, train

    reg = ops._gradient_registry._registry
    ds = data.load("mnist", seed=0).subset(n_train=128, n_val=64, seed=0)

    def custom():
        return {k for k in reg if str(k).startswith("CustomGradient-")}

    def all_steps():
        gc.collect()
        return [o for o in gc.get_objects()
                if isinstance(o, func_graph.FuncGraph) and o.name == "one_step_on_data"]

    older = weakref.WeakSet(all_steps())   # left alive by earlier tests in this process

    def train_steps():
        return [weakref.ref(o) for o in all_steps() if o not in older]

    def one(seed):
        m = spaces.build(_chain(), ds.input_shape, ds.num_classes, seed=seed)
        train.compile_model(m, 1e-2)
        m.fit(ds.x_train, ds.y_train, batch_size=64, epochs=1, verbose=0)
        return m

    before = custom()
    del_me = one(0)                    # without the context manager: the leak exists here
    del del_me
    leaked = custom() - before
    assert leaked and train_steps(), "Keras/TF no longer leak; release_graphs may be removed"
    for k in leaked:
        reg.pop(k)
    keras.backend.clear_session()
    assert not train_steps()           # what was kept alive was only that registry entry

    before = custom()
    with train.release_graphs():
        m = one(1)
    assert custom() == before
    m.fit(ds.x_train, ds.y_train, batch_size=64, epochs=1, verbose=0)   # still trainable
    with train.release_graphs():
        del m
    assert custom() == before and not train_steps()
