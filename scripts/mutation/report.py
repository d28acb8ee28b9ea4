"""Per-module mutation score of the last `mutmut run` (run from the repository root).

Reads mutmut's result files (mutants/**/*.py.meta) and the reviewed list of equivalent mutants
(scripts/mutation/equivalent.txt: one `mutant-name  reason` a line, `#` starts a comment), and
prints a table: mutants, killed (timeouts count as killed), survived, no tests (no selected test
runs the function), not checked, equivalent, and score = killed / (mutants - equivalent).

    python scripts/mutation/report.py [--survivors] [--min-score 90]

--survivors lists the survivors not marked equivalent; --min-score exits 1 when the total score
is below it. A name in equivalent.txt that is not a surviving mutant is reported as stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

KILLED = {"killed", "timeout", "caught by type check", "segfault"}
EQUIVALENT_FILE = Path(__file__).with_name("equivalent.txt")
# mutmut's names: <module>.x_<function>__mutmut_<n> or <module>.xǁ<Class>ǁ<method>__mutmut_<n>
NAME = re.compile(r"^(?P<module>.+?)\.x(?:_|ǁ).*__mutmut_\d+$")


def status_of(exit_code: int | None) -> str:
    from mutmut.stats import status_by_exit_code  # mutmut's own mapping of exit codes

    return status_by_exit_code[exit_code]


def read_results(root: Path) -> dict[str, str]:
    results = {}
    for meta in sorted((root / "mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            results[name] = status_of(code)
    return results


def read_equivalent(path: Path) -> dict[str, str]:
    equivalent = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name, _, reason = line.partition(" ")
                equivalent[name] = reason.strip()
    return equivalent


def configured_modules(root: Path) -> list[str]:
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]
    modules = []
    for pattern in conf.get("only_mutate", []):
        path = Path(pattern)
        for source in conf.get("source_paths", ["src"]):
            if path.is_relative_to(source):
                path = path.relative_to(source)
        modules.append(".".join(path.with_suffix("").parts))
    return modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--survivors", action="store_true", help="list survivors not marked equivalent")
    parser.add_argument("--min-score", type=float, default=None, help="exit 1 when the total score is below (%%)")
    args = parser.parse_args(argv)

    results = read_results(args.root)
    if not results:
        print("no mutmut results under mutants/: run `mutmut run` first", file=sys.stderr)
        return 2
    equivalent = read_equivalent(EQUIVALENT_FILE)
    stale = sorted(n for n in equivalent if results.get(n) not in ("survived", "not checked"))

    by_module: dict[str, Counter] = defaultdict(Counter)
    open_survivors = []
    for name, status in results.items():
        module = NAME.match(name)["module"]
        counts = by_module[module]
        counts["mutants"] += 1
        if status in KILLED:
            counts["killed"] += 1
        elif status == "survived" and name in equivalent:
            counts["equivalent"] += 1
        elif status == "survived":
            counts["survived"] += 1
            open_survivors.append(name)
        elif status == "not checked":
            counts["not checked"] += 1
        else:
            counts["no tests"] += 1

    order = configured_modules(args.root)
    modules = sorted(by_module, key=lambda m: (order.index(m) if m in order else len(order), m))
    columns = ["mutants", "killed", "survived", "no tests", "not checked", "equivalent"]
    header = f"| {'module':<28} | " + " | ".join(columns) + " | score |"
    print(header)
    print("|" + "|".join("-" * len(cell) for cell in header.strip("|").split("|")) + "|")
    total = Counter()

    def row(label: str, counts: Counter) -> str:
        checked = counts["mutants"] - counts["not checked"] - counts["equivalent"]
        score = f"{100 * counts['killed'] / checked:5.1f}%" if checked else "    -"
        cells = " | ".join(f"{counts[c]:>{len(c)}}" for c in columns)
        return f"| {label:<28} | {cells} | {score} |"

    for module in modules:
        total.update(by_module[module])
        print(row(module, by_module[module]))
    print(row("total", total))
    if stale:
        print(f"\nstale entries in {EQUIVALENT_FILE.name} (not surviving now): {', '.join(stale)}")
    if args.survivors and open_survivors:
        print("\nsurvivors not marked equivalent (`mutmut show <name>`):")
        for name in sorted(open_survivors):
            print(f"  {name}")
    checked = total["mutants"] - total["not checked"] - total["equivalent"]
    score = 100 * total["killed"] / checked if checked else 0.0
    if args.min_score is not None and score < args.min_score:
        print(f"\nscore {score:.1f}% is below --min-score {args.min_score}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
