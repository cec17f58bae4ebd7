#!/usr/bin/python3
"""QEMU emulator wrapper that simulates the AMD SEV firmware on the QMP monitor (tests only).

libvirtd runs this (through a generated `qemu-system-x86_64` shell script first on its PATH)
instead of QEMU. Real QEMU 7.2 (TCG) still does all the work; this wrapper only fills in what
the missing AMD Secure Processor would have done, using the independent simulator sev_sp.py:

* capability probes (`-qmp unix:PATH ... -daemonize`): the QMP socket is proxied and
  `query-sev-capabilities` is answered (QEMU itself fails it without /dev/sev), so libvirt
  believes the host supports SEV;
* domain runs (`-chardev socket,id=charmonitor,fd=N`): the `sev-guest` object and the
  `confidential-guest-support=` / `memory-encryption=` machine properties are dropped, the launch
  parameters (policy, kernel-hashes, firmware, kernel/initrd/append, -smp, -cpu) are kept, the
  real QEMU is exec'd in place (so libvirt tracks QEMU's pid) and a forked proxy child keeps the
  monitor fd and answers `query-sev`, `query-sev-launch-measure`, `query-sev-capabilities` and
  `sev-inject-launch-secret` with the semantics of QEMU 7.2 + the SEV firmware;
* direct runs, without libvirt, the way owners run QEMU by hand (`-object sev-guest,...` with
  `-qmp unix:PATH,server=on,wait=off`, `-qmp tcp:HOST:PORT,server=on,wait=off` or
  `-chardev socket,id=ID,path=PATH,server=on,wait=off -mon chardev=ID,mode=control`): the
  wrapper listens on PATH (or HOST:PORT) itself, gives real QEMU a monitor socket of its own
  and serves the same SEV semantics there, as in domain runs (QEMU is exec'd in place, so
  killing the process the caller started kills QEMU; the proxy child follows within 0.5 s).
  Every connection gets its own proxy; the SEV state is shared by all of them.
  Not supported: -daemonize with a sev-guest object (the proxy follows QEMU's pid).

The QEMU guest agent's channel (a `virtserialport` named org.qemu.guest_agent.0 on a socket
chardev libvirt passes as an fd): QEMU gets a null chardev instead, and the proxy child relays
libvirt's connections to `run_dir/agent-NAME.sock`, where the test's simulated guest agent
(guest_agent.py) listens; after the first `cont` the proxy sends VSERPORT_CHANGE (open), as QEMU
does when the guest's agent opens its port, so that libvirt connects to the agent.

SEV-SNP (a `sev-snp-guest` object, JSON from libvirt or key=value by hand): the object is
dropped as well (real QEMU refuses it under TCG), its launch parameters recorded (policy,
id-block, id-auth, host-data, guest-visible-workarounds, author-key-enabled, vcek-disabled,
kernel-hashes), and QMP is answered as QEMU 10.0 answers for an SNP guest: `query-sev` with
sev-type sev-snp and snp-policy, `query-sev-launch-measure` and `sev-inject-launch-secret`
refused. SNP_LAUNCH_FINISH is simulated at the first `cont`: the launch digest of what QEMU
really got (computed by PyPI sev-snp-measure, whose `sevsnpmeasure` package the tests copy next
to this file) against the ID block, whose signatures are checked with python3-cryptography; a
failure is reported on QEMU's stderr as QEMU 10 does ("SNP_LAUNCH_FINISH ret=-5 fw_error=11
'Bad measurement'") and QEMU is killed instead of continued. Every verdict is recorded
(`launch_finish`).

The measurement is computed over what the domain really launches with: the firmware file
QEMU is given (-bios or the pflash unit 0 blockdev), the kernel hash table (kernel-hashes=on
with -kernel) and the SEV-ES VMSAs (policy bit 2; legacy KVM_SEV_ES_INIT form, one per -smp
vCPU, CPUID signature from the -cpu model or the host's /proc/cpuinfo).

Configuration: JSON file named by $SEV_WRAPPER_CONFIG (set by the generated shell script for
libvirt, by the caller for direct runs):
  real_qemu   path of the real emulator (default /usr/bin/qemu-system-x86_64)
  tik, tek    paths of the 16-byte TIK and TEK files (the real firmware would unwrap them
              from the owner's session blob)
  api_major, api_minor, build_id   what query-sev reports (defaults 1, 55, 21)
  snp_build_id  the build query-sev reports for SNP guests (default 24, as QEMU 10.0 showed)
  record      JSON file where launches, injected secrets and `cont`s are recorded
  run_dir     directory for the real QMP sockets and the logs (and tamper-NAME.json files:
              see apply_tamper)
  cbitpos, reduced_phys_bits   query-sev-capabilities (defaults 51, 1)
"""

import base64
import fcntl
import hmac
import json
import os
import re
import secrets
import select
import socket
import struct
import sys
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # leave no __pycache__ in the checkout

import guest_agent  # noqa: E402

REAL_QEMU_DEFAULT = "/usr/bin/qemu-system-x86_64"

# SevState enum values (QEMU qapi/misc-target.json), used in "(LSECRET) %x"
SEV_STATE_NUM = {"uninit": 0, "launch-update": 1, "launch-secret": 2, "running": 3}

FW_ERRORS = {4: "Buffer too small", 11: "Bad measurement"}

CPU_SIGNATURES = {
    "EPYC": 0x800F12,
    "EPYC-IBPB": 0x800F12,
    "EPYC-Rome": 0x830F10,
    "EPYC-Milan": 0xA00F11,
    "EPYC-Genoa": 0xA10F10,
    "EPYC-Turin": 0xB00F00,
}

# The confidential-guest objects the wrapper takes out of QEMU's command line.
SEV_OBJECTS = ("sev-guest", "sev-snp-guest")
SNP_DEFAULT_POLICY = 0x30000

# SEV firmware status codes (Linux psp-sev.h) and QEMU's texts for them.
SEV_RET_POLICY_FAILURE = 7
SEV_RET_BAD_SIGNATURE = 10
SEV_RET_BAD_MEASUREMENT = 11
FW_ERROR_TEXT = {SEV_RET_POLICY_FAILURE: "Policy is not allowed",
                 SEV_RET_BAD_SIGNATURE: "Bad signature",
                 SEV_RET_BAD_MEASUREMENT: "Bad measurement"}

# The options Launch looks at; all take a value.
VALUE_OPTS = {"-object", "--object", "-machine", "-M", "-name", "-bios", "-blockdev", "-drive",
              "-kernel", "-initrd", "-append", "-smp", "-cpu", "-m", "-chardev", "-mon", "-uuid"}

# Options of socket chardevs / -qmp that only make sense for TCP (dropped when the real QEMU
# is given a unix socket instead).
TCP_ONLY_OPTS = {"host", "port", "to", "ipv4", "ipv6", "nodelay", "numeric", "keep-alive",
                 "reconnect", "tls-creds", "tls-authz", "mptcp"}

