"""The synthetic multi-camera CCTV world: 3D bodies of every age rendered through CCTV cameras.

It is data, not a model, so it lives beside the core package rather than in ``models/``. World
coordinates are metres, Z up; a camera site's ground is the plane z = 0.
"""
