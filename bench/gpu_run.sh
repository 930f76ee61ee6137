#!/usr/bin/env bash
# One call on a GPU machine (one GPU, 16 cores, under 9 minutes): the CUDA tests; millions of
# synthetic English swipes written on every core and built; the shipped conformer (en_hws's
# config.json) trained on them with mixed precision from its shipped weights for most of the time
# left; its best weights exported. The model, the training log, a throughput table (curves/s, fp32
# and AMP), a summary and the other logs land in OUT (7 small files). Every phase has its own time
# limit, and whatever the earlier phases made reaches OUT when a later one fails.
#
#     OUT=/path/to/out bash bench/gpu_run.sh                 # on the GPU machine (about 8.5 minutes)
#     bash bench/gpu_run.sh --dry-run --out /tmp/gpu-dry     # the same steps, tiny, on the CPU (1-3 min)
#
# Settings (environment): SWIPE_GPU_SCALE full|tiny (--dry-run: tiny, on the CPU);
# SWIPE_GPU_MINUTES, the whole run (8.5; tiny 10); SWIPE_GPU_SYNTH_SECONDS, the synthesis (60);
# SWIPE_GPU_BATCH (512); SWIPE_GPU_INIT shipped|scratch (shipped: continue en_hws's weights);
# SWIPE_GPU_WORK, where data and checkpoints go (default: a new temporary folder); PYTHON (python3).
#
# OUT: summary.md, train.log, throughput.md, model/{model.pt,decoding.json,config.json}, logs.tar.gz.
# Exit status: 0 when every phase passed, 1 when one failed, 2 when the run could not start.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SCALE=${SWIPE_GPU_SCALE:-full}
while [ $# -gt 0 ]; do
    case $1 in
        --dry-run) SCALE=tiny ;;
        --out) OUT=$2; shift ;;
        --out=*) OUT=${1#--out=} ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument $1 (try: bash bench/gpu_run.sh --dry-run --out /tmp/gpu-dry)" >&2; exit 2 ;;
    esac
    shift
done
if [ -z "${OUT:-}" ]; then
    echo "error: say where the results go: OUT=DIR bash bench/gpu_run.sh, or --out DIR" >&2; exit 2
fi
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    echo "error: $OUT is not empty; give an empty or new folder" >&2; exit 2
fi
case $SCALE in
    full) MINUTES=${SWIPE_GPU_MINUTES:-8.5} SYNTH_SECONDS=${SWIPE_GPU_SYNTH_SECONDS:-60}
          BATCH=${SWIPE_GPU_BATCH:-512} DEVICE=cuda ;;
    tiny) MINUTES=${SWIPE_GPU_MINUTES:-10} SYNTH_SECONDS=${SWIPE_GPU_SYNTH_SECONDS:-1}
          BATCH=${SWIPE_GPU_BATCH:-32} DEVICE=cpu ;;
    *) echo "error: SWIPE_GPU_SCALE must be full or tiny, not $SCALE" >&2; exit 2 ;;
esac
INIT=${SWIPE_GPU_INIT:-shipped}
case $INIT in shipped|scratch) ;; *) echo "error: SWIPE_GPU_INIT must be shipped or scratch" >&2; exit 2 ;; esac
if [ "$DEVICE" = cuda ] && ! $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
    echo "error: no CUDA device here; for the steps on the CPU run: bash bench/gpu_run.sh --dry-run --out DIR" >&2
    exit 2
fi

RECIPE=swipe/resources/models/en_hws/config.json
SHIPPED=swipe/resources/models/en_hws
WORK=${SWIPE_GPU_WORK:-$(mktemp -d -t swipe-gpu-run-XXXXXX)}
LOGS=$WORK/logs
mkdir -p "$OUT/model" "$LOGS" "$WORK/synth" "$WORK/data" || exit 2
DEADLINE=$(( SECONDS + $(awk "BEGIN { printf \"%d\", $MINUTES * 60 }") ))
CPUS=$(nproc)
FAILED=0

