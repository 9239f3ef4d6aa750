"""The pipeline layer: footage in, sightings out.

Typed records flow through small stages (Frame → Detection → Track → Sighting), each testable alone
with synthetic input. It knows nothing of HTTP: ``reunite.api`` is a thin layer over it.
"""
