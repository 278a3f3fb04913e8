"""Before the build: which of the cache refs exist. A read-only run that finds none says so loudly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from regcache.image_ref import split_ref
from regcache.registry import RegistryClient, RegistryError


@dataclass(frozen=True)
class Probe:
    result: str                 # exact | fallback | miss
    found: tuple[str, ...]      # refs that exist, best first
    tried: tuple[str, ...]
    errors: tuple[str, ...] = ()
    hanging: bool = False       # a registry took the connection and never answered
    digests: tuple[str, ...] = ()  # the manifest digest of each ref found ("" when the registry gave none)

    @property
    def import_refs(self) -> tuple[str, ...]:
        """What --cache-from gets: the refs found; when the registry could not be asked, all of them (BuildKit
        may reach what this process cannot), except from a registry that hangs: BuildKit would wait forever."""
        if self.found or not self.errors or self.hanging:
            return self.found
        return self.tried


def probe(refs: Sequence[str], client_for: Callable[[str], RegistryClient]) -> Probe:
    found, digests, errors, failed_hosts, hanging = [], [], [], set(), False
    for ref in refs:
        host, repository, tag = split_ref(ref)
        if host in failed_hosts:
            continue
        try:
            digest = client_for(host).manifest_digest(repository, tag)
            if digest is not None:
                found.append(ref)
                digests.append(digest)
        except RegistryError as e:
            errors.append(f"{ref}: {e}")
            hanging = hanging or e.timeout
            # An unreachable or refusing registry answers the same for every ref: don't wait on it again.
            failed_hosts.add(host)
    if found and found[0] == refs[0]:
        result = "exact"
    elif found:
        result = "fallback"
    else:
        result = "miss"
    return Probe(result, tuple(found), tuple(refs), tuple(errors), hanging, tuple(digests))


def miss_warning(p: Probe, cache_image: str) -> str:
    tried = ", ".join(p.tried)
    why = f" The registry answered: {'; '.join(p.errors)}." if p.errors else ""
    return (f"no cache found for this build: tried {tried}.{why} Likely causes: the cache was never written "
            f"by a try or auto run for this key or branch; cache-image ({cache_image}) is not where those runs "
            "write; or the package is private and this run's token cannot read it. This build runs cold")
