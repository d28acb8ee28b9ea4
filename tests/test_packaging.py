"""The package installs as a wheel, not only in editable mode: schema and prompts are package data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO


@pytest.mark.integration
def test_the_wheel_carries_schema_and_prompts_and_works_outside_the_repository(tmp_path):
    wheel_dir, site, source = tmp_path / "wheel", tmp_path / "site", tmp_path / "source"
    # built from a copy: a build leaves build/ and *.egg-info next to the sources
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheel_dir), str(source)], check=True, capture_output=True)
    [wheel] = wheel_dir.glob("avrt_pipeline-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "avrt/core/schema/config.schema.yaml" in names and "avrt/core/prompts/SHA256SUMS" in names
    assert {"avrt/core/prompts/merger.txt", "avrt/core/prompts/student_reasoning.txt"} <= names
    assert not any(n.startswith(("tests/", "scripts/", "workflow/")) for n in names)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import avrt; assert avrt.__file__.startswith(sys.argv[1]), avrt.__file__;"
        "from avrt.core.config import load_config, load_schema; from avrt.core.prompts import load_prompt;"
        "assert load_schema()['properties']['run'];"
        "assert load_prompt('merger').sha256;"
        "print(load_config(sys.argv[2])['run'])"
    )
    out = subprocess.run([sys.executable, "-c", probe, str(site), str(REPO / "config" / "config.yaml")],
                         cwd=tmp_path, check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "avrt-3b"
