"""Off-screen OpenGL rendering on the CPU (Mesa llvmpipe through EGL) with exact ground truth.

Each draw writes two targets at once: the lit colour and the object id (so every box is the
*visible* extent of a person); linear depth (the IR illuminator's fall-off at night) comes from
the z-buffer.
Meshes are uploaded once and moved by a model matrix; people are posed by choosing one of their
precomputed walk-cycle meshes, so a frame costs one draw per person and prop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from reunite.errors import RendererUnavailableError
from reunite.synth.mesh import Mesh

_VERTEX = """
#version 330
uniform mat4 u_mvp;
uniform mat4 u_model;
in vec3 in_pos;
in vec3 in_nrm;
in vec2 in_uv;
out vec3 v_nrm;
out vec2 v_uv;
void main() {
    v_nrm = mat3(u_model) * in_nrm;
    v_uv = in_uv;
    gl_Position = u_mvp * vec4(in_pos, 1.0);
}
"""

_FRAGMENT = """
#version 330
uniform sampler2D u_tex;
uniform vec3 u_sun_dir;
uniform vec3 u_sun_rgb;
uniform vec3 u_ambient_rgb;
uniform int u_id;
in vec3 v_nrm;
in vec2 v_uv;
layout(location = 0) out vec4 f_rgb;
layout(location = 1) out int f_id;
void main() {
    vec3 albedo = texture(u_tex, v_uv).rgb;
    vec3 n = normalize(v_nrm);
    if (!gl_FrontFacing) n = -n;
    float lambert = max(dot(n, -u_sun_dir), 0.0);
    // Half-Lambert-ish sky term keeps shadowed sides readable, as real ambient light does.
    float sky = 0.6 + 0.4 * n.z;
    vec3 light = u_sun_rgb * lambert + u_ambient_rgb * sky;
    f_rgb = vec4(albedo * light, 1.0);
    f_id = u_id;
}
"""

_SHADOW_VERTEX = """
#version 330
uniform mat4 u_mvp;
in vec3 in_pos;
in vec2 in_uv;
out vec2 v_uv;
void main() { v_uv = in_uv; gl_Position = u_mvp * vec4(in_pos, 1.0); }
"""

_SHADOW_FRAGMENT = """
#version 330
uniform float u_strength;
in vec2 v_uv;
layout(location = 0) out vec4 f_rgb;
void main() {
    float r = length(v_uv * 2.0 - 1.0);
    f_rgb = vec4(0.0, 0.0, 0.0, u_strength * (1.0 - smoothstep(0.35, 1.0, r)));
}
"""

_UV_VERTEX = """
#version 330
in vec2 in_uv;
in vec4 in_attr;
out vec4 v_attr;
void main() {
    v_attr = in_attr;
    gl_Position = vec4(in_uv.x * 2.0 - 1.0, 1.0 - in_uv.y * 2.0, 0.0, 1.0);
}
"""

_UV_FRAGMENT = """
#version 330
in vec4 v_attr;
layout(location = 0) out vec4 f_attr;
void main() { f_attr = v_attr; }
"""

_MISSING_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri (Debian/Ubuntu: apt-get install ...)"


@dataclass(frozen=True)
class Lighting:
    """Directional sun plus ambient sky light; ``sun_dir`` points from the sun to the scene."""

    sun_dir: tuple[float, float, float]
    sun_rgb: tuple[float, float, float]
    ambient_rgb: tuple[float, float, float]
    sky_rgb: tuple[float, float, float]


@dataclass(frozen=True)
class View:
    """A pinhole camera: world-to-camera matrix (OpenGL convention, looking down -z) and K."""

    view: np.ndarray  # 4x4
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    near: float = 0.2
    far: float = 200.0

    def projection(self) -> np.ndarray:
        """OpenGL projection reproducing the pixel intrinsics (y down in pixels, up in NDC)."""
        w, h, n, f = self.width, self.height, self.near, self.far
        p = np.zeros((4, 4))
        p[0, 0] = 2 * self.fx / w
        p[0, 2] = 1 - 2 * self.cx / w
        p[1, 1] = 2 * self.fy / h
        p[1, 2] = 2 * self.cy / h - 1
        p[2, 2] = -(f + n) / (f - n)
        p[2, 3] = -2 * f * n / (f - n)
        p[3, 2] = -1
        return p

    def window(self, x0: float, y0: float, x1: float, y1: float, out_w: int, out_h: int) -> View:
        """The same camera restricted to a pixel window, rendered at out_w x out_h.

        Used to render a tight person crop (case photos, re-ID crops) or the part of a person
        outside the frame, without rendering the whole frame at high resolution.
        """
        sx, sy = out_w / (x1 - x0), out_h / (y1 - y0)
        return View(
            self.view,
            self.fx * sx,
            self.fy * sy,
            (self.cx - x0) * sx,
            (self.cy - y0) * sy,
            out_w,
            out_h,
            self.near,
            self.far,
        )

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N,3) to pixel coordinates (N,2) and camera depth (N,)."""
        cam = points @ self.view[:3, :3].T + self.view[:3, 3]
        depth = -cam[:, 2]
        z = np.where(np.abs(depth) < 1e-6, 1e-6, depth)
        px = np.stack([self.fx * cam[:, 0] / z + self.cx, -self.fy * cam[:, 1] / z + self.cy], 1)
        return px, depth


