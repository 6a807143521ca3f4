"""Block-compressed textures (host/texture_codec.py): BC1/BC3 blocks checked against GL's own
decoder and encoder (Mesa's), DDS files read strictly, ``MSFT_texture_dds`` loaded and drawn."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from OpenGL import GL

from farview.host.convert import encode_png
from farview.host.errors import ModelError
from farview.host.gltf import load_model, load_model_bytes
from farview.host.texture_codec import (
    BC1,
    BC3,
    BC5,
    BC7,
    CompressedImage,
    DdsError,
    compress,
    decompress,
    read_dds,
    write_dds,
)
from tests.host.conftest import SHARED_MODELS, psnr, textured_quad_glb


def duck_texture() -> np.ndarray:
    """A real texture made by others: the Duck's base colour (512², opaque)."""
    material = load_model(SHARED_MODELS / "Duck.glb").materials[0]
    assert material.base_color_texture is not None
    pixels = material.base_color_texture.texture.pixels
    assert pixels is not None
    return pixels


def photo(height: int, width: int, alpha: bool = False, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 23 + i) * np.cos(y / 31 - i) for i in range(3)], -1)
    rgb += rng.normal(0, 4, rgb.shape)
    a = np.clip(x * 255 / max(width - 1, 1), 0, 255) if alpha else np.full_like(x, 255)
    return np.clip(np.concatenate([rgb, a[..., None]], axis=2), 0, 255).astype(np.uint8)


