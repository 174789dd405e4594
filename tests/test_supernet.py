"""OFA supernet: elastic weight slicing == standalone model, channel sorting, kernel
transformation, checkpoint resume, predictor, constrained MCUNet evolution."""
import numpy as np
import pytest

from helpers import resources, search, spaces
from helpers.methods import ofa as supernet

INPUT = (12, 12, 1)
SPACE = spaces.BlockSpace(stages=((16, 2), (24, 2)), stem=(8, 2), first_channels=8)


@pytest.fixture(scope="module")
def net():
    sn = supernet.Supernet(SPACE, 0.5, [8, 12], INPUT, 5, seed=0)
    # make the check non-trivial: random BN affine parameters and kernel transforms
    rng = np.random.default_rng(0)
    V = sn._tf_vars()
    for n in sn.names:
        if n.endswith("_bn_g") or n.endswith("_bn_b") or "_T" in n:
            V[n].assign(V[n].numpy() + 0.3 * rng.standard_normal(V[n].shape).astype(np.float32))
    return sn


def _x(n, seed=0):
    return np.random.default_rng(seed).random((n,) + INPUT, dtype=np.float32)


def test_extracted_subnet_equals_standalone_model(net):
    rng = np.random.default_rng(1)
    x_cal, x = _x(64), _x(16, 1)
    outs = []
    archs = [net.full_arch(8), net.sample_arch(rng), net.sample_arch(rng),
             spaces.BlockArch(resolution=12, width=0.5, space=net.space,
                              stages=[[(3, 3), (4, 5)], [(3, 3), (6, 3)]])]
    for a in archs:
        stats = net.calibrate(a, x_cal)
        z_super = net.predict(a, x, stats)
        model = net.extract(a, stats=stats)      # spaces.build + inherited weights
        convs = [l for l in model.layers if type(l).__name__ in ("Conv2D", "DepthwiseConv2D")]
        assert len(convs) == 3 + 3 * sum(len(s) for s in a.stages)
        z_alone = model.predict(x, verbose=0)
        scale = np.abs(z_alone).max()
        assert scale > 1e-3
        np.testing.assert_allclose(z_super, z_alone, atol=1e-4 * max(1.0, scale), rtol=0)
        outs.append(z_super)
    # different subnets really compute different functions
    assert np.abs(outs[1] - outs[2]).max() > 1e-3


def test_kernel_transformation(net):
    V = net._tf_vars()
    ks = net._kernels(V, "s0b0").numpy()              # [3 kernels, 7, 7, C, 1]
    k7 = V["s0b0_dw"].numpy()
    np.testing.assert_array_equal(ks[2], k7)
    # the 5x5 kernel is T5 applied to the centre crop, zero-padded to 7x7
    crop = k7[1:6, 1:6, :, 0].reshape(25, -1)           # (25, C)
    k5 = (V["s0b0_T5"].numpy() @ crop).reshape(5, 5, -1)
    np.testing.assert_allclose(ks[1][1:6, 1:6, :, 0], k5, atol=1e-5)
    assert np.all(ks[1][0] == 0) and np.all(ks[0][:2] == 0)
    fresh = supernet.Supernet(SPACE, 0.5, [12], INPUT, 5, seed=3)
    Vf = fresh._tf_vars()
    kf = fresh._kernels(Vf, "s1b1").numpy()
    np.testing.assert_allclose(kf[0][2:5, 2:5], Vf["s1b1_dw"].numpy()[2:5, 2:5], atol=1e-6)


def test_channel_sorting_keeps_every_function(net):
    a = net.full_arch(12)
    rng = np.random.default_rng(5)
    b = net.sample_arch(rng)
    x_cal, x = _x(64), _x(8, 2)
    before = [net.predict(a, x, net.calibrate(a, x_cal))]
    w0 = net.get_weights()
    net.sort_channels()
    after = [net.predict(a, x, net.calibrate(a, x_cal))]
    np.testing.assert_allclose(before[0], after[0], atol=1e-4)
    # importance now decreases along the expanded channels
    imp = np.abs(net.get_weights()["s0b1_project"]).sum(axis=(0, 1, 3))
    assert np.all(np.diff(imp) <= 1e-6)
    # a smaller expansion uses the most important channels, which is a change
    assert not np.allclose(w0["s0b1_project"], net.get_weights()["s0b1_project"])
    assert net.check_arch(b) is b


def test_check_arch_rejects_foreign_archs(net):
    with pytest.raises(ValueError, match="width"):
        net.check_arch(spaces.BlockArch(resolution=12, width=0.3, space=net.space,
                                        stages=[[(3, 3)] * 2] * 2))
    with pytest.raises(ValueError, match="resolution"):
        net.check_arch(spaces.BlockArch(resolution=10, width=0.5, space=net.space,
                                        stages=[[(3, 3)] * 2] * 2))
    with pytest.raises(ValueError, match="kernel"):
        net.check_arch(spaces.BlockArch(resolution=12, width=0.5, space=net.space,
                                        stages=[[(3, 9)] * 2] * 2))
    with pytest.raises(ValueError, match="epochs"):
        supernet.progressive_schedule(SPACE, [1, 1])


