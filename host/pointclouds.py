"""Point-cloud files for the converter (:mod:`host.convert`): LAS and LAZ (the pinned
``laspy``, with ``lazrs`` for LAZ), E57 (the pinned ``pye57``) and XYZ text (ARR's: a point a
line, ``x y z`` or ``x y z red green blue``, numbers as decimals or hexadecimal with ``0x``,
colours 0-255; read here with NumPy; taken as z-up, as scans are). PLY point clouds are read by
the Open Asset Import Library with the other mesh formats.

Each reader gives the points in the file's own coordinates (float64, so that georeferenced
scans keep their precision) and their colours, if the file has any. :func:`to_points` then
recentres them (float32 positions around the cloud's centre; the converter records the centre
in the output's ``asset.extras.origin``) and turns the surveyors' z-up into glTF's y-up.

Hostile input: the point count is checked against the budget from the file's header before the
points are read, and coordinates that are not finite are refused.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from farview.host.gltf import MAX_VALUE, worst_value

POINT_CLOUD_FORMATS = (".las", ".laz", ".e57", ".xyz")


class PointCloudError(Exception):
    """The file cannot be read as a point cloud; ``code`` as :class:`host.convert.ConversionError`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Cloud:
    xyz: npt.NDArray[np.float64]
    """(N, 3) positions in the file's coordinates."""
    rgb: npt.NDArray[np.uint8] | None
    """(N, 3) colours, 0-255, or None."""
    z_up: bool
    """The file's up axis is z (LAS and E57 scans are)."""


def read(path: Path, max_points: int) -> Cloud:
    ext = path.suffix.lower()
    if ext in (".las", ".laz"):
        return _read_las(path, max_points)
    if ext == ".e57":
        return _read_e57(path, max_points)
    if ext == ".xyz":
        return _read_xyz(path, max_points)
    raise PointCloudError("InvalidInput", f"{path.name}: not a point-cloud format "
                          f"({', '.join(POINT_CLOUD_FORMATS)})")


def _over(path: Path, count: int, max_points: int) -> PointCloudError:
    return PointCloudError("LimitExceeded", f"{path.name} has {count:,} points, over the "
                           f"budget of {max_points:,} (a point counts as a triangle)")


def _read_las(path: Path, max_points: int) -> Cloud:
    import laspy

    try:
        with laspy.open(path) as f:
            count = int(f.header.point_count)
            if count > max_points:
                raise _over(path, count, max_points)
            las = f.read()
    except PointCloudError:
        raise
    except Exception as e:  # laspy raises its own errors, ValueError, struct errors...
        raise PointCloudError("InvalidInput", f"{path.name} could not be read as "
                              f"{path.suffix.upper().lstrip('.')} ({type(e).__name__}: "
                              f"{str(e)[:160]})") from None
    xyz = np.stack([np.asarray(las.x, dtype=np.float64), np.asarray(las.y, dtype=np.float64),
                    np.asarray(las.z, dtype=np.float64)], axis=1)
    rgb = None
    names = set(las.point_format.dimension_names)
    if {"red", "green", "blue"} <= names:
        c = np.stack([np.asarray(las.red), np.asarray(las.green), np.asarray(las.blue)], axis=1)
        # LAS stores 16-bit colours; many writers put 8-bit values in them
        rgb = (c if c.size and c.max() <= 255 else c >> 8).astype(np.uint8)
    return Cloud(xyz, rgb, z_up=True)


def _read_e57(path: Path, max_points: int) -> Cloud:
    import pye57

    try:
        e57 = pye57.E57(str(path))
        try:
            counts = [int(e57.get_header(i).point_count) for i in range(e57.scan_count)]
            if sum(counts) > max_points:
                raise _over(path, sum(counts), max_points)
            parts, colours = [], []
            for i in range(e57.scan_count):
                # each scan placed by its pose; colours only if every scan has them
                scan = e57.read_scan(i, colors=True, ignore_missing_fields=True, transform=True)
                parts.append(np.stack([scan["cartesianX"], scan["cartesianY"],
                                       scan["cartesianZ"]], axis=1).astype(np.float64))
                if {"colorRed", "colorGreen", "colorBlue"} <= scan.keys():
                    colours.append(np.stack([scan["colorRed"], scan["colorGreen"],
                                             scan["colorBlue"]], axis=1))
        finally:
            e57.close()
    except PointCloudError:
        raise
    except Exception as e:  # libE57Format's errors, and missing cartesian fields
        raise PointCloudError("InvalidInput", f"{path.name} could not be read as E57 "
                              f"({type(e).__name__}: {str(e)[:160]})") from None
    xyz = np.concatenate(parts) if parts else np.zeros((0, 3))
    rgb = None
    if parts and len(colours) == len(parts):
        c = np.concatenate(colours)
        rgb = np.clip(c, 0, 255).astype(np.uint8)
    return Cloud(xyz, rgb, z_up=True)


