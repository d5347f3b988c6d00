"""The demo's data and model: handwritten digits, deskewed, classified by a random forest.

The data is scikit-learn's bundled digits set (1,797 images of 8x8 pixels,
each with its true label), so nothing is downloaded and every run sees the
same records. A fixed shuffle splits it: the model trains on the first part,
and the server streams the rest, round and round, with their labels so the
demo can say how often the model was right.

Everything a worker runs is here, at module level, so workers import it by
name: `preprocess`, `load_model`, `classify_batch` and `classify_one`.
scikit-learn is imported only inside functions: ``python -m pipework``
must start (and say what to install) without it.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from typing import Any, NamedTuple, TypedDict

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.float64]
"""An 8x8 image, each pixel from 0 (blank) to 1 (ink)."""

SIDE = 8
LEVELS = 16
"""The data set's pixels run from 0 to 16."""

TRAIN = 1000
"""Images the model trains on; the other 797 are the stream."""

TREES = 50
"""A forest's cost per call is nearly all per tree, whatever the batch: see `load_model`."""

_SEED = 0
_ROWS, _COLS = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64)


class Record(TypedDict):
    """One record as the server sends it: an image and its label, and when it was served.

    ``due`` and ``served`` are the server's `time.perf_counter` readings, one
    system-wide clock, so the pipeline's sink can subtract them from its own
    although the server runs in another process: ``due`` is when the record's
    place in the schedule came, ``served`` when the server answered. A record
    is never served before it is due.
    """

    id: int
    label: int
    pixels: str  # base64 of 64 bytes, one per pixel, 0 to 16
    due: float
    served: float


class Meta(NamedTuple):
    """What travels with a record from the fetch to the sink, besides its image.

    ``prepared`` is when its preprocessing ended, a `time.perf_counter`
    reading in the worker: on Linux, macOS and Windows a system-wide
    monotonic clock, so the parent can compare it with its own.
    """

    id: int
    label: int
    due: float
    served: float
    prepared: float


class Sample(NamedTuple):
    """A record after preprocessing: what the model sees."""

    meta: Meta
    features: Image


class Prediction(NamedTuple):
    """A record's predicted digit, and the model call that made it.

    ``batch`` names the call (worker process id, call number) so the sink
    can count calls and their sizes; ``size`` and ``seconds`` are that
    call's items and the time the model took on them, and ``started`` when
    it began (a `time.perf_counter` reading in the worker, as ``prepared``).
    """

    meta: Meta
    digit: int
    batch: tuple[int, int]
    size: int
    seconds: float
    started: float


@dataclass(frozen=True)
class Digits:
    """The split data set: training images and labels, and the images the server streams."""

    train_images: npt.NDArray[np.uint8]
    train_labels: npt.NDArray[np.int64]
    stream_images: npt.NDArray[np.uint8]
    stream_labels: npt.NDArray[np.int64]


def load() -> Digits:
    """Load the bundled digits and split them by a fixed shuffle, the same in every process."""
    from sklearn.datasets import load_digits  # noqa: PLC0415 - an optional extra, loaded late

    bunch = load_digits()
    images = np.asarray(bunch.images, dtype=np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(_SEED).permutation(len(labels))
    train, stream = order[:TRAIN], order[TRAIN:]
    return Digits(images[train], labels[train], images[stream], labels[stream])


def encode(image: npt.NDArray[np.uint8]) -> str:
    """Pack an image for JSON: base64 of its 64 pixel bytes."""
    return base64.b64encode(image.tobytes()).decode("ascii")


# In the preprocessing workers --------------------------------------------


def preprocess(record: Record) -> Sample:
    """Decode, normalise and deskew one record: the per-item CPU work of the demo."""
    pixels = np.frombuffer(base64.b64decode(record["pixels"]), dtype=np.uint8)
    image = pixels.reshape(SIDE, SIDE).astype(np.float64) / LEVELS
    found = features(image)
    meta = Meta(record["id"], record["label"], record["due"], record["served"], time.perf_counter())
    return Sample(meta, found)


def features(image: Image) -> Image:
    """Compute the model's input: the deskewed image, and its row and column profiles."""
    upright = deskew(image)
    return np.concatenate([upright.ravel(), upright.mean(axis=0), upright.mean(axis=1)])


def deskew(image: Image) -> Image:
    """Shear ``image`` so its principal axis is vertical, as handwriting slants vary.

    The slant is the ratio of the ink's row-column covariance to its row
    variance (image moments); each row then shifts sideways in proportion to
    its distance from the centre of mass, with linear interpolation.
    """
    ink = image.sum()
    if ink <= 0:
        return image
    row0 = float((_ROWS * image).sum() / ink)
    col0 = float((_COLS * image).sum() / ink)
    spread = float(((_ROWS - row0) ** 2 * image).sum() / ink)
    if spread <= 0:
        return image
    slant = float(((_ROWS - row0) * (_COLS - col0) * image).sum() / ink) / spread
    source = _COLS + slant * (_ROWS - row0)
    left = np.floor(source)
    weight = source - left
    left_int = left.astype(np.intp)
    rows = _ROWS.astype(np.intp)
    upright: Image = (1 - weight) * _pixel(image, rows, left_int) + weight * _pixel(
        image, rows, left_int + 1
    )
    return upright


def _pixel(image: Image, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> Image:
    """``image[rows, cols]``, with 0 for columns outside the image."""
    inside = (cols >= 0) & (cols < SIDE)
    return np.where(inside, image[rows, np.clip(cols, 0, SIDE - 1)], 0.0)


# In the classifying workers ----------------------------------------------


class Model:
    """A worker's trained classifier, and a count of its calls to name each batch by."""

    def __init__(self, forest: Any) -> None:
        """Hold ``forest``, a fitted scikit-learn classifier."""
        self.forest = forest
        self.calls = 0
        self.pid = os.getpid()

    def predict(self, samples: list[Sample]) -> list[Prediction]:
        """Classify ``samples`` in one call of the model, and say which call it was."""
        self.calls += 1
        start = time.perf_counter()
        digits = self.forest.predict(np.stack([s.features for s in samples]))
        seconds = time.perf_counter() - start
        batch = (self.pid, self.calls)
        return [
            Prediction(s.meta, int(d), batch, len(samples), seconds, start)
            for s, d in zip(samples, digits, strict=True)
        ]


def load_model() -> Model:
    """Train the classifier: the ``setup`` of the classify stage, once per worker.

    A random forest of `TREES` trees on the deskewed training images: about
    0.1 s to train, so each worker trains its own rather than loading a file,
    and with a fixed seed every worker's forest is the same. Its cost per call
    is mostly Python per tree (a few ms), whether the call has 1 image or 64:
    the kind of model that dynamic batching is for.
    """
    from sklearn.ensemble import RandomForestClassifier  # noqa: PLC0415 - an optional extra

    digits = load()
    inputs = np.stack(
        [features(image.astype(np.float64) / LEVELS) for image in digits.train_images]
    )
    forest = RandomForestClassifier(n_estimators=TREES, random_state=_SEED, n_jobs=1)
    forest.fit(inputs, digits.train_labels)
    return Model(forest)


def classify_batch(model: Model, samples: list[Sample]) -> list[Prediction]:
    """Classify a batch in one model call: the function of ``map_batches``."""
    return model.predict(samples)


def classify_one(model: Model, sample: Sample) -> Prediction:
    """Classify one sample in a model call of its own: the function of ``--no-batch``."""
    return model.predict([sample])[0]
