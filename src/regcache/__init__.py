"""regcache: build Docker images with buildx and keep every layer in a registry cache."""

__version__ = "0.1.0"
