"""`populator demo`: the Quickstart's first command, end to end, with no AWS account."""

from __future__ import annotations

import json
import re
import subprocess
import sys


def test_demo_backfills_and_verifies_its_own_archive(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "populator", "demo", "--events", "2000"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "verify: the table holds exactly the" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # It ends by saying where the run's report is: the one file it leaves in the working directory.
    page = tmp_path / "populator-demo-report.html"
    assert result.stdout.rstrip().endswith(f"the run's report, to open in a browser: {page}")
    assert [path.name for path in tmp_path.iterdir()] == [page.name]
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page.read_text())
    assert data, "the page embeds no report"
    report = json.loads(data.group(1))
    assert report["status"] == "ok" and report["resume_command"] is None
    assert report["items_written"] > 0 and len(report["timeline"]["points"]) >= 2


def test_demo_without_moto_says_which_extra_to_install(tmp_path):
    # A `moto` package that cannot be imported stands in for an install without the extra.
    (tmp_path / "shim" / "moto").mkdir(parents=True)
    (tmp_path / "shim" / "moto" / "__init__.py").write_text("raise ImportError('no moto here')\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path / "shim")}
    result = subprocess.run(
        [sys.executable, "-m", "populator", "demo"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "pip install 'populator[demo]'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
