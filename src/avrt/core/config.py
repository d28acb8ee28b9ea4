"""Load, layer, default-fill and validate pipeline configs against the JSON schema.

The schema (`avrt/core/schema/config.schema.yaml`, package data) is the single source of
defaults and descriptions; Snakemake rules, the CLI and the tests all validate through `validate_config`.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config key is unknown, missing or has a wrong value; the message names the key."""


def load_yaml(path: str | Path) -> dict:
    """A YAML mapping; a syntax error names the file, line and column."""
    with open(path, encoding="utf-8") as fh:
        try:
            data = yaml.safe_load(fh) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            raise ConfigError(f"{where}: not valid YAML: {getattr(err, 'problem', None) or err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def deep_merge(base: dict, override: dict) -> dict:
    """Merge `override` into a copy of `base`; mappings merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_schema() -> dict:
    return load_yaml(SCHEMA_PATH)


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref:
        node: Any = root
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _object_branch(schema: dict, root: dict) -> dict | None:
    """The schema that describes a mapping value (following $ref and anyOf/oneOf)."""
    schema = _resolve(schema, root)
    if "properties" in schema or "additionalProperties" in schema:
        return schema
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        branch = _resolve(branch, root)
        if branch.get("type") == "object":
            return branch
    return None


# A number as people write it, which YAML 1.1 (PyYAML, and Snakemake's --configfile loader) reads
# as a string when its mantissa has no dot: `2e-6`, `1E5`.
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _types(schema: dict, root: dict) -> set[str]:
    """The JSON types a schema node admits, over its anyOf/oneOf branches."""
    schema = _resolve(schema, root)
    declared = schema.get("type", [])
    types = {declared} if isinstance(declared, str) else set(declared)
    for branch in schema.get("anyOf", []) + schema.get("oneOf", []):
        types |= _types(branch, root)
    return types


def _coerce_number(value: str, schema: dict, root: dict) -> Any:
    """`value` as a number where the schema wants a number and no string (else unchanged)."""
    types, text = _types(schema, root), value.strip()
    if "string" in types or not types & {"number", "integer"} or not _NUMBER.fullmatch(text):
        return value
    number = int(text) if text.lstrip("+-").isdigit() else float(text)
    if "number" not in types and isinstance(number, float) and number.is_integer():
        return int(number)  # `1e3` where an integer is wanted
    return number


def _fill_defaults(value: Any, schema: dict, root: dict) -> Any:
    schema = _resolve(schema, root)
    if isinstance(value, str):
        return _coerce_number(value, schema, root)
    if isinstance(value, dict):
        obj = _object_branch(schema, root)
        if obj is None:
            return value
        props = obj.get("properties", {})
        for key, sub in props.items():
            sub_r = _resolve(sub, root)
            if key not in value and "default" in sub_r:
                value[key] = copy.deepcopy(sub_r["default"])
            if key in value:
                value[key] = _fill_defaults(value[key], sub_r, root)
        extra = obj.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value.keys() - props.keys():
                value[key] = _fill_defaults(value[key], extra, root)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_fill_defaults(v, schema["items"], root) for v in value]
    return value


def _describe(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(known))
        where = f" under '{path}'" if error.absolute_path else ""
        hint = f" (known keys: {', '.join(known)})" if known else ""
        return f"unknown config key{'s' if len(extra) > 1 else ''} {', '.join(repr(e) for e in extra)}{where}{hint}"
    if error.validator == "required":
        return f"config key '{path}': {error.message}"
    return f"config key '{path}': {error.message}"


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For anyOf (e.g. null-or-object), the error from the branch the value was meant for."""
    if not error.context:
        return error
    meant = [e for e in error.context if e.validator != "type"] or list(error.context)
    return _leaf(max(meant, key=lambda e: len(e.absolute_path)))


def _drop_null_tags(config: dict) -> dict:
    """Without the `evaluation.models` tags set to null: config layers merge that mapping key by key,
    so null is how an overlay removes a tag of the file below it (a recipe without the sft row)."""
    evaluation = config.get("evaluation")
    if isinstance(evaluation, dict) and isinstance(evaluation.get("models"), dict):
        evaluation["models"] = {tag: entry for tag, entry in evaluation["models"].items() if entry is not None}
    return config


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Return a default-filled copy of `config`; raise ConfigError naming the offending key.

    A string that spells a number (`2e-6`, which YAML 1.1 reads as a string) becomes that number
    wherever the schema wants a number, whichever loader read the file."""
    root = schema or load_schema()
    filled = _fill_defaults(_drop_null_tags(copy.deepcopy(config)), root, root)
    validator = jsonschema.Draft202012Validator(root)
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        # anyOf failures hide the useful message one level down.
        messages = [_describe(_leaf(err)) for err in errors]
        raise ConfigError("invalid config:\n  " + "\n  ".join(dict.fromkeys(messages)))
    _check_references(filled)
    return filled


_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def check_remote_code(key: str, spec: dict) -> None:
    """Remote code runs only at a pinned commit: a hub checkpoint with `trust_remote_code` needs a
    40-hex `revision`, else the code that runs is whatever the hub's branch holds that day."""
    if not spec.get("trust_remote_code") or Path(spec["checkpoint"]).expanduser().is_dir():
        return
    if not _COMMIT.match(spec.get("revision") or ""):
        raise ConfigError(
            f"config key '{key}.revision': trust_remote_code runs the checkpoint's own code, so pin the commit "
            f"it runs at (a 40-hex hub commit, got {spec.get('revision')!r})"
        )


def _check_prompts(config: dict) -> None:
    from avrt.core.prompts import known_prompt_ids

    known = known_prompt_ids()
    keys = [(f"teachers[{i}].prompt", t["prompt"]) for i, t in enumerate(config.get("teachers", []))]
    keys += [(f"{block}.{key}", config[block][key]) for block, key in
             (("merger", "prompt"), ("sightsound", "checker_prompt")) if key in config.get(block, {})]
    for key, prompt_id in keys:
        if prompt_id not in known:
            raise ConfigError(f"config key '{key}': no prompt {prompt_id!r} (known: {', '.join(known)})")


def _check_references(config: dict) -> None:
    """Cross-key checks the JSON schema cannot express."""
    if config.get("upstream_run") is not None and config.get("upstream_run") == config.get("run"):
        raise ConfigError(f"config key 'upstream_run': names this run itself ({config['run']!r}); name the run "
                          "whose results this one reuses, or null")
    for i, row in enumerate((config.get("compare") or {}).get("rows", [])):
        if row.startswith("{upstream_run}") and not config.get("upstream_run"):
            raise ConfigError(f"config key 'compare.rows[{i}]': {row!r} names the upstream run, but upstream_run is null")
    models = config.get("models", {})
    for name, spec in models.items():
        check_remote_code(f"models.{name}", spec)
    refs = [(f"teachers[{i}].model", t["model"]) for i, t in enumerate(config.get("teachers", []))]
    if config.get("sightsound", {}).get("enabled"):
        refs.append(("sightsound.checker", config["sightsound"]["checker"]))
        teacher = config["sightsound"]["teacher"]
        if teacher not in [t["name"] for t in config.get("teachers", [])]:
            raise ConfigError(f"config key 'sightsound.teacher': no teacher named '{teacher}' in 'teachers'")
    elif config.get("teachers"):
        source = config.get("filter", {}).get("source", "merged")
        if source == "merged":
            refs.append(("merger.model", config["merger"]["model"]))
        elif source not in [t["name"] for t in config["teachers"]]:
            raise ConfigError(f"config key 'filter.source': no teacher named '{source}' in 'teachers' "
                              "('merged' for the merger's traces)")
        elif config["filter"]["mode"] == "merger_correct":
            raise ConfigError(f"config key 'filter.mode': merger_correct needs the merger's traces, but "
                              f"filter.source is the teacher '{source}'")
    refs += [(f"evaluation.models.{tag}.model", m["model"])
             for tag, m in config.get("evaluation", {}).get("models", {}).items()]
    if config.get("judge"):
        refs.append(("judge.model", config["judge"]["model"]))
    names = [t["name"] for t in config.get("teachers", [])]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"config key 'teachers': duplicate teacher names {dupes}")
    for key, name in refs:
        if name not in models:
            raise ConfigError(
                f"config key '{key}': model '{name}' is not defined under 'models' "
                f"(defined: {', '.join(sorted(models)) or 'none'})"
            )
    difficulty = config.get("evaluation", {}).get("difficulty")
    if difficulty:
        modality = {t["name"]: t["modality"] for t in config.get("teachers", [])}
        for name in difficulty["teachers"]:
            if modality.get(name) not in ("frames", "audio"):
                raise ConfigError(f"config key 'evaluation.difficulty.teachers': '{name}' is no frames or audio "
                                  f"teacher in 'teachers' (have: {modality or 'none'})")
        if "teachers" in config["evaluation"].get("models", {}):
            raise ConfigError("config key 'evaluation.models': the tag 'teachers' is taken by the difficulty teachers")
    _check_prompts(config)


