"""Integration tier: the real Docker engine, real BuildKit and real registries on 127.0.0.1.

The fixtures (engine, registry, docker_config) are in tests/conftest.py, shared with the e2e tier.
"""

from tests.conftest import PASSWORD, USER

__all__ = ["PASSWORD", "USER"]
