import copy
import math

import pytest
import torch
import torch.nn.functional as F

import gattn_mm  # noqa: F401
from gattn_mm.models.utils import area_resize, gray_std, pool_feature, zscore
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
FUSIONS = {'concat': lambda n: dict(type='ConcatFusion', num_instances=n),
           'attention': lambda n: dict(type='AttentionFusion'),
           'mean': lambda n: dict(type='MeanFusion')}
SELECTORS = {'sample': dict(type='SampleSelector'), 'topk': dict(type='TopKSelector'),
             'threshold': dict(type='ThresholdSelector')}


def gattn_cfg(backbone, channels, n=2, fusion='concat', selector='sample', classes=3,
              instance_head=None, global_head=None, **extra):
    cfg = dict(
        type='GatedAttentionClassifier', backbone=backbone, global_size=64,
        neck=dict(type='GatedAttentionNeck', in_channels=channels, hidden_channels=16),
        sampler=dict(type='InstanceSampler', num_instances=n, crop_size=32,
                     selector=SELECTORS[selector],
                     test_cfg=dict(selector=dict(type='TopKSelector'))),
        head=dict(type='FusionHead', num_classes=classes, in_channels=channels,
                  fusion=FUSIONS[fusion](n)), **extra)
    if instance_head:
        cfg['instance_head'] = dict(type='InstanceHead', num_classes=classes,
                                    in_channels=channels, **instance_head)
    if global_head:
        cfg['global_head'] = dict(type='LinearClsHead', num_classes=classes,
                                  in_channels=channels, **global_head)
    return cfg


def small(n=2, **kwargs):
    return gattn_cfg(dict(type='ResNet', depth=18, base_channels=8), 64, n=n, **kwargs)


def samples(*labels):
    return [DataSample().set_gt_label(v) for v in labels]


@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbones_loss_and_predict(name):
    """The paper's layout (concat fusion, auxiliary global and instance losses) on
    any backbone."""
    if name.startswith('timm'):
        pytest.importorskip('timm')
    backbone, channels = BACKBONES[name]
    aux = dict(loss=dict(type='CrossEntropyLoss', loss_weight=0.5))
    model = MODELS.build(gattn_cfg(copy.deepcopy(backbone), channels, instance_head=aux,
                                   global_head=aux))
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
    with pytest.raises(ValueError, match=r'model.neck.in_channels=256 .*gives 512 channels'):
        MODELS.build(gattn_cfg(dict(type='ResNet', depth=18), 256))
    cfg = gattn_cfg(dict(type='ResNet', depth=18), 512)
    cfg['head']['in_channels'] = 128
    with pytest.raises(ValueError, match=r'model.head.in_channels=128 .*set model.head.in'):
        MODELS.build(cfg)


def test_vector_backbone_is_refused_clearly():
    with pytest.raises(ValueError, match='gap_before_final_norm=False'):
        MODELS.build(gattn_cfg(dict(type='ConvNeXt', arch='atto'), 320))


def test_wrong_reader_channels():
    cfg = gattn_cfg(dict(type='ResNet', depth=18), 512, instance_head=dict(
        loss=dict(type='CrossEntropyLoss')))
    cfg['instance_head']['in_channels'] = 128
    cfg['head']['instance_channels'] = 64
    with pytest.raises(ValueError, match=r'instance_channels=64 does not match the backbone '
                       r'ResNet \(the reader of the crops too\), which gives 512 channels; set '
                       r'model.head.instance_channels=512; model.instance_head.in_channels=128'):
        MODELS.build(cfg)


