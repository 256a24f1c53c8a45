# gattn on DigitBags with parts from a downstream plugin (examples/my_parts/): a
# backbone for the reader, a selector, a fusion and two attention losses (one reads
# the labels), one line each; a head: examples/gattn_digitbags_my_head.py.
#   PYTHONPATH=examples python tools/train.py examples/gattn_digitbags_my_parts.py
_base_ = ['../configs/gattn_digitbags.py']
custom_imports = dict(imports=['gattn_mm', 'my_parts'], allow_failed_imports=False)
model = dict(
    reader=dict(_delete_=True, type='TinyNet', channels=32),
    sampler=dict(selector=dict(_delete_=True, type='BorderFreeTopKSelector', border=1)),
    head=dict(fusion=dict(_delete_=True, type='GeMFusion', p=3.0)),
    # a list replaces the base config's: the recipe's two losses, plus the new one
    attention_losses=[
        dict(type='ContrastPriorLoss', loss_weight=1.0, temperature=0.5),
        dict(type='EvidenceDistillLoss', loss_weight=1.0, temperature=0.5, with_contrast=True),
        dict(type='CentrePriorLoss', sigma=0.3, loss_weight=0.1),
        dict(type='PositiveFocusLoss', negative_class=0, loss_weight=0.05)])
