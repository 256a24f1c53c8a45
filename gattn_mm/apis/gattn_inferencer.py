import os
from pathlib import Path
from typing import List, Optional

import cv2
import numpy as np
import torch
from mmengine.dataset import Compose, pseudo_collate

from mmpretrain.apis import ImageClassificationInferencer
from mmpretrain.structures import DataSample
from gattn_mm.datasets.base_microscopy import AnnotationError, check_classes
from gattn_mm.datasets.transforms.loading import (DEFAULT_MAX_PIXELS, LoadMicroscopyImage,
                                                  read_image, to_rgb_uint8)
from gattn_mm.models.classifiers.part_checks import MULTI_LABEL
from gattn_mm.apis.exports import (GEOJSON_SUFFIX, HEATMAP_SUFFIX, export_files,
                                   instances_geojson, write_geojson, write_heatmap)
from gattn_mm.apis.image_files import expand_image_paths
from gattn_mm.apis.outputs import foreign_files, mark_drawing
from gattn_mm.models import CheckpointMismatchError
from gattn_mm.models.utils import SlideSource
from gattn_mm.runtime import AtomicLocalBackend, safe_checkpoints
from gattn_mm.utils.instance_budget import check_instance_budget
from gattn_mm.visualization.attention_visualizer import (attention_on_original, caption_of,
                                                         draw_attention, instance_fields)


