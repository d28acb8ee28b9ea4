"""Validate a layered config (as Snakemake would see it) and print it with defaults filled."""

from __future__ import annotations

import sys

import yaml

from avrt.core.config import ConfigError, load_config


def add_arguments(parser) -> None:
    parser.add_argument("configfiles", nargs="+", help="YAML files, layered left to right")
    parser.add_argument("--quiet", action="store_true", help="only report errors")


def run(args) -> int:
    try:
        config = load_config(*args.configfiles)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        yaml.safe_dump(config, sys.stdout, sort_keys=False)
    return 0
