import copy

import pytest
import torch
import torch.nn.functional as F

import gattn_mm  # noqa: F401
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

BACKBONES = {
    'resnet18': (dict(type='ResNet', depth=18), 512),
    'resnet50': (dict(type='ResNet', depth=50), 2048),
    'resnext50': (dict(type='ResNeXt', depth=50, groups=32, width_per_group=4), 2048),
    'convnext-tiny': (dict(type='ConvNeXt', arch='tiny', gap_before_final_norm=False), 768),
    'efficientnet-b0': (dict(type='EfficientNet', arch='b0'), 1280),
    'mobilenetv3-small': (dict(type='MobileNetV3', arch='small'), 576),
    'regnetx-400mf': (dict(type='RegNet', arch='regnetx_400mf'), 384),
    'vit-deit-tiny': (dict(type='VisionTransformer', arch='deit-tiny', img_size=64,
                           patch_size=16, out_type='featmap'), 192),
    'swin-tiny': (dict(type='SwinTransformer', arch='tiny', img_size=64, pad_small_map=True),
                   768),
    'timm-resnet18': (dict(type='TIMMBackbone', model_name='resnet18', pretrained=False), 512),
}


def gattn_cfg(backbone, channels, n=2, fusion='concat', train='sample', test='topk', **head):
    return dict(
        type='GatedAttentionClassifier', backbone=backbone, global_size=64,
        neck=dict(type='GatedAttentionNeck', in_channels=channels, hidden_channels=16),
        sampler=dict(type='InstanceSampler', num_instances=n, crop_size=32,
                     train_strategy=train, test_strategy=test),
        head=dict(type='FusionHead', num_classes=3, in_channels=channels, num_instances=n,
                  fusion=fusion, **head))


def samples(*labels):
    return [DataSample().set_gt_label(v) for v in labels]


@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbones_loss_and_predict(name):
    if name.startswith('timm'):
        pytest.importorskip('timm')
    backbone, channels = BACKBONES[name]
    model = MODELS.build(gattn_cfg(copy.deepcopy(backbone), channels,
                                   global_loss_weight=0.5, local_loss_weight=0.5))
    x = torch.rand(2, 3, 128, 96)
    losses = model(x, samples(0, 2), mode='loss')
    assert set(losses) == {'loss', 'loss_global', 'loss_local'}
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        preds = model(x, samples(0, 2), mode='predict')
        logits = model(x)
    assert logits.shape == (2, 3)
    p = preds[1]
    assert p.pred_score.shape == (3,) and p.pred_label.shape == (1,)
    h, w = p.attention.shape
    assert h >= 1 and w >= 1 and float(p.attention.sum()) == pytest.approx(1, abs=1e-4)
    assert p.boxes.shape == (2, 4) and p.instance_scores.shape == (2,)
    assert (p.boxes[:, 0] >= 0).all() and (p.boxes[:, 2] <= 96).all()
    assert (p.boxes[:, 3] <= 128).all()


def test_wrong_in_channels_names_real_count():
    with pytest.raises(ValueError, match=r'gives 512 channels.*in_channels=512'):
        MODELS.build(gattn_cfg(dict(type='ResNet', depth=18), 256))


def test_vector_backbone_is_refused_clearly():
    cfg = gattn_cfg(dict(type='ConvNeXt', arch='atto'), 320)
    with pytest.raises(ValueError, match='gap_before_final_norm=False'):
        MODELS.build(cfg)


def test_wrong_local_channels():
    cfg = gattn_cfg(dict(type='ResNet', depth=18), 512, local_channels=128)
    with pytest.raises(ValueError, match='local backbone ResNet, which gives 512'):
        MODELS.build(cfg)


def test_separate_local_backbone():
    cfg = gattn_cfg(dict(type='ResNet', depth=18), 512, local_channels=64)
    cfg['local_backbone'] = dict(type='MobileNetV3', arch='small', out_indices=(0,))
    cfg['head']['local_channels'] = 16
    model = MODELS.build(cfg)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize('fusion', ['concat', 'attention', 'mean'])
