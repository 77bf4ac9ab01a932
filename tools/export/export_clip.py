#!/usr/bin/env python3
"""Export a Hugging Face CLIP checkpoint as a distill teacher folder.

Run where PyTorch and `transformers` are installed (NOT run in CI; distill itself never needs Python):

    python tools/export/export_clip.py --model openai/clip-vit-base-patch16 --out teachers/clip-b16

Writes <out>/image.onnx (pixel_values -> image_embeds), <out>/text.onnx (input_ids, attention_mask ->
text_embeds), <out>/tokenizer.json and <out>/teacher.json: the contract documented in docs/teachers.md.
Embeddings are the projected features, not yet L2-normalised (distill normalises them).
"""
import argparse
import json
import os

import torch
from transformers import CLIPModel, CLIPTokenizerFast


class ImageTower(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, pixel_values):
        return self.m.get_image_features(pixel_values=pixel_values)


class TextTower(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m.get_text_features(input_ids=input_ids, attention_mask=attention_mask)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="HF model id or local save_pretrained folder")
    ap.add_argument("--out", required=True)
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    model = CLIPModel.from_pretrained(a.model).eval()
    tok = CLIPTokenizerFast.from_pretrained(a.model)
    size = model.config.vision_config.image_size
    L = model.config.text_config.max_position_embeddings
    px = torch.zeros(1, 3, size, size)
    ids = torch.zeros(1, L, dtype=torch.long)
    torch.onnx.export(ImageTower(model), (px,), f"{a.out}/image.onnx", input_names=["pixel_values"],
                      output_names=["image_embeds"], dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}},
                      opset_version=a.opset)
    torch.onnx.export(TextTower(model), (ids, torch.ones_like(ids)), f"{a.out}/text.onnx",
                      input_names=["input_ids", "attention_mask"], output_names=["text_embeds"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}, "text_embeds": {0: "batch"}},
                      opset_version=a.opset)
    tok.backend_tokenizer.save(f"{a.out}/tokenizer.json")
    json.dump({
        "name": "clip", "imageSize": size, "resize": size,
        "mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
        "maxTextLength": L, "dim": model.config.projection_dim, "padId": tok.pad_token_id or 0,
        "inputs": {"pixels": "pixel_values", "ids": "input_ids", "mask": "attention_mask"},
        "outputs": {"image": "image_embeds", "text": "text_embeds"},
    }, open(f"{a.out}/teacher.json", "w"), indent=2)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
