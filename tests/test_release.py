"""Release habits: the version follows the changelog, and the license is declared and present."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cdpcli import __version__

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib


def test_the_version_is_the_changelogs_newest_section():
    sections = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.MULTILINE)
    assert sections and sections[0] == __version__, (
        f"CHANGELOG.md's newest section is {sections[:1]}, cdp says {__version__}"
    )


def test_the_license_file_is_declared_and_is_mit():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "MIT"
    for name in project["license-files"]:
        text = (ROOT / name).read_text(encoding="utf-8")
        assert text.startswith("MIT License") and "the cdp authors" in text
