"""Published OSNet weights into ``reunite.models.osnet.OSNet``: torchreid checkpoints, and
torchreid ONNX exports whose batch norms were folded into the convolutions.

Both paths are strict because a silently half-loaded network still produces embeddings, just bad
ones: every tensor must find its place with its shape, or the error names what did not fit. The
one exception is the identity classifier, whose size is the class count of the training set.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper, numpy_helper
from torch import nn

from reunite.errors import CheckpointMismatchError, UnreadableCheckpointError
from reunite.models.osnet import WIDTHS, OSNet

CLASSIFIER_PREFIX = "classifier."
_DATA_PARALLEL_PREFIX = "module."  # torch.nn.DataParallel saves every key under ``module.``
_STEM_KEY = "conv1.conv.weight"
_SHOWN = 5  # keys named in an error message; the rest are counted
_PARITY_COSINE = 0.9999  # an exact import agrees to float rounding; a misplaced layer does not


@dataclass(frozen=True)
class LoadReport:
    """What ``load_torchreid_checkpoint`` did, for logs and model cards."""

    path: Path
    arch: str
    """The OSNet width the checkpoint's stem has (it matched the network, or loading failed)."""
    loaded: int
    """Tensors copied into the network."""
    classifier: Literal["loaded", "skipped", "absent"]
    """``skipped``: the checkpoint's classifier has another class count or the network has none."""
    classifier_classes: int | None
    epoch: int | None
    stripped_prefix: bool
    """Keys carried DataParallel's ``module.`` prefix."""


