"""How the ``demo`` weights hold as scenes grow and pixel spacings change (a report, not asv).

MDE (pixels and metres) and dates without a front, on synthetic cubes of seeds never trained on
(the ``demo`` weights saw seeds 0-47 and 1000-1007): 256, 512, 1024 and 2048 px at 20 m, and
10 m and 40 m on their native grid and with ``resolution="model"``. Fronts come from the zones
(CaFFe's rule, 750 m).

    python benchmarks/scale_demo.py [--weights demo] [--dates 3] [--seeds 5000 5001]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

CASES = ((256, 20.0, None), (512, 20.0, None), (1024, 20.0, None), (2048, 20.0, None),
         (512, 10.0, None), (256, 40.0, None), (512, 10.0, "model"), (256, 40.0, "model"))


def score(weights: str, size: int, spacing: float, resolution: str | None, seed: int,
          dates: int) -> tuple[float, int, int]:
    """(pooled MDE in metres, dates scored, dates without a front) for one synthetic cube."""
    import xcalving
    from xcalving.data.synthetic import glacier_cube
    from xcalving.metrics import mean_distance_error

    cube, truth = glacier_cube(dates, shape=(size, size), resolution=spacing, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = xcalving.predict(cube.sar, model=weights, tile=256, overlap=64,
                                resolution=resolution)
        frame = pred.calving.fronts()
    result = mean_distance_error(frame, truth.reindex(frame.index), resolution=spacing)
    return result.mde, result.n_scored, result.n_no_front


def main() -> None:
    """Print one Markdown row per case."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default="demo")
    parser.add_argument("--dates", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[5000, 5001])
    args = parser.parse_args()
    print("| scene (px) | spacing (m) | resolution= | MDE (m) | MDE (px) | dates without front |")
    print("| ---: | ---: | --- | ---: | ---: | ---: |")
    for size, spacing, resolution in CASES:
        runs = [score(args.weights, size, spacing, resolution, s, args.dates) for s in args.seeds]
        scored = [r for r in runs if r[1]]
        mde = float(np.average([r[0] for r in scored], weights=[r[1] for r in scored])) \
            if scored else float("nan")
        missing = sum(r[2] for r in runs)
        print(f"| {size} | {spacing:g} | {resolution} | {mde:.0f} | {mde / spacing:.1f} | "
              f"{missing}/{args.dates * len(args.seeds)} |", flush=True)


if __name__ == "__main__":
    main()
