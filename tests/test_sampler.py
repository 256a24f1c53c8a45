import numpy as np
import pytest
import torch

import gattn_mm  # noqa: F401
from gattn_mm.models import (InstanceSampler, SampleSelector, Selection, ThresholdSelector,
                             TopKSelector)
from gattn_mm.models.selectors.sample_selector import unbiased_weights

SELECTORS = {'topk': dict(type='TopKSelector'), 'sample': dict(type='SampleSelector'),
             'threshold': dict(type='ThresholdSelector', threshold=0.9)}


def one_hot_attention(B, h, w, cells):
    attn = torch.full((B, h * w), 1e-4)
    for b, (r, c) in enumerate(cells):
        attn[b, r * w + c] = 1.
    return (attn / attn.sum(1, keepdim=True)).view(B, h, w)


def sampler(n=1, selector='topk', **kwargs):
    s = InstanceSampler(num_instances=n, crop_size=kwargs.pop('crop_size', 4),
                        selector=SELECTORS[selector] if isinstance(selector, str) else selector,
                        **kwargs)
    s.eval()
    return s


@pytest.mark.parametrize('selector', list(SELECTORS))
def test_crop_takes_the_bright_square(selector):
    # non-square images, batch 2, a 3x5 grid of 32 px cells; each image has one bright cell
    B, H, W, h, w = 2, 96, 160, 3, 5
    cells = [(1, 3), (2, 0)]
    images = torch.zeros(B, 3, H, W)
    for b, (r, c) in enumerate(cells):
        images[b, :, r * 32:(r + 1) * 32, c * 32:(c + 1) * 32] = 1.
    s = sampler(1, selector, crop_size=(8, 16), box_size=32)
    selection, boxes = s(one_hot_attention(B, h, w, cells), (H, W))
    assert isinstance(selection, Selection) and selection.scores.shape == (2, 1)
    for b, (r, c) in enumerate(cells):
        assert boxes[b, 0].tolist() == pytest.approx([c * 32, r * 32, (c + 1) * 32,
                                                      (r + 1) * 32], abs=1.5)
    crops = s.crop(images, boxes)
    assert crops.shape == (2, 3, 8, 16)
    assert crops[:, :, 1:-1, 1:-1].min() > 0.95  # inside the square
    shifted = boxes.clone()  # a box one cell to the left sees no square
    shifted[..., [0, 2]] += 32 if cells[0][1] == 0 else -32
    assert s.crop(images, shifted[:1])[:, :, 1:-1, 1:-1].max() < 0.05


def test_every_selector_returns_the_same_structure():
    attn = torch.rand(2, 5, 6).flatten(1).softmax(1).view(2, 5, 6).requires_grad_()
    for cfg in SELECTORS.values():
        from mmpretrain.registry import MODELS
        sel = MODELS.build(cfg)(attn, 7)
        assert sel.centres.shape == (2, 7, 2) and not sel.centres.requires_grad
        assert sel.scores.shape == sel.weights.shape == (2, 7)
        assert torch.allclose(sel.weights.sum(1), torch.ones(2), atol=1e-5)
        assert sel.weights.requires_grad


def test_boxes_inside_and_image_smaller_than_box():
    s = sampler(4, box_size=100, crop_size=8)
    attn = torch.rand(3, 4, 4).flatten(1).softmax(1).view(3, 4, 4)
    _, b = s(attn, (40, 70))
    assert (b[..., 0] >= 0).all() and (b[..., 1] >= 0).all()
    assert (b[..., 2] <= 70 + 1e-4).all() and (b[..., 3] <= 40 + 1e-4).all()
    assert torch.allclose(b[..., 3] - b[..., 1], torch.tensor(40.))  # shrunk to the image
    assert s.crop(torch.rand(3, 3, 40, 70), b).shape == (12, 3, 8, 8)


def test_box_scale_is_in_cells():
    s = sampler(1, box_scale=2.0)
    _, b = s(one_hot_attention(1, 4, 4, [(1, 1)]), (64, 128))  # cells of 16 x 32 px
    assert b[0, 0].tolist() == pytest.approx([16., 8., 80., 40.])


