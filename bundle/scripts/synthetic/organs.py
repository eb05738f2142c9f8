# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Solid organs, great vessels, urinary tract and the small structures that mimic lesions in PET.

Organ positions and sizes are given for the standard adult in template millimetres (see
:mod:`scripts.synthetic.frame`) and jittered per patient. The "small structures" (ureters with urine,
brown fat, sympathetic ganglia) are common false-positive sources in real PET and are drawn in every mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scripts.synthetic.frame import BodyFrame
from scripts.synthetic.shapes import Canvas, ellipsoid, pieces_of, tube
from scripts.synthetic.tissues import Tissue
from scripts.synthetic.traits import PatientTraits, StudyState

ABDOMINAL = frozenset({Tissue.FAT, Tissue.BOWEL, Tissue.MUSCLE, Tissue.GAS})
SOFT = frozenset({Tissue.FAT, Tissue.MUSCLE})


@dataclass(frozen=True)
class OrganTemplate:
    """An organ of the standard adult: centre (u, x, y) and radii (lateral, anterior, superior), in mm."""

    tissue: Tissue
    centre: tuple[float, float, float]
    radii: tuple[float, float, float]
    lumpiness: float
    overwrite: frozenset[Tissue]


ORGANS: dict[str, OrganTemplate] = {
    "heart": OrganTemplate(Tissue.HEART, (470.0, 35.0, 22.0), (58.0, 46.0, 56.0), 0.4, frozenset({Tissue.LUNG}) | SOFT),
    "liver": OrganTemplate(Tissue.LIVER, (598.0, -62.0, 8.0), (96.0, 80.0, 82.0), 1.0, ABDOMINAL),
    "spleen": OrganTemplate(Tissue.SPLEEN, (598.0, 88.0, -45.0), (30.0, 48.0, 55.0), 1.0, ABDOMINAL),
    "stomach": OrganTemplate(Tissue.STOMACH, (585.0, 50.0, 38.0), (45.0, 34.0, 55.0), 1.2, ABDOMINAL),
    "kidney_left": OrganTemplate(Tissue.KIDNEY, (660.0, 75.0, -50.0), (28.0, 25.0, 55.0), 0.5, ABDOMINAL),
    "kidney_right": OrganTemplate(Tissue.KIDNEY, (680.0, -75.0, -50.0), (28.0, 25.0, 55.0), 0.5, ABDOMINAL),
    "bladder": OrganTemplate(Tissue.BLADDER, (905.0, 0.0, 28.0), (40.0, 34.0, 34.0), 0.5, ABDOMINAL),
    "prostate": OrganTemplate(Tissue.PROSTATE, (955.0, 0.0, 12.0), (20.0, 17.0, 17.0), 0.5, ABDOMINAL),
    "parotid_left": OrganTemplate(Tissue.GLANDS, (178.0, 42.0, -2.0), (14.0, 19.0, 24.0), 0.8, SOFT),
    "parotid_right": OrganTemplate(Tissue.GLANDS, (178.0, -42.0, -2.0), (14.0, 19.0, 24.0), 0.8, SOFT),
    "submandibular_left": OrganTemplate(Tissue.GLANDS, (212.0, 30.0, 30.0), (11.0, 12.0, 10.0), 0.8, SOFT),
    "submandibular_right": OrganTemplate(Tissue.GLANDS, (212.0, -30.0, 30.0), (11.0, 12.0, 10.0), 0.8, SOFT),
}
ORGAN_NAMES = tuple(ORGANS)


