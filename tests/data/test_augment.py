"""The aimed augmentation: zoom out and in, ocean mix-up, and glacier-balanced epochs."""

import numpy as np
import pytest

from xcalving.data.augment import ocean_mixup, rezoom
from xcalving.data.sampling import balanced
from xcalving.data.stream import PatchStream
from xcalving.errors import InputError
from xcalving.zones import GLACIER, OCEAN, ROCK


def _scene(n=64):
    """Grey values, zones (rock | glacier | ocean) and a one-pixel front at the ocean's edge."""
    zones = np.full((n, n), ROCK, np.uint8)
    zones[:, n // 4:] = GLACIER
    zones[:, n // 2:] = OCEAN
    grey = np.where(zones == OCEAN, 40, np.where(zones == GLACIER, 200, 120)).astype(np.uint8)
    front = np.zeros((n, n), np.uint8)
    front[:, n // 2] = 1
    return grey, zones, front


@pytest.mark.parametrize("zoom", [0.5, 0.7, 1.0, 1.6, 2.0])
def test_rezoom_keeps_shape_classes_and_alignment(zoom):
    grey, zones, front = _scene()
    out = rezoom([grey, zones, front], np.random.default_rng(3), max_zoom=zoom, min_zoom=zoom)
    assert all(a.shape == grey.shape and a.dtype == b.dtype
               for a, b in zip(out, (grey, zones, front), strict=True))
    g, z, f = out
    assert set(np.unique(z)) <= {0, ROCK, GLACIER, OCEAN}
    # labels move with the image: each class keeps its own grey value, no data stays empty
    for cls, value in ((ROCK, 120), (GLACIER, 200), (OCEAN, 40)):
        assert (g[z == cls] == value).all()
    assert (g[z == 0] == 0).all() and not f[z == 0].any()
    if zoom < 1:  # the whole scene, shrunk: about zoom² of the patch holds data
        assert (z > 0).mean() == pytest.approx(zoom ** 2, abs=0.05)
        assert f.sum() == pytest.approx(front.sum() * zoom, abs=2)
    else:
        assert (z > 0).all()


def test_rezoom_range_is_drawn_uniformly():
    grey, zones, _ = _scene()
    rng = np.random.default_rng(0)
    shares = [(rezoom([zones], rng, max_zoom=2.0, min_zoom=0.5)[0] > 0).mean() for _ in range(200)]
    out = np.mean(np.array(shares) < 1)
    assert 0.25 < out < 0.45  # zoom < 1 for a third of [0.5, 2]


def test_ocean_mixup_touches_only_ocean_with_data():
    grey, zones, _ = _scene()
    grey[:4] = 0  # a strip without data
    partner = np.full_like(grey, 250)
    partner[-4:] = 0  # the partner lacks data there
    rng = np.random.default_rng(1)
    out = ocean_mixup(grey, zones, partner, rng, rate=1.0)
    changed = out != grey
    assert changed.any()
    assert (zones[changed] == OCEAN).all() and (grey[changed] > 0).all()
    assert not changed[-4:].any()
    w = (out[changed] - 40) / (250 - 40)
    assert np.allclose(w, w[0]) and 0.15 <= w[0] <= 0.30  # one weight per patch, in range


def test_ocean_mixup_rate_and_shape_mismatch():
    grey, zones, _ = _scene()
    partner = np.full_like(grey, 250)
    rng = np.random.default_rng(2)
    mixed = sum(not np.array_equal(ocean_mixup(grey, zones, partner, rng), grey)
                for _ in range(300))
    assert 60 < mixed < 120  # about 3 in 10
    assert ocean_mixup(grey, zones, partner[:10], rng, rate=1.0) is grey


def test_balanced_draws_every_group_equally_as_many_as_given():
    groups = np.array(["JAC"] * 50 + ["Jorum"] * 10 + ["SI"] * 30, dtype=object)
    selected = np.arange(200, 290)
    picked = balanced(selected, groups, seed=0, epoch=0)
    assert picked.size == selected.size and np.all(np.diff(picked) >= 0)
    names = groups[np.searchsorted(selected, picked)]
    assert {g: int((names == g).sum()) for g in ("JAC", "Jorum", "SI")} == \
        {"JAC": 30, "Jorum": 30, "SI": 30}
    jorum = picked[names == "Jorum"]
    assert set(jorum.tolist()) == set(range(250, 260))  # the small group: all of it, and repeats
    jac = picked[names == "JAC"]
    assert np.unique(jac).size == 30  # the large group: a subset without repeats
    again = balanced(selected, groups, seed=0, epoch=0)
    other = balanced(selected, groups, seed=0, epoch=1)
    assert np.array_equal(picked, again) and not np.array_equal(picked, other)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from xcalving.data.caffe import caffe_to_zarr
    from xcalving.testing import write_fixture_tree

    root = tmp_path_factory.mktemp("aimed")
    tree = write_fixture_tree(root, n_train=5, shape=(64, 80))
    return caffe_to_zarr(tree, root / "p.zarr", window=32, chunk_samples=4, progress=False)


def test_stream_balance_and_aimed_augmentation(store):
    plain = PatchStream(store, glaciers=["JAC", "SI"], shuffle=False)
    even = PatchStream(store, glaciers=["JAC", "SI"], balance=True, augment="aimed", seed=4)
    assert even.n_samples == plain.n_samples
    glaciers = plain._glaciers  # the glacier of each selected sample
    picked = even.indices()
    names = glaciers[np.searchsorted(plain.selected, picked)]
    counts = sorted(int((names == g).sum()) for g in ("JAC", "SI"))
    assert counts[1] - counts[0] <= 1
    items = list(even)
    assert len(items) == even.n_samples
    for item in items:  # labels and validity follow the zoom: no label outside the data
        valid = item["valid"].numpy()
        assert not item["front_raw"][0].numpy()[~valid].any()
        assert (item["zones"].numpy()[~valid] == 0).all()


def test_stream_with_robust_scaling_stretches_each_patch_after_augmentation(store):
    from xcalving.scaling import ROBUST_SCALING, fill_value

    stream = PatchStream(store, glaciers=["JAC", "SI"], scaling=ROBUST_SCALING, seed=2)
    low, high = fill_value(ROBUST_SCALING), (1 - ROBUST_SCALING.mean) / ROBUST_SCALING.std
    for item in stream:
        image, valid = item["image"].numpy()[0], item["valid"].numpy()
        assert image.min() >= low - 1e-5 and image.max() <= high + 1e-5  # stretched 0..1
        assert np.allclose(image[~valid], low)  # no data: the stretched 0
        inside = image[valid]  # each patch's own percentiles, after the speckle and contrast
        if inside.size > 100 and inside.std() > 0:
            assert np.isclose(inside.min(), low, atol=1e-5)
            assert np.isclose(inside.max(), high, atol=1e-5)
    with pytest.raises(InputError, match="context=True and a scaling with a stretch"):
        PatchStream(store, scaling=ROBUST_SCALING, context=True)


def test_stream_refuses_unknown_augment(store):
    with pytest.raises(InputError, match="augment must be one of"):
        PatchStream(store, augment="strong")
