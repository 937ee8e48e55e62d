"""rll.metrics.separation: exactness against independent brute force (real MNIST subsets and adversarial
synthetic cases), the tie rule, input checking, the statistics helpers, and (slow) Table 1's
MNIST and CIFAR-10 minima on the full training sets."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import rll.metrics.separation as sep
from rll.data import load_dataset
from rll.experiments.separation import (
    load_separation_records,
    page_records,
    save_separation,
)
from rll.metrics.separation import (
    histogram,
    nearest_other_class,
    random_labels,
    separation_stats,
)

BACKENDS = ["torch"] + (["numba"] if sep._numba is not None else [])


# ---------------------------------------------------------------- helpers

def mnist(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    ds = load_dataset("mnist", split, root=root)
    return ds.images.reshape(len(ds), -1).numpy(), ds.labels.numpy()


def brute_force(q, lq, r, lr):
    """Independent reference: full distance matrix in int16, other-class mask, first argmin."""
    q = np.asarray(q).reshape(len(q), -1).astype(np.int16)
    r = np.asarray(r).reshape(len(r), -1).astype(np.int16)
    dist = np.empty((len(q), len(r)), np.int16)
    for s in range(0, len(q), 8):
        dist[s:s + 8] = np.abs(q[s:s + 8, None, :] - r[None, :, :]).max(axis=2)
    dist[np.asarray(lq)[:, None] == np.asarray(lr)[None, :]] = 999
    idx = dist.argmin(axis=1)              # numpy: first index among ties
    return dist[np.arange(len(q)), idx].astype(np.int64), idx.astype(np.int64)


def as_int(d: np.ndarray) -> np.ndarray:
    k = np.rint(d * 255)
    assert np.allclose(d * 255, k, atol=1e-9), "distances are not multiples of 1/255"
    return k.astype(np.int64)


def check(q, lq, r, lr, backend):
    d, i = nearest_other_class(q, lq, r, lr, backend=backend)
    bd, bi = brute_force(q, lq, r, lr)
    assert d.dtype == np.float64 and i.dtype == np.int64
    np.testing.assert_array_equal(as_int(d), bd)
    np.testing.assert_array_equal(i, bi)
    return d, i


@pytest.fixture(scope="module")
def mnist_subset(data_root):
    xtr, ytr = mnist(data_root, "train")
    xte, yte = mnist(data_root, "test")
    rng = np.random.default_rng(0)
    ref = rng.choice(len(xtr), 3000, replace=False)
    qry = rng.choice(len(xte), 200, replace=False)
    return xtr[ref], ytr[ref], xte[qry], yte[qry]


# ---------------------------------------------------------------- real data, exactness

@pytest.mark.parametrize("backend", BACKENDS)
def test_test_train_matches_brute_force_on_mnist(mnist_subset, backend):
    xr, yr, xq, yq = mnist_subset
    if backend == "torch":                           # torch on a shared CPU is slow
        xq, yq = xq[:100], yq[:100]
    d, i = check(xq, yq, xr, yr, backend)
    assert (yr[i] != yq).all()
    assert 0.5 < d.mean() <= 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_train_excludes_self_and_matches_brute_force(mnist_subset, backend):
    m = 1500 if backend == "numba" else 600          # torch on a shared CPU is slow
    xr, yr = mnist_subset[0][:m], mnist_subset[1][:m]
    q, lq = xr[:100].copy(), yr[:100]
    d, i = check(q, lq, xr, yr, backend)            # queries are the first 100 references
    assert (i != np.arange(100)).all() and (d > 0).all()
    # passing the very same array as queries and reference (shared layout path)
    d2, i2 = nearest_other_class(xr, yr, xr, yr, backend=backend)
    np.testing.assert_array_equal(d2[:100], d)
    np.testing.assert_array_equal(i2[:100], i)


def test_distances_agree_with_sklearn_chebyshev(mnist_subset):
    """A second, third-party reference: sklearn's exact Chebyshev search, one fit per class."""
    neighbors = pytest.importorskip("sklearn.neighbors")
    xr, yr, xq, yq = mnist_subset
    xq, yq = xq[:150], yq[:150]
    d, _ = nearest_other_class(xq, yq, xr, yr)
    expect = np.empty(len(xq))
    for c in np.unique(yq):
        nn = neighbors.NearestNeighbors(n_neighbors=1, metric="chebyshev", algorithm="brute")
        nn.fit(xr[yr != c].astype(np.float64))
        dist, _ = nn.kneighbors(xq[yq == c].astype(np.float64))
        expect[yq == c] = dist[:, 0] / 255.0
    np.testing.assert_allclose(d, expect, rtol=0, atol=1e-12)


