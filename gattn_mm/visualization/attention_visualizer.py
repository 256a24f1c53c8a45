from typing import Optional, Sequence

import cv2
import numpy as np
import torch


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def heat_overlay(image: np.ndarray, attention: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the attention map (h, w), brought to the image size, as a heat map.

    Args:
        image: (H, W, 3) uint8 RGB.
        attention: (h, w) non-negative.

    Returns:
        (H, W, 3) uint8 RGB; red where the attention is high.
    """
    H, W = image.shape[:2]
    att = cv2.resize(attention.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
    att = (att - att.min()) / max(float(att.max() - att.min()), 1e-12)
    heat = cv2.applyColorMap((att * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    return (image.astype(np.float32) * (1 - alpha * att[..., None]) +
            heat.astype(np.float32) * alpha * att[..., None]).clip(0, 255).astype(np.uint8)


def crop_strip(image: np.ndarray, boxes: np.ndarray, size: int = 64) -> np.ndarray:
    """The N boxes cut from ``image`` and resized to ``size``, side by side."""
    H, W = image.shape[:2]
    tiles = []
    for x1, y1, x2, y2 in boxes:
        x1, y1 = int(np.clip(np.floor(x1), 0, W - 1)), int(np.clip(np.floor(y1), 0, H - 1))
        x2, y2 = int(np.clip(np.ceil(x2), x1 + 1, W)), int(np.clip(np.ceil(y2), y1 + 1, H))
        tile = cv2.resize(image[y1:y2, x1:x2], (size, size), interpolation=cv2.INTER_AREA)
        tiles.append(cv2.copyMakeBorder(tile, 2, 2, 2, 2, cv2.BORDER_CONSTANT,
                                        value=(255, 255, 255)))
    return np.concatenate(tiles, axis=1) if tiles else np.zeros((size + 4, 1, 3), np.uint8)


def draw_attention(image: np.ndarray, attention, boxes=None, scores=None,
                   caption: str = '', show_crops: bool = True, topk: Optional[int] = None,
                   crop_size: int = 64, evidence=None,
                   crops: Optional[Sequence[np.ndarray]] = None,
                   deciding=None, instance_names: Optional[Sequence[str]] = None
                   ) -> np.ndarray:
    """The standard gattn-mm picture of one prediction.

    The image with the attention heat overlay, the boxes with their rank and
    attention mass (and evidence, and the class each instance reads, when given), a
    caption bar, and (``show_crops``) a strip of the crops below. The instances that
    decided the label (``deciding``) are drawn in red.

    Args:
        image: (H, W, 3) uint8 RGB, in the coordinates of ``boxes``.
        attention: (h, w) attention map.
        boxes: (N, 4) xyxy; ``scores``: (N,) attention masses; ``evidence``: (N,)
            the instance head's evidence of each instance; ``deciding``: (M,)
            indices of the deciding instances; ``instance_names``: N strings, the
            class each instance reads. ``topk`` keeps the first boxes only.
    """
    canvas = heat_overlay(image, _np(attention))
    boxes = np.zeros((0, 4)) if boxes is None else _np(boxes).reshape(-1, 4)
    scores = np.zeros(len(boxes)) if scores is None else _np(scores).reshape(-1)
    decided = set() if deciding is None else {int(i) for i in _np(deciding).reshape(-1)}
    if topk is not None:
        boxes, scores = boxes[:topk], scores[:topk]
    thick = max(1, round(max(image.shape[:2]) / 400))
    font = max(0.35, max(image.shape[:2]) / 1200)
    for i, (box, score) in enumerate(zip(boxes, scores)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        label = f'#{i + 1} {score:.2f}'
        if instance_names is not None:
            label += f' {instance_names[i]}'
        if evidence is not None:
            label += f' e{float(_np(evidence).reshape(-1)[i]):+.1f}'
        red = i in decided
        cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), (255, 0, 0) if red else (0, 255, 0),
                      thick * (2 if red else 1))
        cv2.putText(canvas, label, (x1 + 2, max(y1 + int(14 * font * 2), 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, font, (255, 255, 0), max(1, thick // 2),
                    cv2.LINE_AA)
    W = canvas.shape[1]
    bar_h = int(30 * max(font, 0.5) * 2)
    bar = np.full((bar_h, W, 3), 255, np.uint8)
    cv2.putText(bar, caption, (5, int(bar_h * 0.7)), cv2.FONT_HERSHEY_SIMPLEX,
                max(font, 0.5), (0, 0, 0), 1, cv2.LINE_AA)
    parts = [canvas, bar]
    if show_crops and len(boxes):
        if crops is None:
            strip = crop_strip(image, boxes, crop_size)
        else:
            strip = np.concatenate([cv2.copyMakeBorder(
                cv2.resize(c, (crop_size, crop_size), interpolation=cv2.INTER_AREA),
                2, 2, 2, 2, cv2.BORDER_CONSTANT, value=(255, 255, 255))
                for c in list(crops)[:len(boxes)]], axis=1)
        if strip.shape[1] > W:
            scale = W / strip.shape[1]
            strip = cv2.resize(strip, (W, max(1, int(strip.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
        pad = np.full((strip.shape[0], W - strip.shape[1], 3), 255, np.uint8)
        parts.append(np.concatenate([strip, pad], axis=1))
    return np.concatenate(parts, axis=0)


def instance_fields(sample, classes: Optional[Sequence[str]] = None) -> dict:
    """The :func:`draw_attention` arguments of what a prediction's instances say:
    ``evidence``, ``deciding`` and, where each instance votes for a class (no
    "absent" class), ``instance_names``."""
    labels = sample.get('instance_labels')
    names = None if labels is None else [
        classes[v] if classes and v < len(classes) else str(v)
        for v in (int(x) for x in _np(labels).reshape(-1))]
    return dict(evidence=sample.get('instance_evidence'),
                deciding=sample.get('deciding_instances'), instance_names=names)


def caption_of(sample, classes: Optional[Sequence[str]] = None) -> str:
    """``pred: NAME (score)``; every predicted class of a multi-label sample."""
    labels = [int(v) for v in _np(sample.pred_label).reshape(-1)]
    scores = _np(sample.pred_score).reshape(-1)
    names = [classes[v] if classes and v < len(classes) else str(v) for v in labels]
    return 'pred: ' + (', '.join(f'{n} ({float(scores[v]):.2f})'
                                 for n, v in zip(names, labels)) or 'none')


def attention_on_original(attention: np.ndarray, sample) -> np.ndarray:
    """The attention map (h, w) of a prediction (a ``DataSample``), cut to the image's
    region: ``ResizeToCanvas`` scales the image by ``scale_factor`` and pads
    right/bottom; the native path fits the image into the glance (its metainfo
    ``attention_extent``). The returned map covers only the image (any size; resize
    it for display)."""
    attention = np.asarray(attention, np.float32)
    extent = sample.get('attention_extent')  # native path: the image's share of the map
    if extent is not None:
        h, w = attention.shape
        up = cv2.resize(attention, (w * 16, h * 16), interpolation=cv2.INTER_LINEAR)
        return up[:max(1, round(h * 16 * extent[0])), :max(1, round(w * 16 * extent[1]))]
    canvas = sample.get('img_shape')
    scale = sample.get('scale_factor')
    ori = sample.get('ori_shape')
    if canvas is None or scale is None or ori is None:
        return attention
    H, W = canvas[:2]
    up = cv2.resize(attention, (W, H), interpolation=cv2.INTER_LINEAR)
    valid_h = min(H, max(1, int(round(ori[0] * scale[1]))))
    valid_w = min(W, max(1, int(round(ori[1] * scale[0]))))
    return up[:valid_h, :valid_w]
