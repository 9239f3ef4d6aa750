"""The models layer: images in, L2-normalised float32 embeddings out; knows nothing of storage.

Every embedder follows ``reunite.models.embedder.Embedder``, so the pipeline, the index and the
evaluation can swap a hand-crafted baseline for a learned model without other changes.
"""
