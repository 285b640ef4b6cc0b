"""Healthy when /readyz says every production model serves (slim images have no curl)."""

import sys
import urllib.request

try:
    with urllib.request.urlopen("http://127.0.0.1:8000/readyz", timeout=4) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except OSError as exc:
    print(f"not ready: {exc}", file=sys.stderr)
    sys.exit(1)