def test_blocks_decode_to_close_pixels_with_every_mip_level() -> None:
    duck = duck_texture()
    c = compress(duck)
    assert c.format == BC1 and len(c.levels) == 10  # 512 → 1
    assert c.nbytes == sum(max(1, (512 >> i) // 4) ** 2 * 8 for i in range(10))
    assert psnr(decompress(c)[..., :3], duck[..., :3]) > 35
    # a side that is not a multiple of 4, odd sides, alpha: BC3
    img = photo(1000, 1003, alpha=True)
    c = compress(img)
    assert c.format == BC3 and len(c.levels) == 10
    assert [c.level_size(i) for i in (0, 1, 8, 9)] == [(1003, 1000), (501, 500), (3, 3), (1, 1)]
    out = decompress(c)
    assert out.shape == img.shape
    assert psnr(out[..., :3], img[..., :3]) > 32
    assert np.abs(out[..., 3].astype(int) - img[..., 3]).max() <= 2  # a ramp: 8 alpha steps
    for i in range(len(c.levels)):
        assert decompress(c, i).shape == (*c.level_size(i)[::-1], 4)
    # a flat block, and an image of one pixel
    flat = np.full((4, 4, 4), (10, 200, 30, 255), np.uint8)
    assert np.abs(decompress(compress(flat)).astype(int) - flat).max() <= 4
    assert decompress(compress(flat[:1, :1])).shape == (1, 1, 4)


def test_dds_files_round_trip_and_bad_ones_are_refused() -> None:
    c = compress(photo(64, 48, alpha=True))
    back = read_dds(write_dds(c))
    assert (back.format, back.width, back.height, back.levels) == (c.format, 48, 64, c.levels)
    good = write_dds(c)
    with pytest.raises(DdsError, match="not a DDS file"):
        read_dds(b"\x89PNG\r\n\x1a\n" + b"\0" * 200)
    with pytest.raises(DdsError, match="cut short"):
        read_dds(good[:-1])
    with pytest.raises(DdsError, match="over 0 MiB"):
        read_dds(good, max_bytes=100)
    cube = bytearray(good)
    struct.pack_into("<I", cube, 4 + 108, 0x200)
    with pytest.raises(DdsError, match="cube map"):
        read_dds(bytes(cube))
    wrong = bytearray(good)
    wrong[4 + 80:4 + 84] = b"ATI1"  # BC4: not read
    with pytest.raises(DdsError, match=r"not DXT1, DXT5 or ATI2 \(BC5\)"):
        read_dds(bytes(wrong))
    many = bytearray(good)
    struct.pack_into("<I", many, 4 + 24, 40)
    with pytest.raises(DdsError, match="40 mip levels"):
        read_dds(bytes(many))
    huge = bytearray(good)
    struct.pack_into("<2I", huge, 4 + 8, 1 << 20, 1 << 20)
    with pytest.raises(DdsError, match=r"outside 1\.\.16384"):
        read_dds(bytes(huge))
    # a DX10 header naming BC3 (as other tools write) is read too; BC6H is not
    dx10 = bytearray(good[:128])
    dx10[4 + 80:4 + 84] = b"DX10"
    blocks = good[128:]
    ok = read_dds(bytes(dx10) + struct.pack("<5I", 78, 3, 0, 1, 0) + blocks)
    assert ok.levels == c.levels and ok.format == BC3
    with pytest.raises(DdsError, match="DXGI format 95 is not BC1, BC3, BC5 or BC7"):
        read_dds(bytes(dx10) + struct.pack("<5I", 95, 3, 0, 1, 0) + blocks)  # BC6H


def _gl_read(name: int, level: int, size: tuple[int, int]) -> np.ndarray:
    GL.glBindTexture(GL.GL_TEXTURE_2D, name)
    GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
    raw = GL.glGetTexImage(GL.GL_TEXTURE_2D, level, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
    return np.frombuffer(raw, np.uint8).reshape(size[1], size[0], 4)


def test_gl_decodes_the_blocks_as_farview_does_and_farviews_encoder_matches_mesas(
        egl_context: Any) -> None:
    """Every level of our BC1 and BC3 blocks, uploaded as they are, reads back from GL (Mesa's
    S3TC decoder) as our decoder says; and our encoder's picture is as good as the one Mesa
    makes of the same pixels (``glTexImage2D`` into a compressed format)."""
    for img, internal in ((duck_texture(), 0x83F1), (photo(96, 80, alpha=True), 0x83F3)):
        c = compress(img)
        name = int(GL.glGenTextures(1))
        try:
            GL.glBindTexture(GL.GL_TEXTURE_2D, name)
            for level, data in enumerate(c.levels):
                w, h = c.level_size(level)
                GL.glCompressedTexImage2D(GL.GL_TEXTURE_2D, level, internal, w, h, 0,
                                          np.frombuffer(data, np.uint8))
            assert GL.glGetError() == GL.GL_NO_ERROR
            for level in range(len(c.levels)):
                ours = decompress(c, level).astype(int)
                theirs = _gl_read(name, level, c.level_size(level)).astype(int)
                assert np.abs(ours - theirs).max() <= 2, level  # rounding of the 1/3 steps
            # Mesa's own encoding of the same pixels
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, internal, img.shape[1], img.shape[0], 0,
                            GL.GL_RGBA, GL.GL_UNSIGNED_BYTE, np.ascontiguousarray(img))
            mesa = _gl_read(name, 0, (img.shape[1], img.shape[0]))
            assert psnr(decompress(c)[..., :3], img[..., :3]) >= psnr(
                mesa[..., :3], img[..., :3]) - 1.0
        finally:
            GL.glDeleteTextures([name])


def _dds_quad(dds: bytes, fallback: bytes | None) -> bytes:
    """textured_quad_glb with the texture's DDS image (``MSFT_texture_dds``), and its PNG
    ``source`` kept or dropped."""
    glb = textured_quad_glb(fallback or b"")
    json_len = struct.unpack_from("<I", glb, 12)[0]
    doc = json.loads(glb[20:20 + json_len])
    blob = bytearray(glb[20 + json_len + 8:])
    blob += b"\0" * (-len(blob) % 4)
    doc["bufferViews"].append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(dds)})
    blob += dds + b"\0" * (-len(dds) % 4)
    doc["buffers"][0]["byteLength"] = len(blob)
    doc["images"].append({"bufferView": len(doc["bufferViews"]) - 1,
                          "mimeType": "image/vnd-ms.dds"})
    doc["textures"][0]["extensions"] = {"MSFT_texture_dds": {"source": 1}}
    doc["extensionsUsed"] = ["MSFT_texture_dds"]
    if fallback is None:
        del doc["textures"][0]["source"]
        doc["extensionsRequired"] = ["MSFT_texture_dds"]
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack(
        "<II", len(blob), 0x004E4942) + bytes(blob)
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def test_a_texture_with_a_dds_image_loads_its_blocks_and_draws_as_its_png(
        egl_context: Any) -> None:
    """A DDS image is taken instead of the PNG (nothing decoded), and it draws as the PNG does,
    through GL's S3TC formats and, without them, decoded; a DDS farview cannot use falls back
    to the PNG with a warning, and without a PNG it is a clear error."""
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from farview.input.pose import Fov, Pose, View

    img = photo(256, 256)
    dds = write_dds(compress(img))
    only_dds = load_model_bytes(_dds_quad(dds, None), name="q")
    texture = only_dds.materials[0].base_color_texture.texture  # type: ignore[union-attr]
    assert texture.pixels is None and texture.compressed is not None
    assert texture.compressed.levels == read_dds(dds).levels and texture.size == (256, 256)
    with_png = load_model_bytes(_dds_quad(dds, encode_png(img)), name="q")
    assert with_png.materials[0].base_color_texture.texture.pixels is None  # type: ignore
    broken = load_model_bytes(_dds_quad(dds[:-10], encode_png(img)), name="q")
    fell_back = broken.materials[0].base_color_texture.texture  # type: ignore[union-attr]
    assert fell_back.compressed is None and np.array_equal(fell_back.pixels, img)
    with pytest.raises(ModelError, match=r"image 1 .*MSFT_texture_dds.* is not a DDS texture "
                                         r"farview can use: it is cut short"):
        load_model_bytes(_dds_quad(dds[:-10], None), name="q")

    r = Renderer(160, 160, lighting="vertex")
    try:
        assert r.s3tc
        images = []
        # (each model loaded afresh: its texture uploaded afresh)
        for glb, s3tc in ((textured_quad_glb(encode_png(img)), True),
                          (_dds_quad(dds, None), True),
                          (_dds_quad(dds, None), False)):
            r.s3tc = s3tc
            scene = Scene()
            scene.add_model(load_model_bytes(glb, name="q"), "q")
            r.render(scene, [View(Pose((0.0, 0.0, 2.4), (0.0, 0.0, 0.0, 1.0)),
                                  Fov.symmetric(50.0, 1.0))])
            images.append(r.read_rgba()[:, :, :3])
        png, blocks, decoded = images
        assert png.std() > 20  # the photo is there
        assert psnr(blocks, png) > 30 and psnr(decoded, png) > 30
        assert psnr(blocks, decoded) > 40
    finally:
        r.close()


