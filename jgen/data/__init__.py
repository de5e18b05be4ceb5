"""Datasets for jgen: `sources` (names -> random-access sources, offline TFDS builders
in `builders`, IDX files, 2-D toys in `toy2d`) and `pipeline` (grain batches)."""
