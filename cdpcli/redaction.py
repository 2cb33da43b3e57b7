"""The one redaction step: every line cdp prints or writes (messages, --json objects, the
rejects file's reasons) passes through `redact`, so text from the HTTP stack or a server that
echoes the request never shows the API key."""

from __future__ import annotations

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
