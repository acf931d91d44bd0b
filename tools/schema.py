"""Write the stack file's JSON Schema (`stack.schema.json`, read by editors) from the config model.

    python -m tools.schema            (make schema: rewrite the committed file)
    python -m tools.schema --check    (exit 1 when the committed file is stale)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[1]
if str(ROOT_DIR) not in sys.path:
    sys.path.insert(0, str(ROOT_DIR))

from gpu_slicing.schema import stack_schema  # noqa: E402

SCHEMA_FILE = ROOT_DIR / "stack.schema.json"


def render() -> str:
    """The file's exact text: stable key order, so a diff shows only what the model changed."""
    return json.dumps(stack_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed file is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not SCHEMA_FILE.is_file() or SCHEMA_FILE.read_text() != text:
            print(f"{SCHEMA_FILE.name} is out of date with gpu_slicing/config.py: run `make schema`", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.write_text(text)
    print(f"wrote {SCHEMA_FILE.relative_to(ROOT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