@pytest.mark.parametrize('strategy', ['sample', 'topk', 'threshold'])
def test_gradients_reach_attention(fusion, strategy):
    torch.manual_seed(0)
    cfg = gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64, n=3, fusion=fusion,
                    train=strategy, local_loss_weight=1.0)
    model = MODELS.build(cfg)
    model.init_weights()
    losses = model(torch.rand(2, 3, 96, 96), samples(1, 2), mode='loss')
    sum(losses.values()).backward()
    neck = model.neck
    for p in (neck.attention_V.weight, neck.attention_U.weight, neck.attention_w.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_attention_fusion_trains_attention_through_local_path():
    """With fusion=attention the local path alone carries gradient to the attention."""
    torch.manual_seed(0)
    model = MODELS.build(gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64, n=3,
                                   fusion='attention'))
    model.init_weights()
    parts = model.forward_parts(torch.rand(2, 3, 96, 96))
    g, local, w = model.head_inputs(parts)
    logits = model.head((g.detach(), local, w))
    logits.sum().backward()
    assert model.neck.attention_w.weight.grad.abs().sum() > 0


def test_threshold_weights_are_differentiable():
    from gattn_mm.models import InstanceSampler
    s = InstanceSampler(num_instances=2, crop_size=4, train_strategy='threshold')
    logits = torch.randn(1, 4, 4, requires_grad=True)
    out = s(logits.flatten(1).softmax(1).view(1, 4, 4), (32, 32))
    (out['weights'] * torch.tensor([[1., 3.]])).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_neck_drop_in_for_global_average_pooling():
    cfg = dict(type='ImageClassifier', backbone=dict(type='ResNet', depth=18),
               neck=dict(type='GatedAttentionNeck', in_channels=512),
               head=dict(type='LinearClsHead', num_classes=4, in_channels=512))
    model = MODELS.build(cfg)
    losses = model(torch.rand(2, 3, 64, 64), samples(1, 3), mode='loss')
    assert torch.isfinite(losses['loss'])
    attn, pooled = model.extract_feat(torch.rand(2, 3, 64, 64))
    assert attn.shape == (2, 2, 2) and pooled.shape == (2, 512)


def test_neck_math_matches_definition():
    from gattn_mm.models import GatedAttentionNeck
    neck = GatedAttentionNeck(in_channels=5, hidden_channels=3)
    feat = torch.randn(2, 5, 2, 3)
    attn, pooled = neck((feat,))
    f = feat.flatten(2).transpose(1, 2)  # (B, 6, 5)
    score = neck.attention_w(torch.tanh(neck.attention_V(f)) *
                             torch.sigmoid(neck.attention_U(f)))[..., 0]
    a = score.softmax(1)
    assert torch.allclose(attn.flatten(1), a, atol=1e-6)
    assert torch.allclose(pooled, torch.einsum('bn,bnc->bc', a, f), atol=1e-5)


def test_predict_scales_boxes_back_to_original_image():
    model = MODELS.build(gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64))
    model.eval()
    ds = samples(0)
    ds[0].set_metainfo(dict(scale_factor=(0.5, 0.25)))
    with torch.no_grad():
        p = model(torch.rand(1, 3, 64, 64), ds, mode='predict')[0]
    assert torch.allclose(p.ori_boxes, p.boxes * torch.tensor([2., 4., 2., 4.]))


def test_extract_feat_stages():
    model = MODELS.build(gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64,
                                   fusion='mean'))
    x = torch.rand(2, 3, 64, 64)
    assert model.extract_feat(x, stage='backbone')[-1].shape == (2, 64, 2, 2)
    attn, g = model.extract_feat(x, stage='neck')
    assert attn.shape == (2, 2, 2) and g.shape == (2, 64)
    assert model.extract_feat(x, stage='sampler')['crops'].shape == (4, 3, 32, 32)
    assert model.extract_feat(x, stage='pre_logits').shape == (2, 128)
    with pytest.raises(ValueError, match='stage'):
        model.extract_feat(x, stage='nope')


