"""Footage sources: sampling rule, resume guarantee, frame times, and every kind of bad footage.

Videos are written here with OpenCV (mp4v .mp4, MJPG .avi); each frame shows its number in binary
as eight black or white bands, which survives compression, so a test can tell from the pixels which
frame it was given.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from reunite.errors import InvalidOptionError, SourceError
from reunite.pipeline.sources import (
    Frame,
    StreamSource,
    VideoFileSource,
    open_source,
    sampled_positions,
    timestamp_from_name,
)

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "district"
START = datetime(2026, 11, 25, 14, 5, 1, tzinfo=UTC)
SIZE = (64, 48)


def numbered_frame(number: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """A BGR frame showing ``number`` (0..255) in binary: band b is white when bit b is set."""
    bits = np.array([(number >> b) & 1 for b in range(8)], np.uint8) * 255
    row = np.repeat(bits, size[0] // 8)
    return np.repeat(np.tile(row, (size[1], 1))[:, :, None], 3, axis=2)


def frame_number_in(image: np.ndarray) -> int:
    bands = image.mean(axis=(0, 2)).reshape(8, -1).mean(axis=1)
    return sum(1 << b for b in range(8) if bands[b] > 127)


def write_video(path: Path, fourcc: str, count: int, fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, SIZE)
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} here"
    for i in range(count):
        writer.write(numbered_frame(i))
    writer.release()
    return path


def write_frames(folder: Path, names: list[str]) -> list[Path]:
    """JPEGs showing their position in ``names``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / name
        assert cv2.imwrite(str(path), numbered_frame(i))
        paths.append(path)
    return paths


def epoch_ms(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def summary(frames: Iterable[Frame]) -> list[tuple[int, datetime, str]]:
    """Index, time and a digest of the pixels of each frame (full frames would fill memory)."""
    return [(f.index, f.timestamp, hashlib.sha1(f.image.tobytes()).hexdigest()) for f in frames]


def same_frames(a: Iterable[Frame], b: Iterable[Frame]) -> bool:
    return summary(a) == summary(b)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        "mp4": write_video(folder / "clip.mp4", "mp4v", 50, 25.0),
        "avi": write_video(folder / "clip.avi", "MJPG", 50, 25.0),
    }


# --- the sampling rule ---------------------------------------------------------------------------


def test_sampling_keeps_the_first_frame_at_or_after_each_tick_and_each_frame_once():
    # Irregular times: a late frame covers two ticks (kept once), a tick with no frame is skipped.
    seconds = [0.0, 0.1, 0.5, 0.61, 1.7, 1.9, 2.0, 2.49]
    times = [START + timedelta(seconds=s) for s in seconds]
    assert sampled_positions(times, 2.0) == [0, 2, 4, 6]


def test_footage_slower_than_the_sampling_rate_is_kept_whole():
    times = [START + timedelta(seconds=s) for s in range(10)]
    assert sampled_positions(times, 2.0) == list(range(10))


def test_frames_exactly_on_ticks_that_are_not_whole_microseconds_are_sampled():
    # At 3 fps ticks fall on 1/3 s; frame times round to microseconds and must not slip a tick.
    times = [START + timedelta(seconds=i / 3) for i in range(30)]
    assert sampled_positions(times, 3.0) == list(range(30))


def test_video_at_25_fps_sampled_at_2_fps_keeps_frames_0_13_25_38(clips):
    source = open_source(clips["mp4"], start_time=START)
    frames = list(source.frames())
    assert isinstance(source, VideoFileSource) and source.kind == "video"
    assert [f.index for f in frames] == [0, 13, 25, 38]
    assert [frame_number_in(f.image) for f in frames] == [0, 13, 25, 38]
    assert [f.timestamp for f in frames] == [
        START + timedelta(seconds=i / 25) for i in (0, 13, 25, 38)
    ]
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert source.estimated_frames() == 4
    assert source.errors == []


def test_sampling_faster_than_the_footage_keeps_every_frame(clips):
    frames = list(open_source(clips["avi"], fps=60.0, start_time=START).frames())
    assert [f.index for f in frames] == list(range(50))
    assert [frame_number_in(f.image) for f in frames] == list(range(50))


