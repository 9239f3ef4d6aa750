"""Reunite: missing-person matching over district CCTV.

Layers read top-down: ``reunite.models`` (images in, embeddings out), ``reunite.pipeline``
(footage in, sightings out), ``reunite.api`` (HTTP over the pipeline). ``reunite.synth`` renders
the synthetic multi-camera world that everything is trained, tested and demonstrated on.
"""

__version__ = "0.1.0"
