"""Produce tests/embed/golden_minilm.json: reference vectors from the fp32 model.

Run ONCE with sentence-transformers (not a project dependency: the `bench` extra in
``.venv-bench``, created by ``make bench-setup``) against the verified fp32 reference files of
the manifest:

    make bench-setup
    .venv/bin/python -m backend models fetch --with-reference
    .venv-bench/bin/python tests/embed/make_golden.py models/all-MiniLM-L6-v2-int8/reference

The stored file was made with sentence-transformers 6.2.0 / torch 2.14.1 on CPU; regenerating
it with the pinned ``.venv-bench`` (torch 2.13.0+cpu) reproduces every value within 2e-7.

It writes the sentences, the full 384-d vectors (rounded to 7 decimals) and the versions used.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

SENTENCES = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar.",
    "The stock market fell sharply on Monday.",
    "Shares dropped steeply at the start of the week.",
    "How do I create an index in PostgreSQL?",
    "CREATE INDEX builds an index on one or more columns of a table.",
    "Ça coûte combien ? Das Wetter ist schön. 日本語の文章です。",
    "",
    " ".join(f"Sentence {i} is about vacuum and write-ahead logging." for i in range(60)),
]
# (i, j) pairs that say the same thing; every other pair among 0..5 is unrelated or weaker.
PARAPHRASES = [(0, 1), (2, 3), (4, 5)]


def main(reference_dir: str) -> None:
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(reference_dir, device="cpu")
    vecs = model.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    out = {
        "about": "all-MiniLM-L6-v2 fp32 reference vectors; produced by tests/embed/make_golden.py",
        "reference": "models/all-MiniLM-L6-v2-int8/reference (manifest [reference] files)",
        "max_seq_length": model.max_seq_length,
        "versions": {
            "python": platform.python_version(),
            "sentence_transformers": sentence_transformers.__version__,
            "torch": torch.__version__,
        },
        "paraphrases": PARAPHRASES,
        "sentences": SENTENCES,
        "vectors": [[round(float(x), 7) for x in row] for row in vecs],
    }
    dest = Path(__file__).with_name("golden_minilm.json")
    # One vector per line: small, and a diff shows which sentence changed.
    head = json.dumps({k: v for k, v in out.items() if k != "vectors"}, ensure_ascii=False, indent=1)
    rows = ",\n  ".join(json.dumps(v) for v in out["vectors"])
    dest.write_text(head[:-2] + ',\n "vectors": [\n  ' + rows + "\n ]\n}\n", encoding="utf-8")
    print(f"wrote {dest} ({len(SENTENCES)} vectors)")


if __name__ == "__main__":
    main(sys.argv[1])
