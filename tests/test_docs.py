"""What README.md, the Makefile, the config comments and envs/*.yaml say, held to what the code does.

Cheap checks only: file contents, `make -n`, `snakemake -n` of the two demos, the full-scale dry
run on stubs (seconds), and the generation cache with a fake backend.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO, copy_workflow, run_snakemake, workflow_env

README = REPO / "README.md"
VENV = BIN.parent
# make must not (re)install the venv: `setup` depends on it, and it may be older than pyproject.toml
MAKE = ["make", "--no-print-directory", f"VENV={VENV}", "-o", f"{VENV}/.installed"]


def top_level_make_env() -> dict[str, str]:
    """The environment of a make started by hand: under `make test` the inner make would inherit
    its parent's level and flags (and print "Entering directory" lines)."""
    return {k: v for k, v in workflow_env().items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}


def readme() -> str:
    return README.read_text()


def section(text: str, heading: str) -> str:
    """The body of a markdown section, up to the next heading of the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\n", text, re.M)
    assert match, f"README has no section {heading!r}"
    level = len(match.group(1))
    end = re.compile(rf"^#{{1,{level}}} ", re.M).search(text, match.end())
    return text[match.end() : end.start() if end else len(text)]


def paragraph(text: str, start: str) -> str:
    """The paragraph of `text` that begins with `start`."""
    i = text.index(start)
    j = text.find("\n\n", i)
    return text[i : j if j >= 0 else len(text)]


def make_n(target: str) -> str:
    proc = subprocess.run([*MAKE, "-n", target], cwd=REPO, capture_output=True, text=True, check=True,
                          env=top_level_make_env())
    return proc.stdout.replace("\\\n", " ")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# ---- 1. where progress goes ------------------------------------------------------------------
def test_readme_names_the_media_progress_file_the_media_stage_writes(tmp_path):
    from avrt.core.media import MediaParams
    from avrt.data.media import prepare_shard

    shard = tmp_path / "data" / "shards" / "000.jsonl"
    shard.parent.mkdir(parents=True)
    shard.write_text("")  # a shard without clips: the stage still lays out its files
    prepare_shard(shard, tmp_path / "media" / "000.jsonl", MediaParams())
    assert (tmp_path / "media" / "000" / "progress.jsonl").is_file()
    assert (tmp_path / "media" / "000" / "params.json").is_file()
    assert not (tmp_path / "media" / ".progress").exists()

    resuming = paragraph(readme(), "Resuming:")
    assert "`media/<shard>/progress.jsonl`" in resuming and "`media/<shard>/params.json`" in resuming
    media_sentence = next(s for s in resuming.split(". ") if "media stage" in s)
    assert ".progress" not in media_sentence


def test_readme_names_the_generation_cache_where_the_driver_keeps_it(tmp_path):
    from avrt.core.resumable import ResumableShard

    out = tmp_path / "traces" / "visual" / "000.jsonl"
    store = ResumableShard(out, {}, key=lambda r: r["k"])
    store.close()
    assert store.progress_path == tmp_path / "traces" / "visual" / ".progress" / "000.jsonl"
    text = readme()
    assert "`<output dir>/.progress/<output file>`" in paragraph(text, "Resuming:")
    assert "`traces/visual/.progress/000.jsonl`" in paragraph(text, "Resuming:")


# ---- 2. which demo runs which rule -----------------------------------------------------------
def dry_run_rules(workdir: Path, command: str) -> set[str]:
    """The rules in the job list of `snakemake -n` with the arguments of a Makefile command."""
    words = shlex.split(command)
    args = words[words.index(next(w for w in words if w.endswith("/snakemake"))) + 1 :]
    out = run_snakemake(workdir, "-n", *args).stdout
    stats = out[out.index("Job stats:") :]
    rules = set()
    for line in stats.splitlines()[3:]:
        if line.startswith("total"):
            break
        rules.add(line.split()[0])
    return rules - {"all"}


def readme_demo_lists() -> dict[str, list[str]]:
    """The rules README's list says each demo runs, and the ones it says no demo runs."""
    text = section(readme(), "What runs")
    body = text[text.index("Which demo runs which rule") :]
    lists = {}
    for key, start in (("demo", "- `make demo` ("), ("demo-sightsound", "- `make demo-sightsound` ("),
                       ("neither", "- Not run by either demo:")):
        item = body[body.index(start) :]
        item = item[: item.find("\n- ", 1) if item.find("\n- ", 1) > 0 else item.find("\n\n")]
        if key == "neither":
            item = item.split("(")[0]  # the reason in parentheses names no rule
        else:
            item = item.split("):", 1)[1]
        lists[key] = re.findall(r"`(\w+)`", item)
    return lists