def test_topk_min_distance_and_determinism():
    attn = torch.zeros(1, 4, 4)
    attn[0, 0, 0], attn[0, 0, 1], attn[0, 3, 3], attn[0, 2, 0] = 0.4, 0.3, 0.2, 0.1
    sel = TopKSelector(min_distance=2)
    assert sel(attn, 3).index[0].tolist() == [0, 15, 8]  # (0,1) is next to (0,0): skipped
    assert torch.equal(sel(attn, 3).centres, sel(attn, 3).centres)
    assert TopKSelector()(attn, 2).index[0].tolist() == [0, 1]


def test_topk_more_instances_than_spaced_cells():
    idx = TopKSelector(min_distance=3)(torch.rand(2, 2, 2).flatten(1).softmax(1).view(2, 2, 2),
                                       4).index
    assert all(len(set(row.tolist())) == 4 for row in idx)


def greedy_topk(probs, w, n, min_distance):
    """Reference: the best free cell, else the best untaken one, else the best."""
    picks = []
    for _ in range(n):
        def ok(k, spaced):
            if spaced and any(max(abs(k // w - j // w), abs(k % w - j % w)) < min_distance
                              for j in picks):
                return False
            return k not in picks
        for spaced, fresh in ((True, True), (False, True), (False, False)):
            cand = [k for k in range(len(probs)) if not fresh or ok(k, spaced)]
            if cand:
                picks.append(max(cand, key=lambda k: (probs[k], -k)))
                break
    return picks


@pytest.mark.parametrize('n,h,w,md', [(5, 6, 7, 2), (12, 4, 4, 2), (20, 4, 4, 3),
                                      (9, 3, 3, 1), (3, 5, 5, 9)])
def test_topk_matches_the_greedy_reference(n, h, w, md):
    torch.manual_seed(n + md)
    attn = (torch.randn(3, h * w) * 3).softmax(1).view(3, h, w)
    idx = TopKSelector(min_distance=md)(attn, n).index
    for b in range(3):
        ref = greedy_topk(attn[b].flatten().tolist(), w, n, md)
        if md <= 1:  # plain top-k, repeated when N > h*w
            ref = attn[b].flatten().topk(min(n, h * w)).indices.tolist()
            ref = (ref * n)[:n]
        assert idx[b].tolist() == ref


def test_sample_reproducible_with_seed_and_random_without():
    s = SampleSelector()
    attn = torch.rand(2, 6, 6).flatten(1).softmax(1).view(2, 6, 6)
    torch.manual_seed(3)
    a = s(attn, 5)
    torch.manual_seed(3)
    b = s(attn, 5)
    assert torch.equal(a.index, b.index) and torch.equal(a.weights, b.weights)
    draws = {tuple(s(attn, 5).index[0].tolist()) for _ in range(10)}
    assert len(draws) > 1
    assert all(len(set(row.tolist())) == 5 for row in a.index)  # no replacement


def test_threshold_deterministic_and_ranked_by_mass():
    attn = torch.full((1, 6, 6), 1e-3)
    attn[0, 0:2, 0:2] = 0.05   # big region, mass 0.2
    attn[0, 4, 4] = 0.09       # small region, mass 0.09
    attn = attn / attn.sum()
    s = sampler(3, dict(type='ThresholdSelector', threshold=0.4), box_size=8)
    sel, boxes = s(attn, (60, 60))
    assert torch.equal(boxes, s(attn, (60, 60))[1])
    first, second = boxes[0, 0], boxes[0, 1]
    assert first[0] < 5 and first[2] > 18  # the 2x2-cell region (20 px) comes first
    assert 38 < (second[0] + second[2]) / 2 < 50  # then the single hot cell
    assert sel.scores[0, 0] > sel.scores[0, 1]
    assert sel.extents is not None and float(sel.extents[0, 0].min()) > 1


def test_threshold_weights_are_differentiable():
    logits = torch.randn(1, 4, 4, requires_grad=True)
    sel = ThresholdSelector()(logits.flatten(1).softmax(1).view(1, 4, 4), 2)
    (sel.weights * torch.tensor([[1., 3.]])).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_unbiased_weights_estimate_the_attention_mean():
    torch.manual_seed(0)
    attn = torch.rand(1, 20).softmax(1) ** 2
    attn = (attn / attn.sum()).view(1, 4, 5)
    f = torch.randn(20)
    estimates = []
    for _ in range(4000):
        sel = SampleSelector()(attn, 4)
        w = unbiased_weights(attn.flatten(1).gather(1, sel.index))
        assert torch.allclose(w, sel.weights) and torch.allclose(w.sum(1), torch.ones(1))
        estimates.append((w * f[sel.index]).sum())
    est = torch.stack(estimates)
    assert abs(est.mean() - (attn.flatten() * f).sum()) < 4 * est.std() / 4000 ** 0.5 + 1e-3


def test_bad_arguments_name_the_key():
    with pytest.raises(KeyError, match='Random'):
        InstanceSampler(selector=dict(type='RandomSelector'))
    with pytest.raises(ValueError, match='crop_size'):
        InstanceSampler(crop_size=(0, 4))
    for bad in (0, None, True, '8', 2.5):  # True is not 1, '8' is not 8
        with pytest.raises(ValueError, match='sampler.num_instances'):
            InstanceSampler(num_instances=bad)
    for bad in (None, 'ab', (8, True), (8, 8, 8)):
        with pytest.raises(ValueError, match='sampler.crop_size'):
            InstanceSampler(crop_size=bad)
    assert InstanceSampler(num_instances=np.int64(3), crop_size=[np.int32(8), 6]
                           ).crop_size == (8, 6)
    with pytest.raises(ValueError, match='test_cfg.num_instances'):
        InstanceSampler(test_cfg=dict(num_instances=0))
    with pytest.raises(ValueError, match=r"unknown keys \['num_instance'\]"):
        InstanceSampler(test_cfg=dict(num_instance=3))
    with pytest.raises(ValueError, match='box_size .* or box_scale'):
        InstanceSampler(box_size=32, box_scale=2.)
    with pytest.raises(TypeError, match='min_distance'):  # not an option of sampling
        SampleSelector(min_distance=2)
    with pytest.raises(TypeError, match='centre'):  # not an option of regions
        ThresholdSelector(centre='centroid')
    with pytest.raises(ValueError, match='threshold'):
        ThresholdSelector(threshold=2)
    with pytest.raises(ValueError, match='min_distance'):
        TopKSelector(min_distance=0)
    with pytest.raises(TypeError, match='BaseSelector'):
        InstanceSampler(selector=dict(type='GatedAttentionNeck', in_channels=4))


def test_test_selector_and_count_come_from_test_cfg():
    s = InstanceSampler(num_instances=2, crop_size=4, selector=dict(type='SampleSelector'),
                        test_cfg=dict(num_instances=5, selector=dict(type='TopKSelector')))
    attn = torch.rand(1, 4, 4).flatten(1).softmax(1).view(1, 4, 4)
    s.train()
    assert s.num_instances == 2 and isinstance(s.active_selector, SampleSelector)
    s.eval()
    sel, boxes = s(attn, (32, 32))
    assert boxes.shape == (1, 5, 4) and isinstance(s.active_selector, TopKSelector)
    assert sel.index[0].tolist() == attn.flatten().topk(5).indices.tolist()


@pytest.mark.parametrize('selector', [TopKSelector, SampleSelector])
def test_centroid_centres_a_structure_that_straddles_cells(selector):
    # attention split evenly between cells (1, 1) and (1, 2) of a 4x4 grid of 16 px
    attn = torch.full((1, 4, 4), 1e-9)
    attn[0, 1, 1] = attn[0, 1, 2] = 0.5
    plain = sampler(1, TopKSelector(), box_size=16)
    cent = sampler(1, selector(centre='centroid'), box_size=16)
    assert plain(attn, (64, 64))[1][0, 0].tolist() == pytest.approx([16, 16, 32, 32])
    box = cent(attn, (64, 64))[1][0, 0]
    assert box.tolist() == pytest.approx([24, 16, 40, 32], abs=1e-3)  # the pair's middle
    # a lone peak keeps its cell centre; the offsets carry no gradient
    lone = one_hot_attention(1, 4, 4, [(2, 3)]).requires_grad_()
    _, boxes = cent(lone, (64, 64))
    assert boxes[0, 0].tolist() == pytest.approx([48, 32, 64, 48], abs=0.01)
    assert not boxes.requires_grad
    with pytest.raises(ValueError, match='centre'):
        selector(centre='peak')


def test_test_views_shift_the_crops_outside_training_only():
    B, H, W = 2, 64, 96
    images = torch.rand(B, 3, H, W)
    boxes = torch.tensor([[[10., 12., 42., 44.], [0., 0., 32., 32.]],
                          [[50., 20., 82., 52.], [64., 32., 96., 64.]]])  # (B, N=2, 4)
    views = [(0.25, 0), (0, -0.25)]
    s = InstanceSampler(num_instances=2, crop_size=8, box_size=32, test_cfg=dict(views=views))
    plain = InstanceSampler(num_instances=2, crop_size=8, box_size=32)
    s.train()
    assert s.num_views == 1 and torch.equal(s.crop(images, boxes), plain.crop(images, boxes))
    s.eval()
    assert s.num_views == 3
    crops = s.crop(images, boxes).view(B, 2, 3, 3, 8, 8)
    vb = s.view_boxes(boxes, (H, W))  # (B, N, V, 4)
    assert vb.shape == (B, 2, 3, 4)
    # view 0 is the box; view 1 is 8 px (a quarter of 32) to the right, view 2 8 px up,
    # each shifted back inside the image where it would leave it
    assert torch.allclose(vb[:, :, 0], boxes)
    assert vb[0, 0, 1].tolist() == [18., 12., 50., 44.]
    assert vb[0, 0, 2].tolist() == [10., 4., 42., 36.]
    assert vb[0, 1, 2].tolist() == [0., 0., 32., 32.]  # already at the top
    assert vb[1, 1, 1].tolist() == [64., 32., 96., 64.]  # already at the right edge
    for k in range(3):
        assert torch.allclose(crops[:, :, k].reshape(-1, 3, 8, 8),
                              plain.crop(images, vb[:, :, k]), atol=1e-6)
    with pytest.raises(ValueError, match='test_cfg.views'):
        InstanceSampler(test_cfg=dict(views=[(1.5, 0)]))
    with pytest.raises(ValueError, match='test_cfg.views'):
        InstanceSampler(test_cfg=dict(views=[(0.1,)]))


def test_explore_prior_mixes_the_contrast_prior_into_the_choices_of_its_mode():
    # a 4x4 grid of 40 px cells: the attention points at cell (0, 0), the image's only
    # structure (a textured square) is in cell (2, 3)
    from gattn_mm.models.utils import CanvasBatch
    images = torch.zeros(1, 3, 160, 160)
    images[0, :, 80:120, 120:160] = torch.rand(3, 40, 40)
    attention = torch.full((1, 4, 4), 0.5 / 15)
    attention[0, 0, 0] = 0.5
    picked = {}
    for explore in (0., 0.5, 1.):
        s = InstanceSampler(num_instances=1, crop_size=4, box_size=40, explore_prior=explore)
        for train in (True, False):
            s.train(train)
            selection, _ = s(attention, (160, 160), None, CanvasBatch(images))
            picked[explore, train] = tuple(selection.centres[0, 0].floor().int().tolist())
    assert picked[1., True] == (2, 3)  # the prior alone: the structure
    assert picked[0., True] == picked[0.5, False] == picked[1., False] == (0, 0)
    # half and half: the peaked prior (~0.99 on the structure) outweighs the
    # attention's 0.5 on (0, 0)
    assert picked[0.5, True] == (2, 3)
    # outside training, test_cfg.explore_prior: the structure at test, not in training
    s = InstanceSampler(num_instances=1, crop_size=4, box_size=40,
                        test_cfg=dict(explore_prior=0.5))
    for train, cell in ((True, (0, 0)), (False, (2, 3))):
        s.train(train)
        selection, _ = s(attention, (160, 160), None, CanvasBatch(images))
        assert tuple(selection.centres[0, 0].floor().int().tolist()) == cell
    for bad in (-0.1, 1.5, True, 'half'):
        with pytest.raises(ValueError, match='sampler.explore_prior'):
            InstanceSampler(explore_prior=bad)
        with pytest.raises(ValueError, match='sampler.test_cfg.explore_prior'):
            InstanceSampler(test_cfg=dict(explore_prior=bad))
    with pytest.raises(ValueError, match='sampler.explore_prior needs the images'):
        InstanceSampler(box_size=40, explore_prior=0.5)(attention, (160, 160))
    # at test the share is test_cfg's: the error names that key
    s = InstanceSampler(box_size=40, explore_prior=0.5, test_cfg=dict(explore_prior=0.5))
    with pytest.raises(ValueError, match='sampler.test_cfg.explore_prior needs the images'):
        s.eval()(attention, (160, 160))
