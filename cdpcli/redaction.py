"""The one redaction step: every line cdp prints or writes (messages, --json objects, the
rejects file's reasons) passes through `redact`, so text from the HTTP stack or a server that
echoes the request never shows the API key. And the key a request body carries (`writeKey`,
as browser and mobile SDKs send it), masked wherever cdp serve keeps or shows a body."""

from __future__ import annotations

import re
from typing import Any

# Every form of the API key that text could carry (wire.secret_forms), registered by the
# Target that took the key; `redact` replaces each with ****. Process-wide on purpose: a key
# in any thread's error text is hidden from every output.
_secrets: list[str] = []


def add_secret(api_key: str) -> None:
    from cdpcli.wire import secret_forms  # lazy: start-up

    global _secrets
    # a new list, rebound: another thread's redact() may be iterating the old one
    _secrets = sorted({*_secrets, *secret_forms(api_key)}, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` without any registered secret (the API key, its base64 Basic form)."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "****")
    return text


# A key sent in a request's body: Customer.io's browser and mobile SDKs (and Segment's) send it
# as the top-level "writeKey" of a call or a batch body, where cdp serve would keep it verbatim.
WRITE_KEY = "writeKey"
MASK = "****"
# a "writeKey" member and its value as JSON text: a string (one cut short by a damaged or
# truncated body runs to the end) or a bare scalar. Found by its text, at any depth: a refused
# body may not be JSON at all, so its structure cannot say which member is top-level
_WRITE_KEY_MEMBER = re.compile(rb'("writeKey"\s*:\s*)(?:"(?:[^"\\]|\\.)*"?|[^\s,}\]]+)', re.DOTALL)


def mask_write_keys(text: bytes) -> bytes:
    """A request body with the value of every "writeKey" member shown as "****" (JSON or not)."""
    if b'"writeKey"' not in text:  # the common case: one scan, no copy
        return text
    return _WRITE_KEY_MEMBER.sub(rb'\1"****"', text)


def without_write_key(call: dict[str, Any]) -> dict[str, Any]:
    """`call` as kept and shown: its top-level writeKey (if any) masked, in a copy."""
    if WRITE_KEY not in call:
        return call
    return {**call, WRITE_KEY: MASK}