# --- the resume guarantee ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["mp4", "avi"])
@pytest.mark.parametrize("fps", [2.0, 7.0])
def test_resuming_a_video_at_any_index_yields_exactly_the_rest_of_a_full_run(clips, kind, fps):
    source = open_source(clips[kind], fps=fps, start_time=START)
    full = list(source.frames())
    # Every start from 0 to past the end: on, just before and just after sampled frames.
    for start in range(0, 53):
        assert same_frames(list(source.frames(start)), [f for f in full if f.index >= start]), start


def test_resuming_a_video_seeks_instead_of_decoding_from_the_start(clips, caplog):
    source = open_source(clips["mp4"], start_time=START)
    with source_log(caplog):
        list(source.frames(30))
    assert "resuming clip.mp4 at frame 30: seeked" in caplog.text
    assert "decoding from the start" not in caplog.text


def test_resuming_a_frame_folder_yields_exactly_the_rest_of_a_full_run(tmp_path):
    # 10 fps names sampled at 3 fps, with one image that does not decode in the middle.
    names = [f"{i + 1:06d}_{epoch_ms(START) + 100 * i}.jpg" for i in range(40)]
    paths = write_frames(tmp_path / "cam", names)
    paths[12].write_bytes(b"not a jpeg")
    source = open_source(tmp_path / "cam", fps=3.0)
    full = list(source.frames())
    assert 10 < len(full) < 14
    for start in range(0, 42):
        assert same_frames(list(source.frames(start)), [f for f in full if f.index >= start]), start


# --- frame times ---------------------------------------------------------------------------------


def test_sample_district_camera_folder_and_its_img1_give_the_same_frames_timed_by_csv():
    rows = (SAMPLES / "cameras/c1/timestamps.csv").read_text().split()[1:]
    expected = [datetime.fromtimestamp(int(r.split(",")[1]) / 1000, UTC) for r in rows]
    by_camera = list(open_source(SAMPLES / "cameras" / "c1").frames())
    by_images = list(open_source(SAMPLES / "cameras" / "c1" / "img1").frames())
    assert [f.timestamp for f in by_camera] == expected  # 2 fps footage sampled at 2 fps: all
    assert same_frames(by_camera, by_images)
    assert by_camera[0].image.shape == (360, 640, 3)


def test_video_times_come_from_a_sidecar_csv_beside_it(tmp_path):
    # The synthetic district's --format video layout: cameras/c1/video.mp4 + timestamps.csv.
    camera = tmp_path / "cameras" / "c1"
    camera.mkdir(parents=True)
    write_video(camera / "video.mp4", "mp4v", 8, 2.0)
    irregular = [0, 500, 1000, 1600, 2000, 2500, 3100, 3500]
    lines = [f"{i + 1},{epoch_ms(START) + ms}" for i, ms in enumerate(irregular)]
    (camera / "timestamps.csv").write_text("frame,epoch_ms\n" + "\n".join(lines) + "\n")
    source = open_source(camera)  # a folder with no images but one video opens the video
    assert source.kind == "video" and source.uri == str(camera / "video.mp4")
    frames = list(source.frames())
    assert [f.timestamp for f in frames] == [START + timedelta(milliseconds=ms) for ms in irregular]


def test_start_time_wins_over_the_sidecar_and_the_name(tmp_path):
    video = write_video(tmp_path / "cam3_20261125T140501Z.mp4", "mp4v", 10, 5.0)
    (tmp_path / "timestamps.csv").write_text("frame,epoch_ms\n1,1000\n")
    later = datetime(2027, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    frames = list(open_source(video, start_time=later).frames())
    assert frames[0].timestamp == later and frames[0].timestamp.tzinfo == UTC
    assert frames[1].timestamp == later + timedelta(seconds=0.6)  # 5 fps footage, 2 fps ticks


@pytest.mark.parametrize("name", ["cam3_20261125T140501Z.mp4", "cam3_20261125-140501.avi"])
def test_video_times_come_from_a_utc_time_in_the_file_name(tmp_path, name):
    fourcc = "mp4v" if name.endswith(".mp4") else "MJPG"
    frames = list(open_source(write_video(tmp_path / name, fourcc, 10, 5.0)).frames())
    seconds = [(f.timestamp - START).total_seconds() for f in frames]
    assert seconds == [0, 0.6, 1.0, 1.6]  # 5 fps footage: the first frame at or after each tick


@contextmanager
def source_log(caplog) -> Iterator[None]:
    """Capture the module's records at DEBUG; the CLI stops "reunite" records from reaching the
    root logger, where caplog listens, so its handler goes on the module logger itself."""
    logger = logging.getLogger("reunite.pipeline.sources")
    level = logger.level
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.DEBUG)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(level)


