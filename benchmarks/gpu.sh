#!/usr/bin/env bash
# The GPU checks in one go: the CUDA tests, then `archspec bench` of ResNet-50, ResNet-152 and VGG-16
# against torchvision (inference and training, bf16 with channels-last, eager and then compiled),
# printed as one Markdown table to paste into docs/performance.md.
#
#   benchmarks/gpu.sh           on a machine with a CUDA GPU; without one it says so and exits 0
#   benchmarks/gpu.sh --smoke   the same pipeline on the CPU with a tiny model, to test this script
#
# Environment (all optional):
#   PYTHON        the interpreter with archspec installed (default: python3)
#   SPECS         specs to time (default: "resnet50 resnet152 vgg16")
#   BATCH         images per step (default: 256)
#   COMPILE       1: after the eager runs, the same runs with --compile; 0: eager only (default: 1)
#   DEADLINE      seconds after the start by which everything must be done, so that the script fits
#                 a 10-minute job slot on a GPU machine (default: 540); a run that cannot get
#                 60 s before it is skipped, and a run is stopped at it
#   RUN_TIMEOUT   seconds for one eager bench run (default: 200)
#   COMPILE_TIMEOUT  seconds for one --compile run, which compiles 4 graphs (default: 300)
#   RESULTS       folder for the JSON of each run (default: $OUT if set, else a temporary folder)
set -uo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then SMOKE=1; fi

if [[ $SMOKE == 1 ]]; then
    DEVICE=cpu
    SPECS=${SPECS:-resnet18}
    BATCH=${BATCH:-2}
    COMPILE=${COMPILE:-0}
    EXTRA=(--size 64 --warmup 1 --iters 2 --threads 1)
else
    if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "gpu.sh: no CUDA device here: skipping the CUDA tests and the GPU benchmarks (run with --smoke to test this script on the CPU)"
        exit 0
    fi
    DEVICE=cuda
    SPECS=${SPECS:-resnet50 resnet152 vgg16}
    BATCH=${BATCH:-256}
    COMPILE=${COMPILE:-1}
    EXTRA=()
fi
DEADLINE=${DEADLINE:-540}
RUN_TIMEOUT=${RUN_TIMEOUT:-200}
COMPILE_TIMEOUT=${COMPILE_TIMEOUT:-300}
RESULTS=${RESULTS:-${OUT:-$(mktemp -d)}}
mkdir -p "$RESULTS"
LOG="$RESULTS/gpu-sh.log"
: >"$LOG"

if [[ $DEVICE == cuda ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/gpu.sh: GPU: /'
    echo "gpu.sh: CUDA tests (pytest -m cuda) ..."
    if timeout 150 "$PYTHON" -m pytest -o addopts="" -m cuda -q -p no:cacheprovider tests >"$RESULTS/pytest-cuda.txt" 2>&1; then
        echo "gpu.sh: CUDA tests: $(tail -n 1 "$RESULTS/pytest-cuda.txt")"
    else
        echo "gpu.sh: CUDA tests FAILED: $(tail -n 1 "$RESULTS/pytest-cuda.txt") (see $RESULTS/pytest-cuda.txt)"
    fi
fi

modes=("")
if [[ $COMPILE == 1 ]]; then modes+=("--compile"); fi
failed=()
for compile in "${modes[@]}"; do
    for spec in $SPECS; do
        name="$spec${compile:+-compiled}"
        limit=$([[ -n $compile ]] && echo "$COMPILE_TIMEOUT" || echo "$RUN_TIMEOUT")
        left=$((DEADLINE - SECONDS))
        if (( left < 60 )); then
            failed+=("$name (skipped: less than 60 s left before the ${DEADLINE}s deadline)")
            continue
        fi
        (( limit > left )) && limit=$left
        echo "gpu.sh: archspec bench $spec --device $DEVICE --batch $BATCH --train --amp bf16 --channels-last $compile --vs torchvision (limit ${limit}s) ..."
        t0=$SECONDS
        if timeout "$limit" "$PYTHON" -m archspec bench "$spec" --device "$DEVICE" --batch "$BATCH" --train --amp bf16 --channels-last \
            $compile --vs torchvision "${EXTRA[@]}" --format json >"$RESULTS/$name.json" 2>>"$LOG"; then
            echo "gpu.sh:   done in $((SECONDS - t0)) s"
        else
            rc=$?
            rm -f "$RESULTS/$name.json"
            reason=$([[ $rc == 124 ]] && echo "stopped after ${limit}s" || echo "exit $rc: $(tail -n 1 "$LOG")")
            failed+=("$name ($reason)")
            echo "gpu.sh:   FAILED: $reason"
        fi
    done
done

shopt -s nullglob
jsons=()
for compile in "${modes[@]}"; do
    for spec in $SPECS; do
        file="$RESULTS/$spec${compile:+-compiled}.json"
        [[ -f $file ]] && jsons+=("$file")
    done
done
echo
if (( ${#jsons[@]} )); then
    "$PYTHON" -m archspec.tools.bench summarize "${jsons[@]}"
else
    echo "gpu.sh: no bench run finished"
fi
for line in "${failed[@]}"; do echo "- not measured: $line"; done
echo
echo "gpu.sh: JSON of every run in $RESULTS"
(( ${#failed[@]} == 0 ))
