"""A person ready to render: posed walk cycle, painted texture, skirt or coat tails, accessories.

``PersonModel`` is renderer-agnostic numpy data (so it can be built and tested alone);
``GpuPerson`` is the same person uploaded once, drawn each frame by picking a phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reunite.synth.accessories import accessory_mesh
from reunite.synth.appearance import Identity, Outfit
from reunite.synth.bodies import BodyKit, PosedBody, RenderTopology
from reunite.synth.clothing import paint_texture, vertex_inflation
from reunite.synth.mesh import Mesh, cylinder, merge, solid_texture
from reunite.synth.renderer import Draw, GpuMesh, Renderer

# Carried things that a person annotation would not include in the person's box.
_NOT_PART_OF_BOX = {"umbrella", "walker"}


@dataclass
class PersonModel:
    identity: Identity
    outfit: Outfit
    body: PosedBody
    texture: np.ndarray
    worn: list[Mesh]  # per phase: skirt/coat tails and accessories inside the person's box
    carried: list[Mesh]  # per phase: umbrella, walker (occlude, but not part of the box)
    cycle_length_m: float

    @property
    def phases(self) -> int:
        return len(self.body.vertices)


def build_person(
    kit: BodyKit,
    uv_maps: dict[str, np.ndarray],
    identity: Identity,
    rng: np.random.Generator,
    outfit: Outfit | None = None,
    standing: bool = False,
) -> PersonModel:
    """Pose, dress and equip one identity (``outfit`` overrides the day's clothes)."""
    outfit = outfit or identity.outfit
    arm_mode = next((k for k in ("walker", "cane", "umbrella") if outfit.has(k)), "swing")
    inflate = vertex_inflation(kit, identity, outfit)
    body = kit.walk_cycle(
        identity.phenotype,
        identity.gait,
        arm_mode,
        inflate=inflate,
        standing=standing,
        height_m=identity.height_m,
    )
    texture = paint_texture(uv_maps, identity, outfit, rng)
    # a generator of their own: the same bag or hat whatever else consumed ``rng``
    shapes = _attachment_shapes(outfit, body.height_m, np.random.default_rng(identity.id))
    worn = [_place_attachments(body, p, shapes, carried=False) for p in range(len(body.vertices))]
    carried = [_place_attachments(body, p, shapes, carried=True) for p in range(len(body.vertices))]
    return PersonModel(
        identity,
        outfit,
        body,
        texture,
        worn,
        carried,
        cycle_length_m=identity.gait["cycle"] * body.height_m,
    )


def _attachment_shapes(
    outfit: Outfit, height: float, rng: np.random.Generator
) -> list[tuple[Mesh, str, bool]]:
    """Rigid meshes that follow a bone, built once: (mesh, anchor, carried-not-worn)."""
    shapes = []
    tails = _garment_tails(outfit, height)
    if tails is not None:
        shapes.append((tails, "pelvis_front", False))  # hangs from the hips, upright
    for acc in outfit.accessories:
        if acc.kind == "mask":
            continue  # painted on the face texture
        mesh, anchor = accessory_mesh(acc.kind, acc.rgb, height, rng)
        shapes.append((mesh, anchor, acc.kind in _NOT_PART_OF_BOX))
    return shapes


def _place_attachments(
    body: PosedBody, phase: int, shapes: list[tuple[Mesh, str, bool]], carried: bool
) -> Mesh | None:
    """The worn (or carried) attachments of one walk phase, merged into one draw."""
    placed = [
        mesh.transformed(body.anchors[anchor][phase])
        for mesh, anchor, is_carried in shapes
        if is_carried == carried
    ]
    return _paletted(placed)


def _garment_tails(outfit: Outfit, height: float) -> Mesh | None:
    """A skirt, or the part of a long coat below the waist: a flared cone from the hips."""
    low, up = outfit.lower, outfit.upper
    if up.kind in ("coat", "raincoat"):
        top_z, bottom_z, rgb = 0.5 * height, (0.3 if up.kind == "coat" else 0.38) * height, up.rgb
    elif low.kind == "skirt":
        top_z, bottom_z, rgb = 0.56 * height, 0.33 * height, low.rgb  # hem above the knee
    else:
        return None
    r_top = 0.095 * height
    r_bottom = r_top * (1.35 if low.kind == "skirt" else 1.25)
    cone = cylinder(
        r_bottom, top_z - bottom_z, segments=16, radius_top=r_top, texture=solid_texture(rgb)
    )
    return cone.transformed(
        np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, bottom_z], [0, 0, 0, 1.0]])
    )


def _paletted(meshes: list[Mesh]) -> Mesh | None:
    """Merge meshes of different solid colours into one draw with an N x 1 palette texture."""
    if not meshes:
        return None
    colours = [m.texture.reshape(-1, 3).mean(axis=0) for m in meshes]
    palette = np.array(colours, np.uint8).reshape(1, len(meshes), 3)
    moved = []
    for i, m in enumerate(meshes):
        uv = np.full_like(m.uvs, 0.5)
        uv[:, 0] = (i + 0.5) / len(meshes)
        moved.append(Mesh(m.positions, m.normals, uv, m.faces, palette))
    return merge(moved, texture=palette)


class GpuPerson:
    """A person uploaded once: one VAO per walk phase and level of detail, one shared texture."""

    def __init__(
        self,
        renderer: Renderer,
        person: PersonModel,
        topology: RenderTopology,
        lod_topology: RenderTopology | None = None,
    ) -> None:
        self.renderer = renderer
        self.person = person
        self.texture = renderer.upload_texture(person.texture)
        self.body = self._upload_phases(topology)
        self.body_lod = self._upload_phases(lod_topology) if lod_topology is not None else None
        self.worn = [renderer.upload(m) if m is not None else None for m in person.worn]
        self.carried = [renderer.upload(m) if m is not None else None for m in person.carried]

    def _upload_phases(self, topo: RenderTopology) -> list[GpuMesh]:
        b = self.person.body
        idx = topo.to_vertex
        return [
            self.renderer.upload(
                Mesh(
                    b.vertices[p][idx], b.normals[p][idx], topo.uvs, topo.faces, self.person.texture
                ),
                texture=self.texture,
            )
            for p in range(self.person.phases)
        ]

    def draws(self, model: np.ndarray, phase: int, object_id: int, lod: bool = False) -> list[Draw]:
        """Draws for one frame; ``lod`` picks the coarse body (for people far away)."""
        p = phase % self.person.phases
        body = self.body_lod if lod and self.body_lod is not None else self.body
        out = [Draw(body[p], model, object_id)]
        if self.worn[p] is not None:
            out.append(Draw(self.worn[p], model, object_id))
        if self.carried[p] is not None:
            out.append(Draw(self.carried[p], model, 0))
        return out

    def release(self) -> None:
        for m in [*self.body, *(self.body_lod or [])]:
            self.renderer.release(m, with_texture=False)
        self.texture.release()
        for m in [*self.worn, *self.carried]:
            if m is not None:
                self.renderer.release(m)


def person_matrix(x: float, y: float, heading: float) -> np.ndarray:
    """Person frame (facing +Y) to world: stand at (x, y) facing ``heading`` (rad from +X)."""
    a = heading - np.pi / 2
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0, x], [s, c, 0, y], [0, 0, 1, 0], [0, 0, 0, 1.0]])
