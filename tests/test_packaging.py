"""The stock specs ship inside the wheel: a plain install finds `resnet152` from any folder.

The wheel also carries the stock design spaces and the `py.typed` marker, so type checkers read
the package's annotations.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import ROOT, STOCK


def test_wheel_carries_the_stock_specs_and_finds_them_by_name(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheel_dir), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheel_dir.glob("archspec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {f"archspec/specs/{name}.yaml" for name in STOCK} <= names
        spaces = {f"archspec/specs/spaces/{path.name}" for path in (ROOT / "specs" / "spaces").glob("*.yaml")}
        assert spaces and spaces <= names
        roadmap = {
            f"archspec/specs/{path.relative_to(ROOT / 'specs')}" for path in (ROOT / "specs").glob("roadmap/*/*.yaml")
        }
        assert roadmap and roadmap <= names
        assert "archspec/py.typed" in names
        site = tmp_path / "site"
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = (
        "import archspec, archspec.lang.sources as s; print(s.stock_dir()); print(archspec.count('resnet152').params);"
        "from archspec.tools.roadmap import convnext_roadmap; print(convnext_roadmap()[-1].params)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    folder, params, convnext = result.stdout.split()
    assert folder == str(site / "archspec" / "specs")
    assert params == "60192808"
    assert convnext == "28589128"  # the roadmap's last step, read from the wheel: torchvision's convnext_tiny
