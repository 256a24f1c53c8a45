# Ablation: a trained gattn model on DigitBags predicting from its instances alone
# (the instance head, a bag as positive as its most positive instance), without
# the global feature and the fused head. Test only:
#   python tools/test.py configs/baselines/digitbags_instance_only.py GATTN_CHECKPOINT
_base_ = ['../gattn_digitbags.py']
model = dict(predict_from='instance_head', instance_head=dict(pool='max'))
