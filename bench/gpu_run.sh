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
# SWIPE_GPU_MINUTES, the whole run (8.5; tiny 10); SWIPE_GPU_SYNTH_SECONDS, the synthesis (60; tiny:
# at most 400 swipes); SWIPE_GPU_BATCH (512); SWIPE_GPU_INIT shipped|scratch (shipped: en_hws's weights);
# SWIPE_GPU_DEVICE cuda|cpu (full: cuda; cpu runs the full-scale steps on a CPU, slowly);
# SWIPE_GPU_WORK, where data and checkpoints go (default: a new temporary folder); PYTHON (python3).
#
# OUT: summary.md, train.log, throughput.md, model/{model.pt,decoding.json,config.json}, logs.tar.gz.
# Exit status: 0 when every phase passed, 1 when one failed, 2 when the run could not start.
set -u
cd "$(dirname "$0")/.."
RECIPE=swipe/resources/models/en_hws/config.json
SHIPPED=swipe/resources/models/en_hws

# ---- helpers ------------------------------------------------------------------------------------

# phase NAME LIMIT COMMAND...: run COMMAND for at most LIMIT seconds (then SIGTERM, and SIGKILL 15 s
# later), its output in $LOGS/NAME.log (or $PHASE_LOG), its outcome a line of $WORK/phases.tsv.
phase() {
    local name=$1 limit=$2 t0=$SECONDS rc=0 result=ok
    shift 2
    if [ "$limit" -lt 1 ]; then
        skipped "$name" "no time left"; return 1
    fi
    timeout -k 15 "$limit" "$@" >"${PHASE_LOG:-$LOGS/$name.log}" 2>&1 || rc=$?
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then result="timed out after $limit s"
    elif [ $rc -ne 0 ]; then result="failed (exit $rc), see ${PHASE_LOG:-logs/$name.log}"; fi
    printf '%s\t%s\t%s\n' "$name" "$result" $((SECONDS - t0)) >>"$WORK/phases.tsv"
    [ $rc -eq 0 ] || FAILED=1
    return $rc
}
skipped() { printf '%s\tskipped: %s\t0\n' "$1" "$2" >>"$WORK/phases.tsv"; FAILED=1; }
# left [RESERVE]: seconds until the deadline, less RESERVE
left() { echo $(( DEADLINE - SECONDS - ${1:-0} )); }
# within LIMIT [RESERVE]: LIMIT, or less when the deadline (less RESERVE) comes sooner
within() { local l; l=$(left "${2:-0}"); [ "$1" -lt "$l" ] && echo "$1" || echo "$l"; }
summary() { $PY bench/gpu_run.py summary "$WORK" "$OUT" >>"$LOGS/summary.log" 2>&1 || true; }
finish() {
    local pids; pids=$(jobs -p)
    [ -n "$pids" ] && kill $pids 2>/dev/null
    summary
    cat "$OUT/summary.md" 2>/dev/null
    (cd "$WORK" && tar -czf "$OUT/logs.tar.gz" logs phases.tsv settings.json env.txt synth_plan.json \
        run*.json run*/config.json run*/tb 2>/dev/null)
    echo "results in $OUT; data and checkpoints in $WORK"
}

# ---- phases -------------------------------------------------------------------------------------

# The training split in equal shards, four for each of the processes (one per core but one), sized
# from the generator's speed measured here on one core; and the recipe's own validation split.
synthesize() {
    local plan=(--probe 2000) val=4000 shards per_shard val_seed
    [ "$SCALE" = tiny ] && plan=(--probe 100 --max-total 400 --shards-per-job 1) val=100
    PHASE_LOG=$LOGS/synth_plan.log phase synth_plan 60 $PY bench/gpu_run.py synth-plan --recipe $RECIPE \
        --seconds "$SYNTH_SECONDS" --jobs "$JOBS" --generator-out "$WORK/generator.json" \
        --plan "$WORK/synth_plan.json" "${plan[@]}" || return 1
    read -r shards per_shard val_seed < <(grep -E '^[0-9]+ [0-9]+ [0-9]+$' "$LOGS/synth_plan.log" | tail -n 1)
    [ -n "${val_seed:-}" ] || { skipped synth "no plan"; return 1; }
    local synth=(-m swipe.synth --layout hws_fitted --lexicon en --config "$WORK/generator.json" --grid-by-name)
    $PY "${synth[@]}" --count $val --seed "$val_seed" --out "$WORK/synth/val.jsonl" >"$LOGS/synth_val.log" 2>&1 &
    local val_pid=$!
    # Shards unfinished at the time limit are dropped (each file appears only when complete).
    seq 1000 $(( 999 + shards )) >"$WORK/synth/seeds.txt"
    phase synth "$(within $(( SYNTH_SECONDS * 2 + 60 )) $(( KEEP + 60 )))" xargs -a "$WORK/synth/seeds.txt" \
        -P "$JOBS" -I{} $PY "${synth[@]}" --count "$per_shard" --seed {} --out "$WORK/synth/train-{}.jsonl"
    wait $val_pid
}

