"""Exports that run without gan-translate: one direction's generator as an ONNX graph or a TorchScript program.

Both files take float32 NCHW RGB images in [-1, 1] of any height and width (from ``min_side`` pixels up) and
return the translation at the same size, in [-1, 1]. Our generators need sides that are multiples of
``size_multiple``; the file itself does what ``translate`` does (:mod:`gan_translate.inference`): reflect-pad the
bottom / right up to the multiple, run the generator, crop back, clamp. So a user's five lines of onnxruntime or
``torch.jit.load`` give ``translate``'s result (to float rounding), with no padding code of their own.

Why the padding is added to the ONNX graph afterwards rather than traced: ``torch.export`` cannot prove facts
such as "the padded height is a multiple of 4" or "the pad is smaller than the image" for a symbolic height, and
``torch.onnx.export`` then silently narrows the dynamic axes to what it could prove (e.g. heights ``4k - 3``). The
generator alone exports cleanly with heights ``multiple * k``, through ``torch.export`` called on its own (which
raises, rather than narrows, when an axis cannot stay dynamic); the few ONNX nodes before and after it (Shape, Mod,
Pad, Slice, Clip) are written here by hand and checked by ``onnx.checker``. TorchScript has no such reasoning: the
generator is traced at one size (its ops do not depend on it) and a scripted wrapper pads with plain integers.

Each file records the model, direction, size multiple, smallest side, channels and the package version in its
metadata (ONNX ``metadata_props``; TorchScript's ``_extra_files["gan_translate.json"]``).
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_translate.errors import UserError

__all__ = [
    "INPUT_NAME",
    "ONNX_EXTRA_HINT",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "TORCHSCRIPT_METADATA_FILE",
    "PadToMultiple",
    "PortableGenerator",
    "onnx_bytes",
    "require_onnx_exporter",
    "torchscript_bytes",
]

#: The ONNX opset of the file: torch.onnx's own (torchlib's) opset, run by onnxruntime 1.14 and newer.
ONNX_OPSET = 18
ONNX_EXTRA_HINT = "ONNX export needs the onnx extra: pip install 'gan-translate[onnx]'"
#: The graph's input and output names (ONNX); the TorchScript program takes and returns one tensor.
INPUT_NAME, OUTPUT_NAME = "image", "translated"
#: The ``_extra_files`` entry of a TorchScript export that holds its metadata (JSON).
TORCHSCRIPT_METADATA_FILE = "gan_translate.json"
_PREFIX = "gan_translate_"  # names of the nodes added around the generator: never those torch.onnx gives


@dataclass(frozen=True)
class PortableGenerator:
    """One direction's generator (eval mode) and what a file of it records."""

    network: nn.Module
    size_multiple: int
    min_side: int
    """The smallest height / width the file takes: the network's ``min_size``, at least one ``size_multiple``."""
    in_channels: int
    out_channels: int
    metadata: dict[str, str] = field(default_factory=dict)
    """Extra string entries for the file (model, direction, version, ...); the size and channel entries are added."""

    def file_metadata(self, fmt: str) -> dict[str, str]:
        """Everything a user needs to feed the file, as strings (ONNX metadata values must be)."""
        return {
            **self.metadata,
            "format": fmt,
            "size_multiple": str(self.size_multiple),
            "min_side": str(self.min_side),
            "in_channels": str(self.in_channels),
            "out_channels": str(self.out_channels),
            "input": f"float32 NCHW RGB in [-1, 1], height and width >= {self.min_side}, any batch size",
            "output": "float32 NCHW in [-1, 1], the input's height and width",
            "padding": f"inside the file: reflect to a multiple of {self.size_multiple} (bottom / right), cropped back",
        }

    def example(self) -> Tensor:
        """An input for tracing: batch 2 and at least two multiples a side, so that no traced size is 1 (which
        ``torch.export`` would specialise) and height differs from width (so the two axes stay apart)."""
        blocks = max(2, -(-self.min_side // self.size_multiple))
        generator = torch.Generator().manual_seed(0)
        shape = (2, self.in_channels, blocks * self.size_multiple, (blocks + 1) * self.size_multiple)
        return torch.rand(shape, generator=generator) * 2 - 1


class PadToMultiple(nn.Module):
    """``network`` on any image size, as ``translate`` runs it: reflect-pad to ``multiple``, crop back, clamp.

    Written for ``torch.jit.script``: the pad arithmetic stays integer code in the program, so every size works.
    """

    def __init__(self, network: nn.Module, multiple: int) -> None:
        super().__init__()
        self.network = network
        self.multiple = multiple

    def forward(self, image: Tensor) -> Tensor:
        height, width = image.shape[-2], image.shape[-1]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        output = self.network(F.pad(image, [0, pad_w, 0, pad_h], mode="reflect"))
        return output[:, :, :height, :width].clamp(-1.0, 1.0)


def require_onnx_exporter() -> None:
    """One line naming the extra when ``onnx`` / ``onnxscript`` (what ``torch.onnx.export`` needs) are missing;
    checked before any checkpoint is read."""
    try:
        import onnx  # noqa: F401 - only whether it imports
        import onnxscript  # noqa: F401
    except ImportError:
        raise UserError(ONNX_EXTRA_HINT) from None


def torchscript_bytes(generator: PortableGenerator) -> bytes:
    """The TorchScript program of ``generator`` (padding included) with its metadata, as ``torch.jit.save`` writes it."""
    # A copy without gradients: the program's outputs must not require grad (``.numpy()`` on them just works).
    network = copy.deepcopy(generator.network).eval().requires_grad_(False)
    with torch.no_grad(), warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, yet TorchScript files still load in every PyTorch
        # (and in LibTorch from C++): the format users of this export ask for.
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
        # The generators' size check runs once, on the example, and is rightly not part of the trace: the wrapper
        # below always hands the traced network a multiple of its size.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        traced = torch.jit.trace(network, generator.example(), check_trace=False)
        program = torch.jit.script(PadToMultiple(traced, generator.size_multiple).eval())
        buffer = io.BytesIO()
        extra = {TORCHSCRIPT_METADATA_FILE: json.dumps(generator.file_metadata("torchscript"), indent=1)}
        torch.jit.save(program, buffer, _extra_files=extra)
    return buffer.getvalue()


def onnx_bytes(generator: PortableGenerator) -> bytes:
    """The ONNX model of ``generator`` (opset :data:`ONNX_OPSET`; batch, height and width dynamic; padding and
    cropping included; weights inside the file), serialised."""
    require_onnx_exporter()
    import onnx

    network = generator.network.eval()
    multiple = generator.size_multiple
    blocks = torch.export.Dim("height_blocks", min=-(-generator.min_side // multiple))
    width_blocks = torch.export.Dim("width_blocks", min=-(-generator.min_side // multiple))
    # Positional (a tuple for the one argument): whatever the network's forward calls its input.
    shapes = ({0: torch.export.Dim("batch", min=1), 2: multiple * blocks, 3: multiple * width_blocks},)
    name = type(network).__name__
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on internals; failures still raise
        try:
            # torch.export first, on its own: it raises when an axis cannot stay dynamic, where torch.onnx.export
            # would retry with the axes narrowed to what it could prove (or fixed), and say nothing.
            program = torch.export.export(network, (generator.example(),), dynamic_shapes=shapes, strict=False)
            model = torch.onnx.export(program, opset_version=ONNX_OPSET, dynamo=True, external_data=False,
                                      verbose=False).model_proto
        except Exception as error:  # noqa: BLE001 - the exporters raise many kinds; the user needs one line
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(f"torch.onnx cannot export this {name} for any image size ({reason}); "
                            "--format torchscript may work") from None
    _pad_and_crop_around(model, generator)
    onnx.helper.set_model_props(model, generator.file_metadata("onnx"))
    model.doc_string = generator.metadata.get("description", "")
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _pad_and_crop_around(model: Any, generator: PortableGenerator) -> None:
    """Turn the exported generator (sides ``multiple * k``) into the file's graph (any side >= ``min_side``):
    new input -> reflect pad to the multiple -> generator -> slice back to the input's size -> clip to [-1, 1]."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    (inner_in,), (inner_out,) = graph.input, graph.output
    # The generator's own input / output names (its forward's argument, torch's last op) become internal ones, so
    # that they can never clash with the file's ``image`` / ``translated``.
    padded, generated = _PREFIX + "padded", _PREFIX + "generated"
    renames = {inner_in.name: padded, inner_out.name: generated}
    for step in graph.node:
        names_in, names_out = [renames.get(n, n) for n in step.input], [renames.get(n, n) for n in step.output]
        del step.input[:], step.output[:]
        step.input.extend(names_in)
        step.output.extend(names_out)

    def constant(name: str, values: Any, dtype: type = np.int64) -> Any:
        tensor = numpy_helper.from_array(np.asarray(values, dtype=dtype), _PREFIX + name)
        return helper.make_node("Constant", [], [_PREFIX + name], value=tensor)

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> Any:
        return helper.make_node(op, inputs, [output], **attributes)

    p, m = _PREFIX, generator.size_multiple
    before = [
        constant("multiple", [m, m]), constant("no_pad", [0] * 6),
        node("Shape", [INPUT_NAME], p + "size", start=2),  # (H, W)
        node("Mod", [p + "size", p + "multiple"], p + "remainder"),
        node("Sub", [p + "multiple", p + "remainder"], p + "short"),
        node("Mod", [p + "short", p + "multiple"], p + "pad"),  # (m - H % m) % m: 0 when H is a multiple
        # ONNX pads are (begin of N, C, H, W, end of N, C, H, W): only the ends of H and W, as translate pads.
        node("Concat", [p + "no_pad", p + "pad"], p + "pads", axis=0),
        node("Pad", [INPUT_NAME, p + "pads"], padded, mode="reflect"),
    ]
    after = [
        constant("starts", [0, 0]), constant("axes", [2, 3]),
        node("Slice", [generated, p + "starts", p + "size", p + "axes"], p + "cropped"),
        constant("low", -1.0, np.float32), constant("high", 1.0, np.float32),
        node("Clip", [p + "cropped", p + "low", p + "high"], OUTPUT_NAME),
    ]
    nodes = [*before, *graph.node, *after]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:], graph.output[:]
    graph.input.append(helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", generator.in_channels, "height", "width"]))
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", generator.out_channels, "height", "width"]))
