"""The bare processing loop, done well, and the project's image.fit step, timed the same way.

Both run in a multiprocessing Pool with as many processes as the worker has, over the same
images as the end-to-end batch: the ceiling the whole pipeline is compared with.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import time
from collections.abc import Callable

from PIL import Image

from bench import procstat
from bench.inputs import Input
from common.pipeline.steps._imaging import TRANSPOSED, orientation_of, turned

BOX = (640, 640)
QUALITY = 90

# Set before the pool forks, so the images are not pickled into every task.
_images: list[bytes] = []


def fitted(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """`size` scaled down (never up) to fit within `box`, aspect kept."""
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def well_done(data: bytes) -> bytes:
    """Decode at the smallest JPEG scale still >= the target, resize once, orient, encode.

    Orientation is read and applied as the pipeline's pixel steps do (_imaging's
    orientation_of and turned: read again once decoded, which a TIFF may have turned)."""
    with Image.open(io.BytesIO(data)) as img:
        box = BOX[::-1] if orientation_of(img) in TRANSPOSED else BOX
        if img.format == "JPEG":
            img.draft("RGB", fitted(img.size, box))
        img.load()
        orientation = orientation_of(img)
        target = fitted(img.size, BOX[::-1] if orientation in TRANSPOSED else BOX)
        work: Image.Image = img
        if work.mode != "RGB":
            work = work.convert("RGB")
        if work.size != target:
            work = work.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
        work = turned(work, orientation)
        out = io.BytesIO()
        work.save(out, "JPEG", quality=QUALITY)
        return out.getvalue()


def project_fit(data: bytes) -> bytes:
    from common.pipeline.steps.image_fit import fit_image

    return fit_image(data, max_width=BOX[0], max_height=BOX[1])


LOOPS: dict[str, Callable[[bytes], bytes]] = {"baseline": well_done, "fit_image": project_fit}


def _one(task: tuple[str, int]) -> tuple[float, int]:
    loop, index = task
    started = time.process_time()
    out = LOOPS[loop](_images[index])
    return time.process_time() - started, len(out)


class Runner:
    """A pool of `processes` over `images`; each call of measure() runs one loop over all."""

    def __init__(self, images: list[Input], processes: int) -> None:
        global _images
        _images = [each.data for each in images]
        self.count = len(images)
        self.pool = multiprocessing.get_context("fork").Pool(processes)
        for loop in LOOPS:  # warm-up: imports, first-use allocations
            self.pool.map(_one, [(loop, n) for n in range(min(self.count, 4 * processes))])

    def measure(self, loop: str) -> dict[str, float]:
        own = procstat.cpu_seconds(os.getpid())
        busy, started = procstat.machine_busy_seconds(), time.perf_counter()
        done = self.pool.map(_one, [(loop, n) for n in range(self.count)], chunksize=4)
        wall = time.perf_counter() - started
        ours = sum(cpu for cpu, _ in done) + procstat.cpu_seconds(os.getpid()) - own
        other = max(0.0, procstat.machine_busy_seconds() - busy - ours)
        return {
            "images_per_s": self.count / wall,
            "cpu_ms_per_image": 1000 * sum(cpu for cpu, _ in done) / self.count,
            "mean_output_bytes": sum(size for _, size in done) / self.count,
            "other_cpu_share": other / (wall * (os.cpu_count() or 1)),
        }

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def same_output_size(images: list[Input]) -> bool:
    """Whether both loops give images of the same dimensions (they should)."""
    for each in images:
        sizes = [Image.open(io.BytesIO(loop(each.data))).size for loop in LOOPS.values()]
        if len(set(sizes)) != 1:
            return False
    return True
