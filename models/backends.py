"""Which runtime runs a re-ID network (backend) and in which arithmetic (precision).

The same weights can run in PyTorch, in ONNX Runtime or in OpenVINO, in fp32, bf16 or int8. fp32
on any backend gives the same vectors (cosine >= 0.999 against PyTorch, checked by the tests), so
the backend never changes which model a vector belongs to. bf16 rounds activations to 8 bits of
mantissa and int8 quantises weights and activations: both are measured against fp32 (mAP on the
synthetic test split) before they are trusted; see ``pipeline.embedding_model`` for how their
vectors are versioned.

Defaults come from measurement on the project's 2-core AVX-512 BF16 machine
(``bench/results.md``, shipped model, batch 32, network alone): PyTorch eager fp32 439 crops/s,
ONNX Runtime fp32 821, OpenVINO fp32 562, OpenVINO bf16 1597 (mAP 44.82 against 44.64 in fp32),
ONNX Runtime int8 2363 (mAP 44.24). OpenVINO bf16 was ``auto`` where the CPU computes bf16
natively until model 7.0.0, on which it costs more than the 1 point of mAP allowed (seed 206:
0.576 against 0.591; seed 202: 0.702 against 0.722) and 8-9 points of TPR at FPR 1e-3, so
strangers pass the alert threshold half as often again. So ``auto`` is ONNX Runtime in fp32
everywhere; bf16 and int8 (1 point of mAP allowed, 0.4 measured on 1.0.0) are run only when
asked for, after measuring them on the model in use (``reunite eval --precision``). A backend
named without a precision runs fp32.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from reunite.errors import InvalidOptionError
from reunite.models.embedder import Embedder

Backend = Literal["torch", "onnxruntime", "openvino"]
Precision = Literal["fp32", "bf16", "int8"]
BACKENDS: tuple[str, ...] = ("torch", "onnxruntime", "openvino")
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")
AUTO = "auto"
DEFAULT_BACKEND: Backend = "onnxruntime"  # the fastest fp32 runtime measured
FASTEST_FOR: dict[str, Backend] = {"fp32": "onnxruntime", "bf16": "openvino", "int8": "onnxruntime"}

# What each runtime can do on a CPU: ONNX Runtime has no bf16 convolutions, and PyTorch has no
# int8 path for these networks that is faster than its fp32 one.
SUPPORTED: dict[str, tuple[str, ...]] = {
    "torch": ("fp32", "bf16"),
    "onnxruntime": ("fp32", "int8"),
    "openvino": ("fp32", "bf16", "int8"),
}


def check_choice(backend: str | None, precision: str | None) -> tuple[Backend, Precision]:
    """The (backend, precision) pair to use; ``None`` or ``auto`` take the defaults.

    Raises InvalidOptionError for a name that is not a backend or precision, or a pair that
    the backend cannot run (bf16 in ONNX Runtime, int8 in PyTorch, bf16 on a CPU without it).
    """
    if backend in (None, AUTO):  # no precision, or auto, is fp32: the default backend
        backend = FASTEST_FOR.get(precision or AUTO, DEFAULT_BACKEND)
    if backend not in BACKENDS:
        raise InvalidOptionError(
            f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)} (or auto)"
        )
    if precision in (None, AUTO):
        precision = "fp32"
    if precision not in PRECISIONS:
        raise InvalidOptionError(
            f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)} (or auto)"
        )
    if precision not in SUPPORTED[backend]:
        runs = [b for b, p in SUPPORTED.items() if precision in p]
        raise InvalidOptionError(
            f"the {backend} backend does not run {precision}; {precision} runs on "
            f"{' and '.join(runs)}"
        )
    if precision == "bf16" and not cpu_has_bf16():
        raise InvalidOptionError(
            "this CPU has no native bf16 arithmetic (AVX-512 BF16 or AMX); use --precision fp32"
        )
    return backend, precision  # type: ignore[return-value]


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether the CPU computes bf16 natively (emulated bf16 is slower than fp32)."""
    try:
        flags = open("/proc/cpuinfo", encoding="ascii", errors="replace").read()  # noqa: SIM115
    except OSError:
        flags = ""
    if flags:
        return " avx512_bf16" in flags or " amx_bf16" in flags
    try:  # not Linux: ask OpenVINO what its CPU plugin can do
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:
        return False


class AutocastEmbedder:
    """A PyTorch embedder run under ``torch.autocast`` in bf16 (convolutions and matmuls in
    bf16, reductions in fp32): PyTorch's own reduced-precision path, for comparison."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.backend = "torch"
        self.precision = "bf16"

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner.embed(crops)

    def __getattr__(self, name: str) -> Any:  # network, preprocessing, batch_size ...
        return getattr(self.inner, name)