def load_config(*paths: str | Path, overrides: dict | None = None) -> dict:
    """Layer YAML files left to right (as `snakemake --configfile a b` does) and validate."""
    merged: dict = {}
    for path in paths:
        merged = deep_merge(merged, load_yaml(path))
    if overrides:
        merged = deep_merge(merged, overrides)
    return validate_config(merged)


def audio_text_questions(config: dict) -> bool:
    """Whether the student reads questions in the audio-text variant (SightSound-R1's audio student:
    `sightsound.enabled` and `sightsound.audio_text_variant`)."""
    return bool(config["sightsound"]["enabled"] and config["sightsound"]["audio_text_variant"])


def teacher_entry(config: dict, name: str) -> dict:
    """The `teachers` entry named `name`; ConfigError naming the ones there are."""
    teachers = {t["name"]: t for t in config["teachers"]}
    if name not in teachers:
        raise ConfigError(f"config key 'teachers': no teacher named {name!r} (have: {', '.join(teachers) or 'none'})")
    return teachers[name]


def stage_config(block: str, values: dict) -> dict:
    """One config block (`sft`, `student`) with the schema's defaults filled in and validated."""
    schema = load_schema()
    sub = {"$defs": schema.get("$defs", {}), **schema["properties"][block]}
    try:
        return validate_config(dict(values), schema=sub)
    except ConfigError as err:
        raise ConfigError(f"config block '{block}': {err}") from None


def add_config_argument(parser) -> None:
    """`--config FILE [FILE ...]`: the run's config, layered left to right and validated."""
    parser.add_argument("--config", nargs="+", required=True, metavar="YAML", type=Path,
                        help="config files layered left to right (the workflow passes results/<run>/config.yaml)")


def write_run_config(config: dict, path: str | Path) -> Path:
    """Write a validated config for the stages to read; an identical file is left untouched, so
    the many processes that parse the workflow (one per Slurm job) never race on its content."""
    from avrt.core.io import atomic_path

    path = Path(path)
    plain = json.loads(json.dumps(config))  # a JSON config file reaches Snakemake as OrderedDicts
    text = yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return path
