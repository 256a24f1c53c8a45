"""The memory a gattn model's instances take, checked from the built model (its
config) before any data is read: the crops of one image, as the reader gets them."""
from typing import Optional


class InstanceBudgetError(ValueError):
    """The instances of one image would take more memory than the budget; the message
    names the config key."""


def check_instance_budget(model, max_pixels: Optional[int] = None) -> None:
    """Refuse a model whose instances of one image would not fit the image budget.

    The reader of a gattn model gets N x V crops of (crop h, crop w) per image (N
    instances, V test views), as float32 RGB: N x V x 3 x h x w x 4 bytes, allocated
    at once (and its activations, several times more). That is refused above the
    decoded-image budget, ``BYTES_PER_PIXEL x max_pixels`` bytes (the most one image
    read may decode), so that a config (``--cfg-options
    model.sampler.test_cfg.num_instances=100000``) cannot ask for tens of GB halfway
    through a run. A model without a sampler (a plain baseline) passes.

    Raises:
        InstanceBudgetError: naming the key (``model.sampler.num_instances`` or
            ``model.sampler.test_cfg.num_instances``), the crops' size and the budget.
    """
    from gattn_mm.datasets.transforms.image_reading import BYTES_PER_PIXEL, DEFAULT_MAX_PIXELS
    model = getattr(model, 'module', model)  # DDP, a TTA wrapper
    sampler = getattr(model, 'sampler', None)
    if sampler is None or not hasattr(sampler, 'crop_size'):
        return
    max_pixels = int(max_pixels or DEFAULT_MAX_PIXELS)
    budget = BYTES_PER_PIXEL * max_pixels
    ch, cw = (int(v) for v in sampler.crop_size)
    for key, n, views in (
            ('model.sampler.num_instances', sampler.train_num_instances, 1),
            ('model.sampler.test_cfg.num_instances', sampler.test_num_instances,
             len(getattr(sampler, 'test_views', [(0, 0)])))):
        size = int(n) * views * 3 * ch * cw * 4
        if size > budget:
            most = max(1, budget // (views * 3 * ch * cw * 4))
            raise InstanceBudgetError(
                f'{key}={n}: {n} instances x {views} view(s) x {cw} x {ch} px crops = '
                f'{size:,} bytes for the reader per image (float32 RGB), over the budget of '
                f'{budget:,} bytes ({BYTES_PER_PIXEL} bytes per pixel of the '
                f'{max_pixels:,}-pixel image budget); give at most {most:,} instances, '
                f'or smaller crops (model.sampler.crop_size)')