build() {
    local shards=("$WORK"/synth/train-*.jsonl)
    if [ ! -e "${shards[0]}" ] || [ ! -e "$WORK/synth/val.jsonl" ]; then
        skipped build "no synthetic data"; return 1
    fi
    phase build_val 60 $PY -m swipe.data build "$WORK/synth/val.jsonl" --out "$WORK/data/val" --quiet &&
        phase build "$(within 240 $(( KEEP / 2 )))" $PY -m swipe.data build "${shards[@]}" \
            --out "$WORK/data/train" --quiet
}

# The optimizer step alone, on pre-collated batches: fp32, bf16 and fp16 (the CPU row at tiny scale).
throughput() {
    local bench=(--cuda-only --steps 25 --warmup 5 --curves 16384) batches="128 $BATCH" b
    [ "$SCALE" = tiny ] && bench=(--threads 1 --steps 2 --warmup 1 --curves 128) batches=$BATCH
    for b in $batches; do
        phase "throughput_$b" "$(within 120 "$KEEP")" $PY bench/bench_train.py --config $RECIPE \
            --batch-size "$b" --work "$WORK/bench" "${bench[@]}"
        [ -f "$LOGS/throughput_$b.log" ] &&
            { sed -n '/^training throughput/,$p' "$LOGS/throughput_$b.log"; echo; } >>"$OUT/throughput.md"
    done
}

# en_hws's recipe on the built data until 70 s before the deadline (the trainer stops itself in time
# to save; the phase's limit is a guard). Should mixed precision fail before a validation, fp32 gets
# the time left.
train() {
    local sets budget precision=auto
    if [ "$SCALE" = full ]; then
        sets=(--set data.num_workers=$(( CPUS > 4 ? CPUS - 2 : 1 )) --set max_steps=1000000
              --set schedule.warmup_steps=300)
    else
        sets=(--set data.num_workers=1 --set max_steps=4 --set validation.every_steps=2
              --set validation.max_curves=64 --set schedule.warmup_steps=1)
    fi
    [ "$INIT" = shipped ] && sets+=(--set "init_from=$SHIPPED")
    if [ ! -d "$WORK/data/train" ] || [ ! -d "$WORK/data/val" ]; then
        skipped train "no built data"; return 1
    fi
    RUN=$WORK/run
    while true; do
        PHASE_LOG=$LOGS/config.log phase config 60 $PY bench/gpu_run.py config $RECIPE "$RUN.json" \
            --set name=gpu_en_hws --set "data.train=$WORK/data/train" --set "data.val=$WORK/data/val" \
            --set data.synthetic=null --set "data.batch_size=$BATCH" --set "device=$DEVICE" \
            --set "precision=$precision" --set logging.progress_bar=false "${sets[@]}" || return 1
        budget=$(left 70)  # for the export, the real swipes and the summary
        [ "$budget" -ge 30 ] || { skipped "train${RUN#"$WORK"/run}" "no time left"; return 1; }
        PHASE_LOG=$OUT/train.log phase "train${RUN#"$WORK"/run}" $(( budget + 20 )) env PYTHONUNBUFFERED=1 \
            $PY train.py --config "$RUN.json" --run-dir "$RUN" --max-minutes "$(awk "BEGIN { print $budget / 60 }")" &&
            return 0
        if [ "$precision" = fp32 ] || [ -f "$RUN/checkpoints/best.pt" ] || [ "$(left 70)" -lt 60 ]; then
            return 1
        fi
        mv "$OUT/train.log" "$LOGS/train_amp.log"
        precision=fp32 RUN=$WORK/run_fp32
    done
}

# The best weights (the last ones when no validation ran), beside en_hws's decoding settings.
export_model() {
    local best=${RUN:-$WORK/run}/checkpoints/best.pt
    [ -f "$best" ] || best=${RUN:-$WORK/run}/checkpoints/last.pt
    if [ ! -f "$best" ]; then
        skipped export "no checkpoint"; return 1
    fi
    phase export "$(within 60 5)" $PY -m swipe.export "$best" --out "$OUT/model/model.pt" &&
        cp $SHIPPED/decoding.json "$RUN/config.json" "$OUT/model/"
}

