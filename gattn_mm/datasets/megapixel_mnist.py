"""Megapixel MNIST (Katharopoulos & Fleuret, ICML 2019), drawn exactly as
``scripts/make_mnist.py`` of idiap/attention-sampling draws it, from the real MNIST
digits (:mod:`gattn_mm.datasets.mnist_idx`: no download at generation time), with the
``max`` and ``multi`` tasks of IPS (Bergner et al., ICLR 2023, benbergner/ips
``data/megapixel_mnist/make_mnist.py``; the ATS script has only the majority label).

An image is a black 1500 x 1500 canvas with 5 MNIST digits of 28 px at random,
non-overlapping places (3 of the majority class, 2 drawn from the other classes) and
50 scribbles (pairs of straight lines in a 28 px square, from a bank of 50 patterns)
drawn after the digits, so a scribble's square covers what lies under it. As in the
public script: a split's draws come from ``np.random.RandomState(seed + 1)`` over the
MNIST train digits (train) and ``RandomState(seed)`` over the MNIST test digits (test),
default seed 0; per split first every image's majority class and digits (3 then 2
``choice`` calls, with replacement), then every image's 5 positions (rejection of
overlaps), then the scribble bank (its second-line flips both on axis 2, as in the
script) and every image's 50 scribble positions and patterns. Pixels are
``uint8(255 * float32(digit / 255))``, ``uint8(255 * float32(scribble))``.

Where it differs from the public script:

* a ``val`` split, which the public script has not: ``RandomState([seed, 2])`` (an
  array seed, a stream that no integer seed of the public script gives) over the
  MNIST train digits, drawn by the same procedure. Its images are new, but their
  digits come from the pool that train draws from (MNIST test stays test's alone);
  train and test are the public ones.
* written as 8-bit PNGs (the public ``train.npy``/``test.npy`` hold the same pixels
  as float32 ``value / 255``, sparse), 2-d instead of (H, W, 1), with the digits'
  boxes and classes; the public 0.12-scale low-resolution view is not written (the
  configs resize on their own).
* the MNIST digits come from the standard idx files, checked against their published
  MD5s, instead of Keras' ``mnist.load_data()`` (which serves the same MNIST, in
  the same order; its mnist.npz is not checked here).
* labels: ``majority`` (ATS's label), ``max`` and ``multi`` (IPS's: the largest digit;
  the set of classes present); IPS's ``top`` task is not written. IPS's script makes
  the same draws but paints the scribbles first and the digits over them: its images
  differ from ATS's (and these) where a scribble overlaps a digit.

A split's images depend on its count (the script draws all digit choices, then all
positions, ...): 5,000 train and 1,000 test images give the public data set.
"""
from dataclasses import dataclass
from typing import Dict, Iterator, List, NamedTuple, Optional

import numpy as np

from .digitbags_generator import SPLITS
from .megapixel_generator import MegapixelSample, checked_num, write_megapixel
from .mnist_idx import MNIST

DIGIT = 28  # side of an MNIST digit and of a scribble
BANK = 50  # scribble patterns, and scribbles per image
MNIST_SPLIT = {'train': 'train', 'val': 'train', 'test': 'test'}
STREAMS = {'train': 'RandomState(seed + 1) over MNIST train (public)',
           'val': 'RandomState([seed, 2]) over MNIST train (ours)',
           'test': 'RandomState(seed) over MNIST test (public)'}


@dataclass
class MegapixelMNISTSpec:
    """Everything that decides the bytes (defaults: the public data, plus val).

    Args:
        task (str): ``majority``, ``max`` or ``multi``.
        num (dict): images per split.
        seed (int): the public script's ``--dataset_seed``.
        canvas (int): side of the square canvas (the script's width and height).
    """
    task: str = 'majority'
    num: Optional[Dict[str, int]] = None
    seed: int = 0
    canvas: int = 1500

    def __post_init__(self):
        self.num = checked_num(self.task, self.num)
        if not 0 <= self.seed <= 2**32 - 2:
            raise ValueError(f'seed must be in [0, 2**32 - 2] (seed + 1 seeds numpy\'s '
                             f'RandomState), got {self.seed}')
        if self.canvas < 4 * DIGIT:
            raise ValueError(f'canvas must be >= {4 * DIGIT} px, got {self.canvas}')


def split_stream(split: str, seed: int) -> np.random.RandomState:
    """The random stream of ``split`` (see :data:`STREAMS`)."""
    return {'train': lambda: np.random.RandomState(seed + 1),
            'val': lambda: np.random.RandomState([seed, 2]),
            'test': lambda: np.random.RandomState(seed)}[split]()


class PublicDraws(NamedTuple):
    """The random draws of one split, as the public script's ``MegapixelMNIST``
    makes them: MNIST indices ``nums`` (n, 5), majority ``targets`` (n,), digit
    ``positions`` (n, 5, [row, col]), the scribble bank ``noise`` (50, 28, 28) float32,
    ``noise_positions`` (n, 50, [row, col]) and ``noise_patterns`` (n, 50)."""
    nums: np.ndarray
    targets: np.ndarray
    positions: np.ndarray
    noise: np.ndarray
    noise_positions: np.ndarray
    noise_patterns: np.ndarray


