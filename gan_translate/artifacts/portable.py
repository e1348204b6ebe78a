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

What a translator's file runs is the model's ``translator_export_program(direction)``
(:class:`~gan_translate.models.capabilities.TranslatorProgram`): the generator alone, or, for a stochastic
translator (UNSB's bridge), a program with more inputs after the image, which the model names and shapes (UNSB:
``latents`` and ``noise``; a noise side ``"height"`` / ``"width"`` is the padded image's). Those inputs go into the
file as they are (no padding; ONNX input names, TorchScript positional arguments after the image, in that order), and
their metadata entries say what to feed.

Samplers (DCGAN, StyleGAN2: :class:`PortableSampler`) go the other way: latents ``z`` (float32 ``(N, z_dim)``, any
``N``) -> images float32 ``(N, C, R, R)`` in [-1, 1], what the model's ``decode(z)`` gives. What the file runs is the
model's own ``export_program()`` and what it takes its ``sampler_spec`` (:class:`~gan_translate.models.capabilities.SamplerSpec`):
a sampler with ``truncation`` (StyleGAN2: its EMA generator with the constant noise maps) takes a second input, the
truncation ``psi`` (a scalar or shape ``(1,)``; 1, the default, is off), so that users can truncate without
re-exporting. StyleGAN2's program runs its modulated convolutions unfused
(:func:`~gan_translate.nn.stylegan2.unfuse_modulated_convs`), the form whose trace keeps a dynamic batch; only
float rounding differs (~1e-6, tested to 1e-4 against ``decode``), and the model's network itself is untouched.
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
from gan_translate.models.capabilities import ProgramInput

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
    inputs: tuple[ProgramInput, ...] = ()
    """The program's inputs after the image (``network(image, *inputs)``), as the model declares them (UNSB's
    ``latents`` and ``noise``); none for a plain generator."""

    def file_metadata(self, fmt: str) -> dict[str, str]:
        """Everything a user needs to feed the file, as strings (ONNX metadata values must be)."""
        extra = {"inputs": ", ".join([INPUT_NAME, *(i.name for i in self.inputs)]),
                 **{f"input_{i.name}": i.description for i in self.inputs}} if self.inputs else {}
        return {
            **self.metadata,
            **extra,
            "format": fmt,
            "size_multiple": str(self.size_multiple),
            "min_side": str(self.min_side),
            "in_channels": str(self.in_channels),
            "out_channels": str(self.out_channels),
            "input": f"float32 NCHW RGB in [-1, 1], height and width >= {self.min_side}, any batch size",
            "output": "float32 NCHW in [-1, 1], the input's height and width",
            "padding": f"inside the file: reflect to a multiple of {self.size_multiple} (bottom / right), cropped back",
        }

    def example(self) -> tuple[Tensor, ...]:
        """Inputs for tracing: an image of batch 2 and at least two multiples a side, so that no traced size is 1
        (which ``torch.export`` would specialise) and height differs from width (so the two axes stay apart); then
        standard normal values for each of :attr:`inputs`, its ``height`` / ``width`` the image's."""
        blocks = max(2, -(-self.min_side // self.size_multiple))
        generator = torch.Generator().manual_seed(0)
        shape = (2, self.in_channels, blocks * self.size_multiple, (blocks + 1) * self.size_multiple)
        image = torch.rand(shape, generator=generator) * 2 - 1
        sides = {"height": shape[2], "width": shape[3]}
        extras = [torch.randn([sides.get(d, d) if isinstance(d, str) else d for d in i.shape], generator=generator)
                  for i in self.inputs]
        return (image, *extras)


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


class _PadToMultipleWith1(PadToMultiple):
    """:class:`PadToMultiple` for a program with one input after the image (passed on as it is)."""

    def forward(self, image: Tensor, input1: Tensor) -> Tensor:  # type: ignore[override]
        height, width = image.shape[-2], image.shape[-1]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        output = self.network(F.pad(image, [0, pad_w, 0, pad_h], mode="reflect"), input1)
        return output[:, :, :height, :width].clamp(-1.0, 1.0)


class _PadToMultipleWith2(PadToMultiple):
    """:class:`PadToMultiple` for a program with two inputs after the image (UNSB's latents and noise)."""

    def forward(self, image: Tensor, input1: Tensor, input2: Tensor) -> Tensor:  # type: ignore[override]
        height, width = image.shape[-2], image.shape[-1]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        output = self.network(F.pad(image, [0, pad_w, 0, pad_h], mode="reflect"), input1, input2)
        return output[:, :, :height, :width].clamp(-1.0, 1.0)


# TorchScript scripts fixed signatures (no *args): one wrapper per number of inputs after the image.
_PAD_WRAPPERS: dict[int, type[PadToMultiple]] = {0: PadToMultiple, 1: _PadToMultipleWith1, 2: _PadToMultipleWith2}


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
        if len(generator.inputs) not in _PAD_WRAPPERS:
            raise UserError(f"a TorchScript export takes at most {max(_PAD_WRAPPERS)} inputs besides the image, "
                            f"this program has {len(generator.inputs)}")
        traced = torch.jit.trace(network, generator.example(), check_trace=False)
        program = torch.jit.script(_PAD_WRAPPERS[len(generator.inputs)](traced, generator.size_multiple).eval())
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
    # Positional (a tuple, one entry an argument): whatever the network's forward calls its inputs. The extra inputs'
    # ``height`` / ``width`` axes are the padded image's; their other axes are fixed.
    sides = {"height": multiple * blocks, "width": multiple * width_blocks}
    extra = tuple({axis: sides[d] for axis, d in enumerate(i.shape) if isinstance(d, str)} or None
                  for i in generator.inputs)
    shapes = ({0: torch.export.Dim("batch", min=1), 2: sides["height"], 3: sides["width"]}, *extra)
    name = type(network).__name__
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on internals; failures still raise
        try:
            # torch.export first, on its own: it raises when an axis cannot stay dynamic, where torch.onnx.export
            # would retry with the axes narrowed to what it could prove (or fixed), and say nothing.
            program = torch.export.export(network, generator.example(), dynamic_shapes=shapes, strict=False)
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
    (inner_in, *inner_extras), (inner_out,) = graph.input, graph.output
    # The generator's own input / output names (its forward's argument, torch's last op) become internal ones, so
    # that they can never clash with the file's ``image`` / ``translated``; a program's other inputs take the names
    # the model gave them.
    padded, generated = _PREFIX + "padded", _PREFIX + "generated"
    if len(inner_extras) != len(generator.inputs):
        raise UserError(f"the exported graph has {len(inner_extras)} inputs besides the image where the program "
                        f"declares {len(generator.inputs)} ({', '.join(i.name for i in generator.inputs)}): one is unused")
    renames = {inner_in.name: padded, inner_out.name: generated,
               **{inner.name: declared.name for inner, declared in zip(inner_extras, generator.inputs)}}
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
    for declared in generator.inputs:  # their sides are the padded image's: named apart from the image's own
        dims = [f"padded_{d}" if isinstance(d, str) else d for d in declared.shape]
        graph.input.append(helper.make_tensor_value_info(declared.name, TensorProto.FLOAT, dims))
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", generator.out_channels, "height", "width"]))


# ----------------------------------------------------------------------------- samplers: latents -> images

@dataclass(frozen=True)
class PortableSampler:
    """A sampling model's export program (latents -> images, eval mode, any batch size) and what a file of it records.

    ``program`` is the model's ``export_program()``: ``program(z)``, or ``program(z, psi)`` with ``psi`` a (1,) tensor
    where the model's ``sampler_spec`` has ``truncation`` (StyleGAN2).
    """

    program: nn.Module
    z_dim: int
    resolution: int
    channels: int
    truncation: bool
    """Whether the file takes the truncation ``psi`` (the model's ``sampler_spec.truncation``)."""
    name: str
    """What the one-line error of a failed export calls the network (``the generator_ema of a stylegan2 model``)."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Extra string entries for the file (model, version, hyperparameters, ...); the shape entries are added."""

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
        """Inputs for tracing: batch 2 (``torch.export`` specialises a traced size of 1) and, with truncation, a psi
        other than 1, so that no trace can drop the truncation."""
        z = torch.randn(2, self.z_dim, generator=torch.Generator().manual_seed(0))
        return (z, torch.tensor([0.7])) if self.truncation else (z,)


class _DefaultPsi(nn.Module):
    """The TorchScript program of a sampler with truncation (StyleGAN2): ``program(z)``, ``program(z, 0.7)`` or ``program(z, tensor)``
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
    program = sampler.program.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
        # The generators' shape checks run once, on the example; the file's users get the documented shapes.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # Traced at batch 2: no op of an export program depends on the batch size (StyleGAN2's runs its modulated
        # convs unfused; the parity tests run batches 1 and 3).
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

    program = sampler.program.eval()
    batch = torch.export.Dim("batch", min=1)
    shapes = ({0: batch}, None) if sampler.truncation else ({0: batch},)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on internals; failures still raise
        try:
            # torch.export on its own first, as for translators: it raises if the batch cannot stay dynamic.
            exported = torch.export.export(program, sampler.example(), dynamic_shapes=shapes, strict=False)
            model = torch.onnx.export(exported, opset_version=ONNX_OPSET, dynamo=True, external_data=False,
                                      verbose=False).model_proto
        except Exception as error:  # noqa: BLE001 - the exporters raise many kinds; the user needs one line
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(f"torch.onnx cannot export {sampler.name} for any batch size ({reason}); "
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
