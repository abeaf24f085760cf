"""./scripts/serve's port: the one asked for or a clear word on what to do, 8000 or the next free one, and a
port a server has just let go of counts as free (its closed connections linger in TIME_WAIT for a minute)."""

import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def serve_port(**env):
    return subprocess.run(
        ["bash", "-c", "source scripts/lib.sh && serve_port"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


def listening(port=0):
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
    return server


def test_the_port_asked_for_is_used_when_it_is_free():
    with listening() as probe:
        port = probe.getsockname()[1]
    chosen = serve_port(PORT=str(port))
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == str(port)


def test_a_port_asked_for_that_is_taken_says_what_to_do():
    with listening() as server:
        port = server.getsockname()[1]
        chosen = serve_port(PORT=str(port))
    assert chosen.returncode == 1
    assert chosen.stdout == ""
    assert f"Port {port} is taken" in chosen.stderr and "PORT=" in chosen.stderr


def test_a_port_just_let_go_by_a_server_counts_as_free():
    # A server as gunicorn listens: with SO_REUSEADDR, which its connections keep once closed.
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    connection, _ = server.accept()
    connection.close()  # the server's side closes first, so its end of the connection waits in TIME_WAIT
    client.close()
    server.close()
    plain = socket.socket()
    with pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # why the check binds as gunicorn does, with SO_REUSEADDR
    plain.close()
    chosen = serve_port(PORT=str(port))
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == str(port)


def test_when_8000_is_taken_the_next_free_port_is_used_and_said():
    try:
        holder = listening(8000)
    except OSError:
        holder = None  # something else holds it: taken all the same
    try:
        chosen = serve_port()
    finally:
        if holder is not None:
            holder.close()
    assert chosen.returncode == 0, chosen.stderr
    port = int(chosen.stdout.strip())
    assert 8001 <= port <= 8099
    assert f"Port 8000 is taken; using {port} instead" in chosen.stderr