def _read_xyz(path: Path, max_points: int) -> Cloud:
    try:
        data = path.read_bytes()  # (within the converter's input budget)
    except OSError as e:
        raise PointCloudError("InvalidInput", f"cannot read {path.name}: {e.strerror}") from None
    points = (ln.strip() for ln in data.splitlines())
    points = (ln for ln in points if ln and not ln.startswith(b"#"))
    first = next(points, None)
    if first is None:
        raise PointCloudError("InvalidInput", f"{path.name} holds no points")
    if data.count(b"\n") + 1 > max_points:  # (the lines are an upper bound: count exactly)
        count = 1 + sum(1 for _ in points)
        if count > max_points:
            raise _over(path, count, max_points)
    delimiter = "," if b"," in first else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # ("input contained no data" and the like)
            try:
                table = np.loadtxt(path, dtype=np.float64, delimiter=delimiter, ndmin=2,
                                   comments="#", encoding="latin-1")
            except ValueError:  # hexadecimal numbers (0x...), or a bad line: each number
                table = np.loadtxt(path, dtype=np.float64, delimiter=delimiter, ndmin=2,
                                   comments="#", encoding="latin-1", converters=_xyz_number)
    except (ValueError, UserWarning) as e:
        raise PointCloudError("InvalidInput", f"{path.name} could not be read as XYZ: each "
                              "line must be x y z, or x y z red green blue, as numbers "
                              f"({str(e)[:160]})") from None
    if table.shape[1] not in (3, 6):
        raise PointCloudError("InvalidInput", f"{path.name}: lines have {table.shape[1]} "
                              "numbers; XYZ lines are x y z, or x y z red green blue")
    rgb = None
    if table.shape[1] == 6:
        c = table[:, 3:6]
        if not np.isfinite(c).all():
            raise PointCloudError("InvalidInput", f"{path.name} has colours that are not "
                                  "numbers")
        rgb = np.clip(np.rint(c), 0, 255).astype(np.uint8)
    return Cloud(np.ascontiguousarray(table[:, :3]), rgb, z_up=True)


def _xyz_number(token: str) -> float:
    t = token.strip()
    return float.fromhex(t) if t.lower().lstrip("+-").startswith("0x") else float(t)


def to_points(cloud: Cloud, name: str) -> tuple[npt.NDArray[np.float32],
                                                npt.NDArray[np.float32] | None,
                                                tuple[float, float, float]]:
    """(positions around the centre, float32, y-up; linear RGBA colours 0..1 or None; the
    centre, y-up)."""
    xyz = cloud.xyz
    if not np.isfinite(xyz).all():
        raise PointCloudError("InvalidInput", f"{name} has NaN or infinite coordinates")
    worst = worst_value(xyz)
    if worst is not None:
        raise PointCloudError("InvalidInput", f"{name} has a coordinate of "
                              f"{abs(worst):.3g}, past the ±{MAX_VALUE:.0e} that "
                              "any model's are within: its data is damaged")
    if cloud.z_up:  # (x, y, z) z-up → (x, z, -y) y-up: a rotation, handedness kept
        xyz = np.stack([xyz[:, 0], xyz[:, 2], -xyz[:, 1]], axis=1)
    centre = (xyz.min(axis=0) + xyz.max(axis=0)) / 2 if len(xyz) else np.zeros(3)
    positions = np.ascontiguousarray(xyz - centre, dtype=np.float32)
    colors = None
    if cloud.rgb is not None:  # the scanner's sRGB-encoded colours; glTF's COLOR_0 is linear
        colors = np.ones((len(positions), 4), np.float32)
        colors[:, :3] = (cloud.rgb.astype(np.float32) / 255.0) ** 2.2
    return positions, colors, (float(centre[0]), float(centre[1]), float(centre[2]))
