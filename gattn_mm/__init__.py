"""gattn-mm: gated-attention instance sampling (Fan et al., MICCAI 2020) for mmpretrain.

Importing the package registers its parts and nothing else: models, datasets,
transforms, metrics, hooks and the published models' index in mmpretrain's registries,
and under new names the checkpoint runtime's parts (``GattnCheckpointHook``, the
``'atomic_local'`` file backend, the ``gattn-safe:`` checkpoint scheme). No function or
registry entry of mmengine or mmpretrain is replaced. Checkpoint safety for the tools
is the explicit runtime :func:`gattn_mm.runtime.safe_checkpoints`.
"""
from . import datasets, engine, evaluation, models, runtime, visualization  # noqa: F401

__version__ = '0.3.0'

from .apis import register_gattn_models  # noqa: E402

register_gattn_models()  # mmpretrain.apis.list_models('gattn*') / get_model(NAME)
