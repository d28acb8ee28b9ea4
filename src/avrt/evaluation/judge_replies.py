"""Reading the trace judge's JSON replies (paper appendix 0.A.1), whatever surrounds them.

Judges wrap their JSON in ```json fences, put prose before or after it, think first, or stop
mid-object. The reader takes the last complete top-level JSON object that has the reply's key
field (`verdict`, `hallucination_source`), leniently (trailing commas, Python literals such as
`True` or single quotes), with keys compared case-insensitively. Nothing here raises on model
output: a reply that cannot be used gets a status saying why and a reason in words.

    no_json        no complete JSON object in the reply (prose only, or cut off mid-object)
    missing_field  an object, but without the key field or a required flag
    bad_value      a key field or flag holding a value outside its set (`"verdict": "GOOD"`)
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

VERDICTS = ("ACCURATE", "MISSING_INFO", "HALLUCINATING")
SOURCES = ("AUDIO_TEACHER", "VISION_TEACHER", "MERGER", "BOTH_TEACHERS")
OK, NO_JSON, MISSING_FIELD, BAD_VALUE = "ok", "no_json", "missing_field", "bad_value"
UNPARSED = (NO_JSON, MISSING_FIELD, BAD_VALUE)

_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_MAX_OBJECT_CHARS = 50_000  # a judge's reply object is short; longer spans are not tried leniently


@dataclass(frozen=True)
class VerdictReply:
    status: str
    reason: str | None
    verdict: str | None = None
    audio_grounded: bool | None = None
    visual_grounded: bool | None = None
    confidence: float | None = None
    explanation: str | None = None


@dataclass(frozen=True)
class SourceReply:
    status: str
    reason: str | None
    source: str | None = None
    confidence: float | None = None
    hallucinated_claims: tuple[str, ...] = ()
    source_per_claim: tuple[str, ...] = ()
    audio_teacher_accurate: bool | None = None
    vision_teacher_accurate: bool | None = None
    merger_faithful: bool | None = None
    explanation: str | None = None


def json_objects(text: str) -> list[dict]:
    """Every top-level `{...}` span of `text` that reads as a JSON object (or a Python dict literal),
    in order, keys lower-cased; objects nested in another are part of it, not listed."""
    objects, i = [], text.find("{")
    while i >= 0:
        end = _object_end(text, i)
        obj = _load_object(text[i:end]) if end is not None else None
        if obj is not None:
            objects.append({str(k).strip().lower(): v for k, v in obj.items()})
            i = text.find("{", end)
        else:  # never closed (a reply cut off, a stray brace) or not an object: look inside it
            i = text.find("{", i + 1)
    return objects


def _object_end(text: str, start: int) -> int | None:
    """The index after the brace closing the one at `start`, skipping braces inside strings."""
    depth, quote, escaped = 0, None, False
    for j in range(start, len(text)):
        c = text[j]
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = None
        elif c in "\"'":
            # an apostrophe inside prose ("man's") opens no string: only one right after a
            # delimiter does, as a Python-literal key or value would
            if c == '"' or text[j - 1] in "{[,: \n\t":
                quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _load_object(span: str) -> dict | None:
    try:
        value = json.loads(span)
    except ValueError:
        value = None
        if len(span) <= _MAX_OBJECT_CHARS:
            fixed = _TRAILING_COMMA.sub(r"\1", span)
            for load in (json.loads, ast.literal_eval):
                try:
                    value = load(fixed)
                    break
                except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                    continue
    return value if isinstance(value, dict) else None


def _reply_object(text: str, key: str) -> tuple[dict | None, str, str | None]:
    """The last object holding `key`, or (None, status, reason)."""
    objects = json_objects(text)
    if not objects:
        return None, NO_JSON, "no complete JSON object in the reply"
    with_key = [o for o in objects if key in o]
    if not with_key:
        return None, MISSING_FIELD, f"no {key!r} field in the reply's JSON (fields: {sorted(objects[-1])})"
    return with_key[-1], OK, None


def _label(value, allowed: tuple[str, ...]) -> str | None:
    """`value` as one of `allowed` (case, spaces and hyphens forgiven), else None."""
    if not isinstance(value, str):
        return None
    label = re.sub(r"[\s\-]+", "_", value.strip()).upper()
    return label if label in allowed else None


def _flag(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    return None


def _confidence(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value) if isinstance(value, str) else None
        except ValueError:
            value = None
    return float(value) if value is not None and 0.0 <= value <= 1.0 else None


def _text(value) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _texts(value) -> tuple[str, ...]:
    """A list field as texts: a list's items, a mapping's `key: value` pairs, one text alone."""
    if value is None:
        return ()
    if isinstance(value, dict):
        return tuple(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_text(v) or "" for v in value)
    return (_text(value),)


def read_verdict(text: str) -> VerdictReply:
    """The individual evaluation's reply: a verdict and both grounding flags are required."""
    obj, status, reason = _reply_object(text, "verdict")
    if obj is None:
        return VerdictReply(status, reason)
    verdict = _label(obj["verdict"], VERDICTS)
    flags = {name: _flag(obj.get(name)) for name in ("audio_grounded", "visual_grounded")}
    read = dict(verdict=verdict, **flags, confidence=_confidence(obj.get("confidence")),
                explanation=_text(obj.get("explanation")))
    if verdict is None:
        return VerdictReply(BAD_VALUE, f"unknown verdict {obj['verdict']!r} (known: {', '.join(VERDICTS)})", **read)
    for name, value in flags.items():
        if name not in obj:
            return VerdictReply(MISSING_FIELD, f"no {name!r} field", **read)
        if value is None:
            return VerdictReply(BAD_VALUE, f"{name} is not a boolean: {obj[name]!r}", **read)
    return VerdictReply(OK, None, **read)


def read_source(text: str) -> SourceReply:
    """The hallucination source analysis' reply (paper Fig. 0.A.5): the source is required."""
    obj, status, reason = _reply_object(text, "hallucination_source")
    if obj is None:
        return SourceReply(status, reason)
    source = _label(obj["hallucination_source"], SOURCES)
    read = dict(
        source=source, confidence=_confidence(obj.get("confidence")),
        hallucinated_claims=_texts(obj.get("hallucinated_claims")), source_per_claim=_texts(obj.get("source_per_claim")),
        audio_teacher_accurate=_flag(obj.get("audio_teacher_accurate")),
        vision_teacher_accurate=_flag(obj.get("vision_teacher_accurate")),
        merger_faithful=_flag(obj.get("merger_faithful")), explanation=_text(obj.get("explanation")),
    )
    if source is None:
        return SourceReply(BAD_VALUE, f"unknown hallucination_source {obj['hallucination_source']!r} "
                                      f"(known: {', '.join(SOURCES)})", **read)
    return SourceReply(OK, None, **read)