def test_instance_loss_values():
    from gattn_mm.models import FusionHead
    head = FusionHead(num_classes=2, in_channels=4, num_instances=3, fusion='mean',
                      instance_loss_weight=1.0, instance_topk=1)
    local = torch.randn(2, 3, 4)
    feats = (torch.randn(2, 4), local, torch.full((2, 3), 1 / 3))
    logp = head.fc_local(local).log_softmax(-1)
    # bag 0 negative: every instance is a negative; bag 1 positive: its best instance
    expected = -(logp[0, :, 0].mean() + logp[1, :, 1].max()) / 2
    loss = head.instance_loss(feats, samples(0, 1))
    assert torch.allclose(loss, expected, atol=1e-6)
    head.instance_topk = 0  # soft rule: log of the mean instance probability
    soft = -(logp[0, :, 0].mean() + (logp[1, :, 1].exp().mean()).log()) / 2
    assert torch.allclose(head.instance_loss(feats, samples(0, 1)), soft, atol=1e-6)


def test_predict_from_local_and_distillation_options():
    cfg = gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64, n=3, fusion='attention',
                    instance_loss_weight=1.0, predict_from='local', local_pool='max')
    cfg['train_cfg'] = dict(distill_weight=1.0, distill_target='both')
    model = MODELS.build(cfg)
    losses = model(torch.rand(2, 3, 96, 96), samples(0, 1), mode='loss')
    assert {'loss', 'loss_instance', 'loss_distill'} <= set(losses)
    model.eval()
    with torch.no_grad():
        parts = model.forward_parts(torch.rand(2, 3, 96, 96))
        logits = model.head.predict_logits(model.head_inputs(parts))
        per_instance = model.head.instance_logits(model.head_inputs(parts))
    # max pooling with a negative class: the bag takes the logits of its instance
    # with the most evidence against class 0 (positive iff one instance is)
    evidence = per_instance[..., 1:].logsumexp(-1) - per_instance[..., 0]
    best = evidence.argmax(dim=1)
    assert torch.allclose(logits, per_instance[torch.arange(2), best])
    model.head.negative_class = None  # no absent class: each class's own maximum
    assert torch.allclose(model.head.predict_logits(model.head_inputs(parts)),
                          per_instance.max(dim=1).values)
    cfg['train_cfg'] = dict(distill_target='nope')
    with pytest.raises(ValueError, match='distill_target'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match="predict_from='local' needs"):
        MODELS.build(gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64,
                               predict_from='local'))