def test_separate_reader():
    cfg = small(instance_head=dict(loss=dict(type='CrossEntropyLoss')))
    cfg['reader'] = dict(type='MobileNetV3', arch='small', out_indices=(0,))
    cfg['head']['instance_channels'] = 16
    cfg['instance_head']['in_channels'] = 16
    model = MODELS.build(cfg)
    assert model.reader_module is model.reader
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize('fusion', list(FUSIONS))
@pytest.mark.parametrize('selector', list(SELECTORS))
def test_gradients_reach_attention(fusion, selector):
    torch.manual_seed(0)
    model = MODELS.build(small(3, fusion=fusion, selector=selector, instance_head=dict(
        loss=dict(type='CrossEntropyLoss'))))
    model.init_weights()
    losses = model(torch.rand(2, 3, 96, 96), samples(1, 2), mode='loss')
    sum(losses.values()).backward()
    neck = model.neck
    for p in (neck.attention_V.weight, neck.attention_U.weight, neck.attention_w.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_attention_fusion_trains_attention_through_the_instances():
    """With AttentionFusion the instance path alone carries gradient to the attention."""
    torch.manual_seed(0)
    model = MODELS.build(small(3, fusion='attention'))
    model.init_weights()
    state = model.forward_state(torch.rand(2, 3, 96, 96))
    state.global_feat = state.global_feat.detach()
    model.head(state).sum().backward()
    assert model.neck.attention_w.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('name,width', [('concat', 4 + 3 * 6), ('attention', 10), ('mean', 10)])
def test_fusions_state_their_width_and_compute_it(name, width):
    fusion = MODELS.build(FUSIONS[name](3))
    g, inst, w = torch.rand(2, 4), torch.rand(2, 3, 6), torch.rand(2, 3).softmax(1)
    out = fusion(g, inst, w)
    assert fusion.out_channels(4, 6) == width == out.size(1)
    assert torch.equal(out[:, :4], g)
    expected = {'concat': inst.flatten(1), 'attention': (w[..., None] * inst).sum(1),
                'mean': inst.mean(1)}[name]
    assert torch.allclose(out[:, 4:], expected, atol=1e-6)


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
    model = MODELS.build(small())
    model.eval()
    ds = samples(0)
    ds[0].set_metainfo(dict(scale_factor=(0.5, 0.25)))
    with torch.no_grad():
        p = model(torch.rand(1, 3, 64, 64), ds, mode='predict')[0]
    assert torch.allclose(p.ori_boxes, p.boxes * torch.tensor([2., 4., 2., 4.]))


def test_extract_feat_stages():
    model = MODELS.build(small(fusion='mean'))
    x = torch.rand(2, 3, 64, 64)
    assert model.extract_feat(x, stage='backbone')[-1].shape == (2, 64, 2, 2)
    attn, g = model.extract_feat(x, stage='neck')
    assert attn.shape == (2, 2, 2) and g.shape == (2, 64)
    state = model.extract_feat(x, stage='state')
    assert state.crops.shape == (4, 3, 32, 32) and state.num_instances == 2
    assert model.extract_feat(x, stage='pre_logits').shape == (2, 128)
    with pytest.raises(ValueError, match='stage'):
        model.extract_feat(x, stage='nope')


def test_mil_loss_values():
    from gattn_mm.models import MILLoss
    logits = torch.randn(2, 3, 2)
    logp = logits.log_softmax(-1)
    # image 0 negative: every instance is a negative; image 1 positive: its best instance
    expected = -(logp[0, :, 0].mean() + logp[1, :, 1].max()) / 2
    assert torch.allclose(MILLoss(positive='max')(logits, torch.tensor([0, 1]), 0),
                          expected, atol=1e-6)
    soft = -(logp[0, :, 0].mean() + (logp[1, :, 1].exp().mean()).log()) / 2
    assert torch.allclose(MILLoss(positive='mean')(logits, torch.tensor([0, 1]), 0), soft,
                          atol=1e-6)
    # noisy-OR (the default): P(positive) = 1 - prod_n (1 - p_n(1)), in float64
    p1 = logp[1, :, 1].double().exp()
    noisy_or = -(logp[0, :, 0].double().mean() + torch.log(1 - torch.prod(1 - p1))) / 2
    assert torch.allclose(MILLoss()(logits, torch.tensor([0, 1]), 0).double(), noisy_or,
                          atol=1e-5)
    # no negative class: every image by the soft rule (the positive rule is for
    # presence), weighted
    plain = -((logp[0, :, 0].exp().mean()).log() + (logp[1, :, 1].exp().mean()).log()) / 2
    for rule in MILLoss.RULES:
        assert torch.allclose(MILLoss(rule, loss_weight=2.)(logits, torch.tensor([0, 1])),
                              2 * plain, atol=1e-6)
    with pytest.raises(ValueError, match="MILLoss.positive must be one of.*'first'"):
        MILLoss('first')
    # without_negative=None: presence tasks only; no loss and no gradient otherwise
    presence_only = MILLoss(without_negative=None)
    assert torch.allclose(presence_only(logits, torch.tensor([0, 1]), 0), noisy_or.float(),
                          atol=1e-5)
    grad_of = logits.clone().requires_grad_()
    zero = presence_only(grad_of, torch.tensor([0, 1]))
    zero.backward()
    assert zero.item() == 0 and (grad_of.grad == 0).all()
    with pytest.raises(ValueError, match="without_negative must be 'mean' or None"):
        MILLoss(without_negative='max')


def test_mil_loss_bag_negatives_do_not_reward_a_reader_that_tells_nothing_apart():
    """negative='bag': an absent image's loss is -log P(no instance positive), the
    complement of noisy-OR. Every instance of every image at one probability q of
    the class: 'dense' scores it far below chance (log 2), 'bag' never below it;
    a reader that finds the one positive instance scores below both."""
    from gattn_mm.models import MILLoss
    n, targets = 32, torch.tensor([0, 1])
    logits = torch.randn(2, n, 2)
    logp = logits.log_softmax(-1).double()
    bag = -(logp[0, :, 0].sum() + torch.log(1 - torch.prod(1 - logp[1, :, 1].exp()))) / 2
    assert torch.allclose(MILLoss(negative='bag')(logits, targets, 0).double(), bag,
                          atol=1e-5)
    def constant(q):  # logits of probability q of class 1 for every instance
        return torch.full((2, n, 2), 0.).index_fill_(2, torch.tensor([1]),
                                                     math.log(q / (1 - q)))
    dense_min = min(MILLoss()(constant(q), targets, 0).item() for q in (0.03, 0.07, 0.1))
    assert dense_min < 0.1 < math.log(2)
    for q in (0.005, 0.01, 0.02, 0.05, 0.1, 0.3):
        assert MILLoss(negative='bag')(constant(q), targets, 0).item() >= math.log(2) - 1e-4
    found = constant(0.01)
    found[1, 5, 1] = 5.  # the positive image's one marker instance found
    assert MILLoss(negative='bag')(found, targets, 0).item() < 0.2
    with pytest.raises(ValueError, match="MILLoss.negative must be 'dense' or 'bag'"):
        MILLoss(negative='all')


def test_mil_loss_noisy_or_gradient_is_shared_and_finite():
    """Noisy-OR gives every instance of a positive image a gradient towards the
    class (max gives it to one); certain and hopeless instances stay finite."""
    from gattn_mm.models import MILLoss
    logits = torch.randn(1, 5, 2, requires_grad=True)
    MILLoss()(logits, torch.tensor([1]), 0).backward()
    assert (logits.grad[0, :, 1] < 0).all()  # each instance pushed towards class 1
    logits = torch.randn(1, 5, 2, requires_grad=True)
    MILLoss('max')(logits, torch.tensor([1]), 0).backward()
    assert (logits.grad[0, :, 1] != 0).sum() == 1
    for extreme in (60., -60.):  # p -> 1 and p -> 0 in float32
        logits = torch.tensor([[[0., extreme]] * 4], requires_grad=True)
        loss = MILLoss()(logits, torch.tensor([1]), 0)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_instance_head_soft_labels_are_refused_hard_ones_accepted():
    from gattn_mm.models.heads.instance_head import mil_targets
    one_hot = [DataSample().set_gt_score(torch.tensor([0., 1.])),
               DataSample().set_gt_score(torch.tensor([1., 0.]))]
    assert mil_targets(one_hot, 2).tolist() == [[0, 1], [1, 0]]
    multi = [DataSample().set_gt_label([0, 2]), DataSample().set_gt_label(1)]
    assert mil_targets(multi, 3).tolist() == [[1, 0, 1], [0, 1, 0]]
    mixed = [DataSample().set_gt_score(torch.tensor([0.3, 0.7]))] * 2
    with pytest.raises(ValueError, match='mil_loss needs whole classes per image.*Mixup'):
        mil_targets(mixed, 2)


def test_mil_loss_multi_label_each_present_class_is_carried():
    from gattn_mm.models import MILLoss
    logits = torch.randn(2, 4, 3)
    logp = logits.log_softmax(-1)
    targets = torch.tensor([[1, 0, 1], [0, 1, 0]])
    soft = lambda b, k: (logp[b, :, k].exp().mean()).log()  # noqa: E731
    expected = -((soft(0, 0) + soft(0, 2)) / 2 + soft(1, 1)) / 2
    torch.testing.assert_close(MILLoss()(logits, targets), expected)
    # class indices and their one-hot give the same loss, bit for bit
    assert torch.equal(MILLoss()(logits, torch.tensor([2, 1]), 0),
                       MILLoss()(logits, torch.tensor([[0, 0, 1], [0, 1, 0]]), 0))


def test_predict_from_instance_head_with_max_pooling():
    cfg = small(3, fusion='attention', predict_from='instance_head',
                instance_head=dict(pool='max', mil_loss=dict(type='MILLoss')))
    model = MODELS.build(cfg)
    losses = model(torch.rand(2, 3, 96, 96), samples(0, 1), mode='loss')
    assert set(losses) == {'loss', 'loss_instance'}
    model.eval()
    with torch.no_grad():
        x = torch.rand(2, 3, 96, 96)
        state = model.forward_state(x)
        logits = model(x)
        preds = model(x, samples(0, 1), mode='predict')
    per_instance = state.instance_logits  # (B, N, K)
    # max pooling with a negative class: the image takes the logits of its instance
    # with the most evidence against class 0 (positive iff one instance is)
    evidence = torch.stack([per_instance[..., 1], per_instance[..., 2]], -1).logsumexp(-1) \
        - per_instance[..., 0]
    assert torch.allclose(state.evidence, evidence, atol=1e-6)
    best = evidence.argmax(dim=1)
    assert torch.allclose(logits, per_instance[torch.arange(2), best])
    assert torch.allclose(preds[0].instance_evidence, evidence[0])
    model.instance_head.negative_class = None  # no absent class: each class's own maximum
    assert torch.allclose(model.instance_head.pooled(per_instance, state.weights),
                          per_instance.max(dim=1).values)


def test_gated_pooling_is_attention_mil_over_the_instances():
    """pool='gated': the image logits are the instance logits weighted by a learned
    gated attention over the instance features (not the sampler's weights); its
    loss trains the gate, the reader and the glance's attention; the evidence is the
    log of the pooling weights."""
    cfg = small(3, fusion='attention', predict_from='instance_head',
                instance_head=dict(pool='gated', negative_class=None,
                                   loss=dict(type='CrossEntropyLoss'), mil_loss=None))
    model = MODELS.build(cfg)
    x = torch.rand(2, 3, 96, 96)
    losses = model(x, samples(0, 2), mode='loss')
    assert set(losses) == {'loss', 'loss_local'}
    losses['loss_local'].backward()
    head = model.instance_head
    for p in (head.gate.attention_V.weight, head.fc.weight,
              model.backbone.conv1.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        state = model.forward_state(x)
        logits = model(x)
    gate = head.gate
    a = torch.tanh(gate.attention_V(state.instance_feats)) * \
        torch.sigmoid(gate.attention_U(state.instance_feats))
    w = gate.attention_w(a)[..., 0].softmax(dim=1)  # (B, N): the sampler's do not enter
    torch.testing.assert_close(logits, (w[..., None] * state.instance_logits).sum(1))
    torch.testing.assert_close(state.evidence, w.log())
    # deciding: the fewest instances carrying half the pooled probability of the class
    with torch.no_grad():
        preds = model(x, samples(0, 2), mode='predict')
    for b, pred in enumerate(preds):
        share = w[b] * state.instance_logits[b].softmax(-1)[:, pred.pred_label].sum(-1)
        top = share.sort(descending=True).values.cumsum(0)
        m = int((top < share.sum() / 2).sum()) + 1
        assert len(pred.deciding_instances) == m
        assert share[pred.deciding_instances].min() >= share.sort(descending=True).values[m - 1]
    with pytest.raises(ValueError, match="pool='gated' learns its pooling from loss"):
        MODELS.build(dict(type='InstanceHead', num_classes=3, in_channels=8, pool='gated',
                          mil_loss=dict(type='MILLoss')))


def test_predict_from_several_heads_averages_their_probabilities():
    """predict_from=(instance_head, head): the image's class probabilities are the
    mean of the two heads' (the fused head takes part in the decision)."""
    cfg = small(3, predict_from=('instance_head', 'head'),
                instance_head=dict(pool='mil', mil_loss=dict(type='MILLoss')))
    model = MODELS.build(cfg)
    x = torch.rand(2, 3, 96, 96)
    losses = model(x, samples(0, 1), mode='loss')
    assert {'loss', 'loss_instance'} <= set(losses)
    model.eval()
    with torch.no_grad():
        state = model.forward_state(x)
        expected = (model.instance_head.pooled(state.instance_logits, state.weights)
                    .softmax(-1) + model.head(state).softmax(-1)) / 2
        preds = model(x, samples(0, 1), mode='predict')
        logits = model(x)
    torch.testing.assert_close(logits.softmax(-1), expected)
    torch.testing.assert_close(torch.stack([p.pred_score for p in preds]), expected)
    assert [int(p.pred_label) for p in preds] == expected.argmax(-1).tolist()
    assert preds[0].boxes.shape == (3, 4) and 'instance_evidence' in preds[0]


def test_predict_from_several_heads_is_checked():
    with pytest.raises(ValueError, match=r"predict_from=\('instance_head', 'head'\) .*no "
                                         r"model.instance_head"):
        MODELS.build(small(predict_from=('instance_head', 'head')))
    with pytest.raises(ValueError, match='each once'):
        MODELS.build(small(predict_from=('head', 'head')))
    multi = small(3, predict_from=('instance_head', 'head'),
                  instance_head=dict(pool='mil', mil_loss=dict(type='MILLoss')))
    multi['head']['type'] = 'MultiLabelFusionHead'
    with pytest.raises(ValueError, match='model.head is multi-label'):
        MODELS.build(multi)


def test_global_head_can_predict():
    model = MODELS.build(small(global_head=dict(loss=dict(type='CrossEntropyLoss')),
                               predict_from='global_head'))
    model.eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        _, g = model.extract_feat(x, stage='neck')
        assert torch.allclose(model(x), model.global_head((g,)), atol=1e-6)


def test_contrast_prior_points_at_the_textured_cell_and_trains_the_attention():
    cfg = small(attention_losses=[dict(type='ContrastPriorLoss', temperature=0.5)])
    model = MODELS.build(cfg)
    prior_loss = model.attention_losses[0]
    x = torch.full((1, 3, 128, 128), 0.5)
    x[0, :, 70:90, 10:30] = torch.rand(3, 20, 20)  # structure in cell (2, 0) of a 4x4 grid
    prior = prior_loss.prior(x, (4, 4))
    assert prior.shape == (1, 16) and int(prior.argmax()) == 2 * 4 + 0
    losses = model(x, samples(1), mode='loss')
    assert losses['loss_prior'] > 0
    losses['loss_prior'].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.neck.parameters())
    # the attention that follows the prior pays no KL
    state = model.forward_state(x)
    state.attention = (prior / 0.5).softmax(1).view(1, 4, 4)
    assert float(prior_loss(state)) == pytest.approx(0, abs=1e-5)


def test_contrast_reads_a_subsample_of_large_cells():
    torch.manual_seed(0)
    x = torch.full((2, 3, 1024, 1024), 0.5) + 0.05 * torch.randn(2, 3, 1024, 1024)
    x[0, :, 600:700, 100:200] = torch.rand(3, 100, 100)  # cell (2, 0) of a 4x4 grid
    x[1, :, 0:256, 800:1000] = torch.rand(3, 256, 200)  # cell (0, 3)
    prior = zscore(gray_std(x, (4, 4)))  # 256 px cells: every 8th pixel is read
    gray = x.mean(1)
    cells = gray.unflatten(1, (4, 256)).unflatten(3, (4, 256)).transpose(2, 3).flatten(3)
    full = zscore(cells.std(-1, unbiased=False).flatten(1))  # every pixel
    assert prior.argmax(1).tolist() == [8, 3] == full.argmax(1).tolist()
    top = prior.max(1).values
    assert torch.allclose(top, full.max(1).values, atol=0.1) and (top > 3).all()
    others = prior.scatter(1, prior.argmax(1, keepdim=True), -9.)
    assert (others < 0).all()  # the background cells stay below the mean
    # cells of fewer than 2 x 32 pixels are read whole
    small_x = x[:, :, :128, :128]
    g = small_x.mean(1, keepdim=True)
    m, sq = F.adaptive_avg_pool2d(g, 4), F.adaptive_avg_pool2d(g * g, 4)
    assert torch.allclose(gray_std(small_x, (4, 4)), (sq - m * m).clamp_min(0).sqrt().flatten(1),
                          atol=1e-5)


@pytest.mark.parametrize('with_contrast', [False, True])
def test_evidence_distill_loss_matches_its_definition(with_contrast):
    cfg = small(3, fusion='attention', instance_head=dict(mil_loss=dict(type='MILLoss')),
                attention_losses=[dict(type='EvidenceDistillLoss', temperature=0.5,
                                       with_contrast=with_contrast, loss_weight=2.)])
    model = MODELS.build(cfg)
    state = model.forward_state(torch.rand(2, 3, 96, 96))
    teacher = state.evidence.detach()
    if with_contrast:
        crop_std = state.crops.mean(1).flatten(1).std(1, unbiased=False).view(2, 3)
        teacher = zscore(teacher) + zscore(crop_std)
    target = (teacher / 0.5).softmax(1)
    q = state.scores / state.scores.sum(1, keepdim=True)
    expected = 2 * (target * (target.log() - q.log())).sum(1).mean()
    loss = model.attention_losses[0](state)
    assert torch.allclose(loss, expected, rtol=1e-3)
    loss.backward()
    assert model.neck.attention_w.weight.grad.abs().sum() > 0


def test_attention_entropy_loss_value():
    model = MODELS.build(small(attention_losses=[dict(type='AttentionEntropyLoss',
                                                      loss_weight=0.1)]))
    state = model.forward_state(torch.rand(2, 3, 64, 64))
    a = state.attention.flatten(1)
    entropy = -(a * a.log()).sum(1).mean()
    assert torch.allclose(model.attention_losses[0](state), -0.1 * entropy, atol=1e-6)
    uniform = torch.full_like(state.attention, 1 / a.size(1))
    state.attention = uniform  # the most spread attention pays the least
    with torch.no_grad():
        assert float(model.attention_losses[0](state)) < float(-0.1 * entropy) + 1e-6


@pytest.mark.parametrize('size,out', [((64, 96), (8, 12)), ((60, 90), (8, 12)),
                                      ((64, 64), (64, 64))])
def test_area_resize_is_adaptive_average_pooling(size, out):
    x = torch.rand(2, 3, *size)
    assert torch.allclose(area_resize(x, out), F.adaptive_avg_pool2d(x, out), atol=1e-6)


@pytest.mark.parametrize('detach', [False, True])
def test_detach_instances_keeps_the_fused_loss_off_the_reader(detach):
    from gattn_mm.models import GattnState
    head = MODELS.build(dict(type='FusionHead', num_classes=2, in_channels=4,
                             instance_channels=6, detach_instances=detach))
    g = torch.rand(2, 4, requires_grad=True)
    inst = torch.rand(2, 3, 6, requires_grad=True)
    weights = torch.rand(2, 3).softmax(1).requires_grad_()
    z = torch.zeros(1)
    state = GattnState(inputs=z, attention=z, global_feat=g, boxes=torch.zeros(2, 3, 4),
                       scores=weights, weights=weights, crops=z, instance_feats=inst)
    head.loss(state, samples(0, 1))['loss'].backward()
    assert g.grad.abs().sum() > 0 and weights.grad.abs().sum() > 0
    assert (inst.grad is None) == detach


def test_test_views_average_the_reader_features():
    """Outside training, the instance features are the mean of the reader's features
    over the views; boxes and crops in the state are those of view 0."""
    backbone, channels = BACKBONES['resnet18']
    cfg = gattn_cfg(copy.deepcopy(backbone), channels, n=3, fusion='mean')
    cfg['sampler']['test_cfg']['views'] = [(0.1, 0), (0, -0.1)]
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.eval()
    x = torch.rand(2, 3, 128, 96)
    with torch.no_grad():
        state = model.extract_feat(x, stage='state')
        views = model.sampler.view_boxes(state.boxes, (128, 96))  # (2, 3, 3, 4)
        plain = MODELS.build(dict(type='InstanceSampler', crop_size=32))  # one view
        plain.eval()
        feats = [pool_feature(model.reader_module(plain.crop(x, views[:, :, k]))).view(2, 3, -1)
                 for k in range(3)]
        assert torch.allclose(state.instance_feats, torch.stack(feats).mean(0), atol=1e-5)
        assert state.crops.shape == (6, 3, 32, 32)
        model.train()
        assert model.extract_feat(x, stage='state').crops.shape == (6, 3, 32, 32)


# ------------------------------------------------------------ build-time rules
def test_unknown_train_cfg_key_is_named():
    with pytest.raises(ValueError, match=r"model.train_cfg has unknown keys \['prior_wieght'\]"):
        MODELS.build(small(train_cfg=dict(prior_wieght=1.0)))


def test_concat_fusion_needs_the_same_n_at_test_time():
    cfg = small(2, fusion='concat')
    cfg['sampler']['test_cfg']['num_instances'] = 4
    with pytest.raises(ValueError, match=r'model.head.fusion.num_instances=2 .*'
                                         r'model.sampler.test_cfg.num_instances=4'):
        MODELS.build(cfg)
    cfg = small(2, fusion='concat')
    cfg['head']['fusion']['num_instances'] = 3
    with pytest.raises(ValueError, match=r'model.sampler.num_instances=2'):
        MODELS.build(cfg)


def test_distillation_needs_an_instance_head():
    losses = [dict(type='EvidenceDistillLoss')]
    with pytest.raises(ValueError, match=r'attention_losses\[0\] \(EvidenceDistillLoss\).*'
                                         r'model.instance_head'):
        MODELS.build(small(attention_losses=losses))


def test_evidence_without_a_negative_class_is_the_top_log_probability():
    model = MODELS.build(small(attention_losses=[dict(type='EvidenceDistillLoss')],
                               instance_head=dict(negative_class=None,
                                                  mil_loss=dict(type='MILLoss'))))
    logits = torch.tensor([[[5.0, 0.0], [0.0, 0.0], [-1.0, 3.0]]])  # (1, 3, 2)
    evidence = model.instance_head.evidence(logits)
    expected = logits.log_softmax(-1).max(-1).values
    torch.testing.assert_close(evidence, expected)
    assert evidence[0, 1] < evidence[0, 2] < evidence[0, 0]  # unsure < sure
    state = model.forward_state(torch.rand(2, 3, 64, 64))
    assert state.evidence.shape == (2, model.sampler.train_num_instances)
    losses = model.loss(torch.rand(2, 3, 64, 64), [
        DataSample().set_gt_label(i) for i in (0, 1)])
    assert torch.isfinite(losses['loss_distill'])


def test_predict_from_a_missing_head():
    with pytest.raises(ValueError, match=r"predict_from='instance_head' .*no model.instance_"):
        MODELS.build(small(predict_from='instance_head'))
    with pytest.raises(ValueError, match='predict_from must be one of'):
        MODELS.build(small(predict_from='local'))


def test_heads_must_agree_on_the_classes():
    cfg = small(instance_head=dict(loss=dict(type='CrossEntropyLoss')))
    cfg['instance_head']['num_classes'] = 5
    with pytest.raises(ValueError, match=r"model.head.num_classes': 3.*"
                                         r"model.instance_head.num_classes': 5"):
        MODELS.build(cfg)


def test_mil_loss_with_batch_mixing_is_refused():
    cfg = small(instance_head=dict(mil_loss=dict(type='MILLoss')),
                train_cfg=dict(augments=dict(type='Mixup', alpha=0.8)))
    with pytest.raises(ValueError, match='train_cfg batch augments .*mil_loss'):
        MODELS.build(cfg)
    # without the MIL loss, batch augments reach the data preprocessor, as in mmpretrain
    model = MODELS.build(small(train_cfg=dict(augments=dict(type='Mixup', alpha=0.8))))
    assert model.data_preprocessor.batch_augments is not None


def test_instance_head_that_never_learns_and_clashing_loss_names():
    with pytest.raises(ValueError, match='instance_head needs loss .* or mil_loss'):
        MODELS.build(small(instance_head=dict(pool='mean')))
    with pytest.raises(ValueError, match='negative_class=4 is not a class'):
        MODELS.build(small(instance_head=dict(negative_class=4, mil_loss=dict(type='MILLoss'))))
    with pytest.raises(ValueError, match=r"loss_name='loss_global' is already used"):
        MODELS.build(small(attention_losses=[dict(type='AttentionEntropyLoss',
                                                  loss_name='loss_global')]))
    with pytest.raises(TypeError, match=r'attention_losses\[0\] \(MILLoss\) is not an attention'):
        MODELS.build(small(attention_losses=[dict(type='MILLoss')]))
    with pytest.raises(ValueError, match='must start with "loss"'):
        MODELS.build(small(attention_losses=[dict(type='AttentionEntropyLoss',
                                                  loss_name='entropy')]))


def test_a_legacy_checkpoint_is_refused_with_the_upgrade_command(tmp_path):
    """0.1 names (local_backbone.*, head.fc_local.*) would load non-strictly and leave
    the reader random: refused, the upgrade tool named; the tool's output loads."""
    from mmengine.runner import load_checkpoint

    from tools.model_converters.upgrade_gattn_checkpoint import main as upgrade
    cfg = small(instance_head=dict(mil_loss=dict(type='MILLoss')))
    cfg['reader'] = dict(type='ResNet', depth=18, base_channels=8)
    model = MODELS.build(cfg)
    state = {k.replace('reader.', 'local_backbone.').replace('instance_head.fc.',
                                                              'head.fc_local.'): v
             for k, v in model.state_dict().items()}
    old = tmp_path / 'old.pth'
    torch.save({'state_dict': state, 'meta': {'cfg': 'old'}}, old)
    fresh = MODELS.build(cfg)
    with pytest.raises(ValueError, match='upgrade_gattn_checkpoint.py'):
        load_checkpoint(fresh, str(old), map_location='cpu', logger='silent')
    assert upgrade([str(old), str(tmp_path / 'new.pth')]) == 0
    load_checkpoint(fresh, str(tmp_path / 'new.pth'), map_location='cpu', logger='silent')
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k
    meta = torch.load(tmp_path / 'new.pth', weights_only=True)['meta']
    assert 'cfg' not in meta and meta['upgraded_from'] == 'gattn-mm 0.1'
    assert upgrade([str(tmp_path / 'new.pth'), str(tmp_path / 'again.pth')]) == 1


def test_glance_larger_than_the_input_is_refused():
    model = MODELS.build(small())
    with pytest.raises(ValueError, match=r'global_size=\(64, 64\) is larger than the input '
                                         r'\(48, 96\)'):
        model(torch.rand(1, 3, 48, 96))


def test_reviewed_edge_cases():
    """One instance, a low-precision attention, more draws than cells."""
    from gattn_mm.models import SampleSelector, ThresholdSelector
    assert torch.equal(zscore(torch.tensor([[3.]])), torch.zeros(1, 1))  # not NaN
    model = MODELS.build(small(1, fusion='attention', predict_from='instance_head',
                               instance_head=dict(pool='max', mil_loss=dict(type='MILLoss')),
                               attention_losses=[dict(type='EvidenceDistillLoss',
                                                      with_contrast=True)]))
    losses = model(torch.rand(2, 3, 64, 64), samples(0, 1), mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    attn = torch.rand(2, 4, 4).flatten(1).softmax(1).view(2, 4, 4)
    sel = ThresholdSelector()(attn.bfloat16(), 3)  # bf16 autocast on the CPU keeps bf16
    assert sel.scores.dtype == torch.float32 and sel.centres.shape == (2, 3, 2)
    sel = SampleSelector()(attn[:, :2, :2] / attn[:, :2, :2].sum((1, 2), keepdim=True), 6)
    assert (sel.weights >= 0).all() and torch.allclose(sel.weights.sum(1), torch.ones(2))


def test_gated_instance_fusion_learns_which_instances_decide():
    head = MODELS.build(dict(type='FusionHead', num_classes=3, in_channels=4,
                             instance_channels=6, fusion=dict(type='GatedInstanceFusion',
                                                              hidden_channels=5)))
    fusion = head.fusion  # FusionHead gave it C' = 6
    assert fusion.attention_V.in_features == 6 and fusion.out_channels(4, 6) == 10
    g, inst = torch.rand(2, 4), torch.rand(2, 3, 6)
    w = torch.rand(2, 3).softmax(1).requires_grad_()
    with torch.no_grad():  # no learned preference: the sampler's weights
        fusion.attention_w.weight.zero_()
    torch.testing.assert_close(fusion.instance_weights(inst, w), w.detach())
    out = fusion(g, inst, w)
    assert torch.equal(out[:, :4], g)
    torch.testing.assert_close(out[:, 4:], (w[..., None] * inst).sum(1))
    with torch.no_grad():  # a learned preference moves the weights off the sampler's
        fusion.attention_w.weight.normal_()
    a = fusion.instance_weights(inst, w)
    torch.testing.assert_close(a.sum(1), torch.ones(2))
    assert not torch.allclose(a, w.detach())
    fusion(g, inst, w).sum().backward()
    assert w.grad.abs().sum() > 0  # the loss reaches the glance's attention


def test_fixed_attention_ablation_replaces_only_the_attention():
    from gattn_mm.models import FixedAttentionClassifier
    cfg = small(instance_head=dict(negative_class=None, mil_loss=dict(type='MILLoss')))
    gattn = MODELS.build(cfg)
    fixed = MODELS.build(dict(cfg, type='FixedAttentionClassifier', attention='contrast',
                              temperature=0.5))
    fixed.load_state_dict(gattn.state_dict())  # a gattn checkpoint fits
    x = torch.rand(2, 3, 64, 64)
    x[0, :, :16, 16:32] = torch.rand(3, 16, 16) * 4  # one cell of high contrast
    attention, global_feat = fixed.attend(x)
    h, w = attention.shape[-2:]
    expected = (zscore(gray_std(x, (h, w))) / 0.5).softmax(1).view(2, h, w)
    torch.testing.assert_close(attention, expected)
    torch.testing.assert_close(global_feat, gattn.attend(x)[1])
    rand = MODELS.build(dict(cfg, type='FixedAttentionClassifier', attention='random'))
    a1, a2 = rand.attend(x)[0], rand.attend(x)[0]
    torch.testing.assert_close(a1.sum((1, 2)), torch.ones(2))
    assert not torch.equal(a1, a2)
    with pytest.raises(ValueError, match="attention must be one of"):
        FixedAttentionClassifier(attention='prior', **{k: v for k, v in cfg.items()
                                                       if k != 'type'})


def test_multi_label_fusion_head_trains_and_predicts_class_sets():
    cfg = small(2, fusion='attention', classes=3,
                instance_head=dict(negative_class=None, mil_loss=dict(type='MILLoss')))
    cfg['head']['type'] = 'MultiLabelFusionHead'
    model = MODELS.build(cfg)
    labels = [DataSample().set_gt_label([0, 2]), DataSample().set_gt_label([1])]
    losses = model(torch.rand(2, 3, 96, 96), labels, mode='loss')
    fused = model.head(model.forward_state(torch.rand(2, 3, 96, 96)))
    assert torch.isfinite(losses['loss']) and torch.isfinite(losses['loss_instance'])
    sum(losses.values()).backward()
    model.eval()
    with torch.no_grad():
        state = model.forward_state(torch.rand(2, 3, 96, 96))
        preds = model.head.predict(state)
        scores = torch.sigmoid(model.head(state))
    for pred, score in zip(preds, scores):
        torch.testing.assert_close(pred.pred_score, score)
        assert pred.pred_label.tolist() == torch.where(score >= 0.5)[0].tolist()
    assert fused.shape == (2, 3)


def test_instance_head_mil_pool_follows_the_label_set():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [1.0, 0.5]]])  # (1, 3, 2)
    presence = MODELS.build(dict(type='InstanceHead', num_classes=2, in_channels=4,
                                 pool='mil', negative_class=0, mil_loss=dict(type='MILLoss')))
    vote = MODELS.build(dict(type='InstanceHead', num_classes=2, in_channels=4, pool='mil',
                             negative_class=None, mil_loss=dict(type='MILLoss')))
    w = torch.full((1, 3), 1 / 3)
    assert torch.equal(presence.pooled(logits, w), logits[:, 1])  # the positive instance
    torch.testing.assert_close(vote.pooled(logits, w), logits.mean(1))