def _placed(frame: BodyFrame, traits: PatientTraits, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patient-frame centre, radii and outline lumps of a template organ for this patient."""
    organ = ORGANS[name]
    jitter = traits.organ_jitter[name]
    u, x, y = organ.centre
    centre = frame.point(u, x, y) + jitter[:3]
    radii = frame.size(*organ.radii) * jitter[3:6]
    return centre, radii, jitter[6:] * organ.lumpiness


def paint_organs(canvas: Canvas, frame: BodyFrame, traits: PatientTraits, state: StudyState) -> None:
    """Draw the procedural solid organs, heart chambers, renal pelves and the gas bubble of the stomach."""
    for name, organ in ORGANS.items():
        if name == "prostate" and not traits.male:
            continue
        centre, radii, lumps = _placed(frame, traits, name)
        if name == "bladder":
            radii = radii * state.bladder_fill ** (1 / 3) * np.array([1.0, 1.0, 0.9])
        canvas.paint(pieces_of(ellipsoid(canvas, centre, radii, lumps=lumps)), organ.tissue, organ.overwrite)
        if name == "heart":
            chambers = ellipsoid(canvas, centre, radii - 10.0, lumps=lumps)
            canvas.paint(pieces_of(chambers), Tissue.BLOOD, overwrite={Tissue.HEART})
        elif name.startswith("kidney"):
            medial = -14.0 if name.endswith("left") else 14.0
            pelvis = ellipsoid(canvas, centre + np.array([medial, 4.0, 0.0]), np.array([9.0, 8.0, 22.0]))
            canvas.paint(pieces_of(pelvis), Tissue.URINE, overwrite={Tissue.KIDNEY})
        elif name == "stomach":
            bubble_centre = centre + np.array([0.0, 0.35 * radii[1], 0.55 * radii[2]])
            bubble = ellipsoid(canvas, bubble_centre, radii * np.array([0.55, 0.45, 0.3]))
            canvas.paint(pieces_of(bubble), Tissue.GAS, overwrite={Tissue.STOMACH})


def paint_vessels(canvas: Canvas, frame: BodyFrame, traits: PatientTraits) -> None:
    """Draw the aorta with the iliac arteries and the inferior vena cava (blood pool)."""
    overwrite = {Tissue.FAT, Tissue.MUSCLE, Tissue.BOWEL, Tissue.LUNG, Tissue.GAS}
    w = frame.width_scale
    aorta = [
        (455.0, 12.0, 30.0, 14.0),
        (400.0, 6.0, 32.0, 14.0),
        (362.0, 8.0, 8.0, 13.0),
        (378.0, 20.0, -26.0, 12.0),
        (450.0, 22.0, -30.0, 12.0),
        (560.0, 15.0, -22.0, 11.5),
        (700.0, 10.0, -8.0, 10.5),
        (790.0, 3.0, -5.0, 9.5),
    ]
    canvas.paint(
        tube(canvas, frame.path([a[:3] for a in aorta]), np.array([a[3] for a in aorta]) * w), Tissue.BLOOD, overwrite
    )
    for side in (-1, 1):
        iliac = frame.path([(790.0, 3.0, -5.0), (850.0, 45.0 * side, -10.0), (925.0, 80.0 * side, 25.0)])
        canvas.paint(tube(canvas, iliac, np.array([8.0, 7.0, 6.0]) * w), Tissue.BLOOD, overwrite)
    cava = frame.path([(520.0, -22.0, -12.0), (700.0, -22.0, -6.0), (790.0, -12.0, -4.0)])
    canvas.paint(tube(canvas, cava, 11.0 * w), Tissue.BLOOD, overwrite - {Tissue.LUNG})


def paint_small_structures(
    canvas: Canvas, frame: BodyFrame, traits: PatientTraits, state: StudyState, rng: np.random.Generator
) -> None:
    """Draw urine in the ureters, brown fat (when active) and the sympathetic ganglia."""
    w = frame.width_scale
    for side in (-1, 1):
        ureter = frame.path(
            [
                (685.0, 58.0 * side, -40.0),
                (760.0, 48.0 * side, -30.0),
                (850.0, 45.0 * side, -10.0),
                (898.0, 22.0 * side, 18.0),
            ]
        )
        # Split the ureter into short pieces; peristalsis leaves urine in only some of them.
        steps = np.linspace(0.0, 1.0, 9)
        dense = np.stack(
            [np.interp(steps * (len(ureter) - 1), np.arange(len(ureter)), ureter[:, a]) for a in range(3)], 1
        )
        for start, end in zip(dense[:-1], dense[1:], strict=True):
            if rng.random() < state.ureter_fill:
                canvas.paint(tube(canvas, [start, end], 3.5 * w), Tissue.URINE, overwrite=ABDOMINAL)
    if state.brown_fat_active:
        for side in (-1, 1):
            for u, x, y, radii in (
                (292.0, 62.0, 5.0, (32.0, 24.0, 32.0)),
                (360.0, 120.0, 0.0, (26.0, 26.0, 34.0)),
                (430.0, 32.0, -78.0, (14.0, 12.0, 70.0)),
            ):
                patch = ellipsoid(canvas, frame.point(u, x * side, y), frame.size(*radii))
                canvas.paint(pieces_of(patch), Tissue.BROWN_FAT, overwrite={Tissue.FAT})
    for u, x, y in ((250.0, 28.0, -12.0), (595.0, 18.0, -14.0), (880.0, 24.0, -52.0)):
        for side in (-1, 1):
            radius = rng.uniform(3.0, 5.5)
            ganglion = ellipsoid(canvas, frame.point(u, x * side, y), np.array([radius, radius, 1.6 * radius]))
            canvas.paint(pieces_of(ganglion), Tissue.GANGLION, overwrite=ABDOMINAL)
