"""Where calls go and how: the resolved target (endpoint, key, timeout, retries, strict, gzip).

`Target.resolve()` takes settings the way the CLI does (argument > environment > config
profile > default); `Target(...)` takes them as given. Either way the key is checked and
registered for redaction, the region follows a pk_/sk_ key unless one was chosen, and the
endpoint is checked once (wire.base_url). What deserves a word but does not stop anything
(a region that disagrees with the key) is in `warnings`; the core never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MethodType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from cdpcli import config, settings
from cdpcli.errors import UsageError
from cdpcli.redaction import add_secret
from cdpcli.wire import api_key_problem, auth_scheme, base_url, build_headers, key_region, mask_key

if TYPE_CHECKING:
    from cdpcli.transport import Outcome, Sender
    from cdpcli.wire import Request

# How a setting given to Target(...) directly is named in messages.
GIVEN = "argument"

_P = ParamSpec("_P")
_R = TypeVar("_R")


class class_only(Generic[_P, _R]):  # noqa: N801 - used as a decorator, like classmethod
    """A classmethod that an instance cannot call: `target.resolve()` looks like it resolves
    that target, yet a classmethod would ignore it and build the production target from the
    environment. Called on an instance, it raises TypeError saying so; reading the attribute
    stays harmless (hasattr, help, completion)."""

    def __init__(self, method: Callable[Concatenate[Any, _P], _R]) -> None:
        self.method = method
        self.__doc__ = method.__doc__

    def __get__(self, instance: object, owner: type) -> Callable[_P, _R]:
        if instance is None:
            return cast("Callable[_P, _R]", MethodType(self.method, owner))
        name = f"{owner.__name__}.{self.method.__name__}"

        def refuse(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            raise TypeError(
                f"{name}() builds a new {owner.__name__} from arguments, the environment and the config "
                f"profile; call it on the class ({name}(...)), not on an instance, which is resolved "
                f"already (dataclasses.replace(target, ...) makes a changed copy)"
            )

        return refuse


@dataclass
class Target:
    """A resolved destination. `endpoint` overrides `region` (e.g. `cdp serve`'s URL)."""

    api_key: str | None = field(default=None, repr=False)
    region: str | None = None  # None: the region of a pk_/sk_ key, else us
    endpoint: str | None = None
    timeout: float = settings.SETTINGS["timeout"][1]
    retries: int = settings.SETTINGS["retries"][1]
    strict: bool = settings.SETTINGS["strict"][1]
    gzip: bool = settings.SETTINGS["gzip"][1]
    profile: str = settings.DEFAULT_PROFILE
    # where each setting came from ("--api-key", "env CDP_API_KEY", "profile prod", "default",
    # "api key" for a region read off the key, or GIVEN): named in messages and `config list`
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list, repr=False)
    base: str = field(init=False)

    def __post_init__(self) -> None:
        for name in settings.SETTINGS:
            if self.sources.setdefault(name, GIVEN) == GIVEN:  # resolve() has checked its own
                attribute = name.replace("-", "_")
                setattr(self, attribute, settings.coerce_setting(name, getattr(self, attribute), self._origin(name)))
        if self.api_key:
            check_api_key(self.api_key, self._origin("api-key"))
            add_secret(self.api_key)  # from here on no printed line can show it
        from_key = key_region(self.api_key)
        if self.region is None or (self.sources["region"] == "default" and from_key):
            self.region = from_key or settings.SETTINGS["region"][1]
            self.sources["region"] = "api key" if from_key else "default"
        elif from_key and from_key != self.region:
            self.warnings.append(
                f"region {self.region} (from {self.sources['region']}) disagrees with the API key, "
                f"which is for region {from_key}; the API may answer 200 and store nothing"
            )
        try:
            self.base = base_url(self.endpoint, self.region)
        except ValueError as exc:
            hint = getattr(exc, "hint", None)
            named = "api_key" if "api_key=" in (hint or "") else None  # an endpoint holding user:password@
            raise UsageError(f"{self._origin('endpoint')} {exc}", hint=hint, option=named) from None
        if from_key and self.endpoint:
            other = "eu" if from_key == "us" else "us"
            if self.base.startswith(base_url(None, other)):
                self.warnings.append(
                    f"the API key is for region {from_key} but the endpoint is region {other}'s ({self.base})"
                )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in another process (a Dask or Spark worker): the key is hidden there too."""
        self.__dict__.update(state)
        if self.api_key:
            add_secret(self.api_key)

    @class_only
    def resolve(
        cls: type[Target],
        *,
        profile: str | None = None,
        api_key: str | None = None,
        region: str | None = None,
        endpoint: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        strict: bool | None = None,
        gzip: bool | None = None,
        warnings: list[str] | None = None,
    ) -> Target:
        """Each setting from the argument, else $CDP_*, else the config profile (`profile`,
        else $CDP_PROFILE, else "default"), else its default: what the CLI does with flags.
        The config file's warnings go into `warnings` (a list of the caller's, which keeps them
        when resolving fails) and are the Target's `warnings`."""
        given = {
            "api-key": api_key,
            "region": region,
            "endpoint": endpoint,
            "timeout": timeout,
            "retries": retries,
            "strict": strict,
            "gzip": gzip,
        }
        said = [] if warnings is None else warnings
        name, resolved = settings.resolve(given, profile, warnings=said)
        values = {key.replace("-", "_"): item.value for key, item in resolved.items()}
        target = cls(
            **values,
            profile=name,
            sources={key: item.source for key, item in resolved.items()},
            warnings=said,
        )
        return target

    @property
    def auth(self) -> str:
        """The auth scheme the key uses (Basic, or Bearer for an sk_ key)."""
        return auth_scheme(self.api_key)

    @property
    def masked_key(self) -> str:
        return mask_key(self.api_key)

    def require_key(self) -> None:
        """Sending needs a key (a dry run does not)."""
        if not self.api_key:
            raise UsageError(
                f"no API key found (looked at api_key=, $CDP_API_KEY and profile {self.profile!r} in {config.config_path()})",
                hint="pass api_key=KEY, set CDP_API_KEY, or store it with `cdp config set api-key`",
                option="api_key",
            )

    def key_origin(self) -> str:
        """Where the key came from, as messages say it (the flag, env CDP_API_KEY, …)."""
        source = self.sources.get("api-key", GIVEN)
        return "the api_key given to Target" if source == GIVEN else source

    def headers(self) -> dict[str, str]:
        return build_headers(self.api_key, strict=self.strict, gzip=self.gzip)

    def sender(self, **options: Any) -> Sender:
        """A transport.Sender with this target's timeout, retries and TLS need."""
        from cdpcli.transport import Sender  # lazy: start-up; httpx: only on the paths that send

        return Sender(timeout=self.timeout, retries=self.retries, tls=self.base.startswith("https:"), **options)

    def send(self, request: Request, **sender_options: Any) -> Outcome:
        """Send one request to this target on a connection of its own (retries per `retries`)."""
        self.require_key()
        with self.sender(**sender_options) as sender:
            return sender.send(request)

    def _origin(self, name: str) -> str:
        """How an error names where a setting came from: `--endpoint`, `$CDP_ENDPOINT`, the
        setting in the config file's profile, or the argument given to Target."""
        source = self.sources.get(name, GIVEN)
        if source.startswith("--"):
            return source
        if source.startswith("env "):
            return "$" + source[4:]
        if source == GIVEN:
            return f"{name.replace('-', '_')}= (given to Target)"
        return f"{name} in profile {self.profile!r} ({config.config_path()})"


def check_api_key(api_key: str, origin: str) -> None:
    """A key that cannot go in an HTTP header is a usage error that never shows the key."""
    problem = api_key_problem(api_key)
    if problem:
        raise UsageError(
            f"{origin}: the API key holds {problem} (the key is not shown); an API key is printable ASCII",
            hint="copy the key again from the HTTP source's settings in Customer.io; a key read "
            "from a file or pasted may carry a line break or a stray character",
        )
