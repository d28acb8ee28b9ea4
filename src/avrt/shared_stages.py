"""Which stages a run takes from another run's results instead of making them again.

A recipe (config/recipes/) changes one thing of the run it is layered on; the stages before that
thing are the same in both runs. With `upstream_run: <name>` a run reads those stages' outputs from
results/<name>/ and its own jobs start at the first stage whose settings differ. The stages form
one chain, in pipeline order:

    data     the AVQA manifest, shards and media        reads data, media
    traces   the teachers' traces                       reads teachers, traces.splits, their models
    merged   the merger's traces                        reads merger, its model
    avrt20k  the SFT set, its export and statistics     reads filter, the student's tokenizer
    sft      the SFT checkpoint                         reads sft, student, its model

A stage is shared when its settings are equal in both runs' validated configs and every stage
before it that this run has is shared too; a stage this run does not have (no merger when one
teacher's chains train, no teachers in the RL-only run) is skipped. Shared jobs write under the
upstream run's folder and read the upstream run's config file, exactly as that run's own jobs do,
so whichever run gets there first makes them and the other finds them done.

Comparison is of what each stage reads, conservatively (whole sections, not single keys), less
the keys that only set how fast a model answers (`THROUGHPUT_KEYS`): a key that could change a
stage's output never goes unnoticed, at worst a stage is made again.
"""

from __future__ import annotations

from dataclasses import dataclass

from avrt.models.spec import THROUGHPUT_KEYS

STAGES = ("data", "traces", "merged", "avrt20k", "sft")


@dataclass(frozen=True)
class Sharing:
    """The stages taken from the upstream run, and why the next one is not."""

    upstream: str
    stages: tuple[str, ...]
    stopped_at: str | None = None  # the first stage this run makes itself
    because: str = ""  # the first setting that differs, or why the stage cannot be shared

    def shares(self, stage: str) -> bool:
        return stage in self.stages

    def describe(self) -> str:
        shared = ", ".join(self.stages) or "no stage"
        own = f"; from {self.stopped_at} on it runs its own ({self.because})" if self.stopped_at else ""
        return f"takes {shared} from results/{self.upstream}{own}"


def _spec(config: dict, name: str, without: tuple[str, ...] = ()) -> dict | None:
    spec = config["models"].get(name)
    if spec is None:
        return None
    return {key: value for key, value in spec.items() if key not in THROUGHPUT_KEYS + without}


def _runs_sft(config: dict) -> bool:
    """Whether the run has an SFT job: it has an SFT set and GRPO starts from SFT or an evaluation
    tag loads the SFT checkpoint (the workflow's `trains_sft`)."""
    has_set = bool(config["teachers"]) or config["sft"]["data"]["source"] != "avrt20k"
    evaluated = any(entry["stage"] == "sft" for entry in config["evaluation"]["models"].values())
    return has_set and (config["grpo"]["init"] == "sft" or evaluated)


def stage_settings(config: dict) -> dict[str, dict | None]:
    """Stage -> what its jobs read of a validated config; None for a stage the run does not have."""
    teachers = config["teachers"]
    avrt_set = bool(teachers) and not config["sightsound"]["enabled"]  # SightSound-R1 exports its own set
    merges = avrt_set and config["filter"]["source"] == "merged"
    student = config["student"]["model"]
    student_spec = _spec(config, student) or {}
    return {
        "data": {"data": config["data"], "media": config["media"]},
        "traces": {
            "teachers": teachers,
            "traces.splits": config["traces"]["splits"],
            "models": {t["model"]: _spec(config, t["model"]) for t in teachers},
        }
        if teachers
        else None,
        "merged": {"merger": config["merger"], "model": _spec(config, config["merger"]["model"])} if merges else None,
        "avrt20k": {
            "filter": config["filter"],
            # trace_stats counts the tokens with the student's tokenizer
            "tokenizer": {k: student_spec.get(k) for k in ("processor", "checkpoint", "revision")},
        }
        if avrt_set
        else None,
        "sft": {
            "sft": config["sft"],
            "student": config["student"],
            "model": _spec(config, student, without=("sampling",)),
        }
        if _runs_sft(config)
        else None,
    }


def first_difference(mine, theirs, key: str = "") -> str | None:
    """The dotted key of the first setting that differs between two config values, or None."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for k in sorted(set(mine) | set(theirs), key=str):
            found = first_difference(mine.get(k), theirs.get(k), f"{key}.{k}" if key else str(k))
            if found:
                return found
        return None
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        for i, (a, b) in enumerate(zip(mine, theirs)):
            found = first_difference(a, b, f"{key}[{i}]")
            if found:
                return found
        return None
    return None if mine == theirs else key or "(the whole config)"


def shared_stages(config: dict, upstream_config: dict) -> Sharing:
    """The stages `config`'s run takes from `upstream_config`'s run (both validated run configs)."""
    upstream = upstream_config["run"]
    mine, theirs = stage_settings(config), stage_settings(upstream_config)
    shared: list[str] = []
    for stage in STAGES:
        if mine[stage] is None:
            continue  # this run has no such stage; the stages after it may still be shared
        if theirs[stage] is None:
            return Sharing(upstream, tuple(shared), stage, f"results/{upstream} has no {stage} stage")
        differs = first_difference(mine[stage], theirs[stage])
        if differs:
            return Sharing(upstream, tuple(shared), stage, f"{differs} differs")
        if stage == "sft" and "best_val" in (config["sft"]["select_checkpoint"], upstream_config["sft"]["select_checkpoint"]):
            # the best checkpoint is chosen on each run's own evaluation settings
            return Sharing(upstream, tuple(shared), stage, "sft.select_checkpoint best_val is chosen per run")
        shared.append(stage)
    return Sharing(upstream, tuple(shared))