def test_video_without_any_time_is_placed_before_its_modification_time(tmp_path, caplog):
    video = write_video(tmp_path / "clip.avi", "MJPG", 25, 25.0)  # 1 s of footage
    os.utime(video, (START.timestamp(), START.timestamp()))
    with source_log(caplog):
        source = open_source(video)
    frames = list(source.frames())
    assert frames[0].timestamp == START - timedelta(seconds=1)
    assert "modification time" in caplog.text  # a guess: logged, not an error of the footage
    assert source.errors == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("000001_1795644400000.jpg", datetime(2026, 11, 25, 22, 6, 40, tzinfo=UTC)),
        ("cam3_20261125T140501Z.mp4", START),
        ("cam3_20261125-140501_x.mp4", START),
        ("2026-11-25T15-05-01.250+01:00.jpg", START + timedelta(milliseconds=250)),
        ("20261125_140501,5.png", START + timedelta(milliseconds=500)),
        ("000123.jpg", None),  # a frame number is not a time
        ("cam_20261399T140501.jpg", None),  # month 13: not a date
        ("0000001234567.jpg", None),  # 13 digits but 1970: not a plausible CCTV epoch
    ],
)
def test_timestamp_from_name(name, expected):
    assert timestamp_from_name(name) == expected


def test_folder_with_names_out_of_time_order_is_read_in_time_order_and_says_so(tmp_path):
    # Names sort a, b, c but their times go c < a < b (e.g. renamed files from two recorders).
    names = ["a_20261125T140502Z.jpg", "b_20261125T140503Z.jpg", "c_20261125T140501Z.jpg"]
    write_frames(tmp_path, names)
    source = open_source(tmp_path)
    frames = list(source.frames())
    assert [frame_number_in(f.image) for f in frames] == [2, 0, 1]
    assert [f.timestamp for f in frames] == [START + timedelta(seconds=s) for s in (0, 1, 2)]
    assert any("time order" in e for e in source.errors)


def test_folder_without_frame_times_is_refused_with_the_accepted_naming(tmp_path):
    write_frames(tmp_path, ["frame_a.jpg", "frame_b.jpg"])
    with pytest.raises(SourceError, match=r"epoch milliseconds or ISO.*timestamps\.csv"):
        open_source(tmp_path)


def test_folder_images_missing_from_the_csv_are_left_out_and_named(tmp_path):
    write_frames(tmp_path / "img1", ["000001.jpg", "000002.jpg", "000003.jpg"])
    (tmp_path / "timestamps.csv").write_text(
        f"frame,epoch_ms\n1,{epoch_ms(START)}\n3,{epoch_ms(START) + 1000}\n"
    )
    source = open_source(tmp_path)
    assert [f.index for f in source.frames()] == [0, 1]
    assert any("left out 1 images" in e and "000002.jpg" in e for e in source.errors)


def test_a_timestamps_csv_without_its_columns_is_refused_naming_the_file(tmp_path):
    write_frames(tmp_path, ["000001.jpg"])
    (tmp_path / "timestamps.csv").write_text("when,where\n1,2\n")
    with pytest.raises(SourceError, match=r"timestamps\.csv lacks the columns frame,epoch_ms"):
        open_source(tmp_path)


# --- bad footage: never lose what is readable ----------------------------------------------------