def infer_osnet_arch(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The OSNet width of a state dict, from the stem's output channels (64/48/32/16).

    Raises CheckpointMismatchError when the stem is absent or has another width.
    """
    arch = _guess_arch(state_dict)
    if arch is None:
        raise CheckpointMismatchError(
            f"not an OSNet state dict: {_describe_stem(state_dict)}; "
            f"OSNet's stem {_STEM_KEY} has 64, 48, 32 or 16 output channels"
        )
    return arch


def load_torchreid_checkpoint(model: OSNet, path: str | Path) -> LoadReport:
    """Load a torchreid OSNet checkpoint into ``model``, strictly except for the classifier.

    Accepts torchreid's layouts: a bare state dict, or a dict holding ``state_dict`` (with
    ``epoch``, ``optimizer``, ``rank1``...), with or without DataParallel's ``module.`` prefix.
    The file is read with ``weights_only=True``, so it cannot run code; numpy scalars (torchreid
    stores ``rank1`` as one) are allowed. The classifier is loaded only when the network has one
    of the same size. On any missing, unexpected or differently shaped tensor, nothing is loaded
    and CheckpointMismatchError names the keys and the width the checkpoint looks like.
    """
    path = Path(path)
    state, epoch, stripped = _read_state_dict(path)
    expected = model.state_dict()
    body = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIX)}
    missing = [
        k
        for k in expected
        if k not in body
        and not k.startswith(CLASSIFIER_PREFIX)
        and not k.endswith("num_batches_tracked")  # absent from old files; torch fills them in
    ]
    unexpected = [k for k in body if k not in expected]
    reshaped = [
        f"{k} {tuple(v.shape)} (network {tuple(expected[k].shape)})"
        for k, v in body.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or reshaped:
        seen = _guess_arch(state)
        looks = f"it looks like {seen}" if seen else f"it is not an OSNet ({_describe_stem(state)})"
        raise CheckpointMismatchError(
            f"{path} does not fit {_arch_of(model)}: {looks}; "
            + "; ".join(
                _listing(what, keys)
                for what, keys in (
                    ("missing", missing),
                    ("unexpected", unexpected),
                    ("with another shape", reshaped),
                )
                if keys
            )
            + (f". Build the network as {seen}" if seen and seen != _arch_of(model) else "")
        )

    head = {k: v for k, v in state.items() if k.startswith(CLASSIFIER_PREFIX)}
    fits = bool(head) and {k: v.shape for k, v in head.items()} == {
        k: v.shape for k, v in expected.items() if k.startswith(CLASSIFIER_PREFIX)
    }
    result = model.load_state_dict({**body, **head} if fits else body, strict=False)
    left = [k for k in result.missing_keys if not k.startswith(CLASSIFIER_PREFIX)]
    if left or result.unexpected_keys:  # cannot happen after the checks above; never hide it
        raise CheckpointMismatchError(
            f"{path}: keys left unloaded: {left + result.unexpected_keys}"
        )
    classes = head.get(CLASSIFIER_PREFIX + "weight")
    return LoadReport(
        path=path,
        arch=infer_osnet_arch(state),
        loaded=len(body) + (len(head) if fits else 0),
        classifier="loaded" if fits else ("skipped" if head else "absent"),
        classifier_classes=None if classes is None else int(classes.shape[0]),
        epoch=epoch,
        stripped_prefix=stripped,
    )


def import_fused_onnx(model: OSNet, onnx_path: str | Path, verify: bool = True) -> None:
    """Copy the weights of an ONNX export of OSNet into ``model``, undoing batch-norm folding.

    Exporters fold each eval-mode batch norm into the convolution before it (weight and bias
    rescaled, no BatchNormalization node left). The fused convolution gets the fused weight, and
    its batch norm becomes an identity plus the fused bias (weight 1, running mean 0, running
    variance ``1 - eps`` so that ``sqrt(var + eps) == 1``). The same holds for the embedding
    head's Linear and BatchNorm1d, folded or not.

    Initialiser names are not trusted (they may be torch names or anonymous ``onnx::Conv_123``):
    the graph's Conv/Gemm/BatchNormalization nodes are walked in order against the layers the
    network runs in eval mode, every shape and convolution attribute is checked, and every float
    initialiser must find a place. With ``verify``, the network and onnxruntime then embed the
    same random batch and must agree (cosine >= 0.9999), which catches any misplaced layer.
    Nothing changes in ``model`` unless all of that succeeds.

    The imported batch norms carry no real statistics: fine for inference and for fine-tuning
    with fresh statistics, not for resuming the original training.
    """
    path = Path(onnx_path)
    graph = _read_onnx(path).graph
    height, width = _input_hw(graph)
    new = _Importer(model, graph, path).run(_layer_calls(model, height, width))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict({**original, **new}, strict=True)
    if verify:
        cosine = _min_cosine_to_onnx(model, path, height, width)
        if cosine < _PARITY_COSINE:
            model.load_state_dict(original, strict=True)
            raise CheckpointMismatchError(
                f"{path} imported into {_arch_of(model)} but the two disagree (min cosine "
                f"{cosine:.4f} on a random batch): the graph's layers run in another order or "
                "compute something this OSNet does not; the network was left unchanged"
            )


# --- torchreid checkpoints -------------------------------------------------------------------


def _read_state_dict(path: Path) -> tuple[dict[str, torch.Tensor], int | None, bool]:
    """(state dict without ``module.`` prefixes, epoch if recorded, whether a prefix was seen)."""
    content = read_torch_file(path)
    epoch = None
    if isinstance(content, Mapping) and "state_dict" in content:
        epoch = content.get("epoch")
        epoch = int(epoch) if isinstance(epoch, int | np.integer) else None
        content = content["state_dict"]
    if not isinstance(content, Mapping) or not content:
        raise UnreadableCheckpointError(
            f"{path} is not a torchreid checkpoint: it holds {_describe(content)}, not a state "
            "dict or a dict with 'state_dict'"
        )
    not_tensors = [str(k) for k, v in content.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise UnreadableCheckpointError(
            f"{path} is not a torchreid checkpoint: "
            f"{_listing('entries are not tensors', not_tensors)} "
            "(expected a state dict, or a dict with 'state_dict')"
        )
    stripped = any(k.startswith(_DATA_PARALLEL_PREFIX) for k in content)
    state = {k.removeprefix(_DATA_PARALLEL_PREFIX): v for k, v in content.items()}
    return state, epoch, stripped


def read_torch_file(path: Path) -> object:
    """A torch file's content, read without running code (numpy scalars allowed); every way a
    file can be unreadable becomes an UnreadableCheckpointError that names it."""
    if not path.is_file():
        raise UnreadableCheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(_numpy_scalar_types()):
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except UnicodeDecodeError:  # pickled by Python 2, as some early model-zoo files
                return torch.load(path, map_location="cpu", weights_only=True, encoding="latin1")
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        if found:
            raise UnreadableCheckpointError(
                f"{path} holds Python objects, not only tensors ({found[1]}); they are not loaded "
                "because unpickling them can run code. Where you trust the file, re-save just its "
                "weights: torch.save(model.state_dict(), 'weights.pth')"
            ) from error
        raise UnreadableCheckpointError(
            f"cannot read {path}: not a PyTorch checkpoint ({_first_line(error)})"
        ) from error
    except Exception as error:  # torch.load meets damaged files with many unrelated error types
        raise UnreadableCheckpointError(
            f"cannot read {path}: the file is truncated or not a PyTorch checkpoint "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error


def _numpy_scalar_types() -> list[object]:
    """What a pickled numpy scalar needs: its constructor and dtype classes (no code runs)."""
    core = np._core if hasattr(np, "_core") else np.core
    return [core.multiarray.scalar, np.dtype, *(getattr(np.dtypes, n) for n in np.dtypes.__all__)]


def _stem(state: Mapping[str, object]) -> object:
    return state.get(_STEM_KEY, state.get(_DATA_PARALLEL_PREFIX + _STEM_KEY))


def _guess_arch(state: Mapping[str, object]) -> str | None:
    stem = _stem(state)
    if not isinstance(stem, torch.Tensor) or stem.ndim != 4 or tuple(stem.shape[1:]) != (3, 7, 7):
        return None
    return next((arch for arch, c in WIDTHS.items() if c[0] == stem.shape[0]), None)


def _describe_stem(state: Mapping[str, object]) -> str:
    stem = _stem(state)
    if isinstance(stem, torch.Tensor):
        return f"{_STEM_KEY} has shape {tuple(stem.shape)}"
    return f"no {_STEM_KEY} among its {len(state)} keys"


def _arch_of(model: nn.Module) -> str:
    return getattr(model, "arch", type(model).__name__)


def _listing(what: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    more = f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return f"{len(items)} {what}: {shown}{more}"


def _describe(content: object) -> str:
    if isinstance(content, Mapping):
        return "an empty dict" if not content else f"a dict with keys {list(content)[:_SHOWN]}"
    return f"a {type(content).__name__}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else repr(error))[:160]


# --- fused ONNX exports ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    """One run of a weight layer during an eval forward pass."""

    name: str
    module: nn.Module
    takes_previous: bool
    """Its input is the previous call's output: a batch norm right after its conv/linear."""


