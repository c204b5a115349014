"""Small, seeded CaFFe trees for tests, examples and benchmarks: ours and yours.

The writers turn :func:`xcalving.data.synthetic.glacier_cube` scenes into CaFFe's ``data_raw``
layout, with real-looking file names and only legal grey values (zones 0/64/127/254, fronts
0/255), so :func:`xcalving.data.caffe.open_caffe` and everything after it run on them unchanged.
``import xcalving`` does not import this module.

Examples
--------
>>> import tempfile, xcalving
>>> from xcalving.data.caffe import caffe_to_zarr
>>> from xcalving.testing import write_fixture_tree
>>> data_raw = write_fixture_tree(tempfile.mkdtemp(), n_train=1)   # one 64 x 80 scene
>>> store = caffe_to_zarr(data_raw, tempfile.mkdtemp() + "/p.zarr", window=64, progress=False)
>>> xcalving.open_cube(store).sar.shape
(2, 64, 64)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from xcalving.data.synthetic import glacier_cube
from xcalving.errors import InputError, TargetExistsError
from xcalving.zones import FRONT_GREYS, ZONE_GREYS

__all__ = ["write_fixture_tree", "write_synthetic_tree"]

# The caffe package is imported inside the functions that need it: xcalving.data.caffe
# re-exports the writers below, so importing it here would make the two modules a cycle.

#: (glacier, satellite, resolution, orbit) of generated fixture scenes, train then test.
_FIXTURE_TRAIN = (("DBE", "TSX", 7, "034"), ("JAC", "TSX", 6, "005"), ("Jorum", "ERS", 20, "152"),
                  ("SI", "ENVISAT", 20, "288"), ("Crane", "PALSAR", 17, "110"))
_FIXTURE_TEST = (("COL", "TDX", 7, "092"), ("Mapple", "S1", 20, "038"))


def _fixture_names(n_train: int, n_test: int, dates: pd.DatetimeIndex) -> Iterator[tuple]:
    """(split, stem) of each fixture scene: train names first, then test names."""
    # heavy: xcalving.data.caffe.names loads torch, safetensors, tqdm
    from xcalving.data.caffe.names import SceneName

    for k, date in enumerate(dates):
        split, i = ("train", k) if k < n_train else ("test", k - n_train)
        pool = _FIXTURE_TRAIN if split == "train" else _FIXTURE_TEST
        glacier, satellite, resolution, orbit = pool[i % len(pool)]
        name = SceneName(glacier, date.date(), satellite, float(resolution), k % 6 + 1, orbit)
        yield split, name.stem


def _write_png(path: Path, grey: np.ndarray) -> None:
    """Write 8-bit grey values as a PNG, making its folder."""
    from PIL import Image  # heavy: PIL, loaded on first use

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8)).save(path)


def _write_fixture_scene(data_raw: Path, split: str, stem: str, scene: xr.Dataset,
                         bounding_boxes: bool) -> None:
    """Write one synthetic scene as CaFFe's SAR, zones and front PNGs (and a bounding box)."""
    db = scene["sar"].to_numpy()
    grey = np.rint(1 + 254 * np.clip((db + 25) / 30, 0, 1))  # the documented dB -> 8-bit rule
    _write_png(data_raw / "sar_images" / split / f"{stem}.png", np.where(np.isnan(db), 0, grey))
    zones = np.asarray(ZONE_GREYS, np.uint8)[scene["zones"].to_numpy()]
    _write_png(data_raw / "zones" / split / f"{stem}_zones.png", zones)
    front = np.asarray(FRONT_GREYS, np.uint8)[scene["front"].to_numpy()]
    _write_png(data_raw / "fronts" / split / f"{stem}_front.png", front)
    if bounding_boxes:
        rows, cols = db.shape
        box = data_raw / "bounding_boxes" / f"{stem}_bbox.txt"
        box.parent.mkdir(parents=True, exist_ok=True)
        # placeholder: the whole image as corner points; xcalving records the path only
        box.write_text(f"x,y\n0,0\n0,{rows - 1}\n{cols - 1},{rows - 1}\n{cols - 1},0\n")


