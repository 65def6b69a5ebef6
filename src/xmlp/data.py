"""Data sets: the seed notebook's toy regression and the 8x8 handwritten digits."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

__all__ = ["generate_data", "load_digits", "stratified_split"]


def generate_data(num_samples: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """x (num_samples, 1) on [-1, 1] and y = 2 x**2 + 3 + N(0, 0.2**2) noise, (num_samples, 1).

    The notebook seeds NumPy's global RNG with 4; this draws the same numbers from a private
    ``RandomState(4)`` so the caller's global random state is left alone.

    Args:
        num_samples: how many (x, y) pairs; the notebook's 100 by default.

    Example:
        >>> from xmlp.data import generate_data
        >>> x, y = generate_data()
        >>> x.shape, y.shape, x.dtype
        ((100, 1), (100, 1), dtype('float64'))
    """
    rs = np.random.RandomState(4)
    x = np.linspace(-1, 1, num_samples)
    noise = rs.randn(x.shape[0]) * 0.2
    y = 2 * x**2 + 3 + noise
    return np.expand_dims(x, 1), np.expand_dims(y, 1)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 handwritten digits shipped with xmlp (no download, no scikit-learn needed).

    Returns images (1797, 64) float64 with pixels 0..16 (row by row) and labels (1797,) int64
    in 0..9. The UCI "Optical Recognition of Handwritten Digits" data (E. Alpaydin and C.
    Kaynak, 1998, https://doi.org/10.24432/C50P49), CC BY 4.0, in scikit-learn's copy: see
    ``xmlp/_data/README.md``.

    Example:
        >>> from xmlp.data import load_digits
        >>> images, labels = load_digits()
        >>> images.shape, labels.shape, int(images.max()), sorted(set(labels.tolist()))
        ((1797, 64), (1797,), 16, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """
    with resources.files("xmlp").joinpath("_data/digits.csv.gz").open("rb") as raw, \
            gzip.open(raw, "rt") as text:
        table = np.loadtxt(text, delimiter=",", dtype=np.int64)
    return table[:, :-1].astype(np.float64), table[:, -1]


def stratified_split(labels: np.ndarray, test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), each sorted: ``round(test_fraction * count)`` samples of
    every class go to the test part, drawn with ``numpy.random.default_rng(seed)``, so each
    class keeps its share in both parts.

    Args:
        labels: (N,) class labels.
        test_fraction: the share of each class that goes to the test part.
        seed: the seed of the draw.

    Example:
        >>> from xmlp.data import load_digits, stratified_split
        >>> images, labels = load_digits()
        >>> train, test = stratified_split(labels, 0.2, seed=0)
        >>> len(train), len(test)
        (1438, 359)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise TypeError(f"stratified_split: labels must be 1-D integers, got {labels.dtype} "
                        f"of shape {labels.shape}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"stratified_split: test_fraction must be in (0, 1), got "
                         f"{test_fraction!r}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = round(test_fraction * members.size)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
