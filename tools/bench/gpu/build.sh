#!/usr/bin/env bash
# Builds the self-contained GPU benchmark bundle for a machine with PyTorch but no Node.js and no
# network, which accepts at most 64 MiB of files per command:
#   tools/bench/gpu/out/run.sh                   unpacks and runs (see run.sh)
#   tools/bench/gpu/out/distill-gpu-bench.tar.xz node binary (stripped), bench.cjs (esbuild bundle of
#                                                tools/bench/gpu/bench.ts: the reference step), student.cjs
#                                                (student-bench.ts: the engine's resident student step),
#                                                onnxruntime-node's native library, libvulkan.so.1 (from
#                                                Debian's libvulkan1 .deb), the PyTorch peers (torch_step.py
#                                                + reference_step.py, torch_base_step.py + base_step.py)
# Run from anywhere: bash tools/bench/gpu/build.sh   (out/ is git-ignored; nothing here is installed;
# XZ_LEVEL=6 compresses in minutes instead of ~20 on a loaded 2-core machine, a few MiB larger)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out="$here/out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
b="$stage/distill-gpu-bench"
mkdir -p "$b/app/dist" "$b/app/bin/napi-v6/linux/x64" "$b/app/node_modules/sharp" "$b/lib" "$b/py" "$out"
cd "$root"

echo "== bench.cjs (esbuild)"
# onnxruntime-node loads ../bin/napi-v6/<platform>/<arch>/onnxruntime_binding.node relative to the bundle
# import.meta.url is rewritten to the bundle's own file URL (createRequire(import.meta.url) in core and data)
meta=(--banner:js="const __importMetaUrl=require('url').pathToFileURL(__filename).href;" --define:import.meta.url=__importMetaUrl)
npx esbuild tools/bench/gpu/bench.ts --bundle --minify --platform=node --format=cjs --target=node20 \
  --conditions=@distill/source --external:'*.node' "${meta[@]}" --outfile="$b/app/dist/bench.cjs" --log-level=warning

echo "== student.cjs (esbuild: the engine's step; sharp, which it never calls, is a stub that throws)"
npx esbuild tools/bench/gpu/student-bench.ts --bundle --minify --platform=node --format=cjs --target=node20 \
  --conditions=@distill/source --external:'*.node' --external:sharp "${meta[@]}" --outfile="$b/app/dist/student.cjs" --log-level=error
echo "module.exports = () => { throw new Error('sharp (image decoding) is not part of the GPU benchmark bundle'); };" > "$b/app/node_modules/sharp/index.js"

echo "== onnxruntime-node native library"
ort="node_modules/onnxruntime-node/bin/napi-v6/linux/x64"
cp "$ort/onnxruntime_binding.node" "$ort/libonnxruntime.so.1" "$b/app/bin/napi-v6/linux/x64/"

echo "== node $(node --version) (stripped copy)"
strip -o "$b/node" "$(readlink -f "$(command -v node)")"

echo "== libvulkan.so.1 (apt-get download libvulkan1: a download, nothing is installed)"
deb=$(mktemp -d)
(cd "$deb" && apt-get download -qq libvulkan1 >/dev/null)
dpkg-deb -x "$deb"/libvulkan1_*.deb "$deb/x"
cp -L "$deb"/x/usr/lib/x86_64-linux-gnu/libvulkan.so.1 "$b/lib/"
basename "$deb"/libvulkan1_*.deb > "$b/lib/libvulkan1.version"
rm -rf "$deb"

echo "== PyTorch peer"
cp tools/bench/reference_step.py tools/bench/gpu/torch_step.py tools/bench/base_step.py tools/bench/gpu/torch_base_step.py "$b/py/"
git rev-parse --short HEAD > "$b/COMMIT" 2>/dev/null || true

echo "== compress"
rm -f "$out/distill-gpu-bench.tar.xz"
tar -C "$stage" -cf - distill-gpu-bench | xz -"${XZ_LEVEL:-9}" -T2 > "$out/distill-gpu-bench.tar.xz"  # XZ_LEVEL=6: faster, a few MiB larger
cp "$here/run.sh" "$out/run.sh"
chmod +x "$out/run.sh"
du -b "$b"/node "$b"/app/dist/bench.cjs "$b"/app/dist/student.cjs "$b"/app/bin/napi-v6/linux/x64/* "$b"/lib/libvulkan.so.1 | awk '{printf "  %-60s %6.1f MiB\n", substr($2, length("'"$stage"'") + 2), $1 / 1048576}'
total=$(du -cb "$out/distill-gpu-bench.tar.xz" "$out/run.sh" | tail -1 | cut -f1)
awk -v t="$total" 'BEGIN { printf "bundle: tools/bench/gpu/out (run.sh + distill-gpu-bench.tar.xz) = %.1f MiB (limit 64 MiB)\n", t / 1048576 }'
[ "$total" -lt $((64 * 1024 * 1024)) ] || { echo "bundle is over 64 MiB" >&2; exit 1; }
