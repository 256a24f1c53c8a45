"""Export a gattn model (tensor mode: image -> logits) to ONNX.

The graph takes the raw image batch (B, 3, H, W), float, 0-255, in the channel
order of the config's pipeline (BGR for gattn-mm's loader), applies the config's
normalisation, and returns the class logits (B, num_classes). The batch B is
dynamic (the axis named ``batch`` of ``images`` and ``logits``): the graph is traced
on an example of --batch-size images (default 2: a batch of 1 could be taken for a
broadcast) and runs at any B; H and W are fixed (--shape). The sampler's test
selector must trace to a static graph (its class says ``exportable = True``, e.g.
``TopKSelector``); the instance crop becomes one ONNX ``RoiAlign`` node. With
onnxruntime installed, the graph is run at the traced batch and at another one (1, or
2 for a trace at 1) and its logits compared with PyTorch's before the file is written:
a graph that does not run at a batch it declares is not written. The file is written
atomically, never over the config or the checkpoint."""
import warnings

# mmcv-lite (no compiled ops, none needed) says so when mmpretrain is imported
warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')

import argparse
import io
import os.path as osp

import torch
import torch.nn as nn
from mmengine.config import DictAction

import gattn_mm  # noqa: F401
from gattn_mm.apis.cli import (MODEL_USAGE, URL_PREFIXES, add_model_arguments,
                               check_model_budget, checkpoint_errors_exit, model_config,
                               refuse_overwriting_inputs, resolve_model_arguments)
from gattn_mm.apis.outputs import writable_file_problem
from gattn_mm.datasets.transforms.image_reading import DEFAULT_MAX_PIXELS
from gattn_mm.runtime import GATTN_SCHEME, AtomicLocalBackend


DYNAMIC_AXES = {'images': {0: 'batch'}, 'logits': {0: 'batch'}}
"""The graph's dynamic axes: the batch of its input and of its logits."""


