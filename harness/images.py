"""Build contexts that need nothing from Docker Hub."""

from __future__ import annotations

import shutil
from pathlib import Path

BUSYBOX = Path("/bin/busybox")

BUSYBOX_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def _is_static_elf(path: Path) -> bool:
    """True for an ELF file without a PT_INTERP program header (i.e. statically linked)."""
    import struct

    with open(path, "rb") as f:
        ident = f.read(16)
        if ident[:4] != b"\x7fELF":
            return False
        is64 = ident[4] == 2
        endian = "<" if ident[5] == 1 else ">"
        if is64:
            f.seek(0x20)
            (phoff,) = struct.unpack(endian + "Q", f.read(8))
            f.seek(0x36)
            phentsize, phnum = struct.unpack(endian + "HH", f.read(4))
        else:
            f.seek(0x1C)
            (phoff,) = struct.unpack(endian + "I", f.read(4))
            f.seek(0x2A)
            phentsize, phnum = struct.unpack(endian + "HH", f.read(4))
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            (p_type,) = struct.unpack(endian + "I", f.read(4))
            if p_type == 3:  # PT_INTERP
                return False
    return True


def busybox_context(dest: Path) -> Path:
    """Copy the host's static busybox into ``dest`` and return ``dest``.

    With it, a Dockerfile such as :data:`BUSYBOX_DOCKERFILE` (``FROM scratch``, ``COPY busybox
    /bin/busybox``, ``RUN ["/bin/busybox","--install","-s","/bin"]``) builds offline.  The Dockerfile itself
    is not written: callers add their own.
    """
    src = BUSYBOX.resolve() if BUSYBOX.exists() else BUSYBOX
    hint = "apt-get install busybox-static (or run scripts/setup-engine.sh)"
    if not src.is_file():
        raise RuntimeError(f"{BUSYBOX} is missing: {hint}")
    try:
        static = _is_static_elf(src)
    except (OSError, ValueError) as e:  # struct.error is a ValueError
        raise RuntimeError(f"cannot read {BUSYBOX} ({e}): {hint}") from e
    if not static:
        raise RuntimeError(f"{BUSYBOX} is dynamically linked and will not run in FROM scratch: {hint}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest / "busybox")
    (dest / "busybox").chmod(0o755)
    return dest


def own_layers(context: Path, salt: str) -> Path:
    """Make every layer a build of ``context`` produces its own: bytes appended to its static busybox
    (which still runs) change the first layer, and so every layer after it.

    A test that needs a complete cold mode=max export needs this on Debian's BuildKit 0.13 (dockerd 26):
    when a layer of the build is also held by another image or build record on this shared engine, that
    BuildKit sometimes leaves it out of the exported cache, and regcache's write check then rightly reports
    the cache as incomplete (cache-write: false). ENVIRONMENT.md 5b has the details.
    """
    with open(context / "busybox", "ab") as busybox:
        busybox.write(f"\0regcache-{salt}\n".encode())
    return context