def test_texture_codec_sizes() -> None:
    c = CompressedImage(BC1, 5, 3, (b"\0" * 16, b"\0" * 8, b"\0" * 8))
    assert [c.level_size(i) for i in range(3)] == [(5, 3), (2, 1), (1, 1)]
    with pytest.raises(ValueError, match="uint8"):
        compress(np.zeros((4, 4, 3), np.uint8))



def test_the_renderer_drops_a_textures_pixels_once_uploaded_and_can_decode_them_again(
        egl_context: Any) -> None:
    """Once a PNG texture is in GL its decoded pixels are dropped (the file's bytes stay); a
    second upload (here: a second renderer's) decodes them again, and draws the same."""
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from farview.input.pose import Fov, Pose, View

    img = photo(128, 128)
    model = load_model_bytes(textured_quad_glb(encode_png(img)), name="q")
    texture = model.materials[0].base_color_texture.texture  # type: ignore[union-attr]
    assert texture.pixels is not None and texture.encoded is not None
    r = Renderer(96, 96, lighting="vertex")
    try:
        scene = Scene()
        scene.add_model(model, "q")
        view = [View(Pose((0.0, 0.0, 2.4), (0.0, 0.0, 0.0, 1.0)), Fov.symmetric(50.0, 1.0))]
        r.render(scene, view)
        first = r.read_rgba().copy()
        assert texture.pixels is None  # GL holds them now
        assert np.array_equal(texture.rgba(), img) and texture.size == (128, 128)
    finally:
        r.close()
    r = Renderer(96, 96, lighting="vertex")  # GL's copy made again, from the PNG's bytes
    try:
        r.render(scene, view)
        assert np.array_equal(r.read_rgba(), first)
        assert first[:, :, :3].std() > 20
    finally:
        r.close()


