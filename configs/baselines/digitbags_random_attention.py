# Ablation: gattn on DigitBags with its learned attention replaced by random
# cells, on a trained gattn checkpoint (same reader and heads). Test only:
#   python tools/test.py configs/baselines/digitbags_random_attention.py GATTN_CHECKPOINT
_base_ = ['../gattn_digitbags.py']
model = dict(type='FixedAttentionClassifier', attention='random')
