"""Reading one checkpoint without running its code.

``torch.load`` unpickles: a checkpoint can hold objects whose unpickling runs code.
:func:`safe_torch_load` always passes ``weights_only=True`` (PyTorch's allowlist of
tensors and plain types) and turns a refusal, or any failure to read the file, into an
error that names it; a ``state_dict`` in it must map names to tensors. There is no
fallback to full unpickling. The one explicit opt-in for a trusted legacy file is
converting it once with ``tools/model_converters/convert_legacy_checkpoint.py IN OUT
--trust-pickle``. Runner checkpoints stay loadable because ``SafeCheckpointHook``
stores the message hub in plain types (``gattn_mm/engine/hooks``).

Every other part of :mod:`gattn_mm.runtime` that reads a checkpoint reads it here.
"""
import os
import pickle
from typing import IO, Any, Union

import torch


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds objects outside PyTorch's ``weights_only`` allowlist."""


class CheckpointReadError(IOError):
    """A checkpoint file is empty, truncated or not a PyTorch checkpoint."""


def safe_torch_load(filename: Union[str, IO[bytes]], map_location: Any = None,
                    source: str = None, mmap: bool = False) -> Any:
    """``torch.load(filename, weights_only=True)`` with an error naming the file (or
    ``source``, e.g. the URL it was downloaded from, or what a file object holds);
    a ``state_dict`` in it must map names to tensors (:func:`check_state_dict`)."""
    named = isinstance(filename, (str, os.PathLike))
    where = filename if source is None else f'{source} (cached as {filename})' if named \
        else source
    try:
        checkpoint = torch.load(filename, map_location=map_location, weights_only=True,
                                mmap=mmap)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()
        reason = next((line for line in reason if 'global' in line.lower()), reason[0]
                      if reason else 'unknown reason')
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {where!r}: it holds objects that '
            f'torch.load(weights_only=True) does not allow ({reason.strip()}). '
            f'gattn-mm never falls back to full unpickling, which can run arbitrary '
            f'code. If the file comes from a source you trust (e.g. an older toolkit), '
            f'convert it once with the explicit opt-in: python tools/model_converters/'
            f'convert_legacy_checkpoint.py {filename if named else "FILE"} OUT.pth '
            f'--trust-pickle') from None
    except MemoryError:
        raise
    except Exception as err:  # noqa: BLE001  (a damaged zip or pickle raises many types)
        raise CheckpointReadError(
            f'cannot read checkpoint {where!r}: it is empty, truncated or not a PyTorch '
            f'checkpoint ({type(err).__name__}: {str(err)[:200]})') from None
    check_state_dict(checkpoint, where)
    return checkpoint


def check_state_dict(checkpoint: Any, where: str) -> None:
    """The ``state_dict`` of a checkpoint dict, when it has one, maps str to tensors."""
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        return
    state = checkpoint['state_dict']
    bad = [f'{k!r}: {type(v).__name__}' for k, v in state.items()
           if not isinstance(k, str) or not isinstance(v, torch.Tensor)] \
        if isinstance(state, dict) else [f'a {type(state).__name__}']
    if bad:
        raise CheckpointReadError(
            f'cannot read checkpoint {where!r}: its state_dict should map parameter names '
            f'(str) to tensors, got {", ".join(bad[:3])}{" ..." if len(bad) > 3 else ""}')
