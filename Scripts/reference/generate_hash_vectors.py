#!/usr/bin/env python3
"""Generate GrowthBook hashing and variation-assignment vectors for the Registry's GrowthBookHash tests.

Writes Tests/RegistryTests/Reference/growthbook_hash_vectors.json. Nothing here runs at test time: the JSON
is committed and the Swift tests only read it.

The data was produced by GrowthBook's own Python SDK, growthbook==4.0.0 (PyPI), calling its functions
directly rather than re-implementing them:
    growthbook.core.fnv1a32, growthbook.core.gbhash, growthbook.core.getBucketRanges,
    growthbook.core.chooseVariation

Set-up (once):
    python3 -m venv /work/.venv-gb
    /work/.venv-gb/bin/pip install growthbook==4.0.0
Run from the repository root:
    /work/.venv-gb/bin/python Scripts/reference/generate_hash_vectors.py

Output (deterministic: fixed random seed, fixed case order):
    "version":  the growthbook package version that produced the data;
    "hash_v2":  [{"seed", "value", "hash", "bucket"}] where hash = gbhash(seed, value, 2) and
                bucket = round(hash * 10000) = fnv1a32(str(fnv1a32(seed + value))) % 10000;
    "variants": [{"seed", "value", "weights", "variant"}] where
                variant = chooseVariation(gbhash(seed, value, 2), getBucketRanges(len(weights), 1.0, weights)).
                Besides random cases, values are chosen on purpose so that the hash lands exactly on, or
                one bucket either side of, every range boundary (e.g. hash 0.6 against the fifths, whose
                boundary is the float sum 0.2+0.2+0.2 = 0.6000000000000001, so 0.6 falls in variant 2).

All strings are ASCII or from the Basic Multilingual Plane: there UTF-16 code units and code points
coincide, so every GrowthBook SDK (JS hashes charCodeAt units) agrees on them. (growthbook 4.0.0's
fnv1a32 itself hashes UTF-16 code units, ASCII strings via their UTF-8 bytes, which are the same.)
Every weight vector sums to 1 within the SDK's tolerance [0.99, 1.01], so getBucketRanges uses it as
given rather than substituting equal weights.
"""

import json
import os
import random
import sys
import uuid
from importlib.metadata import version

from growthbook.core import chooseVariation, fnv1a32, gbhash, getBucketRanges

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "RefereeTests", "Reference", "growthbook_hash_vectors.json")
EXPECTED_VERSION = "4.0.0"
BUCKETS = 10_000

rng = random.Random(20240601)

SEEDS = [
    "checkout", "search-ranking", "", "exp-123", "homepage-layer", "pricing_v2", "onboarding.flow",
    "layer:payments", "EXP_42", "a", "new-checkout-button", "recs-model-2024", "ünïcödé-layer", "日本",
]

VALUES_FIXED = [
    "", "0", "1", "-1", "42", "007", "3.14", "1e10", "4294967295", "4294967296", "18446744073709551615",
    "user_1", "user_2", "user_10", "user_100", "User_1", "USER_1", " user_1", "user_1 ",
    "alice@example.com", "bob.smith+test@mail.example.org", "a@b.c",
    "!", "\"", "#$%&'()*+,-./", ":;<=>?@", "[\\]^_`", "{|}~", " ", "\t", "\n", "a b", "~~~",
    "é", "e\u0301", "日本", "日本語のユーザー", "Ω", "ß", "naïve", "Ünïcödé", "\u00a0", "\u200b", "\ufeff",
    "\u2014", "\u20ac100", "\uffff", "\u0100\u07ff\u0800", "Привет", "مرحبا", "한국어",
]

# Hash values are multiples of 1/10000 and BMP-only; sanity-check our own inputs.
def _bmp_only(s):
    return all(ord(c) <= 0xFFFF and not (0xD800 <= ord(c) <= 0xDFFF) for c in s)


def random_value(r):
    kind = r.randrange(6)
    if kind == 0:
        return f"user_{r.randrange(1, 1_000_000)}"
    if kind == 1:
        return str(uuid.UUID(int=r.getrandbits(128), version=4))
    if kind == 2:
        return str(r.randrange(0, 10**r.randrange(1, 20)))
    if kind == 3:
        name = "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randrange(1, 10)))
        return f"{name}{r.randrange(100)}@{r.choice(['example.com', 'corp.io', 'mail.co.uk'])}"
    if kind == 4:
        # Printable ASCII, punctuation included.
        return "".join(chr(r.randrange(0x20, 0x7F)) for _ in range(r.randrange(1, 16)))
    # Mixed ASCII and BMP non-ASCII (surrogate range excluded).
    alphabet = "abcXYZ019-_.é日本ßΩЖ€\u00a0\u4e2d\uac00\uffef"
    return "".join(r.choice(alphabet) for _ in range(r.randrange(1, 12)))


