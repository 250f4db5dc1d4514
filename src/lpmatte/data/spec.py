"""What ``lpmatte train --data SPEC`` trains on: sources of (image, alpha[, fg, bg]) files.

SPEC is one of:

- a folder with ``images/`` + ``alpha/`` (+ optional ``fg/``, ``bg/``), paired by file stem;
- a soft-alpha folder written by ``lpmatte data soft-alpha`` (``alpha/`` + ``fg/`` + ``bg/``
  + ``source.json`` whose ``"images"`` names the original photos); only the images whose
  alpha exists are used, so a half-converted folder is fine;
- a ``.json``, ``.toml`` or ``.yaml`` file listing several sources::

      backgrounds = ["/data/BG-20K/train"]     # image folders, searched recursively
      procedural_backgrounds = 0.5             # share of gradient/noise/bokeh backgrounds
      group_composites = 0.4                   # share of multi-/small-person composites
      [[sources]]
      path = "soft/flickr"                     # relative to the config file
      weight = 2.0                             # sampling weight of the whole source
      [[sources]]
      path = "/data/P3M-10k"
      kind = "p3m"                             # any lpmatte.data.datasets kind, with its split
      split = "train"
      backgrounds = ["/data/wallpapers"]       # replaces the global list for this source
      [[sources]]
      path = "/data/BG-20K"
      kind = "bg20k"                           # backgrounds, not people: its split folder
                                               # joins the global background list

``group_composites`` (default 0) is the share of the training draws that are composites
of 1-6 person cutouts of the sources, at 8%-100% of the frame height, partly outside it,
overlapping (:mod:`lpmatte.data.composites`); the other draws are single-subject samples
(:mod:`lpmatte.data.augment`).

Every sample gets an id ``"<source name>/<stem>"``; the validation hold-out is a fixed
list of such ids (:func:`split_validation`).
"""

from __future__ import annotations

import json
import random
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from lpmatte.data.datasets.files import files_by_stem, require_dir
from lpmatte.data.datasets.folder import folder_files
from lpmatte.data.datasets.sample import SampleFiles
from lpmatte.errors import LpmatteError

CONFIG_SUFFIXES = (".json", ".toml", ".yaml", ".yml")
SOURCE_KEYS = {"path", "kind", "split", "weight", "backgrounds", "name"}
TOP_KEYS = {"sources", "backgrounds", "procedural_backgrounds", "group_composites"}


@dataclass(frozen=True)
class TrainSource:
    """One training source: its samples, sampling weight and background folders."""

    name: str
    files: tuple[SampleFiles, ...]
    weight: float = 1.0
    backgrounds: tuple[Path, ...] = ()

    def ids(self) -> list[str]:
        return [f"{self.name}/{entry.name}" for entry in self.files]


@dataclass(frozen=True)
class DataSpec:
    """Everything ``--data`` describes. ``procedural_backgrounds`` in [0, 1] is the share of
    procedural backgrounds mixed with the folders (1 when a source has no folder);
    ``group_composites`` in [0, 1] the share of multi-person composites among the draws."""

    sources: tuple[TrainSource, ...]
    procedural_backgrounds: float = 0.5
    origin: str = ""
    extra: dict = field(default_factory=dict)
    group_composites: float = 0.0

    def __len__(self) -> int:
        return sum(len(source.files) for source in self.sources)

    def ids(self) -> list[str]:
        return [sample_id for source in self.sources for sample_id in source.ids()]


def parse_data_spec(spec: str | Path, backgrounds: list[str | Path] | tuple = (),
                    procedural_backgrounds: float = 0.5) -> DataSpec:
    """Read ``--data SPEC`` (module docstring); ``backgrounds`` apply to folder specs."""
    path = Path(spec)
    if path.is_dir():
        folders = tuple(_background_folder(Path(b)) for b in backgrounds)
        source = folder_source(path, backgrounds=folders)
        return DataSpec((source,), _share(procedural_backgrounds, str(path)), str(path))
    if path.is_file() and path.suffix.lower() in CONFIG_SUFFIXES:
        return spec_from_config(read_config_file(path), path.parent, str(path))
    if path.is_file():
        raise LpmatteError(f"{path}: --data must be a folder or a "
                           f"{'/'.join(CONFIG_SUFFIXES)} config file")
    raise LpmatteError(f"{path}: no such data folder or config file")