# A first look at the real swipes: the 800 of hws_real_en_dev.jsonl (20 at tiny scale) decoded with
# beam 8 and prior 0.3 by en_hws and by the new model (choosing the decoding settings: docs/training.md).
real_swipes() {
    local some=()
    [ "$SCALE" = tiny ] && some=(--max-curves 20)
    [ -f "$OUT/model/model.pt" ] || { skipped real "no model"; return 1; }
    phase real "$(within 60 3)" $PY bench/eval_real.py $SHIPPED "$OUT/model" --generators beam \
        --beam-sizes 8 --prior-weights 0.3 "${some[@]}"
}

# ---- the run ------------------------------------------------------------------------------------

main() {
    PY=${PYTHON:-python3}
    SCALE=${SWIPE_GPU_SCALE:-full}
    while [ $# -gt 0 ]; do
        case $1 in
            --dry-run) SCALE=tiny ;;
            --out) OUT=${2:-}; shift ;;
            --out=*) OUT=${1#--out=} ;;
            -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; return 0 ;;
            *) echo "error: unknown argument $1 (try: bash bench/gpu_run.sh --dry-run --out /tmp/gpu-dry)" >&2
               return 2 ;;
        esac
        shift
    done
    if [ -z "${OUT:-}" ]; then
        echo "error: say where the results go: OUT=DIR bash bench/gpu_run.sh, or --out DIR" >&2; return 2
    fi
    if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
        echo "error: $OUT is not empty; give an empty or new folder" >&2; return 2
    fi
    case $SCALE in
        full) MINUTES=${SWIPE_GPU_MINUTES:-8.5} SYNTH_SECONDS=${SWIPE_GPU_SYNTH_SECONDS:-60}
              BATCH=${SWIPE_GPU_BATCH:-512} DEVICE=${SWIPE_GPU_DEVICE:-cuda} ;;
        tiny) MINUTES=${SWIPE_GPU_MINUTES:-10} SYNTH_SECONDS=${SWIPE_GPU_SYNTH_SECONDS:-10}
              BATCH=${SWIPE_GPU_BATCH:-32} DEVICE=${SWIPE_GPU_DEVICE:-cpu} ;;
        *) echo "error: SWIPE_GPU_SCALE must be full or tiny, not $SCALE" >&2; return 2 ;;
    esac
    INIT=${SWIPE_GPU_INIT:-shipped}
    case $INIT in shipped|scratch) ;; *) echo "error: SWIPE_GPU_INIT must be shipped or scratch" >&2; return 2 ;; esac
    if [ "$DEVICE" = cuda ] && ! $PY -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
        echo "error: no CUDA device here; for the steps on the CPU run: bash bench/gpu_run.sh --dry-run --out DIR" >&2
        return 2
    fi

    WORK=${SWIPE_GPU_WORK:-$(mktemp -d -t swipe-gpu-run-XXXXXX)}
    mkdir -p "$OUT/model" "$WORK/logs" "$WORK/synth" "$WORK/data" || return 2
    OUT=$(cd "$OUT" && pwd) WORK=$(cd "$WORK" && pwd)
    LOGS=$WORK/logs
    TOTAL=$(awk "BEGIN { printf \"%d\", $MINUTES * 60 }")
    DEADLINE=$(( SECONDS + TOTAL ))
    KEEP=$(( TOTAL * 45 / 100 ))  # kept for training and export, however long the preparation takes
    CPUS=$(nproc)
    JOBS=$(( CPUS > 2 ? CPUS - 1 : 1 ))
    [ "$SCALE" = tiny ] && JOBS=2
    FAILED=0
    trap finish EXIT
    trap 'exit 143' TERM INT
    printf '{"scale": "%s", "minutes": %s, "synth_seconds": %s, "batch_size": %s, "init": "%s", "device": "%s", "cpus": %s}\n' \
        "$SCALE" "$MINUTES" "$SYNTH_SECONDS" "$BATCH" "$INIT" "$DEVICE" "$CPUS" >"$WORK/settings.json"
    $PY -c "import os, torch; gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'; \
print(f'{gpu}; torch {torch.__version__}, CUDA {torch.version.cuda}; {os.cpu_count()} CPUs')" >"$WORK/env.txt" 2>&1
    echo "$(cat "$WORK/env.txt"); scale $SCALE, $MINUTES minutes; work in $WORK"

    # The CUDA tests (skipped without a GPU) beside the synthesis; the datasets are built while the
    # optimizer step is timed, once the tests are done with the GPU.
    phase tests 200 $PY -m pytest -m cuda tests/test_cuda.py -q -p no:cacheprovider --junitxml="$LOGS/tests.xml" &
    local tests=$!
    synthesize
    build &
    local building=$!
    wait $tests || FAILED=1
    throughput
    wait $building || FAILED=1
    summary
    train
    export_model
    real_swipes
    return $FAILED
}

main "$@"; exit $?  # one line: bash has read the whole script before the run starts
