#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, unit and integration tests
# (public vectors, usage checks, secrets, differential tests against the
# Python tool, the man page), and the simulated Secure Processor's own checks.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings
echo "== simulated Secure Processor against the public vectors"
SEV_VECTORS_DIR=${SEV_VECTORS_DIR:-../shared/vectors} /usr/bin/python3 tests/sim/test_sev_sp.py
echo "== fuzz targets, briefly, on the committed corpus (scripts/fuzz.sh for long runs)"
FUZZ_QUICK_SECONDS=${FUZZ_QUICK_SECONDS:-3} scripts/fuzz.sh --quick
echo "== cargo test"
cargo test --all-targets
