"""Text drawn over the video: the statistics panel, the key help and a one-line status banner.

Each :class:`TextPanel` renders its lines with Pillow (``ImageFont.load_default()``) into an RGBA
image with a translucent background, uploads it as a texture, and blends that texture 1:1 into
a corner of the framebuffer. Text is re-rendered and re-uploaded only when it changes (the loop
refreshes statistics a few times per second), so a frame with unchanged text costs one quad.

:class:`Overlay` groups the three panels and their visibility toggles. Main thread only, with
the window's GL context current.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np
from OpenGL import GL
from PIL import Image, ImageDraw, ImageFont

from farview.client.viewer._glutil import QUAD_VERTEX_SHADER, compile_program, draw_quad, make_texture

log = logging.getLogger(__name__)

TEXT_COLOUR = (255, 255, 255, 255)
BACKGROUND = (0, 0, 0, 160)
"""Translucent black behind the text so it stays readable over any picture."""
PADDING = 6
MARGIN = 8
"""Pixels between a panel and the framebuffer's edge."""
FONT_SIZE = 13
LINE_SPACING = 3
COLUMN_GAP = 16

GLYPH_FALLBACKS = str.maketrans({"→": "->", "←": "<-"})
"""Pillow's default font (Aileron) has no arrows; they would show as empty boxes."""

RGBA_FRAGMENT_SHADER = """
#version 330 core
in vec2 uv;
out vec4 colour;
uniform sampler2D image;
void main() { colour = texture(image, uv); }
"""


class Corner(Enum):
    TOP_LEFT = "top-left"
    TOP_RIGHT = "top-right"
    BOTTOM_LEFT = "bottom-left"
    BOTTOM_RIGHT = "bottom-right"
    CENTRE = "centre"
    BOTTOM_CENTRE = "bottom-centre"


def _load_font() -> Any:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font only
        return ImageFont.load_default()


