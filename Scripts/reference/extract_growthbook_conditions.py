#!/usr/bin/env python3
"""Extract GrowthBook's `evalCondition` cross-SDK vectors for the Registry's targeting tests.

Reads GrowthBook's SDK conformance suite (`cases.json`, copied unchanged from the GrowthBook repository,
packages/sdk-js/test/cases.json, spec 0.8.0) and writes

    Tests/RegistryTests/Reference/growthbook/eval_condition.json
        a JSON array, one object per row of the `evalCondition` section, in the suite's order:
        {"name", "condition", "attributes", "expected", "saved_groups"}
        (saved_groups is {} when the row has none); values are copied unchanged, object members in their
        original order;
    Tests/RegistryTests/Reference/growthbook/SOURCE.md
        provenance and licence.

Run from anywhere (only the Python standard library is needed):
    python3 Scripts/reference/extract_growthbook_conditions.py [path/to/cases.json]
The default input is /work/shared/reference/growthbook/cases.json.
"""

import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT_DIR = os.path.join(ROOT, "Tests", "RegistryTests", "Reference", "growthbook")
DEFAULT_INPUT = "/work/shared/reference/growthbook/cases.json"

SPEC_VERSION = "0.8.0"
SNAPSHOT_COMMIT = "8f1db4456915a8e7b7faf23d5632ca7219d2f469"
SNAPSHOT_DATE = "2026-08-21"
SNAPSHOT_SHA256 = "1422cb1bfc6f6035f78aa21e5181ab91f758e37f1688e2c6142aface7d953886"
ROWS = 248


def reject_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise SystemExit(f"duplicate object key in cases.json: {keys}")
    return dict(pairs)


def main(argv):
    src = argv[1] if len(argv) > 1 else DEFAULT_INPUT
    with open(src, "rb") as f:
        raw = f.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SNAPSHOT_SHA256:
        print(f"warning: {src} has sha256 {digest}, not the recorded snapshot {SNAPSHOT_SHA256}", file=sys.stderr)
    doc = json.loads(raw.decode("utf-8"), object_pairs_hook=reject_duplicates)
    if doc.get("specVersion") != SPEC_VERSION:
        print(f"warning: specVersion is {doc.get('specVersion')!r}, not {SPEC_VERSION}", file=sys.stderr)

    rows = doc["evalCondition"]
    cases = []
    for i, row in enumerate(rows):
        if not (4 <= len(row) <= 5):
            raise SystemExit(f"evalCondition row {i} has {len(row)} fields")
        name, condition, attributes, expected = row[:4]
        saved_groups = row[4] if len(row) == 5 else {}
        if not isinstance(name, str) or not isinstance(expected, bool) or not isinstance(saved_groups, dict):
            raise SystemExit(f"evalCondition row {i} is malformed: {row!r}")
        cases.append({"name": name, "condition": condition, "attributes": attributes,
                      "expected": expected, "saved_groups": saved_groups})
    if len(cases) != ROWS:
        print(f"warning: {len(cases)} evalCondition rows, expected {ROWS}", file=sys.stderr)

    os.makedirs(OUT_DIR, exist_ok=True)
    # One case per line: compact and diff-friendly; non-ASCII kept as \u escapes.
    lines = [json.dumps(c, ensure_ascii=True, separators=(", ", ": ")) for c in cases]
    with open(os.path.join(OUT_DIR, "eval_condition.json"), "w", encoding="ascii") as f:
        f.write("[\n" + ",\n".join("  " + s for s in lines) + "\n]\n")

    with open(os.path.join(OUT_DIR, "SOURCE.md"), "w", encoding="utf-8") as f:
        f.write(SOURCE_MD.format(n=len(cases), commit=SNAPSHOT_COMMIT, date=SNAPSHOT_DATE, sha=digest,
                                 spec=doc.get("specVersion")))
    print(f"wrote {len(cases)} evalCondition cases to {os.path.relpath(OUT_DIR, ROOT)}/eval_condition.json")


SOURCE_MD = """\
# GrowthBook `evalCondition` vectors

`eval_condition.json` holds the {n} rows of the `evalCondition` section of GrowthBook's cross-SDK conformance
suite: one object per row, in the suite's order, `{{"name", "condition", "attributes", "expected",
"saved_groups"}}` (`saved_groups` is `{{}}` when the row has none). Conditions, attributes and expected answers
are copied unchanged (object members keep their order). `expected` is what GrowthBook's JavaScript SDK
(`packages/sdk-js/src/mongrule.ts`, `evalCondition(attributes, condition, savedGroups)`) returns.

- Source: https://github.com/growthbook/growthbook, file `packages/sdk-js/test/cases.json`, spec version {spec}.
- Snapshot: commit {commit} ({date}); sha256 of `cases.json`:
  {sha}.
- Licence: MIT (GrowthBook's licence for everything outside its `enterprise` folders;
  `packages/sdk-js/package.json` says MIT).

Regenerate (from the repository root; standard library only):

    python3 Scripts/reference/extract_growthbook_conditions.py /work/shared/reference/growthbook/cases.json
"""

if __name__ == "__main__":
    main(sys.argv)
