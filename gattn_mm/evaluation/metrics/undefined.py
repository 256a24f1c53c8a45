"""A score that the data do not define (e.g. ROC AUC when the targets hold one class)
is reported with a warning that names it and says why, not as a silent NaN."""
import logging
from typing import Optional, Sequence

from mmengine.logging import print_log


def metric_key(prefix: Optional[str], name: str) -> str:
    """The key a metric's ``name`` is reported under, e.g. ``patient/auc``."""
    return f'{prefix}/{name}' if prefix else name


def class_name(label: int, classes: Optional[Sequence[str]]) -> str:
    """``1 ('malignant')`` when the class names are known, else ``1``."""
    return f'{label} ({classes[label]!r})' if classes and label < len(classes) else str(label)


def warn_undefined(key: str, why: str, value: float) -> None:
    """Log at WARNING that ``key`` is undefined on these data because ``why``, and
    that it is reported as ``value``."""
    print_log(f'{key} is undefined on these data: {why}; reported as {value}',
              logger='current', level=logging.WARNING)
