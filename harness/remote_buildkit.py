"""A standalone BuildKit daemon as a separate host: its own network namespace, TCP with mutual TLS.

This is what a scale-out setup looks like to regcache: a `remote` buildx builder whose BuildKit runs on
another machine. Here the other machine is a network namespace this module makes (``rcbk-<hex>``), joined
to the host by a veth pair on a private /30 (10.214.X.Y, checked against every address and route the host
has), with no other route: the daemon can reach the host's veth address and nothing else.

Usage::

    with RemoteBuildkit(forward_ports=[registry.port]) as bk:
        bk.address                       # "tcp://10.214.X.Y:1234"
        bk.create_builder("rb", docker_config)     # a `remote` buildx builder under that DOCKER_CONFIG
        bk.buildctl("prune", "--all")    # talk to the daemon directly
        bk.kill()                        # the daemon dies (SIGKILL), as a crashed build host does
    # stop(): the builders it made, every process in the namespace, the namespace, the veth, the cgroups
    # and the daemon's root (after unmounting anything under it) are gone.

The registry problem. The tests' registry listens on the host's 127.0.0.1:PORT, and regcache names the
cache ``localhost:PORT/…`` both for its own registry client (on the host) and for BuildKit (in the
namespace), where 127.0.0.1 is the namespace's own loopback. So each port in ``forward_ports`` gets a
forwarder: a socket listening on 127.0.0.1:PORT (and [::1]:PORT) *inside* the namespace, whose connections
are relayed to 127.0.0.1:PORT on the host. It lives in this (the test's) process: one short-lived thread
enters the namespace with setns(2) just long enough to create the listening sockets (a socket stays in the
namespace it was made in; setns changes only the calling thread, which then ends), and everything else
(accepting, connecting to the host's registry, copying bytes) runs in ordinary threads in the host's
namespace. Why this and not the alternatives: socat would need a package and two extra processes joined
by a unix socket, each one more thing to leak; DNAT from the namespace to the host's loopback needs
route_localnet and iptables rules on the host's tables, which the machine's engines own. The thread dies
with the test process, so it cannot outlive it.

The daemon runs as ``nsenter --net=/var/run/netns/NAME -- unshare --mount --propagation private --
buildkitd …``: nsenter, not ``ip netns exec`` (which remounts /sys, see shared/ENVIRONMENT.md §7), and a
private mount namespace so the overlay mounts BuildKit makes never appear in the host's mount table: when
its processes die (a SIGKILL included) those mounts go with them. Build containers get a cgroup parent of
their own (``rcbk-<hex>``) that is removed at stop. Traffic stays on this machine: loopback, and the
namespace's address, which this module made.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import fcntl
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILDKIT_PORT = 1234
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
NETNS_DIR = Path("/var/run/netns")
SUBNET_POOL = ipaddress.ip_network("10.214.0.0/16")   # carved into /30s; 10.213/16 is engine 2's
LOCK_FILE = Path("/run/lock/regcache-remote-buildkit.lock")
CLONE_NEWNET = 0x40000000
CHUNK = 64 * 1024


def buildkit_bin_dir() -> Path:
    """Where scripts/buildkit-image.sh keeps buildkitd and buildctl for the pinned BuildKit version."""
    gomod = (REPO / "images" / "buildkit" / "go.mod").read_text()
    match = re.search(r"^require github\.com/moby/buildkit (v[0-9.]+)$", gomod, re.M)
    if not match:
        raise RuntimeError("no github.com/moby/buildkit version in images/buildkit/go.mod")
    return Path(f"/var/lib/regcache-setup/buildkit/{match.group(1)}/bin")


def missing_tools() -> list[str]:
    """What this module needs and the machine lacks (empty: all there)."""
    bin_dir = buildkit_bin_dir()
    lacking = [str(bin_dir / name) for name in ("buildkitd", "buildctl") if not (bin_dir / name).is_file()]
    lacking += [tool for tool in ("ip", "nsenter", "unshare", "runc", "umount") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        lacking.append("root (network namespaces)")
    return lacking


def _run(argv: list[str], *, check: bool = True, timeout: float = 30, env: Mapping[str, str] | None = None,
         ) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc


# -- certificates ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path, server_ip: str) -> Certificates:
    """A CA, a server certificate for ``server_ip`` (an IP SAN) and a client certificate, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "regcache tests"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key, path: Path) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)

    def base(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1)))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = name("regcache test CA")
    ca_cert = (base(ca_name, ca_name, ca_key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA256()))

    def leaf(common: str, usage, sans: list[x509.GeneralName]):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (base(name(common), ca_name, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_key, server_cert = leaf(server_ip, ExtendedKeyUsageOID.SERVER_AUTH,
                                   [x509.IPAddress(ipaddress.ip_address(server_ip))])
    client_key, client_cert = leaf("regcache test client", ExtendedKeyUsageOID.CLIENT_AUTH, [])

    certs = Certificates(directory / "ca.pem", directory / "server-cert.pem", directory / "server-key.pem",
                         directory / "client-cert.pem", directory / "client-key.pem")
    certs.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    certs.client_cert.write_bytes(client_cert.public_bytes(serialization.Encoding.PEM))
    write_key(server_key, certs.server_key)
    write_key(client_key, certs.client_key)
    return certs


# -- the network namespace -------------------------------------------------------------------------------------

def _host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host has an address in or a route to (all routing tables)."""
    nets = []
    for entry in json.loads(_run(["ip", "-4", "-j", "addr"]).stdout or "[]"):
        for addr in entry.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    for route in json.loads(_run(["ip", "-4", "-j", "route", "show", "table", "all"]).stdout or "[]"):
        dst = route.get("dst", "")
        if dst and dst != "default":
            with contextlib.suppress(ValueError):
                nets.append(ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False))
    return nets


def _free_slash30(used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    used = list(used)
    candidates = list(SUBNET_POOL.subnets(new_prefix=30))
    for net in random.sample(candidates, 200):
        if not any(net.overlaps(other) for other in used if other.prefixlen > 0):
            return net
    raise RuntimeError(f"no unused /30 found in {SUBNET_POOL}")


@dataclass
class NetNamespace:
    """A network namespace joined to the host by a veth pair on a /30: host_ip <-> ns_ip."""

    name: str
    host_if: str
    ns_if: str
    network: ipaddress.IPv4Network | None = None

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.name

    @property
    def host_ip(self) -> str:
        assert self.network is not None
        return str(self.network.network_address + 1)

    @property
    def ns_ip(self) -> str:
        assert self.network is not None
        return str(self.network.network_address + 2)

    def inside(self, *argv: str) -> list[str]:
        return ["nsenter", f"--net={self.path}", "--", *argv]

    def create(self) -> None:
        # One creator at a time on this machine, so that two test sessions never pick the same /30.
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        with open(LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.network = _free_slash30(_host_networks())
            _run(["ip", "netns", "add", self.name])
            _run(["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if])
            _run(["ip", "link", "set", self.ns_if, "netns", self.name])
            _run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if])
            _run(["ip", "link", "set", self.host_if, "up"])
        _run(self.inside("ip", "link", "set", "lo", "up"))
        _run(self.inside("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if))
        _run(self.inside("ip", "link", "set", self.ns_if, "up"))

    def pids(self) -> list[int]:
        """Processes whose network namespace is this one (the test process itself never is)."""
        try:
            target = self.path.stat().st_ino
        except OSError:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if (entry / "ns" / "net").stat().st_ino == target:
                        found.append(int(entry.name))
        return found

    def remove(self) -> None:
        _run(["ip", "link", "del", self.host_if], check=False)   # takes its peer with it
        if self.path.exists():
            _run(["ip", "netns", "delete", self.name], check=False)

    def exists(self) -> bool:
        return self.path.exists() or _run(["ip", "link", "show", self.host_if], check=False).returncode == 0


# -- the registry forwarder ------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, nstype: int) -> None:
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def listen_in_netns(netns: Path, family: int, address: tuple) -> socket.socket:
    """A listening TCP socket made inside the network namespace ``netns``, usable from any thread."""
    result: dict[str, object] = {}

    def make() -> None:
        # setns changes the calling thread only, and this thread ends right after: the process's other
        # threads never leave the host's namespace.
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(netns, os.O_RDONLY)
        try:
            _setns(target, CLONE_NEWNET)
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
                sock.listen(64)
                result["sock"] = sock
            finally:
                _setns(home, CLONE_NEWNET)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            result["error"] = e
        finally:
            os.close(home)
            os.close(target)

    thread = threading.Thread(target=make, name="rcbk-setns", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["sock"]  # type: ignore[return-value]


class PortForwarder:
    """127.0.0.1:PORT (and [::1]:PORT) inside a network namespace -> 127.0.0.1:PORT on the host."""

    def __init__(self, netns: Path, port: int, target_port: int | None = None):
        self.netns, self.port, self.target_port = netns, port, target_port or port
        self._listeners: list[socket.socket] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.connections = 0

    def start(self) -> PortForwarder:
        self._listeners.append(listen_in_netns(self.netns, socket.AF_INET, ("127.0.0.1", self.port)))
        # Go resolves localhost to ::1 as well; a refused ::1 falls back to 127.0.0.1, but no need to rely on it.
        with contextlib.suppress(OSError):
            self._listeners.append(listen_in_netns(self.netns, socket.AF_INET6, ("::1", self.port)))
        for listener in self._listeners:
            listener.settimeout(0.5)
            threading.Thread(target=self._accept, args=(listener,), name=f"rcbk-fwd-{self.port}",
                             daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._stopped.is_set():
                    client.close()
                    upstream.close()
                    return
                self._conns.update((client, upstream))
                self.connections += 1
            pair = _Pair(client, upstream, self._forget)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=pair.pump, args=(src, dst), daemon=True).start()

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._conns.discard(sock)

    def stop(self) -> None:
        self._stopped.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.close()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class _Pair:
    """Two sockets relayed both ways; closed when both directions have ended."""

    def __init__(self, a: socket.socket, b: socket.socket, on_close):
        self.a, self.b, self.on_close = a, b, on_close
        self._open = 2
        self._lock = threading.Lock()

    def pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            # One side reset: end both directions now.
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            with self._lock:
                self._open -= 1
                last = self._open == 0
            if last:
                for sock in (self.a, self.b):
                    with contextlib.suppress(OSError):
                        sock.close()
                self.on_close(self.a, self.b)


# -- the daemon ------------------------------------------------------------------------------------------------

def _mounts_under(root: Path) -> list[str]:
    """Mount points in this (the host's) mount namespace at or under root, deepest first."""
    prefix = str(root.resolve())
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def _cgroup_dirs(parent: str) -> list[Path]:
    """The cgroup directories named ``parent`` at the top of each mounted hierarchy (v1 and v2)."""
    base = Path("/sys/fs/cgroup")
    candidates = [base / parent] + [d / parent for d in base.iterdir() if d.is_dir() and not d.is_symlink()]
    return [d for d in dict.fromkeys(candidates) if d.is_dir()]


def _cgroup_pids(parent: str) -> list[int]:
    pids = set()
    for top in _cgroup_dirs(parent):
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                pids.update(int(p) for p in procs.read_text().split())
    pids.discard(os.getpid())
    return sorted(pids)


def _remove_cgroups(parent: str) -> list[str]:
    """rmdir the cgroup trees, children first; returns what could not be removed."""
    left = []
    for top in _cgroup_dirs(parent):
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()
        try:
            top.rmdir()
        except FileNotFoundError:
            pass
        except OSError as e:
            left.append(f"{top}: {e.strerror}")
    return left


def _kill_all(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class RemoteBuildkit:
    """buildkitd (OCI worker, runc) alone in a network namespace, on tcp://NS_IP:1234 with mutual TLS."""

    def __init__(self, forward_ports: Iterable[int] = (), *, debug: bool = False):
        self.id = secrets.token_hex(3)
        self.name = f"rcbk-{self.id}"
        self.netns = NetNamespace(self.name, f"rcbk{self.id}h", f"rcbk{self.id}n")
        self.forward_ports = list(forward_ports)
        self.debug = debug
        self.bin_dir = buildkit_bin_dir()
        # Short, so that unix sockets under it stay within 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir="/tmp"))
        (self.root / "owner").write_text(_owner_stamp(os.getpid()))   # for sweep_stale()
        self.state = self.root / "state"
        self.log_path = self.root / "buildkitd.log"
        self.cgroup_parent = self.name
        self.certs: Certificates | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file = None
        self._forwarders: list[PortForwarder] = []
        self._builders: list[tuple[str, Path]] = []
        self.builders_made: list[tuple[str, Path]] = []   # every builder create_builder made, kept for checks
        self.started_in: float | None = None

    # -- addresses ---------------------------------------------------------------------------------------------
    @property
    def ip(self) -> str:
        return self.netns.ns_ip

    @property
    def address(self) -> str:
        return f"tcp://{self.ip}:{BUILDKIT_PORT}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for buildctl/buildx: no proxy may stand between the client and the namespace."""
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy")}
        no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), self.ip, "localhost", "127.0.0.1"]))
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
        return env

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> RemoteBuildkit:
        lacking = missing_tools()
        if lacking:
            raise RuntimeError(f"cannot run a remote BuildKit here, missing: {', '.join(lacking)} "
                               "(scripts/setup-engine.sh, scripts/buildkit-image.sh)")
        sweep_stale()
        began = time.monotonic()
        try:
            self.netns.create()
            self.certs = make_certificates(self.root / "certs", self.ip)
            for port in self.forward_ports:
                self._forwarders.append(PortForwarder(self.netns.path, port).start())
            self._spawn()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def _spawn(self) -> None:
        assert self.certs is not None
        self.state.mkdir()
        config = self.root / "buildkitd.toml"
        # Nothing from /etc/buildkit; build containers in a cgroup parent of our own, removed at stop.
        config.write_text(f'[worker.oci]\n  defaultCgroupParent = "{self.cgroup_parent}"\n')
        argv = self.netns.inside(
            "unshare", "--mount", "--propagation", "private", "--",
            str(self.bin_dir / "buildkitd"), "--config", str(config), "--root", str(self.state),
            "--addr", self.address,
            "--tlscacert", str(self.certs.ca), "--tlscert", str(self.certs.server_cert),
            "--tlskey", str(self.certs.server_key),
            "--oci-worker=true", "--containerd-worker=false", "--oci-worker-net=host",
            "--otel-socket-path", str(self.root / "otel.sock"),
            *(["--debug"] if self.debug else []))
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and not k.startswith(("BUILDKIT", "DOCKER_"))}
        env["PATH"] = f"{self.bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # nsenter and unshare exec (no fork) without --fork: self.proc.pid is buildkitd's pid.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def buildctl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        assert self.certs is not None
        argv = [str(self.bin_dir / "buildctl"), "--addr", self.address, "--tlscacert", str(self.certs.ca),
                "--tlscert", str(self.certs.client_cert), "--tlskey", str(self.certs.client_key), *args]
        return _run(argv, check=check, timeout=timeout, env=self.client_env())

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer yet"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"buildkitd exited with code {self.proc.returncode}:\n{self.log_tail()}")
            try:
                answer = self.buildctl("debug", "workers", timeout=10, check=False)
            except subprocess.TimeoutExpired:
                last = "buildctl debug workers timed out"
                continue
            if answer.returncode == 0 and len(answer.stdout.strip().splitlines()) >= 2:
                return
            last = (answer.stderr or answer.stdout).strip()[-300:]
            time.sleep(0.2)
        raise RuntimeError(f"buildkitd did not answer on {self.address} within {START_TIMEOUT:.0f}s "
                           f"({last}):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:]) or "(log is empty)"
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """The daemon dies at once (SIGKILL), as when its host crashes; the namespace stays until stop()."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """Remove everything start() made; safe to call more than once and after a failed start."""
        problems = []
        for name, config in reversed(self._builders):
            self.remove_builder(name, config)
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        # What buildkitd left running (build containers outlive a SIGKILLed daemon): everything in the
        # namespace and in the containers' cgroup parent.
        for _ in range(50):
            left = set(self.netns.pids()) | set(_cgroup_pids(self.cgroup_parent))
            if not left:
                break
            _kill_all(left)
            time.sleep(0.1)
        else:
            problems.append(f"processes left: {sorted(left)}")
        for forwarder in self._forwarders:
            forwarder.stop()
        self._forwarders = []
        self.netns.remove()
        problems += _remove_cgroups(self.cgroup_parent)
        for point in _mounts_under(self.root):
            if _run(["umount", point], check=False).returncode != 0:
                _run(["umount", "-l", point], check=False)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
            if self.root.exists():
                problems.append(f"{self.root} could not be removed")
        if problems:
            raise RuntimeError(f"remote BuildKit {self.name} was not cleaned up fully: {'; '.join(problems)}")

    def leftovers(self) -> list[str]:
        """What of this daemon still exists on the machine (empty after a clean stop)."""
        found = []
        if self.netns.exists():
            found.append(f"namespace or veth {self.name}")
        if _cgroup_dirs(self.cgroup_parent):
            found.append(f"cgroup {self.cgroup_parent}")
        if self.root.exists():
            found.append(str(self.root))
        if _mounts_under(self.root):
            found.append(f"mounts under {self.root}")
        pids = [pid for pid in _proc_pids() if str(self.root) in _cmdline(pid)]
        if pids:
            found.append(f"processes {pids}")
        return found

    def __enter__(self) -> RemoteBuildkit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- buildx builders ---------------------------------------------------------------------------------------
    def create_builder(self, name: str, docker_config: Path, *, bootstrap: bool = True) -> str:
        """A `remote` buildx builder named ``name`` under ``docker_config``; removed again by stop()."""
        assert self.certs is not None
        env = self.client_env()
        env["DOCKER_CONFIG"] = str(docker_config)
        opts = f"cacert={self.certs.ca},cert={self.certs.client_cert},key={self.certs.client_key}"
        self._builders.append((name, Path(docker_config)))
        self.builders_made.append((name, Path(docker_config)))
        _run(["docker", "buildx", "create", "--name", name, "--driver", "remote", "--driver-opt", opts,
              *(["--bootstrap"] if bootstrap else []), self.address], env=env, timeout=120)
        return name

    def remove_builder(self, name: str, docker_config: Path) -> None:
        env = self.client_env()
        env["DOCKER_CONFIG"] = str(docker_config)
        try:
            _run(["docker", "buildx", "rm", name], env=env, check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass
        # If buildx could not (a dead daemon, a timeout), its record goes by hand.
        instance = Path(docker_config) / "buildx" / "instances" / name
        with contextlib.suppress(FileNotFoundError):
            instance.unlink()
        self._builders = [(n, c) for n, c in self._builders if (n, c) != (name, Path(docker_config))]


def _owner_stamp(pid: int) -> str:
    """pid and start time: a stamp that a later process reusing the pid does not match."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return f"{pid} {stat[stat.rindex(')') + 2:].split()[19]}"
    except (OSError, ValueError, IndexError):
        return ""


def _stamp_alive(stamp: str | None) -> bool:
    try:
        return bool(stamp) and _owner_stamp(int(stamp.split()[0])) == stamp
    except (ValueError, IndexError):
        return False


def sweep_stale() -> list[str]:
    """Remove what a test process that died without its finalizers (SIGKILL) left: each rcbk-* namespace whose
    root's owner is gone, with its processes, cgroups, veth and root. Live ones (another session's) stay."""
    swept = []
    names = {p.name for p in NETNS_DIR.glob("rcbk-*")}
    names |= {p.name.rsplit("-", 1)[0] for p in Path("/tmp").glob("rcbk-*-*") if p.is_dir()}
    for name in sorted(names):
        if not re.fullmatch(r"rcbk-[0-9a-f]{6}", name):
            continue
        roots = [p for p in Path("/tmp").glob(f"{name}-*") if p.is_dir()]
        stamps = [(root / "owner").read_text().strip() if (root / "owner").exists() else None for root in roots]
        if any(_stamp_alive(stamp) for stamp in stamps):
            continue   # its test process is alive
        young = [time.time() - root.stat().st_mtime < 60 for root in roots]
        if any(stamp is None and new for stamp, new in zip(stamps, young, strict=True)):
            continue   # being made right now
        bk_id = name.removeprefix("rcbk-")
        netns = NetNamespace(name, f"rcbk{bk_id}h", f"rcbk{bk_id}n")
        for _ in range(50):
            left = set(netns.pids()) | set(_cgroup_pids(name))
            if not left:
                break
            _kill_all(left)
            time.sleep(0.1)
        netns.remove()
        _remove_cgroups(name)
        for root in roots:
            for point in _mounts_under(root):
                _run(["umount", "-l", point], check=False)
            shutil.rmtree(root, ignore_errors=True)
        swept.append(name)
    return swept


def builder_exists(name: str, docker_config: Path) -> bool:
    env = dict(os.environ, DOCKER_CONFIG=str(docker_config))
    return _run(["docker", "buildx", "inspect", name], env=env, check=False, timeout=60).returncode == 0


def _proc_pids() -> list[int]:
    return [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


__all__ = ["BUILDKIT_PORT", "Certificates", "NetNamespace", "PortForwarder", "RemoteBuildkit", "builder_exists",
           "buildkit_bin_dir", "listen_in_netns", "make_certificates", "missing_tools", "sweep_stale"]
