#!/usr/bin/python3
"""A simulated configfs-tsm (Linux 6.7+, /sys/kernel/config/tsm) in an SEV-SNP guest, over FUSE.

Written from the kernel's ABI document (Documentation/ABI/testing/configfs-tsm) and the
behaviour of the kernel's report directory with the sev_guest provider; reports are signed by
the simulated SNP firmware (snp_sp.py, beside this file) with a test chain. Needs root,
/dev/fuse and Debian's python3-fusepy.

  configfs_tsm.py MOUNTPOINT --chain DIR [--privlevel-floor N] [--no-certs] [--hide ATTR ...]
                  [--measurement HEX] [--policy N] [--host-data HEX]

serves, in the foreground until unmounted (umount MOUNTPOINT):

  MOUNTPOINT/report/             mkdir NAME makes an entry, rmdir NAME removes it
  MOUNTPOINT/report/NAME/provider          (RO) "sev_guest\\n"
                         privlevel         (WO) the VMPL, privlevel_floor..3, else EINVAL
                         privlevel_floor   (RO) --privlevel-floor (0)
                         inblob            (WO) the REPORT_DATA, up to 64 bytes (EFBIG past
                                           that), taken when the file is closed
                         generation        (RO) counts the writes to privlevel and inblob
                         outblob           (RO) the report, made on read when a write came
                                           since the last one: REPORT_DATA = inblob, VMPL =
                                           privlevel; EINVAL unless inblob holds 64 bytes
                                           (the sev_guest provider takes exactly 64)
                         auxblob           (RO) the GHCB certificate table (VCEK, ASK, ARK of
                                           the chain) made with the report; empty with
                                           --no-certs
  MOUNTPOINT/sim_race            (WO, not the kernel's) each write arms one simulated
                                 concurrent writer: the next outblob read that makes a report
                                 first writes 64 random bytes to that entry's inblob, as
                                 another process would between a writer's inblob and outblob
  MOUNTPOINT/sim_oversize        (WO, not the kernel's) each write arms one hostile outblob:
                                 the next report made is 2 MiB of 0xAA, which no kernel gives

--hide privlevel (or privlevel_floor, auxblob) leaves that attribute out of every entry, as a
provider that does not make it visible does. --measurement, --policy and
--host-data are the guest's launch, as its firmware recorded it: every report carries them (by
default snp_sp.py's: zero, and policy 0x30000).
"""

import argparse
import contextlib
import errno
import io
import os
import stat
import sys
import tempfile

import fusepy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snp_sp  # noqa: E402

INBLOB_MAX = 64
SNP_USER_DATA = 64
PRIVLEVEL_MAX = 3

# name: mode, as configfs shows them (RO 0444, WO 0200)
ATTRS = {
    "provider": 0o444,
    "privlevel": 0o200,
    "privlevel_floor": 0o444,
    "inblob": 0o200,
    "generation": 0o444,
    "outblob": 0o444,
    "auxblob": 0o444,
}
CONTROLS = ("sim_race", "sim_oversize")
OVERSIZE = 2 << 20


def fail(code):
    raise fusepy.FuseOSError(code)


class Entry:
    def __init__(self):
        self.write_generation = 0
        self.read_generation = 0
        self.privlevel = 0
        self.inblob = b""
        self.outblob = None
        self.auxblob = b""