def folder_source(root: Path, name: str | None = None, weight: float = 1.0,
                  backgrounds: tuple[Path, ...] = ()) -> TrainSource:
    """A plain (``images/`` + ``alpha/``) or soft-alpha (``source.json``) folder."""
    name = name or root.name
    if (root / "source.json").is_file():
        files = soft_alpha_files(root)
    elif (root / "images").is_dir() or (root / "alpha").is_dir():
        files = folder_files(root, "images", "alpha", fg_dir="fg", bg_dir="bg")
    else:
        raise LpmatteError(f"{root}: expected images/ + alpha/ sub-folders or a source.json "
                           "(soft-alpha output)")
    return TrainSource(name, tuple(files), _weight(weight, root), backgrounds)


def soft_alpha_files(root: Path) -> list[SampleFiles]:
    """The converted samples of a soft-alpha folder: every ``alpha/<stem>`` with its photo
    from ``source.json``'s ``"images"`` folder and, when present, ``fg/``, ``bg/``."""
    record = _read_source_json(root / "source.json")
    images_dir = Path(record["images"])
    if not images_dir.is_absolute():
        images_dir = root / images_dir
    images = files_by_stem(require_dir(images_dir, f"the photos named by {root}/source.json"))
    alphas = files_by_stem(require_dir(root / "alpha", "the soft alpha mattes"))
    if not alphas:
        raise LpmatteError(f"{root / 'alpha'}: no alpha mattes yet (run the conversion first)")
    missing = [stem for stem in alphas if stem not in images]
    if missing:
        raise LpmatteError(f"{images_dir}: no photo for alpha '{missing[0]}' "
                           f"({len(missing)} missing)")
    extra = {key: files_by_stem(root / key) for key in ("fg", "bg") if (root / key).is_dir()}
    return [SampleFiles(stem, images[stem], alpha,
                        **{key: found.get(stem) for key, found in extra.items()})
            for stem, alpha in alphas.items()]


def _read_source_json(path: Path) -> dict:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise LpmatteError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(record, dict) or "images" not in record:
        raise LpmatteError(f"{path}: expected a JSON object with an \"images\" folder")
    return record