class ExportWrapper(nn.Module):
    """Data preprocessor (to RGB, normalise) + the model's tensor mode."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        pre = model.data_preprocessor
        self.to_rgb = bool(getattr(pre, 'to_rgb', False))
        self.register_buffer('mean', pre.mean.clone() if pre._enable_normalize else
                             torch.zeros(3, 1, 1))
        self.register_buffer('std', pre.std.clone() if pre._enable_normalize else
                             torch.ones(3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.to_rgb:
            images = images.flip(1)
        return self.model((images - self.mean) / self.std, mode='tensor')


def check_batches(batch: int) -> tuple:
    """The batches the graph is run at before it is written: the traced ``batch`` and
    another (1, or 2 for a trace at 1), so that the dynamic batch it declares is
    checked, not assumed."""
    return (batch, 1 if batch > 1 else 2)


def check_shape(shape, what: str, batch: int = 2) -> None:
    """Raise ``SystemExit`` naming ``what`` when the largest input (B, 3, H, W) float32
    the export runs, at the traced --batch-size ``batch`` or the other checked batch
    (:func:`check_batches`), would hold more pixels than the reader's budget of one
    image (an export of --shape 100000 100000 would allocate 120 GB before tracing)."""
    largest = max(check_batches(batch))
    h, w = (int(v) for v in shape)
    if largest * h * w > DEFAULT_MAX_PIXELS:
        smaller = ' or a smaller --batch-size' * (batch > 2)  # 1 and 2 both run 2
        raise SystemExit(f'error: {what} {h} {w}: {largest} x {h} x {w} = '
                         f'{largest * h * w:,} pixels is over the limit of '
                         f'{DEFAULT_MAX_PIXELS:,} (the reader\'s budget of one image): '
                         f'export at the size the model reads (its canvas){smaller}')


def check_with_onnxruntime(graph: bytes, checks) -> str:
    """Run the exported graph with ONNX Runtime (when installed) on each input of
    ``checks``, pairs (input (B, 3, H, W), PyTorch's logits), at every batch checked,
    and compare its logits with PyTorch's: ``SystemExit`` when they differ or the graph
    fails at a batch, so that no graph is written that does not compute the model at
    the batches it declares. Returns what was checked."""
    try:
        import onnxruntime as ort
    except ImportError:
        return 'not run: onnxruntime is not installed'
    session = ort.InferenceSession(graph, providers=['CPUExecutionProvider'])
    worst = 0.
    for images, expected in checks:
        batch = images.size(0)
        try:
            got = session.run(None, {'images': images.numpy()})[0]
        except Exception as e:  # onnxruntime's own errors (a reshape fixed to a batch)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SystemExit(f'error: the exported graph does not run at batch {batch}, '
                             f'which it declares: {first}; nothing written') from None
        diff = float(abs(got - expected.numpy()).max()) \
            if got.shape == expected.shape else None
        if diff is None or diff > 1e-3 * max(1.0, float(expected.abs().max())):
            raise SystemExit(f'error: the exported graph does not compute the model: ONNX '
                             f'Runtime gives logits {tuple(got.shape)} differing by {diff} '
                             f'from PyTorch\'s {tuple(expected.shape)} at batch {batch}; '
                             f'nothing written')
        worst = max(worst, diff)
    batches = ' and '.join(str(images.size(0)) for images, _ in checks)
    return f'ONNX Runtime matches PyTorch at batch {batches} (max difference {worst:.2g})'


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, usage=f'%(prog)s {MODEL_USAGE} --out model.onnx [opts]')
    add_model_arguments(p, images=False)
    p.add_argument('--out', required=True,
                   help='output .onnx file (its folder must exist; never the config or '
                   'the checkpoint)')
    p.add_argument('--shape', type=int, nargs=2, default=None, metavar=('H', 'W'),
                   help='input size, at least the model\'s global_size (default: the '
                   'config\'s canvas, else 512 512)')
    p.add_argument('--batch-size', type=int, default=2,
                   help='the batch of the example the graph is traced at (default 2); '
                   'the graph\'s batch is dynamic: it runs at any batch, and is checked '
                   'at this one and at 1 (at 2 for --batch-size 1)')
    p.add_argument('--opset', type=int, default=17, help='ONNX opset (>= 16 for RoiAlign)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of the config, key=value')
    args = p.parse_args(argv)
    resolve_model_arguments(p, args, images=False)
    return args


def build_export_model(config, checkpoint: str) -> nn.Module:
    """The wrapped model in eval mode; ``config`` is a path or a ``Config``."""
    from mmpretrain.apis import get_model
    model = get_model(config, pretrained=checkpoint, device='cpu')
    model.eval()
    selector = getattr(getattr(model, 'sampler', None), 'test_selector', None)
    if selector is not None and not getattr(selector, 'exportable', False):
        name = type(selector).__name__
        raise ValueError(f'the test selector {name} cannot be exported to a static ONNX '
                         f'graph (it is random or its control flow depends on the data); '
                         f'use an exportable one, e.g. model.sampler.test_cfg.selector='
                         f"dict(type='TopKSelector')")
    return ExportWrapper(model).eval()


def main(argv=None):
    args = parse_args(argv)
    if args.opset < 16:
        raise SystemExit('--opset must be >= 16 (aligned RoiAlign)')
    if args.shape is not None and min(args.shape) < 1:
        raise SystemExit(f'--shape must be two positive sides H W, got {args.shape}')
    if args.batch_size < 1:
        raise SystemExit(f'--batch-size must be >= 1, got {args.batch_size}')
    if args.shape is not None:
        check_shape(args.shape, '--shape', args.batch_size)  # before the model is built
    problem = writable_file_problem(args.out)  # tried: root ignores permission bits
    if problem:
        raise SystemExit(f'error: --out {args.out}: not a writable file path ({problem})')
    cfg, checkpoint = model_config(args)  # a model name: its config and weights
    inputs = [cfg.filename] + ([] if checkpoint.startswith(URL_PREFIXES + (GATTN_SCHEME,))
                               else [checkpoint])
    refuse_overwriting_inputs([args.out], inputs, '--out')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    with checkpoint_errors_exit(args.model_name or checkpoint):
        wrapper = build_export_model(cfg, checkpoint)
    if args.shape is None:
        canvas = cfg.get('canvas', 512)
        args.shape = (canvas, canvas) if isinstance(canvas, int) else tuple(canvas)
        check_shape(args.shape, f'the config\'s canvas ({args.config})', args.batch_size)
    check_model_budget(wrapper.model)  # the instances of the traced image
    global_size = getattr(wrapper.model, 'global_size', None)
    if global_size is not None and any(s < g for s, g in zip(args.shape, global_size)):
        raise SystemExit(f'error: --shape {args.shape[0]} {args.shape[1]} is smaller than '
                         f'the model\'s glance, model.global_size={tuple(global_size)}: '
                         f'give a --shape of at least {global_size[0]} {global_size[1]}')
    checks = []  # (input, PyTorch's logits) at the traced batch, then another
    for batch in check_batches(args.batch_size):
        images = torch.rand(batch, 3, *args.shape) * 255
        with torch.no_grad():
            checks.append((images, wrapper(images)))
    dummy = checks[0][0]
    buffer = io.BytesIO()  # written whole or not at all
    with warnings.catch_warnings():  # the tracer's notes on values it fixes in the graph
        # (the shape, declared; the batch is not: checked at two batches below) and
        # torch.onnx's on its own folding:
        # nothing to act on; the graph is run and compared below instead
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', category=UserWarning, module=r'torch\.onnx')
        warnings.filterwarnings('ignore', category=DeprecationWarning, module=r'torch\.onnx')
        # dynamo=False is this tool's exporter (the one its tests check); torch calls it legacy
        warnings.filterwarnings('ignore', message='You are using the legacy TorchScript')
        torch.onnx.export(wrapper, (dummy,), buffer, input_names=['images'],
                          output_names=['logits'], opset_version=args.opset, dynamo=False,
                          dynamic_axes=DYNAMIC_AXES)
    checked = check_with_onnxruntime(buffer.getvalue(), checks)
    AtomicLocalBackend().put(buffer.getvalue(), args.out)
    print(f'exported {args.out} (input Bx3x{args.shape[0]}x{args.shape[1]}, batch B '
          f'dynamic, traced at {args.batch_size}; {checked})')


if __name__ == '__main__':
    from gattn_mm.apis.cli import run_tool  # a refusal: one line, exit 1 (--debug: traceback)
    raise SystemExit(run_tool(main))
