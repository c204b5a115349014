import pickle
import types
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from skimage.morphology import disk

import xcalving
from xcalving.data.augment import thicken_front
from xcalving.data.caffe import caffe_to_zarr, shipped_scenes
from xcalving.data.sampling import epoch_order, shard
from xcalving.data.stream import PatchStream
from xcalving.errors import InputError, InputTypeError
from xcalving.scaling import CAFFE_SCALING, fill_value, to_network_input
from xcalving.testing import write_fixture_tree


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """30 patches of 32 x 32 from five glaciers, in chunks of 4 (the last one holds 2)."""
    root = tmp_path_factory.mktemp("stream")
    tree = write_fixture_tree(root, n_train=5, shape=(64, 80))
    return caffe_to_zarr(tree, root / "p.zarr", window=32, chunk_samples=4, progress=False)


@pytest.fixture(scope="module")
def cube(store):
    return xcalving.open_cube(store).load()


def _shards(store, world_size, num_workers, epoch=0, **kwargs):
    """What every (rank, worker) reads in one epoch: {rank: [indices of worker 0, 1, ...]}."""
    out = {}
    for rank in range(world_size):
        stream = PatchStream(store, rank=rank, world_size=world_size, **kwargs)
        stream.set_epoch(epoch)
        out[rank] = [stream.indices(w, num_workers) for w in range(num_workers)]
    return out


# --- order and sharding -----------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 9), st.integers(1, 7), st.integers(1, 4),
       st.integers(0, 3), st.booleans())