@dataclass
class GpuMesh:
    vao: object
    texture: object
    name: str
    vbo: tuple[object, ...]


@dataclass(frozen=True)
class Draw:
    """One object in a frame: which uploaded mesh, where, and the id it writes (0: no person)."""

    mesh: GpuMesh
    model: np.ndarray
    object_id: int = 0


@dataclass(frozen=True)
class BlobShadow:
    """A soft contact shadow on the ground: centre (x, y), radii along and across, heading (rad)."""

    x: float
    y: float
    length: float
    width: float
    angle: float
    strength: float


@dataclass
class Background:
    """A baked static scene (colour + depth) for one view and lighting."""

    fbo: object
    buffers: tuple[object, ...]
    size: tuple[int, int]
    lighting: Lighting

    def release(self) -> None:
        self.fbo.release()
        for b in self.buffers:
            b.release()


@dataclass
class RenderResult:
    rgb: np.ndarray  # (H, W, 3) uint8
    ids: np.ndarray  # (H, W) int32, 0 = background or static scene
    depth: np.ndarray  # (H, W) float32 metres, 0 = sky; empty when not asked for


def create_context(threads: int = 2):
    """A standalone EGL context; a missing driver becomes one clear error naming the packages."""
    os.environ.setdefault("LP_NUM_THREADS", str(threads))
    try:
        import moderngl
    except ImportError as exc:
        raise RendererUnavailableError(
            "moderngl is not installed: install the synth extra (pip install 'reunite[synth]')"
        ) from exc
    try:
        return moderngl.create_standalone_context(backend="egl", require=330)
    except Exception as exc:
        raise RendererUnavailableError(
            f"no EGL/OpenGL 3.3 context could be created ({exc}); install {_MISSING_PACKAGES}"
        ) from exc


