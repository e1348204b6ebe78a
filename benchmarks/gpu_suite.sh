#!/usr/bin/env bash
# The GPU figures of benchmarks/RESULTS.md, part by part, each part's JSON into OUT_DIR:
#   bash benchmarks/gpu_suite.sh OUT_DIR check     # GPU tests + the README quickstart trained and translated on the GPU
#   bash benchmarks/gpu_suite.sh OUT_DIR main      # every model and translate, fp32 / bf16 / bf16 + channels-last, vs the classic code
#   bash benchmarks/gpu_suite.sh OUT_DIR train     # training at the classic settings vs the classic code, fp32 / bf16, and without the NaN guard
#   bash benchmarks/gpu_suite.sh OUT_DIR no-tf32   # training in strict fp32 (no TF32 tensor cores): vs the classic code, and at batch 32
#   bash benchmarks/gpu_suite.sh OUT_DIR scaling   # images/s and peak memory against batch size, training and inference
#   bash benchmarks/gpu_suite.sh OUT_DIR compile   # torch.compile variants
#   bash benchmarks/gpu_suite.sh OUT_DIR precision # issue 20: what `precision: auto` picks on this GPU, and bf16 vs fp32 quality (3 seeds)
#   bash benchmarks/gpu_suite.sh OUT_DIR capture   # issue 29, ONE device call of <= 9 min: the captured step's correctness, then
#                                                  # eager / captured x fp32 / bf16 against the classic code, batch 32, translate
#   DRY_RUN=1 bash benchmarks/gpu_suite.sh OUT_DIR capture   # the same plumbing on a CPU (aot_eager, 64 px, 1 step): no figures
# A dedicated GPU is not a shared CPU: one round with more steps is enough (the spread is in the JSON).
set -uo pipefail
out=${1:?usage: gpu_suite.sh OUT_DIR PART}
part=${2:?usage: gpu_suite.sh OUT_DIR PART}
mkdir -p "$out"
py=${PYTHON:-python3}
bench() { "$py" benchmarks/bench.py --device cuda "$@"; }

case $part in
check)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$py" -c "import torch, lightning; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'lightning', lightning.__version__)"
    # GAN_TRANSLATE_COMPILE_TESTS=1: also inductor-compiled against eager training losses (too slow for 2-core CI).
    GAN_TRANSLATE_COMPILE_TESTS=1 "$py" -m pytest tests/callbacks/test_precision.py tests/training/test_auto_precision.py \
        -q -x -p no:cacheprovider
    # The README's main job on the GPU: the quickstart config, then translate with the GPU.
    rm -rf runs/cyclegan_quickstart outputs/cyclegan_quickstart
    start=$(date +%s)
    "$py" -m gan_translate fit --config configs/cyclegan/quickstart.yaml --trainer.accelerator gpu || exit 1
    echo "quickstart fit on the GPU: $(( $(date +%s) - start )) s"
    start=$(date +%s)
    "$py" -m gan_translate translate --checkpoint runs/cyclegan_quickstart --input data/synthetic/testA \
        --output outputs/cyclegan_quickstart --device cuda --overwrite || exit 1
    echo "translate on the GPU: $(( $(date +%s) - start )) s, $(ls outputs/cyclegan_quickstart | wc -l) files"
    "$py" -m gan_translate evaluate --checkpoint runs/cyclegan_quickstart --data data/synthetic --feature random-conv \
        --output "$out/quickstart-eval-cuda.json" --device cuda
    ;;
main)
    # Every model at the classic settings and translate at batch 1 / 8 / 32, against the classic code.
    bench --mode paired --rounds 1 --warmup 5 --steps 20 --variants fp32,bf16,bf16+cl --infer-batch 8,32 \
        --json "$out/results-cuda.json"
    ;;
train)
    # Each model's training step at the classic settings, step by step against the classic code.
    bench --mode paired --kinds train --rounds 1 --warmup 5 --steps 30 --variants fp32,bf16 \
        --json "$out/results-cuda-train.json"
    # The same without the per-step NaN guard (a device sync per optimiser step): its price.
    bench --mode paired --kinds train --rounds 1 --warmup 5 --steps 30 --variants fp32 --skip-nan-check \
        --json "$out/results-cuda-train-no-nan-check.json"
    ;;
no-tf32)
    # torch lets cuDNN run fp32 convolutions as TF32 by default; this is the strict-fp32 reference.
    bench --mode paired --kinds train --rounds 1 --warmup 5 --steps 20 --variants fp32 --no-tf32 \
        --json "$out/results-cuda-train-no-tf32.json"
    bench --models cyclegan,pix2pix --kinds train --mode solo --batch 32 --variants fp32 --no-tf32 \
        --warmup 2 --steps 6 --rounds 1 --no-classic --json "$out/results-cuda-train-no-tf32-b32.json"
    ;;
