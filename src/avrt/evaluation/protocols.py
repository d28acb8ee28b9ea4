"""Input protocols: how evaluation cuts a benchmark item into frames and audio, per benchmark.

A protocol (`evaluation.protocols.<name>`) overrides keys of the config's `media` block, the
training cut; the keys it leaves out keep `media`'s values, so the `avrt` protocol (no keys) is
the training cut itself. `evaluation.benchmark_protocols` names the protocol of each benchmark for
the evaluated models, `evaluation.teacher_protocols` for the difficulty teachers (Table 8); a
benchmark named in neither takes `avrt`. The schema holds the protocols, their values and why.

Every prediction row and result file names its protocol (`InputProtocol`: name, digest of the
cut, the cut in words), and the tables say which protocol each number came from.
"""

from __future__ import annotations

from avrt.core.config import ConfigError
from avrt.core.media import MediaParams
from avrt.core.rows import InputProtocol

TRAINING_PROTOCOL = "avrt"
MAPS = {False: "benchmark_protocols", True: "teacher_protocols"}


def protocol_name(config: dict, benchmark: str, *, teacher: bool = False) -> str:
    """The protocol the models (or, with `teacher`, the difficulty teachers) answer `benchmark` with."""
    return config["evaluation"][MAPS[teacher]].get(benchmark, TRAINING_PROTOCOL)


def protocol_params(config: dict, name: str) -> MediaParams:
    """The cut of protocol `name`: `media` with the protocol's keys over it."""
    protocols = config["evaluation"]["protocols"]
    if name not in protocols:
        raise ConfigError(f"config key 'evaluation.protocols': no protocol {name!r} (have: {', '.join(protocols)})")
    try:
        return MediaParams.from_config({**config["media"], **protocols[name]})
    except ValueError as err:
        raise ConfigError(f"config key 'evaluation.protocols.{name}': {err}") from None


def input_protocol(name: str, params: MediaParams) -> InputProtocol:
    return InputProtocol(name=name, digest=params.digest(), summary=params.describe())


def resolve(config: dict, benchmark: str, *, teacher: bool = False) -> tuple[InputProtocol, MediaParams]:
    name = protocol_name(config, benchmark, teacher=teacher)
    params = protocol_params(config, name)
    return input_protocol(name, params), params


def check_protocols(config: dict) -> None:
    """Every protocol builds a valid cut and every benchmark names a protocol that exists."""
    for name in config["evaluation"]["protocols"]:
        protocol_params(config, name)
    for teacher, key in MAPS.items():
        for benchmark, name in config["evaluation"][key].items():
            if name not in config["evaluation"]["protocols"]:
                raise ConfigError(f"config key 'evaluation.{key}.{benchmark}': no protocol {name!r} "
                                  f"(have: {', '.join(config['evaluation']['protocols'])})")


def rule_params(config: dict, benchmark: str, *, teacher: bool = False) -> dict:
    """What an evaluation job reads of its protocol (a rule's params): a changed cut re-runs it."""
    protocol, params = resolve(config, benchmark, teacher=teacher)
    return {"name": protocol.name, **params.cut_fields()}
