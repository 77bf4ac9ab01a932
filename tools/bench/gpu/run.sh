#!/usr/bin/env bash
# Runs the reference transformer's training step on onnxruntime-node (WebGPU, from this bundle's own
# Node binary) and the same step in PyTorch on the same machine, then prints ms/step for each and
# `ratio_vs_pytorch_gpu=<onnx best / pytorch fp32>` as the last line. Needs: python3 with torch, and
# for WebGPU a Vulkan driver (the NVIDIA driver's ICD; found below, or made from libGLX_nvidia.so.0).
#
#   bash run.sh                                  # webgpu vs pytorch cuda, reference sizes
#   bash run.sh --device cpu                     # the CPU dry run (onnx cpu vs pytorch cpu)
#   bash run.sh --layers 12 --dim 768 --heads 12 --mlp 3072 --seq 197 --batch 64   # other sizes
# Options: --device webgpu|cpu, --torch-device cuda|cpu, --python <interpreter>, --modes resident,upload;
# any other --name value is passed to both benchmarks (layers batch seq dim heads mlp warmup steps).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
device=webgpu torch_device= python=${PYTHON:-python3} modes=resident,upload
common=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device=$2; shift 2 ;;
    --torch-device) torch_device=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --*) common+=("$1" "$2"); shift 2 ;;
    *) echo "run.sh: unexpected argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$torch_device" ] || { [ "$device" = webgpu ] && torch_device=cuda || torch_device=cpu; }

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
results=()
echo "== onnxruntime-node on $device"
while IFS= read -r line; do
  case "$line" in \{*) results+=("$line"); echo "$line" ;; *) echo "$line" >&2 ;; esac
done < <("$d/node" "$d/app/dist/bench.cjs" --device "$device" --modes "$modes" "${common[@]}" 2>&1 | grep -v 'artificially reduced')
[ ${#results[@]} -gt 0 ] || { echo "the onnxruntime benchmark printed no result" >&2; exit 1; }

echo "== pytorch on $torch_device"
torch_fp32=$("$python" "$d/py/torch_step.py" --device "$torch_device" "${common[@]}")
echo "$torch_fp32"
if [ "$torch_device" = cuda ]; then
  torch_tf32=$("$python" "$d/py/torch_step.py" --device cuda --tf32 "${common[@]}")
  echo "$torch_tf32"
fi

echo "== ms/step"
best=
for r in "${results[@]}"; do
  ms=$(json_field "$r" ms_per_step)
  printf '  %-48s %10s\n' "$(json_field "$r" engine)" "$ms"
  if [ -z "$best" ] || awk -v a="$ms" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$ms; fi
done
tms=$(json_field "$torch_fp32" ms_per_step)
printf '  %-48s %10s\n' "$(json_field "$torch_fp32" engine) fp32" "$tms"
[ -n "${torch_tf32:-}" ] && printf '  %-48s %10s\n' "$(json_field "$torch_tf32" engine)" "$(json_field "$torch_tf32" ms_per_step)"
tag=$([ "$torch_device" = cuda ] && echo gpu || echo "$torch_device")
echo "ratio_vs_pytorch_${tag}=$(awk -v a="$best" -v b="$tms" 'BEGIN{printf "%.2f", a/b}')"
