"""The Dockerfile's build, as far as it can be checked without a Docker engine.

The image was built and run with Docker once (see the notes of issue 7); these tests keep the
Dockerfile in step with the package: what it copies is enough to build the package with its
schemas, it runs as a fixed non-root uid, and its entry point is the console script.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.+)$", DOCKERFILE, re.MULTILINE)]


def test_what_the_dockerfile_copies_builds_the_package_with_its_schemas(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    for copy in instructions("COPY"):
        *sources, _ = copy.split()
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            if path.is_dir():
                shutil.copytree(path, context / source, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, context / source)
    # With build isolation, as `pip install` in the image does: the build backend comes from PyPI.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("populator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "populator").rglob("*.py")}
    assert modules <= set(names), modules - set(names)  # every room's modules, not only the top
    bundled = [n for n in names if n.startswith("populator/config/schemas/")]
    shipped = [p for p in (ROOT / "populator" / "config" / "schemas").rglob("*") if p.is_file()]
    assert len(bundled) == len(shipped) > 0
    assets = {str(p.relative_to(ROOT)) for p in (ROOT / "populator" / "observe" / "assets").iterdir()}
    assert assets and assets <= set(names), assets - set(names)  # what the HTML report inlines


def test_runs_as_a_fixed_non_root_uid_with_the_console_script_as_entry_point():
    (user,) = instructions("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    (entrypoint,) = instructions("ENTRYPOINT")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == '["populator"]' and "populator" in scripts
