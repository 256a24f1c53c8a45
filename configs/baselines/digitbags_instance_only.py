# Ablation: a trained gattn model on DigitBags predicting from its instances alone
# (the instance head, pool='mil': a bag is positive iff one instance is), without
# the global feature and the fused head. Test only:
#   python tools/test.py configs/baselines/digitbags_instance_only.py GATTN_CHECKPOINT
_base_ = ['../gattn_digitbags.py']
model = dict(predict_from='instance_head')