# phase NAME LIMIT COMMAND...: run COMMAND for at most LIMIT seconds (then SIGTERM, and SIGKILL 15 s
# later), its output in $LOGS/NAME.log (or $PHASE_LOG), its outcome a line of $WORK/phases.tsv.
phase() {
    local name=$1 limit=$2 t0=$SECONDS rc=0 result=ok
    shift 2
    if [ "$limit" -lt 1 ]; then
        printf '%s\tskipped: no time left\t0\n' "$name" >>"$WORK/phases.tsv"; FAILED=1; return 1
    fi
    timeout -k 15 "$limit" "$@" >"${PHASE_LOG:-$LOGS/$name.log}" 2>&1 || rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then result="timed out after $limit s"
    elif [ $rc -ne 0 ]; then result="failed (exit $rc), see ${PHASE_LOG:-logs/$name.log}"; fi
    printf '%s\t%s\t%s\n' "$name" "$result" $((SECONDS - t0)) >>"$WORK/phases.tsv"
    [ $rc -eq 0 ] || FAILED=1
    return $rc
}
# left [RESERVE]: seconds until the deadline, less RESERVE
left() { echo $(( DEADLINE - SECONDS - ${1:-0} )); }
# within LIMIT [RESERVE]: LIMIT, or less when the deadline (less RESERVE) comes sooner
within() { local l; l=$(left "${2:-0}"); [ "$1" -lt "$l" ] && echo "$1" || echo "$l"; }
summary() { $PY bench/gpu_run.py summary "$WORK" "$OUT" "$@" >>"$LOGS/summary.log" 2>&1 || true; }
finish() {
    local pids; pids=$(jobs -p)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    summary
    cat "$OUT/summary.md" 2>/dev/null
    tar -czf "$OUT/logs.tar.gz" -C "$WORK" logs phases.tsv settings.json env.txt synth_plan.json run.json \
        run/config.json run/tb 2>/dev/null
    echo "results in $OUT; data and checkpoints in $WORK"
}
trap finish EXIT
trap 'exit 143' TERM INT

printf '{"scale": "%s", "minutes": %s, "synth_seconds": %s, "batch_size": %s, "init": "%s", "device": "%s", "cpus": %s}\n' \
    "$SCALE" "$MINUTES" "$SYNTH_SECONDS" "$BATCH" "$INIT" "$DEVICE" "$CPUS" >"$WORK/settings.json"
$PY - >"$WORK/env.txt" 2>&1 <<'EOF'
import os, torch
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
print(f"{gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}; {os.cpu_count()} CPUs")
EOF
echo "$(cat "$WORK/env.txt"); scale $SCALE, $MINUTES minutes; work in $WORK"

# 1. The CUDA tests, beside the synthesis (they skip without a GPU).
phase tests 200 $PY -m pytest -m cuda tests/test_cuda.py -q -p no:cacheprovider --junitxml="$LOGS/tests.xml" &
TESTS=$!

# 2. Synthetic swipes on every core but one: the training split in equal shards sized from the
#    generator's speed measured here, and the recipe's own validation split (4,000 curves).
if [ "$SCALE" = full ]; then JOBS=$(( CPUS > 2 ? CPUS - 1 : 1 )) PLAN=(--probe 2000) VAL=4000
else JOBS=2 PLAN=(--probe 100 --max-total 400) VAL=100; fi
PHASE_LOG=$LOGS/synth_plan.log phase synth_plan 60 $PY bench/gpu_run.py synth-plan --recipe $RECIPE \
    --seconds "$SYNTH_SECONDS" --jobs "$JOBS" --generator-out "$WORK/generator.json" \
    --plan "$WORK/synth_plan.json" "${PLAN[@]}"
read -r PER_JOB VAL_SEED < <(tail -n 1 "$LOGS/synth_plan.log" | grep -E '^[0-9]+ [0-9]+$' || echo 0 0)
SYNTH=(-m swipe.synth --layout hws_fitted --lexicon en --config "$WORK/generator.json" --grid-by-name)
if [ "$PER_JOB" -gt 0 ]; then
    $PY "${SYNTH[@]}" --count $VAL --seed "$VAL_SEED" --out "$WORK/synth/val.jsonl" >"$LOGS/synth_val.log" 2>&1 &
    VAL_PID=$!
    # Shards unfinished at the time limit are dropped (each file appears only when complete).
    seq 1000 $(( 999 + JOBS )) >"$WORK/synth/seeds.txt"
    phase synth "$(within $(( SYNTH_SECONDS * 3 / 2 + 20 )) 300)" xargs -a "$WORK/synth/seeds.txt" \
        -P "$JOBS" -I{} $PY "${SYNTH[@]}" --count "$PER_JOB" --seed {} --out "$WORK/synth/train-{}.jsonl"
    wait $VAL_PID
