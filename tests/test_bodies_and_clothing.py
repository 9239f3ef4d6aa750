"""Bodies from anny, the walk cycle, garments painted in UV space, and a person rendered alone."""

from __future__ import annotations

import numpy as np
import pytest

from reunite.synth.appearance import AGE_GROUPS, COLOUR_NAMES, sample_identity, sample_outfit
from reunite.synth.clothing import SKIN, UPPER, garment_layers

pytestmark = pytest.mark.slow


def test_identities_are_deterministic_for_a_seed_and_cover_every_age_group():
    a = [sample_identity(np.random.default_rng(3), i) for i in range(1, 4)]
    b = [sample_identity(np.random.default_rng(3), i) for i in range(1, 4)]
    assert [x.to_json() for x in a] == [x.to_json() for x in b]
    rng = np.random.default_rng(0)
    people = [sample_identity(rng, i) for i in range(300)]
    assert {p.age_group for p in people} == set(AGE_GROUPS)
    assert {p.outfit.upper.colour for p in people} <= set(COLOUR_NAMES)
    children = [p.height_m for p in people if p.age_group == "child"]
    adults = [p.height_m for p in people if p.age_group == "adult"]
    assert max(children) < 1.7 and np.mean(children) < np.mean(adults) - 0.3


def test_many_people_share_top_colours_as_on_real_streets():
    rng = np.random.default_rng(1)
    tops = [sample_identity(rng, i).outfit.upper.colour for i in range(400)]
    _, counts = np.unique(tops, return_counts=True)
    assert counts.max() / len(tops) > 0.15  # one colour (dark) is worn by many


def test_short_sleeves_leave_the_forearm_bare(body_kit):
    from reunite.synth.bodies import PART_ARM

    kit = body_kit
    t = kit.template_vertices_normalised
    outfit = sample_outfit(np.random.default_rng(0), "adult")
    arm = kit.vertex_part == PART_ARM
    forearm = arm & (kit.vertex_limb_t > 0.6) & (kit.vertex_limb_t < 0.9)
    for sleeve, expected in (("short", SKIN), ("long", UPPER)):
        outfit.upper.kind, outfit.upper.sleeve = "tshirt", sleeve
        layers = garment_layers(
            t[:, 2], t[:, 0], t[:, 1], kit.vertex_part, kit.vertex_limb_t, outfit, hair_long=False
        )
        assert np.mean(layers[forearm] == expected) > 0.9


def test_walk_cycle_keeps_feet_on_the_ground_and_moves_the_legs(body_kit):
    ident = sample_identity(np.random.default_rng(5), 1, "adult")
    body = body_kit.walk_cycle(ident.phenotype, ident.gait, height_m=1.7)
    lowest = body.vertices[..., 2].min(axis=1)
    assert np.allclose(lowest, 0.0, atol=0.02)
    assert abs(body.height_m - 1.7) < 0.05
    spread = np.ptp(body.vertices[:, :, 1].max(axis=1))  # foot reach forward over the cycle
    assert spread > 0.1
    assert set(body.anchors) >= {"spine_upper", "head_top", "hand_right", "hip_right", "face"}


def test_a_rendered_person_writes_its_id_and_wears_its_clothes(body_kit, renderer, uv_maps):
    from reunite.synth.camera import look_at
    from reunite.synth.people import GpuPerson, build_person, person_matrix
    from reunite.synth.renderer import Lighting, View

    rng = np.random.default_rng(2)
    ident = sample_identity(rng, 7, "adult")
    ident.outfit.upper.kind, ident.outfit.upper.pattern = "tshirt", "solid"
    ident.outfit.upper.rgb = (200, 20, 20)
    ident.outfit.accessories = []
    person = build_person(body_kit, uv_maps, ident, rng)
    gpu = GpuPerson(renderer, person, body_kit.topology)
    view = View(look_at((0, 4, 1.2), (0, 0, 0.9)), 500, 500, 128, 128, 256, 256)
    light = Lighting((0, -0.5, -0.85), (0.8, 0.8, 0.8), (0.4, 0.4, 0.4), (0.1, 0.1, 0.1))
    res = renderer.render(view, gpu.draws(person_matrix(0, 0, np.pi / 2), 0, 7), light)
    gpu.release()
    mask = res.ids == 7
    assert mask.sum() > 2000
    rows = np.flatnonzero(mask.any(1))
    chest_row = rows[0] + int(0.3 * (rows[-1] - rows[0]))
    chest = res.rgb[chest_row][mask[chest_row]].astype(float).mean(axis=0)
    assert chest[0] > 1.8 * chest[1]  # red top
    assert np.all(res.depth[mask] > 3.0) and np.all(res.ids[~mask] == 0)
