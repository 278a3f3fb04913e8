"""What the tests, the benchmark and the demo share to run the action for real, on this machine: a
registry on 127.0.0.1 (registry.py), the action run as a process (action.py) with realistic event payloads
(events.py), act running workflow files (act.py), base images built without Docker Hub (images.py), and
a BuildKit daemon of its own in a network namespace (remote_buildkit.py)."""
