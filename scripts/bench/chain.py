#!/usr/bin/env python3
"""A naive Stele chain check, the comparison `stele bench verify` runs.

    python3 scripts/bench/chain.py ENTRIES.jsonl

Reads entry lines (a log directory's entries.jsonl), parses each as JSON,
checks that `prev` is the hex leaf hash of the line before and `seq` counts
from 0, and folds the RFC 9162 tree; prints the entry count and the root in
base64. What a user might write in an afternoon: no canonical-form check, no
signatures, one thread.
"""
import base64
import hashlib
import json
import sys


def main(path):
    stack = []  # (height, hash) of the compact range's perfect subtrees
    prev = "0" * 64
    n = 0
    with open(path, "rb") as f:
        for line in f:
            entry = line[:-1] if line.endswith(b"\n") else line
            e = json.loads(entry)
            if e["seq"] != n:
                sys.exit(f"entry {n}: seq is {e['seq']}")
            if e["prev"] != prev:
                sys.exit(f"entry {n}: prev is {e['prev']}, but entry {n - 1} hashes to {prev}")
            leaf = hashlib.sha256(b"\x00" + entry).digest()
            prev = leaf.hex()
            h, height = leaf, 0
            while stack and stack[-1][0] == height:
                h = hashlib.sha256(b"\x01" + stack.pop()[1] + h).digest()
                height += 1
            stack.append((height, h))
            n += 1
    root = hashlib.sha256(b"").digest() if not stack else None
    while stack:
        _, h = stack.pop()
        root = h if root is None else hashlib.sha256(b"\x01" + h + root).digest()
    print(n, base64.b64encode(root).decode())


if __name__ == "__main__":
    main(sys.argv[1])