def test_tensor_and_image_shaped_inputs_give_the_same_answer(mnist_subset):
    xr, yr, xq, yq = mnist_subset
    d, i = nearest_other_class(xq[:50], yq[:50], xr, yr)
    d4, i4 = nearest_other_class(torch.from_numpy(xq[:50].reshape(-1, 1, 28, 28).copy()),
                                 torch.from_numpy(yq[:50]),
                                 torch.from_numpy(xr.reshape(-1, 1, 28, 28).copy()),
                                 torch.from_numpy(yr))
    np.testing.assert_array_equal(d, d4)
    np.testing.assert_array_equal(i, i4)


# ---------------------------------------------------------------- synthetic, adversarial

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(6))
def test_random_small_alphabets_many_ties(backend, seed):
    """Few distinct pixel values -> massive ties; odd sizes hit every padding/tiling edge."""
    rng = np.random.default_rng(seed)
    d = [1, 3, 63, 64, 65, 130][seed]
    values = [np.array([0, 1, 2]), np.array([0, 255]), np.array([0, 128, 255]),
              np.arange(256), np.array([7]), np.array([0, 254, 255])][seed]
    nr = [1, 70, 513, 1100, 40, 600][seed] + 2
    r = values[rng.integers(0, len(values), (nr, d))].astype(np.uint8)
    lr = rng.integers(0, 3, nr)
    lr[:2] = [0, 1]                                   # at least two classes
    q = np.concatenate([r[rng.integers(0, nr, 37)],  # many exact copies
                        values[rng.integers(0, len(values), (29, d))].astype(np.uint8)])
    lq = rng.integers(0, 4, len(q))                   # label 3 is absent from the reference
    check(q, lq, r, lr, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_break_towards_smallest_reference_index(backend):
    q = np.array([[100, 100]], np.uint8)
    r = np.array([[100, 100],     # same class: ignored
                  [0, 100],       # 100 away
                  [130, 70],      # 30 away  <- first of the ties
                  [70, 130],      # 30 away
                  [130, 100],     # 30 away
                  [200, 200]], np.uint8)
    lr = np.array([0, 1, 2, 1, 2, 1])
    d, i = nearest_other_class(q, [0], r, lr, backend=backend)
    assert as_int(d).tolist() == [30] and i.tolist() == [2]
    # reversing the reference moves the winner to the (new) smallest index among the ties
    d, i = nearest_other_class(q, [0], r[::-1].copy(), lr[::-1].copy(), backend=backend)
    assert as_int(d).tolist() == [30] and i.tolist() == [1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_with_another_label_is_distance_zero(backend):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (300, 20)).astype(np.uint8)
    y = rng.integers(0, 5, 300)
    x[250] = x[17]
    x[260] = x[17]
    y[17], y[250], y[260] = 0, 3, 3
    d, i = nearest_other_class(x, y, x, y, backend=backend)
    assert d[17] == 0.0 and i[17] == 250              # first of the two duplicates
    assert d[250] == 0.0 and i[250] == 17 and d[260] == 0.0 and i[260] == 17
    check(x, y, x, y, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_maximal_distance_255_is_exact(backend):
    r = np.array([[255] * 5, [255] * 5, [0] * 5], np.uint8)
    d, i = nearest_other_class(np.zeros((2, 5), np.uint8), [0, 1], r, [1, 1, 0], backend=backend)
    assert d.tolist() == [1.0, 0.0] and i.tolist() == [0, 2]


@pytest.mark.parametrize("budget", [2 ** 9, 2 ** 13])
def test_torch_kernel_block_and_batch_edges(monkeypatch, budget):
    """Tiny memory budgets force many query blocks, reference blocks and survivor batches."""
    monkeypatch.setitem(sep._TORCH_BUDGET, "cpu", budget)
    rng = np.random.default_rng(7)
    for d, values in [(5, np.array([0, 1, 2])), (70, np.arange(256)), (130, np.array([0, 255]))]:
        r = values[rng.integers(0, len(values), (333, d))].astype(np.uint8)
        lr = rng.integers(0, 4, 333)
        q = np.concatenate([r[:40], values[rng.integers(0, len(values), (25, d))].astype(np.uint8)])
        lq = rng.integers(0, 4, len(q))
        check(q, lq, r, lr, "torch")


def test_backends_agree_on_real_data(mnist_subset):
    if len(BACKENDS) < 2:
        pytest.skip("numba not installed")
    xr, yr, xq, yq = mnist_subset
    a = nearest_other_class(xq[:100], yq[:100], xr, yr, backend="numba")
    b = nearest_other_class(xq[:100], yq[:100], xr, yr, backend="torch")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_without_numba_falls_back_to_torch_with_a_warning(monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (60, 30)).astype(np.uint8)
    y = rng.integers(0, 3, 60)
    expect = brute_force(x, y, x, y)
    monkeypatch.setattr(sep, "_numba", None)
    with pytest.warns(RuntimeWarning, match="numba is not installed"):
        d, i = nearest_other_class(x, y, x, y)
    np.testing.assert_array_equal(as_int(d), expect[0])
    np.testing.assert_array_equal(i, expect[1])
    with pytest.raises(ValueError, match="needs the numba package"):
        nearest_other_class(x, y, x, y, backend="numba")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on CPU-only machines")
def test_cuda_without_a_gpu_is_a_clear_error():
    x = np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match="no CUDA device"):
        nearest_other_class(x, [0, 1, 1], x, [0, 1, 1], device="cuda")


def test_inputs_are_not_modified():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (50, 40)).astype(np.uint8)
    y = rng.integers(0, 2, 50)
    x0, y0 = x.copy(), y.copy()
    nearest_other_class(x, y, x, y)
    assert (x == x0).all() and (y == y0).all()


