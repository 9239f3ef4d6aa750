"""Bodies of every age from the ``anny`` parametric model, posed in a procedural walk cycle.

One ``BodyKit`` per process wraps the anny model (its first construction builds a ~790 MB cache,
about a minute; later ones take a second). For each person we pose a whole walk cycle once,
as a batch, and the renderer then picks the nearest phase per frame: a frame never calls anny.

Frames: anny's body has Z up, its root at the pelvis and faces -Y with its left side on +X.
We turn it to the *person frame*: feet on z = 0, facing +Y, right side on +X.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Body parts from the dominant skinning bone. Painting garments works on these plus a
# normalised height and a coordinate along each limb.
PART_HEAD, PART_NECK, PART_TORSO, PART_HIPS, PART_ARM, PART_HAND, PART_LEG, PART_FOOT = range(8)

_PART_OF_BONE_PREFIX = [
    ("eye", PART_HEAD),
    ("head", PART_HEAD),
    ("neck", PART_NECK),
    ("spine", PART_TORSO),
    ("clavicle", PART_TORSO),
    ("shoulder", PART_TORSO),
    ("pelvis", PART_HIPS),
    ("root", PART_HIPS),
    ("upperarm", PART_ARM),
    ("lowerarm", PART_ARM),
    ("wrist", PART_HAND),
    ("finger", PART_HAND),
    ("metacarpal", PART_HAND),
    ("upperleg", PART_LEG),
    ("lowerleg", PART_LEG),
    ("foot", PART_FOOT),
    ("toe", PART_FOOT),
]

PHASES = 12  # walk-cycle meshes per person; at CCTV frame rates more are not distinguishable


@dataclass(frozen=True)
class RenderTopology:
    """anny's mesh with vertices split at UV seams (shared by every person)."""

    to_vertex: np.ndarray  # (R,) anny vertex of each render vertex
    uvs: np.ndarray  # (R, 2) float32
    faces: np.ndarray  # (F, 3) uint32 into render vertices


@dataclass
class PosedBody:
    """A person's walk cycle in the person frame (metres, feet on z = 0, facing +Y)."""

    vertices: np.ndarray  # (PHASES, V, 3) float32, anny vertex order
    normals: np.ndarray  # (PHASES, V, 3) float32
    anchors: dict[str, np.ndarray]  # name -> (PHASES, 4, 4) frames for accessories
    height_m: float


def _quiet_import_anny():
    # warp (an anny dependency) prints a CUDA banner on import; keep the CLI's output clean.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        import anny
    return anny


