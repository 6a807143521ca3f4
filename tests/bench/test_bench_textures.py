"""``benchmarks/bench_textures.py`` generates its textured model, converts it and reports each
file (no speed assertions: the numbers are the benchmark's business)."""

from __future__ import annotations

import re

import pytest

from tests.bench import run_bench


@pytest.mark.timeout(180)
def test_bench_textures_reports_the_input_and_the_converted_file() -> None:
    stdout = run_bench("bench_textures.py", "--textures", "1", "--size", "512", "--frames", "2")
    rows = re.findall(r"^(input|converted)\s+([\d.]+)(\s+[\d.]+){4}\s+(S3TC in GL|no S3TC)",
                      stdout, re.M)
    assert [r[0] for r in rows] == ["input", "converted"], stdout
    # the converted file carries the blocks beside the JPEG: bigger
    assert float(rows[1][1]) > float(rows[0][1]), stdout
    assert re.search(r"^conversion: [\d.]+ s$", stdout, re.M), stdout
