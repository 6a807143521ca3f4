"""The textures a model file embeds (an FBX file's, above all), read with ``pyassimp``: the
Open Asset Import Library's own Python binding, through ctypes, against Debian's ``libassimp5``.

``assimp-py``, which imports every other part of such a file (:mod:`host.convert`), names an
embedded texture ``*N`` but does not hand out its bytes. This is the one module that uses
``pyassimp`` (pinned in ``pyproject.toml``, with a library of the minor version its structures
describe: :data:`LIBRARY_VERSION`); ``tests/conversion/test_convert.py`` reads an FBX file's
embedded texture through it, and fails if either changes.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

LIBRARY_VERSION = (5, 2)
"""The libassimp major and minor version pyassimp 5.2.5's ctypes structures describe."""
MAX_SIDE = 16384
"""An uncompressed embedded texture's side, at most (the loader's own limit is lower)."""


class EmbeddedTexturesUnavailable(Exception):
    """pyassimp or the library is missing, or is another version: what to install is said."""


@dataclass(frozen=True)
class EmbeddedTexture:
    name: str
    """Its file name in the model, or ``texture<N>``."""
    data: bytes | None
    """A compressed image (PNG, JPEG, ...) as its file would hold it; or None, and ``pixels``."""
    pixels: npt.NDArray[np.uint8] | None
    """An uncompressed texture's RGBA rows."""


def read(path: Path, max_bytes: int) -> list[EmbeddedTexture]:
    """The embedded textures of the model file ``path``, in the order ``*N`` names them.
    Raises :class:`EmbeddedTexturesUnavailable` when they cannot be read here, ``ValueError``
    when one is over ``max_bytes`` or malformed, and ``RuntimeError`` when the library cannot
    read the file."""
    try:
        import pyassimp
        import pyassimp.core
    except ImportError:
        raise EmbeddedTexturesUnavailable("pyassimp is not installed (pip install 'pyassimp==5.2.5')") from None
    except Exception as e:  # pyassimp raises its AssimpError (a BaseException) without the library
        raise EmbeddedTexturesUnavailable(f"pyassimp cannot load the library: {e}") from None
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        raise EmbeddedTexturesUnavailable("the Open Asset Import Library is not installed "
                                          "(Debian package libassimp5)") from None
    dll = pyassimp.core._assimp_lib.dll
    version = (int(dll.aiGetVersionMajor()), int(dll.aiGetVersionMinor()))
    if version != LIBRARY_VERSION:
        raise EmbeddedTexturesUnavailable(
            f"libassimp is version {version[0]}.{version[1]}; pyassimp's structures describe "
            f"{LIBRARY_VERSION[0]}.{LIBRARY_VERSION[1]}")
    try:
        with pyassimp.load(str(path), processing=0) as scene:
            return [_texture(texture.contents, i, max_bytes) for i, texture in enumerate(scene.textures)]
    except (ValueError, EmbeddedTexturesUnavailable):
        raise
    except BaseException as e:  # pyassimp's AssimpError for a file the library cannot read
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        raise RuntimeError(str(e)) from None


def _texture(t: Any, i: int, max_bytes: int) -> EmbeddedTexture:
    """One ``aiTexture``'s image."""
    name = bytes(t.mFilename.data[:t.mFilename.length]).decode("utf-8", "replace") or f"texture{i}"
    width, height = int(t.mWidth), int(t.mHeight)
    if height == 0:  # compressed: mWidth is its size in bytes
        if width > max_bytes:
            raise ValueError(f"the embedded texture {name} is over {max_bytes >> 20} MiB")
        return EmbeddedTexture(name, ctypes.string_at(t.pcData, width), None)
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE) or width * height * 4 > max_bytes:
        raise ValueError(f"the embedded texture {name} is {width} × {height}: too big")
    texels = np.frombuffer(ctypes.string_at(t.pcData, width * height * 4), np.uint8)
    bgra = texels.reshape(height, width, 4)  # aiTexel: b, g, r, a
    return EmbeddedTexture(name, None, np.ascontiguousarray(bgra[..., [2, 1, 0, 3]]))