def test_truncated_avi_yields_every_decodable_frame_and_says_where_it_stopped(clips, tmp_path):
    data = clips["avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])  # the second half of the frames and the index are gone
    source = open_source(cut, fps=60.0, start_time=START)
    frames = list(source.frames())
    assert 0 < len(frames) < 50
    # The frame at the cut decodes from part of its data, so only those before it show their number.
    assert [frame_number_in(f.image) for f in frames[:-1]] == list(range(len(frames) - 1))
    assert source.errors == [
        f"stopped at frame {len(frames)} of 50: cut.avi is truncated or corrupt"
    ]


def test_truncated_mp4_without_its_index_is_refused_with_what_happened(clips, tmp_path):
    # OpenCV writes the MP4 index (moov) last: half a file has no index and no frame is readable.
    data = clips["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"cut\.mp4.*index \(moov box\) is missing"):
        open_source(cut)


def test_damaged_stretch_inside_a_video_is_skipped_and_reading_goes_on(clips, tmp_path):
    # Zero the JPEG data of frame 20 of the MJPG AVI: the decoder fails there, not at the end.
    data = bytearray(clips["avi"].read_bytes())
    chunk = data.index(b"00dc", data.index(b"movi"))
    for _ in range(20):
        chunk = data.index(
            b"00dc", chunk + 8 + int.from_bytes(data[chunk + 4 : chunk + 8], "little")
        )
    size = int.from_bytes(data[chunk + 4 : chunk + 8], "little")
    data[chunk + 8 : chunk + 8 + size] = bytes(size)
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(bytes(data))
    source = open_source(damaged, fps=60.0, start_time=START)
    frames = list(source.frames())
    numbers = [frame_number_in(f.image) for f in frames]
    assert [f.index for f in frames] == numbers  # indices stay the frames' true positions
    assert numbers[:20] == list(range(20)) and numbers[-1] == 49 and 20 not in numbers
    assert len(source.errors) == 1 and "cannot be decoded" in source.errors[0]
    assert "skipped to frame" in source.errors[0]
    resumed = list(source.frames(numbers[20]))
    assert same_frames(resumed, frames[20:])


def test_corrupt_and_truncated_jpegs_in_a_folder_are_handled_and_named(tmp_path):
    names = [f"{i + 1:06d}_{epoch_ms(START) + 500 * i}.jpg" for i in range(5)]
    paths = write_frames(tmp_path, names)
    paths[1].write_bytes(b"\x00" * 100)  # not an image at all: skipped
    big = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    cv2.imwrite(str(paths[3]), big)
    paths[3].write_bytes(paths[3].read_bytes()[:-3000])  # cut short: decodes partly, kept
    source = open_source(tmp_path)
    frames = list(source.frames())
    assert [f.index for f in frames] == [0, 2, 3, 4]
    assert any(names[1] in e and "cannot be decoded" in e for e in source.errors)
    assert any(names[3] in e and "truncated" in e for e in source.errors)


def test_a_frame_of_another_size_is_still_yielded(tmp_path):
    names = [f"{i + 1:06d}_{epoch_ms(START) + 500 * i}.jpg" for i in range(3)]
    paths = write_frames(tmp_path, names)
    cv2.imwrite(str(paths[1]), np.zeros((100, 50, 3), np.uint8))  # the camera changed resolution
    shapes = [f.image.shape for f in open_source(tmp_path).frames()]
    assert shapes == [(48, 64, 3), (100, 50, 3), (48, 64, 3)]


def test_png_with_alpha_and_greyscale_images_come_out_as_bgr(tmp_path):
    stamp = epoch_ms(START)
    cv2.imwrite(str(tmp_path / f"1_{stamp}.png"), np.zeros((8, 8, 4), np.uint8))
    cv2.imwrite(str(tmp_path / f"2_{stamp + 500}.png"), np.zeros((8, 8), np.uint8))
    assert [f.image.shape for f in open_source(tmp_path).frames()] == [(8, 8, 3)] * 2


def unreadable_footage(case: str, folder: Path) -> Path:
    """Footage from which nothing at all can be read, one kind per case."""
    if case == "missing path":
        return folder / "nowhere.mp4"
    if case == "empty folder":
        return folder
    if case == "text named .mp4":
        (folder / "notes.mp4").write_text("not a video")
        return folder / "notes.mp4"
    if case == "empty file":
        (folder / "empty.avi").write_bytes(b"")
        return folder / "empty.avi"
    return write_frames(folder, ["a.jpg"])[0]  # "single image"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing path", "footage not found"),
        ("empty folder", "no images"),
        ("text named .mp4", "cannot open .* as a video"),
        ("empty file", "cannot open .* as a video"),
        ("single image", "single image; pass the folder"),
    ],
)
def test_footage_that_cannot_be_read_at_all_is_a_source_error_naming_it(tmp_path, case, message):
    location = unreadable_footage(case, tmp_path)
    with pytest.raises(SourceError, match=message) as error:
        open_source(location)
    assert str(location) in str(error.value)


def test_a_folder_with_several_videos_and_no_images_is_refused(clips, tmp_path):
    shutil.copy(clips["mp4"], tmp_path)
    shutil.copy(clips["avi"], tmp_path)
    with pytest.raises(SourceError, match="several videos"):
        open_source(tmp_path)


@pytest.mark.parametrize("fps", [0.0, -1.0, 60.5, math.nan, math.inf])
def test_sampling_rate_outside_0_to_60_is_refused(clips, fps):
    with pytest.raises(InvalidOptionError, match="fps must be > 0 and <= 60"):
        open_source(clips["mp4"], fps=fps)


