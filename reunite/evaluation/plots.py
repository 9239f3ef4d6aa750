"""Pictures of an evaluation: CMC curves and ranked-results sheets.

Figures are drawn on matplotlib's Agg canvas through the object API (``Figure``), never through
``pyplot``'s global state, so writing a PNG from the CLI does not change a notebook's backend, and
a notebook can display the returned figure. Ranked-results sheets are image mosaics (crops,
coloured borders, distances) composed directly with OpenCV: a grid of pixels needs no axes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reunite.evaluation.rank import QueryScores
from reunite.evaluation.reid_eval import EvalSet, ModelResult, load_crop

SheetOrder = Literal["worst", "random"]

_CELL = (64, 128)  # W, H of each crop on a sheet
_BORDER = 4
_TEXT_H = 16
_GAP = 12  # between the query and its list
_GREEN = (40, 170, 40)  # BGR
_RED = (40, 40, 220)
_GREY = (90, 90, 90)


def plot_cmc(curves: Mapping[str, np.ndarray], max_rank: int = 20, title: str = "CMC") -> Figure:
    """One CMC curve per model (rank 1..``max_rank``, accuracy in %), on one set of axes."""
    figure = Figure(figsize=(6.0, 4.0), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, cmc in curves.items():
        ranks = np.arange(1, min(max_rank, len(cmc)) + 1)
        axes.plot(ranks, 100 * np.asarray(cmc)[: len(ranks)], marker=".", label=name)
    axes.set(xlabel="rank", ylabel="matching rate (%)", title=title, ylim=(0, 101))
    axes.set_xlim(1, max_rank)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def choose_queries(
    scores: QueryScores, count: int, order: SheetOrder = "worst", seed: int = 0
) -> np.ndarray:
    """Indices of up to ``count`` valid queries to show: the worst first, or a seeded sample.

    Worst means the lowest average precision; ties go to the later first true match.
    """
    valid = np.flatnonzero(scores.valid)
    if order == "worst":
        ranked = valid[np.lexsort((-scores.first_hit[valid], scores.ap[valid]))]
        return ranked[:count]
    if order == "random":
        rng = np.random.default_rng(seed)
        return rng.choice(valid, size=min(count, len(valid)), replace=False)
    raise ValueError(f"order must be 'worst' or 'random', got {order!r}")


def ranked_sheet(result: ModelResult, eval_set: EvalSet, queries: Sequence[int]) -> np.ndarray:
    """One BGR image: per row a query, then its top matches (green = same person, red = not).

    The query's caption is its AP; each match's caption is its distance.
    """
    rows = []
    for q in queries:
        cells = [_cell(load_crop(eval_set.query[q]), _GREY, f"AP {result.scores.ap[q]:.2f}")]
        cells.append(np.full((cells[0].shape[0], _GAP, 3), 255, np.uint8))
        for g, distance in zip(result.top_indices[q], result.top_distances[q], strict=True):
            if g < 0:
                cells.append(_cell(None, _GREY, ""))
                continue
            correct = eval_set.g_pids[g] == eval_set.q_pids[q]
            crop = load_crop(eval_set.gallery[g])
            cells.append(_cell(crop, _GREEN if correct else _RED, f"{distance:.3f}"))
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def write_ranked_sheets(
    result: ModelResult,
    eval_set: EvalSet,
    folder: Path,
    count: int = 16,
    order: SheetOrder = "worst",
    seed: int = 0,
    per_sheet: int = 8,
) -> list[tuple[Path, list[int]]]:
    """``ranked_01.png`` ... in ``folder``, ``per_sheet`` queries each.

    Returns each sheet's path with the indices of the queries it shows, top to bottom.
    """
    chosen = choose_queries(result.scores, count, order, seed)
    folder.mkdir(parents=True, exist_ok=True)
    sheets = []
    for number, start in enumerate(range(0, len(chosen), per_sheet), start=1):
        path = folder / f"ranked_{number:02d}.png"
        shown = [int(q) for q in chosen[start : start + per_sheet]]
        if not cv2.imwrite(str(path), ranked_sheet(result, eval_set, shown)):
            raise OSError(f"could not write {path}")
        sheets.append((path, shown))
    return sheets


def _cell(crop: np.ndarray | None, colour: tuple[int, int, int], caption: str) -> np.ndarray:
    """A crop resized to the cell, framed in ``colour``, with ``caption`` underneath."""
    width, height = _CELL
    cell = np.full((height + 2 * _BORDER + _TEXT_H, width + 2 * _BORDER, 3), 255, np.uint8)
    if crop is not None:
        framed = cv2.copyMakeBorder(
            cv2.resize(crop, _CELL, interpolation=cv2.INTER_AREA),
            *(_BORDER,) * 4,
            cv2.BORDER_CONSTANT,
            value=colour,
        )
        cell[: framed.shape[0]] = framed
    cv2.putText(
        cell,
        caption,
        (2, cell.shape[0] - 4),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.38,
        (0, 0, 0),
        1,
        cv2.LINE_AA,
    )
    return cell
