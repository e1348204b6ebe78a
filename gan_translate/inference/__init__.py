"""Running a trained model: translators from checkpoints or exports (``translator``), full-resolution tiles
(``tiling``), AdaIN stylisation (``style``), unconditional sampling (``generation``) and videos (``video``).

The translator API is re-exported here, so ``from gan_translate.inference import load_translator`` (the 0.1 / 0.2
path) keeps working.
"""

from gan_translate.inference.translator import (
    INFERENCE_PRECISIONS,
    Translator,
    autocast_dtype,
    compile_for_inference,
    load_translator,
    pad_to_multiple,
    prepare_for_inference,
    resolve_device,
    translator_from_model,
    translator_with_settings,
)

__all__ = [
    "INFERENCE_PRECISIONS",
    "Translator",
    "autocast_dtype",
    "compile_for_inference",
    "load_translator",
    "pad_to_multiple",
    "prepare_for_inference",
    "resolve_device",
    "translator_from_model",
    "translator_with_settings",
]
