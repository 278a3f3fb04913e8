"""The command line: the action's inputs as flags, so a CI build can be reproduced locally.

Flags are turned into the INPUT_* variables the runner would set; settings.py then reads them like any run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from regcache import __version__
from regcache.inputs import INPUTS, Input, env_name

# Inputs that take one item per line in a workflow: on the command line, the flag is repeated.
MULTILINE = ("build-args", "labels", "tags", "platforms", "try-branches", "auto-branches")


DESCRIPTION = ("Build a Docker image with buildx, reading and writing BuildKit's registry cache as the kind of "
               "build allows. Inside GitHub Actions the inputs come from INPUT_* variables; here from these flags "
               "(the same names and defaults as action.yml). `python -m regcache prune --help`: the prune action.")


def parser(inputs: Sequence[Input] = INPUTS, prog: str = "python -m regcache",
           description: str = DESCRIPTION) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--version", action="version", version=f"regcache {__version__}")
    for spec in inputs:
        if spec.secret:
            continue
        default = "computed" if spec.default is None else repr(spec.default.replace("\n", ","))
        if spec.name in MULTILINE:
            p.add_argument(f"--{spec.name}", dest=spec.name, metavar="VALUE", action="append",
                           help=f"{spec.help} Repeat the flag for more. [default: {default}]")
        else:
            p.add_argument(f"--{spec.name}", dest=spec.name, metavar="VALUE",
                           help=f"{spec.help} [default: {default}]")
    p.add_argument("--github-token-stdin", action="store_true",
                   help="Read the registry token (input github-token) from stdin, so it is never in argv.")
    p.add_argument("--event-name", help="Simulate GITHUB_EVENT_NAME, e.g. push or pull_request.")
    p.add_argument("--ref", help="Simulate GITHUB_REF, e.g. refs/heads/auto.")
    p.add_argument("--event-path", help="Simulate GITHUB_EVENT_PATH: a webhook payload JSON file.")
    p.add_argument("--repository", help="Simulate GITHUB_REPOSITORY (owner/name).")
    return p


def apply_flags(argv: Sequence[str], env: Mapping[str, str], inputs: Sequence[Input] = INPUTS,
                prog: str = "python -m regcache", description: str = DESCRIPTION) -> dict[str, str]:
    """Parse flags and return the environment the rest of the program reads."""
    args = vars(parser(inputs, prog, description).parse_args(list(argv)))
    result = dict(env)
    for spec in inputs:
        value = args.get(spec.name)
        if value is not None:
            # A repeated flag becomes the multiline form the input has in a workflow.
            result[env_name(spec.name)] = "\n".join(value) if isinstance(value, list) else value
    if args["github_token_stdin"]:
        result[env_name("github-token")] = sys.stdin.readline().strip()
    for flag, var in (("event_name", "GITHUB_EVENT_NAME"), ("ref", "GITHUB_REF"),
                      ("event_path", "GITHUB_EVENT_PATH"), ("repository", "GITHUB_REPOSITORY")):
        if args[flag] is not None:
            result[var] = args[flag]
    return result
