"""Assemble the action image's root file system: only what a run executes, in as few files as it can be.

    python3 rootfs.py DEST

Run in the Dockerfile's `rootfs` stage (Debian with python3 and docker-cli installed, the venv, buildx, src/
and the post launcher in place); the final stage is `FROM scratch` with DEST copied in.

Pulling an image costs per byte and per file (measured on Docker 28's classic store: 150 MB in one file
pulls in 1.0 s, the same in 2,000 files in 1.8 s; bench/image), so pure-Python code goes into zip archives
that Python imports from (zipimport), each module compiled once here:
- /usr/lib/python3X.zip: the standard library, compiled without docstrings and asserts (as `python -OO`
  would: 14 % fewer bytes) and without sources (a traceback through it still names file and line), less
  STDLIB_LEFT_OUT (never imported by a run); on the interpreter's default path.
  Extension modules stay in lib-dynload, less DYNLOAD_LEFT_OUT.
- site-packages/regcache-deps.zip (named by a .pth file): the dependencies that are pure Python, compiled,
  without sources (half the bytes; a traceback still names file and line). Packages with extension modules
  or data files that must be real files (UNZIPPED) stay as they are, and each *.dist-info keeps only what
  importlib.metadata reads.
- /opt/regcache/regcache.zip: regcache itself, with its sources (PYTHONPATH names it).
Then docker and docker-buildx, the post launcher, every shared library the executables and extension modules
load (read from `ldd`, so the image is right on any architecture Debian builds), the dynamic loader, the
usrmerge links (/lib -> usr/lib, ...), /tmp (1777) and an empty /etc and /root. No shell, no package
manager. Symbolic links are kept as links, with what they point to.
"""

from __future__ import annotations

import os
import py_compile
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path

STDLIB = Path(sysconfig.get_path("stdlib"))  # /usr/lib/python3.X
DYNLOAD = STDLIB / "lib-dynload"
STDLIB_ZIP = STDLIB.parent / f"python{sys.version_info.major}{sys.version_info.minor}.zip"
VENV = Path("/opt/regcache/venv")
SITE = next(VENV.glob("lib/python3*/site-packages"))
SRC = Path("/opt/regcache/src")
SRC_ZIP = Path("/opt/regcache/regcache.zip")
DEPS_ZIP = SITE / "regcache-deps.zip"
EXECUTABLES = [Path("/usr/bin/docker"), Path("/usr/libexec/docker/cli-plugins/docker-buildx"),
               Path("/opt/regcache/post")]

# Standard-library packages and modules no run imports (the e2e tier runs the image on every path).
STDLIB_LEFT_OUT = {
    "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "pydoc_data", "venv", "_pyrepl", "curses",
    "dbm", "sqlite3", "lib2to3", "distutils", "unittest", "wsgiref", "xmlrpc", "__phello__",
    "asyncio", "xml",  # only modules no run imports use them (actions_toolkit.io_utils, plistlib)
    "turtle.py", "pydoc.py", "doctest.py", "pdb.py", "tabnanny.py", "this.py", "antigravity.py",
    # mail and FTP clients, archive and debugging tools, and the pure-Python twins of C modules that a
    # run imports only when the C module is missing (_decimal, _datetime, _io are all there)
    "mailbox.py", "imaplib.py", "smtplib.py", "poplib.py", "ftplib.py", "tarfile.py", "pickletools.py",
    "optparse.py", "statistics.py", "_pydecimal.py", "_pydatetime.py", "_pyio.py",
}
# Extension modules for what is left out above, or that load libraries no run needs.
DYNLOAD_LEFT_OUT = {"_sqlite3", "_curses", "_curses_panel", "readline", "_dbm", "_gdbm", "_tkinter",
                    "_asyncio", "pyexpat", "_elementtree"}
DYNLOAD_LEFT_OUT_PREFIXES = ("_test", "xx", "_xx", "_ctypes_test")  # CPython's own test modules
# Dependencies kept as files: extension modules (not importable from a zip) or data read by path (certifi's
# CA bundle, which requests opens by name).
UNZIPPED = {"pydantic_core", "charset_normalizer", "certifi"}
DIST_INFO_KEPT = {"METADATA", "entry_points.txt", "top_level.txt"}  # what importlib.metadata reads


def copy(path: Path, dest: Path) -> None:
    """Copy one file or link (and, for a link, what it points to) to the same place under dest."""
    target = dest / path.relative_to("/")
    if target.exists() or target.is_symlink():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        os.symlink(os.readlink(path), target)
        copy(path.resolve(), dest)
    else:
        shutil.copy2(path, target)


def libraries(elf: Path) -> set[Path]:
    """The shared libraries `elf` loads (its whole closure: ldd resolves it) and the dynamic loader."""
    out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=False).stdout
    if "not a dynamic executable" in out or "statically linked" in out:
        return set()
    found = set()
    for line in out.splitlines():
        if "not found" in line:
            raise SystemExit(f"rootfs: {elf} needs a library that is not installed: {line.strip()}")
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            found.add(Path(match.group(1)))
    return found