fi

# 3. Build the datasets; meanwhile (once the tests are done with the GPU) time the optimizer step.
shards=("$WORK"/synth/train-*.jsonl)
BUILD=
if [ -e "${shards[0]}" ] && [ -e "$WORK/synth/val.jsonl" ]; then
    ( phase build_val 60 $PY -m swipe.data build "$WORK/synth/val.jsonl" --out "$WORK/data/val" --quiet &&
      phase build $(within 200 240) $PY -m swipe.data build "${shards[@]}" --out "$WORK/data/train" --quiet ) &
    BUILD=$!
else
    printf 'build\tskipped: no synthetic data\t0\n' >>"$WORK/phases.tsv"; FAILED=1
fi
wait $TESTS || FAILED=1
if [ "$SCALE" = full ]; then BENCH=(--cuda-only --steps 30 --warmup 5 --curves 20000) BATCHES="128 $BATCH"
else BENCH=(--threads 1 --steps 2 --warmup 1 --curves 128) BATCHES=$BATCH; fi
for b in $BATCHES; do
    phase "throughput_$b" $(within 120 300) $PY bench/bench_train.py --config $RECIPE --batch-size "$b" \
        --work "$WORK/bench" "${BENCH[@]}"
    sed -n '/^training throughput/,$p' "$LOGS/throughput_$b.log" >>"$OUT/throughput.md"
    echo >>"$OUT/throughput.md"
done
[ -n "$BUILD" ] && { wait $BUILD || FAILED=1; }
summary

# 4. Train en_hws's recipe on the built data until 40 s before the deadline (export and copying).
if [ "$SCALE" = full ]; then
    TRAIN=(--set data.num_workers=$(( CPUS > 4 ? CPUS - 2 : 1 )) --set max_steps=1000000
           --set validation.every_steps=1000 --set schedule.warmup_steps=300 --set schedule.plateau_patience=3)
else
    TRAIN=(--set data.num_workers=1 --set max_steps=4 --set validation.every_steps=2
           --set validation.max_curves=64 --set schedule.warmup_steps=1)
fi
[ "$INIT" = shipped ] && TRAIN+=(--set "init_from=$SHIPPED")
if [ -d "$WORK/data/train" ] && [ -d "$WORK/data/val" ]; then
    PHASE_LOG=$LOGS/config.log phase config 60 $PY bench/gpu_run.py config $RECIPE "$WORK/run.json" \
        --set name=gpu_en_hws --set "data.train=$WORK/data/train" --set "data.val=$WORK/data/val" \
        --set data.synthetic=null --set "data.batch_size=$BATCH" --set "device=$DEVICE" \
        --set precision=auto --set logging.progress_bar=false "${TRAIN[@]}" &&
    { budget=$(left 40)  # the trainer stops itself in time; the phase's limit is a guard
      PHASE_LOG=$OUT/train.log phase train $(( budget + 20 )) env PYTHONUNBUFFERED=1 $PY train.py \
          --config "$WORK/run.json" --run-dir "$WORK/run" --max-minutes "$(awk "BEGIN { print $budget / 60 }")"; }
else
    printf 'train\tskipped: no built data\t0\n' >>"$WORK/phases.tsv"; FAILED=1
fi

# 5. Export the best weights (the last ones if the run saved no best) with en_hws's decoding settings.
best=$WORK/run/checkpoints/best.pt
[ -f "$best" ] || best=$WORK/run/checkpoints/last.pt
if [ -f "$best" ]; then
    phase export $(within 60 5) $PY -m swipe.export "$best" --out "$OUT/model/model.pt" &&
        cp $SHIPPED/decoding.json "$WORK/run/config.json" "$OUT/model/"
else
    printf 'export\tskipped: no checkpoint\t0\n' >>"$WORK/phases.tsv"; FAILED=1
fi
exit $FAILED
