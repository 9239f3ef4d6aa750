"""Specification of model downloads, against a real HTTP server on 127.0.0.1: a file arrives whole
and verified or not at all, and every failure says where to put the file by hand."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from reunite.errors import DownloadError, ModelIntegrityError
from reunite.models.download import download

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens there


class _Handler(SimpleHTTPRequestHandler):
    """Serves a folder; ``/truncated/<file>`` promises the whole file but sends half of it."""

    def do_GET(self) -> None:
        if self.path.startswith("/truncated/"):
            body = (Path(self.directory) / self.path.removeprefix("/truncated/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@contextlib.contextmanager
def http_server(folder: Path) -> Iterator[str]:
    """A real HTTP server for ``folder`` on a free port of 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=folder))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def serve() -> Iterator:
    """``serve(folder) -> base URL``, servers stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(http_server(folder))


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A server-side folder with a 2.5 MiB file (several read chunks) and a web page."""
    folder = tmp_path / "remote"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 10_240)
    (folder / "page.html").write_text("<html><body>Please confirm the download</body></html>")
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_download_arrives_whole_with_its_sha256_and_no_temporary_file(serve, remote, tmp_path):
    base = serve(remote)
    dest = tmp_path / "models" / "m" / "weights.bin"
    seen: list[tuple[int, int | None]] = []
    digest = download(
        f"{base}/weights.bin",
        dest,
        sha256=sha256(remote / "weights.bin"),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert dest.read_bytes() == (remote / "weights.bin").read_bytes()
    assert digest == sha256(remote / "weights.bin")
    assert [p.name for p in dest.parent.iterdir()] == ["weights.bin"]
    size = dest.stat().st_size
    assert len(seen) >= 3 and seen[-1] == (size, size)  # the progress hook saw it stream


def test_a_checksum_mismatch_keeps_nothing_and_leaves_an_older_file_untouched(
    serve, remote, tmp_path
):
    # Bad input: the server's file is not the one the checksum names (tampered or changed).
    dest = tmp_path / "m" / "weights.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"the file from an earlier pull")
    with pytest.raises(ModelIntegrityError, match=r"expected 0{64}.*not kept"):
        download(f"{serve(remote)}/weights.bin", dest, sha256="0" * 64)
    assert dest.read_bytes() == b"the file from an earlier pull"
    assert [p.name for p in dest.parent.iterdir()] == ["weights.bin"]


def test_an_unreachable_host_says_where_to_place_the_file_by_hand(tmp_path):
    # Bad input: no server at all (a machine without internet).
    dest = tmp_path / "m" / "weights.bin"
    with pytest.raises(DownloadError) as caught:
        download(f"{UNREACHABLE}/weights.bin", dest, sha256="ab" * 32, timeout=5)
    message = str(caught.value)
    assert message.startswith(f"cannot reach {UNREACHABLE}/weights.bin (")
    assert f"place it at {dest} (expected sha256 {'ab' * 32})" in message
    assert list(dest.parent.iterdir()) == []


def test_a_transfer_cut_short_is_an_error_and_keeps_nothing(serve, remote, tmp_path):
    # Bad input: the server promises 2.5 MiB and closes the connection halfway.
    dest = tmp_path / "m" / "weights.bin"
    size = (remote / "weights.bin").stat().st_size
    with pytest.raises(DownloadError, match=rf"stopped after {size // 2} of {size} bytes"):
        download(f"{serve(remote)}/truncated/weights.bin", dest, sha256=None)
    assert list(dest.parent.iterdir()) == []


def test_a_missing_file_on_the_server_reports_the_http_status(serve, remote, tmp_path):
    # Bad input: a URL the server does not have (a moved or renamed release).
    dest = tmp_path / "m" / "gone.bin"
    with pytest.raises(DownloadError, match=r"gone\.bin \(HTTP 404 .*place it at"):
        download(f"{serve(remote)}/gone.bin", dest, sha256=None)
    assert list(dest.parent.iterdir()) == []


def test_a_web_page_served_instead_of_the_file_is_refused(serve, remote, tmp_path):
    # Bad input: a download site answering with an HTML page (a login or confirmation page).
    dest = tmp_path / "m" / "weights.pth"
    with pytest.raises(DownloadError, match="sent a web page instead of the file"):
        download(f"{serve(remote)}/page.html", dest, sha256=None)
    assert list(dest.parent.iterdir()) == []
