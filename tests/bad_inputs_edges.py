"""Bad inputs at the edges of a series and of a run: change without an order, finetune's CLI.

Rows of the bad-input matrix (``tests/whole/test_bad_inputs.py`` runs and renders them).
``cases(Case)`` builds them with the matrix's own row type.
"""

from __future__ import annotations

from pathlib import Path


def _fronts(days: list[str | None]):
    """Straight fronts across a 1 km box, retreating 20 m a date, on ``days`` (None: NaT)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    index = pd.DatetimeIndex([pd.NaT if d is None else d for d in days], name="time")
    return gpd.GeoDataFrame(
        geometry=[shapely.LineString([(-100, y), (1100, y)])
                  for y in 3000 - 20.0 * pd.RangeIndex(len(days))], index=index, crs=32624)


def _change(days: list[str | None]):
    import shapely

    from xcalving.vector import terminus_change

    box = shapely.Polygon([(0, 0), (1000, 0), (1000, 5000), (0, 5000)])
    return terminus_change(_fronts(days), box, ocean=shapely.Point(500, 6000))


def _cli_out_in_package(tmp: Path) -> None:
    import torch

    import xcalving
    from xcalving.cli import main
    from xcalving.model import ASPPUNet, save_model
    from xcalving.scaling import CAFFE_SCALING
    from xcalving.testing import write_fixture_tree

    torch.manual_seed(0)
    base = save_model(ASPPUNet(width=4), tmp / "base.safetensors", scaling=CAFFE_SCALING)
    tree = write_fixture_tree(tmp / "caffe", n_train=1)
    out = Path(xcalving.__file__).parent / "model" / "weights" / "mine.safetensors"
    raise SystemExit(main(["finetune", str(base), str(tree), "--out", str(out),
                           "--max-steps", "1", "--caffe-spacing", "unknown", "--no-score"]))


def cases(Case) -> list:  # noqa: N803  (the row class of the matrix)
    """The rows, built with ``Case(id, area, what, error, builtin, match, run)``."""
    return [
        Case("change-two-fronts-one-date", "change", "two fronts on one date",
             "InputError", "ValueError",
             r"1 date\(s\) hold more than one front \(2020-01-02\).*one front per date.*"
             r"fronts\[~fronts\.index\.duplicated\(keep='first'\)\]",
             lambda t: _change(["2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03"])),
        Case("change-no-date", "change", "a front without a date (``NaT``)", "InputError",
             "ValueError", r"1 of 3 fronts have no date.*fronts\[fronts\.index\.notna\(\)\]",
             lambda t: _change(["2020-01-01", None, "2020-01-03"])),
        Case("cli-finetune-out-in-package", "CLI", "``xcalving finetune --out`` inside the "
             "installed package", "exit 1", "-",
             r"--out: .* inside the installed xcalving package", _cli_out_in_package),
    ]