def test_start_time_without_zone_or_for_a_folder_is_refused(clips):
    with pytest.raises(InvalidOptionError, match="no time zone"):
        open_source(clips["mp4"], start_time=datetime(2026, 11, 25, 14, 5, 1))
    with pytest.raises(InvalidOptionError, match="video files only"):
        open_source(SAMPLES / "cameras" / "c1", start_time=START)


# --- fingerprints --------------------------------------------------------------------------------


def test_video_fingerprint_is_the_sha256_of_its_bytes(clips):
    expected = hashlib.sha256(clips["avi"].read_bytes()).hexdigest()
    assert open_source(clips["avi"], start_time=START).fingerprint() == expected


def test_folder_fingerprint_is_stable_and_changes_with_content(tmp_path):
    names = [f"{i + 1:06d}_{epoch_ms(START) + 500 * i}.jpg" for i in range(3)]
    paths = write_frames(tmp_path / "a", names)
    first = open_source(tmp_path / "a").fingerprint()
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # same content elsewhere: same id
    assert open_source(tmp_path / "b").fingerprint() == first
    cv2.imwrite(str(paths[2]), np.full((48, 64, 3), 99, np.uint8))
    assert open_source(tmp_path / "a").fingerprint() != first
    assert len(first) == 64


# --- live streams --------------------------------------------------------------------------------


class MjpegCamera:
    """A stdlib HTTP MJPEG camera (multipart/x-mixed-replace) that misbehaves on a script.

    ``plan`` lists what each successive connection gets: a number of frames to send before
    dropping the connection, or 0 for a 503 refusal. Frames show their number overall.
    """

    def __init__(self, plan: list[int], login: str | None = None, interval_s: float = 0.03) -> None:
        self.plan = iter(plan)
        self.sent = 0
        self.connections = 0
        camera = self
        expected_auth = f"Basic {base64.b64encode(login.encode()).decode()}" if login else None

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                if expected_auth and self.headers.get("Authorization") != expected_auth:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                camera.connections += 1
                count = next(camera.plan, 0)
                if count == 0:
                    self.send_error(503, "camera offline")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                for _ in range(count):
                    image = numbered_frame(camera.sent)
                    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}"
                    try:
                        self.wfile.write(head.encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    camera.sent += 1
                    time.sleep(interval_s)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/video.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def camera_factory() -> Iterator:
    cameras: list[MjpegCamera] = []

    def make(plan: list[int], login: str | None = None) -> MjpegCamera:
        cameras.append(MjpegCamera(plan, login))
        return cameras[-1]

    yield make
    for camera in cameras:
        camera.close()


def test_stream_that_drops_reconnects_with_backoff_then_ends_cleanly(camera_factory):
    # 6 frames, drop; one refused reconnect; 6 more frames, drop; then refused for good.
    camera = camera_factory([6, 0, 6])
    started = time.monotonic()
    source = open_source(camera.url, fps=20.0, max_reconnects=2, reconnect_base_s=0.05)
    assert isinstance(source, StreamSource) and source.estimated_frames() is None
    frames = list(source.frames())
    elapsed = time.monotonic() - started
    assert camera.sent == 12
    assert frames and frames[-1].index <= 11
    # Indices count every frame read, across reconnects: the pixels say which frame it was.
    assert all(frame_number_in(f.image) == f.index for f in frames)
    assert any(f.index >= 6 for f in frames)  # frames after the reconnect were read
    ticks = [math.floor((f.timestamp - frames[0].timestamp).total_seconds() * 20) for f in frames]
    assert all(a < b for a, b in itertools.pairwise(ticks))  # at most one frame per tick
    assert all(f.timestamp.tzinfo == UTC for f in frames)
    assert source.errors == [
        f"stream {camera.url} dropped after 6 frames",
        f"reconnect attempt 1 of 2 to {camera.url} after 0.05 s: failed",
        f"reconnect attempt 2 of 2 to {camera.url} after 0.1 s: reconnected",
        f"stream {camera.url} dropped after 12 frames",
        f"reconnect attempt 1 of 2 to {camera.url} after 0.05 s: failed",
        f"reconnect attempt 2 of 2 to {camera.url} after 0.1 s: failed",
        f"gave up on {camera.url} after 2 failed reconnect attempts; frames read so far are kept",
    ]
    assert elapsed >= 0.05 + 0.1 + 0.05 + 0.1


def test_stream_backoff_is_capped_and_zero_reconnects_stops_at_the_first_drop(camera_factory):
    camera = camera_factory([3])
    source = open_source(camera.url, max_reconnects=3, reconnect_base_s=0.03, reconnect_max_s=0.05)
    list(source.frames())
    attempts = [e for e in source.errors if e.startswith("reconnect attempt")]
    delays = [e.split(" after ")[1].split(":")[0] for e in attempts]
    assert delays == ["0.03 s", "0.05 s", "0.05 s"]  # 0.03, 0.06 -> 0.05, 0.12 -> 0.05

    camera = camera_factory([3, 3])
    source = open_source(camera.url, max_reconnects=0)
    frames = list(source.frames())
    assert frames and camera.connections == 1
    assert source.errors[-1].startswith("gave up") and "after 0 failed" in source.errors[-1]


def test_unreachable_stream_is_a_source_error_and_passwords_are_masked():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match=r"cannot open stream http://admin:\*\*\*@127") as error:
        open_source(f"http://admin:secret@127.0.0.1:{port}/video.mjpg")
    assert "secret" not in str(error.value)