# ---------------------------------------------------------------- input checking

def test_single_class_reference_is_a_clear_error():
    x = np.zeros((4, 3), np.uint8)
    with pytest.raises(ValueError, match="single class"):
        nearest_other_class(x, [0, 1, 0, 1], x, [2, 2, 2, 2])


def test_empty_inputs():
    r = np.zeros((3, 4), np.uint8)
    d, i = nearest_other_class(np.zeros((0, 4), np.uint8), np.zeros(0, np.int64), r, [0, 1, 1])
    assert d.shape == (0,) and i.shape == (0,) and d.dtype == np.float64 and i.dtype == np.int64
    with pytest.raises(ValueError, match="empty"):
        nearest_other_class(r, [0, 1, 1], np.zeros((0, 4), np.uint8), np.zeros(0, np.int64))


@pytest.mark.parametrize("bad", [np.zeros((3, 4), np.float32), np.zeros((3, 4), np.int64),
                                 torch.zeros(3, 4), np.zeros((3, 4), bool)])
def test_non_uint8_pixels_are_rejected(bad):
    ok = np.zeros((3, 4), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        nearest_other_class(bad, [0, 1, 1], ok, [0, 1, 1])
    with pytest.raises(TypeError, match="uint8"):
        nearest_other_class(ok, [0, 1, 1], bad, [0, 1, 1])


def test_bad_shapes_and_labels_are_rejected():
    ok = np.zeros((3, 4), np.uint8)
    with pytest.raises(ValueError, match=r"\(n, d\) or \(n, C, H, W\)"):
        nearest_other_class(np.zeros(4, np.uint8), [0], ok, [0, 1, 1])
    with pytest.raises(ValueError, match=r"\(n, d\) or \(n, C, H, W\)"):
        nearest_other_class(np.zeros((3, 2, 2), np.uint8), [0, 1, 1], ok, [0, 1, 1])
    with pytest.raises(ValueError, match="pixels per image"):
        nearest_other_class(np.zeros((3, 5), np.uint8), [0, 1, 1], ok, [0, 1, 1])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        nearest_other_class(ok, [0, 1], ok, [0, 1, 1])
    with pytest.raises(TypeError, match="integer"):
        nearest_other_class(ok, [0.0, 1.0, 1.0], ok, [0, 1, 1])
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        nearest_other_class([[0, 0, 0, 0]], [0], ok, [0, 1, 1])
    with pytest.raises(ValueError, match="valid choices"):
        nearest_other_class(ok, [0, 1, 1], ok, [0, 1, 1], backend="faiss")


# ---------------------------------------------------------------- statistics helpers

def test_separation_stats_keeps_distances_from_the_min_rank_th_smallest():
    d = np.array([0.0, 0.0, 0.2, 0.9, 1.0])
    s = separation_stats(d)
    assert s == {"n": 5, "dropped": 0, "min": 0.0, "mean": pytest.approx(0.42), "median": 0.2,
                 "max": 1.0}
    s = separation_stats(d, min_rank=3)
    assert s["n"] == 3 and s["dropped"] == 2 and s["min"] == 0.2
    assert s["mean"] == pytest.approx(0.7) and s["median"] == 0.9
    assert separation_stats(torch.tensor([0.5, 0.25]))["min"] == 0.25
    # by value, as the released notebook: a tie with the min_rank-th smallest stays in
    assert separation_stats(d, min_rank=2)["dropped"] == 0
    for k in (0, 6):
        with pytest.raises(ValueError, match="min_rank"):
            separation_stats(d, min_rank=k)
    with pytest.raises(ValueError, match="NaN"):
        separation_stats(np.array([0.1, np.nan]))


def test_svhn_minimum_drops_four_planted_noisy_points_as_the_released_notebook(tmp_path, svhn_mat):
    """Generated SVHN files with two planted duplicate pairs under different labels (distance 0
    for four points): the reported train–train minimum is the 5th smallest distance (the
    released notebook's ``d[d >= np.partition(d, 5)[:5].max()]``), i.e. four points dropped."""
    from rll.experiments.separation import dataset_separation

    rng = np.random.default_rng(0)
    n = 40
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = np.arange(n) % 10 + 1                            # SVHN labels 1..10
    x[..., 1], y[1] = x[..., 0], (y[0] % 10) + 1          # duplicate of image 0, another label
    x[..., 3], y[3] = x[..., 2], (y[2] % 10) + 1
    sums = {"train_32x32.mat": svhn_mat(tmp_path, "train", x, y)}
    record = dataset_separation("svhn", data_root=tmp_path, include_test=False, progress=False, checksums=sums)
    dist = np.asarray(record["distances"]["train_train"]["distance"])
    assert (dist == 0).sum() == 4
    released = dist[dist >= np.partition(dist, 5)[:5].max()]
    assert record["min_rank"] == 5 and record["train_train_min"] == pytest.approx(released.min())
    assert record["train_train_mean"] == pytest.approx(released.mean())
    assert record["train_train_min"] == pytest.approx(np.sort(dist)[4]) and np.sort(dist)[4] > 0


def test_histogram_on_unit_interval():
    counts, edges = histogram(np.array([0.0, 0.04, 0.05, 0.5, 0.99, 1.0]))
    assert counts.sum() == 6 and len(counts) == 20 and counts.dtype == np.int64
    assert edges[0] == 0.0 and edges[-1] == 1.0
    assert counts[0] == 2 and counts[1] == 1 and counts[-1] == 2


def test_random_labels_are_seeded_uniform_and_keep_the_kind():
    y = np.arange(20000) % 10
    a, b = random_labels(y, 10, seed=3), random_labels(y, 10, seed=3)
    assert (a == b).all() and a.dtype == np.int64 and a.shape == y.shape
    assert not (a == random_labels(y, 10, seed=4)).all()
    assert set(np.unique(a)) == set(range(10))
    assert np.abs(np.bincount(a) / len(a) - 0.1).max() < 0.01
    t = random_labels(torch.from_numpy(y), 10, seed=3)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.int64 and (t.numpy() == a).all()
    with pytest.raises(ValueError, match="num_classes"):
        random_labels(y, 1, seed=0)


def test_progress_bar_does_not_change_the_result(capsys):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (100, 30)).astype(np.uint8)
    y = rng.integers(0, 3, 100)
    a = nearest_other_class(x, y, x, y)
    b = nearest_other_class(x, y, x, y, progress=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# ---------------------------------------------------------------- Table 1 on the full data

@pytest.mark.slow
def test_mnist_table1_exact(data_root):
    """Table 1: MNIST train-train minimum 0.737 = 188/255, test-train 0.812 = 207/255; Table 8
    means 0.990 / 0.990."""
    xtr, ytr = mnist(data_root, "train")
    xte, yte = mnist(data_root, "test")
    d, i = nearest_other_class(xtr, ytr, xtr, ytr)
    assert as_int(d).min() == 188 and round(d.min(), 3) == 0.737
    assert round(separation_stats(d)["mean"], 3) == 0.990
    assert (ytr[i] != ytr).all()
    dt, it = nearest_other_class(xte, yte, xtr, ytr)
    assert as_int(dt).min() == 207 and round(dt.min(), 3) == 0.812
    assert round(separation_stats(dt)["mean"], 3) == 0.990
    # the reported neighbour really is at the reported distance
    k = int(np.argmin(dt))
    assert np.abs(xte[k].astype(int) - xtr[it[k]].astype(int)).max() == 207


@pytest.mark.slow
def test_cifar10_train_train_table1_exact(data_root):
    """Table 1: CIFAR-10 train-train minimum 0.212 = 54/255; Table 8 mean 0.479."""
    folder = data_root / "cifar-10-batches-bin"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    raw = np.concatenate([np.fromfile(folder / f"data_batch_{k}.bin", np.uint8).reshape(-1, 3073)
                          for k in range(1, 6)])
    x, y = raw[:, 1:], raw[:, 0].astype(np.int64)
    d, i = nearest_other_class(x, y, x, y)
    assert as_int(d).min() == 54 and round(d.min(), 3) == 0.212
    assert round(separation_stats(d)["mean"], 3) == 0.479


def test_stored_separation_arrays_come_back_exactly_and_a_changed_file_is_named(tmp_path):
    """Distances between 8-bit images are k/255: stored as grey levels they read back bit for bit."""
    levels = np.array([3, 0, 255, 17], dtype=np.uint8)
    distance = levels.astype(np.float32) / np.float32(255)
    record = {"dataset": "mnist", "random_labels": False, "seed": None, "test_split": None, "train_train_min": 0.0,
              "distances": {"train_train": {"distance": distance, "index": np.array([1, 0, 3, 2])}}}
    path = save_separation(record, tmp_path)
    (back,) = load_separation_records(tmp_path, arrays=True)
    assert np.array_equal(back["distances"]["train_train"]["distance"], distance)
    assert back["distances"]["train_train"]["index"].tolist() == [1, 0, 3, 2]
    assert "distances" not in load_separation_records(tmp_path)[0]          # arrays only when asked
    # the page reads it instead of recomputing (a recomputation would need MNIST's files)
    ((read, source),) = page_records("mnist", random_labels=False, seed=0, test_split="none", recompute=False,
                                     directory=tmp_path)
    assert source == "stored in separation-mnist.json" and read["train_train_min"] == 0.0
    array_file = tmp_path / json.loads(path.read_text())["arrays"]["file"]
    array_file.write_bytes(array_file.read_bytes() + b"x")
    with pytest.raises(ValueError, match=r"separation-mnist\.npz has md5 .* its record expects"):
        load_separation_records(tmp_path, arrays=True)
    with pytest.raises(ValueError, match="not multiples of 1/255"):
        save_separation({**record, "distances": {"train_train": {"distance": np.array([0.5 / 255]),
                                                                 "index": np.array([0])}}}, tmp_path)