class GattnInferencer(ImageClassificationInferencer):
    """mmpretrain's ``ImageClassificationInferencer`` for gattn models.

    Images are read with gattn-mm's microscopy reader (8/16-bit PNG/TIFF, gray,
    RGBA) and each result also carries ``attention`` (h, w) over the image,
    ``boxes`` (N, 4, xyxy in original image pixels), ``instance_scores`` (N,) and
    the top-k classes, ``image_size`` (H, W) and, for a slide with one,
    ``pixel_size_um`` (y, x). ``visualize`` draws the attention overlay; with
    ``geojson_dir`` / ``heatmap_dir`` the instances are written as GeoJSON and the
    attention as a TIFF heat map per input (:meth:`export`). The model is built
    and its checkpoint loaded inside gattn-mm's runtime
    (:func:`gattn_mm.runtime.safe_checkpoints`): read without unpickling code, and
    refused unless it holds exactly this model's weights, whatever the model's class.

    Example:
        >>> from gattn_mm.apis import GattnInferencer
        >>> inferencer = GattnInferencer('configs/gattn_digitbags.py', pretrained=ckpt)
        >>> result = inferencer('bag.png')[0]
        >>> result['pred_class'], result['boxes']
    """
    visualize_kwargs = {'show', 'wait_time', 'show_dir', 'max_boxes', 'geojson_dir',
                        'heatmap_dir'}

    def __init__(self, *args, topk: int = 3, max_pixels: Optional[int] = None, **kwargs):
        with safe_checkpoints():  # read safely; a checkpoint of another model is refused
            super().__init__(*args, **kwargs)
        self.topk = topk
        if max_pixels is not None:  # also the pipeline's budget (e.g. of slides)
            for transform in self.loaders():
                transform.max_pixels = int(max_pixels)
        self.max_pixels = max_pixels or self.pipeline_max_pixels()
        self._check_classes('the classes argument' if kwargs.get('classes') is not None
                            else "its meta's dataset_meta.classes")
        self.multi_label = isinstance(getattr(self.model, 'head', None), MULTI_LABEL)
        check_instance_budget(self.model, self.max_pixels)  # before any image is read

    def _check_classes(self, owner: str) -> None:
        """Refuse class names (``owner``: the checkpoint's meta, or the argument) that
        cannot label this model's outputs: not a list of unique, non-empty strings (a
        string ``'ab'``, a dict, a name twice), or not one per class."""
        if self.classes is None or (isinstance(self.classes, (list, tuple)) and
                                    not self.classes):
            self.classes = None
            return
        try:
            self.classes = check_classes(self.classes, owner)
        except AnnotationError as err:
            raise CheckpointMismatchError(str(err)) from None
        num_classes = getattr(self.model.data_preprocessor, 'num_classes', None)
        if num_classes is not None and len(self.classes) != num_classes:
            raise CheckpointMismatchError(
                f'{owner} names the classes {list(self.classes)[:10]!r}, but the model has '
                f'{num_classes} classes: expected {num_classes} class names')

    def loaders(self) -> List[LoadMicroscopyImage]:
        """The pipeline's ``LoadMicroscopyImage`` transforms."""
        return [t for t in self.pipeline.transforms if isinstance(t, LoadMicroscopyImage)]

    def pipeline_max_pixels(self) -> int:
        """The pixel budget of the pipeline's ``LoadMicroscopyImage`` (the config's),
        else the reader's default."""
        loaders = self.loaders()
        return loaders[0].max_pixels if loaders else DEFAULT_MAX_PIXELS

    @property
    def slide_loader(self) -> Optional[LoadMicroscopyImage]:
        """The pipeline's ``LoadMicroscopyImage`` when it reads slides lazily (a
        native-resolution config), else None: slides are then refused as too large."""
        return next((t for t in self.loaders() if t.lazy_slides), None)

    def is_slide(self, path: str) -> bool:
        """Whether the pipeline reads ``path`` lazily as a slide."""
        loader = self.slide_loader
        return loader is not None and loader.is_slide(path)

    def _inputs_to_list(self, inputs) -> list:
        """Inputs as a list: a ``pathlib.Path`` (or any ``os.PathLike``) read as its
        path, a folder expanded to its images as the tools expand it
        (:func:`~gattn_mm.apis.expand_image_paths`: every format the readers take,
        recursively; a folder without an image is refused); arrays as they are."""
        def path_of(x):
            return os.fspath(x) if isinstance(x, os.PathLike) else x
        items = [path_of(x) for x in inputs] if isinstance(inputs, (list, tuple)) \
            else [path_of(inputs)]
        out = []
        for item in items:
            out += expand_image_paths([item]) if isinstance(item, str) and \
                os.path.isdir(item) else [item]
        return out

    def preprocess(self, inputs: List, batch_size: int = 1):

        def load_image(input_):
            if isinstance(input_, str) and self.is_slide(input_):
                return dict(img_path=input_)  # the pipeline opens it lazily
            if isinstance(input_, str):
                img = np.ascontiguousarray(read_image(input_, self.max_pixels)[..., ::-1])
            else:
                img = to_rgb_uint8(np.asarray(input_))
            return dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])

        pipeline = Compose([load_image, self.pipeline])
        chunked = self._get_chunk_data(map(pipeline, inputs), batch_size)
        yield from map(pseudo_collate, chunked)  # images may differ in size (native path)

    def visualize(self, ori_inputs: List, preds: List[DataSample], show: bool = False,
                  wait_time: int = 0, show_dir: Optional[str] = None,
                  max_boxes: Optional[int] = None, geojson_dir: Optional[str] = None,
                  heatmap_dir: Optional[str] = None) -> Optional[List[np.ndarray]]:
        """Draw the overlays (see :meth:`draw`) into ``show_dir``: ``<stem>.png`` per
        input, ``<name>.png`` (the whole file name) where two inputs share a stem;
        each written atomically, a failed write an ``OSError`` naming the file.
        ``geojson_dir`` / ``heatmap_dir``: :meth:`export` into them."""
        if geojson_dir is not None or heatmap_dir is not None:
            self.export(ori_inputs, self.postprocess(preds, None), geojson_dir, heatmap_dir)
        if not show and show_dir is None:
            return None
        stems = [Path(i).stem if isinstance(i, str) else str(n)
                 for n, i in enumerate(ori_inputs)]
        drawings = []
        for input_, stem, sample in zip(ori_inputs, stems, preds):
            if isinstance(input_, str):
                image = read_image(input_, self.max_pixels)
                name = Path(input_).name if stems.count(stem) > 1 else stem
            else:
                image, name = to_rgb_uint8(np.asarray(input_))[..., ::-1], stem
            drawn = self.draw(image, sample, max_boxes)
            if show_dir is not None:
                write_png(str(Path(show_dir) / f'{name}.png'), drawn)
            drawings.append(drawn)
        return drawings

    def export(self, inputs: List, results: List[dict], geojson_dir: Optional[str] = None,
               heatmap_dir: Optional[str] = None) -> List[dict]:
        """Write each input's instances as GeoJSON (``<geojson_dir>/<name>.geojson``,
        :func:`~gattn_mm.apis.exports.instances_geojson`: one FeatureCollection, one
        Polygon per instance in level-0 pixels) and its attention as a TIFF heat map
        (``<heatmap_dir>/<name>.attention.tif``,
        :func:`~gattn_mm.apis.exports.write_heatmap`); ``<name>`` as
        :func:`~gattn_mm.apis.exports.export_files` names it. A file of that name that
        gattn-mm did not write is refused (``FileExistsError``).

        Returns:
            list[dict]: per input, the files written (``geojson``, ``heatmap``).
        """
        geojson = export_files(inputs, geojson_dir, GEOJSON_SUFFIX) if geojson_dir \
            else [None] * len(inputs)
        heatmap = export_files(inputs, heatmap_dir, HEATMAP_SUFFIX) if heatmap_dir \
            else [None] * len(inputs)
        written = []
        for n, (input_, result) in enumerate(zip(inputs, results)):
            files = {}
            if geojson[n]:
                files['geojson'] = geojson[n]
                write_geojson(geojson[n], instances_geojson(
                    input_ if isinstance(input_, str) else str(n), result, self.classes))
            if heatmap[n]:
                files['heatmap'] = heatmap[n]
                write_heatmap(heatmap[n], result)
            written.append(files)
        return written

    def draw(self, image_rgb: np.ndarray, sample: DataSample,
             max_boxes: Optional[int] = None) -> np.ndarray:
        """The attention overlay of one prediction on its original (RGB) image."""
        boxes = sample.get('ori_boxes', sample.get('boxes'))
        return draw_attention(image_rgb, attention_on_original(
            sample.attention.cpu().numpy(), sample), boxes, sample.get('instance_scores'),
            caption_of(sample, self.classes), topk=max_boxes,
            **instance_fields(sample, self.classes))

    def draw_slide(self, path: str, sample: DataSample,
                   max_boxes: Optional[int] = None, crop_size: int = 64) -> np.ndarray:
        """The overlay of a slide's prediction, drawn on its thumbnail (boxes scaled
        from level-0 pixels), with the strip of crops read at native resolution (each
        from the coarsest pyramid level that holds ``crop_size`` px of its box)."""
        results = self.slide_loader.load_slide(dict(img_path=path))
        thumb, slide = results['img'], results['slide']
        if self.slide_loader.channel_order == 'bgr':
            thumb = np.ascontiguousarray(thumb[..., ::-1])
        (H, W), (h, w) = slide.shape, thumb.shape[:2]
        boxes = sample.ori_boxes.detach().cpu().numpy()
        # the model's own reader of native pixels, unnormalised (RGB 0-255)
        crops = SlideSource(slide, mean=[0.] * 3, std=[1.] * 3).crop(
            torch.as_tensor(boxes), (crop_size, crop_size))
        crops = crops.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
        slide.close()
        return draw_attention(thumb, attention_on_original(sample.attention.cpu().numpy(),
                                                           sample),
                              boxes * np.array([w / W, h / H, w / W, h / H]),
                              sample.get('instance_scores'), caption_of(sample, self.classes),
                              topk=max_boxes, crop_size=crop_size, crops=crops,
                              **instance_fields(sample, self.classes))

    def postprocess(self, preds: List[DataSample], visualization,
                    return_datasamples: bool = False):
        if return_datasamples:
            return preds
        results = super().postprocess(preds, visualization)
        for result, sample in zip(results, preds):
            scores = sample.pred_score.detach().cpu()
            k = min(self.topk, scores.numel())
            top = torch.topk(scores, k)
            result['topk'] = [
                dict(label=int(l), score=float(s),
                     **({'class': self.classes[int(l)]} if self.classes else {}))
                for s, l in zip(top.values, top.indices)]
            if 'attention' in sample:
                result['attention'] = attention_on_original(
                    sample.attention.cpu().numpy(), sample)
                boxes = sample.get('ori_boxes', sample.get('boxes'))
                result['boxes'] = boxes.detach().cpu().numpy()
                result['instance_scores'] = sample.instance_scores.detach().cpu().numpy()
            result.update(instance_results(sample))
            if sample.get('ori_shape') is not None:  # level-0 (H, W) of a slide
                result['image_size'] = tuple(int(v) for v in sample.ori_shape[:2])
            mpp = getattr(sample.get('slide'), 'mpp', None)
            if mpp is not None:
                result['pixel_size_um'] = tuple(float(v) for v in mpp)
            if self.multi_label:  # every class predicted (the head's threshold / top-k)
                labels = sorted(int(v) for v in sample.pred_label.reshape(-1))
                result['multi_label'] = True
                result['pred_labels'] = labels
                result['pred_scores_of_labels'] = [float(scores[v]) for v in labels]
                if self.classes:
                    result['pred_classes'] = [self.classes[v] for v in labels]
        return results