@pytest.fixture(scope="module")
def demo_rules(tmp_path_factory) -> dict[str, set[str]]:
    workdir = copy_workflow(tmp_path_factory.mktemp("docs_demos"))
    rules = {target: dry_run_rules(workdir, make_n(target)) for target in ("demo", "demo-sightsound")}
    listed = run_snakemake(workdir, "--list-rules", "--configfile", "config/demo.yaml").stdout.split()
    rules["all"] = set(listed) - {"all"}
    return rules


def test_the_two_demos_run_every_rule_but_those_the_readme_names(demo_rules):
    lists = readme_demo_lists()
    assert set(lists["demo"]) == demo_rules["demo"], "README's list for `make demo` is not its DAG"
    assert set(lists["demo-sightsound"]) == demo_rules["demo-sightsound"], \
        "README's list for `make demo-sightsound` is not its DAG"
    neither = set(lists["neither"])
    assert neither == {"gpu_smoke"}  # it needs GPUs
    assert demo_rules["demo"] | demo_rules["demo-sightsound"] | neither == demo_rules["all"]
    assert not neither & (demo_rules["demo"] | demo_rules["demo-sightsound"])


def test_every_rule_is_in_the_readme_table_and_the_quick_start_names_both_demos(demo_rules):
    table = section(readme(), "What runs")
    table = table[: table.index("Which demo runs which rule")]
    assert not {r for r in demo_rules["all"] if f"`{r}`" not in table}, "rules missing from README's table"
    quick = section(readme(), "Quick start")
    assert "make demo " in quick and "make demo-sightsound" in quick
    command = " ".join(make_n("demo-sightsound").split())
    assert "--configfile config/demo.yaml config/recipes/sightsound-r1.yaml" in command


