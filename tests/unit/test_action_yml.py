from pathlib import Path

import yaml

from regcache.build_kind import BuildKind
from regcache.cache_plan import CachePlan
from regcache.inputs import INPUTS
from regcache.report import Outcome

ACTION = yaml.safe_load((Path(__file__).parents[2] / "action.yml").read_text())
GITHUB_DEFAULTS = {"registry-username": "${{ github.actor }}", "github-token": "${{ github.token }}"}


def test_inputs_and_defaults_match_the_program():
    assert list(ACTION["inputs"]) == [i.name for i in INPUTS]
    for spec in INPUTS:
        declared = ACTION["inputs"][spec.name].get("default")
        expected = GITHUB_DEFAULTS.get(spec.name, spec.default)
        assert (declared.rstrip("\n") if declared is not None else None) == expected, spec.name


def test_outputs_match_what_the_program_writes():
    outcome = Outcome(kind=BuildKind("other", ""), plan=CachePlan(False, False, ""), cache_key="", cache_ref="")
    assert list(ACTION["outputs"]) == list(outcome.outputs())


def test_runs_as_a_docker_action_with_a_post_step_that_always_runs():
    assert ACTION["runs"] == {"using": "docker", "image": "Dockerfile", "post-entrypoint": "/opt/regcache/post",
                              "post-if": "always()"}
    dockerfile = (Path(__file__).parents[2] / "Dockerfile").read_text()
    assert "> /opt/regcache/post && chmod 755 /opt/regcache/post" in dockerfile


PRUNE = yaml.safe_load((Path(__file__).parents[2] / "prune" / "action.yml").read_text())


def test_the_prune_action_has_the_prune_inputs_and_runs_the_same_image():
    from regcache.inputs import PRUNE_INPUTS

    assert list(PRUNE["inputs"]) == [i.name for i in PRUNE_INPUTS]
    for spec in PRUNE_INPUTS:
        assert PRUNE["inputs"][spec.name].get("default") == GITHUB_DEFAULTS.get(spec.name, spec.default), spec.name
    assert list(PRUNE["outputs"]) == ["deleted", "would-delete", "kept", "freed-bytes"]
    assert PRUNE["runs"] == {"using": "docker", "image": "../Dockerfile", "args": ["prune"]}
