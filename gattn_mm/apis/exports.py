"""Predictions in the formats of the field: GeoJSON of the instances (QuPath imports
it), a TIFF heat map of the attention, a CSV of the images, and the provenance of the
model that made them.

Each file is written atomically, and only a file gattn-mm wrote is ever replaced: a
GeoJSON that starts with gattn-mm's ``generator``, a TIFF whose ``Software`` tag is
gattn-mm's, a CSV that starts with gattn-mm's header. Anything else of that name (a
user's file) is refused with ``FileExistsError``; the tools check before the work.
"""
import csv
import hashlib
import io
import json
import os
import os.path as osp
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from gattn_mm.runtime import AtomicLocalBackend

GENERATOR = 'gattn-mm'
GEOJSON_HEAD = '{"type": "FeatureCollection", "generator": "gattn-mm'
HEATMAP_SOFTWARE = 'gattn-mm attention heat map'
CSV_HEAD = ('path', 'width', 'height', 'prediction')
HEATMAP_SIDE = 2048  # the heat map's longest side is at most this (a pyramid level)
GEOJSON_SUFFIX, HEATMAP_SUFFIX = '.geojson', '.attention.tif'
BOX_FORMAT = dict(box_format='xyxy', box_units='level-0 pixels (original image pixels)')


def sha256_of(path: str) -> str:
    """The sha256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def provenance(config: str, checkpoint: Optional[str]) -> Dict[str, Optional[str]]:
    """``config`` (its path), ``checkpoint`` (its path or URL) and ``checkpoint_sha256``
    (of a local file; None for a URL or no checkpoint)."""
    local = checkpoint is not None and osp.isfile(checkpoint)
    return dict(config=osp.abspath(config) if osp.isfile(config) else config,
                checkpoint=osp.abspath(checkpoint) if local else checkpoint,
                checkpoint_sha256=sha256_of(checkpoint) if local else None)


def export_files(inputs: Sequence, folder: str, suffix: str) -> List[str]:
    """One file per input under ``folder``: a path's as
    :func:`~gattn_mm.apis.image_files.output_paths` names it (after its path relative to
    the folder of all the inputs), an array's after its index (``3<suffix>``)."""
    from .image_files import output_paths
    named = iter(output_paths([i for i in inputs if isinstance(i, str)], folder, suffix))
    return [next(named) if isinstance(i, str) else osp.join(folder, f'{n}{suffix}')
            for n, i in enumerate(inputs)]


def is_own_export(path: str) -> bool:
    """Whether ``path`` is a GeoJSON, heat map or CSV written by gattn-mm (by its
    first bytes, or the heat map's ``Software`` tag)."""
    try:
        if path.endswith(HEATMAP_SUFFIX):
            import tifffile
            with tifffile.TiffFile(path) as tif:
                return tif.pages[0].software == HEATMAP_SOFTWARE
        head = ','.join(CSV_HEAD) if path.endswith('.csv') else GEOJSON_HEAD
        with open(path, 'rb') as f:
            return f.read(len(head.encode())) == head.encode()
    except Exception:  # noqa: BLE001  (not readable as ours: not ours)
        return False


def foreign_exports(paths: Sequence[str]) -> List[str]:
    """Those of ``paths`` that exist and were not written by gattn-mm."""
    return [p for p in paths if osp.lexists(p) and (osp.islink(p) or not is_own_export(p))]


def _put(path: str, data: bytes) -> None:
    foreign = foreign_exports([path])
    if foreign:
        raise FileExistsError(f'{path} exists and was not written by gattn-mm: not '
                              f'overwritten (move it, or write into another folder)')
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    AtomicLocalBackend().put(data, path)


def _instance_class(result: dict, i: int, classes: Optional[Sequence[str]]):
    """The class instance ``i`` reads: its vote where there is one, else its most
    probable class; a name when the classes are known."""
    if 'instance_labels' in result:
        label = int(result['instance_labels'][i])
    elif 'instance_probs' in result:
        label = int(np.argmax(result['instance_probs'][i]))
    else:
        return None
    return classes[label] if classes and label < len(classes) else str(label)


def instances_geojson(image: str, result: dict,
                      classes: Optional[Sequence[str]] = None) -> dict:
    """A GeoJSON FeatureCollection of one prediction's instances: one Polygon Feature
    per box (xyxy in level-0 pixels, y down as QuPath has it; the closed ring is
    counter-clockwise in its numbers, as RFC 7946 asks), properties ``rank`` (1 = first chosen, the overlay's #), ``attention``
    (its mass), ``evidence``, ``class`` (what the reader found in it), ``deciding``,
    and QuPath's ``objectType``, ``name``, ``classification`` and ``measurements``.

    Args:
        image (str): the image's path (recorded).
        result (dict): a :class:`GattnInferencer` result (``boxes``, ``image_size``,
            ``instance_scores``, ...).
        classes (list[str], optional): class names.
    """
    boxes = np.asarray(result.get('boxes', np.zeros((0, 4))), np.float64).reshape(-1, 4)
    scores = result.get('instance_scores')
    evidence = result.get('instance_evidence')
    deciding = {int(i) for i in result.get('deciding_instances', ())}
    features = []
    for i, (x1, y1, x2, y2) in enumerate(np.round(boxes, 2).tolist()):
        props = dict(rank=i + 1,
                     attention=None if scores is None else round(float(scores[i]), 6),
                     evidence=None if evidence is None else round(float(evidence[i]), 4),
                     deciding=i in deciding)
        cls = _instance_class(result, i, classes)
        props['class'] = cls
        props.update(objectType='annotation', name=f'#{i + 1}',
                     measurements={k: props[k] for k in ('rank', 'attention', 'evidence')
                                   if props[k] is not None})
        if cls is not None:
            props['classification'] = dict(name=cls)
        features.append(dict(type='Feature', geometry=dict(
            type='Polygon', coordinates=[[[x1, y1], [x2, y1], [x2, y2], [x1, y2], [x1, y1]]]),
            properties=props))
    height, width = result['image_size']
    return dict(type='FeatureCollection', generator=f'{GENERATOR} instances', image=image,
                width=int(width), height=int(height), **BOX_FORMAT, features=features)


