"""ContrastPeakRefiner: boxes moved onto the structure within their reach, at full
resolution, on both kinds of batch."""
import numpy as np
import pytest
import torch

import gattn_mm  # noqa: F401
from gattn_mm.models import ContrastPeakRefiner, InstanceSampler
from gattn_mm.models.utils import CanvasBatch, ImageSource, NativeBatch


def blob_image(H, W, centres, radius=6, value=-2.):
    """(3, H, W) a flat image with dark discs at ``centres`` (x, y)."""
    yy, xx = torch.meshgrid(torch.arange(H) + .5, torch.arange(W) + .5, indexing='ij')
    image = torch.zeros(3, H, W)
    for cx, cy in centres:
        image[:, (xx - cx) ** 2 + (yy - cy) ** 2 <= radius ** 2] = value
    return image


def centres(boxes):
    return torch.stack([(boxes[..., 0] + boxes[..., 2]) / 2,
                        (boxes[..., 1] + boxes[..., 3]) / 2], -1)


def square(cx, cy, side=40.):
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


@pytest.mark.parametrize('offset', [(0, 0), (12, -7), (-15, 15), (19, 3)])
def test_box_moves_onto_the_blob_within_reach(offset):
    blob = (100 + offset[0], 80 + offset[1])
    images = blob_image(160, 200, [blob])[None]
    boxes = torch.tensor([[square(100., 80.)]])
    out = ContrastPeakRefiner()(CanvasBatch(images), boxes, (160, 200))
    assert torch.allclose(centres(out)[0, 0], torch.tensor(blob, dtype=torch.float),
                          atol=2.5)
    assert torch.allclose(out[..., 2:] - out[..., :2], boxes[..., 2:] - boxes[..., :2])


def test_a_blob_beyond_reach_moves_the_box_at_most_reach():
    images = blob_image(200, 200, [(100 + 35, 100)])[None]  # 35 px right; reach 20 px
    out = ContrastPeakRefiner(reach=0.5)(CanvasBatch(images), torch.tensor([[square(100., 100.)]]),
                                         (200, 200))
    dx, dy = (centres(out)[0, 0] - torch.tensor([100., 100.])).tolist()
    assert 15 <= dx <= 21.5 and abs(dy) <= 2.5
    still = ContrastPeakRefiner(reach=0.)(CanvasBatch(images),
                                          torch.tensor([[square(100., 100.)]]), (200, 200))
    assert torch.allclose(centres(still), torch.tensor([[[100., 100.]]]), atol=1.5)


def test_boxes_stay_inside_each_images_extent():
    images = blob_image(120, 120, [(116, 116)])[None].repeat(2, 1, 1, 1)
    boxes = torch.tensor([[square(95., 95.)], [square(95., 95.)]])
    extents = torch.tensor([[120., 120.], [100., 110.]])  # image 1 covers 100 x 110
    out = ContrastPeakRefiner()(CanvasBatch(images, extents), boxes,
                                (extents[:, :1], extents[:, 1:]))
    assert out[0, 0, 2] <= 120 and out[0, 0, 3] <= 120 and out[0, 0, 2] > 118
    assert out[1, 0, 2] <= 110 + 1e-4 and out[1, 0, 3] <= 100 + 1e-4
    assert (out[..., :2] >= 0).all()


def test_native_batch_refines_in_native_pixels_without_gradient():
    image = np.full((300, 500, 3), 200, np.uint8)
    yy, xx = np.mgrid[:300, :500]
    image[(xx - 412) ** 2 + (yy - 57) ** 2 <= 64] = 30  # dark disc at (412, 57)
    batch = NativeBatch([ImageSource(torch.from_numpy(image.transpose(2, 0, 1).copy()),
                                     [128.] * 3, [64.] * 3)])
    boxes = torch.tensor([[square(400., 70.)]], requires_grad=True)
    out = ContrastPeakRefiner()(batch, boxes, (torch.tensor([[300.]]), torch.tensor([[500.]])))
    assert not out.requires_grad
    assert torch.allclose(centres(out)[0, 0], torch.tensor([412., 57.]), atol=3.)


def test_sampler_refines_boxes_in_training_and_at_test_time():
    # a 4x4 grid of 40 px cells; the attention picks cell (1, 2), whose structure sits
    # off the cell's centre (100, 60) at (108, 50)
    images = blob_image(160, 160, [(108, 50)])[None]
    attention = torch.full((1, 4, 4), 1e-3)
    attention[0, 1, 2] = 1.
    attention = attention / attention.sum()
    for refiner, expected in ((None, (100., 60.)), (dict(type='ContrastPeakRefiner'),
                                                     (108., 50.))):
        s = InstanceSampler(num_instances=1, crop_size=8, box_size=40, refiner=refiner)
        for train in (True, False):
            s.train(train)
            _, boxes = s(attention, (160, 160), None, CanvasBatch(images))
            assert torch.allclose(centres(boxes)[0, 0], torch.tensor(expected), atol=2.5)
    with pytest.raises(ValueError, match='sampler.refiner needs the images'):
        InstanceSampler(box_size=40, refiner=dict(type='ContrastPeakRefiner'))(
            attention, (160, 160))


@pytest.mark.parametrize('kwargs, key', [(dict(window=0.5), 'refiner.window'),
                                         (dict(sigma=0), 'refiner.sigma'),
                                         (dict(reach=2.), 'refiner.reach'),
                                         (dict(window_size=0), 'refiner.window_size')])
def test_bad_arguments_name_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        ContrastPeakRefiner(**kwargs)
