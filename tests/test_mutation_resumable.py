"""Resumable shards (`avrt.core.resumable`): fingerprints, input identity, resume and discard."""

from __future__ import annotations

import json
import logging
import os

from avrt.core.io import file_sha256
from avrt.core.resumable import ResumableShard, fingerprint, inputs_identity


def key(row: dict) -> str:
    return row["sample_id"]


def progress_rows(out) -> list[dict]:
    path = out.parent / ".progress" / out.name
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_fingerprint_is_16_hex_digits_and_ignores_key_order():
    a = fingerprint({"model": "m", "prompt": "p", "sampling": {"t": 0.7, "n": 4}})
    b = fingerprint({"sampling": {"n": 4, "t": 0.7}, "prompt": "p", "model": "m"})
    assert a == b
    assert len(a) == 16 and int(a, 16) >= 0
    assert fingerprint({"model": "m2", "prompt": "p", "sampling": {"t": 0.7, "n": 4}}) != a


def test_fingerprint_takes_paths_as_their_text(tmp_path):
    assert fingerprint({"ckpt": tmp_path / "ckpt"}) == fingerprint({"ckpt": str(tmp_path / "ckpt")})


def test_inputs_identity_hashes_files_lists_directories_and_keeps_names(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text('{"sample_id": "a"}\n')
    ckpt = tmp_path / "ckpt"
    (ckpt / "sub").mkdir(parents=True)
    (ckpt / "b.bin").write_bytes(b"12345")
    (ckpt / "sub" / "a.json").write_text("{}")
    identity = inputs_identity([manifest, None, ckpt, "Qwen/Qwen2.5-Omni-7B"])
    st_b, st_a = os.stat(ckpt / "b.bin"), os.stat(ckpt / "sub" / "a.json")
    assert identity == [
        [str(manifest), file_sha256(manifest)],
        [str(ckpt), sorted([["b.bin", 5, st_b.st_mtime_ns], [os.path.join("sub", "a.json"), 2, st_a.st_mtime_ns]])],
        "Qwen/Qwen2.5-Omni-7B",
    ]


def test_a_retrained_checkpoint_under_the_same_path_changes_the_identity(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"old")
    before = inputs_identity([ckpt])
    (ckpt / "model.safetensors").write_bytes(b"newer")
    assert inputs_identity([ckpt]) != before


def test_rows_are_kept_once_in_order_with_the_fingerprint(tmp_path):
    out = tmp_path / "teacher" / "000.jsonl"
    shard = ResumableShard(out, {"model": "m"}, key)
    assert shard.progress_path == tmp_path / "teacher" / ".progress" / "000.jsonl"
    assert not shard.done("a")
    shard.add([{"sample_id": "b", "text": "1"}, {"sample_id": "a", "text": "2"}])
    shard.add([{"sample_id": "b", "text": "again"}])
    assert shard.done("a") and shard.done("b") and not shard.done("c")
    rows = shard.close()
    assert rows == [{"sample_id": "b", "text": "1", "fingerprint": shard.fp},
                    {"sample_id": "a", "text": "2", "fingerprint": shard.fp}]
    assert progress_rows(out) == rows


def test_resume_keeps_rows_of_the_same_settings_and_drops_a_torn_line(tmp_path, caplog):
    out = tmp_path / "000.jsonl"
    first = ResumableShard(out, {"model": "m"}, key)
    first.add([{"sample_id": "a", "text": "1"}])
    first.close()
    with open(out.parent / ".progress" / out.name, "a") as fh:
        fh.write('{"sample_id": "b", "te')  # killed mid-row
    with caplog.at_level(logging.INFO, logger="avrt.core.resumable"):
        again = ResumableShard(out, {"model": "m"}, key)
    assert [r.getMessage() for r in caplog.records if r.name == "avrt.core.resumable"] == [
        f"{out}: resuming with 1 rows already made"]
    assert again.fp == first.fp
    assert again.done("a") and not again.done("b")
    again.add([{"sample_id": "a", "text": "redo"}, {"sample_id": "b", "text": "2"}])
    assert [r["text"] for r in again.close()] == ["1", "2"]
    assert [r["text"] for r in progress_rows(out)] == ["1", "2"]


def test_rows_of_other_settings_or_inputs_are_discarded(tmp_path, caplog):
    out = tmp_path / "000.jsonl"
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("v1\n")
    shard = ResumableShard(out, {"model": "m"}, key, inputs=[manifest])
    shard.add([{"sample_id": "a"}, {"sample_id": "b"}])
    shard.close()

    with caplog.at_level(logging.INFO, logger="avrt.core.resumable"):
        other = ResumableShard(out, {"model": "m2"}, key, inputs=[manifest])
    assert caplog.messages == [f"{out}: discarding 2 rows made with other settings"]
    assert not other.done("a") and other.close() == []
    assert progress_rows(out) == []

    kept = ResumableShard(out, {"model": "m"}, key, inputs=[manifest])
    kept.add([{"sample_id": "a"}])
    kept.close()
    manifest.write_text("v2\n")
    changed = ResumableShard(out, {"model": "m"}, key, inputs=[manifest])
    assert not changed.done("a")
    changed.close()


def test_a_key_made_twice_in_the_progress_file_keeps_the_first_row(tmp_path):
    out = tmp_path / "000.jsonl"
    fp = ResumableShard(out, {"model": "m"}, key).fp
    progress = out.parent / ".progress" / out.name
    progress.write_text("".join(json.dumps({"sample_id": "a", "text": t, "fingerprint": fp}) + "\n"
                                for t in ("first", "second")))
    shard = ResumableShard(out, {"model": "m"}, key)
    assert shard.close() == [{"sample_id": "a", "text": "first", "fingerprint": fp}]
    assert [r["text"] for r in progress_rows(out)] == ["first"]


def test_the_fingerprint_covers_the_settings_and_the_inputs(tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("v1\n")
    shard = ResumableShard(tmp_path / "000.jsonl", {"model": "m"}, key, inputs=[manifest, None])
    assert shard.fp == fingerprint({"model": "m", "inputs": inputs_identity([manifest])})
    shard.close()


def test_only_the_rows_of_other_settings_are_discarded(tmp_path, caplog):
    out = tmp_path / "000.jsonl"
    fp = ResumableShard(out, {"model": "m"}, key).fp
    other = ResumableShard(out, {"model": "m2"}, key).fp
    progress = out.parent / ".progress" / out.name
    rows = [{"sample_id": "a", "fingerprint": fp}, {"sample_id": "b", "fingerprint": other},
            {"sample_id": "c", "fingerprint": other}, {"sample_id": "d", "fingerprint": fp}]
    progress.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level(logging.INFO, logger="avrt.core.resumable"):
        shard = ResumableShard(out, {"model": "m"}, key)
    assert caplog.messages == [f"{out}: discarding 2 rows made with other settings",
                               f"{out}: resuming with 2 rows already made"]
    assert [r["sample_id"] for r in shard.close()] == ["a", "d"]