def test_contrast_prior_points_at_the_textured_cell_and_trains_the_attention():
    cfg = gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64, n=2)
    cfg['train_cfg'] = dict(prior_weight=1.0, distill_temperature=0.5)
    model = MODELS.build(cfg)
    x = torch.full((1, 3, 128, 128), 0.5)
    x[0, :, 70:90, 10:30] = torch.rand(3, 20, 20)  # structure in cell (2, 0) of a 4x4 grid
    prior = model.contrast_prior(x, (4, 4))
    assert prior.shape == (1, 16) and int(prior.argmax()) == 2 * 4 + 0
    losses = model(x, samples(1), mode='loss')
    assert 'loss_prior' in losses and losses['loss_prior'] > 0
    losses['loss_prior'].backward()
    neck = model.neck
    grads = [p.grad for p in neck.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # the attention that follows the prior pays no KL
    parts = model.forward_parts(x)
    parts['attention'] = (prior / 0.5).softmax(1).view(1, 4, 4)
    assert float(model.prior_loss(x, parts)) == pytest.approx(0, abs=1e-5)


def test_contrast_prior_reads_a_subsample_of_large_cells():
    cfg = gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64, n=2)
    model = MODELS.build(cfg)
    torch.manual_seed(0)
    x = torch.full((2, 3, 1024, 1024), 0.5) + 0.05 * torch.randn(2, 3, 1024, 1024)
    x[0, :, 600:700, 100:200] = torch.rand(3, 100, 100)  # cell (2, 0) of a 4x4 grid
    x[1, :, 0:256, 800:1000] = torch.rand(3, 256, 200)  # cell (0, 3)
    prior = model.contrast_prior(x, (4, 4))  # 256 px cells: every 8th pixel is read
    gray = x.mean(1)
    cells = gray.unflatten(1, (4, 256)).unflatten(3, (4, 256)).transpose(2, 3).flatten(3)
    full = model._zscore(cells.std(-1, unbiased=False).flatten(1))  # every pixel
    assert prior.argmax(1).tolist() == [8, 3] == full.argmax(1).tolist()
    top = prior.max(1).values
    assert torch.allclose(top, full.max(1).values, atol=0.1) and (top > 3).all()
    others = prior.scatter(1, prior.argmax(1, keepdim=True), -9.)
    assert (others < 0).all()  # the background cells stay below the mean
    # cells of fewer than 2 x PRIOR_SAMPLES pixels are read whole
    small = x[:, :, :128, :128]
    g = small.mean(1, keepdim=True)
    m, sq = F.adaptive_avg_pool2d(g, 4), F.adaptive_avg_pool2d(g * g, 4)
    exact = model._zscore((sq - m * m).clamp_min(0).sqrt().flatten(1))
    assert torch.allclose(model.contrast_prior(small, (4, 4)), exact, atol=1e-5)


@pytest.mark.parametrize('size,out', [((64, 96), (8, 12)), ((60, 90), (8, 12)),
                                      ((64, 64), (64, 64))])
def test_area_resize_is_adaptive_average_pooling(size, out):
    from gattn_mm.models.classifiers.gated_attention_classifier import area_resize
    x = torch.rand(2, 3, *size)
    assert torch.allclose(area_resize(x, out), F.adaptive_avg_pool2d(x, out), atol=1e-6)


@pytest.mark.parametrize('detach', [False, True])
def test_detach_local_keeps_the_fused_loss_off_the_reader(detach):
    head = MODELS.build(dict(type='FusionHead', num_classes=2, in_channels=4,
                             local_channels=6, fusion='attention', detach_local=detach))
    g = torch.rand(2, 4, requires_grad=True)
    local = torch.rand(2, 3, 6, requires_grad=True)
    weights = torch.rand(2, 3).softmax(1).requires_grad_()
    head.loss((g, local, weights), samples(0, 1))['loss'].backward()
    assert g.grad.abs().sum() > 0 and weights.grad.abs().sum() > 0
    assert (local.grad is None) == detach


def test_test_views_average_the_reader_features():
    """Outside training, the local features are the mean of the reader's features
    over the views; boxes and crops in the outputs are those of view 0."""
    from gattn_mm.models.classifiers.gated_attention_classifier import pool_feature
    backbone, channels = BACKBONES['resnet18']
    cfg = gattn_cfg(copy.deepcopy(backbone), channels, n=3)
    cfg['sampler']['test_views'] = [(0.1, 0), (0, -0.1)]
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.eval()
    x = torch.rand(2, 3, 128, 96)
    with torch.no_grad():
        parts = model.extract_feat(x, stage='sampler')
        sampler = model.sampler
        views = sampler.view_boxes(parts['boxes'], (128, 96))  # (2, 3, 3, 4)
        plain = MODELS.build(dict(type='InstanceSampler', crop_size=32))  # one view
        plain.eval()
        feats = [pool_feature(model.crop_backbone(plain.crop(x, views[:, :, k]))).view(2, 3, -1)
                 for k in range(3)]
        assert torch.allclose(parts['local_feats'], torch.stack(feats).mean(0), atol=1e-5)
        assert parts['crops'].shape == (6, 3, 32, 32)
        model.train()
        assert model.extract_feat(x, stage='sampler')['crops'].shape == (6, 3, 32, 32)
