"""`cdp completions SHELL`: the shell completion scripts (also in completions/, kept in sync by a test)."""

from typing import Annotated

import typer

from cdpcli.cli.app import app
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
    from cdpcli.errors import UsageError

    with reporting():
        if shell not in COMPLETION_SHELLS:
            raise UsageError(f"unsupported shell {shell!r}", hint="one of: " + ", ".join(COMPLETION_SHELLS))
        typer.echo(completion_script(shell), nl=False)


COMPLETION_SHELLS = ("bash", "zsh", "fish")


def completion_script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name="cdp", complete_var="_CDP_COMPLETE", shell=shell) + "\n"
