"""What goes on the wire: limits, URLs, headers, timestamps and request bodies.

Plain Python with no HTTP library, so dry-run and the sending path build the very same
`Request`, and only transport.py needs httpx.
"""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from cdpcli import __version__
from cdpcli.jsontext import is_text

BASE_URLS = {"us": "https://cdp.customer.io/v1", "eu": "https://cdp-eu.customer.io/v1"}
CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")

# Limits from Customer.io's OpenAPI document (32KB per call, 500KB per request); SDKs and
# the Segment HTTP API agree on at most 2,500 calls per batch.
MAX_CALL_BYTES = 32_000
MAX_REQUEST_BYTES = 500_000
MAX_BATCH_CALLS = 2_500
DEFAULT_BATCH_BYTES = 490_000  # under the 500,000 limit, with room for how others count "KB"

LIBRARY = {"name": "cdpcli", "version": __version__}
USER_AGENT = f"cdpcli/{__version__}"

# Keys shaped like pk_us_… / sk_eu_… carry their region and go as Bearer tokens
# (customerio-cdp-analytics 1.1.0 does the same).
REGION_KEY = re.compile(r"^(pk|sk)_(us|eu)_")

_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)
_COMPACT_UTF8 = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept as UTF-8 (what we send)."""
    return _COMPACT_UTF8.encode(obj)


def call_size(call: dict[str, Any]) -> int:
    """Size of one call as the API counts it: compact JSON with non-ASCII escaped."""
    return len(_COMPACT.encode(call))


def may_count_over(body: bytes) -> bool:
    """False when `body`, one call's JSON text, cannot count over MAX_CALL_BYTES as call_size
    counts it: ensure_ascii writes a non-ASCII character in at most 3 times its UTF-8 bytes
    (é: 2 bytes, `\\u00e9` 6; 😀: 4, 12) and DEL (U+007F, ASCII) in 6 (`\\u007f`), every other
    byte of JSON text in at most one."""
    size = len(body)
    if size > MAX_CALL_BYTES or (size > MAX_CALL_BYTES // 3 and not body.isascii()):
        return True
    return size > MAX_CALL_BYTES // 6 and body.find(b"\x7f") >= 0


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds: 2026-11-27T13:31:42.000Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # naive input is taken as UTC
    moment = moment.astimezone(timezone.utc)
    if moment.year < 1000:  # strftime's %Y does not pad them (glibc): keep what it writes
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    # what strftime writes, at a third of its cost (isoformat truncates to milliseconds too)
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def now_timestamp() -> str:
    return format_timestamp(datetime.now(timezone.utc))


_CANONICAL_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z", re.ASCII)  # \d: any script's


def parse_timestamp(value: str | int | float) -> str:
    """Normalise an ISO-8601 string (or Unix seconds) to SPEC's timestamp format.

    Raises ValueError with a message fit for the user.
    """
    if value.__class__ is str:  # the common shapes first, in as few steps as can be (import's hot path)
        shape = _ISO_SHAPE.match(value)
        if shape is not None:
            day, clock, seconds, fraction, offset = shape.groups()
            if offset is None and clock is not None and _day_numbers.get(day):  # UTC, a date seen valid
                return f"{day}T{clock}{seconds}{_MILLIS[fraction]}"
            text = _iso_text(day, clock, seconds, fraction, offset)
            if text is not None:
                return text
        if _CANONICAL_TIMESTAMP.match(value):  # already in our format
            return value
        if _ISO_OFFSET.match(value):  # what the general way below reads, in fewer steps
            try:
                moment = datetime.fromisoformat(value).astimezone(timezone.utc)
            except ValueError:
                pass  # the general way says why
            else:
                if moment.year >= 1000:  # (format_timestamp writes the years before as strftime does)
                    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"
    elif value.__class__ is int and 0 <= value <= _LAST_UNIX_SECOND:  # Unix seconds: Mixpanel's time
        days, second = divmod(value, 86_400)
        return f"{_unix_day(days)}T{_CLOCK[second // 60]}{_SECONDS[second % 60]}"
    elif value.__class__ is float and 0 <= value <= _LAST_UNIX_SECOND:  # Unix seconds with a fraction
        text = _unix_text(value)
        if text is not None:
            return text
    if isinstance(value, bool):
        raise ValueError("expected an ISO-8601 date-time")
    if isinstance(value, (int, float)):
        return _from_unix(value, value)
    text = value.strip()
    if _UNIX_SECONDS.fullmatch(text):  # Unix seconds, as `date +%s` prints
        return _from_unix(float(text), value)
    if _UNIX_MILLISECONDS.fullmatch(text):  # `date +%s%3N`, JavaScript's Date.now()
        raise ValueError(_milliseconds(value, float(text)))
    try:
        moment = datetime.fromisoformat(_utc_for_z(text))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date-time (e.g. 2026-11-27T13:31:42Z)") from None
    return format_timestamp(moment)


_UNIX_SECONDS = re.compile(r"\d{9,11}(\.\d+)?", re.ASCII)
_UNIX_MILLISECONDS = re.compile(r"\d{12,14}(\.\d+)?", re.ASCII)
# The shapes exporters write, with the ranges fromisoformat checks in the regex itself (hours
# 00-23, minutes and seconds 00-59, offsets under 24 h) and the calendar in _day_number: a date
# alone, or a date, T or a space, a time with 0-9 fraction digits, and Z, an offset or no zone
# (read as UTC). Groups: the date, "HH:MM", ":SS", the first 1-3 fraction digits, the offset.
_ISO_SHAPE = re.compile(
    r"(\d{4}-\d\d-\d\d)"
    r"(?:[T ]((?:[01]\d|2[0-3]):[0-5]\d)(:[0-5]\d)(?:\.(\d{1,3})\d{0,6})?"
    r"(?:[Zz]|([+-](?:[01]\d|2[0-3]):[0-5]\d))?)?\Z",
    re.ASCII,
)
# a fraction's first 1-3 digits (None: no fraction) as the milliseconds and zone that end the text
_MILLIS: dict[str | None, str] = {
    None: ".000Z",
    **{f"{n:0{width}d}": "." + f"{n:0{width}d}".ljust(3, "0") + "Z" for width in (1, 2, 3) for n in range(10**width)},
}
# the minutes of a day as "HH:MM", and back; an offset as the minutes it adds to UTC
_HH_MM = tuple(f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440))
_MINUTE_OF_DAY = {text: minute for minute, text in enumerate(_HH_MM)}
_OFFSET_MINUTES = {
    f"{sign}{text}": minute * (1 if sign == "+" else -1) for sign in "+-" for text, minute in _MINUTE_OF_DAY.items()
}
# A date-time with an offset or Z, as fromisoformat reads it (3.11 on: Z too; never one without a
# zone, which astimezone would take as local time)
_ISO_OFFSET = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)\Z", re.ASCII)


def _iso_text(day: str, clock: str | None, seconds: str, fraction: str | None, offset: str | None) -> str | None:
    """One match of _ISO_SHAPE in SPEC's format, with no datetime: the date checked against the
    calendar once (_day_number), an offset subtracted in minutes, a day boundary crossed by the
    date's number. None when the general way must decide (years before 1000 and after 9999,
    which format_timestamp and fromisoformat treat their own ways; a date not in the calendar)."""
    number = _day_number(day)
    if number is None:
        return None
    if clock is None:  # a date alone: midnight UTC
        return f"{day}T00:00:00.000Z"
    if offset is not None:
        minute = _MINUTE_OF_DAY[clock] - _OFFSET_MINUTES[offset]
        if minute < 0 or minute >= 1440:
            shift, minute = divmod(minute, 1440)
            shifted = _day_text(number + shift)
            if shifted is None:
                return None
            day = shifted
        clock = _HH_MM[minute]
    return f"{day}T{clock}{seconds}{_MILLIS[fraction]}"


# Dates as an export holds them: few distinct ones, each read once (bounded: a file of random
# dates cannot grow these for good). The number is the date's proleptic ordinal.
_day_numbers: dict[str, int | None] = {}
_day_texts: dict[int, str | None] = {}
_FIRST_DAY = date(1000, 1, 1).toordinal()  # years 1000-9999: what format_timestamp writes as YYYY
_LAST_DAY = date(9999, 12, 31).toordinal()


def _day_number(text: str) -> int | None:
    """The number of a YYYY-MM-DD date in years 1000-9999, None when it is not a date of the calendar."""
    if text in _day_numbers:
        return _day_numbers[text]
    try:
        number: int | None = date.fromisoformat(text).toordinal()
    except ValueError:
        number = None
    if number is not None and number < _FIRST_DAY:
        number = None
    if len(_day_numbers) >= 100_000:
        _day_numbers.clear()
    _day_numbers[text] = number
    return number


def _day_text(number: int) -> str | None:
    """The date numbered `number` as YYYY-MM-DD, None outside years 1000-9999."""
    if not _FIRST_DAY <= number <= _LAST_DAY:
        return None
    text = _day_texts.get(number)
    if text is None:
        if len(_day_texts) >= 100_000:
            _day_texts.clear()
        text = _day_texts[number] = date.fromordinal(number).isoformat()
    return text


def _utc_for_z(text: str) -> str:
    return text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text


# Unix seconds as text, without datetime: a day's date (cached: an export spans few days) and
# the time of day from two small tables. ~3x faster than fromtimestamp and formatting.
_CLOCK = tuple(f"{text}:" for text in _HH_MM)
_SECONDS = tuple(f"{second:02d}.000Z" for second in range(60))
_TWO_DIGITS = tuple(f"{second:02d}" for second in range(60))
_MILLISECONDS = tuple(f".{millis:03d}Z" for millis in range(1000))
_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_unix_days: dict[int, str] = {}


def _unix_day(days: int) -> str:
    """The date `days` after 1970-01-01, as YYYY-MM-DD (what format_timestamp writes)."""
    text = _unix_days.get(days)
    if text is None:
        if len(_unix_days) >= 100_000:  # bounded: a file of random times cannot grow it for good
            _unix_days.clear()
        day = date.fromordinal(_UNIX_EPOCH_ORDINAL + days)
        text = _unix_days[days] = format_timestamp(datetime(day.year, day.month, day.day))[:10]
    return text


def _unix_text(seconds: float) -> str | None:
    """Unix seconds with a fraction, as datetime.fromtimestamp and format_timestamp write them:
    the fraction rounded half to even to microseconds (CPython's _PyTime_DoubleToDenominator,
    carried into the seconds at 1,000,000), then cut to milliseconds. None past the last second."""
    fraction, whole = math.modf(seconds)
    micros = round(fraction * 1e6)
    second = int(whole)
    if micros >= 1_000_000:
        micros -= 1_000_000
        second += 1
    if second > _LAST_UNIX_SECOND:
        return None
    days, second = divmod(second, 86_400)
    return f"{_unix_day(days)}T{_CLOCK[second // 60]}{_TWO_DIGITS[second % 60]}{_MILLISECONDS[micros // 1000]}"


# 9999-12-31T23:59:59Z, the last moment a datetime holds
_LAST_UNIX_SECOND = 253_402_300_799


def _from_unix(seconds: float, value: object) -> str:
    if seconds != seconds:  # NaN
        raise ValueError(f"{value!r} is not a time")
    if seconds > _LAST_UNIX_SECOND and seconds / 1000 <= _LAST_UNIX_SECOND:
        raise ValueError(_milliseconds(value, seconds))
    try:
        return format_timestamp(datetime.fromtimestamp(seconds, timezone.utc))
    except (OverflowError, OSError, ValueError):  # beyond what a datetime (or time_t) holds
        raise ValueError(f"{value!r} is out of range for a Unix time in seconds") from None


def _milliseconds(value: object, number: float) -> str:
    return (
        f"{value!r} looks like Unix time in milliseconds; cdp reads Unix time in seconds "
        f"({number / 1000:.3f}) or an ISO-8601 date-time"
    )


def new_message_id() -> str:
    return str(uuid.uuid4())


def with_library(context: dict[str, Any] | None) -> dict[str, Any]:
    """The user's context with context.library set to cdpcli's (SPEC: merged into any context)."""
    merged = dict(context or {})
    merged["library"] = LIBRARY
    return merged


def complete_call(call: dict[str, Any]) -> dict[str, Any]:
    """Fill in what every call carries: messageId, timestamp and context.library."""
    call.setdefault("messageId", None)
    if not call["messageId"]:
        call["messageId"] = new_message_id()
    if not call.get("timestamp"):
        call["timestamp"] = now_timestamp()
    call["context"] = with_library(call.get("context"))
    return call


class EndpointError(ValueError):
    """An endpoint cdp will not send to; `str()` quotes it (never its user name or password)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def base_url(endpoint: str | None, region: str) -> str:
    """The API base: an explicit endpoint (a URL with no path means /v1) or the region's.

    The one place that decides what an endpoint may be (flags, environment, the config file and
    `cdp config set endpoint` all come here): an http:// or https:// URL with a host, no user
    name or password, no query or fragment. Raises EndpointError."""
    if not endpoint:
        return BASE_URLS[region]
    url = endpoint.rstrip("/")
    shown = repr(masked_url(url))
    example = "e.g. http://127.0.0.1:8787/v1 or https://cdp.customer.io/v1"
    if not is_text(url):
        raise EndpointError(f"{shown} holds bytes that are not UTF-8 text", example)
    if not url.isprintable() or " " in url:
        raise EndpointError(f"{shown} holds a space or a control character", f"give the URL alone, {example}")
    scheme_end = url.find("://")
    if scheme_end < 0:
        raise EndpointError(f"{shown} is not a URL", example)
    scheme = url[:scheme_end].lower()
    if scheme not in ("http", "https"):
        raise EndpointError(f"{shown}: cdp sends over http:// or https:// only, not {scheme}://", example)
    from urllib.parse import urlsplit  # lazy: start-up

    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [IPv6 bracket
        raise EndpointError(f"{shown} is not a valid URL ({exc})", example) from None
    if "@" in parts.netloc:
        # httpx would send the user name and password as Basic auth instead of the API key
        raise EndpointError(
            f"{shown}: an endpoint may not hold a user name or password (user:password@); "
            "cdp authenticates with the API key only and would not send them",
            "remove the user:password@ part; the API key goes in api_key=, CDP_API_KEY or `cdp config set api-key`",
        )
    if not parts.hostname:
        raise EndpointError(f"{shown} has no host", example)
    problem = _host_problem(parts.hostname, bracketed="[" in parts.netloc)
    if problem:
        raise EndpointError(f"{shown}: {problem}", example)
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise EndpointError(f"{shown} has an invalid port (a number from 1 to 65535)", example)
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise EndpointError(
            f"{shown}: a base URL takes no ?query or #fragment (cdp appends /track, /batch, …)", example
        )
    if "/" not in url[scheme_end + 3 :]:
        url += "/v1"
    # schemes are case-insensitive: `HTTPS://` must still get certificate checks (the sender
    # verifies TLS by the lowercase scheme)
    return scheme + url[scheme_end:]


_IPV4_STYLE = re.compile(r"[0-9]+(\.[0-9]+){3}")


def _host_problem(host: str, *, bracketed: bool) -> str | None:
    """What makes a host name one the HTTP stack would choke on (with an error that is not a
    network error) or no resolver could look up; None when it is fine."""
    if bracketed:  # urlsplit has checked it is an IPv6 address
        return None
    if _IPV4_STYLE.fullmatch(host):  # as ipaddress.IPv4Address reads it, without its import (~1.4 ms)
        if all(int(part) <= 255 and (part == "0" or not part.startswith("0")) for part in host.split(".")):
            return None
        return f"{host!r} is not an IPv4 address"
    name = host[:-1] if host.endswith(".") else host
    if not host.isascii():
        try:
            import idna  # lazy: start-up; httpx's own IDNA encoder (a dependency of httpx)

            name = idna.encode(name.lower()).decode("ascii")
        except Exception:  # noqa: BLE001 - idna.IDNAError, UnicodeError: not a host name
            return f"{host!r} is not a valid international host name"
    labels = name.split(".")
    if len(name) > 253 or any(not 0 < len(label) <= 63 for label in labels):
        return f"{host!r} is not a valid host name (empty labels, or over 63 characters in one)"
    for label in labels:
        if label.lower().startswith("xn--"):
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                return f"{host!r} is not a valid host name ({label!r} is not a valid xn-- label)"
    return None


def masked_url(url: str) -> str:
    """The URL with any user:password@ shown as ****@."""
    start = url.find("://") + 3 if "://" in url else 0
    end = len(url)
    for stop in "/?#":
        found = url.find(stop, start)
        if found >= 0:
            end = min(end, found)
    at = url.rfind("@", start, end)
    return url if at < 0 else url[:start] + "****" + url[at:]


def api_key_problem(api_key: str) -> str | None:
    """What makes a key unusable in an HTTP header, or None. Never quotes the key itself."""
    if api_key.isascii() and api_key.isprintable():
        return None
    for position, char in enumerate(api_key, 1):
        if char in "\r\n":
            return f"a line break (CR or LF) at character {position}"
        if "\ud800" <= char <= "\udfff":
            return f"bytes that are not UTF-8 text at character {position}"
        if not char.isascii():
            return f"a non-ASCII character at character {position}"
        if not char.isprintable():
            return f"a control character (U+{ord(char):04X}) at character {position}"
    return None


def secret_forms(api_key: str) -> list[str]:
    """The key as text could carry it: as typed, and in its Basic auth (base64) forms."""
    # as typed, and escaped as JSON and as a Python repr would show it (a key holding `"` or
    # `\\`, echoed inside a server's nested error object, comes back escaped)
    forms = [api_key, json.dumps(api_key)[1:-1], repr(api_key)[1:-1]]
    for raw in (f"{api_key}:", api_key):
        encoded = base64.b64encode(raw.encode("utf-8", "surrogateescape")).decode("ascii")
        forms += [encoded, encoded.rstrip("=")]
    # shorter forms first would leave pieces of longer ones behind
    return sorted({form for form in forms if len(form) >= 6}, key=len, reverse=True)


def auth_header(api_key: str) -> str:
    if REGION_KEY.match(api_key):
        return f"Bearer {api_key}"
    return "Basic " + base64.b64encode(f"{api_key}:".encode()).decode("ascii")


def auth_scheme(api_key: str | None) -> str:
    return "Bearer" if api_key and REGION_KEY.match(api_key) else "Basic"


def key_region(api_key: str | None) -> str | None:
    match = REGION_KEY.match(api_key or "")
    return match.group(2) if match else None


def mask_key(api_key: str | None) -> str:
    """Never the whole key: `****` plus the last 4 characters (only for keys long enough)."""
    if not api_key:
        return ""
    return "****" + (api_key[-4:] if len(api_key) >= 12 else "")


@dataclass
class Request:
    """One POST to the API. The body is built per attempt so sentAt is fresh each time."""

    url: str
    headers: dict[str, str]
    payload: dict[str, Any]  # the body without sentAt
    gzip: bool = False

    def body(self, sent_at: str | None = None) -> dict[str, Any]:
        return {**self.payload, "sentAt": sent_at or now_timestamp()}

    def body_bytes(self, sent_at: str | None = None) -> bytes:
        return dumps(self.body(sent_at)).encode("utf-8")

    def redacted_headers(self) -> dict[str, str]:
        return redacted_headers(self.headers)


def redacted_headers(headers: dict[str, str]) -> dict[str, str]:
    """`headers` as they may be shown: the Authorization header's scheme, not its credentials."""
    shown = dict(headers)
    if "Authorization" in shown:
        shown["Authorization"] = shown["Authorization"].split(" ", 1)[0] + " ****"
    return shown


def build_headers(api_key: str | None, *, strict: bool, gzip: bool) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    # dry-run may have no key; the redacted form shows which scheme would be used
    headers["Authorization"] = auth_header(api_key) if api_key else "Basic "
    if strict:
        headers["X-Strict-Mode"] = "1"
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return headers


def single_request(call: dict[str, Any], base: str, headers: dict[str, str], *, gzip: bool = False) -> Request:
    return Request(f"{base}/{call['type']}", headers, call, gzip=gzip)
