"""From the sending options a command received to everything a request needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cdpcli import config
from cdpcli.errors import UsageError
from cdpcli.output import Output, add_secret
from cdpcli.wire import api_key_problem, auth_scheme, base_url, build_headers, key_region


@dataclass
class SendOptions:
    """The sending options every sending command takes, as typed (None = not given)."""

    api_key: str | None = None
    region: str | None = None
    endpoint: str | None = None
    profile: str | None = None
    timeout: float | None = None
    retries: int | None = None
    strict: bool | None = None
    gzip: bool | None = None
    dry_run: bool = False
    json: bool = False
    quiet: bool = False
    verbose: int = 0

    _out: Output | None = field(default=None, init=False, repr=False, compare=False)

    def output(self) -> Output:
        """The command's one Output (the same object each call)."""
        if self._out is None:
            self._out = Output(json_mode=self.json, quiet=self.quiet, verbosity=self.verbose)
        return self._out


@dataclass
class Session:
    out: Output
    profile: str
    settings: dict[str, config.Resolved]
    api_key: str | None
    region: str
    base: str
    timeout: float
    retries: int
    strict: bool
    gzip: bool
    dry_run: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def auth(self) -> str:
        return auth_scheme(self.api_key)

    def source(self, name: str) -> str:
        return self.settings[name].source

    def headers(self) -> dict[str, str]:
        return build_headers(self.api_key, strict=self.strict, gzip=self.gzip)

    def sender(self, **options: Any) -> Any:
        """A transport.Sender with this session's timeout, retries and TLS need."""
        from cdpcli.transport import Sender  # httpx: only on the paths that send

        return Sender(timeout=self.timeout, retries=self.retries, tls=self.base.startswith("https:"), **options)


def missing_key_error(profile: str) -> UsageError:
    return UsageError(
        f"no API key found (looked at --api-key, $CDP_API_KEY and profile {profile!r} in {config.config_path()})",
        hint="pass --api-key KEY, set CDP_API_KEY, or store it with `cdp config set api-key`",
    )


def _origin(source: str, name: str, profile: str) -> str:
    """How an error names where a setting came from: `--endpoint`, `CDP_ENDPOINT`, or the
    setting in the config file's profile."""
    if source.startswith("--"):
        return source
    if source.startswith("env "):
        return "$" + source[4:]
    return f"{name} in profile {profile!r} ({config.config_path()})"


def check_api_key(api_key: str, origin: str) -> None:
    """A key that cannot go in an HTTP header is a usage error that never shows the key."""
    problem = api_key_problem(api_key)
    if problem:
        raise UsageError(
            f"{origin}: the API key holds {problem} (the key is not shown); an API key is printable ASCII",
            hint="copy the key again from the HTTP source's settings in Customer.io; a key read "
            "from a file or pasted may carry a line break or a stray character",
        )


def open_session(opts: SendOptions, *, need_key: bool) -> Session:
    """Resolve settings (flag > env > profile > default); a key is needed only to send."""
    out = opts.output()
    flags: dict[str, Any] = {
        "api-key": opts.api_key,
        "region": opts.region,
        "endpoint": opts.endpoint,
        "timeout": opts.timeout,
        "retries": opts.retries,
        "strict": opts.strict,
        "gzip": opts.gzip,
    }
    profile, settings = config.resolve(flags, opts.profile)
    api_key = settings["api-key"].value
    if api_key:
        check_api_key(api_key, _origin(settings["api-key"].source, "api-key", profile))
        add_secret(api_key)  # from here on no printed line can show it
    elif need_key and not opts.dry_run:
        raise missing_key_error(profile)
    warnings = []
    region = settings["region"].value
    from_key = key_region(api_key)
    if from_key:
        if settings["region"].source == "default":
            region = from_key
            settings["region"] = config.Resolved(region, "api key")
        elif from_key != region:
            warnings.append(
                f"region {region} (from {settings['region'].source}) disagrees with the API key, "
                f"which is for region {from_key}; the API may answer 200 and store nothing"
            )
    try:
        base = base_url(settings["endpoint"].value, region)
    except ValueError as exc:
        origin = _origin(settings["endpoint"].source, "endpoint", profile)
        raise UsageError(f"{origin} {exc}", hint=getattr(exc, "hint", None)) from None
    if from_key and settings["endpoint"].value:
        other = "eu" if from_key == "us" else "us"
        if base.startswith(base_url(None, other)):
            warnings.append(f"the API key is for region {from_key} but the endpoint is region {other}'s ({base})")
    for text in warnings:
        out.warn(text)
    return Session(
        out=out,
        profile=profile,
        settings=settings,
        api_key=api_key,
        region=region,
        base=base,
        timeout=settings["timeout"].value,
        retries=settings["retries"].value,
        strict=settings["strict"].value,
        gzip=settings["gzip"].value,
        dry_run=opts.dry_run,
        warnings=warnings,
    )