def bumps(size: int) -> np.ndarray:
    """A tangent-space normal map of round bumps, unit normals as RGBA bytes."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) * (2 * np.pi * 6 / size)
    n = np.stack([0.6 * np.cos(x) * np.sin(y), 0.6 * np.sin(x) * np.cos(y),
                  np.ones_like(x)], axis=2)
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    rgb = np.clip(np.rint((n + 1) * 127.5), 0, 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((size, size, 1), 255, np.uint8)], axis=2)


def test_a_normal_map_goes_to_bc5_and_gl_reads_its_x_and_y(egl_context: Any) -> None:
    """A normal map is kept as x and y (BC5: two BC4 blocks); decoded, its z is made again.
    GL (RGTC2) decodes every level's red and green as farview's decoder does."""
    img = bumps(256)
    c = compress(img, normal_map=True)
    assert c.format == BC5 and c.nbytes == sum(max(1, (256 >> i) // 4) ** 2 * 16
                                               for i in range(9))
    out = decompress(c)
    assert psnr(out[..., :2], img[..., :2]) > 40
    assert np.abs(out[..., 2].astype(int) - img[..., 2]).max() <= 6  # z from x and y
    assert read_dds(write_dds(c)).levels == c.levels
    name = int(GL.glGenTextures(1))
    try:
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        for level, data in enumerate(c.levels):
            w, h = c.level_size(level)
            GL.glCompressedTexImage2D(GL.GL_TEXTURE_2D, level, 0x8DBD, w, h, 0,
                                      np.frombuffer(data, np.uint8))
        assert GL.glGetError() == GL.GL_NO_ERROR
        for level in range(len(c.levels)):
            theirs = _gl_read(name, level, c.level_size(level)).astype(int)
            ours = decompress(c, level).astype(int)
            assert np.abs(ours[..., :2] - theirs[..., :2]).max() <= 1, level
    finally:
        GL.glDeleteTextures([name])


def test_a_converted_big_normal_map_draws_as_its_input(tmp_path: Any, egl_context: Any) -> None:
    """A 512² normal map goes through a conversion as BC5 (DDS fourCC ATI2) and the quad it
    bumps draws as the input's does (the shader makes z again from x and y)."""
    from farview.host.convert import convert_file
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from farview.input.pose import Fov, Pose, View
    from tests.host.feature_models import Builder, _pbr

    b = Builder()
    tex = b.texture(bumps(512))
    b.quad(0, b.material(name="bumpy", pbrMetallicRoughness=_pbr((0.7, 0.7, 0.7, 1)),
                         normalTexture={"index": tex}), name="bumpy")
    src = tmp_path / "bumpy.glb"
    src.write_bytes(b.glb())
    out = tmp_path / "bumpy-converted.glb"
    convert_file(src, out)
    converted = load_model(out).materials[0].normal_texture
    assert converted is not None and converted.texture.compressed is not None
    assert converted.texture.compressed.format == BC5
    assert b"ATI2" in out.read_bytes()
    r = Renderer(200, 200, lighting="vertex")
    try:
        images = []
        for path, s3tc in ((src, True), (out, True), (out, False)):
            r.s3tc = s3tc
            scene = Scene()
            scene.add_model(load_model(path), "q")
            r.render(scene, [View(Pose((0.0, 0.0, 1.6), (0.0, 0.0, 0.0, 1.0)),
                                  Fov.symmetric(40.0, 1.0))])
            images.append(r.read_rgba()[:, :, :3].astype(np.int32))
        before, blocks, decoded = images
        assert before[60:140, 60:140].std() > 5  # the bumps show
        for after in (blocks, decoded):
            diff = np.abs(after - before).max(axis=2)
            assert (diff > 8).mean() < 0.01, f"{(diff > 8).sum()} pixels differ by more than 8"
    finally:
        r.close()


