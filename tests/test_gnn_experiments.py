"""The two graph experiments: their formulas by hand, bad options as one line, and quick runs end to end."""

import math

import pytest
import torch

from archlab.experiments.graph_inductive_bias import sbm_probabilities
from archlab.experiments.oversmoothing import mean_pairwise_distance
from archlab.utils.errors import ConfigError


def test_sbm_probabilities_invert_the_snr_at_the_mean_degree():
    for snr in (0.25, 1.0, 4.0):
        p_in, p_out = sbm_probabilities(snr, blocks=4, block_size=100, degree=20.0)
        c_in, c_out = 100 * p_in, 100 * p_out
        assert c_in + 3 * c_out == pytest.approx(20.0)  # mean degree kept
        assert (c_in - c_out) ** 2 / (4 * (c_in + 3 * c_out)) == pytest.approx(snr)  # Decelle et al. 2011
    with pytest.raises(
        ConfigError, match=r"SNR 8 is out of reach at mean degree 20 with 4 blocks .* SNR ≤ degree/4 = 5"
    ):
        sbm_probabilities(8.0, blocks=4, block_size=100, degree=20.0)


def test_mean_pairwise_distance_by_hand():
    h = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])  # pair distances 5, 10, 5; norms 0, 5, 10
    assert mean_pairwise_distance(h) == pytest.approx((5 + 10 + 5) / 3 / 5)
    assert mean_pairwise_distance(torch.ones(5, 3)) == 0.0  # every node the same: fully smoothed
    assert mean_pairwise_distance(2 * h) == pytest.approx(mean_pairwise_distance(h))  # scale-free


def test_graph_inductive_bias_quick(quick_experiment):
    exp, rec = quick_experiment(
        "graph-inductive-bias", "--set", "steps=8", "--set", "block_size=20", "--set", "models=[mlp, gcn]"
    )
    rows = rec["table"]["rows"]
    assert [r[0] for r in rows] == ["0.5", "4"]
    assert rec["table"]["columns"][3:] == ["MLP (features only) acc %", "GCN acc %"]
    assert rec["figures"] == ["figures/accuracy_vs_snr.png"]
    assert "SNR 4" in rec["verdict"] and rec["supported"] in (True, False, None)
    assert math.isclose(float(rows[1][1]), sbm_probabilities(4.0, 4, 20, 20.0)[0], abs_tol=1e-3)


def test_oversmoothing_quick(quick_experiment):
    exp, rec = quick_experiment("oversmoothing", "--set", "steps=8", "--set", "depths=[2, 6]")
    rows = rec["table"]["rows"]
    assert [r[0] for r in rows] == [2, 6]
    assert sorted(rec["figures"]) == ["figures/accuracy_vs_depth.png", "figures/mpd_vs_depth.png"]
    assert "Plain GCN: accuracy" in rec["verdict"]
    assert all(float(v) >= 0 for r in rows for v in (r[3], r[4]))


def test_bad_experiment_options_are_one_line(tmp_path, capsys):
    from archlab.cli import main

    code = main(["experiment", "graph-inductive-bias", "--quick", "--runs-dir", str(tmp_path), "--set", "snrs=[9]"])
    err = capsys.readouterr().err
    assert code == 2 and "SNR 9 is out of reach" in err and len(err.strip().splitlines()) == 1
    code = main(["experiment", "oversmoothing", "--quick", "--runs-dir", str(tmp_path), "--set", "depths=[1]"])
    assert code == 2 and "depths must be at least 2" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # found before a directory exists
