"""Camera centring: a bias every crop of a camera shares is removed exactly, cameras of pooled
splits stay apart, and ``reunite eval --centre-cameras`` ranks on the centred embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from test_eval_cli import make_market, run_cli

from reunite.evaluation.camera_centring import centre_by_camera
from reunite.evaluation.rank import score_queries
from reunite.models.embedder import cosine_distance


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_camera_bias_that_hides_identity_is_removed() -> None:
    rng = np.random.default_rng(0)
    people = rng.normal(size=(20, 64))
    people -= people.mean(0)  # the cameras see the same people, so their means differ by bias
    bias = rng.normal(size=(2, 64)) * 12.0  # larger than the people's differences
    # queries: everyone on camera 1; gallery: everyone on camera 2 (small noise)
    query = people + bias[0] + rng.normal(scale=0.1, size=people.shape)
    gallery = people + bias[1] + rng.normal(scale=0.1, size=people.shape)
    pids = np.arange(1, 21)
    q_cams, g_cams = np.ones(20, int), np.full(20, 2)
    plain = score_queries(cosine_distance(_unit(query), _unit(gallery)), pids, pids, q_cams, g_cams)
    q, g = centre_by_camera(_unit(query), _unit(gallery), q_cams, g_cams)
    centred = score_queries(cosine_distance(q, g), pids, pids, q_cams, g_cams)
    assert (plain.first_hit == 1).mean() < 0.5  # the bias swamps the people
    assert (centred.first_hit == 1).all()
    assert np.allclose(np.linalg.norm(q, axis=1), 1) and np.allclose(np.linalg.norm(g, axis=1), 1)
    # a camera's mean is over its query and gallery crops together
    both = np.concatenate([q, g])
    for camera in (1, 2):
        on = np.concatenate([q_cams, g_cams]) == camera
        before = np.concatenate([_unit(query), _unit(gallery)])[on]
        assert np.allclose(_unit(before - before.mean(0)), both[on], atol=1e-5)


def test_cameras_of_different_blocks_are_different_cameras_and_lone_crops_are_zero() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    # (block, camera): the first two share camera 1 but not the block, the third is alone too
    q, g = centre_by_camera(x[:2], x[2:], np.array([[0, 1], [1, 1]]), np.array([[1, 2]]))
    assert not np.any(q) and not np.any(g)  # each camera saw one crop: nothing left
    q, g = centre_by_camera(x[:2], x[2:], np.array([[0, 1], [0, 1]]), np.array([[1, 2]]))
    assert np.allclose(q, [[np.sqrt(0.5), -np.sqrt(0.5)], [-np.sqrt(0.5), np.sqrt(0.5)]])


def test_the_command_line_ranks_on_centred_embeddings(tmp_path: Path) -> None:
    market = make_market(tmp_path / "market")
    plain = run_cli("--data", str(market), "--model", "color_histogram", "--json")
    centred = run_cli(
        "--data", str(market), "--model", "color_histogram", "--json", "--centre-cameras"
    )
    assert plain.exit_code == 0 and centred.exit_code == 0, centred.output
    a, b = json.loads(plain.stdout), json.loads(centred.stdout)
    assert a["centre_cameras"] is False and b["centre_cameras"] is True
    assert "centred by camera" in centred.stderr
    assert a["models"]["color_histogram"]["metrics"] != b["models"]["color_histogram"]["metrics"]
    # tried: with the single-camera MOT17 sanity set
    refused = run_cli("--mot17", str(tmp_path), "--model", "color_histogram", "--centre-cameras")
    assert refused.exit_code != 0 and "--centre-cameras applies to --data only" in refused.output
