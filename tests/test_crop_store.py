"""The content-addressed crop store on a real file system: layout, atomic idempotent writes, a
real ENOSPC from /dev/full, concurrent writers, hostile ids and damaged files."""

from __future__ import annotations

import errno
import hashlib
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import reunite.pipeline.crop_store as crop_store_module
from reunite.errors import DiskFullError, InvalidOptionError, NotFoundError, StoreError
from reunite.pipeline.crop_store import CropStore


def person_crop(seed: int = 0, size: tuple[int, int] = (128, 64)) -> np.ndarray:
    """A smooth, JPEG-friendly BGR crop (random noise would make the tolerance meaningless)."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.integers(40, 200, size=3)
    image = np.stack([(base[c] + 40 * np.sin(yy / 9 + c) + xx / 4) for c in range(3)], axis=-1)
    return np.clip(image, 0, 255).astype(np.uint8)


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> CropStore:
    return CropStore(tmp_path / "crops")


def test_put_get_round_trip_and_layout(store: CropStore):
    image = person_crop()
    data = CropStore.encode(image)
    sha = store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.path(sha) == store.root / sha[:2] / sha[2:4] / f"{sha}.jpg"
    assert all_files(store.root) == [store.path(sha)]
    assert store.get(sha) == data and store.exists(sha)
    decoded = store.get_image(sha)
    assert decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image.astype(int)).mean() < 3  # JPEG at quality 90


def test_encode_is_deterministic_and_refuses_what_is_not_a_crop():
    image = person_crop(3)
    assert CropStore.encode(image) == CropStore.encode(image.copy())  # same pixels, same id
    assert CropStore.encode(image, quality=50) != CropStore.encode(image)
    assert CropStore.encode(image[:, :, 0])  # grey is fine
    # Bad input tried: float pixels, an empty crop, RGBA, quality 0 and 101.
    for bad in (image.astype(np.float32), image[:0], np.zeros((8, 8, 4), np.uint8)):
        with pytest.raises(InvalidOptionError, match="uint8"):
            CropStore.encode(bad)
    for quality in (0, 101):
        with pytest.raises(InvalidOptionError, match="quality"):
            CropStore.encode(image, quality=quality)


def test_put_is_idempotent_and_refreshes_the_mtime_without_rewriting(store: CropStore):
    data = CropStore.encode(person_crop())
    sha = store.put(data)
    path = store.path(sha)
    inode = path.stat().st_ino
    os.utime(path, (1_000_000, 1_000_000))  # an old orphan, as a garbage collector would see it
    assert store.put(data) == sha
    assert path.stat().st_ino == inode  # not rewritten (a rewrite is a new inode by rename)
    assert path.stat().st_mtime > time.time() - 60  # but no longer looks old
    assert all_files(store.root) == [path]


def test_a_truncated_file_is_replaced_by_the_next_put(store: CropStore):
    # Bad input tried: a crop file cut short (a crash of another tool, a full disk at copy time).
    data = CropStore.encode(person_crop())
    sha = store.put(data)
    store.path(sha).write_bytes(data[:100])
    with pytest.raises(StoreError, match="corrupt"):
        store.get(sha)
    assert store.put(data) == sha
    assert store.get(sha) == data


def test_a_full_disk_raises_disk_full_and_leaves_nothing(store: CropStore, monkeypatch):
    # Real ENOSPC from the kernel: the temp file is created as usual, but written through a
    # descriptor on /dev/full, which refuses every write with "No space left on device".
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full (Linux)")
    created: list[Path] = []
    real_create_temp = crop_store_module._create_temp

    def create_temp_on_full_device(directory: Path) -> tuple[int, Path]:
        fd, path = real_create_temp(directory)
        os.close(fd)
        created.append(path)
        return os.open("/dev/full", os.O_WRONLY), path

    monkeypatch.setattr(crop_store_module, "_create_temp", create_temp_on_full_device)
    data = CropStore.encode(person_crop())
    with pytest.raises(DiskFullError, match="full") as info:
        store.put(data)
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert len(created) == 1 and not created[0].exists()  # the temp file was removed
    assert all_files(store.root) == []  # no partial crop, no temp file
    assert not store.exists(hashlib.sha256(data).hexdigest())


def test_concurrent_puts_of_the_same_and_of_different_crops(store: CropStore):
    # Eight writers at once: four with one crop, four with their own; each put must return the
    # right id, leave exactly one complete file per crop and no temp files.
    shared = CropStore.encode(person_crop(1))
    own = [CropStore.encode(person_crop(10 + i)) for i in range(4)]
    jobs = [shared] * 4 + own
    barrier = threading.Barrier(len(jobs))
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        barrier.wait()
        try:
            for _ in range(20):
                results[i] = store.put(jobs[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, data in enumerate(jobs):
        assert results[i] == hashlib.sha256(data).hexdigest()
        assert store.get(results[i]) == data
    assert len(all_files(store.root)) == 5
    assert sorted(store.iter_all()) == sorted(set(results.values()))


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "../" * 21 + "x",  # 64 characters, none of them hex
        "ab/../../" + "0" * 55,
        "A" * 64,  # upper case: ids are lowercase hex, one spelling per crop
        "0" * 63,
        "0" * 65,
        "0" * 64 + "\n",
        "",
    ],
)
def test_ids_that_are_not_a_sha256_are_refused_everywhere(store: CropStore, bad: str):
    # Bad input tried: path traversal and malformed ids reaching path(), get(), exists(), delete().
    for call in (store.path, store.get, store.exists, store.delete):
        with pytest.raises(InvalidOptionError, match="not a crop id"):
            call(bad)
    assert not store.root.exists()


def test_get_of_a_missing_crop_is_not_found(store: CropStore):
    with pytest.raises(NotFoundError, match="no crop"):
        store.get("0" * 64)


def test_get_of_a_corrupted_file_names_it(store: CropStore):
    # Bad input tried: one flipped byte in a stored crop (bit rot, an outside edit).
    data = CropStore.encode(person_crop())
    sha = store.put(data)
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    store.path(sha).write_bytes(bytes(damaged))
    with pytest.raises(StoreError, match="corrupt") as info:
        store.get(sha)
    assert str(store.path(sha)) in str(info.value)


def test_delete_and_exists(store: CropStore):
    sha = store.put(CropStore.encode(person_crop()))
    assert store.delete(sha) is True
    assert not store.exists(sha)
    assert store.delete(sha) is False  # already gone: no error
    with pytest.raises(NotFoundError):
        store.get(sha)


def test_iter_all_lists_stored_crops_only(store: CropStore):
    # Bad input tried: stray files an orphan collector must never return (and so never delete):
    # a temp file, a crop in the wrong folder, another extension, a note, a non-hex folder.
    shas = sorted(store.put(CropStore.encode(person_crop(i))) for i in range(5))
    first = store.path(shas[0]).parent
    (first / f".{shas[0][:8]}.tmp").write_bytes(b"half a crop")
    (first / f"{shas[0]}.png").write_bytes(b"x")
    (first / "README").write_text("hello")
    wrong = "f" * 64 if not shas[0].startswith("ff") else "0" * 64
    (first / f"{wrong}.jpg").write_bytes(b"misplaced")
    (store.root / "zz" / "zz").mkdir(parents=True)
    (store.root / "zz" / "zz" / f"{'0' * 64}.jpg").write_bytes(b"x")
    assert list(store.iter_all()) == shas
    assert list(CropStore(store.root / "missing").iter_all()) == []


def test_a_store_root_that_is_a_file_gives_a_store_error(tmp_path: Path):
    # Bad input tried: the crop folder configured onto an existing regular file.
    root = tmp_path / "crops"
    root.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot write crop"):
        CropStore(root).put(CropStore.encode(person_crop()))
    assert root.read_text() == "not a folder"
