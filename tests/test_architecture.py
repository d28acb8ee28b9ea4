"""The package keeps its declared layers: `lint-imports` checks the contract in pyproject.toml
([tool.importlinter]): entry points and demo above the stages, the stages independent of one
another, then the model layer, then avrt.core."""

from __future__ import annotations

import subprocess

from conftest import BIN, REPO


def test_imports_follow_the_declared_layers():
    proc = subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache", "--no-logo"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"lint-imports found imports against the layers:\n{proc.stdout}{proc.stderr}"
