"""Exports that run without gan-translate: one direction's generator as an ONNX graph or a TorchScript program.

Both files take float32 NCHW RGB images in [-1, 1] of any height and width (from ``min_side`` pixels up) and
return the translation at the same size, in [-1, 1]. Our generators need sides that are multiples of
``size_multiple``; the file itself does what ``translate`` does (:mod:`gan_translate.inference.translator`): reflect-pad the
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

Samplers (DCGAN, StyleGAN2: :class:`PortableSampler`) go the other way: latents ``z`` (float32 ``(N, z_dim)``, any
``N``) -> images float32 ``(N, C, R, R)`` in [-1, 1], what the model's ``decode(z)`` gives. A StyleGAN2 file is its
EMA generator with the constant noise maps and takes a second input, the truncation ``psi`` (a scalar or shape
``(1,)``; 1, the default, is off), so that users can truncate without re-exporting. Its modulated convolutions fold
the batch into the groups of one convolution (``groups = N``); ONNX's ``Conv`` takes ``group`` as a fixed attribute,
so that graph cannot keep a dynamic batch (torch.onnx fails on the symbolic group), and a TorchScript trace would
fix ``N`` to the traced batch. The exported copy therefore runs each :class:`~gan_translate.nn.stylegan2.ModulatedConv2d`
in the official code's other form (``fused_modconv=False``): scale the input channels by the style, one ordinary
convolution with the shared weight, scale the output channels by the demodulation coefficients. It is the same
function (the convolution is linear in the input and the weight) with the same parameters; only float rounding
differs (~1e-6, tested to 1e-4 against ``decode``), and the network itself is untouched.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_translate.core.errors import UserError
from gan_translate.nn.stylegan2 import ModulatedConv2d, StyleGAN2Generator, _upsample2x

__all__ = [
    "INPUT_NAME",
    "ONNX_EXTRA_HINT",
    "ONNX_OPSET",
    "OUTPUT_NAME",
    "PSI_NAME",
    "SAMPLES_NAME",
    "TORCHSCRIPT_METADATA_FILE",
    "Z_NAME",
    "PadToMultiple",
    "PortableGenerator",
    "PortableSampler",
    "onnx_bytes",
    "require_onnx_exporter",
    "sampler_onnx_bytes",
    "sampler_torchscript_bytes",
    "torchscript_bytes",
]

#: The ONNX opset of the file: torch.onnx's own (torchlib's) opset, run by onnxruntime 1.14 and newer.
ONNX_OPSET = 18
ONNX_EXTRA_HINT = "ONNX export needs the onnx extra: pip install 'gan-translate[onnx]'"
#: The graph's input and output names (ONNX); the TorchScript program takes and returns one tensor.
INPUT_NAME, OUTPUT_NAME = "image", "translated"
#: A sampler's inputs (latents, StyleGAN2's truncation) and output (ONNX names; TorchScript: ``program(z, psi)``).
Z_NAME, PSI_NAME, SAMPLES_NAME = "z", "psi", "images"
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


# ----------------------------------------------------------------------------- samplers: latents -> images

@dataclass(frozen=True)
class PortableSampler:
    """A sampling model's generator (latents -> images, eval mode) and what a file of it records.

    ``network`` is the generator ``decode`` runs: DCGAN's ``generator``, StyleGAN2's ``generator_ema`` (a
    :class:`~gan_translate.nn.stylegan2.StyleGAN2Generator`, whose file also takes the truncation ``psi``).
    """

    network: nn.Module
    z_dim: int
    resolution: int
    channels: int
    metadata: dict[str, str] = field(default_factory=dict)
    """Extra string entries for the file (model, version, hyperparameters, ...); the shape entries are added."""

    @property
    def truncation(self) -> bool:
        """Whether the file takes ``psi``: StyleGAN2's mapping network has a ``w_avg`` to truncate towards."""
        return isinstance(self.network, StyleGAN2Generator)

    def file_metadata(self, fmt: str) -> dict[str, str]:
        """Everything a user needs to feed the file, as strings (ONNX metadata values must be)."""
        inputs = f"{Z_NAME}: float32 (batch, {self.z_dim}) standard normal latents, any batch size"
        if self.truncation:
            shape = "shape (1,)" if fmt == "onnx" else "a float, a 0-d or (1,) tensor, or omitted (= 1)"
            inputs += (f"; {PSI_NAME}: float32 {shape}, the truncation psi (w_avg + psi * (w - w_avg); "
                       "1 = off; 0 = the average image)")
        return {
            **self.metadata,
            "format": fmt,
            "z_dim": str(self.z_dim),
            "resolution": str(self.resolution),
            "channels": str(self.channels),
            "inputs": inputs,
            "output": f"{SAMPLES_NAME}: float32 (batch, {self.channels}, {self.resolution}, {self.resolution}) in [-1, 1]",
        }

    def example(self) -> tuple[Tensor, ...]:
        """Inputs for tracing: batch 2 (``torch.export`` specialises a traced size of 1) and, for StyleGAN2, a psi
        other than 1, so that no trace can drop the truncation."""
        z = torch.randn(2, self.z_dim, generator=torch.Generator().manual_seed(0))
        return (z, torch.tensor([0.7])) if self.truncation else (z,)

    def program(self) -> nn.Module:
        """A copy of the network as the file runs it (eval mode, no gradients), batch-size independent."""
        network = copy.deepcopy(self.network).eval().requires_grad_(False)
        if self.truncation:
            return _StyleGAN2Sampler(_unfuse_modulated_convs(network))
        return _LatentSampler(network)


