# gattn on DigitBags whose fused head is a head from a downstream plugin
# (examples/my_parts/top_instance_head.py): one line; its channels (the glance's 64,
# TinyNet's 32) are measured on the built backbone and reader.
#   PYTHONPATH=examples python tools/train.py examples/gattn_digitbags_my_head.py
_base_ = ['gattn_digitbags_my_parts.py']
model = dict(head=dict(_delete_=True, type='TopInstanceHead', num_classes=2))
