"""Which errors a DigitBags model makes: false positives (a negative bag called
positive), false negatives, and whether a box covered the target digit of each
missed positive bag. Reads the predictions ``tools/test.py`` saved with
``--out FILE.pkl --out-item pred``; prints one line per error and a summary.

The pickle is read by :func:`load_predictions`, which builds only plain Python
containers, tensors and numpy arrays (any other object in the file is refused, so
a hostile pickle runs no code)."""
import argparse
import io
import pickle

import torch

# (module, name) -> what the unpickler may build: what mmengine's DumpResults writes
ALLOWED = {('collections', 'OrderedDict'), ('_codecs', 'encode'),
           ('torch._utils', '_rebuild_tensor_v2'), ('numpy', 'ndarray'), ('numpy', 'dtype'),
           ('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct')}


def _storage_from_bytes(data: bytes):
    """A tensor storage pickled by ``torch.save`` into the stream, read with the safe
    unpickler (``torch.storage._load_from_bytes`` would unpickle it fully)."""
    return torch.load(io.BytesIO(data), weights_only=True)


class PredictionUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) == ('torch.storage', '_load_from_bytes'):
            return _storage_from_bytes
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f'{module}.{name} is not a tensor, array or container')


def load_predictions(path: str) -> list:
    """The list of prediction dicts in ``path``; an error naming it otherwise."""
    try:
        with open(path, 'rb') as f:
            preds = PredictionUnpickler(f).load()
    except Exception as err:  # noqa: BLE001  (damaged or hostile pickles raise many types)
        raise SystemExit(f'error: {path}: not a predictions pickle of tools/test.py '
                         f'--out-item pred ({type(err).__name__}: {err})') from None
    if not isinstance(preds, list) or not all(isinstance(p, dict) for p in preds):
        raise SystemExit(f'error: {path}: expected a list of prediction dicts, got '
                         f'{type(preds).__name__}')
    return preds


def covered(sample, target: int):
    """Per target digit of the bag: is its centre inside one of the boxes?"""
    digits = torch.as_tensor(sample['gt_digits'])
    gt = torch.as_tensor(sample['gt_bboxes'], dtype=torch.float32)[digits == target]
    if not len(gt):
        return []
    boxes = torch.as_tensor(sample['boxes'], dtype=torch.float32)
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2
    inside = ((boxes[:, None, 0] <= cx) & (boxes[:, None, 2] >= cx) &
              (boxes[:, None, 1] <= cy) & (boxes[:, None, 3] >= cy))
    return inside.any(0).tolist()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('pred', help='pickle written by tools/test.py --out-item pred')
    p.add_argument('--target', type=int, default=9, help='the digit that makes a bag positive')
    args = p.parse_args(argv)
    preds = load_predictions(args.pred)
    fp = fn = fn_covered = 0
    for s in preds:
        gt, pred = int(s['gt_label'][0]), int(s['pred_label'][0])
        if gt == pred:
            continue
        cov = covered(s, args.target) if gt == 1 else []
        fp += gt == 0
        fn += gt == 1
        fn_covered += gt == 1 and all(cov)
        score = float(s['pred_score'][1])
        print(f"{s['img_path']}: label {gt}, predicted {pred} (p(positive)={score:.3f}), "
              f"digits {torch.as_tensor(s['gt_digits']).tolist()}"
              + (f', target covered {cov}' if gt == 1 else ''))
    print(f'{len(preds)} bags: {fp + fn} errors, {fp} false positives, {fn} false '
          f'negatives ({fn_covered} of them with every target digit inside a box)')


if __name__ == '__main__':
    main()
