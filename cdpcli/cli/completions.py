"""`cdp completions SHELL`: the shell completion scripts (also in completions/, kept in sync by a test)."""

from typing import Annotated

import typer

from cdpcli.cli.base import app
from cdpcli.cli.output import reporting


@app.command()
def completions(
    shell: Annotated[
        str,
        typer.Argument(
            help="bash, zsh or fish.", metavar="bash|zsh|fish", autocompletion=lambda: list(COMPLETION_SHELLS)
        ),
    ],
) -> None:
    """Print the shell completion script (also in completions/ of the source tree).

    Example: cdp completions bash > ~/.local/share/bash-completion/completions/cdp
    """
    from cdpcli.errors import UsageError  # lazy: start-up

    with reporting():
        if shell not in COMPLETION_SHELLS:
            raise UsageError(f"unsupported shell {shell!r}", hint="one of: " + ", ".join(COMPLETION_SHELLS))
        typer.echo(completion_script(shell), nl=False)


COMPLETION_SHELLS = ("bash", "zsh", "fish")


# Typer's completion machinery has no public entry points for these two steps (its public
# `--install-completion` writes to the user's rc files, which cdp does not do); both private
# calls live here, and tests/test_setup.py checks their result (the checked-in scripts match,
# and bash completion answers with regions, types and profiles).
COMPLETE_VAR = "_CDP_COMPLETE"


def completion_script(shell: str) -> str:
    from typer._completion_shared import get_completion_script  # lazy: start-up

    return get_completion_script(prog_name="cdp", complete_var=COMPLETE_VAR, shell=shell) + "\n"


def register_completion_classes() -> None:
    """Before the app runs on a shell's completion request: Typer's shell-specific classes."""
    from typer._completion_classes import completion_init  # lazy: start-up

    completion_init()
