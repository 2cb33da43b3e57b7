"""The README's shell-completion lines work on a fresh account (no completion folders yet)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def completion_lines() -> list[str]:
    section = README.read_text().split("## Shell completion", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return [line for line in block[1].splitlines() if line.strip() and not line.startswith("#")]


def test_the_completion_lines_install_on_a_fresh_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cdp = f'cdp() {{ {shlex.quote(sys.executable)} -m cdpcli "$@"; }}'
    script = "\n".join(["set -e", cdp, *completion_lines()])
    run = subprocess.run(["bash", "-c", script], env={"HOME": str(home), "PATH": "/usr/bin:/bin"}, capture_output=True)
    assert run.returncode == 0, run.stderr.decode()
    for path in (
        ".local/share/bash-completion/completions/cdp",
        ".zfunc/_cdp",
        ".config/fish/completions/cdp.fish",
    ):
        assert (home / path).stat().st_size > 0, path
