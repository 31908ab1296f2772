#!/usr/bin/python3
"""Issue 20: a real third-party client (the Python Docker SDK, Debian's python3-docker)
drives the everyday API through Cordon's socket (DOCKER_HOST) with isolation on.

Each check prints "ok NAME" or "FAIL NAME: what happened"; the last line is
"sdk: N passed, N failed" and the exit status is 1 when anything failed.
usage: sdk_conformance.py IMAGE  (a busybox image with sh, cat, echo, sleep, true)
With CORDON_ISOLATION=off the refusals are expected to pass instead (the proxy forwards).
With CORDON_ISOLATION=direct DOCKER_HOST is dockerd's own socket in the VM, the proxy
bypassed: the baseline every other check is compared with; the refusal check is Cordon's
alone and is not run.
"""
import io
import socket
import sys
import threading
import time
import traceback

import os

import docker
from docker.errors import APIError

IMAGE = sys.argv[1]
ISOLATION_OFF = os.environ.get("CORDON_ISOLATION") == "off"
DIRECT = os.environ.get("CORDON_ISOLATION") == "direct"
PREFIX = "cordon-sdk-"
client = docker.from_env(timeout=180)
api = client.api
results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure, go on
            detail = f"{type(e).__name__}: {e}"
            results.append((name, detail))
            print(f"FAIL {name}: {detail}", flush=True)
            traceback.print_exc()
        return fn
    return wrap


def raw_socket(sock):
    """The plain socket under what exec_start/attach_socket return."""
    return getattr(sock, "_sock", sock)


def read_until(sock, needle, timeout=60):
    s = raw_socket(sock)
    s.settimeout(timeout)
    got = b""
    deadline = time.time() + timeout
    while needle not in got and time.time() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


def cleanup():
    for c in client.containers.list(all=True, filters={"name": PREFIX}):
        c.remove(force=True)
    for v in client.volumes.list(filters={"name": PREFIX}):
        v.remove(force=True)
    for n in client.networks.list(names=[PREFIX + "net"]):
        n.remove()


cleanup()


@check("version")
def _():
    v = client.version()
    assert v["ApiVersion"] == "1.41", v


@check("run and output")
def _():
    out = client.containers.run(IMAGE, ["echo", "hello-from-the-sdk"], remove=True)
    assert out == b"hello-from-the-sdk\n", out


@check("attach with stdin")
def _():
    c = client.containers.create(IMAGE, ["cat"], name=PREFIX + "attach", stdin_open=True)
    sock = api.attach_socket(c.id, params={"stdin": 1, "stdout": 1, "stream": 1})
    c.start()
    raw_socket(sock).sendall(b"through-attach\n")
    got = read_until(sock, b"through-attach")
    sock.close()
    c.remove(force=True)
    assert b"through-attach" in got, got


@check("exec with stdin")
def _():
    c = client.containers.run(IMAGE, ["sleep", "600"], name=PREFIX + "exec", detach=True)
    ex = api.exec_create(c.id, ["cat"], stdin=True)
    sock = api.exec_start(ex["Id"], socket=True)
    raw_socket(sock).sendall(b"through-exec\n")
    got = read_until(sock, b"through-exec")
    sock.close()
    code, out = c.exec_run(["sh", "-c", "echo $((6*7))"])
    c.remove(force=True)
    assert b"through-exec" in got, got
    assert code == 0 and out == b"42\n", (code, out)


@check("logs follow")
def _():
    c = client.containers.run(IMAGE, ["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 1; done"],
                              name=PREFIX + "logs", detach=True)
    lines = b"".join(c.logs(stream=True, follow=True))
    c.remove(force=True)
    assert lines == b"line1\nline2\nline3\n", lines


@check("commit with a config")
def _():
    c = client.containers.run(IMAGE, ["sh", "-c", "echo committed > /committed"],
                              name=PREFIX + "commit", detach=True)
    c.wait(timeout=120)
    img = c.commit(repository="cordon-sdk/committed", tag="1", message="sdk commit",
                   conf={"Labels": {"cordon.sdk": "commit"}})
    c.remove(force=True)
    assert img.labels.get("cordon.sdk") == "commit", img.labels
    out = client.containers.run("cordon-sdk/committed:1", ["cat", "/committed"], remove=True)
    client.images.remove("cordon-sdk/committed:1", force=True)
    assert out == b"committed\n", out


@check("volumes")
def _():
    v = client.volumes.create(name=PREFIX + "vol", driver="local", labels={"cordon.sdk": "vol"})
    client.containers.run(IMAGE, ["sh", "-c", "echo kept > /v/f"], volumes={v.name: {"bind": "/v"}},
                          remove=True)
    out = client.containers.run(IMAGE, ["cat", "/v/f"], volumes={v.name: {"bind": "/v", "mode": "ro"}},
                                remove=True)
    assert out == b"kept\n", out
    assert client.volumes.get(v.name).attrs["Labels"] == {"cordon.sdk": "vol"}
    v.remove()


@check("networks")
def _():
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.124.0.0/24")])
    n = client.networks.create(PREFIX + "net", driver="bridge", ipam=ipam)
    c = client.containers.run(IMAGE, ["sleep", "600"], name=PREFIX + "net-c", detach=True)
    n.connect(c)
    n.reload()
    assert c.id in [x.id for x in n.containers], n.attrs
    n.disconnect(c)
    c.remove(force=True)
    n.remove()


@check("build")
def _():
    dockerfile = f"FROM {IMAGE}\nRUN echo built-by-the-sdk > /built\nCMD [\"cat\", \"/built\"]\n"
    img, logs = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag="cordon-sdk/built:1",
                                    rm=True)
    out = client.containers.run(img.id, remove=True)
    client.images.remove("cordon-sdk/built:1", force=True)
    assert out == b"built-by-the-sdk\n", out


@check("events")
def _():
    since = int(time.time()) - 1
    client.containers.run(IMAGE, ["true"], labels={"cordon.sdk": "events"}, remove=True)
    until = int(time.time()) + 1
    time.sleep(1.5)
    seen = [e.get("Action") for e in client.events(since=since, until=until, decode=True,
                                                      filters={"label": "cordon.sdk=events"})]
    for action in ("create", "start", "die", "destroy"):
        assert action in seen, seen


if not DIRECT:  # Cordon's own answer; dockerd has none to compare
    @check("refusal names its rule")
    def _():
        if ISOLATION_OFF:  # the twin: dockerd decides, as it would without Cordon
            out = client.containers.run(IMAGE, ["echo", "privileged"], privileged=True, remove=True)
            assert out == b"privileged\n", out
            return
        try:
            client.containers.run(IMAGE, ["true"], privileged=True, remove=True)
        except APIError as e:
            assert e.status_code == 403, e
            assert "[rule privileged" in str(e.explanation), e.explanation
        else:
            raise AssertionError("a privileged container was created")
        try:
            client.volumes.create(name=PREFIX + "proc", driver_opts={"type": "proc", "device": "proc"})
        except APIError as e:
            assert e.status_code == 403 and "[rule volume.type" in str(e.explanation), e.explanation
        else:
            raise AssertionError("a procfs volume was created")


cleanup()
failed = [r for r in results if r[1]]
print(f"sdk: {len(results) - len(failed)} passed, {len(failed)} failed", flush=True)
sys.exit(1 if failed else 0)
