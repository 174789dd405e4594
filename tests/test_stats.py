"""helpers.stats: intervals that cover, verdicts that decide only when the interval allows one."""
import numpy as np
import pytest

from helpers import stats


def test_mean_interval_covers_the_true_mean_about_95_percent():
    rng = np.random.default_rng(123)
    covered = 0
    reps = 200
    for i in range(reps):
        x = rng.normal(1.0, 2.0, size=40)
        ci = stats.bootstrap_ci(x, n=500, seed=i)
        covered += ci.low <= 1.0 <= ci.high
    # percentile bootstrap with n = 40 runs a little narrow; binomial sd at 95 % over 200 is 1.5 %
    assert 0.88 <= covered / reps <= 0.99, covered


def test_difference_interval_covers_the_true_difference():
    rng = np.random.default_rng(7)
    covered = sum(
        (ci := stats.diff_ci(rng.normal(0.5, 1, 30), rng.normal(0.0, 1, 30), n=400, seed=i)).low <= 0.5 <= ci.high
        for i in range(200))
    assert 0.88 <= covered / 200 <= 0.99, covered


def test_seeded_and_deterministic():
    x = np.random.default_rng(0).normal(size=25)
    a, b = stats.bootstrap_ci(x, seed=3), stats.bootstrap_ci(x, seed=3)
    assert a == b
    assert stats.bootstrap_ci(x, seed=4) != a


def test_tiny_effect_against_noise_is_undecided():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.01, 1.0, 8), rng.normal(0.0, 1.0, 8)
    v = stats.verdict(stats.diff_ci(a, b), claim="a beats b")
    assert v.word == "undecided at this budget" and v.held is None
    assert v.low < 0 < v.high


def test_big_effect_holds_and_big_opposite_effect_does_not():
    rng = np.random.default_rng(2)
    hi, lo = rng.normal(0.9, 0.01, 4), rng.normal(0.8, 0.01, 4)
    assert stats.verdict(stats.diff_ci(hi, lo), claim="a beats b").word == "held"
    assert stats.verdict(stats.diff_ci(lo, hi), claim="a beats b").word == "did not hold"
    # direction="less": the claim is that the statistic is below the null
    assert stats.verdict(stats.diff_ci(lo, hi), claim="a is worse", direction="less").word == "held"


def test_degenerate_interval_at_the_null_is_undecided():
    v = stats.verdict(stats.diff_ci(np.zeros(5), np.zeros(5)), claim="no difference")
    assert (v.low, v.high, v.word) == (0.0, 0.0, "undecided at this budget")


def test_paired_difference_removes_the_shared_noise():
    rng = np.random.default_rng(5)
    base = rng.normal(0, 5, 20)
    a, b = base + 0.3 + rng.normal(0, 0.05, 20), base
    assert stats.verdict(stats.diff_ci(a, b, paired=True), claim="a > b").word == "held"
    assert stats.verdict(stats.diff_ci(a, b), claim="a > b").word == "undecided at this budget"
    with pytest.raises(ValueError):
        stats.diff_ci(a, b[:5], paired=True)


def test_ratio_and_r2_intervals():
    rng = np.random.default_rng(6)
    x = rng.uniform(1, 10, 30)
    y = 2 * x + 1 + rng.normal(0, 0.5, 30)
    ci = stats.r2_ci(x, y, n=500)
    assert 0.9 < ci.low <= ci.estimate <= ci.high <= 1.0 and ci.n == 30
    few = stats.r2_ci(x[:3], y[:3])                      # 3 points: any resample fits almost perfectly
    assert np.isnan(few.low) and stats.verdict(few, claim="r2 > 0.95", null=0.95).word == "undecided at this budget"
    r = stats.ratio_ci(rng.normal(1.4, 0.05, 10), rng.normal(1.0, 0.05, 10), n=500)
    assert r.low < 1.4 < r.high and stats.verdict(r, claim="ratio > 1", null=1.0).word == "held"


