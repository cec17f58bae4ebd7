#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ (see fuzz/README.md).
#
#   scripts/fuzz.sh [RUNS] [TARGET...]   each target for RUNS executions
#                                        (default $FUZZ_RUNS, else 10000000)
#   scripts/fuzz.sh --quick [TARGET...]  each target for a few seconds on the
#                                        committed corpus (what CI runs)
#   scripts/fuzz.sh --list               the targets
#
# Environment:
#   FUZZ_RUNS=N            executions per target (libFuzzer -runs=N)
#   FUZZ_QUICK_SECONDS=S   seconds per target with --quick (default 5)
#   FUZZ_JOBS=N            targets run in parallel (default: number of CPUs)
#   FUZZ_SANITIZER=S       address (default) or none (faster, no ASan)
#   FUZZ_PROFILE=P         release (default) or dev: unoptimised targets, which
#                          build in half the time (what CI's few seconds use)
#   FUZZ_TOOLCHAIN=T       run `cargo +T fuzz` (e.g. nightly); by default the
#                          default (stable) toolchain with RUSTC_BOOTSTRAP=1,
#                          because cargo fuzz needs -Z flags
#
# New inputs go to fuzz/target/corpus/TARGET (not committed); the committed
# seeds in fuzz/corpus/TARGET are only read. A crash leaves its input in
# fuzz/artifacts/TARGET/ and makes the script exit 1: add the input to
# tests/it/fuzz_regressions.rs. Logs: fuzz/target/logs/TARGET.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FUZZ=$ROOT/fuzz
ALL_TARGETS=(ovmf_footer domain_xml capabilities_xml measurement_keys secret_spec qmp_message secret_table snp_report snp_cert_table snp_crl snp_evidence snp_sealed agent_reply igvm_file)

die() { echo "fuzz.sh: ERROR: $*" >&2; exit 2; }
note() { echo "fuzz.sh: $*" >&2; }

quick=0
runs=${FUZZ_RUNS:-10000000}
targets=()
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --list) printf '%s\n' "${ALL_TARGETS[@]}"; exit 0 ;;
        -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option '$arg' (see --help)" ;;
        *)
            if [[ $arg =~ ^[0-9]+$ ]]; then
                runs=$arg
            elif [[ " ${ALL_TARGETS[*]} " == *" $arg "* ]]; then
                targets+=("$arg")
            else
                die "no fuzz target '$arg'; the targets are: ${ALL_TARGETS[*]}"
            fi
            ;;
    esac
done
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer (got '$runs')"
seconds=${FUZZ_QUICK_SECONDS:-5}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "FUZZ_QUICK_SECONDS must be a positive integer"
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "FUZZ_JOBS must be a positive integer"
sanitizer=${FUZZ_SANITIZER:-address}
case ${FUZZ_PROFILE:-release} in
    release) profile=() ;;
    dev) profile=(--dev) ;;
    *) die "FUZZ_PROFILE must be release or dev" ;;
esac

# The cargo-fuzz release this script is tested with; `cargo install` puts it
# in ~/.cargo/bin (about 2 minutes to build, once).
CARGO_FUZZ_VERSION=0.13.2

command -v cargo >/dev/null || die "cargo not found"
if ! cargo fuzz --version >/dev/null 2>&1; then
    note "cargo-fuzz missing; installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io into ~/.cargo/bin"
    cargo install --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz >&2 ||
        die "cargo install --locked --version $CARGO_FUZZ_VERSION cargo-fuzz failed"
elif [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    note "using $(cargo fuzz --version) (this script is tested with cargo-fuzz $CARGO_FUZZ_VERSION)"
fi
if [[ -n ${FUZZ_TOOLCHAIN:-} ]]; then
    cargo_fuzz=(cargo "+$FUZZ_TOOLCHAIN" fuzz)
else
    # cargo fuzz passes -Zsanitizer and other unstable flags; the stable
    # compiler accepts them with RUSTC_BOOTSTRAP=1 (it ships the sanitizer
    # runtimes for x86_64 Linux).
    export RUSTC_BOOTSTRAP=1
    cargo_fuzz=(cargo fuzz)
fi

cd "$FUZZ"
note "building ${#targets[@]} targets (sanitizer: $sanitizer, profile: ${FUZZ_PROFILE:-release})"
"${cargo_fuzz[@]}" build "${profile[@]}" --sanitizer "$sanitizer" >&2 || die "cargo fuzz build failed"

logs=$FUZZ/target/logs
mkdir -p "$logs"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sev-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# Runs one target; its log says how it went. Exit status: libFuzzer's.
run_one() {
    local t=$1 work limit
    if ((quick)); then
        work=$scratch/$t
        limit=(-max_total_time="$seconds")
    else
        work=$FUZZ/target/corpus/$t
        limit=(-runs="$runs")
    fi
    mkdir -p "$work" "$FUZZ/artifacts/$t"
    "${cargo_fuzz[@]}" run "${profile[@]}" --sanitizer "$sanitizer" "$t" "$work" "$FUZZ/corpus/$t" -- \
        "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$FUZZ/artifacts/$t/" >"$logs/$t.log" 2>&1
}

pids=()
names=()
for t in "${targets[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs)); do
        sleep 1
    done
    note "running $t"
    run_one "$t" &
    pids+=($!)
    names+=("$t")
done

passed=0
failed=0
for i in "${!pids[@]}"; do
    t=${names[$i]}
    if wait "${pids[$i]}"; then
        status=ok
        passed=$((passed + 1))
    else
        status=FAILED
        failed=$((failed + 1))
    fi
    done_line=$(grep -E '^Done [0-9]+ runs' "$logs/$t.log" | tail -1 || true)
    execs=$(grep -E 'stat::number_of_executed_units' "$logs/$t.log" | tail -1 | awk '{print $2}' || true)
    printf 'fuzz.sh: %-18s %-6s executions=%s %s\n' "$t" "$status" "${execs:-?}" "${done_line:-}"
    if [[ $status == FAILED ]]; then
        grep -E 'panicked|ERROR: |SUMMARY|Test unit written|artifact' "$logs/$t.log" | head -20 | sed 's/^/    /'
    fi
done
echo "fuzz.sh: $passed passed, $failed failed"
if ((failed)); then
    echo "fuzz.sh: see fuzz/target/logs/ and fuzz/artifacts/; add each crash input to tests/it/fuzz_regressions.rs" >&2
    exit 1
fi