def _layer_calls(model: nn.Module, height: int, width: int) -> list[_Call]:
    """The network's Conv2d/Linear/BatchNorm calls in execution order (a shared layer, such as
    OSNet's aggregation gate, appears once per call, as in a traced graph)."""
    kinds = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
    names = {module: name for name, module in model.named_modules()}
    calls: list[_Call] = []
    previous: list[torch.Tensor | None] = [None]

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        calls.append(_Call(names[module], module, inputs[0] is previous[0]))
        previous[0] = output

    handles = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, kinds)]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width, device=_device_of(model)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    return calls


class _Importer:
    """Pairs the network's layer calls with the graph's weight nodes, one by one."""

    def __init__(self, model: nn.Module, graph: onnx.GraphProto, path: Path) -> None:
        self.model = model
        self.path = path
        self.expected = model.state_dict()
        self.weights, self.alias = _graph_weights(graph)
        self.nodes = [
            n for n in graph.node if n.op_type not in ("Constant", "Identity") and self._reads(n)
        ]
        self.used: set[str] = set()
        self.new: dict[str, torch.Tensor] = {}
        first = next((n for n in self.nodes if n.op_type == "Conv"), None)
        out = None if first is None else self._array(first, 1).shape[0]
        arch = next((a for a, c in WIDTHS.items() if c[0] == out), None)
        self.looks = f"the ONNX model looks like {arch}" if arch else "it is not an OSNet export"

    def run(self, calls: list[_Call]) -> dict[str, torch.Tensor]:
        k = i = 0
        while k < len(calls):
            call = calls[k]
            if i >= len(self.nodes):
                self._fail(f"the graph has no layer left for {call.name}")
            node = self.nodes[i]
            fused_bn = None
            if isinstance(call.module, nn.Conv2d | nn.Linear):
                following = calls[k + 1] if k + 1 < len(calls) else None
                bn_next = following is not None and following.takes_previous
                bn_next = bn_next and isinstance(following.module, nn.BatchNorm1d | nn.BatchNorm2d)
                node_bn = i + 1 < len(self.nodes) and self.nodes[i + 1].op_type == (
                    "BatchNormalization"
                )
                node_bn = node_bn and self.nodes[i + 1].input[0] == node.output[0]
                fused_bn = following if bn_next and not node_bn else None
                self._layer(call, node, fused_bn)
            elif isinstance(call.module, nn.BatchNorm1d | nn.BatchNorm2d):
                self._batch_norm(call, node)
            k += 2 if fused_bn else 1
            i += 1
        if i < len(self.nodes):
            node = self.nodes[i]
            self._fail(
                f"{len(self.nodes) - i} graph layer(s) have no place in the network, the first "
                f"{node.op_type} {_node_name(node)}"
            )
        unused = [n for n, a in self.weights.items() if n not in self.used and _is_float(a)]
        if unused:
            self._fail(_listing("initialisers have no place in the network", unused))
        return self.new

    def _layer(self, call: _Call, node: onnx.NodeProto, fused_bn: _Call | None) -> None:
        module = call.module
        is_conv = isinstance(module, nn.Conv2d)
        self._expect(node, "Conv" if is_conv else "Gemm", call)
        weight = self._array(node, 1)
        bias = self._array(node, 2) if len(node.input) > 2 and node.input[2] else None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if is_conv:
            self._check_conv(call, node, attrs)
        else:
            if (attrs.get("alpha", 1.0), attrs.get("beta", 1.0), attrs.get("transA", 0)) != (
                1.0,
                1.0,
                0,
            ):
                self._fail(f"Gemm {_node_name(node)} scales or transposes its input: {attrs}")
            if not attrs.get("transB", 0):
                weight = weight.T
        self._put(f"{call.name}.weight", weight, node)
        zeros = np.zeros(weight.shape[0], np.float32)
        if module.bias is not None:
            self._put(f"{call.name}.bias", zeros if bias is None else bias, node)
            bias = None
        if fused_bn is not None:  # the batch norm becomes an identity plus the fused bias
            eps = fused_bn.module.eps
            size = weight.shape[0]
            self._put(f"{fused_bn.name}.weight", np.ones(size, np.float32), node)
            self._put(f"{fused_bn.name}.bias", zeros if bias is None else bias, node)
            self._put(f"{fused_bn.name}.running_mean", np.zeros(size, np.float32), node)
            self._put(f"{fused_bn.name}.running_var", np.full(size, 1 - eps, np.float32), node)
        elif bias is not None:
            self._fail(
                f"{node.op_type} {_node_name(node)} has a bias but {call.name} has none and no "
                "batch norm follows it to take it"
            )

    def _batch_norm(self, call: _Call, node: onnx.NodeProto) -> None:
        self._expect(node, "BatchNormalization", call)
        scale, shift, mean, var = (self._array(node, j) for j in range(1, 5))
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        self._put(f"{call.name}.weight", scale, node)
        self._put(f"{call.name}.bias", shift, node)
        self._put(f"{call.name}.running_mean", mean, node)
        # the network divides by sqrt(var + its eps); keep var + eps as the graph has it
        adjusted = np.maximum(var + np.float32(eps - call.module.eps), 0).astype(np.float32)
        self._put(f"{call.name}.running_var", adjusted, node)

    def _check_conv(self, call: _Call, node: onnx.NodeProto, attrs: dict) -> None:
        conv = call.module
        ph, pw = conv.padding if isinstance(conv.padding, tuple) else (0, 0)
        wanted = {
            "group": conv.groups,
            "strides": list(conv.stride),
            "dilations": list(conv.dilation),
            "pads": [ph, pw, ph, pw],
        }
        got = {
            "group": attrs.get("group", 1),
            "strides": list(attrs.get("strides", [1, 1])),
            "dilations": list(attrs.get("dilations", [1, 1])),
            "pads": list(attrs.get("pads", [0, 0, 0, 0])),
        }
        if got != wanted:
            self._fail(f"Conv {_node_name(node)} has {got} but {call.name} has {wanted}")

    def _put(self, key: str, array: np.ndarray, node: onnx.NodeProto) -> None:
        target = self.expected[key]
        if tuple(array.shape) != tuple(target.shape):
            self._fail(
                f"{node.op_type} {_node_name(node)} gives {key} the shape {tuple(array.shape)}, "
                f"but the network's is {tuple(target.shape)}"
            )
        # torch.tensor copies: arrays read from an ONNX file are read-only
        tensor = torch.tensor(np.asarray(array), dtype=target.dtype)
        if key in self.new and not torch.equal(self.new[key], tensor):
            self._fail(f"{key} is shared by several graph layers that hold different values")
        self.new[key] = tensor

    def _expect(self, node: onnx.NodeProto, op: str, call: _Call) -> None:
        if node.op_type != op:
            self._fail(
                f"{call.name} ({type(call.module).__name__}) meets {node.op_type} "
                f"{_node_name(node)} where the graph should have a {op}"
            )

    def _array(self, node: onnx.NodeProto, index: int) -> np.ndarray:
        if index >= len(node.input) or node.input[index] not in self.alias:
            self._fail(f"{node.op_type} {_node_name(node)} has no constant input {index}")
        source = self.alias[node.input[index]]
        self.used.add(source)
        return self.weights[source]

    def _reads(self, node: onnx.NodeProto) -> bool:
        """Whether the node reads a float constant: a layer with weights (or something this
        importer cannot place, which must then fail rather than be skipped)."""
        return any(n in self.alias and _is_float(self.weights[self.alias[n]]) for n in node.input)

    def _fail(self, detail: str) -> NoReturn:
        raise CheckpointMismatchError(
            f"{self.path} does not fit {_arch_of(self.model)} ({self.looks}): {detail}"
        )


