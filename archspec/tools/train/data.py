"""Training data for `archspec train`: parse `--data`, load the images into memory, hand out batches.

Every data set here fits in memory (CIFAR-10 as uint8 is 180 MB), so there is no
DataLoader: a batch is an index into tensors, which keeps the data order a pure
function of (seed, epoch) and makes resumed and distributed runs reproducible.
Parsing `--data` does not import torch; loading does.
"""

from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from archspec.errors import Mark, Problem, SpecError, shorten

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import torch

    from archspec.plan.ops import Plan

KINDS = ("digits", "synthetic", "cifar10", "imagefolder")
SYNTHETIC_IMAGES = 1024
CIFAR_CLASSES = 10
MAX_SYNTHETIC = 10**8
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")
# Fixed, so that every run, seed and machine holds out the same images.
SPLIT_SEED = 0
HELD_OUT_FRACTION = 0.2


@dataclass(frozen=True)
class DataSource:
    """What `--data` names: a kind, and a folder (cifar10, imagefolder) or an image count (synthetic)."""

    text: str
    kind: str
    folder: Path | None = None
    count: int = SYNTHETIC_IMAGES

    def problem(self, message: str) -> SpecError:
        return SpecError(Problem(Mark(f"--data {shorten(self.text, 200)}"), "data", message))

    def estimated_bytes(self, channels: int, size: tuple[int, int]) -> int:
        """About how much memory the data set takes once loaded for a spec of this input shape."""
        pixels = channels * size[0] * size[1]
        if self.kind == "synthetic":
            return (self.count + max(1, self.count // 4)) * pixels * 4  # float32
        if self.kind == "cifar10":
            return 60_000 * 3 * 32 * 32  # uint8
        if self.kind == "imagefolder" and self.folder is not None:
            return _count_images(self.folder) * 3 * size[0] * size[1]  # uint8, resized to the spec's input
        return 0


def parse_data(text: str) -> DataSource:
    """`digits`, `synthetic[:N]`, `cifar10:DIR` or `imagefolder:DIR`; a folder must exist."""
    kind, sep, rest = text.partition(":")
    source = DataSource(text, kind)
    if kind not in KINDS:
        raise source.problem(f"unknown data {kind!r}; use digits, synthetic, cifar10:DIR or imagefolder:DIR")
    if kind == "digits":
        if sep:
            raise source.problem("digits takes no argument (it is scikit-learn's bundled set)")
        return source
    if kind == "synthetic":
        if not sep:
            return source
        if not (rest.isascii() and rest.isdigit()) or not 1 <= int(rest[:12]) <= MAX_SYNTHETIC:
            raise source.problem(
                f"synthetic:N takes a number of images from 1 to {MAX_SYNTHETIC:,}, not {shorten(repr(rest))}"
            )
        return DataSource(text, kind, count=int(rest))
    if not rest:
        raise source.problem(f"{kind} needs a folder: {kind}:DIR")
    try:
        folder = Path(rest).expanduser()
        exists = folder.is_dir()
    except (OSError, ValueError, RuntimeError):
        exists = False
    if not exists:
        raise source.problem(f"folder {shorten(repr(rest), 200)} does not exist")
    return DataSource(text, kind, folder=folder)


def image_folder_split(folder: Path) -> tuple[Path, Path | None]:
    """`DIR/train` and `DIR/val` (or `DIR/test`) when both exist, else DIR itself with no held-out folder."""
    held = next((folder / name for name in ("val", "test") if (folder / name).is_dir()), None)
    if (folder / "train").is_dir() and held is not None:
        return folder / "train", held
    return folder, None


def _classes(source: DataSource, folder: Path) -> list[str]:
    names = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir() and not entry.name.startswith("."))
    if len(names) < 2:
        raise source.problem(
            f"an image folder needs one subfolder per class (at least two); {str(folder)!r} has {len(names)}"
        )
    return names


def shape_overrides(source: DataSource) -> tuple[str, ...]:
    """`--set` overrides that fit a spec's input and head to the data (none for synthetic: it fits the spec)."""
    if source.kind == "digits":
        return ("input.channels=1", "input.size=[8, 8]", "head.num_classes=10")
    if source.kind == "cifar10":
        return ("input.channels=3", "input.size=[32, 32]", "head.num_classes=10")
    if source.kind == "imagefolder":
        # Images are resized to the spec's own input size, so only channels and classes change.
        assert source.folder is not None  # parse_data gives imagefolder a folder
        return ("input.channels=3", f"head.num_classes={len(_classes(source, image_folder_split(source.folder)[0]))}")
    return ()


def plan_for_data(spec: Any, source: DataSource, overrides: tuple[str, ...] = ()) -> Plan:
    """The plan of `spec` with the user's `overrides`, then fitted to the data (`shape_overrides`). A spec that
    cannot take the data is reported where the spec is, with what the data asked of it; a mistake of the spec
    itself (or of its overrides) as it is."""
    from archspec.lang.sources import apply_override, load_document
    from archspec.plan.load import load_plan, plan_document

    try:
        doc = load_document(spec, overrides)
        for item in shape_overrides(source):  # the data's shape, which the user did not write: no blame
            doc = apply_override(doc, item, f"--data {source.text}", blame=False)
        return plan_document(doc)
    except SpecError as exc:
        load_plan(spec, overrides=overrides)  # a mistake of the spec itself is reported as it is
        raise SpecError(
            [
                Problem(p.mark, p.path, f"{p.message} (--data {source.text}: {describe(source)})", p.via)
                for p in exc.problems
            ]
        ) from None


def describe(source: DataSource) -> str:
    """What the data gives a spec, for error messages."""
    return {
        "digits": "8x8 grayscale images, 10 classes",
        "cifar10": "32x32 RGB images, 10 classes",
        "imagefolder": "RGB images resized to the spec's input size",
        "synthetic": "random images of the spec's input shape",
    }[source.kind]


# --- loading (imports torch) ------------------------------------------------------------------


@dataclass
class TrainData:
    """Images in memory (uint8 or float32, N x C x H x W), labels, and how to normalise and augment them."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    held_x: torch.Tensor
    held_y: torch.Tensor
    mean: torch.Tensor  # per channel, after dividing by `scale`
    std: torch.Tensor
    scale: float
    augment: bool  # the paper's CIFAR augmentation: 4-pixel pad, random crop, horizontal flip

    @property
    def train_size(self) -> int:
        return int(self.train_y.shape[0])

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / self.scale - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)

    def augmentation(self, seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Crop offsets and flips for every training image this epoch: a function of (seed, epoch) only,
        so a sample is augmented alike however the data is sharded or wherever a run resumed."""
        if not self.augment:
            return None
        import torch

        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        return torch.randint(0, 9, (self.train_size, 2), generator=g), torch.rand(self.train_size, generator=g) < 0.5

    def train_batch(
        self, indices: torch.Tensor, augmentation: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._normalise(self.train_x[indices])
        if augmentation is not None:
            x = _pad_crop_flip(x, augmentation[0][indices], augmentation[1][indices])
        return x, self.train_y[indices]

    def held_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._normalise(self.held_x[indices]), self.held_y[indices]


def _pad_crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Zero-pad 4 pixels (zero is the mean once normalised), crop back at `offsets`, mirror where `flips`."""
    import torch
    import torch.nn.functional as F

    n, c, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    rows = (offsets[:, 0:1] + torch.arange(h)).view(n, 1, h, 1)
    cols = (offsets[:, 1:2] + torch.arange(w)).view(n, 1, 1, w)
    cropped = padded[torch.arange(n).view(n, 1, 1, 1), torch.arange(c).view(1, c, 1, 1), rows, cols]
    return torch.where(flips.view(n, 1, 1, 1), cropped.flip(3), cropped)


def load_data(source: DataSource, channels: int, size: tuple[int, int], num_classes: int) -> TrainData:
    """The data set, shaped for a spec whose input is channels x size and whose head has num_classes outputs."""
    if source.kind == "digits":
        return _digits(source)
    if source.kind == "cifar10":
        return _cifar10(source)
    if source.kind == "imagefolder":
        return _image_folder(source, size)
    return _synthetic(source, channels, size, num_classes)


def _with_statistics(
    name: str,
    train_x: torch.Tensor,
    train_y: npt.ArrayLike,
    held_x: torch.Tensor,
    held_y: npt.ArrayLike,
    scale: float,
    augment: bool = False,
) -> TrainData:
    import torch

    pixels = (train_x.float() / scale).transpose(0, 1).reshape(train_x.shape[1], -1)
    mean, std = pixels.mean(1), pixels.std(1).clamp_min(1e-6)
    return TrainData(
        name,
        train_x,
        torch.as_tensor(train_y, dtype=torch.long),
        held_x,
        torch.as_tensor(held_y, dtype=torch.long),
        mean,
        std,
        scale,
        augment,
    )


def _stratified_split(labels: npt.ArrayLike) -> tuple[list[int], list[int]]:
    """A fixed held-out fifth of every class."""
    import numpy as np

    rng = np.random.RandomState(SPLIT_SEED)
    train: list[int] = []
    held: list[int] = []
    labels = np.asarray(labels)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = round(len(members) * HELD_OUT_FRACTION)
        held += members[:cut].tolist()
        train += members[cut:].tolist()
    return sorted(train), sorted(held)


def _digits(source: DataSource) -> TrainData:
    import torch

    pixels, target = _digits_arrays(source)
    images = torch.as_tensor(pixels.reshape(-1, 8, 8), dtype=torch.float32).unsqueeze(1)  # 1797 x 1 x 8 x 8, 0..16
    train, held = _stratified_split(target)
    return _with_statistics("digits", images[train], target[train], images[held], target[held], scale=16.0)


def _digits_arrays(source: DataSource) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """The 8x8 digits' pixels (1797 x 64) and labels, read from the file scikit-learn ships, as its `load_digits`
    reads it. Reading the file straight spares importing scikit-learn (and SciPy), which takes longer than
    training a small member of a study; without the file where it should be, `load_digits` itself is used."""
    import gzip
    import importlib.util

    import numpy as np

    package = importlib.util.find_spec("sklearn")  # finds the package without importing it
    folders = package.submodule_search_locations if package is not None else None
    for folder in folders or ():
        path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, mode="rt", encoding="utf-8") as handle:
                data = np.loadtxt(handle, delimiter=",")
            return data[:, :-1], data[:, -1].astype(int)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise source.problem("needs scikit-learn: pip install 'archspec[train]'") from None
    digits = load_digits()
    return digits.data, digits.target


class _NumpyOnly(pickle.Unpickler):
    """CIFAR-10's batches are pickles; allow the numpy types they hold and nothing that could run code."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batch(source: DataSource, path: Path) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    import numpy as np

    try:
        with open(path, "rb") as handle:
            batch = _NumpyOnly(handle, encoding="bytes").load()
        raw = batch[b"data"]
        data = np.asarray(raw, dtype=np.uint8).reshape(-1, 3, 32, 32)
        raw_labels = np.asarray(batch[b"labels"])
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        MemoryError,
    ) as exc:
        raise source.problem(f"{path} is not a CIFAR-10 python batch ({shorten(str(exc))})") from None
    # Every check a batch can fail is made now, not in the middle of training.
    if raw_labels.ndim != 1 or raw_labels.dtype.kind not in "iu":
        raise source.problem(f"{path}: the labels are not a list of whole numbers")
    labels = raw_labels.astype(np.int64)
    if len(labels) != len(data):
        raise source.problem(f"{path} holds {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= CIFAR_CLASSES):
        raise source.problem(
            f"{path} has labels from {labels.min()} to {labels.max()}; CIFAR-10's classes are 0 to {CIFAR_CLASSES - 1}"
        )
    return data, labels


def _cifar10(source: DataSource) -> TrainData:
    import numpy as np
    import torch

    folder = source.folder
    assert folder is not None  # parse_data gives cifar10 a folder
    if not (folder / "data_batch_1").is_file() and (folder / "cifar-10-batches-py").is_dir():
        folder = folder / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise source.problem(
            f"{str(folder)!r} lacks {', '.join(missing)} (the python version of CIFAR-10, cifar-10-python.tar.gz, "
            "unpacked); nothing is downloaded"
        )
    parts = [_cifar_batch(source, folder / name) for name in names]
    train_x = torch.from_numpy(np.concatenate([p[0] for p in parts[:5]]))
    train_y = np.concatenate([p[1] for p in parts[:5]])
    held_x, held_y = torch.from_numpy(parts[5][0]), parts[5][1]
    return _with_statistics("cifar10", train_x, train_y, held_x, held_y, scale=255.0, augment=True)


def _read_images(
    source: DataSource, folder: Path, classes: list[str], size: tuple[int, int]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    import numpy as np

    try:
        from PIL import Image
    except ImportError:
        raise source.problem("needs Pillow to read images: pip install pillow") from None
    images: list[npt.NDArray[np.uint8]] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        files = _image_files(folder / name)
        if not files:
            raise source.problem(f"class folder {str(folder / name)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for path in files:
            try:
                with warnings.catch_warnings():
                    # Pillow warns of a possible decompression bomb before it refuses one: refuse both.
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with Image.open(path) as image:
                        resized = image.convert("RGB").resize((size[1], size[0]), Image.Resampling.BILINEAR)
                        pixels = np.asarray(resized, dtype=np.uint8)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise source.problem(
                    f"image {str(path)!r} is too large to decode safely (a decompression bomb?)"
                ) from None
            except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
                raise source.problem(
                    f"cannot read image {str(path)!r} ({shorten(str(exc) or type(exc).__name__)})"
                ) from None
            images.append(pixels.transpose(2, 0, 1))
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _count_images(folder: Path) -> int:
    """Image files one level below each class folder (of DIR, or DIR/train and DIR/val)."""
    total = 0
    try:
        for top in (folder / "train", folder / "val", folder / "test") if (folder / "train").is_dir() else (folder,):
            if top.is_dir():
                total += sum(len(_image_files(Path(entry.path))) for entry in os.scandir(top) if entry.is_dir())
    except OSError:
        return 0
    return total


def _image_folder(source: DataSource, size: tuple[int, int]) -> TrainData:
    import torch

    assert source.folder is not None  # parse_data gives imagefolder a folder
    train_dir, held_dir = image_folder_split(source.folder)
    classes = _classes(source, train_dir)
    x, y = _read_images(source, train_dir, classes, size)
    if held_dir is not None:
        missing = sorted(set(classes) - set(_classes(source, held_dir)))
        if missing:
            raise source.problem(f"held-out folder {str(held_dir)!r} lacks the classes {', '.join(missing)}")
        held_x, held_y = _read_images(source, held_dir, classes, size)
        if len(held_y) == 0:
            raise source.problem(f"held-out folder {str(held_dir)!r} holds no images")
        return _with_statistics("imagefolder", torch.from_numpy(x), y, torch.from_numpy(held_x), held_y, scale=255.0)
    train, held = _stratified_split(y)
    if not held:
        raise source.problem(
            f"every class of {str(source.folder)!r} has too few images to hold a fifth out for the held-out error; "
            "add images, or give DIR/train and DIR/val folders"
        )
    images = torch.from_numpy(x)
    return _with_statistics("imagefolder", images[train], y[train], images[held], y[held], scale=255.0)


def _synthetic(source: DataSource, channels: int, size: tuple[int, int], num_classes: int) -> TrainData:
    import torch

    # Fixed, not --seed: every spec and every run sees the same images.
    g = torch.Generator().manual_seed(SPLIT_SEED)
    held = max(1, source.count // 4)
    x = torch.randn(source.count + held, channels, *size, generator=g)
    y = torch.randint(0, num_classes, (source.count + held,), generator=g)
    return TrainData(
        "synthetic",
        x[: source.count],
        y[: source.count],
        x[source.count :],
        y[source.count :],
        torch.zeros(channels),
        torch.ones(channels),
        1.0,
        False,
    )
