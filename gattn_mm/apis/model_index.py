"""gattn-mm's published models in mmpretrain's ``ModelHub``, their weights read safely.

mmpretrain's ``get_model(NAME, pretrained=True)`` loads ``ModelHub``'s ``weights`` of
NAME with mmengine's ``load_checkpoint``, outside any gattn-mm runtime. The release
URLs of the model index are therefore registered as ``gattn-safe:URL``
(:mod:`gattn_mm.runtime.loaders`): read without unpickling code, hash-checked, and
resolved offline to the checkpoint that travels with the package when it is there.
``release_url(NAME)`` gives the plain URL (what ``mim download`` and
``tools/download.py`` fetch).

The one caveat: this covers the published names. A checkpoint given to mmpretrain's own
API by a plain ``http(s)://`` URL (``get_model(CONFIG, pretrained=URL)``) is read by
mmengine's own loader, which unpickles it fully; give it as ``gattn-safe:URL`` or load
inside :func:`gattn_mm.runtime.safe_checkpoints` (as gattn-mm's tools and
``GattnInferencer`` do).
"""
import os.path as osp

_REGISTERED = False
MIM_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')


def register_gattn_models() -> bool:
    """Register gattn-mm's model index with mmpretrain's ``ModelHub`` (once).

    Afterwards ``mmpretrain.apis.list_models('gattn*')`` lists gattn-mm's models and
    ``get_model(NAME, pretrained=True)`` builds them with their released weights, read
    through the ``gattn-safe:`` scheme (this module's docstring).

    Returns:
        bool: False when the package carries no model index (e.g. a partial copy).
    """
    global _REGISTERED
    if _REGISTERED:
        return True
    index = osp.join(MIM_DIR, 'model-index.yml')
    if not osp.isfile(index):
        return False
    from mmpretrain.apis import ModelHub

    from gattn_mm.runtime import GATTN_SCHEME

    # mmpretrain's own index (1.8 s of YAML) stays lazy: ModelHub.get and
    # list_models register it on first use, beside ours.
    before = set(ModelHub._models_dict)
    ModelHub.register_model_index(index, config_prefix=MIM_DIR)
    for name in set(ModelHub._models_dict) - before:  # ours: their weights read safely
        meta = ModelHub._models_dict[name]
        if meta.weights and not meta.weights.startswith(GATTN_SCHEME):
            meta.weights = GATTN_SCHEME + meta.weights
    _REGISTERED = True
    return True


def release_url(name: str) -> str:
    """The release URL of published model ``name``'s weights (without ``gattn-safe:``).

    Raises:
        ValueError: for a name ``ModelHub`` does not know.
    """
    from mmpretrain.apis import ModelHub

    from gattn_mm.runtime import GATTN_SCHEME
    weights = ModelHub.get(name).weights
    return weights[len(GATTN_SCHEME):] if weights.startswith(GATTN_SCHEME) else weights