# ---- 3. make dryrun-full on a fresh checkout -------------------------------------------------
def test_make_dryrun_full_writes_stubs_then_dry_runs_the_full_config(tmp_path):
    steps = [line for line in make_n("dryrun-full").splitlines() if line.strip()]
    assert "-m avrt.demo.dry_run" in steps[0] and "config/config.yaml" in steps[0]
    assert "snakemake -n --configfile config/config.yaml" in steps[1] and "overlay.yaml" in steps[1]

    # a fresh checkout: no data/ (no AVQA annotations, clips or benchmark files), no results/
    workdir = copy_workflow(tmp_path)
    shutil.copy2(REPO / "Makefile", workdir / "Makefile")
    assert not (workdir / "data").exists()
    proc = subprocess.run([*MAKE, "dryrun-full"], cwd=workdir, capture_output=True, text=True,
                          env=top_level_make_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    total = int(re.search(r"^total\s+(\d+)$", proc.stdout, re.M).group(1))
    assert total > 4 * 64  # per shard of 64: media, two teachers, merger; then training and evaluation
    assert "results/avrt-3b/" in proc.stdout
    assert (workdir / "results" / "dryrun-stubs" / "overlay.yaml").is_file()


# ---- 4. torch: PyPI's build, and the pins ------------------------------------------------------
def test_torch_pins_agree_and_the_docs_say_pypi_torch_brings_cuda():
    pins = {norm(d.split("==")[0]): d.split("==")[1]
            for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    makefile = (REPO / "Makefile").read_text()
    install = re.search(r"^TORCH \?= torch==([^,\s]+),!=\S+ torchvision==(\S+)$", makefile, re.M)
    assert install.groups() == (pins["torch"], pins["torchvision"])
    assert "pip install --quiet $(TORCH_INDEX) $(TORCH)" in makefile
    assert "CPU only" not in makefile
    assert "CUDA" in makefile.split("PYTHON ?=")[0]
    text = readme()
    assert f"pip install torch=={pins['torch']} torchvision=={pins['torchvision']}" in text
    assert "CUDA libraries" in section(text, "Quick start")


# ---- 5. bench_traces needs a finished demo ---------------------------------------------------
def run_bench_traces(cwd: Path, run: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), str(REPO / "scripts" / "bench" / "bench_traces.py"), "--run", str(run)],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_bench_traces_without_a_finished_demo_names_the_missing_file(tmp_path):
    run = tmp_path / "results" / "demo"
    proc = run_bench_traces(tmp_path, run)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"{run / 'config.yaml'}" in proc.stderr and "make demo" in proc.stderr

    # the run's files but not the tiny models the run config names
    (run / "data" / "shards").mkdir(parents=True)
    (run / "media").mkdir()
    shutil.copy(REPO / "config" / "demo.yaml", run / "config.yaml")
    (run / "data" / "shards" / "000.jsonl").write_text("")
    (run / "media" / "000.jsonl").write_text("")
    proc = run_bench_traces(tmp_path, run)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "results/demo/models/" in proc.stderr and "make demo" in proc.stderr

    doc = (REPO / "scripts" / "bench" / "bench_traces.py").read_text().split('"""')[1]
    assert "make demo" in doc and "finished demo" in doc
    assert "needs a finished demo run" in section(readme(), "Benchmarks")


# ---- 6. config files the docs name -----------------------------------------------------------
CONFIG_PATH = re.compile(r"(?<![\w/.-])config/[\w./-]+\.ya?ml")


def test_every_config_file_the_docs_and_config_comments_name_exists():
    sources = [README, REPO / "config" / "README.md", REPO / "CONTRIBUTING.md", REPO / "Makefile",
               *sorted((REPO / "config").rglob("*.yaml"))]
    named = {(src.relative_to(REPO), m) for src in sources for m in CONFIG_PATH.findall(src.read_text())}
    assert len(named) > 5
    assert not {(str(src), path) for src, path in named if not (REPO / path).is_file()}


def test_the_7b_recipe_the_config_comment_names_is_a_valid_config():
    from avrt.core.config import load_config

    comment = next(line for line in (REPO / "config" / "config.yaml").read_text().splitlines() if "7B student" in line)
    recipe = re.search(r"config/recipes/[\w.-]+\.yaml", comment).group(0)
    config = load_config(REPO / "config" / "config.yaml", REPO / recipe)
    assert config["run"] == "avrt-7b"
    student = config["models"][config["student"]["model"]]
    assert student["checkpoint"] == "Qwen/Qwen2.5-Omni-7B"
    assert student["revision"] == "ae9e1690543ffd5c0221dc27f79834d0294cba00"


# ---- 7. conda environments -------------------------------------------------------------------
def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[norm(name)] = version.strip()
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"]) + [d for extra in project["optional-dependencies"].values() for d in extra]
    return {norm(d.split("==")[0]): d.split("==")[1] for d in deps}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pip's own imports
@pytest.mark.parametrize("env_file", sorted((REPO / "envs").glob("*.yaml")), ids=lambda p: p.name)
def test_env_file_pins_the_locked_versions_and_installs_the_package_from_the_checkout(env_file, tmp_path, monkeypatch):
    env = yaml.safe_load(env_file.read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert sorted(conda) == ["pip", "python=3.11"]
    [pip] = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    lock, project = lock_pins(), pyproject_pins()
    editable = [p for p in pip if p.startswith("-e")]
    assert editable == ["-e ${AVRT_REPO}"]
    for spec in (p for p in pip if not p.startswith("-e")):
        name, version = spec.split("==")
        key = norm(name)
        assert key in lock or key in project, f"{env_file.name}: {name} is pinned in neither the lock nor pyproject"
        if key in lock:
            assert version == lock[key], f"{env_file.name}: {name}=={version}, requirements.lock has {lock[key]}"
        if key in project:
            assert version == project[key], f"{env_file.name}: {name}=={version}, pyproject.toml has {project[key]}"
    # conda hands the pip list to pip as a requirements file, in which pip expands ${VAR}: with
    # AVRT_REPO set as the README says, the editable requirement is this checkout
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    monkeypatch.setenv("AVRT_REPO", str(REPO))
    requirements = tmp_path / "condaenv.requirements.txt"
    requirements.write_text("\n".join(pip) + "\n")
    [checkout] = [r.requirement for r in parse_requirements(str(requirements), session=PipSession()) if r.is_editable]
    assert Path(checkout) == REPO and "avrt-pipeline" in (REPO / "pyproject.toml").read_text()
    assert 'export AVRT_REPO="$PWD"' in readme()


# ---- 8. abbreviations and data sources -------------------------------------------------------
@pytest.mark.parametrize("abbr, meaning", [
    ("AGFV", "audio-grounded fact verification"),
    ("IFE", "instruction format error"),
    ("MFU", "model FLOPs utilization"),
    ("TP", "tensor parallelism"),
])
def test_each_abbreviation_is_spelled_out_at_its_first_use(abbr, meaning):
    text = readme()
    first = re.search(rf"\b{abbr}\b", text)
    assert first, f"README does not use {abbr}"
    around = text[max(0, first.start() - 120) : first.end() + 120].lower()
    assert meaning.lower() in around.replace("\n", " "), f"{abbr} is not spelled out where README first uses it"


def test_readme_says_where_to_get_avqa_and_every_configured_benchmark():
    data = section(readme(), "Data: AVQA and the benchmarks")
    benchmarks = set()
    for path in [REPO / "config" / "config.yaml", *sorted((REPO / "config" / "recipes").glob("*.yaml"))]:
        benchmarks |= set((yaml.safe_load(path.read_text()).get("evaluation") or {}).get("benchmarks") or {})
    assert benchmarks and not {b for b in benchmarks if b not in data}
    for source in ("AlyssaYoung/AVQA", "VGGSound", "liarliar/Daily-Omni", "m-a-p/OmniBench", "lmms-lab/Video-MME",
                   "BrianatCambridge/RivaBench", "ddlBoJack/MMAR", "BoJack/MMAR", "Sakshi113/MMAU",
                   "gamma-lab-umd/MMAU-test-mini", "GeWu-Lab/MUSIC-AVQA", "CVML-TueAI/AVRT-20K"):
        assert source in data


# ---- 9. reruns and caches --------------------------------------------------------------------
def test_fake_backend_cached_outputs_are_reparsed_without_model_calls_and_a_new_seed_resamples(tmp_path):
    from types import SimpleNamespace

    from fake_backends import ScriptedBackend

    from avrt.core.generation import generate

    out = tmp_path / "traces" / "visual" / "000.jsonl"
    items = ["q1", "q2"]

    def run(settings, backend):
        loads = []

        def load():
            loads.append(1)
            return backend

        outputs = generate(items, key=str, request=lambda i: SimpleNamespace(request_id=i), samples=1, cache=out,
                           settings=settings, inputs=[], load_backend=load, chunk_size=8, desc="docs")
        return outputs, len(loads)

    first, loads = run({"sampling": {"seed": 0}}, ScriptedBackend(lambda r, i: "Answer: (A)"))
    assert loads == 1 and first.of("q1")[0].text == "Answer: (A)"
    # a rerun (a parsing fix, --forcerun) gets the same raw outputs back without loading a model
    again, loads = run({"sampling": {"seed": 0}}, ScriptedBackend(lambda r, i: "Answer: (B)"))
    assert loads == 0 and again.stats["model_calls"] == 0 and again.of("q1")[0].text == "Answer: (A)"
    # a new seed draws new samples
    reseeded, loads = run({"sampling": {"seed": 1}}, ScriptedBackend(lambda r, i: "Answer: (C)"))
    assert loads == 1 and reseeded.of("q1")[0].text == "Answer: (C)"
    # so does deleting the stage's .progress/ cache
    shutil.rmtree(out.parent / ".progress")
    fresh, loads = run({"sampling": {"seed": 1}}, ScriptedBackend(lambda r, i: "Answer: (D)"))
    assert loads == 1 and fresh.of("q1")[0].text == "Answer: (D)"

    text = section(readme(), "Reruns and caches")
    assert "re-derives the stage's rows" in text and "without a model call" in text
    assert "`sampling.seed`" in text and ".progress" in text and "--forcerun" in text
