"""Scoring trained models: ``evaluate`` (FID / KID / paired metrics of a checkpoint or two folders) and
``comparison`` (labelled picture rows and per-image tables of a translator beside Gatys).

``from gan_translate.evaluation import evaluate`` (the 0.2 path) keeps working.
"""

from gan_translate.evaluation.evaluate import EvaluationRequest, Item, evaluate, folder_items, format_table, pair_by_name

__all__ = ["EvaluationRequest", "Item", "evaluate", "folder_items", "format_table", "pair_by_name"]
