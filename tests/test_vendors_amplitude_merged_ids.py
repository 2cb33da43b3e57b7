"""The Amplitude S3 export's merged-IDs files (one {scope, merge_time, merge_server_time,
amplitude_id, merged_amplitude_id} a line [https://amplitude.com/docs/data/destinations/amazon-s3,
"Merged Amplitude IDs"; the fact sheet's §2.1]) hold no events: their rows are skipped as
`merged_ids`, counted, not one `missing_event` reject each. They are told by their rows'
shape, whatever the file is named."""

from __future__ import annotations

import json

from cdpcli.importing.vendors import map_record, sniff

ROWS = [
    {
        "scope": 187520,
        "merge_time": 1717243512345,
        "merge_server_time": 1717243513000,
        "amplitude_id": 90123456789,
        "merged_amplitude_id": 90123456001,
    },
    {
        "scope": 187520,
        "merge_time": 1717243600000,
        "merge_server_time": 1717243600120,
        "amplitude_id": 90123456790,
        "merged_amplitude_id": 90123456002,
    },
]


def test_merged_id_rows_are_skipped_with_their_reason() -> None:
    for row in ROWS:
        assert map_record("amplitude", row).skip == "merged_ids"
    assert sniff([json.dumps(row).encode() for row in ROWS]) == "amplitude"  # without --from: named


def test_a_merged_ids_file_imports_as_skips(send, receiver, tmp_path) -> None:
    (tmp_path / "merged-ids.json").write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    run = send("import", "--from", "amplitude", "merged-ids.json", "--json")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["skipped_reasons"] == {"merged_ids": 2} and result["invalid"] == 0
    assert receiver.calls == []