def write_fixture_tree(root: str | os.PathLike[str], *, seed: int = 0, n_train: int = 3,
                       n_test: int = 0, shape: tuple[int, int] = (64, 80),
                       bounding_boxes: bool = True) -> Path:
    """Write a tiny CaFFe tree of synthetic scenes with real-looking names and legal values.

    Parameters
    ----------
    root
        Folder that receives ``data_raw/``.
    seed
        Seed of :func:`xcalving.data.synthetic.glacier_cube`; one fjord, one date per scene.
    n_train, n_test
        Number of scenes in each split (names cycle through DBE, JAC, Jorum, SI, Crane for
        train and COL, Mapple for test).
    shape
        ``(rows, cols)`` of every scene, each at least 64.
    bounding_boxes
        Also write ``bounding_boxes/<stem>_bbox.txt`` (placeholder contents: the whole image).

    Returns
    -------
    pathlib.Path
        ``root / "data_raw"``.

    Raises
    ------
    InputError
        When ``n_train`` or ``n_test`` is not a whole number >= 0, or both are 0.
    FileExistsError
        When ``root/data_raw`` exists and is not empty (it is never overwritten).

    Examples
    --------
    >>> import tempfile
    >>> from xcalving.data.caffe import open_caffe
    >>> data_raw = write_fixture_tree(tempfile.mkdtemp(), n_train=2, n_test=1)
    >>> catalog = open_caffe(data_raw)
    >>> catalog["stem"][0], catalog["split"].tolist()
    ('DBE_2011-11-13_TSX_7_1_034', ['train', 'train', 'test'])
    """
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if not isinstance(n, int | np.integer) or n < 0:
            raise InputError(f"{name} must be a whole number >= 0; got {n!r}.")
    if n_train + n_test < 1:
        raise InputError("write_fixture_tree needs at least one scene: n_train + n_test >= 1.")
    data_raw = Path(root) / "data_raw"
    if data_raw.is_dir() and any(data_raw.iterdir()):
        raise TargetExistsError(f"root: {os.fspath(data_raw)!r} exists and is not empty.")
    # 80 m pixels: the whole fjord (1.2-3 km wide, with rock, ice and a swath edge) fits the tiny
    # scenes; the spacings in the names are the real sensors', as in CaFFe
    cube, _ = glacier_cube(n_train + n_test, shape=shape, resolution=80.0, seed=seed,
                           start="2011-11-13")
    names = _fixture_names(n_train, n_test, pd.DatetimeIndex(cube["time"].to_numpy()))
    for k, (split, stem) in enumerate(names):
        _write_fixture_scene(data_raw, split, stem, cube.isel(time=k), bounding_boxes)
    return data_raw


def write_synthetic_tree(root: str | os.PathLike[str], *, train_seeds: Iterable[int] = range(40),
                         test_seeds: Iterable[int] = range(1000, 1008), n_times: int = 6,
                         shape: tuple[int, int] = (256, 256),
                         sizes: Sequence[int] | None = None,
                         spacings: Sequence[float] = (20.0,)) -> Path:
    """Write synthetic glacier scenes as a CaFFe ``data_raw`` tree, one 'glacier' per seed.

    Scene names are ``SYN<seed>_<date>_S1_20_1_001``; seeds of ``train_seeds`` go to the
    ``train`` split and those of ``test_seeds`` to ``test``, so that a network trained with
    ``xcalving train --train-split train --val-split test`` is scored on fjords it never saw.
    SAR is written with the documented dB → 8-bit rule, NaN as 0 (no data).

    Parameters
    ----------
    root
        Folder that receives ``data_raw/``.
    train_seeds, test_seeds
        Seeds of :func:`xcalving.data.synthetic.glacier_cube` for the ``train`` and ``test``
        splits; each seed is one fjord.
    n_times
        Scenes per seed, 30 days apart.
    shape
        ``(rows, cols)`` of every scene, each at least 64.
    sizes, spacings
        Scale jitter: the ``i``-th seed of a split gets square scenes of ``sizes[i % len(sizes)]``
        pixels (instead of ``shape``) at ``spacings[(i // len(sizes)) % len(spacings)]`` metres,
        the spacing its scene names record. The fjords keep their size in metres
        (:data:`xcalving.data.synthetic.UNIT_M`), so a coarser spacing draws them smaller.

    Returns
    -------
    pathlib.Path
        ``root / "data_raw"``.

    Raises
    ------
    FileExistsError
        When ``root/data_raw`` exists and is not empty (it is never overwritten).

    Examples
    --------
    >>> import tempfile
    >>> from xcalving.data.caffe import open_caffe
    >>> data_raw = write_synthetic_tree(tempfile.mkdtemp(), train_seeds=[0], test_seeds=[1000],
    ...                                 n_times=2, shape=(64, 64))
    >>> open_caffe(data_raw)["stem"].tolist()[::2]
    ['SYN0_2019-01-01_S1_20_1_001', 'SYN1000_2019-01-01_S1_20_1_001']
    """
    # heavy: xcalving.data.caffe.names loads torch, safetensors, tqdm
    from xcalving.data.caffe.names import SceneName

    data_raw = Path(root) / "data_raw"
    if data_raw.is_dir() and any(data_raw.iterdir()):
        raise TargetExistsError(f"root: {os.fspath(data_raw)!r} exists and is not empty.")
    for split, seeds in (("train", train_seeds), ("test", test_seeds)):
        n_sizes = len(sizes) if sizes else 1
        for i, seed in enumerate(seeds):
            size = shape if sizes is None else (sizes[i % n_sizes],) * 2
            spacing = float(spacings[(i // n_sizes) % len(spacings)])
            cube, _ = glacier_cube(n_times, shape=size, resolution=spacing, seed=int(seed),
                                   freq="30D")
            for k, date in enumerate(pd.DatetimeIndex(cube["time"].to_numpy())):
                stem = SceneName(f"SYN{seed}", date.date(), "S1", spacing, 1, "001").stem
                _write_fixture_scene(data_raw, split, stem, cube.isel(time=k), False)
    return data_raw
