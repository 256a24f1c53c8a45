"""gattn-mm: gated-attention instance sampling (Fan et al., MICCAI 2020) for mmpretrain.

Importing the package registers its models, datasets, transforms, metrics and hooks
in mmpretrain's registries and installs the safe checkpoint loader.
"""
from . import compat  # noqa: F401  (safe checkpoint loading)
from . import datasets, engine, evaluation, models, visualization  # noqa: F401

__version__ = '0.3.0'

from .apis import register_gattn_models  # noqa: E402

register_gattn_models()  # mmpretrain.apis.list_models('gattn*') / get_model(NAME)
