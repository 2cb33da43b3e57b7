"""Every long flag means one thing: declared once (cli/options.py, or beside its one command),
with one help text and one type wherever it appears. A flag that differs between commands on
purpose is listed below with the reason; any other difference fails here."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import typer.main

from cdpcli.cli.app import app

# flag -> {command path: why it differs there}. Keep this short: each entry is a second meaning.
DELIBERATE: dict[str, dict[str, str]] = {
    "--api-key": {
        "serve": "the receiver's own key, not the HTTP source's; never read from $CDP_API_KEY",
        "expect": "the key of the cdp serve being checked, not the production key",
    },
    "--json": {"expect": "one JSON object for the whole check, not one per call"},
    "--timeout": {"expect": "how long to wait for calls to arrive, not for one response"},
    "--from": {
        "import": "SPEC keeps both meanings: `cdp import --from VENDOR` names an export's shape, "
        "the operations' `--from FILE|-` names the input file",
    },
    "--user": {"alias": "required there: the userId to keep"},
    "--user-id": {"alias": "required there: the userId to keep"},
    "--property": {"device add": "the device's attributes (sent in properties; no --properties there)"},
}


def _commands(command: Any, path: tuple[str, ...] = ()):
    """(path, click command) for every leaf command of the app."""
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def _declarations() -> dict[str, dict[tuple, list[str]]]:
    """flag -> {what it is (help, type, metavar, kind): the commands that declare it so}."""
    seen: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if param.param_type_name != "option":
                continue
            shape = (
                param.help,
                repr(param.type_descriptor.annotation),
                param.metavar,
                param.is_flag,
                param.count,
                param.multiple,
                param.hidden,
            )
            for flag in (*param.opts, *param.secondary_opts):
                if flag.startswith("--"):
                    seen[flag][shape].append(path)
    return seen


def test_each_long_flag_has_one_help_and_one_type_except_the_listed_differences():
    drifted = {}
    for flag, shapes in _declarations().items():
        listed = DELIBERATE.get(flag, {})
        usual = [shape for shape, paths in shapes.items() if not set(paths) <= set(listed)]
        if len(usual) > 1:
            drifted[flag] = {str(paths): shape[:3] for shape, paths in shapes.items()}
    assert not drifted, f"declared twice with different help or type (declare it once in cli/options.py): {drifted}"


def test_the_list_of_deliberate_differences_is_not_stale():
    seen = _declarations()
    for flag, commands in DELIBERATE.items():
        for command in commands:
            paths = [path for shape_paths in seen[flag].values() for path in shape_paths]
            assert command in paths, f"{flag} is no longer declared by `cdp {command}`"
            others = [shape for shape, shape_paths in seen[flag].items() if command not in shape_paths]
            assert others, f"{flag} of `cdp {command}` is declared like the others now: drop it from the list"


def test_object_type_id_is_one_string_option_in_group_and_the_operations():
    shapes = _declarations()["--object-type-id"]
    assert len(shapes) == 1
    (paths,) = shapes.values()
    assert {"group", "object delete", "relationship delete"} <= set(paths)