def is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def compiled(source: Path, shown_as: str, optimize: int) -> bytes:
    """The module's bytecode as a .pyc, hash-based and unchecked (an image never changes), compiled with
    `shown_as` as its file name (what a traceback prints)."""
    with tempfile.NamedTemporaryFile(suffix=".pyc") as out:
        py_compile.compile(str(source), cfile=out.name, dfile=shown_as, doraise=True, optimize=optimize,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        return Path(out.name).read_bytes()


def write_zip(dest: Path, archive: Path, files: list[tuple[Path, str]], sources: bool, optimize: int = 0) -> int:
    """Zip (path, name in the archive) pairs into dest/archive: each module as name.pyc (zipimport's
    layout, which takes it whatever the optimization level), and its source beside it if `sources`; other
    files as they are. Stored, not deflated: the image layer is compressed."""
    (dest / archive.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest / archive.relative_to("/"), "w", zipfile.ZIP_STORED) as zipped:
        for path, name in sorted(files, key=lambda pair: pair[1]):
            if path.suffix == ".py":
                zipped.writestr(name[:-3] + ".pyc", compiled(path, f"{archive}/{name}", optimize))
                if sources:
                    zipped.write(path, name)
            else:
                zipped.write(path, name)
    return len(files)


def stdlib_files() -> list[tuple[Path, str]]:
    files = []
    for path in STDLIB.rglob("*.py"):
        rel = path.relative_to(STDLIB)
        if rel.parts[0] in STDLIB_LEFT_OUT or rel.parts[0] in {"lib-dynload", "site-packages", "dist-packages"}:
            continue
        if rel.parts[0].startswith("config-3"):
            continue
        files.append((path, rel.as_posix()))
    return files


def deps(dest: Path) -> list[tuple[Path, str]]:
    """The venv's site-packages: what goes into the zip is returned; the rest is copied to dest."""
    zipped = []
    for entry in SITE.iterdir():
        name = entry.name
        if name in {"__pycache__", "tests"} or name.endswith(".pth"):
            continue  # "tests": a dependency's own tests, installed at the top level
        if name.endswith(".dist-info"):
            for kept in DIST_INFO_KEPT & {p.name for p in entry.iterdir()}:
                copy(entry / kept, dest)
        elif name.split(".")[0] in UNZIPPED:  # with the bytecode the venv stage compiled
            for path in entry.rglob("*"):
                if path.is_file() and path.suffix != ".pyi":
                    copy(path, dest)
        elif entry.is_dir():
            zipped += [(path, path.relative_to(SITE).as_posix()) for path in entry.rglob("*")
                       if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyi", ".pyc"}]
        elif entry.suffix == ".py":
            zipped.append((entry, name))
    return zipped


def main(dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for merged in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # usrmerge: /lib -> usr/lib, ...
        if Path("/", merged).is_symlink():
            link = os.readlink(Path("/", merged))
            (dest / merged).parent.joinpath(link).mkdir(parents=True, exist_ok=True)
            os.symlink(link, dest / merged)
    interpreter = Path(sys.executable).resolve()  # /usr/bin/python3.X
    elves = [interpreter, *EXECUTABLES]
    for path in [Path("/usr/bin/python3"), *EXECUTABLES, *sorted((VENV / "bin").iterdir()), VENV / "pyvenv.cfg"]:
        copy(path, dest)
    for path in sorted(DYNLOAD.iterdir()):
        module = path.name.split(".")[0]
        if module not in DYNLOAD_LEFT_OUT and not module.startswith(DYNLOAD_LEFT_OUT_PREFIXES):
            copy(path, dest)
            elves.append(path)
    counts = {
        "standard library": write_zip(dest, STDLIB_ZIP, stdlib_files(), sources=False, optimize=2),
        "dependencies": write_zip(dest, DEPS_ZIP, deps(dest), sources=False),
        "regcache": write_zip(dest, SRC_ZIP, [(p, p.relative_to(SRC).as_posix()) for p in SRC.rglob("*.py")],
                              sources=True),
    }
    (dest / SITE.relative_to("/") / "regcache-deps.pth").write_text(DEPS_ZIP.name + "\n")
    elves += sorted(SITE.rglob("*.so"))
    needed: set[Path] = set()
    for elf in elves:
        if elf.is_file() and is_elf(elf):
            needed |= libraries(elf)
    for library in sorted(needed):
        copy(library, dest)
    (dest / "tmp").mkdir(mode=0o1777)
    (dest / "tmp").chmod(0o1777)
    for empty in ("etc", "root"):
        (dest / empty).mkdir(exist_ok=True)
    files = sum(1 for path in dest.rglob("*") if not path.is_dir() or path.is_symlink())
    print(f"rootfs: {files} files and links; zipped modules: "
          + ", ".join(f"{name} {count}" for name, count in counts.items())
          + f"; {len(needed)} shared libraries")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
