#!/usr/bin/env bash
# Recompiles WhitelistScheduleStub.sol into WhitelistScheduleStub.bin (creation bytecode, hex,
# no 0x) with the pinned solc-js from npm. The .bin is committed; tests never compile.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
npx --yes solc@0.8.28 --bin --optimize --optimize-runs 200 -o "$out" WhitelistScheduleStub.sol
cp "$out/WhitelistScheduleStub_sol_WhitelistScheduleStub.bin" WhitelistScheduleStub.bin
