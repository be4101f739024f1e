#!/usr/bin/env bash
# Regenerates the reference reports in reports/ from the committed scenarios and calibration.
# tests/test_reference_report.cpp checks that a fresh run reproduces them byte for byte, so run
# this (and review the diff) whenever a change is meant to move the numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
# The reports record a date and a commit: fixed here (and in tests/CMakeLists.txt, for the
# golden test) so that they are byte-stable across commits.
export SOURCE_DATE_EPOCH=0 TRAINSIM_COMMIT=reference
bin=build/bin/trainsim
[ -x "$bin" ] || scripts/build.sh
out=reports/deepseek-v3-h800
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
"$bin" run scenarios/deepseek-v3-h800.toml --out "$out.tmp" >/dev/null
"$bin" run scenarios/deepseek-v3-h800.toml >"$out.tmp/report.txt"
"$bin" run scenarios/calibration/deepseek-v3-h800-chunk.toml >"$out.tmp/chunk-pair.txt"
[ -f "$out/ANALYSIS.md" ] && cp "$out/ANALYSIS.md" "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "regenerated $out"

# The validation suite (validation/README.md): every published run of V1-V6 against trainsim.
# tests/test_validate.cpp checks that a fresh `trainsim validate` reproduces it byte for byte.
out=reports/validation
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
"$bin" validate -q --out "$out.tmp" | head -n -2 >"$out.tmp/report.txt"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "regenerated $out"

# The plan search on the main job (docs/plan.md): where DeepSeek's published plan ranks among every
# valid plan, its gap to the best and why. tests/test_plan_report.cpp (label slow) checks that a
# fresh search reproduces report.md byte for byte.
out=reports/deepseek-v3-plan
rm -rf "$out.tmp" && mkdir -p "$out.tmp"
"$bin" plan scenarios/deepseek-v3-h800.toml --objective cost --jobs 2 -q --out "$out.tmp" >"$out.tmp/report.txt"
[ -f "$out/ANALYSIS.md" ] && cp "$out/ANALYSIS.md" "$out.tmp/"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "regenerated $out"