def test_several_samples_resampled_independently_and_undefined_resamples():
    a, b = np.arange(10.0), np.arange(10.0) + 100
    ci = stats.bootstrap_ci((a, b), stat=lambda x, y: y.mean() - x.mean(), n=200)
    assert ci.n == (10, 10) and ci.low < 100 < ci.high
    # a statistic undefined on every resample gives no interval, hence no decision
    nan_ci = stats.bootstrap_ci(np.ones(5), stat=lambda x: np.nan, n=50)
    assert np.isnan(nan_ci.low) and stats.verdict(nan_ci, claim="c").word == "undecided at this budget"
    # one model per side (a smoke run): a difference but no interval, so no decision
    one = stats.verdict(stats.diff_ci([0.9], [0.1]), claim="c")
    assert one.estimate == pytest.approx(0.8) and one.word == "undecided at this budget"
    assert one.to_figures("x")["x_ci_low"] is None


def test_summary_and_figures():
    v = stats.verdict(stats.diff_ci([0.9, 0.91, 0.92, 0.93], [0.8, 0.81, 0.82, 0.83]), claim="chosen beats low")
    line = v.summary()
    assert "chosen beats low" in line and "n = 4 vs 4" in line and line.endswith("held") and "\n" not in line
    f = v.to_figures("gain")
    assert set(f) == {"gain", "gain_ci_low", "gain_ci_high", "gain_n", "gain_n_a", "gain_n_b", "gain_verdict"}
    assert f["gain_n"] == 4 and f["gain_verdict"] == "held"
    assert all(isinstance(x, (int, float, str)) for x in f.values())
    one = stats.verdict(stats.bootstrap_ci(np.arange(6.0)), claim="mean > 0").to_figures("m")
    assert one["m_n"] == 6 and "m_n_a" not in one


def test_bad_arguments():
    with pytest.raises(ValueError):
        stats.bootstrap_ci([], n=100)
    with pytest.raises(ValueError):
        stats.bootstrap_ci([1.0, 2.0], level=1.5)
    with pytest.raises(ValueError):
        stats.verdict(stats.bootstrap_ci([1.0, 2.0]), claim="c", direction="sideways")


def test_runs_interval_sees_the_run_to_run_spread_that_one_run_hides():
    rng = np.random.default_rng(1)
    # each run has its own offset (training noise) around a true effect of 0, values within a run are tight
    offsets = [-0.9, 0.6, 0.2, -0.4]
    runs = [rng.normal(m, 0.3, 20) for m in offsets]
    one = stats.verdict(stats.bootstrap_ci(runs[0], seed=0), claim="gain")
    assert one.word == "did not hold"                       # one run alone looks decided...
    ci = stats.runs_ci(runs)
    assert ci.n == 4 and ci.low < 0 < ci.high               # ...the runs say it is not
    assert stats.verdict(ci, claim="gain").word == "undecided at this budget"
    single = stats.runs_ci(runs[:1])                # one run: no interval, no decision
    assert np.isnan(single.low) and stats.verdict(single, claim="gain").word == "undecided at this budget"
    big = stats.runs_ci([rng.normal(m, 0.3, 20) for m in (2.0, 2.4, 1.7)])
    assert big.low > 1 and stats.verdict(big, claim="gain").held
    assert stats.runs_ci(runs) == ci                # deterministic


def test_runs_interval_of_a_set_statistic_per_run():
    rng = np.random.default_rng(2)
    best_diff = lambda a, b: a.min() - b.min()              # a statistic of whole sets, as a best-of or a hypervolume
    # per seed two searches' values; the gap between the arms changes sign from seed to seed
    runs = [(rng.normal(m, 0.05, 30), rng.normal(0, 0.05, 30)) for m in (-0.3, 0.25, 0.1, -0.2)]
    ci = stats.runs_ci(runs, stat=best_diff)
    assert ci.estimate == pytest.approx(np.mean([best_diff(*r) for r in runs]))
    assert ci.n == 4 and ci.low < 0 < ci.high
    one = stats.runs_ci(runs[:1], stat=best_diff)
    assert np.isnan(one.low) and one.estimate == pytest.approx(best_diff(*runs[0]))
    clear = [(rng.normal(-1, 0.05, 30), rng.normal(0, 0.05, 30)) for _ in range(3)]
    assert stats.runs_ci(clear, stat=best_diff).high < 0
    with pytest.raises(ValueError, match="non-empty"):
        stats.runs_ci([(np.array([]), np.array([1.0]))], stat=best_diff)


