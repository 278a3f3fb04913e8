"""Unit tests never start a process: docker or anything else. Real-engine tests live in tests/integration."""

import os
import subprocess

import pytest


@pytest.fixture(autouse=True)
def _forbid_subprocesses(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"unit tests must not start processes: {args[:1]}")

    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(os, "system", forbidden)
    monkeypatch.setattr(os, "execvpe", forbidden)
