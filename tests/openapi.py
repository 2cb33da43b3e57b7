"""Customer.io's published OpenAPI document for the Pipelines API, as JSON Schema validators.

The document (tests/data/pipelines-openapi.json; see README) is written for documentation and
its `oneOf`s overlap (a context with only `library` matches both the mobile and the non-mobile
context), so every `oneOf` is read as `anyOf`.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

DOCUMENT = Path(__file__).parent / "data" / "pipelines-openapi.json"
REQUEST_SCHEMAS = {kind: kind for kind in ("identify", "track", "page", "screen", "group", "alias", "batch")}


def _one_of_as_any_of(node: Any) -> Any:
    if isinstance(node, dict):
        return {("anyOf" if key == "oneOf" else key): _one_of_as_any_of(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_one_of_as_any_of(item) for item in node]
    return node


@cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())


@cache
def validator(component: str) -> Draft202012Validator:
    """A validator for `#/components/schemas/<component>`, refs resolved within the document."""
    components = _one_of_as_any_of(document()["components"])
    root = {"$ref": f"#/components/schemas/{component}", "components": components}
    return Draft202012Validator(root, format_checker=FormatChecker())


def problems(component: str, body: Any) -> list[str]:
    """Why `body` does not match the component's schema (empty when it does)."""
    return [
        f"{'/'.join(str(p) for p in error.absolute_path) or '<body>'}: {error.message[:300]}"
        for error in validator(component).iter_errors(body)
    ]


def request_schema(path: str) -> str:
    """The component the document names as the request body of POST /v1/<path>."""
    content = document()["paths"][f"/{path}"]["post"]["requestBody"]["content"]["application/json"]
    return content["schema"]["$ref"].rsplit("/", 1)[-1]
