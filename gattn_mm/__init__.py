"""gattn-mm: gated-attention instance sampling (Fan et al., MICCAI 2020) for mmpretrain.

Importing the package registers its models, datasets, transforms, metrics and hooks
in mmpretrain's registries, installs the safe checkpoint loader and makes
``init_cfg=dict(type='Pretrained')`` log its counts and refuse a checkpoint that does
not fit (:mod:`gattn_mm.models.utils.pretrained_init`).
"""
from . import compat  # noqa: F401  (safe checkpoint loading)
from . import datasets, engine, evaluation, models, visualization  # noqa: F401
from .models.utils import pretrained_init  # noqa: F401,E402  (init_cfg Pretrained checked)

__version__ = '0.3.0'

from .apis import register_gattn_models  # noqa: E402

register_gattn_models()  # mmpretrain.apis.list_models('gattn*') / get_model(NAME)