class TsmFS(fusepy.Operations):
    use_ns = True

    def __init__(self, chain, floor, certs, hidden, launch=()):
        self.chain = chain
        self.launch = list(launch)  # snp_sp.py report options: the launch's fields
        self.floor = floor
        self.table = snp_sp.cert_table(snp_sp.chain_entries(chain, "vcek")) if certs else b""
        self.attrs = {name: mode for name, mode in ATTRS.items() if name not in hidden}
        self.entries = {}
        self.handles = {}
        self.next_fh = 1
        self.armed = {name: 0 for name in CONTROLS}

    # ---- paths

    def locate(self, path):
        """("root"|"report"|"control"|"entry"|"attr", entry name, attribute name)."""
        parts = [p for p in path.split("/") if p]
        if not parts:
            return "root", None, None
        if len(parts) == 1 and parts[0] in CONTROLS:
            return "control", parts[0], None
        if parts[0] != "report" or len(parts) > 3:
            fail(errno.ENOENT)
        if len(parts) == 1:
            return "report", None, None
        if parts[1] not in self.entries:
            fail(errno.ENOENT)
        if len(parts) == 2:
            return "entry", parts[1], None
        if parts[2] not in self.attrs:
            fail(errno.ENOENT)
        return "attr", parts[1], parts[2]

    def getattr(self, path, fh=None):
        kind, _, attr = self.locate(path)
        if kind in ("root", "report", "entry"):
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
        mode = 0o200 if kind == "control" else ATTRS[attr]
        return dict(st_mode=stat.S_IFREG | mode, st_nlink=1, st_size=4096)

    def readdir(self, path, fh):
        kind, _, _ = self.locate(path)
        names = {"root": ["report", *CONTROLS], "report": sorted(self.entries),
                 "entry": sorted(self.attrs)}.get(kind)
        if names is None:
            fail(errno.ENOTDIR)
        return [".", ".."] + names

    def mkdir(self, path, mode):
        parts = [p for p in path.split("/") if p]
        if len(parts) != 2 or parts[0] != "report":
            fail(errno.EPERM)
        if parts[1] in self.entries:
            fail(errno.EEXIST)
        self.entries[parts[1]] = Entry()

    def rmdir(self, path):
        kind, name, _ = self.locate(path)
        if kind != "entry":
            fail(errno.EPERM)
        del self.entries[name]

    # ---- files

    def open(self, path, fi):
        kind, name, attr = self.locate(path)
        if kind not in ("attr", "control"):
            fail(errno.EISDIR)
        mode = 0o200 if kind == "control" else ATTRS[attr]
        acc = fi.flags & os.O_ACCMODE
        if (acc != os.O_WRONLY and not mode & 0o400) or (acc != os.O_RDONLY and not mode & 0o200):
            fail(errno.EACCES)
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = {"entry": name, "attr": attr, "buf": None, "data": None}
        fi.fh = fh
        fi.direct_io = 1  # every read comes here: attributes change without their size changing
        return 0

    def truncate(self, path, length, fh=None):
        return 0

    def entry_of(self, h):
        e = self.entries.get(h["entry"])
        if e is None:
            fail(errno.ENOENT)
        return e

    def read(self, path, size, offset, fi):
        h = self.handles[fi.fh]
        if h["data"] is None:  # configfs fills its buffer once an open file, on the first read
            h["data"] = self.show(self.entry_of(h), h["attr"])
        return h["data"][offset:offset + size]

    def show(self, e, attr):
        if attr == "provider":
            return b"sev_guest\n"
        if attr == "privlevel_floor":
            return b"%d\n" % self.floor
        if attr == "generation":
            return b"%d\n" % e.write_generation
        self.generate(e)
        return e.outblob if attr == "outblob" else e.auxblob

    def generate(self, e):
        if e.outblob is not None and e.read_generation == e.write_generation:
            return
        if self.armed["sim_race"]:
            self.armed["sim_race"] -= 1
            e.inblob = os.urandom(SNP_USER_DATA)
            e.write_generation += 1
        if len(e.inblob) != SNP_USER_DATA:
            fail(errno.EINVAL)
        if self.armed["sim_oversize"]:
            self.armed["sim_oversize"] -= 1
            e.outblob = b"\xaa" * OVERSIZE
        else:
            e.outblob = self.sign(e.inblob, e.privlevel)
        e.auxblob = self.table
        e.read_generation = e.write_generation

    def sign(self, report_data, vmpl):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "report.bin")
            with contextlib.redirect_stdout(io.StringIO()):
                snp_sp.main(["report", "--chain", self.chain, "--report-data", report_data.hex(),
                             "--vmpl", str(vmpl), "--out", out, *self.launch])
            with open(out, "rb") as f:
                return f.read()

    def write(self, path, data, offset, fi):
        h = self.handles[fi.fh]
        if h["attr"] is None:  # a control file
            self.armed[h["entry"]] += 1
            return len(data)
        e = self.entry_of(h)
        if h["attr"] == "privlevel":
            try:
                value = int(data.decode().strip(), 0)
            except ValueError:
                fail(errno.EINVAL)
            if not self.floor <= value <= PRIVLEVEL_MAX:
                fail(errno.EINVAL)
            e.privlevel = value
            e.write_generation += 1
            return len(data)
        # inblob: a binary attribute, buffered while the file is open
        if offset + len(data) > INBLOB_MAX:
            fail(errno.EFBIG)
        buf = h["buf"] if h["buf"] is not None else bytearray()
        buf[len(buf):offset] = bytes(max(0, offset - len(buf)))
        buf[offset:offset + len(data)] = data
        h["buf"] = buf
        return len(data)

    def commit(self, h):
        """configfs hands a binary attribute's buffer to the kernel when the file is closed."""
        if h["buf"] is not None:
            e = self.entry_of(h)
            e.inblob = bytes(h["buf"])
            e.write_generation += 1
            h["buf"] = None

    def flush(self, path, fi):
        # close(2) waits for FLUSH, not for RELEASE: commit here so that a reader of
        # `generation` right after close sees the write, as with configfs.
        self.commit(self.handles[fi.fh])
        return 0

    def release(self, path, fi):
        h = self.handles.pop(fi.fh, None)
        if h is not None and h["entry"] in self.entries:
            self.commit(h)
        return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("mountpoint")
    ap.add_argument("--chain", required=True, help="a chain made by snp_sp.py chain")
    ap.add_argument("--privlevel-floor", type=int, default=0, choices=range(PRIVLEVEL_MAX + 1))
    ap.add_argument("--no-certs", action="store_true", help="auxblob empty")
    ap.add_argument("--hide", action="append", default=[],
                    choices=["privlevel", "privlevel_floor", "auxblob"],
                    help="leave this attribute out of the entries")
    ap.add_argument("--measurement", type=snp_sp.hexbytes(48),
                    help="the launch's MEASUREMENT, 96 hex digits (default zero)")
    ap.add_argument("--policy", help="the launch's POLICY (default snp_sp.py's)")
    ap.add_argument("--host-data", type=snp_sp.hexbytes(32),
                    help="the launch's HOST_DATA, 64 hex digits (default zero)")
    a = ap.parse_args(argv)
    launch = []
    for opt, value in (("--measurement", a.measurement), ("--host-data", a.host_data)):
        if value is not None:
            launch += [opt, value.hex()]
    if a.policy is not None:
        launch += ["--policy", a.policy]
    fs = TsmFS(a.chain, a.privlevel_floor, not a.no_certs, set(a.hide), launch)
    fusepy.FUSE(fs, a.mountpoint, raw_fi=True, nothreads=True, foreground=True,
                fsname="configfs_tsm_sim", attr_timeout=0, entry_timeout=0, negative_timeout=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