def write_geojson(path: str, collection: dict) -> None:
    """Write ``collection`` (:func:`instances_geojson`) atomically; a file of that name
    not written by gattn-mm is refused (``FileExistsError``)."""
    text = json.dumps(collection)
    if not text.startswith(GEOJSON_HEAD):
        raise ValueError('write_geojson writes what instances_geojson makes')
    _put(path, text.encode('utf-8'))


def heatmap_downsample(image_size: Sequence[int]) -> int:
    """The power of two that brings the longest side to at most ``HEATMAP_SIDE``."""
    d = 1
    while max(image_size) / d > HEATMAP_SIDE:
        d *= 2
    return d


def write_heatmap(path: str, result: dict) -> None:
    """Write the attention of one prediction as a float32 TIFF at a pyramid level: the
    image's size divided by :func:`heatmap_downsample` (a power of two), each pixel
    the attention (mass per glance cell, interpolated) there. The description holds
    the downsample and the level-0 size (JSON); the resolution tags the pixel size
    (level-0 µm per pixel x downsample) when ``result['pixel_size_um']`` has one.
    Written atomically; a file of that name not written by gattn-mm is refused
    (``FileExistsError``)."""
    import tifffile
    H, W = (int(v) for v in result['image_size'])
    d = heatmap_downsample((H, W))
    h, w = max(1, round(H / d)), max(1, round(W / d))
    attention = np.asarray(result['attention'], np.float32)
    heat = cv2.resize(attention, (w, h), interpolation=cv2.INTER_LINEAR)
    meta = dict(generator=HEATMAP_SOFTWARE, downsample=d, width=W, height=H,
                value='attention mass of the glance cell (interpolated)')
    options = {}
    mpp = result.get('pixel_size_um')
    if mpp is not None:  # pixels per cm at this level
        options = dict(resolution=(1e4 / (mpp[1] * d), 1e4 / (mpp[0] * d)),
                       resolutionunit='CENTIMETER')
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, heat, photometric='minisblack', software=HEATMAP_SOFTWARE,
                     description=json.dumps(meta), metadata=None, **options)
    _put(path, buffer.getvalue())


def csv_row(path: str, result: dict, classes: Optional[Sequence[str]] = None) -> dict:
    """One image's CSV row: ``path``, ``width``, ``height``, ``prediction`` (the class,
    or the classes of a multi-label model joined by ``;``) and ``score_<class>`` per
    class."""
    H, W = result['image_size']
    scores = np.asarray(result['pred_scores'], np.float64).reshape(-1)
    names = [classes[k] if classes and k < len(classes) else str(k)
             for k in range(len(scores))]
    labels = result['pred_labels'] if result.get('multi_label') else [result['pred_label']]
    row = dict(path=path, width=int(W), height=int(H),
               prediction=';'.join(names[int(v)] for v in labels))
    row.update({f'score_{n}': round(float(s), 6) for n, s in zip(names, scores)})
    return row


def write_csv(path: str, rows: Sequence[dict], model: Dict[str, Optional[str]]) -> None:
    """Write one row per image (:func:`csv_row`) and the model's provenance
    (:func:`provenance`) in the last columns, atomically; a file of that name not
    written by gattn-mm is refused (``FileExistsError``)."""
    fields = list(CSV_HEAD)
    for row in rows:
        fields += [k for k in row if k not in fields]
    fields += list(model)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator='\n')
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, **model})
    _put(path, text.getvalue().encode('utf-8'))


def check_export_paths(paths: Sequence[str], option: str) -> None:
    """Raise ``SystemExit`` naming ``option`` when one of ``paths`` exists and was not
    written by gattn-mm (checked before the work)."""
    from .outputs import refuse_overwriting
    refuse_overwriting(foreign_exports(paths), option, 'was not written by gattn-mm',
                       'to another folder')


def check_export_dir(folder: str, option: str) -> None:
    """Create ``folder`` (an export folder) or raise ``SystemExit`` naming ``option``
    when it cannot hold new files."""
    from .outputs import writable_file_problem
    if osp.lexists(folder) and not osp.isdir(folder):
        raise SystemExit(f'error: {option} {folder}: exists and is not a folder')
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise SystemExit(f'error: {option} {folder}: cannot create it '
                         f'({err.strerror or err})') from None
    problem = writable_file_problem(osp.join(folder, '.gattn_probe'))
    if problem:
        raise SystemExit(f'error: {option} {folder}: {problem}')
