"""The pure logic of the CaFFe benchmark scripts: scene picks and the nested recipe choice."""

from __future__ import annotations

import doctest

import pandas as pd
import pytest

from benchmarks import finetune_caffe256


def test_doctests_of_the_finetune_benchmark_pass():
    result = doctest.testmod(finetune_caffe256)
    assert result.attempted >= 2
    assert result.failed == 0


def _row(glacier: str, ratio: float) -> dict:
    return {"glacier": glacier, "ratio": ratio, "zero_shot": {"mde_px": 20.0, "n_no_front": 0},
            "adapted": {"mde_px": 20.0 * ratio, "n_no_front": 1}}


def test_a_glacier_is_never_scored_under_the_recipe_it_chose_alone():
    # "greedy" is best on DBE by far but worse on every other glacier: only DBE would choose
    # it for itself, so DBE must be reported under the recipe the others chose.
    tables = {"greedy": [_row("DBE", 0.1), _row("JAC", 0.8), _row("Jorum", 0.9), _row("SI", 0.9)],
              "steady": [_row("DBE", 0.6), _row("JAC", 0.5), _row("Jorum", 0.5), _row("SI", 0.5)]}
    rows = finetune_caffe256.nested_choice(tables)
    chosen = {r["glacier"]: (r["chosen"], r["ratio"]) for r in rows}
    assert chosen["DBE"] == ("steady", 0.6)
    assert chosen["JAC"] == ("steady", 0.5)
    assert chosen["all"][0] == "steady"
    assert rows[0]["chosen_by"] == {"greedy": pytest.approx(0.867, abs=1e-3), "steady": 0.5}
    text = finetune_caffe256.nested_table(rows)
    assert "| DBE | steady |" in text and "choose **steady**" in text


def test_scene_picks_follow_the_sensor_mix_and_spread_over_dates():
    rows = pd.DataFrame({"stem": [f"s{i}" for i in range(10)],
                         "satellite": ["TSX"] * 7 + ["ERS"] * 3,
                         "date": pd.date_range("2000", periods=10, freq="YS")})
    picked = finetune_caffe256.pick_scenes(rows, 5)
    assert picked["satellite"].value_counts().to_dict() == {"TSX": 4, "ERS": 1}
    tsx = picked[picked["satellite"] == "TSX"]["stem"].tolist()
    assert tsx[0] == "s0" and tsx[-1] == "s6"  # the first and last dates of the sensor


def test_replay_picks_never_take_the_adapted_glacier():
    glaciers = finetune_caffe256.GLACIERS
    catalog = pd.DataFrame({"stem": [f"{g}_{i}" for g in glaciers for i in range(6)],
                            "glacier": [g for g in glaciers for _ in range(6)],
                            "satellite": "TSX",
                            "date": list(pd.date_range("2000", periods=6, freq="YS")) * 4})
    for glacier in glaciers:  # the same catalog serves every fold, each its own picks
        picks = finetune_caffe256.replay_picks(catalog, glacier, 2)
        assert glacier not in set(picks["glacier"])
        assert picks["glacier"].value_counts().to_dict() == {
            g: 2 for g in glaciers if g != glacier}
    assert finetune_caffe256.replay_picks(catalog, "DBE", 0) is None


def _fold_rows(label: str, mdes: tuple[float, ...], no_front: int = 0) -> list[dict]:
    return [{"recipe": label, "held_out": g, "mde_px": m / 75, "mde_m": m, "n_no_front": no_front,
             "n_scenes": 50, "epochs": 5} for g, m in zip(("DBE", "JAC", "Jorum", "SI"), mdes,
                                                           strict=True)]


def test_the_seed_rule_needs_the_seed_mean_the_ensemble_and_every_fold_with_fronts():
    from benchmarks import logo_caffe256 as logo

    base = [*_fold_rows("b0", (3000,) * 4), *_fold_rows("b1", (4000,) * 4),
            *_fold_rows("ensemble(b0+b1)", (2900,) * 4)]
    cand = [*_fold_rows("c0", (2800,) * 4), *_fold_rows("c1", (3900,) * 4)]
    ens = ("ensemble(c0+c1)", "ensemble(b0+b1)")
    rule = logo.seed_rule([*base, *cand, *_fold_rows(ens[0], (2800,) * 4)],
                          ["c0", "c1"], ["b0", "b1"], ens)
    assert rule["candidate_wins"] and rule["seed_means"] == (3350.0, 3500.0)
    # an ensemble no better than the baseline's loses, whatever the seeds say
    worse = logo.seed_rule([*base, *cand, *_fold_rows(ens[0], (2950,) * 4)],
                           ["c0", "c1"], ["b0", "b1"], ens)
    assert not worse["candidate_wins"]
    # a seed leaving more than 10 % of a fold's scenes without a front is not eligible
    blank = [*base, *_fold_rows("c0", (2800,) * 4, no_front=6), *_fold_rows("c1", (3900,) * 4),
             *_fold_rows(ens[0], (2800,) * 4)]
    assert not logo.seed_rule(blank, ["c0", "c1"], ["b0", "b1"], ens)["eligible"]
    with pytest.raises(SystemExit, match="not scored on all four folds"):
        logo.seed_rule([*base, *cand[:3], *_fold_rows(ens[0], (2800,) * 4)],
                       ["c0", "c1"], ["b0", "b1"], ens)