class _LatentSampler(nn.Module):
    """``z -> network(z)`` clamped to [-1, 1] (DCGAN's tanh output already is; the clamp makes it a promise)."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, z: Tensor) -> Tensor:
        return self.network(z).clamp(-1.0, 1.0)


class _StyleGAN2Sampler(nn.Module):
    """What ``StyleGAN2.decode(z, psi=psi)`` computes with the EMA generator: mapping, one w for every layer,
    truncation towards ``w_avg`` by ``psi`` (a tensor input, so that the file can be truncated at run time),
    synthesis with the constant noise maps, clamped to [-1, 1]."""

    def __init__(self, generator: StyleGAN2Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: Tensor, psi: Tensor) -> Tensor:
        generator = self.generator
        ws = generator.broadcast(generator.mapping(z))
        # Always truncated (decode skips it at psi == 1): lerp with weight 1 returns w itself, so psi = 1 is off.
        ws = generator.mapping.truncate(ws, psi.reshape(1).to(ws.dtype))
        return generator.synthesis(ws, "const").clamp(-1.0, 1.0)


class _UnfusedModulatedConv2d(nn.Module):
    """A :class:`ModulatedConv2d`'s function without folding the batch into groups (official ``fused_modconv=False``).

    ``conv(x, s * w) * d == conv(x * s, w) * d`` per sample (the convolution is linear in input and weight; the
    modulated conv has no bias), with the demodulation ``d`` computed exactly as the original does. One ordinary
    convolution for the whole batch: ONNX's static ``group`` attribute and TorchScript traces then keep any batch.
    """

    def __init__(self, conv: ModulatedConv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        conv = self.conv
        styles = conv.affine(w)  # (N, in)
        weight = conv.weight * conv.weight_gain  # (out, in, k, k), shared by the batch
        if conv.up:
            x = _upsample2x(x)  # the network's own resampling, so the copy follows any change to it
        y = F.conv2d(x * styles[:, :, None, None].to(x.dtype), weight.to(x.dtype), padding=conv.kernel_size // 2)
        if conv.demodulate:
            modulated = weight[None] * styles[:, None, :, None, None]  # (N, out, in, k, k), as ModulatedConv2d
            dcoefs = (modulated.square().sum(dim=(2, 3, 4)) + 1e-8).rsqrt()  # (N, out)
            y = y * dcoefs[:, :, None, None].to(y.dtype)
        return y


def _unfuse_modulated_convs(network: nn.Module) -> nn.Module:
    """``network`` (a copy: changed in place) with every :class:`ModulatedConv2d` wrapped in the unfused form."""
    for parent in list(network.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, ModulatedConv2d):
                setattr(parent, name, _UnfusedModulatedConv2d(child))
    return network


class _DefaultPsi(nn.Module):
    """The TorchScript program of a StyleGAN2 sampler: ``program(z)``, ``program(z, 0.7)`` or ``program(z, tensor)``
    (scripted, so the default and the float are handled in the program; the traced sampler takes a (1,) tensor)."""

    def __init__(self, sampler: nn.Module) -> None:
        super().__init__()
        self.sampler = sampler

    def forward(self, z: Tensor, psi: Union[Tensor, float, None] = None) -> Tensor:  # Union: what TorchScript reads
        if psi is None:
            weight = torch.ones(1, dtype=z.dtype, device=z.device)
        elif isinstance(psi, float):
            weight = torch.full([1], psi, dtype=z.dtype, device=z.device)
        else:
            weight = psi.reshape(1).to(z.dtype)
        return self.sampler(z, weight)


def sampler_torchscript_bytes(sampler: PortableSampler) -> bytes:
    """The TorchScript program of ``sampler`` (``program(z[, psi])`` -> images) with its metadata, as ``torch.jit.save``
    writes it."""
    program = sampler.program()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
        # The generators' shape checks run once, on the example; the file's users get the documented shapes.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # Traced at batch 2: no op depends on the batch size once the modulated convs are unfused (the parity
        # tests run batches 1 and 3).
        traced = torch.jit.trace(program, sampler.example(), check_trace=False)
        module = torch.jit.script(_DefaultPsi(traced).eval()) if sampler.truncation else traced
        buffer = io.BytesIO()
        extra = {TORCHSCRIPT_METADATA_FILE: json.dumps(sampler.file_metadata("torchscript"), indent=1)}
        torch.jit.save(module, buffer, _extra_files=extra)
    return buffer.getvalue()


def sampler_onnx_bytes(sampler: PortableSampler) -> bytes:
    """The ONNX model of ``sampler`` (opset :data:`ONNX_OPSET`; inputs ``z`` with a dynamic batch and, for StyleGAN2,
    ``psi`` of shape (1,); output ``images``; weights inside the file), serialised."""
    require_onnx_exporter()
    import onnx

    program = sampler.program()
    batch = torch.export.Dim("batch", min=1)
    shapes = ({0: batch}, None) if sampler.truncation else ({0: batch},)
    name = type(sampler.network).__name__
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on internals; failures still raise
        try:
            # torch.export on its own first, as for translators: it raises if the batch cannot stay dynamic.
            exported = torch.export.export(program, sampler.example(), dynamic_shapes=shapes, strict=False)
            model = torch.onnx.export(exported, opset_version=ONNX_OPSET, dynamo=True, external_data=False,
                                      verbose=False).model_proto
        except Exception as error:  # noqa: BLE001 - the exporters raise many kinds; the user needs one line
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(f"torch.onnx cannot export this {name} for any batch size ({reason}); "
                            "--format torchscript may work") from None
    _name_sampler_io(model, sampler)
    onnx.helper.set_model_props(model, sampler.file_metadata("onnx"))
    model.doc_string = sampler.metadata.get("description", "")
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _name_sampler_io(model: Any, sampler: PortableSampler) -> None:
    """Give the exported graph the file's interface: ``z`` (batch, z_dim) [, ``psi`` (1,)] -> ``images``.

    ``psi`` is a required shape-(1,) input: ONNX inputs have a fixed rank (onnx.checker wants a shape), and the
    other way to make it optional, an initializer of the same name, costs a warning from onnxruntime on every
    session it opens."""
    from onnx import TensorProto, helper

    graph = model.graph
    inner_inputs, (inner_out,) = list(graph.input), graph.output
    names = [Z_NAME, PSI_NAME] if sampler.truncation else [Z_NAME]
    renames = {inner.name: name for inner, name in zip(inner_inputs, names)}
    renames[inner_out.name] = SAMPLES_NAME
    for step in graph.node:
        names_in, names_out = [renames.get(n, n) for n in step.input], [renames.get(n, n) for n in step.output]
        del step.input[:], step.output[:]
        step.input.extend(names_in)
        step.output.extend(names_out)
    for info in graph.value_info:
        info.name = renames.get(info.name, info.name)
    resolution = sampler.resolution
    del graph.input[:], graph.output[:]
    graph.input.append(helper.make_tensor_value_info(Z_NAME, TensorProto.FLOAT, ["batch", sampler.z_dim]))
    if sampler.truncation:
        graph.input.append(helper.make_tensor_value_info(PSI_NAME, TensorProto.FLOAT, [1]))
    graph.output.append(helper.make_tensor_value_info(
        SAMPLES_NAME, TensorProto.FLOAT, ["batch", sampler.channels, resolution, resolution]))
