#!/usr/bin/env python3
"""archive-drop-entry.py IN OUT PATTERN: copies a chjournal archive, run by
run (one gzip member each, ending at its runs/ entry), leaving out the
first entry whose name starts with PATTERN. Prints the name left out. For
tests: an archive whose index references a message it does not hold."""
import gzip
import io
import sys
import tarfile

src, dst, pattern = sys.argv[1:4]
dropped = None
with tarfile.open(src, "r:gz", ignore_zeros=True) as tin, open(dst, "wb") as out:
    buf = io.BytesIO()
    tout = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
    for m in tin:
        data = tin.extractfile(m).read() if m.isfile() else None
        if dropped is None and m.name.startswith(pattern):
            dropped = m.name
            continue
        tout.addfile(m, io.BytesIO(data) if data is not None else None)
        if m.name.startswith("runs/"):
            tout.close()
            out.write(gzip.compress(buf.getvalue()))
            buf = io.BytesIO()
            tout = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
print(dropped or "")