scaling)
    # images/s against batch size (solo: peak memory per case), training and inference.
    bench --models cyclegan,pix2pix --kinds train --mode solo --batch 1,4,16,32 --variants fp32,bf16 \
        --warmup 3 --steps 10 --rounds 1 --no-classic --json "$out/results-cuda-train-scaling.json"
    bench --models dcgan --kinds train --mode solo --batch 32,128,512 --variants fp32,bf16 \
        --warmup 3 --steps 10 --rounds 1 --no-classic --json "$out/results-cuda-dcgan-scaling.json"
    bench --kinds infer --mode solo --infer-batch 4,16,64 --variants fp32,bf16 --warmup 3 --steps 10 --rounds 1 \
        --no-classic --json "$out/results-cuda-infer-batch.json"
    ;;
compile)
    # Where the GPU is busy (batch 32): does fusing norm + activation kernels widen bf16's lead over fp32?
    bench --models cyclegan,pix2pix --kinds train --mode solo --batch 32 --variants compile,bf16+compile \
        --warmup 3 --steps 8 --rounds 1 --no-classic --json "$out/results-cuda-compile-b32.json"
    # At the classic settings against the classic code, and translate.
    bench --mode paired --rounds 1 --warmup 3 --steps 20 --variants compile,bf16+compile --infer-batch 32 \
        --json "$out/results-cuda-compile.json"
    ;;
precision)
    # `precision: auto` on this GPU (the one line it prints), then the quality check behind making it the default:
    # validation L1 / PSNR of bf16-mixed against fp32 training, 3 seeds each, at the quickstart's size.
    "$py" -c "from gan_translate.training.precision import resolve_auto_precision as r; print(r('cuda').line())"
    timeout 330 "$py" benchmarks/precision_check.py --accelerator cuda --size 64 --blocks 3 --ngf 16 --ndf 32 \
        --steps 2000 --json "$out/results-cuda-precision.json"
    ;;
capture)
    # Issue 29 in one call of <= 9 min on an H100 / H200: each step has its own time limit, in the order of what matters
    # most, and each JSON is written after every case, so a step cut short still returns what it measured.
    # DRY_RUN: the same commands on a CPU with the last word given to tiny settings (later flags win).
    dry=(); b32=32; scale=1
    if [[ -n "${DRY_RUN:-}" ]]; then
        dry=(--device cpu --compile-backend aot_eager --quick --steps 1 --warmup 1); b32=2; scale=2
    else
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
        # 1. correctness: 20 batches of inductor's CUDA graph replay against eager, to bf16 tolerance (~60 s)
        timeout 100 "$py" -m pytest tests/callbacks/test_captured_step.py -q -x -p no:cacheprovider
    fi
    # 2. each model at the classic settings against its classic step (CUT: classic_cut_reference.py), eager and
    #    captured, fp32 and bf16. Targets: CycleGAN, CUT, pix2pix >= 2.0x, DCGAN >= 1.5x. Seconds: compilation
    #    of the two captured variants is most of each limit.
    for model_limit in cyclegan:100 cut:100 pix2pix:65 dcgan:55; do
        model=${model_limit%%:*}
        timeout $(( ${model_limit##*:} * scale )) "$py" benchmarks/bench.py --device cuda --models "$model" --mode paired \
            --kinds train --rounds 1 --warmup 3 --steps 15 --variants fp32,capture,bf16,bf16+capture \
            --json "$out/results-capture-train-$model.json" "${dry[@]}"
    done
    # 3. CycleGAN 256 px batch 32, bf16 eager and captured (target >= 150 images/s on an H200)
    timeout $(( 60 * scale )) "$py" benchmarks/bench.py --device cuda --models cyclegan --kinds train --mode solo \
        --batch "$b32" --variants bf16,bf16+capture --warmup 3 --steps 8 --rounds 1 --no-classic \
        --json "$out/results-capture-b32.json" "${dry[@]}"
    # 4. translate at batch 8 (fp32, bf16)
    timeout $(( 40 * scale )) "$py" benchmarks/bench.py --device cuda --kinds infer --mode paired --infer-batch 8 \
        --variants fp32,bf16 --rounds 1 --warmup 3 --steps 10 --json "$out/results-capture-infer.json" "${dry[@]}"
    ;;
*) echo "unknown part: $part" >&2; exit 2 ;;
esac