def test_stream_fingerprint_is_the_url_without_its_password(camera_factory):
    camera = camera_factory([5], login="admin:secret")
    with pytest.raises(SourceError):  # the camera does want the password
        open_source(camera.url)
    url = camera.url.replace("http://", "http://admin:secret@")
    source = open_source(url, max_reconnects=0)
    assert len(list(source.frames())) > 0  # ... and gets it, though it is shown nowhere
    assert source.fingerprint() == camera.url.replace("http://", "http://admin:***@")
    assert source.uri == source.fingerprint()  # the uri is stored and shown too
    with pytest.raises(InvalidOptionError, match="video files only"):
        open_source(url, start_time=START)


# --- real footage --------------------------------------------------------------------------------


@pytest.mark.shared
def test_real_mp4_at_10_fps_is_sampled_every_fifth_frame_and_resumes_exactly(shared_dir):
    path = shared_dir / "data/real/intel_sample_videos/one-by-one-person-detection.mp4"
    source = open_source(path, start_time=START)
    shapes = set()
    frames = summary(f for f in source.frames() if not shapes.add(f.image.shape))
    assert shapes == {(432, 768, 3)}
    assert len(frames) == source.estimated_frames() == 279  # 1394 frames, 139.4 s at 2 fps
    assert [index for index, _, _ in frames] == list(range(0, 1394, 5))
    assert frames[-1][1] == START + timedelta(seconds=139.0)
    assert source.errors == []
    for start in (700, 1386):  # a seek to resume must land on exactly the same frames
        assert summary(source.frames(start)) == [f for f in frames if f[0] >= start]


@pytest.mark.shared
def test_real_raw_h264_is_timed_at_25_fps_and_says_the_rate_is_assumed(shared_dir, caplog):
    # A raw .264 stream has no container: no frame times, no count; FFmpeg reports 25 fps.
    path = shared_dir / "data/real/intel_sample_videos/people-detection.264"
    source = open_source(path, start_time=START)
    frames = list(source.frames())
    assert len(frames) == source.estimated_frames() == 48  # 596 frames, 23.84 s at 2 fps
    assert [f.index for f in frames[:4]] == [0, 13, 25, 38]
    assert frames[1].timestamp == START + timedelta(seconds=13 / 25)
    assert len(source.errors) == 1 and "carries no frame times" in source.errors[0]
    with source_log(caplog):  # raw H.264 cannot seek: resuming decodes from the start, exactly
        assert same_frames(list(source.frames(500)), [f for f in frames if f.index >= 500])
    assert "resuming people-detection.264 at frame 500: decoding from the start" in caplog.text


@pytest.mark.shared
def test_real_mp4_cut_in_half_yields_its_first_half(shared_dir, tmp_path):
    # This MP4 has its index first (fast start), so a cut copy stays readable up to the cut.
    data = (
        shared_dir / "data/real/intel_sample_videos/one-by-one-person-detection.mp4"
    ).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    source = open_source(cut, start_time=START)
    frames = list(source.frames())
    assert 120 < len(frames) < 140
    assert len(source.errors) == 1 and source.errors[0].endswith(
        "of 1394: cut.mp4 is truncated or corrupt"
    )
