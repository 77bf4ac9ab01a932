#!/usr/bin/python3
"""Reference outputs of distill's ResNet and TextCNN towers, computed with PyTorch modules built
here from the towers' configs (student.json), independently of distill's TypeScript.

Reads packages/student-architectures/src/fixtures/towers/{student.json, model.safetensors, inputs.json}
(written by tools/parity/export_towers_fixture.ts: the weights as distill exports them) and writes
reference.json there: tower features and L2-normalised projected embeddings, in float64.

    /usr/bin/python3 tools/parity/towers_reference.py

The architectures, as documented in resnet.ts / textcnn.ts / student.ts:
- ResNet: stem = Conv2d(C, stem, kernel = stride = stemPatch) + ReLU; per stage, basic blocks
  y = conv3x3(relu(conv3x3_s(x))), x <- relu(shortcut(x) + alpha * y), the first block of every
  stage after the first with stride 2, a 1x1 projection shortcut where the stride or channels change;
  no batch norm; feature = LayerNorm(global average pool). Convolutions pad as TensorFlow's 'same'
  (total padding max((ceil(n/s)-1)*s + k - n, 0), the odd pixel at the bottom/right).
- TextCNN: embeddings (zeroed at padding), per width w a Conv1d(E, F, w) with 'same' padding (as
  above: the extra zero on the right for even w), ReLU, max over the caption's real tokens; features
  concatenated in the config's width order.
- Student head: fc(feature) = feature @ W + b (W stored [in, out]), then divided by its L2 norm.

Besides the reference, the script prints (and stores under "notes") how far two natural PyTorch
readings are from distill's convention: torchvision-style symmetric padding=1 for the ResNet 3x3
convolutions, and Kim's (2014) narrow 'valid' convolutions for the TextCNN.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "packages", "student-architectures", "src", "fixtures", "towers")
torch.set_default_dtype(torch.float64)


def read_safetensors(path):
    """name -> float64 tensor (F32 only, as distill writes)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n].decode("utf8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        arr = np.frombuffer(buf[base + a : base + b], dtype="<f4").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float64))
    return out


def same_pad(n, k, s):
    """TensorFlow 'same': (before, after) along one axis."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow 'same' padding (asymmetric when the total is odd)."""

    def __init__(self, cin, cout, k, stride, symmetric=False):
        super().__init__(cin, cout, k, stride=stride, padding=(k // 2 if symmetric else 0))
        self.symmetric = symmetric

    def forward(self, x):
        if not self.symmetric:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = same_pad(x.shape[2], k, s)
            left, right = same_pad(x.shape[3], k, s)
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, projection, symmetric):
        super().__init__()
        self.conv1 = SameConv2d(cin, cout, 3, stride, symmetric)
        self.conv2 = SameConv2d(cout, cout, 3, 1, symmetric)
        self.scale = nn.Parameter(torch.zeros(1))
        self.shortcut = SameConv2d(cin, cout, 1, stride) if projection else None

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        short = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(short + self.scale * y)


class ResNet(nn.Module):
    def __init__(self, c, symmetric=False):
        super().__init__()
        P = c["stemPatch"]
        self.stem = nn.Conv2d(c["numChannels"], c["stemChannels"], P, stride=P)
        self.stages = nn.ModuleList()
        cin = c["stemChannels"]
        for si, (cout, nb) in enumerate(zip(c["stageChannels"], c["blocksPerStage"])):
            blocks = nn.ModuleList()
            for b in range(nb):
                first = b == 0
                stride = 2 if first and si > 0 else 1
                inc = cin if first else cout
                blocks.append(BasicBlock(inc, cout, stride, first and (si > 0 or inc != cout), symmetric))
            self.stages.append(nn.ModuleDict({"blocks": blocks}))
            cin = cout
        self.norm = nn.LayerNorm(cin, eps=c["layerNormEps"])

    def forward(self, pixels):
        x = F.relu(self.stem(pixels))
        for stage in self.stages:
            for block in stage["blocks"]:
                x = block(x)
        return self.norm(x.mean(dim=(2, 3)))

    def load_distill(self, w, prefix):
        """distill layouts: stem [C*P*P, out] over (c, y, x)-flattened patches; convs [kh, kw, in, out]."""
        with torch.no_grad():
            st = w[prefix + "stem.weight"]
            self.stem.weight.copy_(st.t().reshape(self.stem.weight.shape))
            self.stem.bias.copy_(w[prefix + "stem.bias"])
            for si, stage in enumerate(self.stages):
                for b, block in enumerate(stage["blocks"]):
                    q = f"{prefix}stages.{si}.blocks.{b}."
                    for name in ["conv1", "conv2", "shortcut"]:
                        conv = getattr(block, name)
                        if conv is None:
                            assert q + name + ".weight" not in w
                            continue
                        conv.weight.copy_(w[q + name + ".weight"].permute(3, 2, 0, 1))
                        conv.bias.copy_(w[q + name + ".bias"])
                    block.scale.copy_(w[q + "scale"])
            self.norm.weight.copy_(w[prefix + "norm.weight"])
            self.norm.bias.copy_(w[prefix + "norm.bias"])


class TextCNN(nn.Module):
    def __init__(self, c, valid=False):
        super().__init__()
        self.widths = c["kernelWidths"]
        self.valid = valid
        self.embed = nn.Embedding(c["vocabSize"], c["embeddingSize"])
        self.convs = nn.ModuleList(nn.Conv1d(c["embeddingSize"], c["filters"], w) for w in self.widths)

    def forward(self, ids, mask):
        m = mask.to(torch.float64)
        x = (self.embed(ids) * m[:, :, None]).transpose(1, 2)  # [B, E, L]
        feats = []
        for w, conv in zip(self.widths, self.convs):
            if self.valid:
                # Kim (2014): narrow convolution over the real tokens only (a caption shorter than w gets w-1 zeros)
                rows = []
                for b in range(ids.shape[0]):
                    n = int(m[b].sum())
                    xb = x[b : b + 1, :, :n]
                    if n < w:
                        xb = F.pad(xb, (0, w - n))
                    rows.append(F.relu(conv(xb)).amax(dim=2))
                feats.append(torch.cat(rows, 0))
                continue
            left, right = same_pad(ids.shape[1], w, 1)
            y = F.relu(conv(F.pad(x, (left, right))))  # [B, F, L]
            y = y.masked_fill(m[:, None, :] == 0, float("-inf"))
            feats.append(y.amax(dim=2))
        return torch.cat(feats, 1)

    def load_distill(self, w, prefix):
        """distill layouts: word embeddings [V, E]; convs [w, E, F]."""
        with torch.no_grad():
            self.embed.weight.copy_(w[prefix + "embeddings.word_embeddings.weight"])
            for k, conv in zip(self.widths, self.convs):
                conv.weight.copy_(w[f"{prefix}convs.{k}.weight"].permute(2, 1, 0))
                conv.bias.copy_(w[f"{prefix}convs.{k}.bias"])


def project(feat, w, name):
    e = feat @ w[name + ".weight"] + w[name + ".bias"]
    return e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)


def tensor(spec, dtype):
    return torch.tensor(spec["data"], dtype=dtype).reshape(spec["shape"])


def main():
    cfg = json.load(open(os.path.join(FIXTURE, "student.json")))
    inputs = json.load(open(os.path.join(FIXTURE, "inputs.json")))
    w = read_safetensors(os.path.join(FIXTURE, "model.safetensors"))
    assert cfg["image"]["type"] == "resnet" and cfg["text"]["type"] == "textcnn", cfg["pair"]
    pixels = tensor(inputs["pixels"], torch.float64)
    ids = tensor(inputs["ids"], torch.long)
    mask = tensor(inputs["mask"], torch.long)

    resnet = ResNet(cfg["image"]["config"]).eval()
    resnet.load_distill(w, "image.")
    textcnn = TextCNN(cfg["text"]["config"]).eval()
    textcnn.load_distill(w, "text.")
    # every exported tensor is used exactly once
    used = sum(p.numel() for p in list(resnet.parameters()) + list(textcnn.parameters()))
    used += sum(w[k].numel() for k in w if k.startswith(("image_proj.", "text_proj.")))
    assert used == sum(t.numel() for t in w.values()), (used, sum(t.numel() for t in w.values()))

    with torch.no_grad():
        image_features = resnet(pixels)
        text_features = textcnn(ids, mask)
        image_embeds = project(image_features, w, "image_proj")
        text_embeds = project(text_features, w, "text_proj")

        # the natural PyTorch readings distill does not follow
        sym = ResNet(cfg["image"]["config"], symmetric=True).eval()
        sym.load_distill(w, "image.")
        d_sym = (sym(pixels) - image_features).abs().max().item()
        kim = TextCNN(cfg["text"]["config"], valid=True).eval()
        kim.load_distill(w, "text.")
        d_kim = (kim(ids, mask) - text_features).abs().max().item()

    notes = {
        "resnet_symmetric_padding_max_abs_diff": d_sym,
        "textcnn_valid_convolution_max_abs_diff": d_kim,
        "text": "distill pads its convolutions as TensorFlow 'same' (stride-2 3x3: 0 before, 1 after; even text widths: the extra zero after). "
        "The values above are how far torchvision-style symmetric padding=1 (ResNet) and Kim-style valid convolutions (TextCNN) are from it.",
    }
    ref = {
        "description": "Outputs of distill's resnet + textcnn towers for fixtures/towers/{student.json, model.safetensors, inputs.json}, "
        "computed in float64 by tools/parity/towers_reference.py (PyTorch modules built from the configs).",
        "torch": torch.__version__,
        "outputs": {
            "image_features": image_features.tolist(),
            "text_features": text_features.tolist(),
            "image_embeds": image_embeds.tolist(),
            "text_embeds": text_embeds.tolist(),
        },
        "notes": notes,
    }
    with open(os.path.join(FIXTURE, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(json.dumps({"wrote": os.path.relpath(os.path.join(FIXTURE, "reference.json")), **{k: v for k, v in notes.items() if k != "text"}}))


if __name__ == "__main__":
    sys.exit(main())