def render_text(lines: Sequence[str], font: Any = None, *, columns: bool = False) -> Image.Image:
    """Lines of text as an RGBA image: white on translucent black, padded.

    With ``columns``, runs of two or more spaces separate columns, which are aligned: the
    default font is proportional, so padding with spaces (as in ``KEY_HELP``) would not line up.
    """
    font = font or _load_font()
    rows = [line.translate(GLYPH_FALLBACKS) for line in lines]
    cells = [re.split(r" {2,}", row) if columns else [row] for row in rows]
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))

    def width_of(text: str) -> int:
        return int(probe.textbbox((0, 0), text, font=font)[2]) if text else 0

    n_cols = max((len(c) for c in cells), default=0)
    col_widths = [max((width_of(c[i]) for c in cells if len(c) > i and len(c) > 1), default=0)
                  for i in range(n_cols)]
    col_x = [PADDING + sum(col_widths[:i]) + i * COLUMN_GAP for i in range(n_cols)]
    line_height = int(probe.textbbox((0, 0), "Ag", font=font)[3]) + LINE_SPACING
    width = max((col_x[len(c) - 1] + width_of(c[-1]) for c in cells), default=0) + PADDING
    height = line_height * len(rows) - LINE_SPACING + 2 * PADDING
    image = Image.new("RGBA", (max(width, 1), max(height, 1)), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, row_cells in enumerate(cells):
        for j, text in enumerate(row_cells):
            draw.text((col_x[j], PADDING + i * line_height), text, font=font, fill=TEXT_COLOUR)
    return image


def wrap_text(text: str, max_width: float, font: Any = None) -> list[str]:
    """``text`` broken at spaces into lines whose panels (padding included) fit ``max_width``
    pixels; a word wider than that stays whole on its own line."""
    font = font or _load_font()
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    lines: list[str] = []
    line = ""
    for word in text.translate(GLYPH_FALLBACKS).split(" "):
        trial = f"{line} {word}" if line else word
        if line and probe.textbbox((0, 0), trial, font=font)[2] + 2 * PADDING > max_width:
            lines.append(line)
            line = word
        else:
            line = trial
    return [*lines, line]


class TextPanel:
    """A block of text lines blended into one corner; re-rendered only when the text changes."""

    def __init__(self, corner: Corner, font: Any, *, columns: bool = False) -> None:
        self.corner = corner
        self._columns = columns
        self._font = font
        self._lines: tuple[str, ...] = ()
        self._texture: Any = None
        self._size = (0, 0)
        self.renders = 0
        """How many times the text was rendered and uploaded (tests check it stays low)."""

    @property
    def lines(self) -> tuple[str, ...]:
        return self._lines

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels of the panel, (0, 0) when empty."""
        return self._size

    def set_lines(self, lines: Sequence[str]) -> None:
        lines = tuple(lines)
        if lines == self._lines:
            return
        self._lines = lines
        if not lines:
            self._size = (0, 0)
            return
        image = render_text(lines, self._font, columns=self._columns)
        pixels = np.asarray(image, dtype=np.uint8)
        height, width = pixels.shape[:2]
        if self._texture is None or (width, height) != self._size:
            if self._texture is not None:
                GL.glDeleteTextures([self._texture])
            self._texture = make_texture(GL.GL_RGBA8, width, height, GL.GL_RGBA, GL.GL_NEAREST)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._texture)
        GL.glTexSubImage2D(GL.GL_TEXTURE_2D, 0, 0, 0, width, height, GL.GL_RGBA,
                           GL.GL_UNSIGNED_BYTE, pixels)
        self._size = (width, height)
        self.renders += 1

    def rect(self, framebuffer_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """Where the panel goes, ``(x, y, w, h)`` from the bottom-left (glViewport's convention)."""
        fb_w, fb_h = framebuffer_size
        w, h = self._size
        left, right = MARGIN, fb_w - MARGIN - w
        top, bottom = fb_h - MARGIN - h, MARGIN
        x, y = {
            Corner.TOP_LEFT: (left, top),
            Corner.TOP_RIGHT: (right, top),
            Corner.BOTTOM_LEFT: (left, bottom),
            Corner.BOTTOM_RIGHT: (right, bottom),
            Corner.CENTRE: ((fb_w - w) // 2, (fb_h - h) // 2),
            Corner.BOTTOM_CENTRE: ((fb_w - w) // 2, bottom),
        }[self.corner]
        return (x, y, w, h)

    def draw(self, framebuffer_size: tuple[int, int]) -> None:
        """Blend the panel in (the caller has enabled blending and bound program and VAO)."""
        if not self._lines or self._texture is None:
            return
        GL.glViewport(*self.rect(framebuffer_size))
        GL.glActiveTexture(GL.GL_TEXTURE0)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self._texture)
        draw_quad()

    def close(self) -> None:
        if self._texture is not None:
            GL.glDeleteTextures([self._texture])
            self._texture = None


class Overlay:
    """Statistics (top-left), key help (centre) and status banner (bottom centre)."""

    def __init__(self, *, help_text: str = "", stats_visible: bool = True) -> None:
        self._program = compile_program(QUAD_VERTEX_SHADER, RGBA_FRAGMENT_SHADER)
        self._vao = GL.glGenVertexArrays(1)
        GL.glUseProgram(self._program)
        GL.glUniform1i(GL.glGetUniformLocation(self._program, "image"), 0)
        font = _load_font()
        self.stats = TextPanel(Corner.TOP_LEFT, font)
        self.help = TextPanel(Corner.CENTRE, font, columns=True)
        self.status = TextPanel(Corner.BOTTOM_CENTRE, font)
        self.stats_visible = stats_visible
        self.help_visible = False
        self._help_text = help_text
        self._font = font
        self._status_text = ""
        self._width = math.inf
        """The framebuffer's width at the last draw: the status banner is wrapped to it (a
        long one was cut off at both sides in a narrow window)."""

    def set_stats(self, lines: Sequence[str]) -> None:
        self.stats.set_lines(lines)

    def set_status(self, text: str | None) -> None:
        """Show a banner (e.g. "reconnecting…"), wrapped to the window's width, or hide it with
        None/""."""
        if (text or "") != self._status_text:
            self._status_text = text or ""
            self._wrap_status()

    def _wrap_status(self) -> None:
        text = self._status_text
        self.status.set_lines(wrap_text(text, self._width - 2 * MARGIN, self._font) if text else [])

    def toggle_stats(self) -> None:
        self.stats_visible = not self.stats_visible

    def toggle_help(self) -> None:
        self.help_visible = not self.help_visible
        if self.help_visible and not self.help.lines:
            self.help.set_lines(self._help_text.splitlines())

    def draw(self, framebuffer_size: tuple[int, int]) -> None:
        if framebuffer_size[0] != self._width:
            self._width = framebuffer_size[0]
            self._wrap_status()
        panels = [p for p, on in ((self.stats, self.stats_visible), (self.help, self.help_visible),
                                  (self.status, True)) if on and p.lines]
        if not panels:
            return
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glUseProgram(self._program)
        GL.glBindVertexArray(self._vao)
        for panel in panels:
            panel.draw(framebuffer_size)
        GL.glDisable(GL.GL_BLEND)
        GL.glViewport(0, 0, *framebuffer_size)

    def close(self) -> None:
        for panel in (self.stats, self.help, self.status):
            panel.close()
        GL.glDeleteVertexArrays(1, [self._vao])
        GL.glDeleteProgram(self._program)
