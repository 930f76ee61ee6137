#!/usr/bin/env bash
# The CUDA path in one command (under 8 minutes on one GPU): the `cuda` tests (training steps in
# fp32, bf16 and fp16 with the scaler, exact resume, decoding against the CPU), then the CUDA rows
# of the training and decoding benchmarks; one table at the end, the full logs beside it.
#
#     bash bench/gpu_check.sh            # from the repository root
#
# bench/gpu_run.sh runs the same tests within one call that also trains and exports a model.
# Exit status: 0 when every check passed, 1 when one failed, 2 when there is no CUDA device.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOGS=$(mktemp -d -t swipe-gpu-check-XXXXXX)

if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    $PY -c "import torch; print(f'no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}): nothing to check')" \
        2>/dev/null || echo "no CUDA device here (torch does not import): nothing to check"
    exit 2
fi

echo "logs in $LOGS"
echo "1/3 cuda tests ..."
timeout 240 $PY -m pytest -m cuda tests/test_cuda.py -q -p no:cacheprovider --junitxml="$LOGS/tests.xml" \
    >"$LOGS/tests.log" 2>&1
echo "2/3 training benchmark ..."
timeout 150 $PY bench/bench_train.py --preset small --batch-size 128 --steps 20 --curves 4096 \
    >"$LOGS/train.log" 2>&1
echo "3/3 decoding benchmark ..."
timeout 150 $PY bench/bench_decoding.py --device cuda --checkpoint swipe/resources/models/en_hws \
    --num-curves 800 --naive-curves 8 --latency-curves 100 --repeats 1 --workers 0 \
    >"$LOGS/decoding.log" 2>&1

$PY - "$LOGS" <<'EOF'
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

logs = Path(sys.argv[1])
rows, failed = [], False
try:
    for case in ET.parse(logs / "tests.xml").getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = tag
        failed |= outcome in ("failure", "error")
        rows.append(("test " + case.get("name", "?"), outcome, f"{float(case.get('time', 0)):.1f} s"))
except (OSError, ET.ParseError):
    failed = True
    rows.append(("cuda tests", "did not finish", "see tests.log"))


def table_rows(name: str) -> list[list[str]]:
    text = (logs / name).read_text(errors="replace") if (logs / name).exists() else ""
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| -")]


# device, precision, batch, batches by, padding, ms/step, CPU ms/step, curves/s, tokens/s
train = [r for r in table_rows("train.log") if len(r) == 9 and r[1] in ("fp32", "bf16", "fp16+scaler")]
for r in train:
    device = "cpu" if r[0].startswith("cpu") else "cuda"
    rows.append((f"train step {device} {r[1]} (small, batch {r[2]})", "ok", f"{r[5]} ms/step, {r[7]} curves/s"))
if not any(not r[0].startswith("cpu") for r in train):
    failed = True
    rows.append(("training benchmark", "no CUDA rows", "see train.log"))
decoding = [r for r in table_rows("decoding.log") if r[0].startswith(("batched cached beam", "single swipe"))]
for r in decoding:
    rows.append((f"decode: {r[0]}", "ok", r[1] + (f"; {r[3]}" if r[0].endswith("cuda") else "")))
if not any(r[0].endswith("cuda") for r in decoding):
    failed = True
    rows.append(("decoding benchmark", "no CUDA rows", "see decoding.log"))

print(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}")
widths = [max(len(r[i]) for r in rows + [("check", "result", "detail")]) for i in range(3)]
for row in [("check", "result", "detail"), tuple("-" * w for w in widths), *rows]:
    print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
print(f"\nlogs: {logs}")
sys.exit(1 if failed else 0)
EOF
