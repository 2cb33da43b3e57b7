"""Identity stitching: links learned from calls (and vendors' merge records, as their mappings
make them), chains, the SQLite spill, and the property that any order of links and events
gives every linked anonymous call its user and leaves the others anonymous."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from cdpcli.importing.identities import IdentityMap
from cdpcli.importing.vendors import vendor_lines

DATA = Path(__file__).parent / "data" / "vendors"


def line(call: dict) -> bytes:
    return json.dumps(call, separators=(",", ":")).encode()


def test_identify_alias_and_any_call_with_both_ids_link() -> None:
    with IdentityMap() as ids:
        ids.learn_line(line({"type": "identify", "userId": "u1", "anonymousId": "a1"}))
        ids.learn_line(line({"type": "track", "event": "E", "userId": "u2", "anonymousId": "a2"}))
        ids.learn_line(line({"type": "alias", "previousId": "a3", "userId": "u3"}))
        ids.learn_line(line({"type": "track", "event": "E", "anonymousId": "a4"}))  # no link
        assert [ids.resolve(a) for a in ("a1", "a2", "a3", "a4")] == ["u1", "u2", "u3", None]
        assert ids.stats.links == 3


def test_chains_resolve_and_cycles_do_not() -> None:
    with IdentityMap() as ids:
        ids.link("a", "b")
        ids.link("b", "c")
        ids.link("c", "user")
        ids.link("x", "y")
        ids.link("y", "x")
        assert ids.resolve("a") == ids.resolve("b") == "user"
        assert ids.resolve("x") is None


def test_first_link_wins_in_memory_and_on_disk() -> None:
    for memory_links in (100, 1):
        with IdentityMap(memory_links=memory_links) as ids:
            ids.link("a", "u1")
            ids.link("b", "u2")
            ids.link("a", "u9")
            ids.link("c", "u3")
            assert (ids.resolve("a"), ids.resolve("b"), ids.resolve("c")) == ("u1", "u2", "u3")
            assert ids.stats.links == 3


def test_rewrite_keeps_the_anonymous_id_and_counts() -> None:
    with IdentityMap() as ids:
        ids.link("a1", "u1")
        rewritten = ids.rewrite_line(line({"type": "track", "event": "E", "anonymousId": "a1"}))
        assert json.loads(rewritten) == {"type": "track", "event": "E", "anonymousId": "a1", "userId": "u1"}
        kept = line({"type": "track", "event": "E", "anonymousId": "a9"})
        assert ids.rewrite_line(kept) == kept
        known = line({"type": "track", "event": "E", "anonymousId": "a1", "userId": "other"})
        assert ids.rewrite_line(known) == known  # a call with its own user is left as it is
        assert ids.stats.as_dict() == {"links": 1, "rewritten": 1, "unresolved": 1}


def test_the_spill_is_private_and_removed() -> None:
    ids = IdentityMap(memory_links=2)
    for n in range(5):
        ids.link(f"a{n}", f"u{n}")
    assert ids.db is not None and ids.directory is not None
    directory = ids.directory
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(directory, "links.sqlite")).st_mode) == 0o600
    assert [ids.resolve(f"a{n}") for n in range(5)] == [f"u{n}" for n in range(5)]
    ids.close()
    assert not os.path.exists(directory)


def test_vendor_merge_records_link_through_their_mappings() -> None:
    """PostHog's $identify with $anon_distinct_id, Mixpanel rows with $device_id and $user_id,
    Amplitude rows with device_id and user_id: each mapped call carries both ids."""
    expected = {
        # the fixture's $create_alias then links u_8812 to ana@example.com: the chain's end
        "posthog": ("018f9b10-ffee-7c00-9d00-abcdefabcdef", "ana@example.com"),
        "mixpanel": ("18f9c2a1-7d2b-4c1e-9f3a-2b8e1c0d5a11", "u_8812"),
        "amplitude": ("8f1d6c4e-2a0b-4c9e-b7e1-7d3f9a2c6b55", "u_8812"),
    }
    for vendor, (anonymous, user) in expected.items():
        lines = list(vendor_lines(vendor, (DATA / vendor / "input.jsonl").read_bytes().split(b"\n")))
        with IdentityMap() as ids:
            for mapped in lines:
                ids.learn_line(mapped)
            assert ids.resolve(anonymous) == user, vendor
            only_anonymous = [
                m
                for m in lines
                if m.startswith(b"{") and json.loads(m).keys() & {"anonymousId", "userId"} == {"anonymousId"}
            ]
            rewritten = [json.loads(ids.rewrite_line(m)) for m in only_anonymous]
            assert rewritten and all(c["userId"] == user for c in rewritten if c["anonymousId"] == anonymous), vendor


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    users=st.integers(1, 4),
    anonymous=st.integers(1, 12),
    memory_links=st.sampled_from([1, 3, 1000]),
)
def test_any_order_of_links_and_events(data, users: int, anonymous: int, memory_links: int) -> None:
    """Every anonymous call whose id the input links (directly, by alias, or through another
    anonymous id) gets that user; unlinked ones stay anonymous; one call out per call in."""
    owner: dict[str, str | None] = {}
    calls: list[dict] = []
    for n in range(anonymous):
        anon = f"anon-{n}"
        user = data.draw(st.one_of(st.none(), st.integers(0, users - 1).map(lambda u: f"user-{u}")))
        owner[anon] = user
        calls += [{"type": "track", "event": "E", "anonymousId": anon, "properties": {"k": k}} for k in range(2)]
        if user is None:
            continue
        how = data.draw(st.sampled_from(["identify", "alias", "event", "chain"]))
        if how == "identify":
            calls.append({"type": "identify", "userId": user, "anonymousId": anon})
        elif how == "alias":
            calls.append({"type": "alias", "previousId": anon, "userId": user})
        elif how == "event":
            calls.append({"type": "track", "event": "Signed In", "userId": user, "anonymousId": anon})
        else:  # anon → another anonymous id → user
            middle = f"middle-{n}"
            calls.append({"type": "alias", "previousId": anon, "userId": middle})
            calls.append({"type": "identify", "userId": user, "anonymousId": middle})
    order = data.draw(st.permutations(range(len(calls))))
    lines = [line(calls[i]) for i in order]
    with IdentityMap(memory_links=memory_links) as ids:
        for text in lines:
            ids.learn_line(text)
        out = [json.loads(ids.rewrite_line(text)) for text in lines]
    assert len(out) == len(lines)
    for original, sent in zip((calls[i] for i in order), out, strict=True):
        if original["type"] == "track" and "userId" not in original:
            assert sent["anonymousId"] == original["anonymousId"]
            assert sent.get("userId") == owner[original["anonymousId"]]
        else:
            assert sent == original


def test_learn_sources_reads_every_line_through_the_vendor_mapping(tmp_path: Path) -> None:
    """Pass 1 over files, a Mixpanel export mapped as the import maps it; pass 2 rewrites the
    chunk as the reader's convert hook would."""
    import functools

    from cdpcli.importing.identities import learn_sources
    from cdpcli.importing.sources import make_sources
    from cdpcli.importing.vendors import vendor_chunk

    early = tmp_path / "2024-05-31.jsonl"  # anonymous only: linked by a later file
    early.write_bytes(
        b'{"event":"Viewed Pricing","properties":{"time":1717140000,'
        b'"distinct_id":"$device:d-1","$device_id":"d-1","$insert_id":"i-1"}}\n' * 3000
    )
    late = tmp_path / "2024-06-01.jsonl"
    late.write_bytes(
        b'{"event":"Signed Up","properties":{"time":1717243512,"distinct_id":"u-1",'
        b'"$device_id":"d-1","$user_id":"u-1","$insert_id":"i-2"}}\n'
    )
    sources, _ = make_sources([str(early), str(late)])
    convert = functools.partial(vendor_chunk, "mixpanel")
    with IdentityMap() as ids:
        learn_sources(ids, sources, convert)
        assert ids.resolve("d-1") == "u-1"
        first = early.read_bytes().split(b"\n")[0]
        (rewritten,) = ids.rewrite_chunk(convert(first)).split(b"\n")
        assert json.loads(rewritten)["userId"] == "u-1"
        assert ids.stats.as_dict() == {"links": 1, "rewritten": 1, "unresolved": 0}