def test_data_preprocessor_follows_the_heads_classes():
    # the class count is set once, in the heads (e.g. --cfg-options on the Fungi config)
    model = MODELS.build(small())
    assert model.data_preprocessor.num_classes == model.head.num_classes == 3
    with pytest.raises(ValueError, match=r'model.data_preprocessor.num_classes=4 but '
                                         r'model.head.num_classes=3'):
        MODELS.build(small(data_preprocessor=dict(num_classes=4)))


@pytest.mark.parametrize('pool', ['attention', 'mean', 'max', 'lse', 'mil'])
def test_every_instance_pool_matches_its_definition(pool):
    logits = torch.tensor([[[2.0, 0.0, 1.0], [0.0, 3.0, -1.0], [1.0, 0.5, 0.0]]])
    w = torch.tensor([[0.5, 0.3, 0.2]])
    head = MODELS.build(dict(type='InstanceHead', num_classes=3, in_channels=4, pool=pool,
                             negative_class=None, mil_loss=dict(type='MILLoss')))
    expected = {'attention': (w[..., None] * logits).sum(1), 'mean': logits.mean(1),
                'max': logits.max(1).values, 'mil': logits.mean(1),
                'lse': torch.log(logits.exp().mean(1))}[pool]
    torch.testing.assert_close(head.pooled(logits, w), expected)


