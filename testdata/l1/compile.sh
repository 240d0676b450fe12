#!/usr/bin/env bash
# Recompiles the test contracts (WhitelistScheduleStub.sol, LookaheadStoreStub.sol) into their
# .bin files (creation bytecode, hex, no 0x) with the pinned solc-js from npm, and writes the
# lookahead store's ABI (LookaheadStoreStub.abi.json, its Rust bindings' source). The outputs are
# committed; tests never compile.
set -euo pipefail
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for contract in WhitelistScheduleStub LookaheadStoreStub; do
    npx --yes solc@0.8.28 --bin --optimize --optimize-runs 200 -o "$out" "$contract.sol"
    cp "$out/${contract}_sol_${contract}.bin" "$contract.bin"
done
npx --yes solc@0.8.28 --abi -o "$out" LookaheadStoreStub.sol
python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1])), open(sys.argv[2], "w"), indent=1)' \
    "$out/LookaheadStoreStub_sol_LookaheadStoreStub.abi" LookaheadStoreStub.abi.json
