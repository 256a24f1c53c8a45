"""Checkpoint contents in plain types, and atomic safe writes: the one place the
hook, ``tools/publish_model.py`` and the model converters get them from."""
import io
from typing import Any, List, Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

PLAIN = (str, int, float, bool, type(None))
BUFFER_TAG = '__history_buffer__'
_DROP = object()  # a value that cannot be expressed in plain types


def to_plain(value: Any, path: str = '', dropped: Optional[List[str]] = None) -> Any:
    """``value`` in types ``torch.load(weights_only=True)`` accepts.

    Tensors stay, numpy values and containers become Python types, mmengine's
    ``HistoryBuffer`` becomes a tagged dict (:func:`from_plain` restores it), objects
    with a ``__dict__`` (e.g. ``argparse.Namespace``) become dicts. Anything else is
    dropped and its key path (from ``path``) appended to ``dropped``.
    """
    dropped = [] if dropped is None else dropped
    if isinstance(value, (np.ndarray, np.generic)):  # before PLAIN: np.float64 is a float
        return to_plain(value.tolist(), path, dropped)
    if isinstance(value, PLAIN):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, HistoryBuffer):
        log, count = value.data
        return {BUFFER_TAG: True, 'log_history': np.asarray(log, float).tolist(),
                'count_history': np.asarray(count, float).tolist(),
                'max_length': int(value.max_length)}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, PLAIN):
                dropped.append(f'{path}[{key!r}]')
                continue
            converted = to_plain(item, f'{path}.{key}', dropped)
            if converted is not _DROP:
                out[key] = converted
        return out
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f'{path}[{i}]', dropped) for i, v in enumerate(value)]
        kept = [v for v in items if v is not _DROP]
        return tuple(kept) if isinstance(value, tuple) else kept
    if hasattr(value, '__dict__') and not callable(value):
        return to_plain(dict(vars(value)), path, dropped)
    dropped.append(f'{path} ({type(value).__module__}.{type(value).__qualname__})')
    return _DROP


def from_plain(value: Any) -> Any:
    """Inverse of :func:`to_plain` for history buffers."""
    if isinstance(value, dict):
        if value.get(BUFFER_TAG):
            return HistoryBuffer(value['log_history'], value['count_history'],
                                 value['max_length'])
        return {k: from_plain(v) for k, v in value.items()}
    return value


def safe_bytes(checkpoint: Any) -> bytes:
    """The bytes of ``torch.save(checkpoint)``, checked to load with
    ``weights_only=True`` (what gattn-mm writes must load safely)."""
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    buffer.seek(0)
    torch.load(buffer, weights_only=True)
    return buffer.getvalue()


def save_safe_atomic(checkpoint: Any, path: str) -> bytes:
    """Write ``checkpoint`` to ``path`` in one atomic step (no half-written file)
    after checking it loads safely; returns the bytes written."""
    from gattn_mm.runtime import AtomicLocalBackend
    data = safe_bytes(checkpoint)
    AtomicLocalBackend().put(data, path)
    return data
