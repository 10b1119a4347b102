#!/usr/bin/env bash
# Lint socket-riscv/ (shootdown's wrapper of a RISC-V IOMMU specification
# design, docs/socket-riscv.md) against the design at $SHOOTDOWN_RTL_RISCV
# (default ../shared/thirdparty/riscv-iommu) with -Wall: no warning may point
# into socket-riscv/, and nothing may be an error. The design's own warnings
# are its authors' and are only counted. Exit 0 clean, 1 not, 2 no design.
set -euo pipefail
cd "$(dirname "$0")/.."
design=${SHOOTDOWN_RTL_RISCV:-../shared/thirdparty/riscv-iommu}
if [ ! -d "$design/rtl" ]; then
  echo "riscv-socket-lint: no RISC-V IOMMU design at $design (set SHOOTDOWN_RTL_RISCV)" >&2
  exit 2
fi
design=$(realpath "$design")
# The design includes common_cells/assertions.svh, which it ships as
# include/assertions.svh: a directory of our own resolves it (its tree is
# read-only).
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
mkdir -p "$inc/common_cells"
ln -s "$design/include/assertions.svh" "$inc/common_cells/assertions.svh"
args=("-I$inc")
for d in packages/dependencies packages/rv_iommu vendor include rtl \
  rtl/translation_logic rtl/translation_logic/cdw rtl/translation_logic/ptw \
  rtl/translation_logic/wrapper rtl/software_interface \
  rtl/software_interface/regmap rtl/software_interface/wrapper rtl/ext_interfaces; do
  args+=("-I$design/$d")
done
status=0
out=$(verilator --lint-only -Wall -Wno-fatal socket-riscv/shootdown_rv_top.sv \
  --top-module shootdown_rv_top "${args[@]}" 2>&1) || status=$?
if [ "$status" != 0 ] || grep -q '^%Error' <<<"$out"; then
  echo "$out" >&2
  echo "riscv-socket-lint: errors" >&2
  exit 1
fi
if grep -E '^%(Warning|Error)[^:]*: [^ ]*socket-riscv/' <<<"$out" >&2; then
  echo "riscv-socket-lint: socket-riscv/ has warnings (above)" >&2
  exit 1
fi
echo "riscv-socket-lint: socket-riscv/ clean against $design ($(grep -c '^%Warning' <<<"$out") warnings in the design's own files)"
