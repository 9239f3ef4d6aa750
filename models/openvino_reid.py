"""Any re-ID network in OpenVINO's IR format (``.xml`` graph + ``.bin`` weights), e.g. the Intel
Open Model Zoo's person-reidentification-retail models, run with the ``openvino`` runtime.

Open Model Zoo models are published with a batch of 1; the graph is reshaped to a dynamic batch
so a whole batch of crops runs in one inference call. A graph that cannot be reshaped keeps its
fixed batch, and short batches are padded. An ONNX file (``.onnx``) is read the same way.

The inference precision is always set explicitly: OpenVINO's CPU plugin otherwise picks bf16 on
CPUs that have it, which would make "fp32" depend on the machine. ``int8`` is not a hint but a
graph property (Q/DQ or FakeQuantize nodes); such a graph runs with the fp32 hint.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import openvino as ov

from reunite.errors import InvalidOptionError
from reunite.models.embedder import embed_in_batches, pad_to_fixed_batch
from reunite.models.preprocessing import OPENVINO_OMZ, Preprocessing

_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


class OpenVinoReidEmbedder:
    """Embeds crops with an IR model that takes one NCHW image input; its first output, flattened
    per image, is the embedding ((N, 256) for person-reidentification-retail-0288)."""

    def __init__(
        self,
        xml_path: str | Path,
        preprocessing: Preprocessing = OPENVINO_OMZ,
        device: str = "CPU",
        batch_size: int = 32,
        threads: int | None = None,
        name: str | None = None,
        precision: str = "fp32",
    ) -> None:
        """``device`` is an OpenVINO device name ("CPU", "GPU", ...); ``threads`` caps the CPU
        threads (None lets OpenVINO choose); ``precision`` is fp32, bf16 or int8 (see module).
        Raises InvalidOptionError for a missing or unreadable model, a device OpenVINO does not
        have, or an input size the model cannot take."""
        xml = Path(xml_path)
        is_onnx = xml.suffix.lower() == ".onnx"
        weights = xml.with_suffix(".bin")
        if not xml.is_file():
            raise InvalidOptionError(f"OpenVINO model not found: {xml}")
        if precision not in _PRECISION_HINTS:
            raise InvalidOptionError(f"precision must be fp32, bf16 or int8, got {precision!r}")
        if not is_onnx and not weights.is_file():
            raise InvalidOptionError(
                f"OpenVINO model {xml.name} has no weights: {weights} is missing (an IR model is "
                f"an .xml and a .bin of the same name, side by side)"
            )
        if batch_size < 1 or (threads is not None and threads < 1):
            raise InvalidOptionError("batch_size and threads must be at least 1")
        core = ov.Core()
        try:
            model = core.read_model(str(xml), None if is_onnx else str(weights))
        except RuntimeError as error:
            raise InvalidOptionError(f"cannot read OpenVINO model {xml}: {error}") from error
        if len(model.inputs) != 1 or model.input().get_partial_shape().rank.get_length() != 4:
            raise InvalidOptionError(
                f"{xml.name} takes {[str(i.get_partial_shape()) for i in model.inputs]}; "
                f"expected one (N, 3, H, W) image input"
            )
        self._fixed_batch = _reshape_to_dynamic_batch(model, preprocessing, xml)
        if device.upper() not in core.available_devices:
            raise InvalidOptionError(
                f"OpenVINO has no device {device!r} here; available: "
                f"{', '.join(core.available_devices)}"
            )
        config: dict = {"PERFORMANCE_HINT": "LATENCY"}
        if device.upper() == "CPU":
            config["INFERENCE_PRECISION_HINT"] = _PRECISION_HINTS[precision]
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self._compiled = core.compile_model(model, device.upper(), config)
        except RuntimeError as error:
            raise InvalidOptionError(f"OpenVINO cannot compile {xml.name}: {error}") from error
        self._local = threading.local()  # an infer request is not thread-safe: one per thread
        self.preprocessing = preprocessing
        self.batch_size = self._fixed_batch or batch_size
        self.name = name or xml.stem
        self.backend = "openvino"
        self.precision = precision
        width, height = preprocessing.input_size
        self.dim = self._run(np.zeros((1, 3, height, width), np.float32)).shape[1]

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return embed_in_batches(
            crops, self.dim, self.batch_size, self.preprocessing.to_nchw, self._run
        )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        batch = pad_to_fixed_batch(batch, self._fixed_batch)
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        request.infer({0: batch})
        features = request.get_output_tensor(0).data
        return np.array(features, dtype=np.float32).reshape(len(batch), -1)[:n]


def _reshape_to_dynamic_batch(model: ov.Model, preprocessing: Preprocessing, xml: Path) -> int:
    """Give ``model`` a dynamic batch; return the fixed batch size instead where it cannot have one.

    Raises InvalidOptionError when the model's fixed image size differs from the preprocessing's.
    """
    shape = model.input().get_partial_shape()
    width, height = preprocessing.input_size
    fixed = [d.get_length() if d.is_static else None for d in shape]
    if any(
        got not in (want, None) for got, want in zip(fixed[1:], (3, height, width), strict=True)
    ):
        raise InvalidOptionError(
            f"{xml.name} takes input {shape} (N, C, H, W) but the preprocessing says 3 channels of "
            f"{height}x{width} (HxW); set input_size=(W, H) to the model's size"
        )
    try:
        model.reshape({model.input(): ov.PartialShape([-1, 3, height, width])})
    except RuntimeError:  # some graphs bake the batch into a Reshape; keep theirs
        return fixed[0] or 1
    return 0
