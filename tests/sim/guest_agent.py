#!/usr/bin/python3
"""A simulated QEMU guest agent (qemu-ga) for the end-to-end tests, and the wrapper's relay to it.

Written from QEMU's guest agent protocol reference (qga/qapi-schema.json: guest-sync,
guest-sync-delimited, guest-ping, guest-info, guest-exec, guest-exec-status, guest-file-open,
-read, -write, -flush, -close). QEMU runs no guest OS in the tests, so the "guest" is this
machine: commands run here, files are this machine's.

  guest_agent.py SOCKET [--tamper-nonce] [--disable COMMAND ...] [--log FILE]

listens on the unix socket SOCKET (mode 0666, for the unprivileged daemon's wrapper) and serves
one connection at a time, in the foreground, until killed. The wrapper (qemu_sev_wrapper.py)
relays libvirt's connections to the domain's agent channel to it ([relay]).

--tamper-nonce: the host's hostile agent: guest-exec runs the command with the value after
  --nonce replaced by 32 random bytes, so the evidence binds another nonce.
--disable COMMAND: COMMAND answers as qemu-ga does for a command blocked with --block-rpcs.
"""

import argparse
import base64
import json
import os
import select
import socket
import subprocess
import sys
import threading

CHANNEL_NAME = "org.qemu.guest_agent.0"
COMMANDS = ["guest-sync", "guest-sync-delimited", "guest-ping", "guest-info", "guest-exec",
            "guest-exec-status", "guest-file-open", "guest-file-read", "guest-file-write",
            "guest-file-flush", "guest-file-close"]
MAX_READ = 48 * 1024 * 1024  # qemu-ga's QGA_READ_COUNT_MAX


# ------------------------------------------------------------------------------ the relay


def relay(listener, path, log, alive):
    """In the wrapper's proxy child: libvirt's connections to the agent channel's listening
    socket, relayed to the simulated agent at `path` (connected when libvirt first writes;
    bytes sent while no agent listens are dropped, as a guest without qemu-ga drops them)."""
    listener.settimeout(0.5)
    while alive():
        try:
            client, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError as e:
            log(f"guest agent channel: {e}")
            return
        log("guest agent channel: libvirt connected")
        try:
            pipe(client, path, log, alive)
        except OSError as e:
            log(f"guest agent channel: {e}")
        finally:
            client.close()


def pipe(client, path, log, alive):
    client.settimeout(None)
    guest = None
    while alive():
        socks = [client] + ([guest] if guest is not None else [])
        r, _, _ = select.select(socks, [], [], 0.5)
        if client in r:
            data = client.recv(65536)
            if not data:
                break
            if guest is None:
                guest = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    guest.connect(path)
                except OSError:
                    guest.close()
                    guest = None
                    log(f"guest agent channel: no agent at {path}: {len(data)} bytes dropped")
                    continue
            guest.sendall(data)
        if guest is not None and guest in r:
            data = guest.recv(65536)
            if not data:
                guest.close()
                guest = None
                continue
            client.sendall(data)
    if guest is not None:
        guest.close()


# ------------------------------------------------------------------------------ the agent


