# Copyright (c) 2026 the petct-bixlstm-bundle authors. Licensed under the Apache License, Version 2.0.
"""Cohorts of synthetic studies: who is negative, who has a follow-up, and writing the autoPET layout.

Layout written: ``OUT/<patient>/<study>/{CTres,SUV,SEG}.nii.gz`` (float32 CT in HU, float32 PET in SUV,
uint8 lesion mask on the CT grid), plus ``OUT/synthetic_cohort.json`` describing every study in ``OUT`` (of
every call that wrote there). Everything is a function of the seed: the same seed gives identical arrays.

Longer than 300 lines because planning a cohort, rendering a patient's studies and writing them with the
manifest share the study plan and the manifest format; split, each half would need the other's internals.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scripts.atomic_io import atomic_path, save_nifti, write_json
from scripts.synthetic.anatomy import Anatomy, build_anatomy, sample_patient_traits, sample_study_state
from scripts.synthetic.fields import SmoothField
from scripts.synthetic.grid import Grid, coarser_grid, las_grid, las_view
from scripts.synthetic.lesions import (
    LesionSpec,
    VoxelPicker,
    evolve_lesions,
    paint_lesions,
    sample_lesion,
    sample_lesions,
)
from scripts.synthetic.organ_map import OrganMap, load_organ_map
from scripts.synthetic.scanner import acquire_ct, activity, blur_pet, ct_numbers, record_pet, sample_scanner
from scripts.synthetic.uptake import TracerProfile, study_uptake, texture_amplitudes, tracer_profile
from scripts.synthetic.visibility import assess_visibility

DEFAULT_SHAPE = (128, 128, 200)
FIRST_DATE = datetime.date(2003, 1, 1)
CT_FILE, PET_FILE, SEG_FILE = "CTres.nii.gz", "SUV.nii.gz", "SEG.nii.gz"
MANIFEST_FILE = "synthetic_cohort.json"
# Share of lesion-free studies in the autoPET training data: FDG 513 of 1,014, PSMA 60 of 597.
NEGATIVE_SHARE = {"fdg": 513 / 1014, "psma": 60 / 597}


@dataclass(frozen=True)
class StudyPlan:
    """One study of the cohort: whose it is, its folder names, and whether it has lesions."""

    patient_index: int
    study_index: int  # 0 = baseline, 1 = follow-up
    patient_id: str
    study_id: str
    negative: bool


@dataclass
class SyntheticStudy:
    """A generated study in memory. Arrays are in the output orientation (that of the written files)."""

    plan: StudyPlan
    tracer: str
    ct: np.ndarray  # float32 HU
    suv: np.ndarray  # float32 SUV, on the PET grid
    seg: np.ndarray  # uint8 0/1, on the CT grid
    tissue: np.ndarray  # uint8 tissue ids (scripts.synthetic.tissues.Tissue), on the CT grid
    ct_affine: np.ndarray
    pet_affine: np.ndarray
    lesions: list[LesionSpec] = field(default_factory=list)
    lesion_voxels: list[int] = field(default_factory=list)
    organ_map: str | None = None


def plan_cohort(n: int, seed: int, negative_share: float = 0.3, longitudinal_share: float = 0.2) -> list[StudyPlan]:
    """Plan ``n`` studies: exactly round(negative_share * n) lesion-free, some patients with two studies.

    About ``longitudinal_share`` of the patients get a follow-up study. ``n`` counts studies, so the
    cohort has ceil(n / (1 + longitudinal_share)) patients.
    """
    if n < 1:
        raise ValueError(f"the cohort needs at least one study, got n={n}")
    for name, share in (("negative_share", negative_share), ("longitudinal_share", longitudinal_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {share}")
    rng = np.random.default_rng([seed, 0x5EED])
    n_patients = math.ceil(n / (1.0 + longitudinal_share))
    twice = set(rng.choice(n_patients, size=n - n_patients, replace=False).tolist())
    negatives = set(rng.permutation(n)[: round(negative_share * n)].tolist())
    plans, used = [], set()
    for patient in range(n_patients):
        patient_id = f"PETCT_{int(rng.integers(16**10)):010x}"
        while patient_id in used:
            patient_id = f"PETCT_{int(rng.integers(16**10)):010x}"
        used.add(patient_id)
        date = FIRST_DATE + datetime.timedelta(days=int(rng.integers(0, 6000)))
        for study in range(2 if patient in twice else 1):
            if study:
                date += datetime.timedelta(days=int(rng.integers(90, 400)))
            study_id = f"{date:%m-%d-%Y}-NA-PET-CT-synthetic-{int(rng.integers(100000)):05d}"
            plans.append(StudyPlan(patient, study, patient_id, study_id, len(plans) in negatives))
    return plans


def _render(
    anatomy: Anatomy,
    profile: TracerProfile,
    lesions: list[LesionSpec],
    negative: bool,
    max_lesions: int,
    rng: np.random.Generator,
    pet_las_grid: Grid | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[LesionSpec], list[int]]:
    """Images of one study in LAS order: CT, PET, lesion mask, and the lesions labelled (with their voxels).

    Only lesions a reader could see (:mod:`~scripts.synthetic.visibility`) are labelled; a positive study
    draws again, on fresh images, until at least one is.
    """
    grid, tissue = anatomy.grid, anatomy.tissue
    scanner = sample_scanner(rng)
    hu_field, suv_field = SmoothField(grid, 30.0, rng), SmoothField(grid, 22.0, rng)
    uptake = study_uptake(profile, rng, anatomy.state.brown_fat_active)
    for attempt in range(7):
        hu = ct_numbers(tissue, anatomy.state.contrast_enhanced, hu_field, rng)
        suv = activity(tissue, uptake, texture_amplitudes(profile), suv_field)
        painted = paint_lesions(lesions, anatomy, profile, hu, suv)
        blurred = blur_pet(suv, grid, scanner)
        seen = assess_visibility(painted, blurred, grid.spacing, scanner.pet_noise)
        if negative or any(v.visible for v in seen) or attempt == 6:
            break
        # A positive study must show at least one lesion: draw again where a reader would see none.
        if attempt < 5:
            lesions = sample_lesions(profile, anatomy, rng, max_lesions)
        else:
            extra = sample_lesion("soft_tissue", profile, anatomy, VoxelPicker(tissue), rng, index=True)
            lesions = [] if extra is None else [extra]
    seg = np.zeros(grid.shape, dtype=np.uint8)
    kept = []
    for lesion, mark, view in zip(lesions, painted, seen, strict=True):
        if view.visible:
            seg[mark.box][mark.mask] = 1
            kept.append((lesion, mark.voxels))
    del suv
    ct = acquire_ct(hu, scanner, rng)
    del hu
    pet = record_pet(blurred, grid, scanner, rng, pet_las_grid)
    return ct, pet, seg, [k[0] for k in kept], [k[1] for k in kept]


def generate_patient(
    seed: int,
    plans: Sequence[StudyPlan],
    tracer: str = "fdg",
    grid: Grid | None = None,
    organ_map: OrganMap | None = None,
    pet_coarse_factor: float | None = None,
    max_lesions: int = 60,
) -> Iterator[SyntheticStudy]:
    """Generate the studies of one patient (all ``plans`` share its patient index), one at a time.

    Args:
        seed: cohort seed; with the patient and study indices it fixes every random draw.
        plans: the patient's studies, baseline first.
        tracer: "fdg" or "psma".
        grid: LAS grid for procedural anatomy (ignored when ``organ_map`` is given).
        organ_map: real organ-label map; the study is drawn on its grid and affine.
        pet_coarse_factor: write the PET on a grid this many times coarser than the CT (None: same grid).
        max_lesions: most lesions in one study.
    """
    profile = tracer_profile(tracer)
    if organ_map is None and grid is None:
        grid = las_grid(DEFAULT_SHAPE)
    if organ_map is not None:
        grid = organ_map.grid
        out_grid = Grid(organ_map.shape, organ_map.affine)
        undo = organ_map.reorientation.undo
    else:
        out_grid, undo = grid, None
    pet_las_grid, pet_affine, pet_undo = None, out_grid.affine, undo
    if pet_coarse_factor:
        pet_out_grid = coarser_grid(out_grid, pet_coarse_factor)
        pet_las_grid, pet_reorientation = las_view(pet_out_grid.affine, pet_out_grid.shape)
        pet_affine = pet_out_grid.affine
        pet_undo = pet_reorientation.undo if organ_map is not None else None

    patient_index = plans[0].patient_index
    traits = sample_patient_traits(
        np.random.default_rng([seed, patient_index, 0]), male_share=1.0 if profile.name == "psma" else 0.5
    )
    previous: list[LesionSpec] = []
    for plan in plans:
        rng = np.random.default_rng([seed, patient_index, 1 + plan.study_index])
        anatomy = build_anatomy(grid, traits, sample_study_state(rng), organ_map)
        if plan.negative:
            lesions = []
        elif previous:
            lesions = evolve_lesions(previous, profile, anatomy, rng, max_lesions)
        else:
            lesions = sample_lesions(profile, anatomy, rng, max_lesions)
        ct, pet, seg, lesions, counts = _render(
            anatomy, profile, lesions, plan.negative, max_lesions, rng, pet_las_grid
        )
        previous = lesions or previous
        tissue = anatomy.tissue
        if undo is not None:
            ct, seg, tissue = undo(ct), undo(seg), undo(tissue)
        if pet_undo is not None:
            pet = pet_undo(pet)
        yield SyntheticStudy(
            plan,
            profile.name,
            ct,
            pet,
            seg,
            tissue,
            np.asarray(out_grid.affine),
            np.asarray(pet_affine),
            lesions,
            counts,
            None if organ_map is None else organ_map.path,
        )


def generate_study(
    seed: int,
    tracer: str = "fdg",
    shape: Sequence[int] = DEFAULT_SHAPE,
    spacing: Sequence[float] | None = None,
    organ_map: str | os.PathLike | OrganMap | None = None,
    negative: bool = False,
    pet_coarse_factor: float | None = None,
    max_lesions: int = 60,
) -> SyntheticStudy:
    """One study in memory (patient 0, baseline) without writing anything; handy for tests and notebooks."""
    if organ_map is not None and not isinstance(organ_map, OrganMap):
        organ_map = load_organ_map(organ_map)
    plan = StudyPlan(0, 0, "PETCT_0000000000", "study", negative)
    grid = None if organ_map is not None else las_grid(tuple(shape), spacing)
    return next(generate_patient(seed, [plan], tracer, grid, organ_map, pet_coarse_factor, max_lesions))


def write_study(study: SyntheticStudy, out_dir: str | os.PathLike) -> Path:
    """Write one study as ``out_dir/<patient>/<study>/`` (the folder appears complete or not at all)."""
    folder = Path(out_dir) / study.plan.patient_id / study.plan.study_id
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        save_nifti(study.ct, study.ct_affine, tmp / CT_FILE, dtype=np.float32)
        save_nifti(study.suv, study.pet_affine, tmp / PET_FILE, dtype=np.float32)
        save_nifti(study.seg, study.ct_affine, tmp / SEG_FILE, dtype=np.uint8)
    return folder


def resolve_organ_maps(organ_maps: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[Path]:
    """Organ-map files from a file, a folder of ``*.nii``/``*.nii.gz`` files, or a list of either."""
    if organ_maps is None:
        return []
    items = [organ_maps] if isinstance(organ_maps, str | os.PathLike) else list(organ_maps)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.name.endswith((".nii.gz", ".nii")))
            if not found:
                raise FileNotFoundError(f"{item}: no .nii or .nii.gz organ-label maps in this folder")
            files.extend(found)
        elif item.is_file():
            files.append(item)
        else:
            raise FileNotFoundError(f"{item}: organ-label map not found")
    return files


def _describe(study: SyntheticStudy, folder: Path, out_dir: Path) -> dict:
    return {
        "patient": study.plan.patient_id,
        "study": study.plan.study_id,
        "folder": str(folder.relative_to(out_dir)),
        "tracer": study.tracer,
        "negative": study.plan.negative,
        "follow_up": study.plan.study_index > 0,
        "organ_map": study.organ_map,
        "ct_shape": list(study.ct.shape),
        "pet_shape": list(study.suv.shape),
        "lesion_voxels": int(study.seg.sum()),
        "lesions": [
            {
                "site": lesion.site,
                "centre_mm": [round(c, 1) for c in lesion.centre_mm],
                "diameter_mm": round(lesion.diameter_mm, 1),
                "peak_suv": round(lesion.peak_suv, 2),
                "necrotic": lesion.necrotic,
                "ct_look": lesion.ct_look,
                "voxels": count,
            }
            for lesion, count in zip(study.lesions, study.lesion_voxels, strict=True)
        ],
    }


def generate_cohort(
    out_dir: str | os.PathLike,
    n: int,
    seed: int,
    tracer: str = "fdg",
    shape: Sequence[int] = DEFAULT_SHAPE,
    spacing: Sequence[float] | None = None,
    organ_maps: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    negative_share: float | None = None,
    longitudinal_share: float = 0.2,
    pet_coarse: bool = False,
    pet_coarse_factor: float = 2.0,
    max_lesions: int = 60,
) -> list[Path]:
    """Generate ``n`` synthetic PET/CT studies in the autoPET layout under ``out_dir``.

    Args:
        out_dir: output folder; studies go to ``out_dir/<patient>/<study>/``.
        n: number of studies (some patients have two, see ``longitudinal_share``).
        seed: the same seed gives identical files.
        tracer: "fdg" or "psma" (physiological uptake and lesion sites).
        shape: CT grid size (LAS voxel order) of procedural subjects.
        spacing: voxel size in mm; default spreads a 512 x 512 x 1000 mm field of view over ``shape``.
        organ_maps: organ-label map file(s) or folder; patients cycle through them, and each study then
            uses its map's grid and affine (``shape`` and ``spacing`` are ignored).
        negative_share: share of studies without any lesion; default the tracer's share in autoPET
            (:data:`NEGATIVE_SHARE`: FDG 0.51, PSMA 0.10).
        longitudinal_share: share of patients with a second (follow-up) study.
        pet_coarse: write the PET on a grid ``pet_coarse_factor`` times coarser than the CT, same extent.
        pet_coarse_factor: see ``pet_coarse``.
        max_lesions: most lesions per study.

    Returns:
        The study folders, in cohort order.
    """
    tracer_profile(tracer)
    if negative_share is None:
        negative_share = NEGATIVE_SHARE[tracer]
    out = Path(out_dir)
    maps = resolve_organ_maps(organ_maps)
    grid = None if maps else las_grid(tuple(shape), spacing)
    plans = plan_cohort(n, seed, negative_share, longitudinal_share)
    by_patient: dict[int, list[StudyPlan]] = {}
    for plan in plans:
        by_patient.setdefault(plan.patient_index, []).append(plan)
    folders, described = [], []
    for patient_index, patient_plans in by_patient.items():
        organ_map = load_organ_map(maps[patient_index % len(maps)]) if maps else None
        studies = generate_patient(
            seed, patient_plans, tracer, grid, organ_map, pet_coarse_factor if pet_coarse else None, max_lesions
        )
        for study in studies:
            folder = write_study(study, out)
            folders.append(folder)
            described.append(_describe(study, folder, out))
    call = {
        "generator": "scripts.synthetic",
        "seed": seed,
        "tracer": tracer,
        "n": n,
        "shape": None if maps else list(grid.shape),
        "spacing_mm": None if maps else [round(s, 4) for s in grid.spacing],
        "pet_coarse_factor": pet_coarse_factor if pet_coarse else None,
        "negative_share": negative_share,
        "longitudinal_share": longitudinal_share,
    }
    write_json(_merged_manifest(out / MANIFEST_FILE, call, described), out / MANIFEST_FILE)
    return folders


def _merged_manifest(path: Path, call: dict, described: list[dict]) -> dict:
    """This call's parameters and studies, after those of earlier calls into the same folder still on disk.

    The top-level parameters are the latest call's; ``calls`` lists every call's, and ``studies`` every study
    in the folder (a study written again replaces its earlier entry).
    """
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    folders = {entry["folder"] for entry in described}
    kept = [
        entry
        for entry in earlier.get("studies", [])
        if entry["folder"] not in folders and (path.parent / entry["folder"]).is_dir()
    ]
    calls = (earlier.get("calls") or [{k: v for k, v in earlier.items() if k != "studies"}]) if kept else []
    return {**call, "calls": [*calls, {**call, "studies": len(described)}], "studies": kept + described}
