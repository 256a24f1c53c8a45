import os
import os.path as osp
from typing import Optional, Sequence

import cv2
import numpy as np
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop

from mmpretrain.registry import HOOKS
from gattn_mm.visualization.attention_visualizer import (attention_on_original, caption_of,
                                                         draw_attention, instance_fields)


@HOOKS.register_module()
class AttentionVisualizationHook(Hook):
    """Draw the attention of the first ``num_samples`` val/test samples.

    Every ``interval`` validation epochs (and at every test), the first samples of
    the first batches are drawn with :func:`draw_attention` (heat overlay, boxes with
    rank and score, caption, crop strip) and written to
    ``<work_dir>/<out_dir>/val_epoch_<e>/`` (``test/`` for a test) and to the
    visualiser's backends (``add_image``: local files, TensorBoard or W&B when
    configured), so the attention can be watched sharpening over epochs.

    Args:
        num_samples (int): samples drawn per evaluation. Defaults to 4.
        interval (int): draw every this many validations. Defaults to 1.
        out_dir (str): folder under the work dir. Defaults to ``attention``.
        topk (int, optional): boxes drawn per image (all by default).
    """
    priority = 'NORMAL'

    def __init__(self, num_samples: int = 4, interval: int = 1, out_dir: str = 'attention',
                 topk: Optional[int] = None):
        self.num_samples = num_samples
        self.interval = interval
        self.out_dir = out_dir
        self.topk = topk
        self._drawn = 0
        self._val_count = 0

    def before_val_epoch(self, runner) -> None:
        self._drawn = 0
        self._val_count += 1

    def before_test_epoch(self, runner) -> None:
        self._drawn = 0

    def after_val_iter(self, runner, batch_idx: int, data_batch=None,
                       outputs: Optional[Sequence] = None) -> None:
        if (self._val_count - 1) % self.interval == 0:
            self._draw(runner, data_batch, outputs, 'val')

    def after_test_iter(self, runner, batch_idx: int, data_batch=None,
                        outputs: Optional[Sequence] = None) -> None:
        self._draw(runner, data_batch, outputs, 'test')

    def _draw(self, runner, data_batch, outputs, mode: str) -> None:
        if self._drawn >= self.num_samples or not outputs or data_batch is None:
            return
        # ``runner.epoch`` would build the train loop (and its data set) in a run
        # without one (tools/test.py): read the epoch only from a loop that exists
        loop = getattr(runner, '_train_loop', None)
        epoch = loop.epoch if isinstance(loop, BaseLoop) else 0
        folder = osp.join(runner.work_dir, self.out_dir,
                          'test' if mode == 'test' else f'{mode}_epoch_{epoch}')
        os.makedirs(folder, exist_ok=True)
        classes = (runner.visualizer.dataset_meta or {}).get('classes') or \
            getattr(getattr(runner, f'{mode}_dataloader').dataset, 'metainfo', {}).get('classes')
        for inputs, sample in zip(data_batch['inputs'], outputs):
            if self._drawn >= self.num_samples:
                break
            if 'attention' not in sample:
                return  # not a gattn model: nothing to draw
            image = inputs.detach().cpu().numpy().transpose(1, 2, 0)  # BGR, as loaded
            image = np.ascontiguousarray(image.clip(0, 255).astype(np.uint8)[..., ::-1])
            boxes = sample.get('boxes')
            if sample.get('slide') is not None:  # a thumbnail; boxes in level-0 pixels
                (H, W), (h, w) = sample.slide.shape, image.shape[:2]
                boxes = boxes * boxes.new_tensor([w / W, h / H, w / W, h / H])
            attention = sample.attention.cpu().numpy()
            if sample.get('attention_extent') is not None:  # native: the image's share
                attention = attention_on_original(attention, sample)
            drawn = draw_attention(image, attention, boxes,
                                   sample.get('instance_scores'),
                                   caption_of(sample, classes), topk=self.topk,
                                   **instance_fields(sample, classes))
            name = f'{mode}_attention_{self._drawn}'
            cv2.imwrite(osp.join(folder, f'{name}.png'), drawn[..., ::-1])
            runner.visualizer.add_image(name, drawn, step=epoch)
            self._drawn += 1