class Agent:
    def __init__(self, tamper_nonce, disabled, log):
        self.tamper_nonce = tamper_nonce
        self.disabled = set(disabled)
        self.log = log
        self.procs = {}  # pid -> (Popen, thread, result dict)
        self.files = {}  # handle -> file object
        self.next_handle = 1000

    def handle(self, msg):
        cmd = msg.get("execute") if isinstance(msg, dict) else None
        args = msg.get("arguments") or {}
        self.log(f"{cmd} {json.dumps(args)[:200]}")
        if cmd not in COMMANDS:
            return error("CommandNotFound", f"The command {cmd} has not been found")
        if cmd in self.disabled:
            return error("CommandNotFound",
                         f"The command {cmd} has been disabled for this instance")
        try:
            return {"return": getattr(self, cmd.replace("-", "_"))(args)}
        except (OSError, KeyError, ValueError, TypeError) as e:
            return error("GenericError", f"{cmd}: {e!r}")

    def guest_sync(self, a):
        return a["id"]

    guest_sync_delimited = guest_sync

    def guest_ping(self, a):
        return {}

    def guest_info(self, a):
        return {"version": "simulated",
                "supported_commands": [{"name": c, "enabled": c not in self.disabled,
                                        "success-response": True} for c in COMMANDS]}

    def guest_exec(self, a):
        argv = [a["path"]] + list(a.get("arg", []))
        if self.tamper_nonce and "--nonce" in argv[:-1]:
            argv[argv.index("--nonce") + 1] = os.urandom(32).hex()
            self.log("tampered: another nonce")
        capture = bool(a.get("capture-output"))
        pipe_or_null = subprocess.PIPE if capture else subprocess.DEVNULL
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=pipe_or_null,
                             stderr=pipe_or_null)
        result = {}

        def wait():
            out, err = p.communicate()
            result.update(out=out, err=err)

        t = threading.Thread(target=wait, daemon=True)
        t.start()
        self.procs[p.pid] = (p, t, result, capture)
        return {"pid": p.pid}

    def guest_exec_status(self, a):
        p, t, result, capture = self.procs[a["pid"]]
        if t.is_alive():
            return {"exited": False}
        del self.procs[a["pid"]]
        out = {"exited": True}
        if p.returncode < 0:
            out["signal"] = -p.returncode
        else:
            out["exitcode"] = p.returncode
        if capture:
            out["out-data"] = base64.b64encode(result["out"] or b"").decode()
            out["err-data"] = base64.b64encode(result["err"] or b"").decode()
        return out

    def guest_file_open(self, a):
        mode = a.get("mode", "r")
        f = open(a["path"], mode if "b" in mode else mode + "b")
        self.next_handle += 1
        self.files[self.next_handle] = f
        return self.next_handle

    def guest_file_read(self, a):
        data = self.files[a["handle"]].read(min(int(a.get("count", 4096)), MAX_READ))
        return {"count": len(data), "buf-b64": base64.b64encode(data).decode(),
                "eof": len(data) == 0}

    def guest_file_write(self, a):
        data = base64.b64decode(a["buf-b64"])
        self.files[a["handle"]].write(data)
        return {"count": len(data), "eof": False}

    def guest_file_flush(self, a):
        self.files[a["handle"]].flush()
        return {}

    def guest_file_close(self, a):
        self.files.pop(a["handle"]).close()
        return {}


def error(cls, desc):
    return {"error": {"class": cls, "desc": desc}}


def serve_connection(agent, conn):
    buf = b""
    dec = json.JSONDecoder()
    while True:
        data = conn.recv(65536)
        if not data:
            return
        # 0xFF resets qemu-ga's parser (guest-sync-delimited); it is never part of JSON.
        buf += data.replace(b"\xff", b"")
        while True:
            text = buf.decode("utf-8", "replace").lstrip()
            if not text:
                buf = b""
                break
            try:
                msg, end = dec.raw_decode(text)
            except ValueError:
                break  # incomplete: wait for more
            buf = text[end:].encode()
            reply = agent.handle(msg)
            if isinstance(msg, dict) and msg.get("execute") == "guest-sync-delimited":
                conn.sendall(b"\xff")
            conn.sendall(json.dumps(reply).encode() + b"\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("socket")
    ap.add_argument("--tamper-nonce", action="store_true")
    ap.add_argument("--disable", action="append", default=[])
    ap.add_argument("--log")
    a = ap.parse_args(argv)
    out = open(a.log, "a", buffering=1) if a.log else sys.stderr

    def log(m):
        print(m, file=out)

    agent = Agent(a.tamper_nonce, a.disable, log)
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(a.socket)
    os.chmod(a.socket, 0o666)
    srv.listen(4)
    log(f"listening on {a.socket}")
    while True:
        conn, _ = srv.accept()
        log("connected")
        try:
            serve_connection(agent, conn)
        except (OSError, KeyError, ValueError, TypeError) as e:
            log(f"connection: {e!r}")
        finally:
            conn.close()
            log("disconnected")


if __name__ == "__main__":
    sys.exit(main())
