"""The model's paths on every device: ``cpu`` always, ``cuda`` where there is one
(tools/device/gpu_check.sh runs ``-k cuda`` on a GPU machine). Each test moves a
DigitBags-recipe model to the device and checks values against the CPU."""
import copy

import pytest
import torch
from mmengine.config import Config

import gattn_mm  # noqa: F401
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

DEVICES = ['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device'))]
TINY = 'tests/data/tiny_digitbags.py'


def tiny_model(root, device):
    torch.manual_seed(0)
    cfg = Config.fromfile(f'{root}/{TINY}')
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model.to(device)


def batch(device, n=4, side=128):
    torch.manual_seed(1)
    x = torch.rand(n, 3, side, side, device=device) * 255
    data = [DataSample().set_gt_label(i % 2) for i in range(n)]
    return x, data


@pytest.mark.parametrize('device', DEVICES)
def test_loss_backward_and_predict(root, device):
    model = tiny_model(root, device)
    x, data = batch(device)
    inputs = model.data_preprocessor(dict(inputs=list(x), data_samples=data), True)
    losses = model(**inputs, mode='loss')
    assert set(losses) == {'loss', 'loss_instance', 'loss_prior', 'loss_distill'}
    sum(losses.values()).backward()
    grads = [p.grad for p in model.neck.parameters()]
    assert all(g is not None and g.device.type == device and torch.isfinite(g).all()
               for g in grads)
    model.eval()
    with torch.no_grad():
        preds = model(**model.data_preprocessor(dict(inputs=list(x), data_samples=data)),
                      mode='predict')
    assert preds[0].pred_score.device.type == device and preds[0].boxes.shape == (4, 4)


@pytest.mark.parametrize('device', DEVICES)
def test_device_matches_cpu(root, device):
    """Eval-mode logits, attention and boxes on the device equal the CPU's."""
    cpu, dev = tiny_model(root, 'cpu').eval(), tiny_model(root, device).eval()
    x, _ = batch('cpu')
    with torch.no_grad():
        a = cpu.forward_state((x - 127.5) / 63.75)
        b = dev.forward_state(((x - 127.5) / 63.75).to(device))
        la, lb = cpu.predict_logits(a), dev.predict_logits(b)
    assert torch.allclose(a.attention, b.attention.cpu(), atol=1e-5)
    assert torch.allclose(a.boxes, b.boxes.cpu(), atol=1e-3)
    assert torch.allclose(la, lb.cpu(), atol=1e-3)


@pytest.mark.parametrize('device', DEVICES)
def test_mixed_precision_losses_stay_finite_and_float32(root, device):
    """Under bf16 autocast the attention losses and the MIL loss are float32."""
    model = tiny_model(root, device)
    x, data = batch(device)
    inputs = model.data_preprocessor(dict(inputs=list(x), data_samples=data), True)
    with torch.autocast(device_type=device, dtype=torch.bfloat16):
        losses = model(**inputs, mode='loss')
    for name in ('loss_instance', 'loss_prior', 'loss_distill'):
        assert losses[name].dtype == torch.float32 and torch.isfinite(losses[name]), name
    sum(losses.values()).backward()


@pytest.mark.parametrize('device', DEVICES)
def test_sampler_and_crop_on_device(device):
    from gattn_mm.models import InstanceSampler
    s = InstanceSampler(num_instances=3, crop_size=8, box_size=16,
                        selector=dict(type='TopKSelector', min_distance=2, centre='centroid'),
                        test_cfg=dict(views=[(0.25, 0)])).to(device)
    s.eval()
    images = torch.zeros(2, 3, 64, 64, device=device)
    images[:, :, 16:32, 32:48] = 1
    attn = torch.full((2, 4, 4), 1e-4, device=device)
    attn[:, 1, 2] = 1
    attn = attn / attn.sum((1, 2), keepdim=True)
    sel, boxes = s(attn, (64, 64), torch.tensor([[64., 64.], [40., 64.]]))
    crops = s.crop(images, boxes)
    assert boxes.device.type == crops.device.type == device
    assert crops.shape == (2 * 3 * 2, 3, 8, 8)
    assert crops.view(2, 3, 2, 3, 8, 8)[:, 0, 0, :, 1:-1, 1:-1].min() > 0.95


@pytest.mark.parametrize('device', DEVICES)
def test_inferencer_on_device(tiny_checkpoint, device):
    import numpy as np

    from gattn_mm.apis import GattnInferencer
    config, ckpt = tiny_checkpoint
    image = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    ref = GattnInferencer(config, pretrained=ckpt, device='cpu')([image])[0]
    got = GattnInferencer(config, pretrained=ckpt, device=device)([image])[0]
    assert got['pred_label'] == ref['pred_label']
    assert abs(got['pred_score'] - ref['pred_score']) < 1e-3


@pytest.mark.parametrize('device', DEVICES)
def test_native_path_on_device_matches_cpu(root, device):
    """Images of different sizes (NativeDataPreprocessor): loss, backward and
    predictions on the device, against the CPU."""
    cfg = Config.fromfile(f'{root}/{TINY}')
    cfg.model.data_preprocessor = dict(type='NativeDataPreprocessor', num_classes=2,
                                       mean=[127.5] * 3, std=[63.75] * 3, to_rgb=True)
    torch.manual_seed(0)
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
              for h, w in ((128, 160), (200, 128), (128, 128))]
    data = [DataSample().set_gt_label(i % 2) for i in range(3)]
    outs = {}
    for dev in ('cpu', device):
        torch.manual_seed(0)
        model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
        model = model.to(dev)
        inputs = model.data_preprocessor(dict(inputs=images, data_samples=data), True)
        losses = model(**inputs, mode='loss')
        sum(losses.values()).backward()
        assert all(p.grad is None or p.grad.device.type == dev for p in model.parameters())
        model.eval()
        with torch.no_grad():
            preds = model(**model.data_preprocessor(dict(inputs=images, data_samples=data)),
                          mode='predict')
        outs[dev] = torch.stack([p.pred_score.cpu() for p in preds])
        assert preds[1].ori_boxes.device.type == dev and preds[1].ori_boxes[:, 3].max() <= 200
    torch.testing.assert_close(outs[device], outs['cpu'], atol=1e-4, rtol=1e-4)