def instance_results(sample: DataSample) -> dict:
    """What the instances of a prediction say, as numpy arrays: ``instance_evidence``
    (N,), ``instance_probs`` (N, K), ``deciding_instances`` (M,) and, where there are
    such fields, ``instance_labels`` (N,) and the fused head's ``fusion_weights`` (N,)
    (see ``set_instance_fields``)."""
    names = ('instance_evidence', 'instance_probs', 'deciding_instances',
             'instance_labels', 'fusion_weights')
    return {name: sample.get(name).detach().cpu().numpy() for name in names
            if name in sample}


def write_png(path: str, image_rgb: np.ndarray) -> None:
    """Encode ``image_rgb`` as PNG and write it atomically: a failure (``OSError``)
    leaves no partial file and an older drawing of that name whole. The PNG carries
    gattn-mm's mark (:func:`~gattn_mm.apis.outputs.is_own_drawing`): only a file so
    marked is replaced; any other file of that name (a user's image) is refused with
    ``FileExistsError``, never overwritten."""
    if foreign_files([path]):
        raise FileExistsError(f'{path} exists and is not a drawing of gattn-mm: not '
                              f'overwritten (move it, or draw into another folder)')
    ok, data = cv2.imencode('.png', np.ascontiguousarray(image_rgb[..., ::-1]))
    if not ok:
        raise OSError(f'{path}: OpenCV could not encode a {image_rgb.shape} drawing')
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    AtomicLocalBackend().put(mark_drawing(data.tobytes()), path)