def _graph_weights(graph: onnx.GraphProto) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Constant tensors by name, and a map from every name that carries one (through Identity
    nodes, which exporters insert for shared or repeated values) to its source."""
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                weights[node.output[0]] = numpy_helper.to_array(value)
    alias = {name: name for name in weights}
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in alias:
            alias[node.output[0]] = alias[node.input[0]]
    return weights, alias


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _is_float(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.floating)


def _node_name(node: onnx.NodeProto) -> str:
    return repr(node.name or node.output[0])


def _read_onnx(path: Path) -> onnx.ModelProto:
    if not path.is_file():
        raise UnreadableCheckpointError(f"ONNX model not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as error:  # protobuf decode errors and friends for damaged files
        raise UnreadableCheckpointError(
            f"cannot read {path}: the file is truncated or not an ONNX model "
            f"({type(error).__name__}: {_first_line(error)})"
        ) from error
    if not model.graph.node:
        raise UnreadableCheckpointError(f"{path} is not an ONNX model: its graph is empty")
    return model


def _input_hw(graph: onnx.GraphProto) -> tuple[int, int]:
    """The graph's fixed input height and width, else OSNet's usual 256x128."""
    initialisers = {t.name for t in graph.initializer}
    image = next(i for i in graph.input if i.name not in initialisers)
    dims = [d.dim_value for d in image.type.tensor_type.shape.dim]
    return (dims[2], dims[3]) if len(dims) == 4 and dims[2] > 0 and dims[3] > 0 else (256, 128)


def _min_cosine_to_onnx(model: nn.Module, path: Path, height: int, width: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    image = session.get_inputs()[0]
    batch = image.shape[0] if isinstance(image.shape[0], int) and image.shape[0] > 0 else 2
    x = np.random.default_rng(0).standard_normal((batch, 3, height, width)).astype(np.float32)
    want = np.asarray(session.run(None, {image.name: x})[0], np.float32).reshape(batch, -1)
    training = model.training
    try:
        with torch.no_grad():
            got = model.eval()(torch.from_numpy(x).to(_device_of(model)))
        got = got.reshape(batch, -1).float().cpu().numpy()
    finally:
        model.train(training)
    dots = (want * got).sum(1)
    norms = np.linalg.norm(want, axis=1) * np.linalg.norm(got, axis=1)
    return float(np.min(dots / np.maximum(norms, 1e-12)))