def draw_numbers(rs: np.random.RandomState, labels: np.ndarray, n: int):
    """``_get_numbers``: per image a majority class, 3 digits of it and 2 of others."""
    all_idxs = np.arange(len(labels))
    same = [all_idxs[labels == c] for c in range(10)]  # the script's masks, made once
    other = [all_idxs[labels != c] for c in range(10)]
    nums, targets = [], []
    for _ in range(n):
        target = int(rs.rand() * 10)
        nums.append(np.concatenate([rs.choice(same[target], 3), rs.choice(other[target], 2)]))
        targets.append(target)
    return np.array(nums, np.int64).reshape(n, 5), np.array(targets, np.int64)


def draw_positions(rs: np.random.RandomState, n: int, canvas: int) -> np.ndarray:
    """``_get_positions``: 5 top-left corners per image, redrawn while within 28 px of
    an earlier one on both axes."""
    positions = np.zeros((n, 5, 2), np.int64)
    for i in range(n):
        for j in range(5):
            while True:
                pos = np.round(rs.rand(2) * [canvas - DIGIT, canvas - DIGIT]).astype(int)
                if not (np.abs(positions[i, :j] - pos) < DIGIT).all(axis=1).any():
                    break
            positions[i, j] = pos
    return positions


def draw_noise(rs: np.random.RandomState, n: int, canvas: int):
    """``_create_noise``: the bank of 50 scribbles, then per image 50 positions in
    [28, canvas - 28) and 50 patterns."""
    angles = np.tan(rs.rand(BANK) * np.pi / 2.5)
    lines = np.zeros((BANK, DIGIT, DIGIT))
    for i in range(BANK):
        x = np.linspace(0, min(27.49, 27.49 / angles[i]), 2 * DIGIT)
        lines[i, np.round(x).astype(int), np.round(angles[i] * x).astype(int)] = 1.
    second = np.array(lines)
    rs.shuffle(second)
    flip_x, flip_y = rs.rand(BANK) < 0.33, rs.rand(BANK) < 0.33
    second[flip_x] = np.flip(second[flip_x], 2)
    second[flip_y] = np.flip(second[flip_y], 2)  # axis 2 again, as the public script
    noise = ((lines + second) > 0).astype(float)
    noise *= rs.rand(BANK, DIGIT, DIGIT) * 0.2 + 0.8
    span = [canvas - 2 * DIGIT, canvas - 2 * DIGIT]
    positions = (rs.rand(n, BANK, 2) * span + DIGIT).astype(int)
    patterns = (rs.rand(n, BANK) * BANK).astype(int)
    return noise.astype(np.float32), positions, patterns


def draw_split(rs: np.random.RandomState, labels: np.ndarray, n: int,
               canvas: int = 1500) -> PublicDraws:
    """All draws of a split of ``n`` images, in the public script's order."""
    nums, targets = draw_numbers(rs, labels, n)
    positions = draw_positions(rs, n, canvas)
    return PublicDraws(nums, targets, positions, *draw_noise(rs, n, canvas))


def render_image(draws: PublicDraws, i: int, images: np.ndarray, canvas: int) -> np.ndarray:
    """Image ``i`` (uint8, canvas x canvas): ``Sample.high()`` of the public script,
    the digits first, then the scribbles over them."""
    image = np.zeros((canvas, canvas), np.uint8)
    for (y, x), idx in zip(draws.positions[i], draws.nums[i]):
        image[y:y + DIGIT, x:x + DIGIT] = 255 * (images[idx].astype(np.float32) / 255.)
    for (y, x), p in zip(draws.noise_positions[i], draws.noise_patterns[i]):
        image[y:y + DIGIT, x:x + DIGIT] = 255 * draws.noise[p]
    return image


def mnist_samples(draws: PublicDraws, images: np.ndarray, labels: np.ndarray,
                  canvas: int) -> Iterator[MegapixelSample]:
    """The images of a split, rendered one by one, with their digits' boxes (xyxy)."""
    for i, (nums, positions) in enumerate(zip(draws.nums, draws.positions)):
        boxes: List[List[int]] = [[int(x), int(y), int(x) + DIGIT, int(y) + DIGIT]
                                  for y, x in positions]
        yield MegapixelSample(render_image(draws, i, images, canvas), boxes,
                              [int(labels[k]) for k in nums], int(draws.targets[i]),
                              dict(mnist_index=[int(k) for k in nums]))


def generate_megapixel_mnist(out_dir: str, spec: MegapixelMNISTSpec, mnist: MNIST,
                             progress: bool = True) -> Dict[str, int]:
    """Write Megapixel MNIST to ``out_dir`` in the layout of
    :func:`gattn_mm.datasets.megapixel_generator.write_megapixel` (instance entries add
    ``mnist_index``: the digits' indices in their MNIST split). Returns the number of
    images per split."""
    samples = {}
    for split in SPLITS:
        images, labels = mnist.split(MNIST_SPLIT[split])
        draws = draw_split(split_stream(split, spec.seed), labels, spec.num[split],
                           spec.canvas)
        samples[split] = mnist_samples(draws, images, labels, spec.canvas)
    meta = dict(preset='megapixel_mnist', canvas=spec.canvas, digit_size=DIGIT,
                scribbles=BANK, bank=BANK, seed=spec.seed, streams=STREAMS,
                mnist_split=MNIST_SPLIT, mnist_md5=mnist.md5,
                definition='idiap/attention-sampling scripts/make_mnist.py (ATS, ICML '
                           '2019); max and multi: benbergner/ips (IPS, ICLR 2023)')
    return write_megapixel(out_dir, samples, spec.num, spec.task, meta, 'Megapixel MNIST',
                           progress)