def test_t_quantile_matches_the_tables():
    # Student's t table (two-sided 95 %: the 0.975 quantile), and the normal limit
    for df, q in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045)):
        assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=5e-4)
    assert stats.t_quantile(0.975, 1e6) == pytest.approx(1.95996, abs=1e-4)
    assert stats.t_quantile(0.025, 4) == pytest.approx(-stats.t_quantile(0.975, 4))
    assert stats.t_cdf(stats.t_quantile(0.9, 3.5), 3.5) == pytest.approx(0.9, abs=1e-10)
    with pytest.raises(ValueError):
        stats.t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        stats.t_cdf(0.0, 0)


def test_runs_interval_covers_at_three_runs_where_a_bootstrap_does_not():
    # 400 experiments of 3 runs each (true mean 0): Student's t covers 0 about 95 % of the time,
    # a percentile bootstrap of the same 3 values far less often (why runs_ci and welch_ci use t)
    rng = np.random.default_rng(7)
    draws = rng.normal(0.0, 1.0, size=(400, 3))
    t_cover = np.mean([(c := stats.runs_ci([[v] for v in x])).low <= 0 <= c.high for x in draws])
    boot_cover = np.mean([(c := stats.bootstrap_ci(x, n=300, seed=i)).low <= 0 <= c.high for i, x in enumerate(draws)])
    assert 0.92 <= t_cover <= 0.98
    assert boot_cover < 0.85


def test_welch_interval_of_two_arms_over_seeds():
    a, b = np.array([0.91, 0.93, 0.92, 0.95]), np.array([0.90, 0.88, 0.93, 0.89])
    ci = stats.welch_ci(a, b)
    # the textbook Welch interval: d = 0.0275, se = sqrt(s_a²/4 + s_b²/4), Welch-Satterthwaite df
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 4
    df = (va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 3)
    half = stats.t_quantile(0.975, df) * np.sqrt(va + vb)
    assert ci.estimate == pytest.approx(0.0275) and ci.n == (4, 4)
    assert (ci.low, ci.high) == pytest.approx((0.0275 - half, 0.0275 + half))
    assert stats.verdict(ci, claim="a > b").word == "undecided at this budget"
    far = stats.welch_ci(a + 0.1, b)
    assert stats.verdict(far, claim="a > b").word == "held"
    one = stats.welch_ci([0.9], b)                          # one run in an arm: no interval
    assert np.isnan(one.low) and stats.verdict(one, claim="a > b").word == "undecided at this budget"


def test_proportion_interval_is_the_exact_binomial_one():
    ci = stats.proportion_ci(3, 3)                          # a bootstrap of [1, 1, 1] would say [1, 1]
    assert ci.estimate == 1 and ci.high == 1 and ci.low == pytest.approx(0.2924, abs=1e-4)
    assert stats.verdict(ci, claim="share > 1/2", null=0.5).word == "undecided at this budget"
    ci = stats.proportion_ci(2, 7)                          # Clopper-Pearson tables: [0.0367, 0.7096]
    assert (ci.low, ci.high) == pytest.approx((0.03669, 0.70958), abs=1e-5)
    assert stats.proportion_ci(0, 5).low == 0 and stats.proportion_ci(0, 5).high == pytest.approx(0.5218, abs=1e-4)
    assert np.isnan(stats.proportion_ci(0, 0).low)
    with pytest.raises(ValueError):
        stats.proportion_ci(4, 3)
