#!/usr/bin/env bash
# Runs, on onnxruntime-node (WebGPU, from this bundle's own Node binary) and in PyTorch on the same
# machine: the reference transformer's training step, and the engine's step of the paper's student
# (vit-bert base at batch 64, student.cjs: weights, AdamW moments, gradients and saved activations
# resident on the device, vs the upload form). Prints ms/step for each, `ratio_vs_pytorch_gpu_base=`
# for the student step, and `ratio_vs_pytorch_gpu=<onnx best / pytorch fp32>` (reference step) last.
# Needs: python3 with torch, and for WebGPU a Vulkan driver (the NVIDIA driver's ICD; found below, or
# made from libGLX_nvidia.so.0).
#
#   bash run.sh                                  # webgpu vs pytorch cuda: reference sizes, then vit-bert base batch 64
#   bash run.sh --device cpu --base-size tiny --base-batch 4   # the CPU dry run (no PyTorch peer below size base)
#   bash run.sh --workload reference --layers 12 --dim 768 --heads 12 --mlp 3072 --seq 197 --batch 64
# Options: --device webgpu|cpu, --torch-device cuda|cpu, --python <interpreter>, --modes resident,upload,
# --workload all|reference|base, --base-size tiny|small|base, --base-batch N, --base-warmup N, --base-steps N;
# any other --name value is passed to both reference benchmarks (layers batch seq dim heads mlp warmup steps).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
device=webgpu torch_device= python=${PYTHON:-python3} modes=resident,upload
workload=all base_size=base base_batch=64 base_warmup=2 base_steps=5
common=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --torch-device) torch_device=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --workload) workload=$2; shift 2 ;;
    --base-size) base_size=$2; shift 2 ;;
    --base-batch) base_batch=$2; shift 2 ;;
    --base-warmup) base_warmup=$2; shift 2 ;;
    --base-steps) base_steps=$2; shift 2 ;;
    --*) common+=("$1" "$2"); shift 2 ;;
    *) echo "run.sh: unexpected argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$torch_device" ] || { [ "$device" = webgpu ] && torch_device=cuda || torch_device=cpu; }
case "$workload" in all|reference|base) ;; *) echo "run.sh: --workload all|reference|base, not $workload" >&2; exit 2 ;; esac

dest="${TMPDIR:-/tmp}/distill-gpu-bench"
rm -rf "$dest" && mkdir -p "$dest"
t0=$(date +%s.%N)
if command -v xz >/dev/null && tar --version >/dev/null 2>&1; then
  xz -dc "$here/distill-gpu-bench.tar.xz" | tar -C "$dest" -xf -
else
  "$python" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$here/distill-gpu-bench.tar.xz" "$dest"
fi
d="$dest/distill-gpu-bench"
echo "unpacked to $d in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (commit $(cat "$d/COMMIT" 2>/dev/null || echo ?), $(cat "$d/lib/libvulkan1.version"))"
export LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ "$device" = webgpu ] && [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
    /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && { export VK_DRIVER_FILES="$f"; break; }
  done
  if [ -z "${VK_DRIVER_FILES:-}" ]; then
    glx=$( (ldconfig -p 2>/dev/null || true) | awk '/libGLX_nvidia\.so\.0 .*x86-64/ {print $NF; exit}')
    for g in /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0 /usr/local/nvidia/lib64/libGLX_nvidia.so.0 /usr/lib64/libGLX_nvidia.so.0; do
      [ -z "$glx" ] && [ -f "$g" ] && glx=$g
    done
    if [ -n "$glx" ]; then
      printf '{"file_format_version":"1.0.1","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" > "$d/nvidia_icd.json"
      export VK_DRIVER_FILES="$d/nvidia_icd.json"
    fi
  fi
  echo "vulkan driver: ${VK_DRIVER_FILES:-none found (default search of the Vulkan loader: lavapipe on a CPU machine)}"
fi

json_field() { "$python" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
tag=$([ "$torch_device" = cuda ] && echo gpu || echo "$torch_device")
# onnx_rows <cjs> <args...>: runs one bundled benchmark, fills `results` with its JSON lines
onnx_rows() {
  results=()
  while IFS= read -r line; do
    case "$line" in \{*) results+=("$line"); echo "$line" ;; *) echo "$line" >&2 ;; esac
  done < <("$d/node" "$d/app/dist/$1" "${@:2}" 2>&1 | grep -v 'artificially reduced')
  [ ${#results[@]} -gt 0 ] || { echo "$1 printed no result" >&2; exit 1; }
}
# table <torch json> <torch tf32 json or ''> <ratio name>: ms/step of `results` and the torch peer; the ratio line
table() {
  local best= ms r
  for r in "${results[@]}"; do
    ms=$(json_field "$r" ms_per_step)
    printf '  %-56s %10s\n' "$(json_field "$r" engine)" "$ms"
    if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$ms; fi
  done
  if [ -z "$1" ]; then echo "$3=unavailable (no PyTorch peer)"; return; fi
  local tms; tms=$(json_field "$1" ms_per_step)
  printf '  %-56s %10s\n' "$(json_field "$1" engine) fp32" "$tms"
  [ -n "$2" ] && printf '  %-56s %10s\n' "$(json_field "$2" engine)" "$(json_field "$2" ms_per_step)"
  echo "$3=$(awk -v a="$best" -v b="$tms" 'BEGIN{printf "%.2f", a/b}')"
}

summary_base=
if [ "$workload" != reference ]; then
  echo "== the engine's student step (vit-bert $base_size, batch $base_batch) on onnxruntime-node, $device"
  onnx_rows student.cjs --device "$device" --modes "$modes" --size "$base_size" --batch "$base_batch" --warmup "$base_warmup" --steps "$base_steps"
  base_rows=("${results[@]}")
  bt32= bt=
  if [ "$base_size" = base ]; then
    echo "== pytorch vit-bert base on $torch_device"
    bt=$("$python" "$d/py/torch_base_step.py" --device "$torch_device" --batch "$base_batch" --warmup "$base_warmup" --steps "$base_steps")
    echo "$bt"
    [ "$torch_device" = cuda ] && { bt32=$("$python" "$d/py/torch_base_step.py" --device cuda --tf32 --batch "$base_batch" --warmup "$base_warmup" --steps "$base_steps"); echo "$bt32"; }
  fi
  summary_base=$(table "$bt" "$bt32" "ratio_vs_pytorch_${tag}_base")
fi

if [ "$workload" != base ]; then
  echo "== reference step: onnxruntime-node on $device"
  onnx_rows bench.cjs --device "$device" --modes "$modes" "${common[@]}"
  echo "== reference step: pytorch on $torch_device"
  torch_fp32=$("$python" "$d/py/torch_step.py" --device "$torch_device" "${common[@]}")
  echo "$torch_fp32"
  torch_tf32=
  [ "$torch_device" = cuda ] && { torch_tf32=$("$python" "$d/py/torch_step.py" --device cuda --tf32 "${common[@]}"); echo "$torch_tf32"; }
fi

echo "== ms/step"
[ -n "$summary_base" ] && echo "$summary_base"
[ "$workload" != base ] && table "$torch_fp32" "$torch_tf32" "ratio_vs_pytorch_${tag}"
exit 0