def _mesa_bc7(img: np.ndarray) -> CompressedImage:
    """``img`` as BC7 blocks made by Mesa (another tool's BC7: farview writes none), level 0."""
    import ctypes

    from OpenGL.raw.GL.VERSION.GL_1_3 import glGetCompressedTexImage

    name = int(GL.glGenTextures(1))
    try:
        GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, 0x8E8C, img.shape[1], img.shape[0], 0, GL.GL_RGBA,
                        GL.GL_UNSIGNED_BYTE, np.ascontiguousarray(img))
        out = np.zeros((img.shape[0] // 4) * (img.shape[1] // 4) * 16, np.uint8)
        glGetCompressedTexImage(GL.GL_TEXTURE_2D, 0, out.ctypes.data_as(ctypes.c_void_p))
        assert GL.glGetError() == GL.GL_NO_ERROR
    finally:
        GL.glDeleteTextures([name])
    return CompressedImage(BC7, img.shape[1], img.shape[0], (out.tobytes(),))


def test_bc7_blocks_from_another_tool_go_to_gl_as_they_are(tmp_path: Any,
                                                            egl_context: Any) -> None:
    """A DX10 DDS of BC7 blocks (which farview reads but does not decode) is uploaded as it
    is where GL has BPTC and draws as its PNG; without BPTC the PNG beside it is decoded; with
    neither the texture is grey and the host goes on. A conversion writes the blocks and the
    PNG again as they came; without the PNG it fails clearly."""
    from farview.host.convert import ConversionError, convert_file
    from farview.host.renderer import Renderer
    from farview.host.scene import Scene
    from farview.input.pose import Fov, Pose, View

    img = photo(128, 128)
    bc7 = _mesa_bc7(img)
    dds = write_dds(bc7)
    assert dds[84:88] == b"DX10" and read_dds(dds).levels == bc7.levels
    png = encode_png(img)
    model = load_model_bytes(_dds_quad(dds, png), name="q")
    texture = model.materials[0].base_color_texture.texture  # type: ignore[union-attr]
    assert texture.compressed is not None and texture.compressed.format == BC7
    assert texture.encoded == ("image/png", png) and texture.pixels is None
    lone = load_model_bytes(_dds_quad(dds, None), name="q")
    with pytest.raises(ModelError, match="BC7 blocks, which farview passes to GL but does not "
                                         "decode, and no PNG or JPEG beside them"):
        lone.materials[0].base_color_texture.texture.rgba()  # type: ignore[union-attr]

    r = Renderer(120, 120, lighting="vertex")
    try:
        assert r.bptc
        view = [View(Pose((0.0, 0.0, 2.4), (0.0, 0.0, 0.0, 1.0)), Fov.symmetric(50.0, 1.0))]
        images = []
        for glb, bptc in ((textured_quad_glb(png), True), (_dds_quad(dds, png), True),
                          (_dds_quad(dds, png), False), (_dds_quad(dds, None), False)):
            r.bptc = bptc
            scene = Scene()
            scene.add_model(load_model_bytes(glb, name="q"), "q")
            r.render(scene, view)
            images.append(r.read_rgba()[:, :, :3].astype(np.int32))
        plain, blocks, fallback, grey = images
        assert plain.std() > 20
        assert psnr(blocks, plain) > 30
        assert np.array_equal(fallback, plain)  # the PNG itself
        assert grey[40:80, 40:80].std() < 3  # a flat texture, not the photo
    finally:
        r.close()

    src = tmp_path / "bc7.glb"
    src.write_bytes(_dds_quad(dds, png))
    out = tmp_path / "bc7-converted.glb"
    convert_file(src, out)
    again = load_model(out).materials[0].base_color_texture.texture  # type: ignore[union-attr]
    assert again.compressed is not None and again.compressed.levels == bc7.levels
    assert again.encoded == ("image/png", png)
    (tmp_path / "lone.glb").write_bytes(_dds_quad(dds, None))
    with pytest.raises(ConversionError, match="BC7 blocks without a PNG or JPEG beside them"):
        convert_file(tmp_path / "lone.glb", tmp_path / "lone-converted.glb")
    assert not (tmp_path / "lone-converted.glb").exists()
