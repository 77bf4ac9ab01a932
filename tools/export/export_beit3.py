#!/usr/bin/env python3
"""Export a BEiT-3 retrieval checkpoint as a distill teacher folder (the DSMD paper's teacher).

Run where PyTorch, timm, torchscale and Microsoft's unilm/beit3 code are installed (NOT run in CI;
distill itself never needs Python):

    git clone https://github.com/microsoft/unilm && pip install torchscale timm sentencepiece transformers
    python tools/export/export_beit3.py --beit3-dir unilm/beit3 \
        --checkpoint beit3_base_patch16_384_f30k_retrieval.pth --sentencepiece beit3.spm \
        --size base --out teachers/beit3-base-f30k

The feature is what BEiT3ForRetrieval computes: the CLS token of the last layer -> vision_head /
language_head (Linear D->D, no bias); distill L2-normalises it. D = 768 (base) or 1024 (large); images
384 px, mean/std 0.5; text: the XLM-R sentencepiece vocabulary (exported as tokenizer.json).
Writes image.onnx, text.onnx, tokenizer.json, teacher.json (docs/teachers.md).
"""
import argparse
import json
import os
import sys

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beit3-dir", required=True, help="path to unilm/beit3 (for modeling_finetune)")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--sentencepiece", required=True, help="beit3.spm")
    ap.add_argument("--size", choices=["base", "large"], default="base")
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args()
    sys.path.insert(0, a.beit3_dir)
    import modeling_finetune  # noqa: F401  (registers the timm models)
    from timm.models import create_model
    from transformers import XLMRobertaTokenizerFast

    name = f"beit3_{a.size}_patch16_384_retrieval"
    model = create_model(name, pretrained=False)
    state = torch.load(a.checkpoint, map_location="cpu")
    model.load_state_dict(state.get("model", state), strict=False)
    model.eval()

    class Image(torch.nn.Module):
        def forward(self, pixel_values):
            out, _ = model(image=pixel_values, only_infer=True)
            return out

    class Text(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            _, out = model(text_description=input_ids, padding_mask=1 - attention_mask, only_infer=True)
            return out

    os.makedirs(a.out, exist_ok=True)
    px = torch.zeros(1, 3, 384, 384)
    ids = torch.zeros(1, a.max_len, dtype=torch.long)
    torch.onnx.export(Image(), (px,), f"{a.out}/image.onnx", input_names=["pixel_values"], output_names=["image_embeds"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}}, opset_version=a.opset)
    torch.onnx.export(Text(), (ids, torch.ones_like(ids)), f"{a.out}/text.onnx", input_names=["input_ids", "attention_mask"],
                      output_names=["text_embeds"], dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                                               "text_embeds": {0: "batch"}}, opset_version=a.opset)
    tok = XLMRobertaTokenizerFast(vocab_file=a.sentencepiece)
    tok.backend_tokenizer.save(f"{a.out}/tokenizer.json")
    dim = 768 if a.size == "base" else 1024
    json.dump({
        "name": "beit3", "imageSize": 384, "resize": 384, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
        "maxTextLength": a.max_len, "dim": dim, "padId": tok.pad_token_id,
        "inputs": {"pixels": "pixel_values", "ids": "input_ids", "mask": "attention_mask"},
        "outputs": {"image": "image_embeds", "text": "text_embeds"},
    }, open(f"{a.out}/teacher.json", "w"), indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
