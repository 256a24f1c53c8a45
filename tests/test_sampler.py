import pytest
import torch

import gattn_mm  # noqa: F401
from gattn_mm.models import InstanceSampler


def one_hot_attention(B, h, w, cells):
    attn = torch.full((B, h * w), 1e-4)
    for b, (r, c) in enumerate(cells):
        attn[b, r * w + c] = 1.
    return (attn / attn.sum(1, keepdim=True)).view(B, h, w)


@pytest.mark.parametrize('strategy', ['topk', 'threshold', 'sample'])
def test_crop_takes_the_bright_square(strategy):
    # non-square images, batch 2, a 3x5 grid of 32 px cells; each image has one bright cell
    B, H, W, h, w = 2, 96, 160, 3, 5
    cells = [(1, 3), (2, 0)]
    images = torch.zeros(B, 3, H, W)
    for b, (r, c) in enumerate(cells):
        images[b, :, r * 32:(r + 1) * 32, c * 32:(c + 1) * 32] = 1.
    sampler = InstanceSampler(num_instances=1, crop_size=(8, 16), box_size=32,
                              train_strategy=strategy, test_strategy=strategy, threshold=0.9)
    sampler.eval()
    out = sampler(one_hot_attention(B, h, w, cells), (H, W))
    for b, (r, c) in enumerate(cells):
        assert out['boxes'][b, 0].tolist() == pytest.approx([c * 32, r * 32, (c + 1) * 32,
                                                             (r + 1) * 32], abs=1.5)
    crops = sampler.crop(images, out['boxes'])
    assert crops.shape == (2, 3, 8, 16)
    assert crops[:, :, 1:-1, 1:-1].min() > 0.95  # inside the square
    # a box one cell to the left sees no square
    shifted = out['boxes'].clone()
    shifted[..., [0, 2]] += 32 if cells[0][1] == 0 else -32
    assert sampler.crop(images, shifted[:1])[:, :, 1:-1, 1:-1].max() < 0.05


def test_boxes_inside_and_image_smaller_than_box():
    s = InstanceSampler(num_instances=4, crop_size=8, box_size=100, test_strategy='topk')
    s.eval()
    attn = torch.rand(3, 4, 4).flatten(1).softmax(1).view(3, 4, 4)
    out = s(attn, (40, 70))
    b = out['boxes']
    assert (b[..., 0] >= 0).all() and (b[..., 1] >= 0).all()
    assert (b[..., 2] <= 70 + 1e-4).all() and (b[..., 3] <= 40 + 1e-4).all()
    assert torch.allclose(b[..., 3] - b[..., 1], torch.tensor(40.))  # shrunk to the image
    assert s.crop(torch.rand(3, 3, 40, 70), b).shape == (12, 3, 8, 8)


def test_topk_min_distance_and_determinism():
    s = InstanceSampler(num_instances=3, crop_size=4, test_strategy='topk', min_distance=2)
    s.eval()
    attn = torch.zeros(1, 4, 4)
    attn[0, 0, 0], attn[0, 0, 1], attn[0, 3, 3], attn[0, 2, 0] = 0.4, 0.3, 0.2, 0.1
    out = s(attn, (64, 64))
    assert out['index'][0].tolist() == [0, 15, 8]  # (0,1) is next to (0,0): skipped
    assert torch.equal(s(attn, (64, 64))['boxes'], out['boxes'])
    plain = InstanceSampler(num_instances=2, crop_size=4, test_strategy='topk')
    plain.eval()
    assert plain(attn, (64, 64))['index'][0].tolist() == [0, 1]


def test_topk_more_instances_than_spaced_cells():
    s = InstanceSampler(num_instances=4, crop_size=4, test_strategy='topk', min_distance=3)
    s.eval()
    idx = s(torch.rand(2, 2, 2).flatten(1).softmax(1).view(2, 2, 2), (8, 8))['index']
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
    s = InstanceSampler(num_instances=n, crop_size=4, test_strategy='topk', min_distance=md)
    s.eval()
    attn = (torch.randn(3, h * w) * 3).softmax(1).view(3, h, w)
    idx = s(attn, (64, 64))['index']
    for b in range(3):
        ref = greedy_topk(attn[b].flatten().tolist(), w, n, md)
        if md <= 1:  # plain top-k, repeated when N > h*w
            ref = attn[b].flatten().topk(min(n, h * w)).indices.tolist()
            ref = (ref * n)[:n]
        assert idx[b].tolist() == ref


def test_sample_reproducible_with_seed_and_random_without():
    s = InstanceSampler(num_instances=5, crop_size=4, train_strategy='sample')
    attn = torch.rand(2, 6, 6).flatten(1).softmax(1).view(2, 6, 6)
    torch.manual_seed(3)
    a = s(attn, (96, 96))
    torch.manual_seed(3)
    b = s(attn, (96, 96))
    assert torch.equal(a['boxes'], b['boxes']) and torch.equal(a['weights'], b['weights'])
    draws = {tuple(s(attn, (96, 96))['index'][0].tolist()) for _ in range(10)}
    assert len(draws) > 1
    assert all(len(set(row.tolist())) == 5 for row in a['index'])  # no replacement


