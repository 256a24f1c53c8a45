"""A gattn-mm 0.1 checkpoint (before the parts were split) is refused with the way
to upgrade it: loading is not strict in mmengine, so its reader and instance
classifier would otherwise be left at random silently."""
from typing import Dict

LEGACY_PREFIXES = ('local_backbone.', 'head.fc_local.')


def refuse_legacy_keys(state_dict: Dict, prefix: str, *args) -> None:
    """``load_state_dict`` pre-hook of ``GatedAttentionClassifier``."""
    legacy = [k for k in state_dict if k[len(prefix):].startswith(LEGACY_PREFIXES)]
    if legacy:
        raise ValueError(
            f'this checkpoint has gattn-mm 0.1 parameter names ({legacy[0]!r} and '
            f'{len(legacy) - 1} more), which 0.2 renamed; upgrade it once with '
            f'python tools/model_converters/upgrade_gattn_checkpoint.py OLD.pth NEW.pth')
