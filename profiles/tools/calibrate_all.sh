#!/usr/bin/env bash
# Regenerates profiles/<gpu>/calibration.toml for every GPU trainsim offers, from the measured
# inputs in profiles/ (each file records the command that made it; tests/test_calibration_cli.cpp
# checks that rerunning it gives the same bytes). Run from the repository root after building.
# Which inputs each GPU gets: every measurement that bears on it. `trainsim calibrate` uses, per
# class, the points measured on that GPU or on a same-die GPU, and transfers by rule (and says
# so in the file) only where none exist.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${TRAINSIM:-build/bin/trainsim}
trace=profiles/h800/deepseek-v3-train-fwdbwd-ep64.profile.jsonl
h800="$trace profiles/h800/deepgemm-fp8.toml profiles/h800/flashmla.toml profiles/h800/deepep.toml"
h100="profiles/h100-sxm/xla-matmul.toml profiles/h100-sxm/fa3-attention.toml profiles/h100-sxm/liger-membound.toml"
m="--model models/deepseek-v3.toml"
run() { gpu=$1; shift; "$bin" calibrate "$@" --gpu "$gpu" $m -o "profiles/$gpu/calibration.toml" >/dev/null; echo "profiles/$gpu/calibration.toml"; }
run h800 $h800 $h100
run h100-sxm $h800 $h100 profiles/h200/nccl-allreduce.toml
run h200 $h800 $h100 profiles/h200/nccl-allreduce.toml
run a100-sxm-80g $h800 $h100 profiles/a100-sxm-80g/liger-membound.toml profiles/a100-sxm-80g/nccl-allreduce.toml
run b200 $h800 $h100 profiles/b200/xla-matmul.toml profiles/b200/liger-membound.toml profiles/h200/nccl-allreduce.toml
run gb200 $h800 $h100 profiles/b200/xla-matmul.toml profiles/b200/liger-membound.toml profiles/h200/nccl-allreduce.toml