def _rot(axis: str, deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    r = np.eye(4)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


class BodyKit:
    """The anny model plus everything derived once from its fixed topology."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        if cache_dir is not None:
            os.environ["ANNY_CACHE_DIR"] = str(cache_dir)
        import torch

        anny = _quiet_import_anny()
        with contextlib.redirect_stdout(io.StringIO()):
            # Plain torch skinning: the warp kernels print CUDA banners and are no faster here.
            self.model = anny.Anny(skinning_method="lbs")
        self.torch = torch
        m = self.model
        self.labels: list[str] = list(m.bone_labels)
        self.faces = m.faces.numpy().astype(np.int64)
        corner_uv = m.face_texture_coordinate_indices.numpy()
        # Render vertices are the unique (position, uv) pairs: UV seams need split vertices.
        pairs, inverse = np.unique(
            np.stack([self.faces.ravel(), corner_uv.ravel()], 1), axis=0, return_inverse=True
        )
        self.topology = RenderTopology(
            pairs[:, 0],
            _v_down(m.texture_coordinates.numpy()[pairs[:, 1]]),
            inverse.reshape(-1, 3).astype(np.uint32),
        )
        weights = m.vertex_bone_weights.numpy()
        bones = m.vertex_bone_indices.numpy()
        dominant = bones[np.arange(len(bones)), weights.argmax(1)]
        self.vertex_part = np.array([self._part_of(self.labels[b]) for b in dominant], np.int8)
        self.vertex_side = np.array(
            [1 if self.labels[b].endswith(".R") else 0 for b in dominant], np.int8
        )
        rest = self._forward(
            np.tile(np.eye(4), (1, len(self.labels), 1, 1)), {"age": 0.6, "gender": 0.5}
        )
        self._template = self._to_person_frame(rest["vertices"][0])
        lift = self._template[:, 2].min()
        self._template[:, 2] -= lift
        self.template_height = float(self._template[:, 2].max())
        self.vertex_limb_t = self._limb_coordinate(self._template, rest, lift)
        # x, y, z in body heights (z = normalised height from the feet): where garments are cut.
        self.template_vertices_normalised = (self._template / self.template_height).astype(
            np.float32
        )
        # A coarse level of detail for people far from the camera (a CPU rasteriser is bound by
        # triangle setup: 20 full bodies cost ~60 ms of geometry alone).
        self.lod_topology = decimate(self.topology, self._template, cell_m=0.035)
        # A fixed sample of the surface, weighted by area: how much of a person is visible.
        areas = vertex_areas(self._template, self.faces)
        self.visibility_samples = np.arange(0, len(areas), 10)
        self.visibility_weights = areas[self.visibility_samples].astype(np.float32)

    @staticmethod
    def _part_of(label: str) -> int:
        for prefix, part in _PART_OF_BONE_PREFIX:
            if label.startswith(prefix):
                return part
        return PART_TORSO

    # -- anny calls -------------------------------------------------------------------------------
    def _forward(self, poses: np.ndarray, phenotype: dict[str, float]) -> dict[str, np.ndarray]:
        """poses: (B, bones, 4, 4); returns numpy vertices and bone poses."""
        torch = self.torch
        b = poses.shape[0]
        pose_t = torch.as_tensor(poses, dtype=torch.float64)
        pheno = {k: torch.full((b,), float(v), dtype=torch.float64) for k, v in phenotype.items()}
        with torch.no_grad():
            out = self.model(pose_parameters=pose_t, phenotype_kwargs=pheno)
        return {"vertices": out["vertices"].numpy(), "bone_poses": out["bone_poses"].numpy()}

    @staticmethod
    def _to_person_frame(v: np.ndarray) -> np.ndarray:
        """anny (faces -Y, left +X, root at pelvis) -> person frame (faces +Y, right +X)."""
        out = np.empty_like(v)
        out[..., 0] = -v[..., 0]
        out[..., 1] = -v[..., 1]
        out[..., 2] = v[..., 2]
        return out

    def _limb_coordinate(
        self, template: np.ndarray, rest: dict[str, np.ndarray], lift: float
    ) -> np.ndarray:
        """0 at the shoulder (hip) to 1 at the wrist (ankle), for sleeve and trouser lengths."""
        heads = self._to_person_frame(rest["bone_poses"][0][:, :3, 3])
        heads[:, 2] -= lift
        idx = self.labels.index
        t = np.zeros(len(template), np.float32)
        for side in ("L", "R"):
            for part, start, end in (
                (PART_ARM, f"upperarm01.{side}", f"wrist.{side}"),
                (PART_LEG, f"upperleg01.{side}", f"foot.{side}"),
            ):
                a, b = heads[idx(start)], heads[idx(end)]
                sel = (self.vertex_part == part) & (self.vertex_side == (side == "R"))
                d = b - a
                t[sel] = np.clip((template[sel] - a) @ d / (d @ d), 0, 1)
        return t

    # -- UV-space attribute maps ----------------------------------------------------------------
    def uv_maps(self, renderer, size: int = 512) -> dict[str, np.ndarray]:
        """Per-texel body attributes: normalised height, side/front coordinates, part, limb t."""
        topo = self.topology
        pos = self.template_vertices_normalised[topo.to_vertex]
        part = self.vertex_part[topo.to_vertex].astype(np.float32)
        limb = self.vertex_limb_t[topo.to_vertex]
        a = renderer.rasterize_uv(topo.uvs, topo.faces, pos, size)
        b = renderer.rasterize_uv(topo.uvs, topo.faces, np.stack([part, limb], 1), size)
        # A face's corners can belong to different parts: the interpolated label is rounded.
        return {
            "x": a[..., 0],
            "y": a[..., 1],
            "h": a[..., 2],
            "part": np.where(np.isnan(b[..., 0]), -1, np.rint(b[..., 0])).astype(np.int8),
            "limb": b[..., 1],
        }

    # -- posing ------------------------------------------------------------------------------
    def walk_cycle(
        self,
        phenotype: dict[str, float],
        gait: dict[str, float],
        arm_mode: str = "swing",
        inflate: np.ndarray | None = None,
        phases: int = PHASES,
        standing: bool = False,
        height_m: float | None = None,
    ) -> PosedBody:
        """Pose a full walk cycle (or, with ``standing``, one relaxed standing pose).

        ``arm_mode``: "swing", "cane" (right hand low and forward), "walker" (both hands forward
        on handles), "umbrella" (right hand raised in front of the chest).
        ``inflate``: per-vertex outward offset in metres (loose clothes, hair).
        ``height_m``: scale the body uniformly to this standing height; anny's phenotype gives
        the proportions of an age, a growth chart gives the absolute size.
        """
        n = 1 if standing else phases
        poses = np.stack([self._pose(i / n, gait, arm_mode, standing) for i in range(n)])
        out = self._forward(poses, phenotype)
        verts = self._to_person_frame(out["vertices"])
        bone = out["bone_poses"]
        feet = np.isin(self.vertex_part, (PART_FOOT,))
        lift = verts[:, feet, 2].min(axis=1)  # ground contact: lowest foot point on z = 0
        verts[..., 2] -= lift[:, None]
        scale = 1.0 if height_m is None else height_m / float(verts[0, :, 2].max())
        verts *= scale
        normals = vertex_normals(verts, self.faces)
        if inflate is not None:
            verts = verts + normals * inflate[None, :, None]
        anchors = self._anchors(bone, lift, scale, verts)
        height = float(verts[0, :, 2].max())
        return PosedBody(verts.astype(np.float32), normals.astype(np.float32), anchors, height)

    def _pose(self, phase: float, g: dict[str, float], arm_mode: str, standing: bool) -> np.ndarray:
        labels = self.labels
        pose = np.tile(np.eye(4), (len(labels), 1, 1))
        s = 0.0 if standing else np.sin(2 * np.pi * phase)
        c = 0.0 if standing else np.cos(2 * np.pi * phase)

        def put(name: str, m: np.ndarray) -> None:
            pose[labels.index(name)] = m

        # Legs: hip flexion (negative x is forward), knee bends most in swing (cos > 0 for left).
        for side, sign in (("L", 1.0), ("R", -1.0)):
            swing = max(0.0, sign * c)
            put(f"upperleg01.{side}", _rot("x", -sign * g["hip"] * s - 4 * swing))
            put(f"lowerleg01.{side}", _rot("x", 4 + g["knee"] * swing**2))
            put(f"foot.{side}", _rot("x", -8 * swing + 6 * max(0.0, -sign * s)))
        # Arms hang down (anny rests in an A-pose) and swing against the legs.
        down = 52.0
        for side, sign in (("L", 1.0), ("R", -1.0)):
            swing = sign * g["arm"] * s
            elbow = g["elbow"] + max(0.0, -swing) * 0.6
            flex = 12.0 + swing
            if arm_mode == "walker" or (arm_mode in ("cane", "umbrella") and side == "R"):
                flex, elbow = {"walker": (-28, 35), "cane": (-10, 18), "umbrella": (-40, 95)}[
                    arm_mode
                ]
            put(f"upperarm01.{side}", _rot("x", flex) @ _rot("y", sign * down))
            put(f"lowerarm01.{side}", _rot("x", -elbow))
        stoop = g["stoop"]
        put("spine03", _rot("x", stoop * 0.5) @ _rot("z", 3 * s))
        put("spine02", _rot("x", stoop * 0.5))
        put("neck01", _rot("x", -stoop * 0.6))
        return pose

    def _anchors(self, bone: np.ndarray, lift: np.ndarray, scale: float, verts: np.ndarray) -> dict:
        """Accessory frames in the person frame (see accessories.py for each origin)."""
        idx = self.labels.index
        heads = self._to_person_frame(bone[:, :, :3, 3]).copy()
        heads[..., 2] -= lift[:, None]
        heads *= scale
        n = len(bone)
        frames: dict[str, np.ndarray] = {}

        def frame(origin: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
            f = np.tile(np.eye(4), (n, 1, 1))
            f[:, :3, 3] = origin
            if up is not None:  # tilt the z axis along a body direction (e.g. the spine)
                z = up / np.linalg.norm(up, axis=1, keepdims=True)
                x = np.cross(np.array([0.0, 1.0, 0.0]), z)
                x /= np.linalg.norm(x, axis=1, keepdims=True)
                y = np.cross(z, x)
                f[:, :3, 0], f[:, :3, 1], f[:, :3, 2] = x, y, z
            return f

        head_top = verts[:, self.vertex_part == PART_HEAD].max(axis=1)[:, 2]
        head = heads[:, idx("head")]
        torso = verts[:, self.vertex_part == PART_TORSO]
        back_y = torso[..., 1].min(axis=1)
        chest_z = heads[:, idx("spine01")][:, 2]
        spine_axis = heads[:, idx("neck01")] - heads[:, idx("spine04")]
        frames["spine_upper"] = frame(
            np.stack([np.zeros(n), back_y, chest_z - 0.05], 1), up=spine_axis
        )
        frames["head_top"] = frame(np.stack([head[:, 0], head[:, 1], head_top], 1))
        face_y = verts[:, self.vertex_part == PART_HEAD][..., 1].max(axis=1)
        frames["face"] = frame(np.stack([head[:, 0], face_y, head[:, 2] - 0.02], 1))
        wrist, hand_tip = heads[:, idx("wrist.R")], heads[:, idx("finger3-1.R")]
        frames["hand_right"] = frame((wrist + hand_tip) / 2)
        hips = verts[:, self.vertex_part == PART_HIPS]
        belt_z = heads[:, idx("spine05")][:, 2] - 0.02
        frames["hip_right"] = frame(np.stack([hips[..., 0].max(axis=1), heads[:, 0, 1], belt_z], 1))
        # the ground below the pelvis: steady over the stride, so a walker does not surge
        frames["pelvis_front"] = frame(np.stack([heads[:, 0, 0], heads[:, 0, 1], np.zeros(n)], 1))
        frames["pelvis"] = frame(heads[:, 0])
        return frames


def decimate(topology: RenderTopology, template: np.ndarray, cell_m: float) -> RenderTopology:
    """Vertex clustering that keeps UV islands apart, so the same texture still fits.

    Every cluster is represented by one of its own vertices, so a posed low-detail body is a
    plain index into the posed full body (no extra skinning), and its UVs are original UVs.
    Why hand-written: mesh-simplification libraries move vertices to new positions, which
    would need re-skinning and new UVs.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    faces = topology.faces.astype(np.int64)
    n = len(topology.uvs)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    _, island = connected_components(graph, directed=False)
    pos = template[topology.to_vertex]
    cell = np.floor(pos / cell_m).astype(np.int64)
    keys = np.column_stack([cell, island])
    _, cluster = np.unique(keys, axis=0, return_inverse=True)
    cluster = cluster.ravel()
    # representative: the member nearest the cluster's centroid
    counts = np.bincount(cluster)
    centroid = np.stack([np.bincount(cluster, weights=pos[:, d]) for d in range(3)], 1)
    centroid /= counts[:, None]
    dist = np.linalg.norm(pos - centroid[cluster], axis=1)
    order = np.lexsort((dist, cluster))
    first = np.ones(len(order), bool)
    first[1:] = cluster[order][1:] != cluster[order][:-1]
    rep = order[first]  # one render vertex per cluster, in cluster order
    f = cluster[faces]
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[keep]
    _, unique_rows = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    f = f[np.sort(unique_rows)]
    used, new_faces = np.unique(f, return_inverse=True)
    new_rep = rep[used]
    return RenderTopology(
        topology.to_vertex[new_rep],
        topology.uvs[new_rep],
        new_faces.reshape(-1, 3).astype(np.uint32),
    )


def _v_down(uv: np.ndarray) -> np.ndarray:
    """anny's UVs have v up (OBJ style); the project's textures count v downwards."""
    out = uv.astype(np.float32).copy()
    out[:, 1] = 1.0 - out[:, 1]
    return out


def _face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unnormalised face normals (length = 2 x area) for a batch (B, V, 3) -> (B, F, 3)."""
    a, b, c = (verts[:, faces[:, k]] for k in range(3))
    u, v = b - a, c - a
    return np.stack(
        [
            u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1],
            u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2],
            u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0],
        ],
        axis=-1,
    )


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals for a batch of posed meshes (B, V, 3)."""
    from scipy.sparse import csr_matrix

    fn = _face_normals(verts, faces)  # (B, F, 3)
    n_v, n_f = verts.shape[1], faces.shape[0]
    # Vertex-face incidence as a sparse matrix: one product sums every phase at once.
    incidence = csr_matrix(
        (np.ones(3 * n_f), (faces.ravel(), np.repeat(np.arange(n_f), 3))), shape=(n_v, n_f)
    )
    b = verts.shape[0]
    out = (incidence @ fn.transpose(1, 0, 2).reshape(n_f, b * 3)).reshape(n_v, b, 3)
    out = out.transpose(1, 0, 2)
    out /= np.linalg.norm(out, axis=2, keepdims=True) + 1e-12
    return out.astype(verts.dtype)


def vertex_areas(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """A third of the adjacent faces' area per vertex: weights for surface sampling."""
    area = 0.5 * np.linalg.norm(_face_normals(verts[None], faces)[0], axis=1)
    return np.bincount(faces.ravel(), weights=np.repeat(area, 3), minlength=len(verts)) / 3