def test_schedules():
    ps = supernet.progressive_schedule(spaces.BlockSpace(), [2, 1, 1, 1, 1, 1])
    assert [p.name for p in ps] == ["full", "kernel", "depth-top2", "depth-all",
                                    "expand-top2", "expand-all"]
    assert ps[0].kernels == (7,) and ps[1].kernels == (3, 5, 7) and ps[2].depths == (3, 4)
    assert ps[4].expansions == (4, 6) and ps[4].sort_channels
    nps = supernet.no_ps_schedule(spaces.BlockSpace(), [2, 1, 1, 1, 1, 1])
    assert [(p.name, p.epochs) for p in nps] == [("full", 2), ("all-elastic", 5)]
    assert sum(p.epochs for p in nps) == sum(p.epochs for p in ps)


def test_training_resumes_after_interruption(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64,) + INPUT, dtype=np.float32)
    y = rng.integers(0, 5, 64)
    sched = supernet.progressive_schedule(SPACE, [1, 1, 0, 0, 0, 1])
    kw = dict(seed=0, batch_size=32)
    whole = supernet.Supernet(SPACE, 0.5, [8, 12], INPUT, 5, directory=tmp_path / "a", **kw)
    whole.train(x, y, sched, progress=False)
    part = supernet.Supernet(SPACE, 0.5, [8, 12], INPUT, 5, directory=tmp_path / "b", **kw)
    part.train(x, y, sched, stop_after_epochs=2, progress=False)   # "killed" after 2 epochs
    assert len(part.log.rows) == 2
    resumed = supernet.Supernet(SPACE, 0.5, [8, 12], INPUT, 5, directory=tmp_path / "b", **kw)
    log = resumed.train(x, y, sched, progress=False)
    assert [r["phase"] for r in log.rows] == ["full", "kernel", "expand-all"]
    wa, wb = whole.get_weights(), resumed.get_weights()
    for n in wa:
        np.testing.assert_allclose(wa[n], wb[n], atol=2e-5, err_msg=n)
    # a finished run resumes to a no-op
    again = supernet.Supernet(SPACE, 0.5, [8, 12], INPUT, 5, directory=tmp_path / "b", **kw)
    assert len(again.train(x, y, sched, progress=False).rows) == 3
    # a different configuration refuses the checkpoint
    other = supernet.Supernet(SPACE, 0.5, [12], INPUT, 5, directory=tmp_path / "b", **kw)
    with pytest.raises(ValueError, match="different supernet"):
        other.train(x, y, sched, progress=False)


def test_predictor_learns_an_additive_accuracy():
    sp = spaces.BlockSpace(widths=(0.5,), resolutions=(20, 28))
    rng = np.random.default_rng(0)
    archs = [spaces.BlockArch.random(rng, space=sp) for _ in range(120)]
    acc = np.array([0.9 + 0.01 * (a.resolution == 28) + 0.002 * sum(len(s) for s in a.stages)
                    + 0.001 * sum(e for s in a.stages for e, _ in s) / 10 for a in archs])
    p = supernet.AccuracyPredictor(sp, "ridge").fit(archs[:100], acc[:100])
    rmse = np.sqrt(np.mean((p.predict(archs[100:]) - acc[100:]) ** 2))
    assert rmse < 0.003, rmse   # the target's spread is ~0.01
    assert p.cv_rmse(archs, acc) < 0.003
    with pytest.raises(ValueError, match="kind"):
        supernet.AccuracyPredictor(sp, "forest")


def test_mcunet_evolution_respects_constraints(tmp_path):
    sp = spaces.BlockSpace(widths=(0.5,), resolutions=(20, 24, 28))
    space = supernet.SubnetSpace(sp)
    bounds = {"error": None, "peak_sram_bytes": 12_000, "flash_bytes": 180_000}

    def res(a):
        p = resources.profile(a, (28, 28, 1), 10, plan="tflm", table=False)
        return {"peak_sram_bytes": p.peak_sram_bytes, "flash_bytes": p.flash_bytes}

    def evaluate(a, seed):  # a stand-in for the predictor: bigger is "better"
        return {"error": 1.0 / (1.0 + resources.profile(a, (28, 28, 1), 10, table=False).macs / 1e6)}

    r = search.mcunet_evolution(space, evaluate, res, bounds=bounds, population_size=12,
                                n_mutation=6, n_crossover=6, iterations=2, seed=0,
                                directory=tmp_path / "evo", progress=False)
    c = r.completed
    assert len(c) == 12 + 2 * 12
    assert len(r.rejected) > 0                     # the constraints do bind
    assert (c.peak_sram_bytes <= 12_000).all() and (c.flash_bytes <= 180_000).all()
    best = spaces.from_json(r.best["arch"])
    p = resources.profile(best, (28, 28, 1), 10, plan="tflm", table=False)
    assert p.peak_sram_bytes <= 12_000 and p.flash_bytes <= 180_000
    assert best.width == 0.5 and best.resolution in (20, 24, 28)
    assert set(c.origin) >= {"random", "mutation", "crossover"}
