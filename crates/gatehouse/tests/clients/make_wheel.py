"""Writes the tiny wheel the test's package index serves.
Usage: python make_wheel.py OUT_DIR; prints the wheel's file name."""
import base64
import hashlib
import os
import sys
import zipfile

NAME, VERSION = "gh_demo", "1.0"
files = {
    f"{NAME}/__init__.py": b"GREETING = 'hello from the gatehouse test index'\n",
    f"{NAME}-{VERSION}.dist-info/METADATA": (
        f"Metadata-Version: 2.1\nName: gh-demo\nVersion: {VERSION}\n"
        "Summary: Gatehouse client test package\n"
    ).encode(),
    f"{NAME}-{VERSION}.dist-info/WHEEL": (
        b"Wheel-Version: 1.0\nGenerator: gatehouse-test\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    ),
}
record = []
for path, data in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    record.append(f"{path},sha256={digest},{len(data)}")
record_path = f"{NAME}-{VERSION}.dist-info/RECORD"
record.append(f"{record_path},,")
files[record_path] = ("\n".join(record) + "\n").encode()

wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
with zipfile.ZipFile(os.path.join(sys.argv[1], wheel), "w", zipfile.ZIP_DEFLATED) as z:
    for path, data in files.items():
        z.writestr(path, data)
print(wheel)
