"""A fresh RSA-2048 DKIM key for tests, and the DNS TXT record that would publish it."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path


def new_key(folder: Path) -> tuple[bytes, bytes]:
    """(the PEM private key, the ``v=DKIM1; k=rsa; p=…`` record), made with openssl."""
    private, public = folder / "private.pem", folder / "public.der"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True
    )
    subprocess.run(
        ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER", "-out", str(public)],
        check=True,
        capture_output=True,
    )
    return private.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public.read_bytes())