def check_hash(seed, value):
    h = gbhash(seed, value, 2)
    assert h is not None and 0 <= h < 1
    h2 = fnv1a32(str(fnv1a32(seed + value)))
    bucket = h2 % BUCKETS
    assert bucket == round(h * BUCKETS), (seed, value, h, bucket)
    assert h == bucket / BUCKETS
    return h, bucket


def hash_cases():
    pairs = []
    # Fixed values under a few seeds, every seed with a few fixed values.
    for seed in ["checkout", "search-ranking", "", "exp-123"]:
        for value in VALUES_FIXED:
            pairs.append((seed, value))
    for seed in SEEDS:
        for value in ["user_1", "", "é", "日本"]:
            pairs.append((seed, value))
    pairs = list(dict.fromkeys(pairs))
    # Random values under random seeds.
    while len(pairs) < 400:
        pair = (rng.choice(SEEDS), random_value(rng))
        if pair not in pairs:
            pairs.append(pair)
    cases = []
    for seed, value in pairs:
        assert _bmp_only(seed) and _bmp_only(value)
        h, bucket = check_hash(seed, value)
        cases.append({"seed": seed, "value": value, "hash": h, "bucket": bucket})
    return cases


WEIGHTS = [
    [1 / 2] * 2,
    [1 / 3] * 3,
    [1 / 4] * 4,
    [1 / 5] * 5,
    [0.1, 0.9],
    [0.2, 0.3, 0.5],
    [0.34, 0.33, 0.33],
    [0.7, 0.3],
    [0.25, 0.25, 0.5],
    [0.05, 0.15, 0.3, 0.5],
]


def variant_of(seed, value, weights):
    h, _ = check_hash(seed, value)
    ranges = getBucketRanges(len(weights), 1.0, weights)
    return chooseVariation(h, ranges)


def bucket_finder(seed, limit=300_000):
    """Maps bucket -> first value "user_<i>" (i increasing) hashing to it under `seed`."""
    found = {}
    for i in range(limit):
        value = f"user_{i}"
        b = fnv1a32(str(fnv1a32(seed + value))) % BUCKETS
        found.setdefault(b, value)
        if len(found) == BUCKETS:
            break
    return found


def variant_cases():
    for w in WEIGHTS:
        assert 0.99 <= sum(w) <= 1.01
        # The SDK must use these weights as given (not fall back to equal weights).
        cumulative, expected = 0.0, []
        for x in w:
            expected.append((cumulative, cumulative + x))
            cumulative += x
        assert getBucketRanges(len(w), 1.0, w) == expected, w

    triples = []
    # Boundary cases: for every interior range boundary, the buckets just below, at and just above it.
    boundary_seed = "boundary-layer"
    finder = bucket_finder(boundary_seed)
    for w in WEIGHTS:
        ranges = getBucketRanges(len(w), 1.0, w)
        targets = set()
        for start, _ in ranges[1:]:
            base = int(start * BUCKETS)  # floor for start >= 0
            targets.update(b for b in (base - 1, base, base + 1, base + 2) if 0 <= b < BUCKETS)
        targets.update([0, BUCKETS - 1])
        for b in sorted(targets):
            triples.append((boundary_seed, finder[b], w))
    # Random cases.
    while len(triples) < 300:
        triples.append((rng.choice(SEEDS), random_value(rng), rng.choice(WEIGHTS)))

    cases = []
    for seed, value, w in triples:
        assert _bmp_only(seed) and _bmp_only(value)
        v = variant_of(seed, value, w)
        cases.append({"seed": seed, "value": value, "weights": w, "variant": v})
    return cases


def dump(doc):
    """One case per line: compact, diff-friendly, ASCII-only (non-ASCII as \\u escapes)."""
    lines = ["{", f'  "version": {json.dumps(doc["version"])},']
    for key in ("hash_v2", "variants"):
        lines.append(f'  "{key}": [')
        items = [json.dumps(c, ensure_ascii=True, separators=(", ", ": ")) for c in doc[key]]
        lines.extend(f"    {s}," for s in items[:-1])
        lines.append(f"    {items[-1]}")
        lines.append("  ]," if key == "hash_v2" else "  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    gb_version = version("growthbook")
    if gb_version != EXPECTED_VERSION:
        print(f"warning: growthbook {gb_version} installed, data was generated with {EXPECTED_VERSION}",
              file=sys.stderr)
    doc = {"version": gb_version, "hash_v2": hash_cases(), "variants": variant_cases()}
    text = dump(doc)
    assert json.loads(text) == doc
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w", encoding="ascii") as f:
        f.write(text)
    variants = [c["variant"] for c in doc["variants"]]
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(doc['hash_v2'])} hash_v2 cases, "
          f"{len(doc['variants'])} variant cases (variant -1: {variants.count(-1)}), {len(text)} bytes")


if __name__ == "__main__":
    main()