GUID_SECRET_BLOCK = uuid.UUID("4c2eb361-7d9b-4cc3-8081-127c90d3d294").bytes_le

LOG = None


def log(msg):
    if LOG is not None:
        try:
            LOG.write(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {msg}\n")
            LOG.flush()
        except OSError:
            pass


def load_config():
    path = os.environ.get("SEV_WRAPPER_CONFIG")
    if not path:
        return {}
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# Command line analysis


def opt_value(args, name):
    """Value of the last `name VALUE` option (QEMU accepts -opt and --opt)."""
    val = None
    for i, a in enumerate(args[:-1]):
        if a in (name, "-" + name):
            val = args[i + 1]
    return val


def split_kv(text):
    """QEMU key=value,key=value (',,' escapes a comma). First item may be a bare value."""
    items, cur, i = [], "", 0
    while i < len(text):
        c = text[i]
        if c == ",":
            if i + 1 < len(text) and text[i + 1] == ",":
                cur += ","
                i += 2
                continue
            items.append(cur)
            cur = ""
        else:
            cur += c
        i += 1
    items.append(cur)
    return items


def join_kv(items):
    return ",".join(item.replace(",", ",,") for item in items)


def parse_object(text):
    """-object as JSON or key=value; returns a dict."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    out = {}
    for i, item in enumerate(split_kv(text)):
        k, sep, v = item.partition("=")
        if not sep and i == 0:
            out["qom-type"] = k
        else:
            out[k] = v
    return out


def truthy(v):
    if isinstance(v, bool):
        return v
    return str(v).lower() in ("on", "yes", "true", "1")


def parse_size(text):
    """-m value in bytes (libvirt: `size=131072k`, or plain MiB)."""
    m = None
    for item in split_kv(text):
        k, sep, v = item.partition("=")
        if not sep:
            m = k
        elif k == "size":
            m = v
    if m is None:
        return 128 << 20
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    if m and m[-1].lower() in mult:
        return int(float(m[:-1]) * mult[m[-1].lower()])
    return int(m) << 20


def host_signature():
    """CPUID(1).EAX of the host from /proc/cpuinfo (what libvirt reports as <signature>)."""
    fam = model = step = 0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k = k.strip()
                if k == "cpu family":
                    fam = int(v)
                elif k == "model":
                    model = int(v)
                elif k == "stepping":
                    step = int(v)
                elif not k and fam:
                    break
    except (OSError, ValueError):
        pass
    return signature(fam, model, step)


def signature(family, model, stepping):
    sig = stepping & 0xF
    if family > 0xF:
        sig |= 0xF00 | ((family - 0xF) << 20)
    else:
        sig |= family << 8
    sig |= ((model & 0xF) << 4) | ((model >> 4) << 16)
    return sig


def cpu_signature(cpu_opt):
    """vCPU signature from `-cpu NAME[,features]`; host CPUID for host/max/absent/unknown."""
    name = split_kv(cpu_opt)[0] if cpu_opt else ""
    base = re.sub(r"-v\d+$", "", name)
    if base in CPU_SIGNATURES:
        return CPU_SIGNATURES[base], name
    if name not in ("", "host", "max"):
        log(f"unknown -cpu model {name!r}: using the host signature")
    return host_signature(), name or "(default)"


def smp_cpus(smp_opt):
    if not smp_opt:
        return 1
    for i, item in enumerate(split_kv(smp_opt)):
        k, sep, v = item.partition("=")
        if not sep and i == 0 and k:
            return int(k)
        if k == "cpus":
            return int(v)
    return 1


class Launch:
    """What a domain run really launches with, after dropping the SEV bits for real QEMU."""

    def __init__(self, args):
        self.name = None
        self.uuid = opt_value(args, "-uuid")
        self.policy = 0x1  # QEMU's sev-guest default
        self.kernel_hashes = False
        self.sev = False
        # SEV-SNP (`sev-snp-guest` object): the launch parameters SNP_LAUNCH_FINISH gets.
        self.snp = False
        self.id_block = self.id_auth = self.host_data = self.gosvw = None
        self.author_key_enabled = self.vcek_disabled = False
        self.firmware = None
        self.kernel = self.initrd = self.cmdline = None
        self.smp = 1
        self.cpu = None
        self.memory = 128 << 20
        self.paused = "-S" in args
        self.monitor_fd = None
        self.monitor_chardev = None
        self.control_chardevs = set()
        # The QEMU guest agent's virtio-serial port (libvirt's <channel> org.qemu.guest_agent.0):
        # its chardev, device id and the listening fd libvirt gave (see guest_agent.py).
        self.agent_chardev = self.agent_device = self.agent_fd = None
        self.qemu_args = self._rewrite(args)

    def _rewrite(self, args):
        out = []
        i = 0
        # first pass: sev-guest objects
        for j, a in enumerate(args[:-1]):
            if a in ("-object", "--object"):
                try:
                    obj = parse_object(args[j + 1])
                except ValueError:
                    continue
                if obj.get("qom-type") == "sev-guest":
                    self.sev = True
                    policy = obj.get("policy", self.policy)
                    self.policy = int(policy, 0) if isinstance(policy, str) else int(policy)
                    self.kernel_hashes = truthy(obj.get("kernel-hashes", False))
                elif obj.get("qom-type") == "sev-snp-guest":
                    self.snp = True
                    policy = obj.get("policy", SNP_DEFAULT_POLICY)  # QEMU's default
                    self.policy = int(policy, 0) if isinstance(policy, str) else int(policy)
                    self.kernel_hashes = truthy(obj.get("kernel-hashes", False))
                    self.id_block = obj.get("id-block")
                    self.id_auth = obj.get("id-auth")
                    self.host_data = obj.get("host-data")
                    self.gosvw = obj.get("guest-visible-workarounds")
                    self.author_key_enabled = truthy(obj.get("author-key-enabled", False))
                    self.vcek_disabled = truthy(obj.get("vcek-disabled", False))
            if a in ("-device", "--device") and args[j + 1].startswith("{"):
                try:
                    dev = json.loads(args[j + 1])
                except ValueError:
                    dev = {}
                if dev.get("driver") == "virtserialport" and \
                        dev.get("name") == guest_agent.CHANNEL_NAME:
                    self.agent_chardev, self.agent_device = dev.get("chardev"), dev.get("id")
            if a in ("-mon", "--mon"):
                kv = dict(item.partition("=")[::2] for item in split_kv(args[j + 1]))
                if kv.get("mode") == "control":
                    self.monitor_chardev = kv.get("chardev")
                    self.control_chardevs.add(kv.get("chardev"))
        pflash_nodes = {}
        # Only the options below are looked at (always as `-opt VALUE` pairs); everything else
        # is copied one element at a time, so no list of value-taking options is needed.
        while i < len(args):
            a = args[i]
            v = args[i + 1] if i + 1 < len(args) else None
            if v is None or a not in VALUE_OPTS:
                out.append(a)
                i += 1
                continue
            i += 2
            if a in ("-object", "--object"):
                try:
                    if parse_object(v).get("qom-type") in SEV_OBJECTS:
                        continue
                except ValueError:
                    pass
            elif a in ("-machine", "-M"):
                items = []
                for it in split_kv(v):
                    k, _, val = it.partition("=")
                    if k == "pflash0":
                        pflash_nodes["pflash0"] = val
                    if k not in ("confidential-guest-support", "memory-encryption"):
                        items.append(it)
                v = join_kv(items)
            elif a == "-name":
                first = split_kv(v)[0]
                self.name = first.partition("=")[2] if first.startswith("guest=") else first
            elif a == "-bios":
                self.firmware = v
            elif a == "-blockdev" and v.startswith("{"):
                try:
                    pflash_nodes.setdefault("_blockdevs", []).append(json.loads(v))
                except ValueError:
                    pass
            elif a == "-drive":
                kv = dict(item.partition("=")[::2] for item in split_kv(v))
                if kv.get("if") == "pflash" and kv.get("unit", "0") == "0" and self.firmware is None:
                    self.firmware = kv.get("file")
            elif a == "-kernel":
                self.kernel = v
            elif a == "-initrd":
                self.initrd = v
            elif a == "-append":
                self.cmdline = v
            elif a == "-smp":
                self.smp = smp_cpus(v)
            elif a == "-cpu":
                self.cpu = v
            elif a == "-m":
                try:
                    self.memory = parse_size(v)
                except ValueError:
                    pass
            elif a == "-chardev":
                items = split_kv(v)
                kv = dict(item.partition("=")[::2] for item in items[1:])
                if items[0] == "socket" and kv.get("id") == self.monitor_chardev and "fd" in kv:
                    self.monitor_fd = int(kv["fd"])
                elif items[0] == "socket" and kv.get("id") == self.agent_chardev and "fd" in kv:
                    # The wrapper serves libvirt's agent socket (no guest OS runs in QEMU);
                    # QEMU's port gets a null backend.
                    self.agent_fd = int(kv["fd"])
                    v = f"null,id={self.agent_chardev}"
            out += [a, v]
        # pflash firmware: follow machine pflash0=NODE -> format node -> file node's filename
        if self.firmware is None and "pflash0" in pflash_nodes:
            nodes = {bd.get("node-name"): bd for bd in pflash_nodes.get("_blockdevs", [])}
            node = nodes.get(pflash_nodes["pflash0"])
            for _ in range(4):
                if node is None:
                    break
                if "filename" in node:
                    self.firmware = node["filename"]
                    break
                nxt = node.get("file")
                node = nodes.get(nxt) if isinstance(nxt, str) else nxt
        return out

    def real_args(self, monitor_path, args=None):
        """Arguments for the real QEMU: monitor on a path we connect to, kernel kept only if QEMU
        could load it (tiny random test kernels are measured but not given to QEMU)."""
        out, i = [], 0
        args = self.qemu_args if args is None else args
        keep_kernel = self.kernel is not None and looks_like_bzimage(self.kernel)
        while i < len(args):
            a = args[i]
            v = args[i + 1] if i + 1 < len(args) else None
            if a in ("-kernel", "-initrd", "-append") and not keep_kernel:
                i += 2
                continue
            if a == "-chardev" and v is not None and self.monitor_fd is not None:
                items = split_kv(v)
                kv = dict(item.partition("=")[::2] for item in items[1:])
                if items[0] == "socket" and kv.get("id") == self.monitor_chardev:
                    v = f"socket,id={self.monitor_chardev},path={monitor_path},server=on,wait=off"
                    out += [a, v]
                    i += 2
                    continue
            out.append(a)
            i += 1
        if self.kernel is not None and not keep_kernel:
            log(f"kernel {self.kernel} is not a bzImage: measured, but not given to QEMU")
        return out

    def info(self):
        out = {
            "name": self.name, "uuid": self.uuid, "firmware": self.firmware,
            "kernel": self.kernel, "initrd": self.initrd, "cmdline": self.cmdline,
            "kernel_hashes": self.kernel_hashes, "policy": self.policy, "smp": self.smp,
            "cpu": self.cpu, "paused": self.paused,
            "sev_type": "sev-snp" if self.snp else "sev",
        }
        if self.snp:
            out.update({"id_block": self.id_block, "id_auth": self.id_auth,
                        "host_data": self.host_data, "guest_visible_workarounds": self.gosvw,
                        "author_key_enabled": self.author_key_enabled,
                        "vcek_disabled": self.vcek_disabled})
        return out


def looks_like_bzimage(path):
    try:
        with open(path, "rb") as f:
            head = f.read(0x206)
        return len(head) == 0x206 and head[0x202:0x206] == b"HdrS"
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# The simulated SEV firmware state of one guest


class SevGuest:
    def __init__(self, cfg, launch):
        import sev_sp  # needs python3-cryptography; only domain runs pay for it

        self.sp = sev_sp
        self.cfg = cfg
        self.launch = launch
        if not cfg.get("tik") or not cfg.get("tek"):
            raise StartError("SEV simulation needs a configuration: set SEV_WRAPPER_CONFIG to a "
                             "JSON file naming the tik and tek files")
        self.qemu_pid = os.getpid()  # domain_run execs QEMU in this process
        self.api_major = int(cfg.get("api_major", 1))
        self.api_minor = int(cfg.get("api_minor", 55))
        self.build_id = int(cfg.get("build_id", 21))
        with open(cfg["tik"], "rb") as f:
            self.tik = f.read()
        with open(cfg["tek"], "rb") as f:
            self.tek = f.read()
        self.state = "launch-secret" if launch.paused else "running"
        self.mnonce = secrets.token_bytes(16)
        self.signature = None
        self.ld = self._launch_digest()
        mac = sev_sp.measure_mac(self.tik, self.api_major, self.api_minor, self.build_id,
                                 launch.policy, self.ld, self.mnonce)
        self.measurement = mac + self.mnonce

    def _launch_digest(self):
        sp, ln = self.sp, self.launch
        if not ln.firmware:
            raise StartError("SEV: no firmware (-bios or pflash) to measure")
        h = sp.sha256_file(ln.firmware)
        if ln.kernel and ln.kernel_hashes:
            data = sp.ovmf_footer_entries(ln.firmware).get(sp.GUID_HASH_AREA)
            base, size = struct.unpack_from("<II", data) if data and len(data) >= 8 else (0, 0)
            if base == 0 or size < sp.HASH_TABLE_SIZE:
                raise StartError(f"SEV: guest firmware hashes table area is invalid "
                                 f"(base=0x{base:x} size=0x{size:x})")
            cmdline = os.fsencode(ln.cmdline) if ln.cmdline is not None else None
            h.update(sp.kernel_hash_table(ln.kernel, ln.initrd, cmdline))
        if ln.policy & sp.POLICY_ES:
            sig, _ = cpu_signature(ln.cpu)
            self.signature = sig
            bsp = sp.build_vmsa(sp.BSP_EIP, sig)
            pages = [bsp]
            if ln.smp > 1:
                try:
                    ap_eip = sp.ap_reset_address(ln.firmware)
                except sp.Failure:
                    raise StartError("SEV: SEV-ES guest requires the OVMF SEV-ES reset block")
                pages += [sp.build_vmsa(ap_eip, sig)] * (ln.smp - 1)
            for p in pages:
                h.update(p)
        return h.digest()

    def secret_area_gpa(self):
        data = self.sp.ovmf_footer_entries(self.launch.firmware).get(GUID_SECRET_BLOCK)
        if data is None or len(data) < 4:
            return None
        return struct.unpack_from("<I", data)[0]

    def record_cont(self, state_before, error):
        """Every `cont` QEMU answered, with the SEV state it found (tests check that a guest
        was, or was not, continued)."""
        append_record(self.cfg, "conts", {
            "time": time.time(), "domain": self.launch.name, "uuid": self.launch.uuid,
            "pid": self.qemu_pid, "state_before": state_before, "ok": error is None,
            "error": error})

    # QMP commands ---------------------------------------------------------------------------

    def query_sev(self):
        return {"enabled": True, "api-major": self.api_major, "api-minor": self.api_minor,
                "build-id": self.build_id, "policy": self.launch.policy,
                "state": self.state, "handle": 1, "sev-type": "sev"}

    def query_launch_measure(self):
        return {"data": base64.b64encode(self.measurement).decode()}, None

    def on_cont(self):
        if self.state == "launch-secret":
            self.state = "running"  # LAUNCH_FINISH happens when the vCPUs start
            log("cont: SEV state running")

    def inject(self, arguments):
        """sev-inject-launch-secret; returns (reply dict or None, error string or None)."""
        hdr_b64 = arguments.get("packet-header")
        sec_b64 = arguments.get("secret")
        if not isinstance(hdr_b64, str):
            return None, "Parameter 'packet-header' is missing"
        if not isinstance(sec_b64, str):
            return None, "Parameter 'secret' is missing"
        has_gpa = "gpa" in arguments
        gpa = arguments.get("gpa")
        if has_gpa and not isinstance(gpa, int):
            return None, "Invalid parameter type for 'gpa', expected: integer"
        if not has_gpa:
            gpa = self.secret_area_gpa()
            if gpa is None:
                return None, "SEV: no secret area found in OVMF, gpa must be specified."
        if self.state != "launch-secret":
            return None, f"SEV: Not in correct state. (LSECRET) {SEV_STATE_NUM.get(self.state, 3):x}"
        hdr = lenient_b64(hdr_b64)
        if not hdr:
            return None, "SEV: Failed to decode sequence header"
        data = lenient_b64(sec_b64)
        if not data:
            return None, "SEV: Failed to decode data"
        if gpa + len(data) > self.launch.memory:
            return None, f"SEV: Failed to calculate guest address: No memory at address 0x{gpa:x}"

        record = {"time": time.time(), "domain": self.launch.name, "uuid": self.launch.uuid,
                  "gpa": gpa, "gpa_given": has_gpa, "header_b64": hdr_b64, "secret_b64": sec_b64,
                  "measurement_b64": base64.b64encode(self.measurement).decode()}
        err = None
        if len(hdr) != self.sp.SECRET_HDR_LEN:
            err = 4
        else:
            flags, iv, mac = struct.unpack("<I16s32s", hdr)
            want = self.sp.secret_header_mac(self.tik, flags, iv, data, self.measurement[:32])
            if not hmac.compare_digest(mac, want):
                err = 11
        if err is not None:
            record.update(accepted=False, fw_error=err)
            append_record(self.cfg, "injections", record)
            return None, (f"SEV: failed to inject secret ret=-5 fw_error={err} "
                          f"'{FW_ERRORS[err]}'")

        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        dec = Cipher(algorithms.AES(self.tek), modes.CTR(iv)).decryptor()
        plain = dec.update(data) + dec.finalize()
        entries, table_error = lenient_secret_table(plain)
        try:
            self.sp.parse_secret_table(plain)
            strict_error = None
        except self.sp.Failure as e:
            strict_error = str(e)
        record.update(accepted=True, flags=flags, plaintext_hex=plain.hex(),
                      entries=[{"guid": g, "data_hex": d.hex()} for g, d in entries],
                      table_error=table_error, strict_error=strict_error)
        append_record(self.cfg, "injections", record)
        log(f"injected {len(entries)} secrets at gpa 0x{gpa:x} (strict: {strict_error or 'ok'})")
        return {}, None


class SnpGuest:
    """The simulated SEV-SNP firmware of one guest, as QEMU 10.0 shows it on QMP.

    The launch digest is computed by PyPI sev-snp-measure (the `sevsnpmeasure` package, which
    the tests copy next to this file: it is not part of the project) over what QEMU really got:
    the -bios file, the kernel hash table (kernel-hashes with -kernel), one INIT2 VMSA per -smp
    vCPU with the -cpu signature and SEV features 0x1 (SNPActive, QEMU's default). At `cont`
    (SNP_LAUNCH_FINISH runs when the vCPUs start) an ID block is checked as the firmware does;
    on failure QEMU reports it and exits, as on hardware."""

    SEV_FEATURES = 0x1

    def __init__(self, cfg, launch):
        self.cfg = cfg
        self.launch = launch
        self.qemu_pid = os.getpid()  # domain_run execs QEMU in this process
        self.api_major = int(cfg.get("api_major", 1))
        self.api_minor = int(cfg.get("api_minor", 55))
        self.build_id = int(cfg.get("snp_build_id", 24))
        self.state = "launch-update"
        self.measurement = None  # SNP has no host-visible measurement
        self.err_fd = None  # QEMU's stderr (the domain log), for the LAUNCH_FINISH error
        self.finished = None  # the LAUNCH_FINISH verdict, once run
        sig, _ = cpu_signature(launch.cpu)
        self.signature = sig
        self.ld = self._launch_digest()

    def _launch_digest(self):
        ln = self.launch
        if not ln.firmware:
            raise StartError("SEV-SNP: no -bios firmware to measure (SNP needs ROM firmware)")
        try:
            from sevsnpmeasure import guest as snp_guest
            from sevsnpmeasure.vmm_types import VMMType
        except ImportError as e:
            raise StartError(f"SEV-SNP simulation needs the sevsnpmeasure package (PyPI "
                             f"sev-snp-measure) next to {__file__}: {e}")
        kernel = ln.kernel if ln.kernel_hashes else None
        try:
            return snp_guest.snp_calc_launch_digest(
                ln.smp, self.signature, ln.firmware, kernel, ln.initrd if kernel else None,
                (ln.cmdline or "") if kernel else None, self.SEV_FEATURES, "", VMMType.QEMU)
        except Exception as e:  # what sev-snp-measure refuses, QEMU refuses too
            raise StartError(f"SEV-SNP: cannot measure the launch: {e}")

    # SNP_LAUNCH_FINISH ----------------------------------------------------------------------

    def launch_finish(self):
        """Checks the ID block as SNP_LAUNCH_FINISH does. Returns the verdict (recorded) with
        `fw_error` None when the launch may finish."""
        ln = self.launch
        verdict = {"time": time.time(), "domain": ln.name, "uuid": ln.uuid,
                   "ld_hex": self.ld.hex(), "id_block": ln.id_block is not None,
                   "checks": {}, "fw_error": None}
        checks = verdict["checks"]
        if ln.id_block is not None:
            verdict["fw_error"] = self._check_id_block(checks)
        if verdict["fw_error"] is not None:
            verdict["error"] = FW_ERROR_TEXT[verdict["fw_error"]]
        verdict["ok"] = verdict["fw_error"] is None
        self.finished = verdict
        append_record(self.cfg, "launch_finish", verdict)
        log(f"SNP_LAUNCH_FINISH {ln.name}: {json.dumps(verdict)}")
        return verdict

    def _check_id_block(self, checks):
        """The firmware's order: ID block signature, ID key signature (author key), then the
        digest, then the policy. Returns the fw_error of the first failure, or None."""
        ln = self.launch
        block = lenient_b64(ln.id_block)
        auth = lenient_b64(ln.id_auth) if ln.id_auth is not None else b""
        checks["id_block_len"] = len(block) == 96
        checks["id_auth_len"] = len(auth) == 4096
        if not (checks["id_block_len"] and checks["id_auth_len"]):
            return SEV_RET_BAD_SIGNATURE
        id_algo, author_algo = struct.unpack_from("<II", auth, 0)
        id_key = auth[0x240:0x240 + 0x404]
        checks["id_block_signature"] = (
            id_algo == 1 and snp_verify(id_key, auth[0x40:0x40 + 0x200], block))
        checks["id_key_digest_hex"] = sha384(id_key).hex()
        if not checks["id_block_signature"]:
            return SEV_RET_BAD_SIGNATURE
        if ln.author_key_enabled:
            author_key = auth[0x880:0x880 + 0x404]
            checks["id_key_signature"] = (
                author_algo == 1 and snp_verify(author_key, auth[0x680:0x680 + 0x200], id_key))
            checks["author_key_digest_hex"] = sha384(author_key).hex()
            if not checks["id_key_signature"]:
                return SEV_RET_BAD_SIGNATURE
        checks["id_block_ld_hex"] = block[:48].hex()
        checks["ld"] = block[:48] == self.ld
        if not checks["ld"]:
            return SEV_RET_BAD_MEASUREMENT
        (policy,) = struct.unpack_from("<Q", block, 0x58)
        checks["id_block_policy"] = policy
        checks["policy"] = policy == ln.policy
        if not checks["policy"]:
            return SEV_RET_POLICY_FAILURE
        return None

    def fail_launch(self, verdict):
        """What QEMU 10 does when SNP_LAUNCH_FINISH fails: error_report, then exit(1)."""
        line = (f"{os.path.basename(self.cfg.get('real_qemu', REAL_QEMU_DEFAULT))}: "
                f"SNP_LAUNCH_FINISH ret=-5 fw_error={verdict['fw_error']} "
                f"'{verdict['error']}'\n")
        if self.err_fd is not None:
            try:
                os.write(self.err_fd, line.encode())
            except OSError:
                pass
        log(line.strip())
        try:
            os.kill(self.qemu_pid, 9)
        except OSError:
            pass

    def record_cont(self, state_before, error):
        append_record(self.cfg, "conts", {
            "time": time.time(), "domain": self.launch.name, "uuid": self.launch.uuid,
            "pid": self.qemu_pid, "state_before": state_before, "ok": error is None,
            "error": error})

    def on_cont(self):
        if self.state == "launch-update":
            self.state = "running"
            log("cont: SEV-SNP state running")

    # QMP commands ---------------------------------------------------------------------------

    def query_sev(self):
        return {"enabled": True, "api-major": self.api_major, "api-minor": self.api_minor,
                "build-id": self.build_id, "state": self.state, "sev-type": "sev-snp",
                "snp-policy": self.launch.policy}

    def query_launch_measure(self):
        return None, "SEV launch measurement is not available"

    def inject(self, arguments):
        hdr_b64, sec_b64 = arguments.get("packet-header"), arguments.get("secret")
        if not isinstance(hdr_b64, str):
            return None, "Parameter 'packet-header' is missing"
        if not isinstance(sec_b64, str):
            return None, "Parameter 'secret' is missing"
        if "gpa" not in arguments and secret_area_gpa(self.launch.firmware) is None:
            return None, "SEV: no secret area found in OVMF, gpa must be specified."
        # SNP guests never reach the LAUNCH_SECRET state.
        return None, f"SEV: Not in correct state. (LSECRET) {SEV_STATE_NUM[self.state]:x}"


def sha384(data):
    import hashlib

    return hashlib.sha384(data).digest()


def snp_verify(pubkey, sig, data):
    """ECDSA P-384 / SHA-384 signature in the SNP format (R, S little-endian, 72 bytes each)
    by a public key in the SNP format (curve 2, Qx, Qy little-endian, 72 bytes each)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    if len(pubkey) < 4 + 144 or len(sig) < 144 or struct.unpack_from("<I", pubkey)[0] != 2:
        return False
    le = lambda b: int.from_bytes(b, "little")  # noqa: E731
    try:
        key = ec.EllipticCurvePublicNumbers(le(pubkey[4:76]), le(pubkey[76:148]),
                                            ec.SECP384R1()).public_key()
        key.verify(utils.encode_dss_signature(le(sig[0:72]), le(sig[72:144])), data,
                   ec.ECDSA(hashes.SHA384()))
        return True
    except (InvalidSignature, ValueError):
        return False


def secret_area_gpa(firmware):
    import sev_sp

    try:
        data = sev_sp.ovmf_footer_entries(firmware).get(GUID_SECRET_BLOCK)
    except Exception:
        return None
    if data is None or len(data) < 4:
        return None
    return struct.unpack_from("<I", data)[0]


class StartError(Exception):
    pass


def lenient_b64(text):
    try:
        return base64.b64decode("".join(text.split()) + "==", validate=False)
    except ValueError:
        return b""


def lenient_secret_table(plain):
    """Walk the table as the Linux efi_secret driver does; returns (entries, error or None)."""
    import sev_sp

    if len(plain) < 20 or plain[:16] != sev_sp.GUID_SECRET_TABLE:
        return [], "secret table header GUID missing"
    (total,) = struct.unpack_from("<I", plain, 16)
    total = min(total, len(plain))
    entries, pos = [], 20
    while pos + 20 <= total:
        guid = plain[pos:pos + 16]
        (length,) = struct.unpack_from("<I", plain, pos + 16)
        if guid == bytes(16):
            break
        if length < 20 or pos + length > total:
            return entries, f"secret entry at {pos} has bad length {length}"
        entries.append((str(uuid.UUID(bytes_le=guid)), plain[pos + 20:pos + length]))
        pos += length
    return entries, None


def append_record(cfg, kind, record):
    path = cfg.get("record")
    if not path:
        return
    fd = os.open(path + ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = {}
        data.setdefault("launches", [])
        data.setdefault("injections", [])
        data.setdefault(kind, [])
        data[kind].append(record)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# QMP proxy


def capabilities_reply(cfg):
    seed = str(cfg.get("tik", "sev")).encode()
    rnd = lambda n, tag: (hmac.new(seed, tag, "sha256").digest() * (n // 32 + 1))[:n]  # noqa: E731
    return {"pdh": base64.b64encode(rnd(2084, b"pdh")).decode(),
            "cert-chain": base64.b64encode(rnd(7200, b"chain")).decode(),
            "cpu0-id": base64.b64encode(rnd(64, b"cpu0")).decode(),
            "cbitpos": int(cfg.get("cbitpos", 51)),
            "reduced-phys-bits": int(cfg.get("reduced_phys_bits", 1))}


class Proxy:
    """Relays QMP between one client (libvirt, or whoever connects in a direct run) and real
    QEMU (upstream), answering SEV commands. One Proxy per connection: the negotiation state is
    the connection's, the SevGuest is shared (guarded by `lock`)."""

    def __init__(self, cfg, guest, lock=None):
        self.cfg = cfg
        self.guest = guest  # None in probe runs
        self.lock = lock if lock is not None else threading.Lock()
        self.negotiated = False
        self.pending_cont = {}  # json id -> SEV state when `cont` was sent
        self.events = []  # events of the simulated guest, sent to the client after a reply

    def handle_command(self, msg):
        """Returns a reply dict to send to the client, or None to forward the command."""
        cmd = msg.get("execute")
        args = msg.get("arguments") or {}
        ours = {"query-sev-capabilities"}
        if self.guest is not None:
            ours |= {"query-sev", "query-sev-launch-measure", "sev-inject-launch-secret"}
        if cmd == "qmp_capabilities":
            self.negotiated = True
            return None
        if cmd == "cont":
            before = self.guest.state if self.guest is not None else None
            if isinstance(self.guest, SnpGuest) and before == "launch-update":
                verdict = self.guest.launch_finish()
                if not verdict["ok"]:
                    # QEMU exits inside `cont`: no reply, the monitor just closes.
                    self.guest.record_cont(before, verdict["error"])
                    self.guest.fail_launch(verdict)
                    return DROP
            self.pending_cont[json.dumps(msg.get("id"))] = before
            return None
        if cmd not in ours:
            return None
        if not self.negotiated:
            return error_reply(msg, "CommandNotFound",
                               "Expecting capabilities negotiation with 'qmp_capabilities'")
        log(f"answering {cmd}")
        if cmd == "query-sev-capabilities":
            return ok_reply(msg, capabilities_reply(self.cfg))
        if cmd == "query-sev":
            return ok_reply(msg, self.guest.query_sev())
        if cmd == "query-sev-launch-measure":
            ret, err = self.guest.query_launch_measure()
            if err:
                return error_reply(msg, "GenericError", err)
            return ok_reply(msg, ret)
        ret, err = self.guest.inject(args)
        if err:
            log(f"sev-inject-launch-secret: {err}")
            return error_reply(msg, "GenericError", err)
        return ok_reply(msg, ret)

    def handle_reply(self, msg):
        key = json.dumps(msg.get("id"))
        if "return" in msg and key in self.pending_cont:
            before = self.pending_cont.pop(key)
            if self.guest is not None:
                self.guest.record_cont(before, None)
                self.guest.on_cont()
                device = self.guest.launch.agent_device
                if device is not None and self.guest.launch.agent_fd is not None:
                    # The guest "booted": its agent opens the port, as QEMU reports it.
                    now = time.time()
                    self.events.append({"timestamp": {"seconds": int(now),
                                                      "microseconds": int(now % 1 * 1e6)},
                                        "event": "VSERPORT_CHANGE",
                                        "data": {"id": device, "open": True}})
        elif "error" in msg:
            before = self.pending_cont.pop(key, None)
            if self.guest is not None and before is not None:
                self.guest.record_cont(before, msg["error"])

    def relay(self, client, upstream):
        """Relay until one side closes. Returns 'client' or 'upstream' (who closed)."""
        cbuf = ubuf = b""
        while True:
            r, _, _ = select.select([client, upstream], [], [])
            if client in r:
                data = client.recv(65536)
                if not data:
                    return "client"
                cbuf += data
                while b"\n" in cbuf:
                    line, cbuf = cbuf.split(b"\n", 1)
                    reply = msg = None
                    try:
                        msg = json.loads(line)
                        if isinstance(msg, dict):
                            with self.lock:
                                reply = self.handle_command(msg)
                    except ValueError:
                        pass
                    except Exception:  # a simulator bug must not kill the monitor
                        log(traceback.format_exc())
                        reply = error_reply(msg, "GenericError", "simulator internal error")
                    if reply is DROP:
                        pass
                    elif reply is None:
                        upstream.sendall(line + b"\n")
                    else:
                        client.sendall(json.dumps(reply).encode() + b"\r\n")
            if upstream in r:
                data = upstream.recv(65536)
                if not data:
                    return "upstream"
                ubuf += data
                while b"\n" in ubuf:
                    line, ubuf = ubuf.split(b"\n", 1)
                    try:
                        msg = json.loads(line)
                        if isinstance(msg, dict):
                            with self.lock:
                                self.handle_reply(msg)
                    except ValueError:
                        pass
                    client.sendall(line + b"\n")
                    while self.events:
                        client.sendall(json.dumps(self.events.pop(0)).encode() + b"\r\n")


# handle_command's answer for a command that gets no reply and is not forwarded.
DROP = object()


def ok_reply(msg, ret):
    out = {"return": ret}
    if "id" in msg:
        out["id"] = msg["id"]
    return out


def error_reply(msg, cls, desc):
    out = {"error": {"class": cls, "desc": desc}}
    if isinstance(msg, dict) and "id" in msg:
        out["id"] = msg["id"]
    return out


def connect_upstream(path, alive, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if not alive():
                return None
            time.sleep(0.02)
    return None


def detach_stdio(log_path, keep=()):
    """For the proxy child: stdio to /dev/null and the log, every other fd but `keep` closed
    (it must not hold libvirt's pipes or QEMU's files open)."""
    global LOG
    fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    LOG = None
    last = 3
    for k in sorted(keep):
        os.closerange(last, k)
        last = k + 1
    os.closerange(last, os.sysconf("SC_OPEN_MAX") if os.sysconf("SC_OPEN_MAX") < 65536 else 65536)
    LOG = os.fdopen(os.dup(1), "a")


# --------------------------------------------------------------------------------------------
# Runs


def run_dir(cfg):
    d = cfg.get("run_dir") or os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    os.makedirs(d, exist_ok=True)
    return d


def probe_run(cfg, real_qemu, args):
    """-qmp unix:PATH,server=on,wait=off ... -daemonize: proxy PATH to a socket of our own."""
    i = args.index("-qmp")
    spec = args[i + 1]
    if not spec.startswith("unix:"):
        os.execv(real_qemu, [real_qemu] + args)
    items = split_kv(spec[len("unix:"):])
    client_path = items[0]
    real_path = os.path.join(run_dir(cfg), f"probe-{os.getpid()}.sock")
    new_args = list(args)
    new_args[i + 1] = "unix:" + join_kv([real_path] + items[1:])

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(client_path)
    listener.listen(4)
    logpath = os.path.join(run_dir(cfg), "wrapper.log")

    pid = os.fork()
    if pid == 0:  # proxy daemon: outlives this process, like QEMU's -daemonize child
        try:
            os.setsid()
            detach_stdio(logpath, keep=(listener.fileno(),))
            listener.settimeout(120)
            try:
                client, _ = listener.accept()
            except socket.timeout:
                os._exit(0)
            listener.close()
            upstream = connect_upstream(real_path, lambda: True, timeout=30)
            if upstream is None:
                log(f"probe: cannot reach {real_path}")
                os._exit(1)
            Proxy(cfg, None).relay(client, upstream)
        except Exception:
            log(traceback.format_exc())
        finally:
            try:
                os.unlink(real_path)
            except OSError:
                pass
            os._exit(0)
    listener.close()
    import subprocess

    rc = subprocess.call([real_qemu] + new_args)
    if rc != 0:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    sys.exit(rc)


def apply_tamper(cfg, launch):
    """Tests can make the "host" launch something other than what libvirt asked for (a
    compromised host): run_dir/tamper-NAME.json overrides what is measured (firmware, kernel,
    initrd, cmdline, smp, cpu). The domain XML and the QEMU command line stay honest-looking."""
    path = os.path.join(run_dir(cfg), f"tamper-{launch.name}.json")
    try:
        with open(path) as f:
            over = json.load(f)
    except (OSError, ValueError):
        return None
    for key in ("firmware", "kernel", "initrd", "cmdline", "smp", "cpu"):
        if key in over:
            setattr(launch, key, over[key])
    log(f"domain {launch.name}: TAMPERED launch {over}")
    return over


def opt_on(kv, name):
    """A QEMU on/off option given as `name`, `name=on` (or yes/true/1)."""
    return name in kv and (kv[name] == "" or truthy(kv[name]))


class DirectMonitor:
    """A QMP server socket the caller asked QEMU to listen on (direct runs): the wrapper listens
    there itself and real QEMU gets `real_path` instead."""

    def __init__(self, kind, address, real_path):
        self.kind = kind  # "unix" or "tcp"
        self.address = address  # path, or (host, port)
        self.real_path = real_path
        self.listener = None
        self.inode = None

    def bind(self):
        if self.kind == "unix":
            try:  # as QEMU does: a stale socket file does not stop a new server
                os.unlink(self.address)
            except FileNotFoundError:
                pass
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(self.address)
            self.inode = os.stat(self.address).st_ino
        else:
            host, port = self.address
            infos = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
            fam, typ, proto, _, sa = infos[0]
            s = socket.socket(fam, typ, proto)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(sa)
        s.listen(8)
        self.listener = s

    def cleanup(self):
        """Removes the socket file we bound (QEMU removes its own at exit)."""
        if self.kind != "unix" or self.inode is None:
            return
        try:
            if os.stat(self.address).st_ino == self.inode:
                os.unlink(self.address)
        except OSError:
            pass

    def describe(self):
        if self.kind == "unix":
            return f"unix:{self.address}"
        return f"tcp:{self.address[0]}:{self.address[1]}"


def take_direct_monitors(launch, rdir):
    """Direct runs: finds the QMP server sockets of `-qmp unix:|tcp:...,server...` and of
    `-chardev socket,...,server...` used by `-mon ...,mode=control`, and returns (QEMU's
    arguments with each pointed at a unix socket of ours in rdir, [DirectMonitor])."""
    args = list(launch.qemu_args)
    monitors = []

    def real_path():
        return os.path.join(rdir, f"mon-{os.getpid()}-{len(monitors)}.sock")

    def unix_opts(opts):
        return [o for o in opts if o.partition("=")[0] not in TCP_ONLY_OPTS]

    for i in range(len(args) - 1):
        a, v = args[i], args[i + 1]
        if a in ("-qmp", "--qmp"):
            items = split_kv(v)
            addr, opts = items[0], items[1:]
            kv = dict(item.partition("=")[::2] for item in opts)
            if not opt_on(kv, "server") or opt_on(kv, "abstract"):
                log(f"-qmp {v}: not a QMP server socket this wrapper can serve")
                continue
            if addr.startswith("unix:"):
                mon = DirectMonitor("unix", addr[len("unix:"):], real_path())
            elif addr.startswith("tcp:"):
                host, _, port = addr[len("tcp:"):].rpartition(":")
                mon = DirectMonitor("tcp", (host.strip("[]"), port), real_path())
            else:
                log(f"-qmp {v}: not a unix: or tcp: socket, SEV commands not simulated there")
                continue
            args[i + 1] = "unix:" + join_kv([mon.real_path] + unix_opts(opts))
            monitors.append(mon)
        elif a in ("-chardev", "--chardev"):
            items = split_kv(v)
            kv = dict(item.partition("=")[::2] for item in items[1:])
            if (items[0] != "socket" or kv.get("id") not in launch.control_chardevs
                    or "fd" in kv or not opt_on(kv, "server") or opt_on(kv, "abstract")):
                continue
            if "path" in kv:
                mon = DirectMonitor("unix", kv["path"], real_path())
            elif "port" in kv:
                mon = DirectMonitor("tcp", (kv.get("host", ""), kv["port"]), real_path())
            else:
                continue
            kept = [it for it in unix_opts(items[1:]) if it.partition("=")[0] != "path"]
            args[i + 1] = join_kv([items[0]] + kept + [f"path={mon.real_path}"])
            monitors.append(mon)
    return args, monitors


def serve(cfg, guest, monitors, alive):
    """Accepts clients on every (listener, real QEMU socket) pair while QEMU lives, each in a
    thread of its own with its own Proxy; the SevGuest is shared under one lock."""
    lock = threading.Lock()
    listeners = dict(monitors)
    while alive():
        r, _, _ = select.select(list(listeners), [], [], 0.5)
        for lst in r:
            try:
                client, _ = lst.accept()
            except OSError:
                continue
            threading.Thread(target=serve_client, daemon=True,
                             args=(cfg, guest, lock, client, listeners[lst], alive)).start()


def serve_client(cfg, guest, lock, client, real_path, alive):
    upstream = None
    try:
        upstream = connect_upstream(real_path, alive)
        if upstream is None:
            log(f"cannot reach QEMU's monitor {real_path}")
            return
        who = Proxy(cfg, guest, lock).relay(client, upstream)
        log(f"monitor connection closed by {who}")
    except OSError as e:  # a client that went away mid-reply
        log(f"monitor connection: {e}")
    except Exception:
        log(traceback.format_exc())
    finally:
        for s in (client, upstream):
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass


def domain_run(cfg, real_qemu, args):
    launch = Launch(args)
    if not launch.sev and not launch.snp:
        os.execv(real_qemu, [real_qemu] + args)
    tampered = apply_tamper(cfg, launch)
    prog = os.path.basename(real_qemu)
    try:
        guest = SnpGuest(cfg, launch) if launch.snp else SevGuest(cfg, launch)
    except StartError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        sys.exit(1)

    # libvirt hands QEMU its monitor as a listening fd; owners running QEMU by hand name a
    # socket QEMU should listen on (direct run).
    direct, direct_args = [], None
    if launch.monitor_fd is None:
        direct_args, direct = take_direct_monitors(launch, run_dir(cfg))
        if direct and any(a in ("-daemonize", "--daemonize") for a in args):
            print(f"{prog}: SEV simulation: -daemonize is not supported in direct runs",
                  file=sys.stderr)
            sys.exit(1)
        try:
            for mon in direct:
                mon.bind()
        except OSError as e:
            print(f"{prog}: cannot listen on {mon.describe()}: {e}", file=sys.stderr)
            sys.exit(1)

    info = launch.info()
    info.update(tampered=tampered, time=time.time(), pid=os.getpid(), ld_hex=guest.ld.hex(),
                measurement_b64=(base64.b64encode(guest.measurement).decode()
                                 if guest.measurement is not None else None),
                signature=guest.signature, api=[guest.api_major, guest.api_minor, guest.build_id],
                mode="libvirt" if launch.monitor_fd is not None else "direct",
                monitors=[m.describe() for m in direct])
    if launch.snp:
        info["sev_features"] = guest.SEV_FEATURES
    append_record(cfg, "launches", info)
    log(f"domain {launch.name}: {json.dumps(info)}")

    if launch.snp and not launch.paused:
        # Started running (no -S): SNP_LAUNCH_FINISH runs before the vCPUs start.
        verdict = guest.launch_finish()
        if not verdict["ok"]:
            print(f"{prog}: SNP_LAUNCH_FINISH ret=-5 fw_error={verdict['fw_error']} "
                  f"'{verdict['error']}'", file=sys.stderr)
            sys.exit(1)
        guest.state = "running"
    # QEMU's stderr (libvirt's domain log, or the caller's): the proxy child reports a failed
    # SNP_LAUNCH_FINISH there, as QEMU would.
    guest.err_fd = os.dup(2)

    if launch.monitor_fd is None and not direct:
        log("no monitor fd and no QMP server socket: SEV commands cannot be simulated")
        os.execv(real_qemu, [real_qemu] + launch.qemu_args)

    real_path = os.path.join(run_dir(cfg), f"mon-{os.getpid()}.sock")
    qemu_pid = os.getpid()
    logpath = os.path.join(run_dir(cfg), "wrapper.log")
    pid = os.fork()
    if pid == 0:
        try:
            if direct:
                detach_stdio(logpath, keep=[m.listener.fileno() for m in direct] + [guest.err_fd])
                monitors = [(m.listener, m.real_path) for m in direct]
            else:
                agent = () if launch.agent_fd is None else (launch.agent_fd,)
                detach_stdio(logpath, keep=(launch.monitor_fd, guest.err_fd) + agent)
                monitors = [(socket.socket(fileno=launch.monitor_fd), real_path)]
                if agent:
                    path = os.path.join(run_dir(cfg), f"agent-{launch.name}.sock")
                    threading.Thread(target=guest_agent.relay, daemon=True,
                                     args=(socket.socket(fileno=launch.agent_fd), path, log,
                                           lambda: os.getppid() == qemu_pid)).start()
            serve(cfg, guest, monitors, lambda: os.getppid() == qemu_pid)
        except Exception:
            log(traceback.format_exc())
        finally:
            for _, path in ([(None, real_path)] + [(None, m.real_path) for m in direct]):
                try:
                    os.unlink(path)
                except OSError:
                    pass
            for m in direct:
                m.cleanup()
            os._exit(0)
    os.close(guest.err_fd)
    if direct:
        for m in direct:
            m.listener.close()
        os.execv(real_qemu, [real_qemu] + launch.real_args(None, direct_args))
    os.close(launch.monitor_fd)
    if launch.agent_fd is not None:
        os.close(launch.agent_fd)
    os.execv(real_qemu, [real_qemu] + launch.real_args(real_path))


def has_sev_guest(args):
    for i, a in enumerate(args[:-1]):
        if a in ("-object", "--object"):
            try:
                if parse_object(args[i + 1]).get("qom-type") in SEV_OBJECTS:
                    return True
            except ValueError:
                pass
    return False


def main():
    global LOG
    cfg = load_config()
    real_qemu = cfg.get("real_qemu", REAL_QEMU_DEFAULT)
    args = sys.argv[1:]
    try:
        LOG = open(os.path.join(run_dir(cfg), "wrapper.log"), "a")
    except OSError:
        LOG = None
    log("argv: " + " ".join(args))
    if "-qmp" in args and "-daemonize" in args and not has_sev_guest(args):
        probe_run(cfg, real_qemu, args)
    elif any(a in ("-object", "--object") for a in args):
        domain_run(cfg, real_qemu, args)
    os.execv(real_qemu, [real_qemu] + args)


if __name__ == "__main__":
    main()
