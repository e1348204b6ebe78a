"""The foundation every other part stands on, importing nothing of gan-translate above it: images (uint8 <->
tensors), grids (labelled picture grids), files (atomic writes), directions, the name registry, errors, per-rank
random streams, Lightning's private API (``lightning_compat``), the version, and the old module paths (``moved``)."""
