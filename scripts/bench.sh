#!/usr/bin/env bash
# Benchmark our virt-qemu-sev-validate against Debian's Python tool.
#
# Both tools get the same generated inputs and the same (correct) launch
# measurement; each must validate it (exit 0) before anything is timed.
# Reports the median wall time and the peak RSS of each tool, and ours/python.
#
# Environment:
#   BENCH_RUNS=N     timed runs per tool and case (default 5)
#   BENCH_BIG=1      also run the SEV case with a 400 MiB initrd
#   BENCH_STRICT=1   exit 1 if a target (see benches/README.md) is missed
#   PY_TOOL, PYTHON  the Python tool and its interpreter
#                    (default /usr/bin/virt-qemu-sev-validate, /usr/bin/python3)
#   OVMF_SRC         OVMF image to embed in the 4 MiB firmware
#                    (default /usr/share/ovmf/OVMF.fd)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${BENCH_RUNS:-5}
BIG=${BENCH_BIG:-0}
STRICT=${BENCH_STRICT:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
PY_TOOL=${PY_TOOL:-/usr/bin/virt-qemu-sev-validate}
OVMF_SRC=${OVMF_SRC:-/usr/share/ovmf/OVMF.fd}
OURS=$ROOT/target/release/virt-qemu-sev-validate
TIME=/usr/bin/time

MIB=$((1024 * 1024))
FW_SIZE=$((4 * MIB))
KERNEL_SIZE=$((12 * MIB))
INITRD_SIZE=$((100 * MIB))
INITRD_BIG_SIZE=$((400 * MIB))
CMDLINE="console=ttyS0 root=/dev/vda1 ro quiet loglevel=3 systemd.show_status=0"
RSS_TARGET_MIB=16

die() { echo "bench.sh: ERROR: $*" >&2; exit 1; }
note() { echo "bench.sh: $*" >&2; }

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be a positive integer (got '$RUNS')"
[[ -x $PYTHON ]] || die "$PYTHON not found"
[[ -r $PY_TOOL ]] || die "$PY_TOOL not found (Debian package libvirt-clients-qemu)"
[[ -r $OVMF_SRC ]] || die "$OVMF_SRC not found (Debian package ovmf)"

if [[ ! -x $TIME ]]; then
    note "$TIME missing; installing Debian package 'time'"
    if [[ $(id -u) -eq 0 ]]; then
        apt-get install -y time >&2 || { apt-get update >&2 && apt-get install -y time >&2; }
    else
        sudo apt-get install -y time >&2
    fi
    [[ -x $TIME ]] || die "could not install $TIME"
fi

note "building ours: cargo build --release"
(cd "$ROOT" && cargo build --release) >&2 || die "cargo build --release failed"
[[ -x $OURS ]] || die "$OURS not built"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sev-bench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------- inputs ----
note "creating inputs in $TMP"

# 4 MiB firmware: random bytes, then the OVMF image at the very end (the
# footer table is found from the end of the file), with the SEV hash-table
# area entry (7255371f-...) patched to base 0x80FC00, size 0x400 so that a
# kernel-hashes table can be placed (our tool refuses --kernel otherwise).
ovmf_size=$(stat -c %s "$OVMF_SRC")
((ovmf_size <= FW_SIZE)) || die "$OVMF_SRC is larger than 4 MiB"
head -c $((FW_SIZE - ovmf_size)) /dev/urandom >"$TMP/firmware.fd"
cat "$OVMF_SRC" >>"$TMP/firmware.fd"
"$PYTHON" - "$TMP/firmware.fd" <<'EOF'
import struct, sys, uuid
FOOTER = uuid.UUID("96b582de-1fb2-45f7-baea-a366c55a082d").bytes_le
HASH_AREA = uuid.UUID("7255371f-3a3b-4b04-927b-1da6efa8d454").bytes_le
path = sys.argv[1]
with open(path, "r+b") as fh:
    data = bytearray(fh.read())
    end = len(data)
    if data[end - 48:end - 32] != FOOTER:
        sys.exit("firmware: OVMF footer table GUID not found")
    tablelen = struct.unpack_from("<H", data, end - 50)[0]
    start, pos = end - 32 - tablelen, end - 50   # pos: end of the next entry
    while pos > start:
        guid = bytes(data[pos - 16:pos])
        entlen = struct.unpack_from("<H", data, pos - 18)[0]
        if entlen < 18 or pos - entlen < start:
            sys.exit("firmware: malformed OVMF footer table")
        if guid == HASH_AREA:
            if entlen - 18 != 8:
                sys.exit("firmware: hash-table area entry is not {u32 base; u32 size}")
            off = pos - entlen
            struct.pack_into("<II", data, off, 0x80FC00, 0x400)
            fh.seek(off)
            fh.write(data[off:off + 8])
            break
        pos -= entlen
    else:
        sys.exit("firmware: no SEV hash-table area entry in the OVMF footer table")
EOF
[[ $(stat -c %s "$TMP/firmware.fd") -eq $FW_SIZE ]] || die "firmware is not 4 MiB"

head -c "$KERNEL_SIZE" /dev/urandom >"$TMP/vmlinuz"
head -c "$INITRD_SIZE" /dev/urandom >"$TMP/initrd"
if [[ $BIG == 1 ]]; then
    head -c "$INITRD_BIG_SIZE" /dev/urandom >"$TMP/initrd-big"
fi
head -c 16 /dev/urandom >"$TMP/tik.bin"
head -c 16 /dev/urandom >"$TMP/tek.bin"

COMMON=(--firmware "$TMP/firmware.fd" --tik "$TMP/tik.bin" --tek "$TMP/tek.bin"
        --api-major 1 --api-minor 49 --build-id 6)

# --------------------------------------------------------------- helpers ----
b64_of() { # HEX... -> base64 of the concatenated bytes
    "$PYTHON" -c 'import base64, sys; print(base64.b64encode(bytes.fromhex("".join(sys.argv[1:]))).decode())' "$@"
}

# expected_measurement ARGS... : ask the Python tool (with --debug and a
# dummy measurement) what it computes, and print b64(computed || nonce).
expected_measurement() {
    local nonce dummy rc=0 computed
    nonce=$(head -c 16 /dev/urandom | od -An -tx1 -v | tr -d ' \n')
    dummy=$(b64_of "$(printf '0%.0s' {1..64})" "$nonce")
    "$PYTHON" "$PY_TOOL" --debug --measurement "$dummy" "$@" \
        >"$TMP/dummy.out" 2>"$TMP/dummy.err" || rc=$?
    computed=$(sed -n 's/.*Measurement computed(hex): \([0-9a-f]\{64\}\).*/\1/p' "$TMP/dummy.err" | tail -n 1)
    if [[ -z $computed ]]; then
        cat "$TMP/dummy.out" "$TMP/dummy.err" >&2
        die "Python tool (exit $rc) printed no 'Measurement computed(hex)' line"
    fi
    b64_of "$computed" "$nonce"
}

# check_tool NAME EXPECTED_RC MEASUREMENT CMD... : run once, insist on the rc.
check_tool() {
    local name=$1 want=$2 m=$3 rc=0
    shift 3
    "$@" --measurement "$m" >"$TMP/check.out" 2>"$TMP/check.err" || rc=$?
    if [[ $rc -ne $want ]]; then
        echo "---- $name stdout:" >&2; cat "$TMP/check.out" >&2
        echo "---- $name stderr:" >&2; cat "$TMP/check.err" >&2
        die "$name exited $rc, expected $want"
    fi
    if [[ $want -eq 0 ]] && ! grep -qx 'OK: Looks good to me' "$TMP/check.out"; then
        cat "$TMP/check.out" >&2
        die "$name exited 0 but did not print 'OK: Looks good to me'"
    fi
}

# time_tool M CMD... : BENCH_RUNS timed runs; prints "median_wall_s max_rss_kib"
time_tool() {
    local m=$1 i
    shift
    : >"$TMP/samples"
    for ((i = 0; i < RUNS; i++)); do
        if ! "$TIME" -f '%e %M' -o "$TMP/time.out" "$@" --measurement "$m" \
            >/dev/null 2>"$TMP/run.err"; then
            cat "$TMP/time.out" "$TMP/run.err" >&2
            die "timed run failed: $*"
        fi
        tail -n 1 "$TMP/time.out" >>"$TMP/samples"
    done
    # median of column 1 (wall), maximum of column 2 (RSS); POSIX awk only
    sort -n -k1,1 "$TMP/samples" | awk '
        { w[NR] = $1; if ($2 > rss) rss = $2 }
        END { med = (NR % 2) ? w[(NR + 1) / 2] : (w[NR / 2] + w[NR / 2 + 1]) / 2
              printf "%.3f %d\n", med, rss }'
}

MISSED=0
declare -A OURS_RSS

# bench_case NAME DESCRIPTION ARGS... (ARGS: everything but --measurement)
bench_case() {
    local name=$1 desc=$2
    shift 2
    local args=("${COMMON[@]}" "$@")
    local py=("$PYTHON" "$PY_TOOL" "${args[@]}") ours=("$OURS" "${args[@]}")
    local m wrong py_w py_r ours_w ours_r

    note "case $name: computing the expected measurement with the Python tool"
    m=$(expected_measurement "${args[@]}")
    # The correct measurement must validate with both tools; a wrong one
    # (same nonce, MEASURE zeroed) must be rejected by ours, so that we know
    # we time a real validation.
    check_tool python 0 "$m" "${py[@]}"
    check_tool ours 0 "$m" "${ours[@]}"
    wrong=$(b64_of "$(printf '0%.0s' {1..64})" \
        "$("$PYTHON" -c 'import base64,sys; print(base64.b64decode(sys.argv[1])[32:].hex())' "$m")")
    check_tool ours 1 "$wrong" "${ours[@]}"

    note "case $name: timing $RUNS runs each"
    local res
    res=$(time_tool "$m" "${py[@]}")
    read -r py_w py_r <<<"$res"
    res=$(time_tool "$m" "${ours[@]}")
    read -r ours_w ours_r <<<"$res"
    OURS_RSS[$name]=$ours_r

    echo
    echo "== $name: $desc ($RUNS runs)"
    awk -v pw="$py_w" -v pr="$py_r" -v ow="$ours_w" -v orss="$ours_r" -v t="$RSS_TARGET_MIB" '
        BEGIN {
            printf "%-8s %16s %14s\n", "tool", "median wall (s)", "max RSS (MiB)"
            printf "%-8s %16.2f %14.1f\n", "python", pw, pr / 1024
            printf "%-8s %16.2f %14.1f\n", "ours", ow, orss / 1024
            rw = (pw > 0) ? sprintf("%.3f", ow / pw) : "n/a"
            printf "%-8s %16s %14.3f\n", "ratio", rw, orss / pr
            printf "targets: wall ratio <= 0.333: %s; ours RSS < %d MiB: %s\n",
                (pw > 0 && ow / pw <= 1 / 3) ? "met" : "MISSED", t,
                (orss / 1024 < t) ? "met" : "MISSED"
            exit !((pw > 0 && ow / pw <= 1 / 3) && (orss / 1024 < t))
        }' || MISSED=1
}

# ----------------------------------------------------------------- cases ----
echo "virt-qemu-sev-validate benchmark: ours ($OURS) vs python ($PY_TOOL)"
echo "wall = median of $RUNS runs (/usr/bin/time %e, 10 ms resolution); RSS = max over runs (%M)"

bench_case sev "SEV policy 1, 4 MiB firmware, 12 MiB kernel, 100 MiB initrd, cmdline" \
    --policy 1 --kernel "$TMP/vmlinuz" --initrd "$TMP/initrd" --cmdline "$CMDLINE"

if [[ $BIG == 1 ]]; then
    bench_case sev-big "SEV policy 1, 4 MiB firmware, 12 MiB kernel, 400 MiB initrd, cmdline" \
        --policy 1 --kernel "$TMP/vmlinuz" --initrd "$TMP/initrd-big" --cmdline "$CMDLINE"
    echo
    awk -v a="${OURS_RSS[sev]}" -v b="${OURS_RSS[sev-big]}" 'BEGIN {
        printf "ours peak RSS: %.1f MiB with 100 MiB initrd, %.1f MiB with 400 MiB initrd\n", a / 1024, b / 1024 }'
fi

bench_case sev-es "SEV-ES policy 5, 4 MiB firmware, 64 vCPUs (family 25 model 1 stepping 1), no kernel" \
    --policy 5 --num-cpus 64 --cpu-family 25 --cpu-model 1 --cpu-stepping 1

if [[ $MISSED -ne 0 ]]; then
    echo
    echo "some targets were MISSED"
    [[ $STRICT == 1 ]] && exit 1
fi
exit 0
