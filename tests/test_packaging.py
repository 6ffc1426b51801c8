"""What a packager expects of the distribution: licence, metadata, entry points, the sdist."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import sysevents
from tests.conftest import skip_or_fail, uv_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = uv_command()
    if uv is None:
        skip_or_fail("uv is needed to build the distribution")
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [str(uv), "build", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    return out


def test_the_wheel_carries_the_licence_and_metadata(dist: Path) -> None:
    (wheel,) = dist.glob("sysevents-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "sysevents_http/static/redoc/LICENSE" in names  # the vendored bundle's own
    for console in [
        "page.html",
        "static/main.js",
        "static/console.css",
        "static/LICENSES.txt",
        "static/vendor/uplot/uPlot.iife.min.js",
        "static/vendor/uplot/LICENSE",
    ]:
        assert f"sysevents_http/console/{console}" in names
    assert metadata["Version"] == sysevents.__version__
    assert metadata["License-Expression"] == "MIT"
    urls = {value.split(",")[0] for value in metadata.get_all("Project-URL") or []}
    assert {"Homepage", "Documentation", "Source", "Issues"} <= urls
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers
    assert any(c.startswith("Development Status") for c in classifiers)
    assert "sysevents/py.typed" in names
    assert "sysevents_http/py.typed" in names


def test_the_sdist_carries_what_its_tests_use(dist: Path) -> None:
    (sdist,) = dist.glob("sysevents-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in ("LICENSE", "README.md", "scripts/smoke.sh", "noxfile.py", "tests/conftest.py"):
        assert needed in names, needed
    assert any(n.startswith("migrations/versions/") for n in names)


def test_python_dash_m_and_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sysevents", "--version"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sysevents {sysevents.__version__}"
    helped = subprocess.run(
        [sys.executable, "-m", "sysevents", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "migrate" in helped.stdout