def test_deciding_instances_follow_the_label_set():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 3.0, -1.0], [1.0, 0.5, 0.0],
                           [0.0, 4.0, 0.0]])  # instances read classes 0, 1, 0, 1
    presence = MODELS.build(dict(type='InstanceHead', num_classes=3, in_channels=4,
                                 pool='mil', negative_class=0, mil_loss=dict(type='MILLoss')))
    vote = MODELS.build(dict(type='InstanceHead', num_classes=3, in_channels=4, pool='mil',
                             negative_class=None, mil_loss=dict(type='MILLoss')))
    # presence: the one instance of most evidence against class 0, whatever is predicted
    assert presence.deciding(logits, torch.tensor([1])).tolist() == [3]
    assert presence.deciding(logits, torch.tensor([0])).tolist() == [3]
    # a vote: the instances of the predicted class(es); none when no instance reads it
    assert vote.deciding(logits, torch.tensor([1])).tolist() == [1, 3]
    assert vote.deciding(logits, torch.tensor([0])).tolist() == [0, 2]
    assert vote.deciding(logits, torch.tensor([0, 1])).tolist() == [0, 1, 2, 3]
    assert vote.deciding(logits, torch.tensor([2])).tolist() == []


def test_predictions_say_what_each_instance_reads_and_which_decided():
    cfg = small(3, fusion='attention', classes=4, predict_from=('instance_head', 'head'),
                instance_head=dict(pool='mil', negative_class=None,
                                   mil_loss=dict(type='MILLoss')))
    cfg['head']['fusion'] = dict(type='GatedInstanceFusion')
    model = MODELS.build(cfg).eval()
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        state = model.forward_state(x)
        preds = model(x, samples(0, 1), mode='predict')
    for i, pred in enumerate(preds):
        probs = state.instance_logits[i].softmax(-1)
        torch.testing.assert_close(pred.instance_probs, probs)
        assert pred.instance_labels.tolist() == probs.argmax(-1).tolist()
        voted = [n for n, c in enumerate(probs.argmax(-1).tolist())
                 if c == int(pred.pred_label)]
        assert pred.deciding_instances.tolist() == voted
        weights = model.head.fusion.instance_weights(state.instance_feats, state.weights)[i]
        torch.testing.assert_close(pred.fusion_weights, weights)
        assert float(pred.fusion_weights.sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize('thr, topk', [(0.9, None), (None, 2)])
def test_multi_label_fusion_head_threshold_and_topk(thr, topk):
    cfg = small(2, fusion='attention', classes=4,
                instance_head=dict(negative_class=None, mil_loss=dict(type='MILLoss')))
    cfg['head'].update(type='MultiLabelFusionHead', thr=thr, topk=topk)
    model = MODELS.build(cfg).eval()
    with torch.no_grad():
        state = model.forward_state(torch.rand(2, 3, 96, 96))
        scores = torch.sigmoid(model.head(state))
        preds = model.head.predict(state)
    for pred, score in zip(preds, scores):
        expected = torch.where(score >= thr)[0] if thr else score.topk(topk).indices
        assert sorted(pred.pred_label.tolist()) == sorted(expected.tolist())


def test_a_reader_that_would_never_learn_is_refused():
    reader = dict(type='ResNet', depth=18, base_channels=8)
    cfg = small(2, fusion='attention', reader=reader)
    cfg['head'].update(detach_instances=True, instance_channels=64)
    with pytest.raises(ValueError, match='model.reader would never learn.*detach_instances=True'):
        MODELS.build(cfg)
    cfg['head']['detach_instances'] = False  # the fused loss reaches the reader
    MODELS.build(cfg)
    cfg['head']['detach_instances'] = True  # or the instance head teaches it
    cfg['instance_head'] = dict(type='InstanceHead', num_classes=3, in_channels=64,
                                mil_loss=dict(type='MILLoss'))
    MODELS.build(cfg)
