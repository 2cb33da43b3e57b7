"""Results rendered: words for a terminal (`report`, `summary_line`) and JUnit XML (`junit`)."""

from __future__ import annotations

from cdpcli.expect.check import Result
from cdpcli.expect.match import short


def summary_line(results: list[Result]) -> str:
    results = [r for r in results if r.kind != "warning"]
    failed = sum(not r.ok for r in results)
    held = len(results) - failed
    return f"{held} of {len(results)} check{'s' if len(results) != 1 else ''} held" + (
        f"; {failed} failed." if failed else "."
    )


def report(results: list[Result]) -> str:
    """The results in words: one line a check, and for a failure what was expected, what was
    found, the closest call and its differences."""
    lines = []
    for result in results:
        if result.kind == "warning":
            lines.append(f"WARN {result.name}: {result.problem}")
            continue
        if result.ok:
            lines.append(f"PASS {result.name}")
            continue
        lines.append(f"FAIL {result.name}")
        lines.append(f"  expected: {result.expected}")
        if result.problem:
            lines.append(f"  found: {result.problem}")
        if result.closest is not None:
            seq = result.closest.get("_seq")
            label = "closest call" if result.kind == "expect" and result.differences else "offending call"
            shown = {k: v for k, v in result.closest.items() if k != "_seq"}
            lines.append(f"  {label}{f' (#{seq})' if seq else ''}: {short(shown, 300)}")
        if result.differences and result.kind != "plan":
            lines += [f"    - {difference}" for difference in result.differences]
    lines.append(summary_line(results))
    return "\n".join(lines)


def junit(results: list[Result], suite: str = "cdp expect") -> str:
    """The results as JUnit XML (one testcase a check, a <failure> for each that failed)."""
    from xml.etree import ElementTree as ET  # lazy: start-up

    failures = sum(not r.ok for r in results)
    root = ET.Element("testsuites", name=suite, tests=str(len(results)), failures=str(failures))
    element = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures), errors="0", skipped="0"
    )
    for result in results:
        case = ET.SubElement(element, "testcase", name=result.name, classname=f"cdp.expect.{result.kind}")
        if not result.ok:
            failure = ET.SubElement(case, "failure", message=result.problem or result.expected, type=result.kind)
            failure.text = report([result]).rsplit("\n", 1)[0]
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