class Renderer:
    """Owns the GL context, uploaded meshes and an off-screen framebuffer per output size."""

    def __init__(self, threads: int = 2) -> None:
        self.ctx = create_context(threads)
        self.prog = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self.shadow_prog = self.ctx.program(
            vertex_shader=_SHADOW_VERTEX, fragment_shader=_SHADOW_FRAGMENT
        )
        self.uv_prog = self.ctx.program(vertex_shader=_UV_VERTEX, fragment_shader=_UV_FRAGMENT)
        self._targets: dict[tuple[int, int], tuple] = {}
        quad = np.array(
            [[-1, -1, 0, 0, 0], [1, -1, 0, 1, 0], [1, 1, 0, 1, 1], [-1, 1, 0, 0, 1]], np.float32
        )
        self._quad_vbo = self.ctx.buffer(quad.tobytes())
        self._quad_ibo = self.ctx.buffer(np.array([0, 1, 2, 0, 2, 3], np.uint32).tobytes())
        self._shadow_vao = self.ctx.vertex_array(
            self.shadow_prog, [(self._quad_vbo, "3f 2f", "in_pos", "in_uv")], self._quad_ibo
        )

    # -- uploads -------------------------------------------------------------------------------
    def upload_texture(self, image: np.ndarray, mipmaps: bool = True):
        import moderngl

        img = np.ascontiguousarray(image[::-1])  # GL's texture origin is the bottom-left corner
        tex = self.ctx.texture((img.shape[1], img.shape[0]), 3, img.tobytes())
        if mipmaps and min(img.shape[:2]) > 1:
            tex.build_mipmaps()
            tex.filter = (moderngl.LINEAR_MIPMAP_LINEAR, moderngl.LINEAR)
        return tex

    def upload(self, mesh: Mesh, texture=None) -> GpuMesh:
        """Upload geometry (and its texture, unless a shared one is given)."""
        # UV convention of the whole project: (0, 0) is the texture image's top-left pixel and v
        # counts rows downwards, so textures are painted upright in numpy. GL samples from the
        # bottom row up (and the image was uploaded flipped), hence t = 1 - v.
        uv = mesh.uvs.astype(np.float32).copy()
        uv[:, 1] = 1.0 - uv[:, 1]
        data = np.hstack([mesh.positions, mesh.normals, uv]).astype(np.float32)
        vbo = self.ctx.buffer(data.tobytes())
        ibo = self.ctx.buffer(mesh.faces.astype(np.uint32).tobytes())
        vao = self.ctx.vertex_array(
            self.prog, [(vbo, "3f 3f 2f", "in_pos", "in_nrm", "in_uv")], ibo
        )
        tex = texture if texture is not None else self.upload_texture(mesh.texture)
        return GpuMesh(vao, tex, mesh.name, (vbo, ibo))

    def release(self, mesh: GpuMesh, with_texture: bool = True) -> None:
        mesh.vao.release()
        for buf in mesh.vbo:
            buf.release()
        if with_texture:
            mesh.texture.release()

    # -- frames --------------------------------------------------------------------------------
    def _target(self, width: int, height: int):
        key = (width, height)
        if key not in self._targets:
            ctx = self.ctx
            colour = ctx.renderbuffer(key, 4)
            ids = ctx.renderbuffer(key, 1, dtype="i4")
            zbuf = ctx.depth_renderbuffer(key)
            fbo = ctx.framebuffer([colour, ids], zbuf)
            # clear() writes one float colour to every attachment; ids must start at 0, so they
            # are cleared again through a framebuffer of their own (0.0 has 0 int bits).
            aux = ctx.framebuffer([ids])
            self._targets[key] = (fbo, aux, colour, ids, zbuf)
            if len(self._targets) > 12:  # keep memory bounded whatever sizes callers ask for
                for obj in self._targets.pop(next(iter(self._targets))):
                    obj.release()
        return self._targets[key]

    def _begin(self, view: View, lighting: Lighting) -> np.ndarray:
        import moderngl

        ctx = self.ctx
        ctx.viewport = (0, 0, view.width, view.height)
        ctx.enable(moderngl.DEPTH_TEST)
        ctx.disable(moderngl.CULL_FACE)
        prog = self.prog
        prog["u_sun_dir"].value = tuple(lighting.sun_dir)
        prog["u_sun_rgb"].value = tuple(lighting.sun_rgb)
        prog["u_ambient_rgb"].value = tuple(lighting.ambient_rgb)
        return view.projection() @ view.view

    def _draw(self, proj_view: np.ndarray, d: Draw) -> None:
        prog = self.prog
        prog["u_mvp"].write((proj_view @ d.model).T.astype(np.float32).tobytes())
        prog["u_model"].write(d.model.T.astype(np.float32).tobytes())
        prog["u_id"].value = int(d.object_id)
        d.mesh.texture.use(0)
        d.mesh.vao.render()

    def bake_background(self, view: View, draws: list[Draw], lighting: Lighting) -> Background:
        """Render the static scene once; frames then start from a copy of it.

        The ground and buildings of a fixed camera never change within a clip, and on a CPU
        rasteriser they cost as much as twenty people: baking them makes a frame cost its people.
        """
        ctx = self.ctx
        size = (view.width, view.height)
        colour = ctx.renderbuffer(size, 4)
        ids = ctx.renderbuffer(size, 1, dtype="i4")  # copies need matching attachments
        zbuf = ctx.depth_renderbuffer(size)
        fbo = ctx.framebuffer([colour, ids], zbuf)
        fbo.clear(*lighting.sky_rgb, 1.0, depth=1.0)
        fbo.use()
        proj_view = self._begin(view, lighting)
        for d in draws:
            self._draw(proj_view, d)
        return Background(fbo, (colour, ids, zbuf), size, lighting)

    def render(
        self,
        view: View,
        draws: list[Draw],
        lighting: Lighting,
        shadows: list[BlobShadow] = (),
        with_depth: bool = True,
        background: Background | None = None,
    ) -> RenderResult:
        """Render ``draws`` and read back colour, ids and (optionally) linear depth.

        Frames start from a copy of the baked ``background`` (the static scene) or from the sky;
        ``shadows`` are blended onto that start before any draw, so they fall on the ground.
        """
        fbo, aux, *_ = self._target(view.width, view.height)
        if background is not None:
            if background.size != (view.width, view.height) or background.lighting != lighting:
                raise ValueError("the baked background was made for another view or lighting")
            self.ctx.copy_framebuffer(fbo, background.fbo)
        else:
            fbo.clear(*lighting.sky_rgb, 1.0, depth=1.0)
        aux.clear(0.0, 0.0, 0.0, 0.0)
        fbo.use()
        proj_view = self._begin(view, lighting)
        if shadows:
            self._draw_shadows(proj_view, shadows)
        for d in draws:
            self._draw(proj_view, d)
        return self._read(view, with_depth)

    def _draw_shadows(self, proj_view: np.ndarray, shadows: list[BlobShadow]) -> None:
        import moderngl

        ctx = self.ctx
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        ctx.depth_mask = False
        fbo = ctx.fbo
        fbo.color_mask = [(True, True, True, True), (False,) * 4]
        for s in shadows:
            c, sn = np.cos(s.angle), np.sin(s.angle)
            model = np.array(
                [
                    [c * s.length, -sn * s.width, 0, s.x],
                    [sn * s.length, c * s.width, 0, s.y],
                    [0, 0, 1, 0.01],
                    [0, 0, 0, 1],
                ]
            )
            self.shadow_prog["u_mvp"].write((proj_view @ model).T.astype(np.float32).tobytes())
            self.shadow_prog["u_strength"].value = float(s.strength)
            self._shadow_vao.render()
        fbo.color_mask = [(True,) * 4] * 2
        ctx.depth_mask = True
        ctx.disable(moderngl.BLEND)

    def _read(self, view: View, with_depth: bool) -> RenderResult:
        width, height = view.width, view.height
        fbo = self._targets[(width, height)][0]
        rgb = np.frombuffer(fbo.read(components=3, attachment=0), np.uint8)
        rgb = rgb.reshape(height, width, 3)[::-1]
        id_buf = np.frombuffer(fbo.read(components=1, attachment=1, dtype="i4"), np.int32)
        depth = np.zeros((0, 0), np.float32)
        if with_depth:
            z = np.frombuffer(fbo.read(components=1, attachment=-1, dtype="f4"), np.float32)
            z = z.reshape(height, width)[::-1]
            n, f = view.near, view.far
            ndc = 2.0 * z - 1.0
            lin = (2.0 * n * f / (f + n - ndc * (f - n))).astype(np.float32)
            depth = np.where(z >= 1.0, 0.0, lin).astype(np.float32)
        return RenderResult(
            np.ascontiguousarray(rgb),
            np.ascontiguousarray(id_buf.reshape(height, width)[::-1]),
            depth,
        )

    # -- texture-space rasterisation -------------------------------------------------------------
    def rasterize_uv(
        self, uvs: np.ndarray, faces: np.ndarray, attributes: np.ndarray, size: int
    ) -> np.ndarray:
        """Rasterise per-vertex attributes (N, <=4) into UV space: (size, size, 4) float32, laid
        out like the texture image (row 0 is v = 0).

        Gives every texel of a body texture the interpolated rest-pose position, limb coordinate
        and part of the body it belongs to, so that garments are painted by numpy in UV space.
        Texels outside every triangle hold NaN.
        """
        ctx = self.ctx
        attr = np.zeros((len(uvs), 4), np.float32)
        attr[:, : attributes.shape[1]] = attributes
        vbo = ctx.buffer(np.hstack([uvs.astype(np.float32), attr]).tobytes())
        ibo = ctx.buffer(faces.astype(np.uint32).tobytes())
        vao = ctx.vertex_array(self.uv_prog, [(vbo, "2f 4f", "in_uv", "in_attr")], ibo)
        tex = ctx.texture((size, size), 4, dtype="f4")
        fbo = ctx.framebuffer([tex])
        fbo.use()
        ctx.viewport = (0, 0, size, size)
        fbo.clear(np.nan, np.nan, np.nan, np.nan)
        import moderngl

        ctx.disable(moderngl.DEPTH_TEST)
        vao.render()
        out = np.frombuffer(fbo.read(components=4, dtype="f4"), np.float32)
        out = out.reshape(size, size, 4)[::-1].copy()
        for obj in (vao, vbo, ibo, fbo, tex):
            obj.release()
        return out
