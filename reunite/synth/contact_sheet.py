"""Contact sheets of a rendered district: what a person should look at before trusting it.

* ``crops.png``: the largest visible crop of each identity, labelled with id, age group, camera;
* ``frames/cN.jpg`` and ``cameras.png``: one full frame per camera, ground-truth boxes drawn;
* ``cases.png``: family photo, last-seen still, and a sighting during the clip, side by side.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

TILE = (96, 192)  # W x H of one crop on the sheet


def _read_gt(folder: Path) -> dict[int, list[tuple[int, float, float, float, float, float]]]:
    per_frame: dict[int, list] = {}
    text = (folder / "gt" / "gt.txt").read_text().strip()
    for line in text.splitlines() if text else []:
        f, pid, x, y, w, h, _, _, vis = line.split(",")
        per_frame.setdefault(int(f), []).append(
            (int(pid), float(x), float(y), float(w), float(h), float(vis))
        )
    return per_frame


def _frame_paths(folder: Path) -> dict[int, Path]:
    return {int(p.stem.split("_")[0]): p for p in (folder / "img1").glob("*.jpg")}


def _tile(img: np.ndarray, label: str) -> np.ndarray:
    w, h = TILE
    s = min(w / img.shape[1], (h - 18) / img.shape[0])
    small = cv2.resize(img, (max(1, int(img.shape[1] * s)), max(1, int(img.shape[0] * s))))
    out = np.full((h, w, 3), 255, np.uint8)
    y0, x0 = (h - 18 - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    cv2.putText(out, label, (3, h - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _grid(tiles: list[np.ndarray], cols: int) -> np.ndarray:
    if not tiles:
        return np.full((TILE[1], TILE[0], 3), 255, np.uint8)
    blank = np.full_like(tiles[0], 255)
    rows = [
        tiles[i : i + cols] + [blank] * (cols - len(tiles[i : i + cols]))
        for i in range(0, len(tiles), cols)
    ]
    return np.vstack([np.hstack(r) for r in rows])


def write_contact_sheets(district: Path, out: Path) -> list[Path]:
    """Write the sheets for a district folder into ``out``; returns the files written."""
    cameras = json.loads((district / "cameras.json").read_text())
    identities = {p["id"]: p for p in json.loads((district / "identities.json").read_text())}
    best: dict[int, tuple[float, int, int, tuple]] = {}
    frame_tiles, written = [], []
    (out / "frames").mkdir(parents=True, exist_ok=True)
    for cam in cameras:
        folder = district / "cameras" / f"c{cam['id']}"
        gt, paths = _read_gt(folder), _frame_paths(folder)
        for f, boxes in gt.items():
            for pid, x, y, w, h, vis in boxes:
                score = h * vis
                if score > best.get(pid, (0,))[0]:
                    best[pid] = (score, cam["id"], f, (x, y, w, h))
        mid = sorted(paths)[len(paths) // 2]
        img = cv2.imread(str(paths[mid]))
        for pid, x, y, w, h, vis in gt.get(mid, []):
            colour = (0, 200, 0) if vis > 0.5 else (0, 160, 255)
            cv2.rectangle(img, (int(x), int(y)), (int(x + w), int(y + h)), colour, 1)
            cv2.putText(
                img,
                f"{pid} {vis:.2f}",
                (int(x), int(y) - 3),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.4,
                colour,
                1,
                cv2.LINE_AA,
            )
        label = f"c{cam['id']} {cam['name']} h={cam['mount_height_m']}m"
        cv2.putText(img, label, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        path = out / "frames" / f"c{cam['id']}.jpg"
        cv2.imwrite(str(path), img)
        written.append(path)
        frame_tiles.append(cv2.resize(img, (640, 360)))
    sheet = _grid(frame_tiles, 2)
    cv2.imwrite(str(out / "cameras.png"), sheet)
    written.append(out / "cameras.png")

    crops = []
    for pid in sorted(best):
        _, cam_id, f, (x, y, w, h) = best[pid]
        img = cv2.imread(str(_frame_paths(district / "cameras" / f"c{cam_id}")[f]))
        crop = img[int(y) : int(y + h) + 1, int(x) : int(x + w) + 1]
        crops.append(_tile(crop, f"{pid} {identities[pid]['age_group'][:5]} c{cam_id}"))
    cv2.imwrite(str(out / "crops.png"), _grid(crops, 12))
    written.append(out / "crops.png")

    case_rows = []
    for case in json.loads((district / "cases.json").read_text()):
        pid = case["person_id"]
        tiles = [_tile(cv2.imread(str(district / case["family_photo"])), f"{pid} family")]
        if "last_seen" in case:
            tiles.append(_tile(cv2.imread(str(district / case["last_seen"])), "last seen"))
        if pid in best:
            tiles.append(crops[sorted(best).index(pid)])
        case_rows.append(np.hstack(tiles + [np.full_like(tiles[0], 255)] * (3 - len(tiles))))
    if case_rows:
        per_row = 4
        blank = np.full_like(case_rows[0], 255)
        rows = [
            case_rows[i : i + per_row] + [blank] * (per_row - len(case_rows[i : i + per_row]))
            for i in range(0, len(case_rows), per_row)
        ]
        cv2.imwrite(str(out / "cases.png"), np.vstack([np.hstack(r) for r in rows]))
        written.append(out / "cases.png")
    return written