def test_threshold_deterministic_and_ranked_by_mass():
    attn = torch.full((1, 6, 6), 1e-3)
    attn[0, 0:2, 0:2] = 0.05   # big region, mass 0.2
    attn[0, 4, 4] = 0.09       # small region, mass 0.09
    attn = attn / attn.sum()
    s = InstanceSampler(num_instances=3, crop_size=4, box_size=8, test_strategy='threshold',
                        threshold=0.4)
    s.eval()
    out = s(attn, (60, 60))
    assert torch.equal(out['boxes'], s(attn, (60, 60))['boxes'])
    first, second = out['boxes'][0, 0], out['boxes'][0, 1]
    assert first[0] < 5 and first[2] > 18  # the 2x2-cell region (20 px) comes first
    assert 38 < (second[0] + second[2]) / 2 < 50  # then the single hot cell
    assert out['scores'][0, 0] > out['scores'][0, 1]


def test_unbiased_weights_estimate_the_attention_mean():
    torch.manual_seed(0)
    attn = torch.rand(1, 20).softmax(1) ** 2
    attn = attn / attn.sum()
    f = torch.randn(20)
    s = InstanceSampler(num_instances=4, crop_size=4)
    estimates = []
    for _ in range(4000):
        idx = s._select_sample(attn)
        w = s.unbiased_weights(attn.gather(1, idx))
        assert torch.allclose(w.sum(1), torch.ones(1))
        estimates.append((w * f[idx]).sum())
    est = torch.stack(estimates)
    assert abs(est.mean() - (attn[0] * f).sum()) < 4 * est.std() / 4000 ** 0.5 + 1e-3


def test_bad_arguments():
    with pytest.raises(ValueError, match='train_strategy'):
        InstanceSampler(train_strategy='random')
    with pytest.raises(ValueError, match='crop_size'):
        InstanceSampler(crop_size=(0, 4))
    with pytest.raises(ValueError, match='num_instances'):
        InstanceSampler(num_instances=0)


def test_centroid_centres_a_structure_that_straddles_cells():
    # attention split evenly between cells (1, 1) and (1, 2) of a 4x4 grid of 16 px
    attn = torch.full((1, 4, 4), 1e-6)
    attn[0, 1, 1] = attn[0, 1, 2] = 0.5
    plain = InstanceSampler(num_instances=1, crop_size=4, box_size=16, test_strategy='topk')
    cent = InstanceSampler(num_instances=1, crop_size=4, box_size=16, test_strategy='topk',
                           centre='centroid')
    plain.eval(), cent.eval()
    cell = plain(attn, (64, 64))['boxes'][0, 0]
    box = cent(attn, (64, 64))['boxes'][0, 0]
    assert cell.tolist() == pytest.approx([16, 16, 32, 32])  # the first cell of the tie
    assert box.tolist() == pytest.approx([24, 16, 40, 32], abs=1e-3)  # the pair's middle
    # a lone peak keeps its cell centre; the offsets carry no gradient
    lone = one_hot_attention(1, 4, 4, [(2, 3)]).requires_grad_()
    out = cent(lone, (64, 64))
    assert out['boxes'][0, 0].tolist() == pytest.approx([48, 32, 64, 48], abs=0.01)
    assert not out['boxes'].requires_grad
    with pytest.raises(ValueError, match='centre'):
        InstanceSampler(centre='peak')


def test_jitter_moves_boxes_in_training_only_and_keeps_them_inside():
    s = InstanceSampler(num_instances=6, crop_size=8, box_size=20, train_strategy='topk',
                        test_strategy='topk', min_distance=2, jitter=0.2, scale_jitter=0.3)
    attn = (torch.randn(2, 8, 8) * 2).flatten(1).softmax(1).view(2, 8, 8)
    s.eval()
    plain = s(attn, (64, 80))['boxes']
    assert torch.equal(plain, s(attn, (64, 80))['boxes'])  # deterministic at test time
    s.train()
    torch.manual_seed(0)
    moved = s(attn, (64, 80))['boxes']
    assert not torch.allclose(moved, plain)
    assert (moved[..., :2] >= 0).all() and (moved[..., 2] <= 80).all() \
        and (moved[..., 3] <= 64).all()
    side = moved[..., 2] - moved[..., 0]
    assert torch.allclose(side, moved[..., 3] - moved[..., 1])  # square stays square
    assert (side >= 20 * 0.74 - 1e-4).all() and (side <= 20 * 1.35 + 1e-4).all()
    centre_shift = ((moved[..., :2] + moved[..., 2:]) - (plain[..., :2] + plain[..., 2:])) / 2
    assert (centre_shift.abs() <= 0.2 * 27 + 1e-4).all()
    torch.manual_seed(0)
    assert torch.equal(s(attn, (64, 80))['boxes'], moved)  # seeded: reproducible
    with pytest.raises(ValueError, match='jitter'):
        InstanceSampler(jitter=-0.1)


def test_test_views_shift_the_crops_outside_training_only():
    B, H, W = 2, 64, 96
    images = torch.rand(B, 3, H, W)
    boxes = torch.tensor([[[10., 12., 42., 44.], [0., 0., 32., 32.]],
                          [[50., 20., 82., 52.], [64., 32., 96., 64.]]])  # (B, N=2, 4)
    views = [(0.25, 0), (0, -0.25)]
    s = InstanceSampler(num_instances=2, crop_size=8, box_size=32, test_views=views)
    plain = InstanceSampler(num_instances=2, crop_size=8, box_size=32)
    s.train()
    assert s.num_views == 1 and torch.equal(s.crop(images, boxes), plain.crop(images, boxes))
    s.eval()
    assert s.num_views == 3
    crops = s.crop(images, boxes).view(B, 2, 3, 3, 8, 8)
    vb = s.view_boxes(boxes, (H, W))  # (B, N, K, 4)
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
    with pytest.raises(ValueError, match='test_views'):
        InstanceSampler(test_views=[(1.5, 0)])
    with pytest.raises(ValueError, match='test_views'):
        InstanceSampler(test_views=[(0.1,)])
