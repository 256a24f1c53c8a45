import os.path as osp

_REGISTERED = False
MIM_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')


def register_gattn_models() -> bool:
    """Register gattn-mm's model index with mmpretrain's ``ModelHub`` (once).

    Afterwards ``mmpretrain.apis.list_models('gattn*')`` lists gattn-mm's models and
    ``get_model(NAME, pretrained=True)`` builds them with their released weights.

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

    # mmpretrain's own index (1.8 s of YAML) stays lazy: ModelHub.get and
    # list_models register it on first use, beside ours.
    ModelHub.register_model_index(index, config_prefix=MIM_DIR)
    _REGISTERED = True
    return True
