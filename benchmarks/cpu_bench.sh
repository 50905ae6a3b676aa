#!/usr/bin/env bash
# The CPU benchmark recorded in docs/performance.md: archspec's ResNet-50 against torchvision's,
# in one process, the two models taking turns step by step.
#
#   benchmarks/cpu_bench.sh [REPEATS] [extra archspec bench options...]
#
# PYTHON: the interpreter with archspec installed (default: python3). The load average is
# printed before and after: on a shared machine, other jobs slow both models alike but widen the spread.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
REPEATS=${1:-1}
shift || true

echo "cpu_bench.sh: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$REPEATS"); do
    echo
    echo "\$ archspec bench specs/resnet50.yaml --device cpu --vs torchvision $*   # run $run of $REPEATS"
    "$PYTHON" -m archspec bench specs/resnet50.yaml --device cpu --vs torchvision "$@"
done
echo
echo "cpu_bench.sh: load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
