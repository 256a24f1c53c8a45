# Ablation: gattn on Megapixel digits with its learned attention replaced by the
# contrast prior alone (softmax of the z-scored contrast of each cell; no learned
# parameter), on a trained gattn checkpoint (same reader and heads). Test only:
#   python tools/test.py configs/baselines/megapixel_contrast_attention.py GATTN_CHECKPOINT
_base_ = ['../gattn_megapixel.py']
model = dict(type='FixedAttentionClassifier', attention='contrast')
