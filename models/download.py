"""Fetch one model file over HTTP(S), verified, without ever leaving a partial file behind.

The bytes stream into a hidden temporary file beside the destination while their sha256 is
computed; only a complete transfer whose checksum matches is renamed into place (an atomic
rename on one file system), so an interrupted or tampered download cannot pass for a model.
The standard library's urllib does the transfer: it follows redirects and honours the usual
``HTTPS_PROXY`` variables, and the project needs no HTTP client package for it.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from reunite import __version__
from reunite.errors import DownloadError, ModelIntegrityError

ProgressHook = Callable[[int, int | None], None]
"""Called as bytes arrive with (bytes so far, total bytes or None when the server does not say)."""

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks (weights can be hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    progress: ProgressHook | None = None,
    timeout: float = 30.0,
) -> str:
    """Download ``url`` to ``dest`` and return the file's sha256.

    With ``sha256`` given, a different checksum is a ModelIntegrityError and nothing is kept.
    Network failures, HTTP errors, a web page served instead of the file and a transfer cut
    short are DownloadErrors that say where to place the file by hand.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _transfer(url, out, dest, sha256, progress, timeout)
            out.flush()
            os.fsync(out.fileno())
        if sha256 is not None and digest != sha256.lower():
            raise ModelIntegrityError(
                f"the file downloaded from {url} has sha256 {digest}, expected {sha256}; it was "
                f"not kept. The server may have changed the file, or something between altered "
                f"it: check the address, or fetch the file by hand and place it at {dest}"
            )
        os.replace(temp, dest)
    finally:
        temp.unlink(missing_ok=True)  # after a successful rename there is nothing to remove
    return digest


def _transfer(
    url: str,
    out,
    dest: Path,
    sha256: str | None,
    progress: ProgressHook | None,
    timeout: float,
) -> str:
    """Stream the body into ``out``; return its sha256; raise DownloadError on any failure."""

    def failure(reason: str, what: str = "cannot download") -> DownloadError:
        expected = f"expected sha256 {sha256}" if sha256 else "no published sha256"
        return DownloadError(
            f"{what} {url} ({reason}); download it on a machine with internet and place it at "
            f"{dest} ({expected}), then run the same command again"
        )

    request = urllib.request.Request(url, headers={"User-Agent": f"reunite/{__version__}"})
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.headers.get_content_type() == "text/html":
                raise failure("the server sent a web page instead of the file")
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as error:
        raise failure(f"HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise failure(str(error.reason), "cannot reach") from error
    except (http.client.HTTPException, OSError) as error:  # reset, timeout, broken transfer
        reason = str(error) or type(error).__name__
        raise failure(f"the transfer failed after {done} bytes: {reason}") from error
    if total is not None and done != total:
        raise failure(f"the transfer stopped after {done} of {total} bytes")
    return digest.hexdigest()
