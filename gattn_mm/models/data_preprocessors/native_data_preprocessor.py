from typing import List, Optional, Sequence

import torch

from mmpretrain.models.utils import ClsDataPreprocessor
from mmpretrain.registry import MODELS
from ..utils import ImageSource, NativeBatch, SlideSource


@MODELS.register_module()
class NativeDataPreprocessor(ClsDataPreprocessor):
    """Images at their own sizes, no stacking and no canvas: the native path.

    Each image (3, H_i, W_i) of the batch becomes an ``ImageSource`` (kept as loaded,
    uint8, on the device; normalised region by region when the model reads it), and
    each sample whose metainfo holds a ``slide`` (``LoadMicroscopyImage(
    lazy_slides=True)``) a ``SlideSource`` read lazily from its pyramid. The model
    receives a ``NativeBatch``; ``GatedAttentionClassifier`` builds its glance from it
    and reads the crops of its boxes at native resolution. Labels are handled as by
    ``ClsDataPreprocessor`` (one-hot for multi-label, ``num_classes``).

    Args:
        mean (Sequence[float], optional): per-channel mean (RGB when ``to_rgb``).
        std (Sequence[float], optional): per-channel std.
        to_rgb (bool): the loaded images are BGR and are flipped to RGB (slides are
            read as RGB).
        num_classes (int, optional): for one-hot labels.
        to_onehot (bool): as in ``ClsDataPreprocessor``.
    """

    def __init__(self, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, to_rgb: bool = False,
                 num_classes: Optional[int] = None, to_onehot: bool = False,
                 batch_augments: Optional[dict] = None):
        if batch_augments:
            raise ValueError('NativeDataPreprocessor: batch augments (MixUp, CutMix) mix '
                             'images of one size; the native path keeps each image at its '
                             'own size. Remove model.train_cfg.augments, or use the canvas '
                             'path (ResizeToCanvas + ClsDataPreprocessor)')
        super().__init__(mean=mean, std=std, to_rgb=to_rgb, num_classes=num_classes,
                         to_onehot=to_onehot)

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs: List[torch.Tensor] = self.cast_data(data['inputs'])
        if isinstance(inputs, torch.Tensor):
            inputs = list(inputs)
        samples = data.get('data_samples')
        # labels as mmpretrain makes them (a 1-pixel stand-in batch carries them)
        out = super().forward(dict(inputs=torch.zeros(len(inputs), 3, 1, 1,
                                                      device=self.device),
                                   data_samples=samples), training)
        mean = self.mean.flatten().tolist() if self._enable_normalize else [0.] * 3
        std = self.std.flatten().tolist() if self._enable_normalize else [1.] * 3
        sources = []
        for i, image in enumerate(inputs):
            slide = samples[i].get('slide') if samples else None
            if slide is not None:
                sources.append(SlideSource(slide, mean, std, self.device))
            else:
                sources.append(ImageSource(image, mean, std, to_rgb=self.to_rgb,
                                           name=samples[i].get('img_path') if samples
                                           else None))
        return dict(inputs=NativeBatch(sources), data_samples=out['data_samples'])