def test_shards_cover_every_sample_with_equal_counts_per_rank(n, chunk_len, world_size,
                                                              num_workers, epoch, shuffle):
    selected = np.sort(np.random.default_rng(n).choice(3 * n, n, replace=False))
    order = epoch_order(selected, chunk_len, seed=1, epoch=epoch, shuffle=shuffle)
    assert sorted(order.tolist()) == selected.tolist()
    per_rank = [np.concatenate([shard(order, rank=r, world_size=world_size, worker=w,
                                      num_workers=num_workers) for w in range(num_workers)])
                for r in range(world_size)]
    assert {len(p) for p in per_rank} == {-(-len(selected) // world_size)}
    seen = np.concatenate(per_rank)
    assert set(seen.tolist()) == set(selected.tolist())
    if len(selected) % world_size == 0:
        assert len(seen) == len(set(seen.tolist()))
    # chunks stay together: the chunk id changes once per chunk at most
    assert np.count_nonzero(np.diff(order // chunk_len)) == len(np.unique(order // chunk_len)) - 1


@pytest.mark.parametrize(("world_size", "num_workers"), [(1, 1), (1, 3), (2, 2), (3, 1), (4, 2)])
def test_store_shards_cover_all_samples(store, world_size, num_workers):
    shards = _shards(store, world_size, num_workers, epoch=2, seed=5)
    counts = {rank: sum(len(piece) for piece in pieces) for rank, pieces in shards.items()}
    assert set(counts.values()) == {-(-30 // world_size)}
    seen = Counter(int(i) for pieces in shards.values() for piece in pieces for i in piece)
    assert set(seen) == set(range(30))
    if 30 % world_size == 0:
        assert set(seen.values()) == {1}
    assert PatchStream(store, rank=0, world_size=world_size).n_samples == counts[0]


def test_iteration_per_simulated_worker_yields_its_shard(store, monkeypatch):
    streamed = []
    for worker in range(3):
        info = types.SimpleNamespace(id=worker, num_workers=3)
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda info=info: info)
        stream = PatchStream(store, rank=1, world_size=2, shuffle_buffer=8, front_dilation=0)
        got = [int(item["index"]) for item in stream]
        assert sorted(got) == sorted(stream.indices(worker, 3).tolist())
        streamed += got
    assert len(streamed) == 15 and len(set(streamed)) == 15


def test_epochs_reshuffle_and_seed_epoch_fix_the_order(store):
    def order(epoch, seed=0):
        stream = PatchStream(store, seed=seed, shuffle_buffer=8, front_dilation=0)
        stream.set_epoch(epoch)
        return [int(item["index"]) for item in stream]

    first = order(0)
    assert sorted(first) == list(range(30))
    assert order(0) == first
    assert order(1) != first and order(0, seed=1) != first
    assert PatchStream(store).indices().tolist() != PatchStream(store, seed=1).indices().tolist()


def test_no_shuffle_keeps_store_order(store):
    stream = PatchStream(store, shuffle=False, front_dilation=0)
    assert [int(item["index"]) for item in stream] == list(range(30))


def test_glacier_and_split_selection(store, cube):
    stream = PatchStream(store, glaciers=["DBE", "SI"])
    picked = stream.indices()
    assert set(cube.glacier.values[picked].tolist()) == {"DBE", "SI"} and stream.n_samples == 12
    assert PatchStream(store, glaciers="Jorum", split="train").n_samples == 6
    with pytest.raises(InputError, match="Did you mean 'Jorum'"):
        PatchStream(store, glaciers="Jorun")
    with pytest.raises(InputError, match="'test' is not in the store"):
        PatchStream(store, split="test")


def test_steps_per_epoch(store):
    stream = PatchStream(store, rank=0, world_size=4)
    assert stream.n_samples == 8
    assert stream.steps_per_epoch(3) == 3 and stream.steps_per_epoch(3, drop_last=True) == 2
    assert stream.steps_per_epoch(3, num_workers=2) == 4  # two pieces of 4: 2 batches each
    with pytest.raises(InputError, match="batch_size"):
        stream.steps_per_epoch(0)


# --- items ------------------------------------------------------------------------------------
def test_items_without_augmentation_match_the_store(store, cube):
    for item in PatchStream(store, front_dilation=0, shuffle=False):
        i = int(item["index"])
        sar = cube.sar.values[i]
        assert item["image"].dtype == torch.float32 and item["image"].shape == (1, 32, 32)
        expected = np.nan_to_num(to_network_input(sar, "uint8", CAFFE_SCALING),
                                 nan=fill_value(CAFFE_SCALING))
        np.testing.assert_allclose(item["image"][0].numpy(), expected)
        assert item["zones"].dtype == torch.int64
        np.testing.assert_array_equal(item["zones"].numpy(), cube.zones.values[i])
        assert item["front_raw"].dtype == torch.uint8 and item["front"].dtype == torch.float32
        np.testing.assert_array_equal(item["front_raw"][0].numpy(), cube.front.values[i])
        np.testing.assert_array_equal(item["front"][0].numpy(), cube.front.values[i])
        np.testing.assert_array_equal(item["valid"].numpy(), sar != 0)
    assert (cube.sar.values == 0).any()  # the fixture has no-data pixels to check


def test_thicken_front_is_a_disk_dilation():
    for radius in range(6):
        point = np.zeros((15, 15), np.uint8)
        point[7, 7] = 1
        assert thicken_front(point, radius).sum() == disk(radius).sum()
    line = np.zeros((40, 40), np.uint8)
    line[20, :] = 1
    thick = thicken_front(line, 10)
    assert thick[:, 5].sum() == 21 and thick[10, 5] and not thick[9, 5]
    assert not thicken_front(np.zeros((5, 5)), 3).any()


def test_stream_front_is_thickened(store, cube):
    for item in PatchStream(store, front_dilation=3, shuffle=False):
        raw = item["front_raw"][0].numpy().astype(bool)
        expected = thicken_front(raw, 3)
        np.testing.assert_array_equal(item["front"][0].numpy(), expected)
        assert (expected >= raw).all()


@pytest.fixture(scope="module")
def marker_store(tmp_path_factory):
    """One 48 x 48 scene whose labels are asymmetric shapes drawn into the image too."""
    root = tmp_path_factory.mktemp("marker")
    data_raw = root / "data_raw"
    stem = "DBE_2011-11-13_TSX_7_1_034"
    zones = np.full((48, 48), 127, np.uint8)
    zones[5:20, 8:12] = 64  # rock: an L
    zones[16:20, 8:30] = 64
    zones[30:, 30:] = 254  # ocean
    zones[:6, 40:] = 0  # no data in one corner
    front = np.zeros((48, 48), np.uint8)
    front[30, 30:] = 255
    front[30:40, 30] = 255
    sar = np.where(zones == 64, 230, 40).astype(np.uint8)
    sar[zones == 0] = 0
    for folder, suffix, grey in (("sar_images", "", sar), ("zones", "_zones", zones),
                                 ("fronts", "_front", front)):
        (data_raw / folder / "train").mkdir(parents=True)
        Image.fromarray(grey).save(data_raw / folder / "train" / f"{stem}{suffix}.png")
    return caffe_to_zarr(data_raw, root / "m.zarr", window=48, progress=False)


def _dihedral(a):
    return [np.rot90(b, k) for b in (a, a[::-1]) for k in range(4)]


def test_augmentation_keeps_image_and_labels_aligned(marker_store):
    cube = xcalving.open_cube(marker_store).load()
    zones0, front0 = cube.zones.values[0], cube.front.values[0]
    layouts = set()
    for epoch in range(24):
        stream = PatchStream(marker_store, augment=True, front_dilation=0, seed=3)
        stream.set_epoch(epoch)
        item = next(iter(stream))
        zones, image = item["zones"].numpy(), item["image"][0].numpy()
        front, valid = item["front_raw"][0].numpy(), item["valid"].numpy()
        k = [np.array_equal(zones, z) for z in _dihedral(zones0)].index(True)
        layouts.add(k)
        np.testing.assert_array_equal(front, _dihedral(front0)[k])  # same transform as zones
        np.testing.assert_array_equal(valid, zones != 0)  # the no-data corner moved along
        assert (image[~valid] == np.float32(fill_value(CAFFE_SCALING))).all()
        # the bright L in the image follows the rock L of the labels
        assert image[zones == 1].mean() > image[zones == 2].mean() + 1.0
    assert len(layouts) >= 5


def test_augmentation_is_random_but_reproducible(marker_store):
    def images(seed):
        return [item["image"] for item in PatchStream(marker_store, augment=True, seed=seed)]

    a, b, c = images(0), images(0), images(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    plain = next(iter(PatchStream(marker_store)))["image"]
    assert not torch.equal(a[0], plain)  # speckle and jitter changed the values


# --- in a DataLoader and end to end -----------------------------------------------------------
def test_dataloader_with_two_workers_covers_every_sample_once(store):
    stream = PatchStream(store, augment=True, shuffle_buffer=4)
    loader = torch.utils.data.DataLoader(stream, batch_size=4, num_workers=2)
    batches = list(loader)
    indices = torch.cat([b["index"] for b in batches]).tolist()
    assert sorted(indices) == list(range(30))
    assert len(batches) == stream.steps_per_epoch(4, num_workers=2)
    assert batches[0]["image"].shape == (4, 1, 32, 32) and batches[0]["valid"].dtype == torch.bool


def test_shipped_scenes_split_by_glacier(tmp_path):
    store = caffe_to_zarr(shipped_scenes(), tmp_path / "p.zarr", window=128,
                          pixel_spacing=None, progress=False)
    train = PatchStream(store, glaciers=["DBE", "JAC", "SI"], augment=True)
    valid = PatchStream(store, glaciers="Jorum", shuffle=False)
    assert (train.n_samples, valid.n_samples) == (52, 32)
    assert not set(train.indices().tolist()) & set(valid.indices().tolist())
    item = next(iter(train))
    assert item["image"].shape == (1, 128, 128) and torch.isfinite(item["image"]).all()


def test_stream_pickles_for_spawned_workers(store):
    stream = PatchStream(store, shuffle=False, front_dilation=0)
    next(iter(stream))
    clone = pickle.loads(pickle.dumps(stream))
    assert [int(i["index"]) for i in clone] == list(range(30))


# --- bad input --------------------------------------------------------------------------------
def test_bad_arguments(store, tmp_path):
    with pytest.raises(FileNotFoundError, match="caffe_to_zarr"):
        PatchStream(tmp_path / "missing.zarr")
    with pytest.raises(InputTypeError, match="Scaling"):
        PatchStream(store, scaling="caffe")
    with pytest.raises(InputError, match="rank"):
        PatchStream(store, rank=2, world_size=2)
    with pytest.raises(InputError, match="front_dilation"):
        PatchStream(store, front_dilation=-1)
    with pytest.raises(InputError, match="epoch"):
        PatchStream(store).set_epoch(-1)
    cube_store = xcalving.write_cube(xcalving.open_cube(store)[["sar"]], tmp_path / "s.zarr")
    with pytest.raises(InputError, match="not a patch store"):
        PatchStream(cube_store)


def test_store_as_fsspec_url(store):
    stream = PatchStream(f"file://{store}", glaciers="SI", storage_options={"auto_mkdir": False},
                         front_dilation=0)
    assert sorted(int(item["index"]) for item in stream) == stream.selected.tolist()


def test_physical_augmentation_multilooks_or_blurs_and_keeps_no_data():
    """'physical': half the scenes look as coarser or smoother data resampled to the grid."""
    from xcalving.data.augment import resampled

    rng = np.random.default_rng(0)
    amplitude = rng.uniform(1, 255, (64, 64)).astype(np.float32)
    amplitude[:, :8] = 0  # a swath edge of no data
    changed = 0
    for _ in range(40):
        out = resampled(amplitude, rng)
        assert out.shape == amplitude.shape and out.dtype == np.float32
        assert (out[:, :8] == 0).all() and (out[:, 8:] >= 1).all() and out.max() <= 255
        if not np.array_equal(out, amplitude):
            changed += 1
            assert out[:, 8:].std() < amplitude[:, 8:].std()  # smoother: speckle averaged
    assert 8 < changed < 32  # about half


def test_cli_caffe_copy_at_a_physical_spacing(tmp_path):
    from xcalving.cli import main
    from xcalving.data.caffe import shipped_scenes

    out = tmp_path / "p75.zarr"
    assert main(["caffe", str(shipped_scenes()), "--caffe256", "--spacing", "75",
                 "--window", "128", "--out", str(out)]) == 0
    store = xcalving.open_cube(out)
    assert float(store.pixel_spacing.values[0]) == 75.0 and store.attrs["pixel_spacing"] == 75.0