def read_config_file(path: Path) -> dict:
    """Parse a JSON, TOML or YAML data config into a dict (YAML needs PyYAML)."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text()
        if suffix == ".json":
            data = json.loads(text)
        elif suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = _load_yaml(text, path)
    except LpmatteError:
        raise
    except Exception as error:  # each parser raises its own error types
        raise LpmatteError(f"{path}: cannot parse the data config ({error})") from None
    if not isinstance(data, dict):
        raise LpmatteError(f"{path}: the data config must be a mapping with a 'sources' list")
    return data


def _load_yaml(text: str, path: Path):
    try:
        import yaml
    except ImportError:
        raise LpmatteError(f"{path}: YAML configs need PyYAML (pip install pyyaml), "
                           "or write the config as .toml or .json") from None
    return yaml.safe_load(text)


def spec_from_config(data: dict, base: Path, origin: str) -> DataSpec:
    """Build a :class:`DataSpec` from a parsed config; relative paths are from ``base``."""
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise LpmatteError(f"{origin}: unknown key(s) {sorted(unknown)} "
                           f"(expected {sorted(TOP_KEYS)})")
    entries = data.get("sources")
    if not isinstance(entries, list) or not entries:
        raise LpmatteError(f"{origin}: 'sources' must be a non-empty list")
    shared = _folders(data.get("backgrounds", []), base, origin)
    shared += tuple(_background_set(entry, base) for entry in entries if _is_background(entry))
    entries = [entry for entry in entries if not _is_background(entry)]
    if not entries:
        raise LpmatteError(f"{origin}: every source is a background set (kind bg20k); "
                           "add a source of people")
    sources = [_config_source(entry, base, shared, origin) for entry in entries]
    names = [source.name for source in sources]
    if len(set(names)) != len(names):
        raise LpmatteError(f"{origin}: two sources share a name ({names}); give each a 'name'")
    share = _share(data.get("procedural_backgrounds", 0.5), origin, "procedural_backgrounds")
    groups = _share(data.get("group_composites", 0.0), origin, "group_composites")
    return DataSpec(tuple(sources), share, origin, group_composites=groups)


def _is_background(entry) -> bool:
    from lpmatte.data.datasets import canonical_kind

    return isinstance(entry, dict) and canonical_kind(str(entry.get("kind", "folder"))) == "bg20k"


def _background_set(entry: dict, base: Path) -> Path:
    """The image folder of a BG-20K source entry (its split, ``train`` by default)."""
    from lpmatte.data.datasets.backgrounds import BG20K

    if "path" not in entry:
        raise LpmatteError(f"every source needs a 'path' (got {entry!r})")
    return BG20K(_resolve(entry["path"], base), entry.get("split")).folder


def _config_source(entry, base: Path, shared: tuple[Path, ...], origin: str) -> TrainSource:
    if not isinstance(entry, dict) or "path" not in entry:
        raise LpmatteError(f"{origin}: every source needs a 'path' (got {entry!r})")
    unknown = set(entry) - SOURCE_KEYS
    if unknown:
        raise LpmatteError(f"{origin}: unknown source key(s) {sorted(unknown)} "
                           f"(expected {sorted(SOURCE_KEYS)})")
    root = _resolve(entry["path"], base)
    backgrounds = (_folders(entry["backgrounds"], base, origin) if "backgrounds" in entry
                   else shared)
    weight = entry.get("weight", 1.0)
    kind = entry.get("kind", "folder")
    if kind == "folder" and entry.get("split") is None:
        return folder_source(root, entry.get("name"), weight, backgrounds)
    from lpmatte.data.datasets import build_dataset

    dataset = build_dataset(kind, root, entry.get("split"))
    if getattr(dataset, "files", None) is None:
        raise LpmatteError(f"{origin}: a '{kind}' source lists no per-sample files to train on")
    name = entry.get("name") or f"{root.name}-{entry.get('split') or kind}"
    return TrainSource(name, tuple(dataset.files), _weight(weight, root), backgrounds)


def _resolve(value, base: Path) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else base / path


def _folders(values, base: Path, origin: str) -> tuple[Path, ...]:
    if isinstance(values, (str, Path)):
        values = [values]
    if not isinstance(values, list):
        raise LpmatteError(f"{origin}: 'backgrounds' must be a folder or a list of folders")
    return tuple(_background_folder(_resolve(value, base)) for value in values)


def _background_folder(path: Path) -> Path:
    if not path.is_dir():
        raise LpmatteError(f"{path}: no such background folder")
    return path


def _weight(value, where) -> float:
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = -1.0
    if not weight > 0:
        raise LpmatteError(f"{where}: source weight must be a positive number (got {value!r})")
    return weight


def _share(value, where, key: str = "procedural_backgrounds") -> float:
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = -1.0
    if not 0 <= share <= 1:
        raise LpmatteError(f"{where}: {key} must be in [0, 1] (got {value!r})")
    return share


def split_validation(spec: DataSpec, val_ids: list[str],
                     need_training: bool = True) -> tuple[DataSpec, DataSpec]:
    """(training part, validation part) of ``spec``: the samples whose id is in ``val_ids``
    form the validation part. A source left empty by the split is dropped; an empty
    training part is an error unless ``need_training`` is off (validation sets built
    before the training data is prepared)."""
    held = set(val_ids)
    train, val = [], []
    for source in spec.sources:
        ids = source.ids()
        keep = tuple(f for f, i in zip(source.files, ids) if i not in held)
        hold = tuple(f for f, i in zip(source.files, ids) if i in held)
        if keep:
            train.append(replace(source, files=keep))
        if hold:
            val.append(replace(source, files=hold))
    if not train and need_training:
        raise LpmatteError(f"{spec.origin}: nothing left to train on after the validation split")
    return replace(spec, sources=tuple(train)), replace(spec, sources=tuple(val))


def choose_validation_ids(spec: DataSpec, fraction: float, max_count: int,
                          seed: int = 0) -> list[str]:
    """A fixed random hold-out: ``fraction`` of the samples, at most ``max_count``, at least
    one when there are 10 samples or more (fewer: none, every sample is needed to train)."""
    ids = spec.ids()
    if len(ids) < 10 or fraction <= 0 or max_count <= 0:
        return []
    count = min(max_count, max(1, round(fraction * len(ids))))
    return sorted(random.Random(seed).sample(ids, count))


def read_ids(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


# --- the training sample stream --------------------------------------------------------------

def background_source(folders: tuple[Path, ...], procedural_share: float):
    """Backgrounds for one source: random crops of the folders' photos mixed with
    procedural patterns (``procedural_share`` of the draws; all of them without folders)."""
    from lpmatte.data.backgrounds import (
        ImageFolderBackgrounds,
        MixedBackgrounds,
        ProceduralBackgrounds,
    )

    if not folders:
        return ProceduralBackgrounds()
    sources = [ImageFolderBackgrounds(folder) for folder in folders]
    weights = [(1.0 - procedural_share) / len(sources)] * len(sources)
    if procedural_share > 0:
        sources.append(ProceduralBackgrounds())
        weights.append(procedural_share)
    return MixedBackgrounds(sources, weights)


class SampleDraws(torch.utils.data.Dataset):
    """Draw ``n`` of an endless stream of augmented samples, reproducible from (seed, n).

    Draw ``n`` is a group composite with probability ``spec.group_composites``, its people
    picked like single samples; otherwise it picks a source with probability proportional
    to its weight, an entry of it uniformly, and augments it; all from
    ``numpy.random.default_rng([seed, n, attempt])``, so the batches of step ``s`` are the
    same after a resume, whatever the number of workers.
    A sample whose files cannot be read is replaced by another draw (warned once per file).
    """

    MAX_RETRIES = 10

    def __init__(self, spec: DataSpec, crop: int, seed: int = 0, augment=None, composite=None):
        from lpmatte.data.augment import AugmentConfig, DatasetSource, SampleBuilder
        from lpmatte.data.composites import CompositeConfig, GroupBuilder

        config = augment or AugmentConfig(crop_size=crop)
        self.sources = [DatasetSource(FileList(source.files)) for source in spec.sources]
        backgrounds = [background_source(source.backgrounds, spec.procedural_backgrounds)
                       for source in spec.sources]
        self.builders = [SampleBuilder(b, config) for b in backgrounds]
        weights = np.array([source.weight for source in spec.sources], np.float64)
        self.probabilities = weights / weights.sum()
        self.group_share = spec.group_composites
        self.groups = GroupBuilder(self.sources, self.probabilities, backgrounds,
                                   composite or CompositeConfig(crop_size=crop), config)
        self.seed = seed
        self._warned: set[str] = set()

    def __len__(self) -> int:
        return 2**62  # endless: the sampler says which draws a run takes

    def __getitem__(self, n: int):
        from lpmatte.errors import LpmatteError

        last = ""
        for attempt in range(self.MAX_RETRIES):
            try:
                return self.draw(np.random.default_rng([self.seed, n, attempt]))
            except LpmatteError as error:
                last = str(error)
                self._warn(last)
        raise LpmatteError(f"{self.MAX_RETRIES} unreadable training samples in a row; "
                           f"last: {last}")

    def draw(self, rng: np.random.Generator):
        # no extra random number without composites: older runs' streams stay the same
        if self.group_share > 0 and rng.random() < self.group_share:
            return self.groups(rng)
        which = int(rng.choice(len(self.sources), p=self.probabilities))
        index = int(rng.integers(len(self.sources[which])))
        return self.builders[which](self.sources[which], index, rng)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            warnings.warn(f"skipping a training sample: {message}", stacklevel=2)


class FileList:
    """The ``files`` attribute :class:`lpmatte.data.augment.DatasetSource` reads selectively."""

    def __init__(self, files):
        self.files = list(files)

    def __len__(self) -> int:
        return len(self.files)


def draw_indices(start_step: int, steps: int, batch_size: int, rank: int = 0,
                 world_size: int = 1) -> range | list[int]:
    """The draws this process takes for steps ``start_step .. steps - 1``: step ``s`` of
    rank ``r`` takes draws ``(s * world + r) * batch + j``, j < batch (disjoint shards).

    >>> list(draw_indices(1, 3, 2, rank=1, world_size=2))
    [6, 7, 10, 11]
    """
    if world_size == 1:
        return range(start_step * batch_size, steps * batch_size)
    return [(s * world_size + rank) * batch_size + j
            for s in range(start_step, steps) for j in range(batch_size)]


def build_loader(draws: SampleDraws, indices, batch_size: int, num_workers: int = 0,
                 pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """Batches of :class:`lpmatte.data.augment.TrainingSample` in draw order."""
    from lpmatte.data.augment import collate

    return torch.utils.data.DataLoader(
        draws, batch_size=batch_size, sampler=indices, num_workers=num_workers,
        collate_fn=collate, worker_init_fn=worker_init if num_workers else None,
        pin_memory=pin_memory, drop_last=True, prefetch_factor=4 if num_workers else None)


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one OpenCV and torch thread per worker process, so
    that workers do not oversubscribe the cores the training step uses. Workers ignore
    SIGINT/SIGTERM sent to the whole process group (Ctrl-C, ``pkill``): the main process
    saves a checkpoint first, then shuts them down (and they exit if it dies)."""
    import signal

    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
